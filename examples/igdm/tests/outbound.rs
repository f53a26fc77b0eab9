//! Webhooks to and from other tools, over HTTP: subscriptions through the management API,
//! deliveries signed with Standard Webhooks (verified here with `webhook-verify`), retries
//! after 500s, the delivery log and manual redelivery; the signed inbound endpoint updating
//! contacts and sending DMs, refusing bad signatures (401) and bad bodies (422, located).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use igdm::service::{testing, Config, RunningService, Service};
use serde_json::{json, Value};
use webhook_verify::standard::{Headers, Secret, Webhook};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "test-app-secret";
const ACCOUNT: &str = "17841400000000001";
const KEY: &str = "api-key-1";

/// A test's data directory and its database (a fresh one per directory on PostgreSQL).
use igdm::service::testing::TestDir as Dir;

fn config(dir: &Dir, graph: &str) -> Config {
    let mut c = Config::for_tests(&dir.0);
    c.database = dir.1.clone();
    c.app_secret = SECRET.into();
    c.graph_base_url = graph.into();
    c.graph_version = "v1".into();
    c.api_keys = vec![KEY.into()];
    c
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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "P", "message_id": "mid.out"})),
        )
        .mount(&server)
        .await;
    server
}

const RULES: &str = r#"
account = "17841400000000001"
[[rules]]
id = "price"
on = ["message"]
match = { mode = "contains", keywords = ["price"] }
actions = [
  { type = "send_dm", message = { kind = "text", text = "Prices: https://example.com/p" } },
  { type = "add_tag", tag = "lead" },
]
"#;

async fn started(dir: &Dir, graph: &MockServer, tune: impl FnOnce(&mut Config)) -> RunningService {
    let mut c = config(dir, &graph.uri());
    tune(&mut c);
    let service = Service::start(c).await.unwrap();
    service
        .connect_account(ACCOUNT, Some("shop"), "IGAA-test-token", None)
        .await
        .unwrap();
    service.put_automations(RULES).await.unwrap();
    service
}

async fn post_meta(service: &RunningService, body: &Value) -> u16 {
    let body = body.to_string().into_bytes();
    let signature = webhook_verify::meta::sign(SECRET.as_bytes(), &body).unwrap();
    reqwest::Client::new()
        .post(service.webhook_url())
        .header("X-Hub-Signature-256", signature.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn dm(person: &str, mid: &str, text: &str) -> Value {
    dm_to(ACCOUNT, person, mid, text)
}

fn dm_to(account: &str, person: &str, mid: &str, text: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"object": "instagram", "entry": [{"id": account, "time": now, "messaging": [{
        "sender": {"id": person}, "recipient": {"id": account}, "timestamp": now,
        "message": {"mid": mid, "text": text}}]}]})
}

/// A management API call with the operator key; the status and the JSON answer.
async fn api(
    service: &RunningService,
    verb: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api_as(service, KEY, verb, path, body).await
}

