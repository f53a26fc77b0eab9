//! Comment endpoints against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, graph, query_is, NoBody};
use instagram_graph::error::Limit;
use instagram_graph::ErrorKind;
use serde_json::json;
use wiremock::matchers::body_json;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn list_comments_fifty_per_page() {
    let server = MockServer::start().await;
    graph("GET", "1791/comments")
        .and(query_is(&[("fields", "id,text,timestamp,username"), ("limit", "50")]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"timestamp":"2017-08-31T19:16:02+0000","text":"nice","id":"1787","username":"ana"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let page = c
        .comments("1791")
        .fields(&["id", "text", "timestamp", "username"])
        .limit(50)
        .send()
        .await
        .unwrap()
        .data;
    assert_eq!(page.data[0].text.as_deref(), Some("nice"));
    assert_eq!(page.data[0].timestamp.unwrap().timestamp(), 1_504_206_962);

    // 51 is refused before any request (the mock above expects exactly one call).
    let err = c.comments("1791").limit(51).send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::LimitExceeded {
            limit: Limit::CommentsPerPage,
            actual: 51
        }
    );
}

#[tokio::test]
async fn read_one_comment_and_replies() {
    let server = MockServer::start().await;
    graph("GET", "1787")
        .and(query_is(&[(
            "fields",
            "id,text,from,media,parent_id,hidden",
        )]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id":"1787","text":"hi","from":{"id":"999","username":"bob"},
            "media":{"id":"1791","media_product_type":"FEED"},"parent_id":"1700","hidden":false
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "1787/replies")
        .and(query_is(&[("fields", "id,text")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data":[{"id":"1800","text":"reply"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let comment = c
        .comment(
            "1787",
            &["id", "text", "from", "media", "parent_id", "hidden"],
        )
        .await
        .unwrap()
        .data;
    assert_eq!(comment.from.unwrap().username.as_deref(), Some("bob"));
    assert_eq!(comment.parent_id.unwrap(), "1700");
    assert_eq!(comment.hidden, Some(false));
    let replies = c
        .replies("1787")
        .fields(&["id", "text"])
        .send()
        .await
        .unwrap()
        .data;
    assert_eq!(replies.data[0].id, "1800");
}

#[tokio::test]
async fn public_reply_posts_the_message_as_json() {
    let server = MockServer::start().await;
    graph("POST", "1787/replies")
        .and(query_is(&[]))
        .and(body_json(json!({"message": "Thanks for sharing!"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "17873440459141029"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let created = c
        .reply_to_comment("1787", "Thanks for sharing!")
        .await
        .unwrap()
        .data;
    assert_eq!(created.id, "17873440459141029");
    assert!(c.reply_to_comment("1787", "").await.is_err());
}

#[tokio::test]
async fn hide_unhide_and_delete() {
    let server = MockServer::start().await;
    for hide in ["true", "false"] {
        graph("POST", "1787")
            .and(query_is(&[("hide", hide)]))
            .and(NoBody)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
            .expect(1)
            .mount(&server)
            .await;
    }
    graph("DELETE", "1787")
        .and(query_is(&[]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(c
        .set_comment_hidden("1787", true)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(c
        .set_comment_hidden("1787", false)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(c.delete_comment("1787").await.unwrap().data.is_success());
}
