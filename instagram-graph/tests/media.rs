//! Media endpoints against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, graph, query_is, NoBody};
use instagram_graph::model::{MediaProductType, MediaType};
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn list_media_with_fields_and_limit() {
    let server = MockServer::start().await;
    graph("GET", "me/media")
        .and(query_is(&[
            ("fields", "id,caption,media_type"),
            ("limit", "2"),
        ]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": "17895731045244887", "caption": "hi", "media_type": "IMAGE"},
                {"id": 17896622936197745u64, "media_type": "SOMETHING_NEW"}
            ],
            "paging": {"cursors": {"before": "b", "after": "a"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server)
        .media_list("me")
        .fields(&["id", "caption", "media_type"])
        .limit(2)
        .send()
        .await
        .unwrap()
        .data;
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.data[0].media_type, Some(MediaType::Image));
    assert_eq!(page.data[1].id, "17896622936197745");
    assert_eq!(
        page.data[1].media_type,
        Some(MediaType::Unknown("SOMETHING_NEW".into()))
    );
    assert!(!page.has_next());
}

#[tokio::test]
async fn list_media_sends_default_fields() {
    let server = MockServer::start().await;
    graph("GET", "178414/media")
        .and(query_is(&[(
            "fields",
            "id,caption,media_type,media_product_type,media_url,permalink,timestamp,username,like_count,comments_count,is_comment_enabled",
        )]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server).media_list("178414").send().await.unwrap();
    assert!(page.data.data.is_empty());
}

#[tokio::test]
async fn get_single_media() {
    let server = MockServer::start().await;
    graph("GET", "1791")
        .and(query_is(&[(
            "fields",
            "id,media_product_type,timestamp,like_count",
        )]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1791", "media_product_type": "REELS",
            "timestamp": "2024-01-01T00:00:00+0000", "like_count": "7"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let media = client(&server)
        .media(
            "1791",
            &["id", "media_product_type", "timestamp", "like_count"],
        )
        .await
        .unwrap()
        .data;
    assert_eq!(media.media_product_type, Some(MediaProductType::Reels));
    assert_eq!(media.timestamp.unwrap().timestamp(), 1_704_067_200);
    assert_eq!(media.like_count, Some(7));
}

#[tokio::test]
async fn list_children() {
    let server = MockServer::start().await;
    graph("GET", "1791/children")
        .and(query_is(&[(
            "fields",
            "id,media_type,media_url,permalink,shortcode,thumbnail_url,timestamp",
        )]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "1", "media_type": "IMAGE"}, {"id": "2", "media_type": "VIDEO"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let children = client(&server)
        .media_children("1791")
        .send()
        .await
        .unwrap()
        .data;
    assert_eq!(children.data[1].media_type, Some(MediaType::Video));
}

#[tokio::test]
async fn enable_and_disable_comments() {
    let server = MockServer::start().await;
    graph("POST", "1791")
        .and(query_is(&[("comment_enabled", "false")]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    graph("POST", "1791")
        .and(query_is(&[("comment_enabled", "true")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(c
        .set_comments_enabled("1791", false)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(c
        .set_comments_enabled("1791", true)
        .await
        .unwrap()
        .data
        .is_success());
}
