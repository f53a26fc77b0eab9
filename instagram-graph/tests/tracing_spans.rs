//! The client emits one span per call with the method, path and status, and no secrets.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use instagram_graph::client::{appsecret_proof, Client, ProofMode};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A subscriber that writes every span name, field and event into one string.
#[derive(Clone, Default)]
struct Capture {
    log: Arc<Mutex<String>>,
    next: Arc<AtomicU64>,
}

struct Writer<'a>(&'a mut String);

impl Visit for Writer<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut log = self.log.lock().unwrap();
        let _ = write!(log, "\nspan {}", span.metadata().name());
        span.record(&mut Writer(&mut log));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut log = self.log.lock().unwrap();
        values.record(&mut Writer(&mut log));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut log = self.log.lock().unwrap();
        log.push_str("\nevent");
        event.record(&mut Writer(&mut log));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn spans_name_the_call_without_secrets() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "1", "message_id": "m"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "expired", "code": 190, "error_subcode": 463}
        })))
        .mount(&server)
        .await;
    let client = Client::builder("TOKEN-SECRET-42")
        .base_url(server.uri())
        .app_secret("APP-SECRET-7", ProofMode::Timestamped)
        .build()
        .unwrap();
    client.send_text("1", "private words").await.unwrap();
    client.me(&[]).await.unwrap_err();

    let log = capture.log.lock().unwrap().clone();
    assert!(log.contains("span graph.call"), "{log}");
    assert!(log.contains("path=me/messages"), "{log}");
    assert!(log.contains("status=200"), "{log}");
    assert!(log.contains("status=400"), "{log}");
    assert!(log.contains("TokenInvalid"), "{log}");
    for secret in ["TOKEN-SECRET-42", "APP-SECRET-7", "private words"] {
        assert!(!log.contains(secret), "{secret} leaked into: {log}");
    }
    let legacy_proof = appsecret_proof("APP-SECRET-7", "TOKEN-SECRET-42", None);
    assert!(!log.contains(&legacy_proof));
    assert!(!log.contains("appsecret_proof"));
}
