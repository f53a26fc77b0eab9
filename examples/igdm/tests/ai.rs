//! The chat-completions responder against a wiremock model endpoint: the request it sends
//! (model, system message, only the given context, the key as a bearer token), how it reads
//! answers, and each failure the service turns into the fallback text.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use igdm::service::ai::{
    answer, ChatCompletions, ReplyErrorKind, ReplyRequest, Responder, Role, Turn,
};
use igdm::service::testing;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn completion(text: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{ "index": 0, "finish_reason": "stop",
                      "message": { "role": "assistant", "content": text } }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2 }
    })
}

fn request() -> ReplyRequest {
    ReplyRequest::new("You answer for Example Shop.")
        .turn(Turn::new(Role::User, "hi"))
        .turn(Turn::new(Role::Assistant, "Hello! How can I help?"))
        .turn(Turn::new(Role::User, "do you ship to Lisbon?"))
}

async fn client_for(server: &MockServer) -> ChatCompletions {
    ChatCompletions::new(format!("{}/v1/", server.uri()), "shop-model")
        .api_key("sk-test-secret")
        .timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn the_request_carries_the_model_the_instructions_and_only_the_given_context() {
    testing::on_each_backend(
        the_request_carries_the_model_the_instructions_and_only_the_given_context_on,
    )
    .await;
}

async fn the_request_carries_the_model_the_instructions_and_only_the_given_context_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("  Yes, in 3 days.\n")))
        .expect(1)
        .mount(&server)
        .await;
    let text = client_for(&server).await.reply(&request()).await.unwrap();
    assert_eq!(text, "Yes, in 3 days.");
    let received = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "shop-model",
            "messages": [
                { "role": "system", "content": "You answer for Example Shop." },
                { "role": "user", "content": "hi" },
                { "role": "assistant", "content": "Hello! How can I help?" },
                { "role": "user", "content": "do you ship to Lisbon?" },
            ]
        })
    );
}

#[tokio::test]
async fn error_statuses_are_reported_with_the_providers_message_and_never_the_key() {
    testing::on_each_backend(
        error_statuses_are_reported_with_the_providers_message_and_never_the_key_on,
    )
    .await;
}

async fn error_statuses_are_reported_with_the_providers_message_and_never_the_key_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(
                json!({ "error": { "message": "overloaded", "type": "server_error" } }),
            ),
        )
        .mount(&server)
        .await;
    let e = client_for(&server)
        .await
        .reply(&request())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ReplyErrorKind::Status(503));
    assert!(e.message().contains("overloaded"), "{e}");
    assert!(!e.message().contains("sk-test-secret"), "{e}");
    assert_eq!(e.kind().name(), "ai_http_503");
}

#[tokio::test]
async fn a_slow_model_times_out() {
    testing::on_each_backend(a_slow_model_times_out_on).await;
}

async fn a_slow_model_times_out_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let e = client_for(&server)
        .await
        .reply(&request())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ReplyErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn empty_and_unreadable_answers_are_failures() {
    testing::on_each_backend(empty_and_unreadable_answers_are_failures_on).await;
}

