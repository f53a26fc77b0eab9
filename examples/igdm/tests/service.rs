//! The reference service over HTTP, against a `wiremock` Graph API: webhook ingest (handshake,
//! signatures, dedup, malformed JSON) and the pipeline (private reply once, 190, retries, crash
//! and restart).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use igdm::service::{testing, Config, RunningService, Service};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "test-app-secret";
const ACCOUNT: &str = "17841400000000001";

/// A test's data directory and its database (a fresh one per directory on PostgreSQL).
use igdm::service::testing::TestDir as Dir;

fn config(dir: &Dir, graph: &str) -> Config {
    let mut c = Config::for_tests(&dir.0);
    c.database = dir.1.clone();
    c.app_secret = SECRET.into();
    c.verify_token = "vt-123".into();
    c.graph_base_url = graph.into();
    c.graph_version = "v1".into();
    c.api_keys = vec!["api-key-1".into()];
    c
}

async fn post(service: &RunningService, body: &[u8], secret: &str) -> reqwest::Response {
    let signature = webhook_verify::meta::sign(secret.as_bytes(), body).unwrap();
    reqwest::Client::new()
        .post(service.webhook_url())
        .header("X-Hub-Signature-256", signature.to_string())
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn scalar(service: &RunningService, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    // a generous deadline: CI runs every test of the file at once, on both databases
    for _ in 0..1200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dump().await;
    panic!("timed out waiting for: {what}");
}

/// The outbox rows in `status`.
async fn outbox_count(service: &RunningService, status: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE status = $1")
        .bind(status)
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap()
}

/// Comment C1 is refused by the Graph API, which holds the account (`held`, a count that
/// becomes 1); comment C2 is then decided but not called. Both rows stay queued: held, not lost.
async fn refused_once_then_held(service: &RunningService, graph: &MockServer, held: &'static str) {
    assert_eq!(
        post(service, &comment("C1", "P1", "link"), SECRET)
            .await
            .status(),
        200
    );
    eventually("the account is held", async || {
        scalar(service, held).await == 1
    })
    .await;
    assert_eq!(
        post(service, &comment("C2", "P2", "link"), SECRET)
            .await
            .status(),
        200
    );
    eventually("the second comment is decided", async || {
        scalar(service, "SELECT COUNT(*) FROM outbox").await == 2
    })
    .await;
    // a few sender rounds to (wrongly) call again
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(sends_to(&requests, "C1"), 1);
    assert_eq!(sends_to(&requests, "C2"), 0);
    assert_eq!(outbox_count(service, "queued").await, 2);
}

fn comment(id: &str, person: &str, text: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp();
    json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "changes": [{
        "field": "comments",
        "value": {"id": id, "text": text, "from": {"id": person, "username": format!("user{person}")},
                  "media": {"id": "M1", "media_product_type": "REELS"}}}]}]})
    .to_string()
    .into_bytes()
}

fn sends_to(requests: &[Request], comment: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.url.path() == "/v1/me/messages")
        .filter(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            body["recipient"]["comment_id"] == comment
        })
        .count()
}

async fn graph() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me/media"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "M1", "caption": "new reel", "media_product_type": "REELS"}]})))
        .mount(&server)
        .await;
    server
}

const RULES: &str = r#"
account = "17841400000000001"
[[rules]]
id = "link"
on = ["comment"]
match = { mode = "contains", keywords = ["link"] }
actions = [{ type = "private_reply", text = "Here it is: https://example.com" }]
"#;

thread_local! {
    /// The database of the service this test (its thread) started last, for [`dump`].
    static LAST_POOL: std::cell::RefCell<Option<sqlx::AnyPool>> = const { std::cell::RefCell::new(None) };
}

/// Starts a service and remembers its database, so that a timed-out wait shows its state.
async fn start(c: Config) -> RunningService {
    let s = Service::start(c).await.unwrap();
    LAST_POOL.with(|p| *p.borrow_mut() = Some(s.shared().db.pool().clone()));
    s
}

