//! Conversations API and User Profile API against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, fb_client, graph, query_is, NoBody};
use instagram_graph::ErrorKind;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn list_conversations_on_instagram() {
    let server = MockServer::start().await;
    graph("GET", "me/conversations")
        .and(query_is(&[("platform", "instagram"), ("limit", "10")]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "aWdfQ", "updated_time": "2024-05-01T10:00:00+0000"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server)
        .conversations()
        .limit(10)
        .send()
        .await
        .unwrap()
        .data;
    assert_eq!(page.data[0].id, "aWdfQ");
    assert_eq!(
        page.data[0].updated_time.unwrap().timestamp(),
        1_714_557_600
    );
}

#[tokio::test]
async fn facebook_login_lists_through_the_page() {
    let server = MockServer::start().await;
    graph("GET", "PAGE1/conversations")
        .and(query_is(&[("platform", "instagram")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let page = fb_client(&server).conversations().send().await.unwrap();
    assert!(page.data.data.is_empty());
}

#[tokio::test]
async fn find_conversation_by_user() {
    let server = MockServer::start().await;
    graph("GET", "me/conversations")
        .and(query_is(&[
            ("platform", "instagram"),
            ("user_id", "IGSID1"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "CONV1"}]})))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "me/conversations")
        .and(query_is(&[
            ("platform", "instagram"),
            ("user_id", "NOBODY"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let found = c.find_conversation("IGSID1").await.unwrap().data.unwrap();
    assert_eq!(found.id, "CONV1");
    assert!(c.find_conversation("NOBODY").await.unwrap().data.is_none());
}

#[tokio::test]
async fn conversation_messages_and_message_details() {
    let server = MockServer::start().await;
    graph("GET", "CONV1")
        .and(query_is(&[("fields", "messages{id,created_time}")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": {"data": [
                {"id": "m2", "created_time": "2022-07-12T19:11:07+0000"},
                {"id": "m1", "created_time": 1657653000}
            ]},
            "id": "CONV1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "m2")
        .and(query_is(&[("fields", "id,created_time,from,to,message")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "m2", "created_time": "2022-07-12T19:11:07+0000",
            "to": {"data": [{"username": "shop", "id": "17841400000000001"}]},
            "from": {"username": "ana", "id": "IGSID1"},
            "message": "Hi Kitty!"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let messages = c.conversation_messages("CONV1").await.unwrap().data;
    assert_eq!(messages.data.len(), 2);
    assert_eq!(
        messages.data[1].created_time.unwrap().timestamp(),
        1_657_653_000
    );
    let detail = c.message("m2", &[]).await.unwrap().data;
    assert_eq!(detail.message.as_deref(), Some("Hi Kitty!"));
    assert_eq!(detail.from.unwrap().id.as_deref(), Some("IGSID1"));
    assert_eq!(detail.to.unwrap().data[0].username.as_deref(), Some("shop"));
}

#[tokio::test]
async fn message_older_than_the_twenty_most_recent_errors() {
    let server = MockServer::start().await;
    graph("GET", "m-old")
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "(#100) This message has been deleted", "type": "OAuthException", "code": 100, "fbtrace_id": "X"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).message("m-old", &[]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidParameter);
}

#[tokio::test]
async fn user_profile_fields() {
    let server = MockServer::start().await;
    graph("GET", "IGSID1")
        .and(query_is(&[(
            "fields",
            "name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user",
        )]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "name": null, "username": "peter_chang_live", "profile_pic": "https://fbcdn/p.jpg",
            "follower_count": 1234, "is_user_follow_business": false, "is_business_follow_user": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    let profile = client(&server)
        .user_profile("IGSID1", &[])
        .await
        .unwrap()
        .data;
    assert_eq!(profile.name, None);
    assert_eq!(profile.username.as_deref(), Some("peter_chang_live"));
    assert_eq!(profile.follower_count, Some(1234));
    assert_eq!(profile.is_user_follow_business, Some(false));
    assert_eq!(profile.is_business_follow_user, Some(true));
}

#[tokio::test]
async fn user_profile_without_consent() {
    let server = MockServer::start().await;
    graph("GET", "IGSID2")
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "(#230) User consent is required to access user profile", "type": "OAuthException", "code": 230, "fbtrace_id": "Y"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .user_profile("IGSID2", &["name"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ConsentRequired);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn recent_messages_reads_details_of_at_most_twenty() {
    let server = MockServer::start().await;
    graph("GET", "CONV2")
        .and(query_is(&[("fields", "messages{id,created_time}")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "CONV2",
            "messages": {"data": [{"id": "m3"}, {"id": "m2"}, {"id": "m1"}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    for (id, text) in [("m3", "newest"), ("m2", "middle")] {
        graph("GET", id)
            .and(query_is(&[("fields", "id,created_time,from,to,message")]))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": id, "message": text})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let recent = c.recent_messages("CONV2", 2).await.unwrap().data;
    let texts: Vec<_> = recent
        .iter()
        .map(|m| m.message.as_deref().unwrap())
        .collect();
    assert_eq!(texts, ["newest", "middle"]);
    let err = c.recent_messages("CONV2", 21).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::LimitExceeded {
            limit: instagram_graph::error::Limit::RecentMessages,
            actual: 21
        }
    ));
}
