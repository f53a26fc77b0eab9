//! The retry runner with the real client against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, graph};
use instagram_graph::retry::{run, Operation, RetryPolicy};
use instagram_graph::ErrorKind;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

fn fast_policy() -> RetryPolicy {
    RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(5))
}

#[tokio::test]
async fn transient_graph_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    graph("POST", "me/messages")
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "error": {"message": "An unexpected error has occurred. Please retry your request later.", "code": 2, "is_transient": true}
        })))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    graph("POST", "me/messages")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "1", "message_id": "m"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let sent = run(
        &fast_policy(),
        Operation::Send,
        || 1.0,
        |wait| {
            waits.lock().unwrap().push(wait);
            tokio::time::sleep(wait)
        },
        |_| c.send_text("1", "hi"),
    )
    .await
    .unwrap();
    assert_eq!(sent.data.message_id.unwrap(), "m");
    assert_eq!(
        *waits.lock().unwrap(),
        [Duration::from_millis(1), Duration::from_millis(2)]
    );
}

#[tokio::test]
async fn a_private_reply_that_timed_out_is_not_sent_again() {
    let server = MockServer::start().await;
    graph("POST", "me/messages")
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let c = instagram_graph::Client::builder(common::TOKEN)
        .base_url(server.uri())
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let err = run(
        &fast_policy().retry_ambiguous_sends(true),
        Operation::PrivateReply,
        || 0.5,
        tokio::time::sleep,
        |_| c.private_reply("C1", "thanks"),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::Transport { timeout: true, .. }
    ));
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let server = MockServer::start().await;
    graph("POST", "me/messages")
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "outside window", "code": 10, "error_subcode": 2534022}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let err = run(
        &fast_policy(),
        Operation::Send,
        || 0.5,
        tokio::time::sleep,
        |_| c.send_text("1", "hi"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::OutsideMessagingWindow);
}