/// Prints the pipeline's state (outbox, account leases, instances, accounts, inbox) of the
/// service started last: what a test that timed out was waiting on.
async fn dump() {
    use sqlx::Row;
    let Some(pool) = LAST_POOL.with(|p| p.borrow().clone()) else {
        return;
    };
    for sql in [
        "SELECT key || ' ' || status || ' attempts=' || attempts || ' next=' || next_attempt_at \
         || ' lease=' || COALESCE(lease_owner, '-') || '/' || COALESCE(lease_until, 0) AS s \
         FROM outbox",
        "SELECT 'lease ' || account || ' ' || owner || ' until=' || lease_until \
         || ' sends_from=' || sends_from AS s FROM account_leases",
        "SELECT 'instance ' || id || ' seen=' || seen_at AS s FROM service_instances",
        "SELECT 'account ' || id || ' ' || status AS s FROM accounts",
        "SELECT 'inbox ' || CAST(id AS TEXT) || ' ' || status AS s FROM inbox",
    ] {
        match sqlx::query(sql).fetch_all(&pool).await {
            Ok(rows) => {
                for row in rows {
                    eprintln!(
                        "state: {}",
                        row.try_get::<String, _>("s").unwrap_or_default()
                    );
                }
            }
            Err(e) => eprintln!("state: cannot read ({e})"),
        }
    }
    eprintln!("state: now={}", chrono::Utc::now().timestamp_millis());
}

async fn started(dir: &Dir, graph: &MockServer) -> RunningService {
    let service = start(config(dir, &graph.uri())).await;
    service
        .connect_account(ACCOUNT, Some("shop"), "IGAA-test-token", None)
        .await
        .unwrap();
    service.put_automations(RULES).await.unwrap();
    service
}

fn sent_ok(mid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"recipient_id": "P", "message_id": mid}))
}

#[tokio::test]
async fn handshake_answers_the_challenge_only_with_the_verify_token() {
    testing::on_each_backend(handshake_answers_the_challenge_only_with_the_verify_token_on).await;
}

