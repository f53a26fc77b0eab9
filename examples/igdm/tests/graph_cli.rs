//! `igdm graph` against a mock Graph API: the built binary, run as a process.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "cli-test-token";

struct TokenNotInUrl;

impl Match for TokenNotInUrl {
    fn matches(&self, request: &Request) -> bool {
        !request.url.as_str().contains(TOKEN)
    }
}

fn igdm(server: &MockServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_igdm"))
        .arg("graph")
        .args(args)
        .args(["--api-base", &server.uri()])
        .env("IGDM_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn graph(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(format!("/v25.0/{p}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(TokenNotInUrl)
}

#[tokio::test]
async fn me_prints_the_account() {
    let server = MockServer::start().await;
    graph("GET", "me")
        .and(query_param("fields", "user_id,username"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"user_id": 17841400000000001u64, "username": "shop"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = igdm(&server, &["me", "--fields", "user_id,username"]);
    let value = stdout_json(&out);
    assert_eq!(value["user_id"], "17841400000000001");
    assert_eq!(value["username"], "shop");
}

#[tokio::test]
async fn media_list_and_get() {
    let server = MockServer::start().await;
    graph("GET", "me/media")
        .and(query_param("limit", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "m1", "media_type": "IMAGE"}],
            "paging": {"cursors": {"after": "A"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "m1")
        .and(query_param("fields", "id,caption"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "m1", "caption": "hello"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let list = stdout_json(&igdm(&server, &["media", "list", "--limit", "5"]));
    assert_eq!(list["data"][0]["id"], "m1");
    assert_eq!(list["data"][0]["media_type"], "IMAGE");
    let one = stdout_json(&igdm(
        &server,
        &["media", "get", "m1", "--fields", "id,caption"],
    ));
    assert_eq!(one["caption"], "hello");
}

#[tokio::test]
async fn comments_list_all_pages() {
    let server = MockServer::start().await;
    graph("GET", "m1/comments")
        .and(wiremock::matchers::query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "c1", "text": "first"}],
            "paging": {"cursors": {"after": "A1"}, "next": "https://graph.instagram.com/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "m1/comments")
        .and(query_param("after", "A1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "c2", "text": "second"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let all = stdout_json(&igdm(&server, &["comments", "list", "m1", "--all"]));
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[1]["text"], "second");
}

#[tokio::test]
async fn conversations_messages_and_profile() {
    let server = MockServer::start().await;
    graph("GET", "me/conversations")
        .and(query_param("platform", "instagram"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "CONV1", "updated_time": "2024-05-01T10:00:00+0000"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "CONV1")
        .and(query_param("fields", "messages{id,created_time}"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "CONV1", "messages": {"data": [{"id": "mid1", "created_time": "2024-05-01T10:00:00+0000"}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "IGSID1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "username": "ana", "follower_count": 12, "is_user_follow_business": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    let convs = stdout_json(&igdm(&server, &["conversations", "list"]));
    assert_eq!(convs["data"][0]["id"], "CONV1");
    assert_eq!(convs["data"][0]["updated_time"], "2024-05-01T10:00:00Z");
    let messages = stdout_json(&igdm(&server, &["messages", "list", "CONV1"]));
    assert_eq!(messages["data"][0]["id"], "mid1");
    let profile = stdout_json(&igdm(&server, &["profile", "IGSID1"]));
    assert_eq!(profile["username"], "ana");
    assert_eq!(profile["follower_count"], 12);
}

#[tokio::test]
async fn send_text_and_private_reply() {
    let server = MockServer::start().await;
    graph("POST", "me/messages")
        .and(body_json(
            json!({"recipient": {"id": "IGSID1"}, "message": {"text": "hello there"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "IGSID1", "message_id": "mid.A"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    graph("POST", "me/messages")
        .and(body_json(
            json!({"recipient": {"comment_id": "C1"}, "message": {"text": "check your DMs"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "IGSID2", "message_id": "mid.B"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sent = stdout_json(&igdm(&server, &["send-text", "IGSID1", "hello there"]));
    assert_eq!(sent["message_id"], "mid.A");
    let reply = stdout_json(&igdm(&server, &["private-reply", "C1", "check your DMs"]));
    assert_eq!(reply["recipient_id"], "IGSID2");
}

#[tokio::test]
async fn graph_error_prints_one_line_with_advice() {
    let server = MockServer::start().await;
    graph("GET", "me")
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "Error validating access token: Session has expired", "type": "OAuthException",
                      "code": 190, "error_subcode": 463, "fbtrace_id": "T1"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let out = igdm(&server, &["me"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("igdm: token_invalid (code 190/463): Error validating access token"));
    assert!(stderr.contains("token expired: reconnect the account"));
    assert!(!stderr.contains(TOKEN));
}

#[tokio::test]
async fn limit_and_token_problems_fail_before_any_request() {
    let server = MockServer::start().await;
    let long = "x".repeat(1001);
    let out = igdm(&server, &["send-text", "IGSID1", &long]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("igdm: limit_exceeded"), "{stderr}");
    assert!(stderr.contains("1000"));

    let out = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["graph", "me", "--api-base", &server.uri()])
        .env_remove("IGDM_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim(),
        "igdm: no access token: pass --token or set IGDM_TOKEN"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn token_flag_and_page_flavour() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v25.0/PAGE9/conversations"))
        .and(header("authorization", "Bearer flag-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    let out = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args([
            "graph",
            "conversations",
            "list",
            "--token",
            "flag-token",
            "--page-id",
            "PAGE9",
            "--api-base",
            &server.uri(),
        ])
        .env_remove("IGDM_TOKEN")
        .output()
        .unwrap();
    let value = stdout_json(&out);
    assert_eq!(value["data"], json!([]));
}
