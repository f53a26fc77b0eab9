//! Every error kind from a Meta-shaped error response (or a transport failure).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{client, graph, TOKEN};
use instagram_graph::error::{ErrorKind, TokenInvalidReason};
use instagram_graph::{Client, Error};
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

async fn error_for(status: u16, body: Value, headers: &[(&str, &str)]) -> Error {
    let server = MockServer::start().await;
    let mut template = ResponseTemplate::new(status).set_body_json(body);
    for (k, v) in headers {
        template = template.insert_header(*k, *v);
    }
    graph("GET", "me")
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    client(&server).me(&["id"]).await.unwrap_err()
}

fn envelope(code: i64, sub: Option<i64>, message: &str) -> Value {
    let mut error =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atrace"});
    if let Some(sub) = sub {
        error["error_subcode"] = json!(sub);
    }
    json!({ "error": error })
}

#[tokio::test]
async fn rate_limited_honours_business_use_case_minutes() {
    let err = error_for(
        400,
        envelope(80002, None, "There have been too many calls to this Instagram account."),
        &[(
            "x-business-use-case-usage",
            r#"{"1784":[{"type":"instagram","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":7}]}"#,
        )],
    )
    .await;
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(420))
        }
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(420)));
    assert_eq!(err.graph().unwrap().fbtrace_id.as_deref(), Some("Atrace"));
}

#[tokio::test]
async fn rate_limited_codes_and_retry_after_header() {
    for code in [4, 17, 32, 613, 80001, 80006] {
        let err = error_for(400, envelope(code, None, "limit"), &[("retry-after", "30")]).await;
        assert_eq!(
            err.kind(),
            &ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            },
            "code {code}"
        );
    }
    let err = error_for(429, json!({"unexpected": true}), &[]).await;
    assert_eq!(err.kind(), &ErrorKind::RateLimited { retry_after: None });
}

#[tokio::test]
async fn token_invalid_with_reasons() {
    let cases = [
        (Some(463), TokenInvalidReason::Expired),
        (Some(460), TokenInvalidReason::PasswordChanged),
        (Some(458), TokenInvalidReason::AppNotInstalled),
        (Some(467), TokenInvalidReason::Invalid),
        (None, TokenInvalidReason::Other(None)),
    ];
    for (sub, reason) in cases {
        let err = error_for(
            401,
            envelope(190, sub, "Error validating access token"),
            &[],
        )
        .await;
        assert_eq!(err.kind(), &ErrorKind::TokenInvalid { reason });
        assert!(!err.is_retryable());
        assert_eq!(err.status(), Some(401));
    }
    let err = error_for(400, envelope(190, Some(463), "expired"), &[]).await;
    assert_eq!(err.advice(), "token expired: reconnect the account");
    assert!(err.to_string().contains("190/463"));
}

#[tokio::test]
async fn permission_denied() {
    for (code, sub) in [(10, None), (200, None), (3, None), (299, None)] {
        let err = error_for(403, envelope(code, sub, "(#10) permission"), &[]).await;
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied, "code {code}");
    }
}