async fn handshake_answers_the_challenge_only_with_the_verify_token_on() {
    let dir = Dir::new("handshake").await;
    let service = Service::start(config(&dir, "http://127.0.0.1:9"))
        .await
        .unwrap();
    let url = service.webhook_url();
    let ok = reqwest::get(format!(
        "{url}?hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444"
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = reqwest::get(format!(
        "{url}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444"
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 403);
    service.shutdown().await;
}

#[tokio::test]
async fn bad_signature_is_401_and_nothing_is_stored() {
    testing::on_each_backend(bad_signature_is_401_and_nothing_is_stored_on).await;
}

async fn bad_signature_is_401_and_nothing_is_stored_on() {
    let dir = Dir::new("badsig").await;
    let service = Service::start(config(&dir, "http://127.0.0.1:9"))
        .await
        .unwrap();
    let body = comment("C1", "P1", "LINK");
    assert_eq!(post(&service, &body, "not-the-secret").await.status(), 401);
    let unsigned = reqwest::Client::new()
        .post(service.webhook_url())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(scalar(&service, "SELECT COUNT(*) FROM inbox").await, 0);
    let metrics = reqwest::get(format!("{}/metrics", service.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"igdm_webhooks_rejected_total{reason="signature"} 2"#),
        "{metrics}"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn the_same_body_is_stored_once_and_oversized_bodies_are_refused() {
    testing::on_each_backend(the_same_body_is_stored_once_and_oversized_bodies_are_refused_on)
        .await;
}

async fn the_same_body_is_stored_once_and_oversized_bodies_are_refused_on() {
    let dir = Dir::new("dedup").await;
    let mut c = config(&dir, "http://127.0.0.1:9");
    c.workers = false;
    c.body_limit = 4096;
    let service = start(c).await;
    let body = comment("C1", "P1", "LINK");
    let (a, b) = tokio::join!(post(&service, &body, SECRET), post(&service, &body, SECRET));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(post(&service, &body, SECRET).await.status(), 200);
    assert_eq!(scalar(&service, "SELECT COUNT(*) FROM inbox").await, 1);
    let big = vec![b' '; 5000];
    assert_eq!(post(&service, &big, SECRET).await.status(), 413);
    assert_eq!(scalar(&service, "SELECT COUNT(*) FROM inbox").await, 1);
    service.shutdown().await;
}

#[tokio::test]
async fn concurrent_deliveries_are_all_committed_before_their_200() {
    testing::on_each_backend(concurrent_deliveries_are_all_committed_before_their_200_on).await;
}

async fn concurrent_deliveries_are_all_committed_before_their_200_on() {
    let dir = Dir::new("group").await;
    let mut c = config(&dir, "http://127.0.0.1:9");
    c.workers = false;
    let service = start(c).await;
    let bodies: Vec<Vec<u8>> = (0..64)
        .map(|i| comment(&format!("C{i}"), "P1", "hello"))
        .collect();
    let answers =
        futures_util::future::join_all(bodies.iter().map(|b| post(&service, b, SECRET))).await;
    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(scalar(&service, "SELECT COUNT(*) FROM inbox").await, 64);
    service.shutdown().await;
}

#[tokio::test]
async fn malformed_json_with_a_valid_signature_is_stored_as_rejected() {
    testing::on_each_backend(malformed_json_with_a_valid_signature_is_stored_as_rejected_on).await;
}

async fn malformed_json_with_a_valid_signature_is_stored_as_rejected_on() {
    let dir = Dir::new("malformed").await;
    let service = Service::start(config(&dir, "http://127.0.0.1:9"))
        .await
        .unwrap();
    let answer = post(
        &service,
        b"{\"object\": \"instagram\", \"entry\": [",
        SECRET,
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        scalar(
            &service,
            "SELECT COUNT(*) FROM inbox WHERE status = 'rejected'"
        )
        .await,
        1
    );
    let reason: String = sqlx::query_scalar("SELECT reason FROM inbox")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert!(reason.contains("malformed JSON"), "{reason}");
    let metrics = service.shared().metrics.render();
    assert!(
        metrics.contains(r#"igdm_webhooks_rejected_total{reason="malformed_json"} 1"#),
        "{metrics}"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_comment_gets_one_private_reply_even_when_delivered_twice() {
    testing::on_each_backend(a_comment_gets_one_private_reply_even_when_delivered_twice_on).await;
}

async fn a_comment_gets_one_private_reply_even_when_delivered_twice_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.1"))
        .mount(&graph)
        .await;
    let dir = Dir::new("once").await;
    let service = started(&dir, &graph).await;
    let body = comment("C1", "P1", "LINK please");
    assert_eq!(post(&service, &body, SECRET).await.status(), 200);
    assert_eq!(post(&service, &body, SECRET).await.status(), 200);
    // the same comment in another envelope (Meta redelivers with a new entry time)
    let mut other: serde_json::Value = serde_json::from_slice(&body).unwrap();
    other["entry"][0]["time"] = json!(1);
    assert_eq!(
        post(&service, other.to_string().as_bytes(), SECRET)
            .await
            .status(),
        200
    );
    eventually("the private reply is sent", async || {
        outbox_count(&service, "sent").await == 1
            && scalar(
                &service,
                "SELECT COUNT(*) FROM inbox WHERE status = 'pending'",
            )
            .await
                == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(sends_to(&requests, "C1"), 1);
    let sent: serde_json::Value = serde_json::from_slice(
        &requests
            .iter()
            .find(|r| r.url.path() == "/v1/me/messages")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(sent["message"]["text"], "Here it is: https://example.com");
    // the token went in the header, not the URL
    assert!(requests
        .iter()
        .all(|r| !r.url.as_str().contains("IGAA-test-token")));
    let log: Vec<String> = sqlx::query_scalar("SELECT status FROM delivery_log ORDER BY id")
        .fetch_all(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(log, ["queued", "sent"]);
    let metrics = service.shared().metrics.render();
    assert!(
        metrics.contains("igdm_event_to_send_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"igdm_sends_total{kind="private_reply",outcome="sent"} 1"#),
        "{metrics}"
    );
    // the token is stored sealed only
    let stored: String = sqlx::query_scalar("SELECT token_sealed FROM accounts")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert!(!stored.contains("IGAA-test-token"));
    service.shutdown().await;
}

#[tokio::test]
async fn error_190_flags_the_account_and_nothing_is_sent_after() {
    testing::on_each_backend(error_190_flags_the_account_and_nothing_is_sent_after_on).await;
}

async fn error_190_flags_the_account_and_nothing_is_sent_after_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "x"}})))
        .mount(&graph)
        .await;
    let dir = Dir::new("token").await;
    let service = started(&dir, &graph).await;
    refused_once_then_held(
        &service,
        &graph,
        "SELECT COUNT(*) FROM accounts WHERE status = 'needs_reconnect'",
    )
    .await;
    let kind: String =
        sqlx::query_scalar("SELECT error_kind FROM delivery_log WHERE status = 'failed'")
            .fetch_one(service.shared().db.pool())
            .await
            .unwrap();
    assert_eq!(kind, "token_invalid");
    service.shutdown().await;
}

#[tokio::test]
async fn each_outcome_is_recorded_when_its_call_returns() {
    testing::on_each_backend(each_outcome_is_recorded_when_its_call_returns_on).await;
}

async fn each_outcome_is_recorded_when_its_call_returns_on() {
    // Two comments in one notification: one round of one sender loop claims both. C2's call
    // takes 4 s; C1's returns at once and its row is `sent` while C2's call is still out, so a
    // crash then would leave only C2 ambiguous.
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .and(body_partial_json(
            json!({"recipient": {"comment_id": "C2"}}),
        ))
        .respond_with(sent_ok("m-slow").set_delay(Duration::from_secs(4)))
        .with_priority(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("m-fast"))
        .mount(&graph)
        .await;
    let dir = Dir::new("outcomes").await;
    let mut c = config(&dir, &graph.uri());
    c.sender_loops = 1;
    c.sender_concurrency = 2;
    c.call_timeout_ms = 10_000;
    let service = start(c).await;
    service
        .connect_account(ACCOUNT, Some("shop"), "IGAA-test-token", None)
        .await
        .unwrap();
    service.put_automations(RULES).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let change = |id: &str, person: &str| {
        json!({"field": "comments", "value": {"id": id, "text": "link",
            "from": {"id": person, "username": format!("user{person}")},
            "media": {"id": "M1", "media_product_type": "REELS"}}})
    };
    let body = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now,
        "changes": [change("C1", "P1"), change("C2", "P2")]}]})
    .to_string()
    .into_bytes();
    assert_eq!(post(&service, &body, SECRET).await.status(), 200);
    eventually("C1 recorded as sent while C2's call is out", async || {
        outbox_count(&service, "sent").await == 1 && outbox_count(&service, "sending").await == 1
    })
    .await;
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(sends_to(&requests, "C1"), 1);
    assert_eq!(sends_to(&requests, "C2"), 1, "C2's call is out");
    let mid: String = sqlx::query_scalar("SELECT mid FROM outbox WHERE status = 'sent'")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(mid, "m-fast");
    eventually("C2 recorded when its call returns", async || {
        outbox_count(&service, "sent").await == 2
    })
    .await;
    service.shutdown().await;
}

#[tokio::test]
async fn a_transient_5xx_is_retried_and_then_sent() {
    testing::on_each_backend(a_transient_5xx_is_retried_and_then_sent_on).await;
}

async fn a_transient_5xx_is_retried_and_then_sent_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {
            "message": "An unexpected error has occurred. Please retry your request later.",
            "type": "OAuthException", "code": 2, "is_transient": true}})))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.ok"))
        .with_priority(2)
        .mount(&graph)
        .await;
    let dir = Dir::new("retry").await;
    let service = started(&dir, &graph).await;
    assert_eq!(
        post(&service, &comment("C1", "P1", "link"), SECRET)
            .await
            .status(),
        200
    );
    eventually("sent after retries", async || {
        outbox_count(&service, "sent").await == 1
    })
    .await;
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(sends_to(&requests, "C1"), 3);
    let log: Vec<String> = sqlx::query_scalar("SELECT status FROM delivery_log ORDER BY id")
        .fetch_all(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(log, ["queued", "retry", "retry", "sent"]);
    let attempts = scalar(&service, "SELECT attempts FROM outbox").await;
    assert_eq!(attempts, 3);
    service.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_refusal_holds_the_row_however_long_the_wait() {
    testing::on_each_backend(a_rate_limit_refusal_holds_the_row_however_long_the_wait_on).await;
}

async fn a_rate_limit_refusal_holds_the_row_however_long_the_wait_on() {
    // 750 private replies an hour: the platform may ask to wait up to an hour, longer than the
    // retry policy's in-process `max_wait` (15 minutes). The row is held until then, not failed.
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("Retry-After", "3600")
                .set_body_json(json!({"error": {
                    "message": "Calls to this api have exceeded the rate limit.",
                    "type": "OAuthException", "code": 613, "error_subcode": 2534040,
                    "fbtrace_id": "x"}})),
        )
        .mount(&graph)
        .await;
    let dir = Dir::new("ratelimited").await;
    let service = started(&dir, &graph).await;
    refused_once_then_held(
        &service,
        &graph,
        "SELECT COUNT(*) FROM delivery_log WHERE status = 'held'",
    )
    .await;
    assert_eq!(outbox_count(&service, "failed").await, 0);
    let (kind, attempts, next): (String, i64, i64) = sqlx::query_as(
        "SELECT error_kind, attempts, next_attempt_at FROM outbox WHERE key LIKE '%C1%'",
    )
    .fetch_one(service.shared().db.pool())
    .await
    .unwrap();
    assert_eq!(kind, "rate_limited");
    assert_eq!(attempts, 0, "the refused attempt is given back");
    let soon = chrono::Utc::now().timestamp_millis() + 30 * 60 * 1000;
    assert!(next > soon, "due when the platform's hour is over");
    service.shutdown().await;
}