/// A management API call with `credential` (an API key or a session); the status and the JSON
/// answer.
async fn api_as(
    service: &RunningService,
    credential: &str,
    verb: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(verb, format!("{}{path}", service.base_url()))
        .bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn scalar(service: &RunningService, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn verify(secret: &str, request: &Request) -> Value {
    let h = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
    let webhook = Webhook::new(Secret::parse(secret).unwrap());
    webhook
        .verify(
            &Headers::new(
                h("webhook-id"),
                h("webhook-timestamp"),
                h("webhook-signature"),
            ),
            &request.body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
    serde_json::from_slice(&request.body).unwrap()
}

#[tokio::test]
async fn events_are_delivered_signed_retried_after_500s_logged_and_redelivered() {
    testing::on_each_backend(
        events_are_delivered_signed_retried_after_500s_logged_and_redelivered_on,
    )
    .await;
}

async fn events_are_delivered_signed_retried_after_500s_logged_and_redelivered_on() {
    let dir = Dir::new("deliver").await;
    let graph = graph().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/igdm"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/igdm"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let service = started(&dir, &graph, |_| {}).await;
    let (status, created) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({
            "url": format!("{}/hooks/igdm", receiver.uri()),
            "event_types": ["message.received", "automation.fired", "contact.updated"],
            "account": ACCOUNT,
            "description": "CRM sync",
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let sub = created["id"].as_str().unwrap().to_string();
    // the secret is shown once: never listed
    let (_, listed) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/subscriptions",
        None,
    )
    .await;
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    assert!(!listed.to_string().contains("whsec_"));

    assert_eq!(
        post_meta(&service, &dm("P1", "mid.in.1", "what's the price?")).await,
        200
    );
    eventually("three deliveries delivered", async || {
        scalar(
            &service,
            "SELECT COUNT(*) FROM outbound_deliveries WHERE status = 'delivered'",
        )
        .await
            == 3
    })
    .await;

    // every request is signed with the subscription's secret; two got a 500 and were retried
    // with the same webhook-id
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 5, "3 deliveries + 2 retries");
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &requests {
        let body = verify(&secret, r);
        let id = r
            .headers
            .get("webhook-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("msg_"));
        by_id.entry(id).or_default().push(body);
    }
    assert_eq!(by_id.len(), 3);
    let mut types: Vec<String> = by_id
        .values()
        .map(|bodies| {
            assert!(
                bodies.windows(2).all(|w| w[0] == w[1]),
                "a retry has the same body"
            );
            bodies[0]["type"].as_str().unwrap().to_string()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["automation.fired", "contact.updated", "message.received"]
    );
    let all: Vec<&Value> = by_id.values().map(|b| &b[0]).collect();
    let message = all
        .iter()
        .find(|b| b["type"] == "message.received")
        .unwrap();
    assert_eq!(message["data"]["text"], "what's the price?");
    assert_eq!(message["data"]["contact"], "P1");
    let fired = all
        .iter()
        .find(|b| b["type"] == "automation.fired")
        .unwrap();
    assert_eq!(fired["data"]["rule"], "price");
    assert_eq!(fired["data"]["actions"], json!(["send_dm", "add_tag"]));
    let contact = all.iter().find(|b| b["type"] == "contact.updated").unwrap();
    assert_eq!(contact["data"]["tags"], json!(["lead"]));

    // the delivery log, with filters, and each attempt
    let (_, log) = api(
        &service,
        reqwest::Method::GET,
        &format!("/api/webhooks/deliveries?subscription={sub}&status=delivered"),
        None,
    )
    .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 3);
    let (_, only) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries?event_type=automation.fired",
        None,
    )
    .await;
    assert_eq!(only["deliveries"].as_array().unwrap().len(), 1);
    let (_, of_p1) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries?contact=P1",
        None,
    )
    .await;
    assert_eq!(of_p1["deliveries"].as_array().unwrap().len(), 3);
    let (_, of_p2) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries?contact=P2",
        None,
    )
    .await;
    assert_eq!(of_p2["deliveries"].as_array().unwrap().len(), 0);
    let (_, none) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries?status=failed",
        None,
    )
    .await;
    assert_eq!(none["deliveries"].as_array().unwrap().len(), 0);
    let retried = by_id
        .iter()
        .find(|(_, bodies)| bodies.len() > 1)
        .map(|(id, _)| id.clone())
        .unwrap();
    let (_, one) = api(
        &service,
        reqwest::Method::GET,
        &format!("/api/webhooks/deliveries/{retried}"),
        None,
    )
    .await;
    let attempts = one["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{one}");
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts.last().unwrap()["outcome"], "delivered");
    assert_eq!(attempts.last().unwrap()["status_code"], 204);
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM outbound_attempts").await,
        5
    );

    // manual redelivery: the same webhook-id and body again
    let (status, _) = api(
        &service,
        reqwest::Method::POST,
        &format!("/api/webhooks/deliveries/{retried}/redeliver"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    eventually("the redelivery arrives", async || {
        receiver.received_requests().await.unwrap().len() == 6
    })
    .await;
    let last = receiver.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(
        last.headers.get("webhook-id").unwrap().to_str().unwrap(),
        retried
    );
    assert_eq!(verify(&secret, &last), by_id[&retried][0]);
    let (status, _) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/deliveries/msg_nope/redeliver",
        None,
    )
    .await;
    assert_eq!(status, 404);
    service.shutdown().await;
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_after_the_attempt_limit() {
    testing::on_each_backend(a_receiver_that_keeps_failing_is_given_up_after_the_attempt_limit_on)
        .await;
}

async fn a_receiver_that_keeps_failing_is_given_up_after_the_attempt_limit_on() {
    let dir = Dir::new("giveup").await;
    let graph = graph().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&receiver)
        .await;
    let service = started(&dir, &graph, |c| c.outbound.max_attempts = 3).await;
    let (status, _) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "url": receiver.uri(), "event_types": ["message.received"] })),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        post_meta(&service, &dm("P2", "mid.in.2", "hello")).await,
        200
    );
    eventually("the delivery fails", async || {
        scalar(
            &service,
            "SELECT COUNT(*) FROM outbound_deliveries WHERE status = 'failed'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(receiver.received_requests().await.unwrap().len(), 3);
    let (_, log) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries?status=failed",
        None,
    )
    .await;
    let d = &log["deliveries"][0];
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status_code"], 503);
    // another event type is not delivered to this subscription
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM outbound_deliveries").await,
        1
    );
    service.shutdown().await;
}