#[tokio::test]
async fn outside_messaging_window() {
    for sub in [2534022, 2018278] {
        let err = error_for(
            400,
            envelope(
                10,
                Some(sub),
                "This message is sent outside of allowed window.",
            ),
            &[],
        )
        .await;
        assert_eq!(err.kind(), &ErrorKind::OutsideMessagingWindow);
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn recipient_unavailable() {
    for (code, sub) in [
        (551, None),
        (551, Some(1545041)),
        (200, Some(1545041)),
        (10, Some(2018108)),
        (200, Some(2534041)),
    ] {
        let err = error_for(
            400,
            envelope(code, sub, "This person isn't available right now."),
            &[],
        )
        .await;
        assert_eq!(
            err.kind(),
            &ErrorKind::RecipientUnavailable,
            "{code}/{sub:?}"
        );
    }
}

#[tokio::test]
async fn invalid_private_reply() {
    let err = error_for(
        400,
        envelope(
            100,
            Some(2534025),
            "The comment is invalid for a private reply",
        ),
        &[],
    )
    .await;
    assert_eq!(err.kind(), &ErrorKind::InvalidPrivateReply);
    assert_eq!(err.subcode(), Some(2534025));
}

#[tokio::test]
async fn consent_required() {
    let err = error_for(
        400,
        envelope(
            230,
            None,
            "User consent is required to access user profile.",
        ),
        &[],
    )
    .await;
    assert_eq!(err.kind(), &ErrorKind::ConsentRequired);
}

#[tokio::test]
async fn invalid_parameter() {
    let err = error_for(
        400,
        envelope(100, Some(33), "Unsupported get request."),
        &[],
    )
    .await;
    assert_eq!(err.kind(), &ErrorKind::InvalidParameter);
    assert_eq!(err.code(), Some(100));
}

#[tokio::test]
async fn transient() {
    let err = error_for(
        500,
        envelope(2, None, "An unexpected error has occurred."),
        &[],
    )
    .await;
    assert_eq!(err.kind(), &ErrorKind::Transient);
    assert!(err.is_retryable());
    let mut flagged = envelope(9999, None, "try again");
    flagged["error"]["is_transient"] = json!(true);
    let err = error_for(400, flagged, &[]).await;
    assert_eq!(err.kind(), &ErrorKind::Transient);
    let err = error_for(503, json!("Service Unavailable"), &[]).await;
    assert_eq!(err.kind(), &ErrorKind::Transient);
    assert_eq!(err.status(), Some(503));
}

#[tokio::test]
async fn other_graph_errors_are_api() {
    let err = error_for(400, envelope(506, None, "Duplicate Post"), &[]).await;
    assert_eq!(err.kind(), &ErrorKind::Api);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn error_envelope_with_status_200() {
    let err = error_for(200, envelope(190, Some(463), "expired"), &[]).await;
    assert!(matches!(err.kind(), ErrorKind::TokenInvalid { .. }));
}

#[tokio::test]
async fn decode_keeps_path_and_raw_body() {
    let server = MockServer::start().await;
    graph("GET", "me/media")
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"data":[{"id":"1"},{"id":{"x":1}}]}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).media_list("me").send().await.unwrap_err();
    match err.kind() {
        ErrorKind::Decode { path, body } => {
            assert_eq!(path, "data[1].id");
            assert_eq!(body, r#"{"data":[{"id":"1"},{"id":{"x":1}}]}"#);
        }
        other => panic!("unexpected {other:?}"),
    }
    let server = MockServer::start().await;
    graph("GET", "me")
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;
    let err = client(&server).me(&[]).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }));
}

#[tokio::test]
async fn transport_connect_failure_is_before_send() {
    // Bind then drop a listener so the port is closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let c = Client::builder(TOKEN)
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let err = c.me(&[]).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Transport {
            before_send: true,
            timeout: false
        }
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn transport_timeout_may_have_been_sent() {
    let server = MockServer::start().await;
    graph("POST", "me/messages")
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let c = Client::builder(TOKEN)
        .base_url(server.uri())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = c.send_text("1", "hi").await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Transport {
            before_send: false,
            timeout: true
        }
    );
    assert!(instagram_graph::retry::is_ambiguous(&err));
}

#[tokio::test]
async fn injected_http_client_is_used() {
    let server = MockServer::start().await;
    graph("GET", "me")
        .and(wiremock::matchers::header("user-agent", "injected/2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1"})))
        .expect(1)
        .mount(&server)
        .await;
    let http = reqwest::Client::builder()
        .user_agent("injected/2")
        .build()
        .unwrap();
    let c = Client::builder(TOKEN)
        .base_url(server.uri())
        .user_agent("injected/2")
        .http_client(http)
        .build()
        .unwrap();
    assert_eq!(c.me(&["id"]).await.unwrap().data.id.as_deref(), Some("1"));
}