#[tokio::test]
async fn an_ambiguous_private_reply_failure_is_never_retried() {
    testing::on_each_backend(an_ambiguous_private_reply_failure_is_never_retried_on).await;
}

async fn an_ambiguous_private_reply_failure_is_never_retried_on() {
    let graph = graph().await;
    // a 502 without a Graph error body: it may have been delivered
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .mount(&graph)
        .await;
    let dir = Dir::new("ambiguous").await;
    let service = started(&dir, &graph).await;
    assert_eq!(
        post(&service, &comment("C1", "P1", "link"), SECRET)
            .await
            .status(),
        200
    );
    eventually("failed", async || {
        outbox_count(&service, "failed").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sends_to(&graph.received_requests().await.unwrap(), "C1"), 1);
    service.shutdown().await;
}

#[tokio::test]
async fn a_crash_mid_batch_loses_nothing_and_sends_nothing_twice() {
    testing::on_each_backend(a_crash_mid_batch_loses_nothing_and_sends_nothing_twice_on).await;
}

async fn a_crash_mid_batch_loses_nothing_and_sends_nothing_twice_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.slow").set_delay(Duration::from_millis(400)))
        .mount(&graph)
        .await;
    let dir = Dir::new("crash").await;
    let mut c = config(&dir, &graph.uri());
    c.lease_secs = 1;
    c.sender_concurrency = 2;
    let first = start(c.clone()).await;
    first
        .connect_account(ACCOUNT, None, "IGAA-test-token", None)
        .await
        .unwrap();
    first.put_automations(RULES).await.unwrap();
    let n = 12;
    for i in 0..n {
        let body = comment(&format!("C{i}"), &format!("P{i}"), "link");
        assert_eq!(post(&first, &body, SECRET).await.status(), 200);
    }
    eventually("some sends are in flight", async || {
        scalar(
            &first,
            "SELECT COUNT(*) FROM outbox WHERE status = 'sending'",
        )
        .await
            > 0
    })
    .await;
    first.abort().await;

    let second = start(c).await;
    eventually("every comment is resolved", async || {
        scalar(
            &second,
            "SELECT COUNT(*) FROM inbox WHERE status = 'pending'",
        )
        .await
            == 0
            && scalar(&second, "SELECT COUNT(*) FROM outbox").await == n
            && scalar(
                &second,
                "SELECT COUNT(*) FROM outbox WHERE status NOT IN ('sent', 'failed')",
            )
            .await
                == 0
    })
    .await;
    let requests = graph.received_requests().await.unwrap();
    for i in 0..n {
        let comment = format!("C{i}");
        let sends = sends_to(&requests, &comment);
        assert!(sends <= 1, "{comment} was sent {sends} times");
    }
    // every row that was not sent was in flight during the crash: failed as ambiguous
    let ambiguous = scalar(
        &second,
        "SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND error_kind = 'ambiguous'",
    )
    .await;
    let sent = scalar(&second, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'").await;
    assert_eq!(sent + ambiguous, n);
    assert!(sent > 0);
    second.shutdown().await;
}

#[tokio::test]
async fn management_api_requires_a_key_and_never_returns_tokens() {
    testing::on_each_backend(management_api_requires_a_key_and_never_returns_tokens_on).await;
}

async fn management_api_requires_a_key_and_never_returns_tokens_on() {
    let graph = graph().await;
    let dir = Dir::new("api").await;
    let service = started(&dir, &graph).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/accounts", service.base_url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let answer = http
        .get(&url)
        .bearer_auth("api-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains(ACCOUNT) && !text.contains("IGAA") && !text.contains("pkv1"),
        "{text}"
    );
    // an invalid automation: 422 with its location
    let bad = http
        .post(format!("{}/api/automations", service.base_url()))
        .bearer_auth("api-key-1")
        .body("account = \"A\"\n[[rules]]\nid = \"x\"\nmatch = { mode = \"contains\", keywords = [\"\"] }\nactions = [{ type = \"send_dm\", message = { kind = \"text\", text = \"hi\" } }]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let problems: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(problems["errors"][0]["rule"], "x", "{problems}");
    let media: serde_json::Value = http
        .get(format!(
            "{}/api/media?account={ACCOUNT}",
            service.base_url()
        ))
        .bearer_auth("api-key-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(media["media"][0]["id"], "M1", "{media}");
    // a valid automation is stored, listed, and deleted
    let ok = http
        .post(format!("{}/api/automations", service.base_url()))
        .bearer_auth("api-key-1")
        .body(RULES.replace("id = \"link\"", "id = \"link2\""))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    let list: serde_json::Value = http
        .get(format!(
            "{}/api/automations?account={ACCOUNT}",
            service.base_url()
        ))
        .bearer_auth("api-key-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["automations"].as_array().unwrap().len(), 2, "{list}");
    let gone = http
        .delete(format!(
            "{}/api/automations/{ACCOUNT}/link2",
            service.base_url()
        ))
        .bearer_auth("api-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    service.shutdown().await;
}

#[tokio::test]
async fn echoes_and_read_receipts_update_delivery_status() {
    testing::on_each_backend(echoes_and_read_receipts_update_delivery_status_on).await;
}

async fn echoes_and_read_receipts_update_delivery_status_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.reply.1"))
        .mount(&graph)
        .await;
    let dir = Dir::new("status").await;
    let service = started(&dir, &graph).await;
    assert_eq!(
        post(&service, &comment("C1", "P1", "link"), SECRET)
            .await
            .status(),
        200
    );
    eventually("sent", async || outbox_count(&service, "sent").await == 1).await;
    let now = chrono::Utc::now().timestamp_millis();
    let echo = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": ACCOUNT}, "recipient": {"id": "P1"}, "timestamp": now,
        "message": {"mid": "mid.reply.1", "text": "Here it is: https://example.com", "is_echo": true}}]}]});
    assert_eq!(
        post(&service, echo.to_string().as_bytes(), SECRET)
            .await
            .status(),
        200
    );
    eventually("delivered", async || {
        outbox_count(&service, "delivered").await == 1
    })
    .await;
    let read = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now + 5, "messaging": [{
        "sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now + 5,
        "read": {"mid": "mid.reply.1"}}]}]});
    assert_eq!(
        post(&service, read.to_string().as_bytes(), SECRET)
            .await
            .status(),
        200
    );
    eventually("read", async || outbox_count(&service, "read").await == 1).await;
    let log: Vec<String> = sqlx::query_scalar("SELECT status FROM delivery_log ORDER BY id")
        .fetch_all(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(log, ["queued", "sent", "delivered", "read"]);
    let analytics: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/analytics?account={ACCOUNT}",
            service.base_url()
        ))
        .bearer_auth("api-key-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = &analytics["automations"]["link"];
    assert_eq!(
        (
            &link["triggered"],
            &link["sent"],
            &link["delivered"],
            &link["read"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{analytics}"
    );
    assert_eq!(analytics["per_day"][0]["counts"]["sent"], 1, "{analytics}");
    // the echo of our own message does not pause automation (it came from this app)
    let contact: String = sqlx::query_scalar("SELECT body FROM contacts WHERE id = 'P1'")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    let contact: serde_json::Value = serde_json::from_str(&contact).unwrap();
    assert!(contact["paused_until"].is_null(), "{contact}");
    service.shutdown().await;
}

#[tokio::test]
async fn the_connect_flow_stores_a_sealed_long_lived_token() {
    testing::on_each_backend(the_connect_flow_stores_a_sealed_long_lived_token_on).await;
}

async fn the_connect_flow_stores_a_sealed_long_lived_token_on() {
    use wiremock::matchers::query_param;
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "IGAA-short", "user_id": ACCOUNT, "permissions": ["instagram_business_basic"]})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(query_param("grant_type", "ig_exchange_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "IGAA-long-lived", "token_type": "bearer", "expires_in": 5184000})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ig-app-scoped", "user_id": ACCOUNT, "username": "shop"})))
        .mount(&graph)
        .await;
    let dir = Dir::new("connect").await;
    let mut c = config(&dir, &graph.uri());
    c.oauth_api_base_url = graph.uri();
    c.oauth_authorize_url = format!("{}/oauth/authorize", graph.uri());
    let service = start(c).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = http
        .get(format!("{}/connect/instagram", service.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let location = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location
        .as_str()
        .starts_with(&format!("{}/oauth/authorize?", graph.uri())));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(
        query["redirect_uri"],
        format!("{}/connect/instagram/callback", service.base_url())
    );
    // a forged state is refused
    let forged = http
        .get(format!(
            "{}/connect/instagram/callback?code=abc&state=forged",
            service.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let done = http
        .get(format!(
            "{}/connect/instagram/callback?code=abc%23_&state={}",
            service.base_url(),
            query["state"]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    let row: (String, String, Option<i64>) =
        sqlx::query_as("SELECT status, token_sealed, token_expires_at FROM accounts WHERE id = $1")
            .bind(ACCOUNT)
            .fetch_one(service.shared().db.pool())
            .await
            .unwrap();
    assert_eq!(row.0, "active");
    assert!(!row.1.contains("IGAA"));
    assert!(row.2.unwrap() > chrono::Utc::now().timestamp_millis() + 50 * 86_400_000);
    let opened = service.shared().vault.open(ACCOUNT, &row.1).unwrap();
    assert_eq!(opened.expose(), "IGAA-long-lived");
    let requests = graph.received_requests().await.unwrap();
    assert!(requests
        .iter()
        .any(|r| r.url.path() == "/v1/me/subscribed_apps"));
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM media").await,
        1,
        "media synced"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn tokens_close_to_expiry_are_refreshed_and_190_flags_the_account() {
    testing::on_each_backend(tokens_close_to_expiry_are_refreshed_and_190_flags_the_account_on)
        .await;
}

async fn tokens_close_to_expiry_are_refreshed_and_190_flags_the_account_on() {
    let graph = graph().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer IGAA-old",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "IGAA-refreshed", "token_type": "bearer", "expires_in": 5184000})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer IGAA-revoked",
        ))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException", "code": 190}})))
        .mount(&graph)
        .await;
    let dir = Dir::new("refresh").await;
    let mut c = config(&dir, &graph.uri());
    c.workers = false;
    let service = start(c).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(3);
    let later = chrono::Utc::now() + chrono::Duration::days(50);
    service
        .connect_account("A1", None, "IGAA-old", Some(soon))
        .await
        .unwrap();
    service
        .connect_account("A2", None, "IGAA-revoked", Some(soon))
        .await
        .unwrap();
    service
        .connect_account("A3", None, "IGAA-fine", Some(later))
        .await
        .unwrap();
    assert_eq!(service.refresh_tokens().await.unwrap(), 1);
    let sealed: String = sqlx::query_scalar("SELECT token_sealed FROM accounts WHERE id = 'A1'")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(
        service.shared().vault.open("A1", &sealed).unwrap().expose(),
        "IGAA-refreshed"
    );
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM accounts ORDER BY id")
            .fetch_all(service.shared().db.pool())
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("A1".to_string(), "active".to_string()),
            ("A2".to_string(), "needs_reconnect".to_string()),
            ("A3".to_string(), "active".to_string())
        ]
    );
    let refreshes = graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/refresh_access_token")
        .count();
    assert_eq!(refreshes, 2, "A3 is not due");
    service.shutdown().await;
}

#[tokio::test]
async fn a_flow_delay_is_resumed_by_the_wake_worker() {
    testing::on_each_backend(a_flow_delay_is_resumed_by_the_wake_worker_on).await;
}

async fn a_flow_delay_is_resumed_by_the_wake_worker_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.flow"))
        .mount(&graph)
        .await;
    let dir = Dir::new("wake").await;
    let service = start(config(&dir, &graph.uri())).await;
    service
        .connect_account(ACCOUNT, None, "IGAA-test-token", None)
        .await
        .unwrap();
    service
        .put_automations(
            r#"
account = "17841400000000001"
[[rules]]
id = "hello"
on = ["message"]
match = { mode = "contains", keywords = ["hello"] }
actions = [{ type = "start_flow", flow = "later" }]
[[flows]]
id = "later"
start = "first"
steps = [
  { id = "first", type = "message", text = "right away", next = "pause" },
  { id = "pause", type = "delay", wait = "1s", next = "second" },
  { id = "second", type = "message", text = "a second later", next = "done" },
  { id = "done", type = "end" },
]
"#,
        )
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let dm = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": "P9"}, "recipient": {"id": ACCOUNT}, "timestamp": now,
        "message": {"mid": "mid.in.1", "text": "hello there"}}]}]});
    assert_eq!(
        post(&service, dm.to_string().as_bytes(), SECRET)
            .await
            .status(),
        200
    );
    eventually("both flow messages are sent", async || {
        outbox_count(&service, "sent").await == 2
    })
    .await;
    let texts: Vec<String> = graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/me/messages")
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["message"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["right away", "a second later"]);
    assert_eq!(scalar(&service, "SELECT COUNT(*) FROM wakes").await, 0);
    service.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_a_body_that_is_no_notification_still_processes_the_rest() {
    testing::on_each_backend(
        a_batch_with_a_body_that_is_no_notification_still_processes_the_rest_on,
    )
    .await;
}