#[tokio::test]
async fn subscriptions_are_validated_with_located_errors_and_managed() {
    testing::on_each_backend(subscriptions_are_validated_with_located_errors_and_managed_on).await;
}

async fn subscriptions_are_validated_with_located_errors_and_managed_on() {
    let dir = Dir::new("crud").await;
    let graph = graph().await;
    let service = started(&dir, &graph, |_| {}).await;
    let (status, body) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(
            json!({ "url": "ftp://x", "event_types": ["message.received", "message.sent"],
                     "account": "nobody" }),
        ),
    )
    .await;
    assert_eq!(status, 422);
    let paths: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["url", "event_types[1]"], "{body}");
    // an account that is not one of the caller's organization: 404, like the rest of the API
    let (status, body) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(
            json!({ "url": "https://example.com/h", "event_types": ["message.received"],
                     "account": "nobody" }),
        ),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM webhook_subscriptions").await,
        0
    );
    let (status, body) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "url": "https://example.com/h", "event_types": "all" })),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["path"], "event_types", "{body}");
    // without the API key: refused
    let response = reqwest::Client::new()
        .get(format!("{}/api/webhooks/subscriptions", service.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let (status, created) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "url": "https://example.com/h", "event_types": ["contact.updated"] })),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, changed) = api(
        &service,
        reqwest::Method::PATCH,
        &format!("/api/webhooks/subscriptions/{id}"),
        Some(json!({ "enabled": false, "event_types": ["contact.updated", "automation.fired"] })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["enabled"], false);
    assert_eq!(
        changed["event_types"],
        json!(["contact.updated", "automation.fired"])
    );
    // a disabled subscription receives nothing
    assert_eq!(
        post_meta(&service, &dm("P3", "mid.in.3", "price?")).await,
        200
    );
    eventually("the DM is processed", async || {
        scalar(&service, "SELECT COUNT(*) FROM events").await == 1
    })
    .await;
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM outbound_deliveries").await,
        0
    );
    let path = format!("/api/webhooks/subscriptions/{id}");
    assert_eq!(
        api(&service, reqwest::Method::DELETE, &path, None).await.0,
        204
    );
    assert_eq!(
        api(&service, reqwest::Method::GET, &path, None).await.0,
        404
    );
    assert_eq!(
        api(&service, reqwest::Method::DELETE, &path, None).await.0,
        404
    );
    service.shutdown().await;
}

