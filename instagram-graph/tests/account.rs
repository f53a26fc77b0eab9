//! `/me` and webhook subscription against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{client, fb_client, graph, query_is, NoBody, TOKEN};
use instagram_graph::client::{appsecret_proof, Client, ProofMode};
use instagram_graph::model::AccountType;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn me_reads_fields_with_bearer_token_and_usage() {
    let server = MockServer::start().await;
    graph("GET", "me")
        .and(query_is(&[("fields", "user_id,username,account_type")]))
        .and(NoBody)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id":"app-scoped-1","user_id":17841400000000001u64,"username":"shop","account_type":"Business"}))
                .insert_header("x-app-usage", r#"{"call_count":12,"total_time":3,"total_cputime":4}"#)
                .insert_header(
                    "x-business-use-case-usage",
                    r#"{"17841400000000001":[{"type":"instagram","call_count":40,"total_cputime":1,"total_time":2,"estimated_time_to_regain_access":0}]}"#,
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let me = client(&server)
        .me(&["user_id", "username", "account_type"])
        .await
        .unwrap();
    assert_eq!(me.data.id.as_deref(), Some("app-scoped-1"));
    assert_eq!(
        me.data.user_id.as_ref().unwrap().as_str(),
        "17841400000000001"
    );
    assert_eq!(me.data.account_type, Some(AccountType::Business));
    assert_eq!(me.usage.app.unwrap().call_count, 12);
    assert_eq!(me.usage.max_percent(), Some(40));
    assert_eq!(me.status, 200);
}

#[tokio::test]
async fn me_accepts_the_data_wrapped_shape() {
    let server = MockServer::start().await;
    graph("GET", "me")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data":[{"user_id":"17841400000000002","username":"wrapped"}]}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let me = client(&server).me(&["user_id", "username"]).await.unwrap();
    assert_eq!(me.data.username.as_deref(), Some("wrapped"));
    assert!(me.usage.is_empty());
}

#[tokio::test]
async fn subscribe_and_unsubscribe_webhooks() {
    let server = MockServer::start().await;
    graph("POST", "me/subscribed_apps")
        .and(query_is(&[("subscribed_fields", "comments,messages")]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    graph("DELETE", "me/subscribed_apps")
        .and(query_is(&[]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(c
        .subscribe_webhooks(&["comments", "messages"])
        .await
        .unwrap()
        .data
        .is_success());
    assert!(c.unsubscribe_webhooks().await.unwrap().data.is_success());
    assert!(c.subscribe_webhooks(&[]).await.is_err());
}

#[tokio::test]
async fn facebook_login_subscribes_the_page() {
    let server = MockServer::start().await;
    graph("POST", "PAGE1/subscribed_apps")
        .and(query_is(&[("subscribed_fields", "feed")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let ok = fb_client(&server)
        .subscribe_webhooks(&["feed"])
        .await
        .unwrap();
    assert!(ok.data.is_success());
}

#[tokio::test]
async fn appsecret_proof_is_sent_in_the_query() {
    let server = MockServer::start().await;
    let proof = appsecret_proof("app-secret", TOKEN, None);
    graph("GET", "me")
        .and(query_is(&[
            ("fields", "username"),
            ("appsecret_proof", &proof),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"username":"p"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::builder(TOKEN)
        .base_url(server.uri())
        .app_secret("app-secret", ProofMode::Legacy)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(
        c.me(&["username"]).await.unwrap().data.username.as_deref(),
        Some("p")
    );
}

#[test]
fn appsecret_proof_is_hmac_sha256_hex() {
    // RFC 4231-style known answer: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog").
    assert_eq!(
        appsecret_proof("key", "The quick brown fox jumps over the lazy dog", None),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    // The timestamped form signs `token|time`.
    assert_eq!(
        appsecret_proof("key", "tok", Some(1_700_000_000)),
        appsecret_proof("key", "tok|1700000000", None)
    );
}

#[tokio::test]
async fn user_agent_and_version_are_configurable() {
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/v21.0/me"))
        .and(wiremock::matchers::header("user-agent", "my-app/1.0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"username":"v"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::builder(TOKEN)
        .base_url(server.uri())
        .graph_version("v21.0")
        .user_agent("my-app/1.0")
        .build()
        .unwrap();
    assert_eq!(
        c.me(&["username"]).await.unwrap().data.username.as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn with_token_switches_account_and_keeps_settings() {
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/v25.0/me"))
        .and(wiremock::matchers::header("authorization", "Bearer OTHER"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"username":"other"})))
        .expect(1)
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v25.0/PAGE2/messages"))
        .and(wiremock::matchers::header("authorization", "Bearer OTHER"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"recipient_id":"1"})))
        .expect(1)
        .mount(&server)
        .await;
    let other = client(&server).with_token(
        "OTHER",
        instagram_graph::Flavor::FacebookLogin {
            page_id: instagram_graph::id::PageId::new("PAGE2"),
        },
    );
    assert_eq!(
        other
            .me(&["username"])
            .await
            .unwrap()
            .data
            .username
            .as_deref(),
        Some("other")
    );
    other.send_text("1", "hi").await.unwrap();
}

#[tokio::test]
async fn account_by_id_uses_default_fields() {
    let server = MockServer::start().await;
    graph("GET", "17841400000000009")
        .and(query_is(&[(
            "fields",
            "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count",
        )]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "17841400000000009", "username": "brand", "account_type": "MEDIA_CREATOR",
            "followers_count": 64363, "media_count": "427", "new_field": [1, 2]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let account = client(&server)
        .account("17841400000000009", &[])
        .await
        .unwrap()
        .data;
    assert_eq!(account.account_type, Some(AccountType::MediaCreator));
    assert_eq!(account.followers_count, Some(64363));
    assert_eq!(account.media_count, Some(427));
}