async fn a_batch_with_a_body_that_is_no_notification_still_processes_the_rest_on() {
    let graph = graph().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(sent_ok("mid.b"))
        .mount(&graph)
        .await;
    let dir = Dir::new("batch").await;
    let mut c = config(&dir, &graph.uri());
    c.workers = false;
    let ingest_only = start(c.clone()).await;
    ingest_only
        .connect_account(ACCOUNT, None, "IGAA-test-token", None)
        .await
        .unwrap();
    ingest_only.put_automations(RULES).await.unwrap();
    for body in [
        comment("C1", "P1", "link"),
        b"\"just a string\"".to_vec(),
        comment("C2", "P2", "no keyword here"),
        comment("C3", "P3", "LINK"),
    ] {
        assert_eq!(post(&ingest_only, &body, SECRET).await.status(), 200);
    }
    ingest_only.shutdown().await;
    // the workers start with all four waiting: they are claimed in one batch
    c.workers = true;
    let service = start(c).await;
    eventually("processed and sent", async || {
        scalar(
            &service,
            "SELECT COUNT(*) FROM inbox WHERE status = 'pending'",
        )
        .await
            == 0
            && outbox_count(&service, "sent").await == 2
    })
    .await;
    assert_eq!(
        scalar(
            &service,
            "SELECT COUNT(*) FROM inbox WHERE status = 'rejected'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &service,
            "SELECT COUNT(*) FROM events WHERE outcome = 'no_match'"
        )
        .await,
        1
    );
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(
        (sends_to(&requests, "C1"), sends_to(&requests, "C3")),
        (1, 1)
    );
    service.shutdown().await;
}