/// POSTs a Standard-Webhooks-signed inbound request.
async fn inbound(
    service: &RunningService,
    endpoint: &str,
    secret: &str,
    webhook_id: &str,
    body: &[u8],
) -> (u16, Value) {
    let ts = chrono::Utc::now().timestamp();
    let signature = Webhook::new(Secret::parse(secret).unwrap()).sign(webhook_id, ts, body);
    let response = reqwest::Client::new()
        .post(format!("{}{endpoint}", service.base_url()))
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn contact(service: &RunningService, id: &str) -> Option<Value> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
            .bind(ACCOUNT)
            .bind(id.to_string())
            .fetch_optional(service.shared().db.pool())
            .await
            .unwrap();
    body.map(|b| serde_json::from_str(&b).unwrap())
}

fn dms_to(requests: &[Request], person: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.url.path() == "/v1/me/messages")
        .filter_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (body["recipient"]["id"] == person).then(|| {
                body["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .collect()
}

#[tokio::test]
async fn inbound_webhooks_update_contacts_and_send_dms_and_refuse_bad_signatures_and_bodies() {
    testing::on_each_backend(
        inbound_webhooks_update_contacts_and_send_dms_and_refuse_bad_signatures_and_bodies_on,
    )
    .await;
}

async fn inbound_webhooks_update_contacts_and_send_dms_and_refuse_bad_signatures_and_bodies_on() {
    let dir = Dir::new("inbound").await;
    let graph = graph().await;
    let service = started(&dir, &graph, |_| {}).await;
    let (status, created) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "direction": "inbound", "account": ACCOUNT, "description": "from Zapier" })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let endpoint = format!("/hooks/inbound/{id}");
    assert!(created["endpoint"].as_str().unwrap().ends_with(&endpoint));
    // a CRM listening to contact updates
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&crm)
        .await;
    let (status, listening) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "url": crm.uri(), "event_types": ["contact.updated"], "account": ACCOUNT })),
    )
    .await;
    assert_eq!(status, 201);
    let crm_secret = listening["secret"].as_str().unwrap().to_string();
    // P5 messaged us (the 24-hour window is open); P6 never did
    assert_eq!(post_meta(&service, &dm("P5", "mid.in.5", "hi")).await, 200);
    eventually("the DM is processed", async || {
        contact(&service, "P5").await.is_some()
    })
    .await;

    let body = json!({
        "contacts": [{ "id": "P5", "add_tags": ["vip"], "fields": { "plan": "pro", "seats": 3 } }],
        "messages": [{ "contact": "P5", "text": "Your order shipped!" }],
    })
    .to_string();
    let (status, answer) = inbound(&service, &endpoint, &secret, "evt_1", body.as_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let c = contact(&service, "P5").await.unwrap();
    assert_eq!(c["tags"], json!(["vip"]));
    assert_eq!(c["fields"], json!({ "plan": "pro", "seats": "3" }));
    eventually("the DM is sent", async || {
        dms_to(&graph.received_requests().await.unwrap(), "P5") == ["Your order shipped!"]
    })
    .await;
    // the update is published to the CRM, signed with its own secret
    eventually("the CRM hears of the update", async || {
        !crm.received_requests().await.unwrap().is_empty()
    })
    .await;
    let update = verify(&crm_secret, &crm.received_requests().await.unwrap()[0]);
    assert_eq!(update["type"], "contact.updated");
    assert_eq!(update["data"]["contact"], "P5");
    assert_eq!(update["data"]["tags"], json!(["vip"]));
    assert_eq!(update["data"]["fields"]["plan"], "pro");
    // the same delivery again (a retry by the other tool): no second DM
    let (status, answer) = inbound(&service, &endpoint, &secret, "evt_1", body.as_bytes()).await;
    assert_eq!(status, 202);
    assert_eq!(answer["duplicate"], true);

    // a bad signature: 401, nothing applied
    let tagging = json!({ "contacts": [{ "id": "P5", "add_tags": ["hacked"] }] }).to_string();
    let other = Secret::from_key_bytes(&[7u8; 32]).unwrap().to_whsec();
    let (status, _) = inbound(&service, &endpoint, &other, "evt_2", tagging.as_bytes()).await;
    assert_eq!(status, 401);
    let response = reqwest::Client::new()
        .post(format!("{}{endpoint}", service.base_url()))
        .body(tagging.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "unsigned");
    assert_eq!(
        contact(&service, "P5").await.unwrap()["tags"],
        json!(["vip"])
    );

    // bad bodies: 422 with the location
    let (status, answer) = inbound(
        &service,
        &endpoint,
        &secret,
        "evt_3",
        br#"{"contacts": [{"id": 5}]}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(answer["errors"][0]["path"], "contacts[0].id", "{answer}");
    let (status, answer) = inbound(
        &service,
        &endpoint,
        &secret,
        "evt_4",
        b"{\n  \"contacts\": [,]\n}",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(answer["errors"][0]["line"], 2, "{answer}");
    // a DM outside the window refuses the whole request: the tag is not applied either
    let closed = json!({
        "contacts": [{ "id": "P5", "add_tags": ["should-not-stick"] }],
        "messages": [{ "contact": "P5", "text": "ok" }, { "contact": "P6", "text": "hello" },
                     { "contact": "P5", "text": "" }],
    })
    .to_string();
    let (status, answer) = inbound(&service, &endpoint, &secret, "evt_5", closed.as_bytes()).await;
    assert_eq!(status, 422);
    let paths: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["messages[2].text"], "{answer}");
    let closed = json!({
        "contacts": [{ "id": "P5", "add_tags": ["should-not-stick"] }],
        "messages": [{ "contact": "P6", "text": "hello" }],
    })
    .to_string();
    let (status, answer) = inbound(&service, &endpoint, &secret, "evt_6", closed.as_bytes()).await;
    assert_eq!(status, 422);
    assert_eq!(answer["errors"][0]["path"], "messages[0]", "{answer}");
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("24 hours"));
    assert_eq!(
        contact(&service, "P5").await.unwrap()["tags"],
        json!(["vip"])
    );
    assert!(contact(&service, "P6").await.is_none());

    // a new secret: the old one stops working at once
    let (status, rotated) = api(
        &service,
        reqwest::Method::POST,
        &format!("/api/webhooks/subscriptions/{id}/secret"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let tag = json!({ "contacts": [{ "id": "P5", "add_tags": ["rotated"] }] }).to_string();
    let (status, _) = inbound(&service, &endpoint, &secret, "evt_8", tag.as_bytes()).await;
    assert_eq!(status, 401);
    let (status, _) = inbound(&service, &endpoint, &new_secret, "evt_8", tag.as_bytes()).await;
    assert_eq!(status, 202);
    assert_eq!(
        contact(&service, "P5").await.unwrap()["tags"],
        json!(["rotated", "vip"])
    );

    // an absurd webhook-id
    let long = "x".repeat(300);
    let (status, _) = inbound(&service, &endpoint, &new_secret, &long, b"{}").await;
    assert_eq!(status, 400);

    // an unknown endpoint
    let (status, _) = inbound(&service, "/hooks/inbound/sub_nope", &secret, "evt_7", b"{}").await;
    assert_eq!(status, 404);
    assert_eq!(
        dms_to(&graph.received_requests().await.unwrap(), "P5").len(),
        1
    );
    service.shutdown().await;
}

/// The accounts whose events a subscription received.
async fn accounts_heard_by(service: &RunningService, subscription: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT account FROM outbound_deliveries WHERE subscription_id = $1 ORDER BY created_at",
    )
    .bind(subscription.to_string())
    .fetch_all(service.shared().db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn p4_subscriptions_belong_to_an_organization_and_hear_only_its_accounts() {
    testing::on_each_backend(
        p4_subscriptions_belong_to_an_organization_and_hear_only_its_accounts_on,
    )
    .await;
}

async fn p4_subscriptions_belong_to_an_organization_and_hear_only_its_accounts_on() {
    const ACCOUNT_B: &str = "17841400000000002";
    let dir = Dir::new("orgs").await;
    let graph = graph().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    // the operator's account (the bootstrap organization) and organization B's
    let service = started(&dir, &graph, |_| {}).await;
    let signed_up = reqwest::Client::new()
        .post(format!("{}/api/signup", service.base_url()))
        .json(
            &json!({ "email": "owner@b.example", "password": "correct horse battery",
                       "organization": "B" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    let cookie = signed_up.headers()["set-cookie"].to_str().unwrap();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("igdm_session=")
        .unwrap()
        .to_string();
    let org_b = signed_up.json::<Value>().await.unwrap()["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    service
        .connect_account_in(&org_b, ACCOUNT_B, Some("b_shop"), "IGAA-b-token")
        .await
        .unwrap();

    // both subscribe without naming an account: each is bound to its own organization
    let subscribe = json!({ "url": receiver.uri(), "event_types": ["message.received"] });
    let (status, ours) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(subscribe.clone()),
    )
    .await;
    assert_eq!(status, 201, "{ours}");
    assert_eq!(ours["org_id"], "bootstrap");
    let ours = ours["id"].as_str().unwrap().to_string();
    let (status, theirs) = api_as(
        &service,
        &session,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(subscribe),
    )
    .await;
    assert_eq!(status, 201, "{theirs}");
    assert_eq!(theirs["org_id"], org_b.as_str());
    let theirs = theirs["id"].as_str().unwrap().to_string();
    // B cannot name the operator's account, in either direction
    for body in [
        json!({ "url": receiver.uri(), "event_types": ["message.received"], "account": ACCOUNT }),
        json!({ "direction": "inbound", "account": ACCOUNT }),
    ] {
        let (status, answer) = api_as(
            &service,
            &session,
            reqwest::Method::POST,
            "/api/webhooks/subscriptions",
            Some(body),
        )
        .await;
        assert_eq!(status, 404, "{answer}");
    }

    // a DM to each account: each organization's subscription hears only its own account
    assert_eq!(
        post_meta(&service, &dm("P1", "mid.o.1", "hello")).await,
        200
    );
    assert_eq!(
        post_meta(&service, &dm_to(ACCOUNT_B, "P2", "mid.o.2", "hello")).await,
        200
    );
    eventually("both events are delivered", async || {
        scalar(
            &service,
            "SELECT COUNT(*) FROM outbound_deliveries WHERE status = 'delivered'",
        )
        .await
            == 2
    })
    .await;
    assert_eq!(accounts_heard_by(&service, &ours).await, [ACCOUNT]);
    assert_eq!(accounts_heard_by(&service, &theirs).await, [ACCOUNT_B]);

    // each sees only its own subscriptions and deliveries
    let (_, listed) = api_as(
        &service,
        &session,
        reqwest::Method::GET,
        "/api/webhooks/subscriptions",
        None,
    )
    .await;
    let listed = listed["subscriptions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], theirs.as_str());
    let (_, log) = api_as(
        &service,
        &session,
        reqwest::Method::GET,
        "/api/webhooks/deliveries",
        None,
    )
    .await;
    let log = log["deliveries"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["account"], ACCOUNT_B);
    let (_, operator_log) = api(
        &service,
        reqwest::Method::GET,
        "/api/webhooks/deliveries",
        None,
    )
    .await;
    let operator_delivery = operator_log["deliveries"][0]["id"].as_str().unwrap();
    assert_eq!(operator_log["deliveries"].as_array().unwrap().len(), 1);
    for (verb, path) in [
        (
            reqwest::Method::GET,
            format!("/api/webhooks/deliveries/{operator_delivery}"),
        ),
        (
            reqwest::Method::POST,
            format!("/api/webhooks/deliveries/{operator_delivery}/redeliver"),
        ),
        (
            reqwest::Method::GET,
            format!("/api/webhooks/subscriptions/{ours}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/webhooks/subscriptions/{ours}"),
        ),
    ] {
        let (status, answer) = api_as(&service, &session, verb, &path, None).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM webhook_subscriptions").await,
        2
    );

    // an inbound subscription of the operator's account writes to it...
    let (status, inbound_sub) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(json!({ "direction": "inbound", "account": ACCOUNT })),
    )
    .await;
    assert_eq!(status, 201);
    let endpoint = format!("/hooks/inbound/{}", inbound_sub["id"].as_str().unwrap());
    let secret = inbound_sub["secret"].as_str().unwrap();
    let tag = |t: &str| json!({ "contacts": [{ "id": "P1", "add_tags": [t] }] }).to_string();
    let (status, _) = inbound(&service, &endpoint, secret, "evt_1", tag("a").as_bytes()).await;
    assert_eq!(status, 202);
    // ...but once the account belongs to another organization, neither the operator's inbound
    // nor its outbound subscriptions reach it any more: B's do
    sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2")
        .bind(&org_b)
        .bind(ACCOUNT)
        .execute(service.shared().db.pool())
        .await
        .unwrap();
    let (status, answer) = inbound(
        &service,
        &endpoint,
        secret,
        "evt_2",
        tag("moved").as_bytes(),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(contact(&service, "P1").await.unwrap()["tags"], json!(["a"]));
    assert_eq!(
        post_meta(&service, &dm("P3", "mid.o.3", "hello")).await,
        200
    );
    eventually("the event is delivered", async || {
        scalar(
            &service,
            "SELECT COUNT(*) FROM outbound_deliveries WHERE status = 'delivered'",
        )
        .await
            == 3
    })
    .await;
    assert_eq!(accounts_heard_by(&service, &ours).await, [ACCOUNT]);
    assert_eq!(
        accounts_heard_by(&service, &theirs).await,
        [ACCOUNT_B, ACCOUNT]
    );
    service.shutdown().await;
}

#[tokio::test]
async fn private_network_targets_are_refused_unless_the_operator_allows_them() {
    testing::on_each_backend(
        private_network_targets_are_refused_unless_the_operator_allows_them_on,
    )
    .await;
}

/// Server-side request forgery: a member must not make the service call its own network.
async fn private_network_targets_are_refused_unless_the_operator_allows_them_on() {
    let dir = Dir::new("egress").await;
    let graph = graph().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let service = started(&dir, &graph, |c| c.outbound.allow_private_targets = false).await;
    for url in [
        format!("{}/hook", receiver.uri()),
        "http://localhost:9/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[::1]:9/hook".to_string(),
    ] {
        let (status, body) = api(
            &service,
            reqwest::Method::POST,
            "/api/webhooks/subscriptions",
            Some(json!({ "url": url, "event_types": ["message.received"] })),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["errors"][0]["path"], "url", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("non-public"),
            "{body}"
        );
    }
    assert_eq!(
        scalar(&service, "SELECT COUNT(*) FROM webhook_subscriptions").await,
        0
    );
    // an automation's webhook action or flow step to a private address is refused when saved,
    // located; a public one is saved
    let rules = |url: &str| {
        format!(
            "account = \"{ACCOUNT}\"\n[[rules]]\nid = \"notify\"\non = [\"comment\"]\n\
             actions = [{{ type = \"add_tag\", tag = \"lead\" }}, {{ type = \"webhook\", url = \"{url}\" }}]\n"
        )
    };
    let save = |text: String| {
        let url = format!("{}/api/automations", service.base_url());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(KEY)
                .body(text)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = save(rules("http://10.0.0.7/hook")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["rule"], "notify", "{body}");
    assert_eq!(body["errors"][0]["field"], "actions[1].url", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("non-public"),
        "{body}"
    );
    let (status, body) = save(rules("https://hooks.example.com/igdm")).await;
    assert_eq!(status, 201, "{body}");
    // a subscription stored while private targets were allowed is not called once they are not
    let (status, body) = api(
        &service,
        reqwest::Method::POST,
        "/api/webhooks/subscriptions",
        Some(
            json!({ "url": "https://hooks.example.com/igdm", "event_types": ["message.received"] }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    sqlx::query("UPDATE webhook_subscriptions SET url = $1")
        .bind(format!("{}/hook", receiver.uri()))
        .execute(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(
        post_meta(&service, &dm("P1", "mid.egress.1", "hello")).await,
        200
    );
    eventually("the delivery attempt is refused", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM outbound_attempts WHERE error LIKE '%non-public%'",
        )
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap()
            > 0
    })
    .await;
    assert!(receiver.received_requests().await.unwrap().is_empty());
    service.shutdown().await;
}