async fn empty_and_unreadable_answers_are_failures_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/empty/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(" ")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/nochoice/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "choices": [] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/html/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .mount(&server)
        .await;
    for (base, want) in [
        ("empty", ReplyErrorKind::EmptyAnswer),
        ("nochoice", ReplyErrorKind::EmptyAnswer),
        ("html", ReplyErrorKind::BadAnswer),
    ] {
        let client = ChatCompletions::new(format!("{}/{base}", server.uri()), "m");
        let e = client.reply(&request()).await.unwrap_err();
        assert_eq!(e.kind(), want, "{base}: {e}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_failure_without_the_url() {
    testing::on_each_backend(an_unreachable_endpoint_is_a_failure_without_the_url_on).await;
}

async fn an_unreachable_endpoint_is_a_failure_without_the_url_on() {
    // a port nobody listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = ChatCompletions::new(format!("http://user:pw@127.0.0.1:{port}/v1"), "m");
    let e = client.reply(&request()).await.unwrap_err();
    assert_eq!(e.kind(), ReplyErrorKind::Unreachable, "{e}");
    assert!(!e.message().contains("pw@"), "{e}");
}

#[tokio::test]
async fn the_fallback_is_sent_for_5xx_timeouts_and_empty_answers_and_the_answer_otherwise() {
    testing::on_each_backend(
        the_fallback_is_sent_for_5xx_timeouts_and_empty_answers_and_the_answer_otherwise_on,
    )
    .await;
}

async fn the_fallback_is_sent_for_5xx_timeouts_and_empty_answers_and_the_answer_otherwise_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ok/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("Sure!")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/down/chat/completions"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/slow/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/blank/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("")))
        .mount(&server)
        .await;
    for (base, want) in [
        ("ok", None),
        ("down", Some(ReplyErrorKind::Status(500))),
        ("slow", Some(ReplyErrorKind::Timeout)),
        ("blank", Some(ReplyErrorKind::EmptyAnswer)),
    ] {
        // the client's own timeout is long; the service's bound (300 ms) applies
        let client = ChatCompletions::new(format!("{}/{base}", server.uri()), "m");
        let r = answer(
            Some(&client),
            &request(),
            "Thanks! We will answer soon.",
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(r.fallback.as_ref().map(|e| e.kind()), want, "{base}");
        let text = if want.is_none() {
            "Sure!"
        } else {
            "Thanks! We will answer soon."
        };
        assert_eq!(r.text, text, "{base}");
    }
}

const ACCOUNT: &str = "17841400000000001";
const SECRET: &str = "ai-app-secret";

/// A service against a wiremock Graph API with an `ai_reply` rule answering every DM; P1 has
/// sent "hello?". The DMs sent, once one is.
async fn one_ai_reply(
    name: &str,
    tune: impl FnOnce(&mut igdm::service::Config),
) -> (igdm::service::RunningService, Vec<serde_json::Value>) {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me/media"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "P1", "message_id": "mid.ai"})),
        )
        .mount(&graph)
        .await;
    let dir = std::env::temp_dir().join(format!(
        "igdm-ai-{name}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let mut config = igdm::service::Config::for_tests(&dir);
    config.database = testing::fresh_database().await;
    config.app_secret = SECRET.into();
    config.graph_base_url = graph.uri();
    config.graph_version = "v1".into();
    tune(&mut config);
    let service = igdm::service::Service::start(config).await.unwrap();
    service
        .connect_account(ACCOUNT, Some("shop"), "IGAA-test", None)
        .await
        .unwrap();
    service
        .put_automations(&format!(
            r#"
account = "{ACCOUNT}"
[[rules]]
id = "assistant"
on = ["message"]
actions = [{{ type = "ai_reply", instructions = "Be brief.", fallback = "We will answer soon." }}]
"#
        ))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now,
        "message": {"mid": "mid.in.1", "text": "hello?"}}]}]})
    .to_string();
    let signature = webhook_verify::meta::sign(SECRET.as_bytes(), body.as_bytes()).unwrap();
    let status = reqwest::Client::new()
        .post(service.webhook_url())
        .header("X-Hub-Signature-256", signature.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut sent = Vec::new();
    for _ in 0..400 {
        sent = graph
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == "/v1/me/messages")
            .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
            .collect();
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    (service, sent)
}

/// Without `[ai]`, an `ai_reply` rule sends its fallback like any DM and the delivery log says
/// why.
#[tokio::test]
async fn without_a_configured_model_the_fallback_is_sent_and_logged() {
    testing::on_each_backend(without_a_configured_model_the_fallback_is_sent_and_logged_on).await;
}

async fn without_a_configured_model_the_fallback_is_sent_and_logged_on() {
    let (service, sent) = one_ai_reply("noconfig", |c| assert!(c.ai.is_none())).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["recipient"]["id"], "P1");
    assert_eq!(sent[0]["message"]["text"], "We will answer soon.");
    let kind: String = sqlx::query_scalar(
        "SELECT error_kind FROM delivery_log WHERE kind = 'ai_reply' AND status = 'ai_fallback'",
    )
    .fetch_one(service.shared().db.pool())
    .await
    .unwrap();
    assert_eq!(kind, "ai_not_configured");
    service.shutdown().await;
}

/// A responder of one's own, plugged in through the configuration.
#[derive(Debug, Default)]
struct Recording {
    asked: std::sync::Mutex<Vec<ReplyRequest>>,
}

#[async_trait::async_trait]
impl Responder for Recording {
    async fn reply(&self, request: &ReplyRequest) -> Result<String, igdm::service::ai::ReplyError> {
        self.asked.lock().unwrap().push(request.clone());
        Ok(format!(
            "You said: {}",
            request.context.last().unwrap().text
        ))
    }
}

#[tokio::test]
async fn a_responder_of_ones_own_answers_in_place_of_the_configured_model() {
    testing::on_each_backend(a_responder_of_ones_own_answers_in_place_of_the_configured_model_on)
        .await;
}

async fn a_responder_of_ones_own_answers_in_place_of_the_configured_model_on() {
    let own = std::sync::Arc::new(Recording::default());
    let plugged = own.clone();
    let (service, sent) = one_ai_reply("own", move |c| c.ai_responder = Some(plugged)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["message"]["text"], "You said: hello?");
    let asked = own.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![ReplyRequest::new("Be brief.").turn(Turn::new(Role::User, "hello?"))]
    );
    service.shutdown().await;
}