#[tokio::test]
async fn automations_saved_while_the_engine_reloads_are_never_lost() {
    testing::on_each_backend(automations_saved_while_the_engine_reloads_are_never_lost_on).await;
}

async fn automations_saved_while_the_engine_reloads_are_never_lost_on() {
    // The ownership round reloads the engine when another instance changed the automations; a
    // reload that read the database before a save must not install its older engine after it.
    let dir = Dir::new("reload").await;
    let service = start(config(&dir, "http://127.0.0.1:9")).await;
    service
        .connect_account(ACCOUNT, None, "IGAA-test-token", None)
        .await
        .unwrap();
    let shared = service.shared().clone();
    for i in 0..20 {
        let file = format!(
            "account = \"{ACCOUNT}\"\n[[rules]]\nid = \"r{i}\"\non = [\"comment\"]\n\
             match = {{ mode = \"contains\", keywords = [\"k{i}\"] }}\n\
             actions = [{{ type = \"private_reply\", text = \"hi\" }}]\n"
        );
        let reloads = (0..4).map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move { shared.reload_engine().await.unwrap() })
        });
        let reloads: Vec<_> = reloads.collect();
        service.put_automations(&file).await.unwrap();
        for r in reloads {
            r.await.unwrap();
        }
        let engine = shared.engine();
        assert_eq!(engine.rules().len(), i + 1, "round {i}");
        assert!(engine.rules().get(&format!("r{i}")).is_some(), "round {i}");
    }
    service.shutdown().await;
}
