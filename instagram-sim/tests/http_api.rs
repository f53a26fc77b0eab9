//! The scripting API over HTTP (`/_sim/...`), driven with plain JSON as a non-Rust test
//! harness would, and checked with the real client.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{client_for, receiver, WAIT};
use instagram_graph::ErrorKind;
use instagram_sim::{DeliveryOutcome, SimConfig, Simulator};
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "{path}: {value}");
        value
    }

    async fn get(&self, path: &str) -> Value {
        let (status, value) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {value}");
        value
    }
}

#[tokio::test]
async fn scripting_over_http() {
    let hook = receiver("http-secret").await;
    let sim = Simulator::start(SimConfig::for_tests().with_app_secret("http-secret"))
        .await
        .unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        base: sim.base_url().to_owned(),
    };
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/_sim/webhook",
            Some(json!({ "url": hook.url })),
        )
        .await;
    assert_eq!(status, 200);

    let account = api
        .post(
            "/_sim/accounts",
            json!({ "username": "shop", "subscribed": true }),
        )
        .await;
    let token = account["access_token"].as_str().unwrap().to_owned();
    let ig = account["ig_user_id"].as_str().unwrap().to_owned();
    assert_eq!(account["app_secret"], "http-secret");
    let listed = api.get("/_sim/accounts").await;
    assert_eq!(listed["data"][0]["ig_user_id"], ig.as_str());

    let media = api
        .post(
            &format!("/_sim/accounts/{ig}/media"),
            json!({ "kind": "reel", "caption": "LINK" }),
        )
        .await;
    let media_id = media["id"].as_str().unwrap().to_owned();
    api.post(
        "/_sim/people",
        json!({ "username": "alice", "name": "Alice", "follows_business": true }),
    )
    .await;
    let comment = api
        .post(
            "/_sim/actions",
            json!({ "action": "comment", "person": "alice", "media_id": media_id, "text": "LINK" }),
        )
        .await;
    let comment_id = comment["id"].as_str().unwrap().to_owned();
    let dm = api
        .post(
            "/_sim/actions",
            json!({ "action": "dm", "person": "alice", "account": "shop", "text": "hi" }),
        )
        .await;
    assert_eq!(dm["igsid"], comment["igsid"]);

    // The account answers through the Graph API.
    let client = client_for(&sim, &token);
    client
        .private_reply(comment_id.clone(), "link!")
        .await
        .unwrap();
    client.reply_to_comment(&comment_id, "sent").await.unwrap();
    let sent = api.get("/_sim/sent").await;
    assert_eq!(sent["data"][0]["kind"], "private_reply");
    assert_eq!(
        api.get("/_sim/public_replies").await["data"][0]["text"],
        "sent"
    );
    assert_eq!(
        api.get(&format!("/_sim/comments/{comment_id}")).await["private_replied"],
        true
    );

    // Comment, DM and the echo of the private reply are delivered.
    sim.wait_for_deliveries(3, WAIT).await.unwrap();
    let deliveries = api.get("/_sim/deliveries").await;
    assert_eq!(deliveries["data"].as_array().unwrap().len(), 3);
    assert_eq!(deliveries["data"][0]["outcome"], "delivered");
    assert_eq!(hook.valid().len(), 3);
    let requests = api.get("/_sim/requests").await;
    assert!(requests["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["path"].as_str().unwrap().starts_with("/v25.0/")));

    // Faults over HTTP.
    let (status, faults) = api
        .call(
            reqwest::Method::PUT,
            "/_sim/faults",
            Some(json!({ "error_rate": 1.0 })),
        )
        .await;
    assert_eq!((status, faults["error_rate"].as_f64()), (200, Some(1.0)));
    assert_eq!(
        client.me(&[]).await.unwrap_err().kind(),
        &ErrorKind::Transient
    );
    api.call(reqwest::Method::PUT, "/_sim/faults", Some(json!({})))
        .await;
    assert!(client.me(&[]).await.is_ok());

    // Clock and tokens.
    let before = sim.now();
    api.post("/_sim/clock/advance", json!({ "seconds": 3600 }))
        .await;
    assert_eq!(sim.now() - before, chrono::Duration::hours(1));
    let limited = api
        .post(
            &format!("/_sim/accounts/{ig}/tokens"),
            json!({ "scopes": ["instagram_business_basic"] }),
        )
        .await;
    let limited = client_for(&sim, limited["access_token"].as_str().unwrap());
    assert_eq!(
        limited.conversations().send().await.unwrap_err().kind(),
        &ErrorKind::PermissionDenied
    );
    api.post("/_sim/accounts/shop/revoke", json!({})).await;
    assert!(matches!(
        client.me(&[]).await.unwrap_err().kind(),
        ErrorKind::TokenInvalid { .. }
    ));

    // Bad input: typed errors, nothing changed.
    let (status, error) = api
        .call(
            reqwest::Method::POST,
            "/_sim/actions",
            Some(json!({ "action": "dance" })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["kind"], "invalid");
    let (status, error) = api
        .call(
            reqwest::Method::POST,
            "/_sim/actions",
            Some(json!({ "action": "dm", "person": "a", "account": "nobody", "text": "x" })),
        )
        .await;
    assert_eq!(status, 404);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nobody"));
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/_sim/clock/advance",
            Some(json!({ "seconds": -1 })),
        )
        .await;
    assert_eq!(status, 400);

    let (status, _) = api
        .call(reqwest::Method::DELETE, "/_sim/records", None)
        .await;
    assert_eq!(status, 200);
    assert!(sim.sent_messages().is_empty() && sim.deliveries().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_receivers_time_out_and_are_retried() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/slow",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut delivery = instagram_sim::DeliveryConfig::default();
    delivery.timeout = Duration::from_millis(200);
    delivery.retry_delays = vec![Duration::from_millis(10)];
    let sim = Simulator::start(
        SimConfig::for_tests()
            .with_webhook_url(url)
            .with_delivery(delivery),
    )
    .await
    .unwrap();
    sim.create_account(instagram_sim::AccountSpec::new("shop").subscribed())
        .unwrap();
    sim.person("alice").dm("shop", "hello").unwrap();
    let deliveries = sim.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Failed);
    assert_eq!(deliveries[0].attempts.len(), 2);
    assert!(deliveries[0]
        .attempts
        .iter()
        .all(|a| a.error.as_deref() == Some("timed out")));
    assert!(deliveries[0].attempts.iter().all(|a| a.latency_ms >= 200));
    sim.shutdown().await;
}

/// Counts requests in flight at a slow receiver; the highest count seen.
async fn in_flight_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (now2, peak2) = (now.clone(), peak.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let (now, peak) = (now2.clone(), peak2.clone());
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, peak)
}

#[tokio::test]
async fn deliveries_go_one_at_a_time_unless_concurrency_is_raised() {
    use std::sync::atomic::Ordering;
    for (concurrency, expected_peak) in [(1usize, 1usize), (4, 4)] {
        let (url, peak) = in_flight_receiver().await;
        let mut delivery = instagram_sim::DeliveryConfig::default();
        delivery.concurrency = concurrency;
        let sim = Simulator::start(
            SimConfig::for_tests()
                .with_webhook_url(url)
                .with_delivery(delivery),
        )
        .await
        .unwrap();
        sim.create_account(instagram_sim::AccountSpec::new("shop").subscribed())
            .unwrap();
        for i in 0..12 {
            sim.person(&format!("p{i}")).dm("shop", "hello").unwrap();
        }
        sim.wait_for_deliveries(12, WAIT).await.unwrap();
        sim.wait_for_webhooks_idle(WAIT).await.unwrap();
        let deliveries = sim.deliveries();
        assert_eq!(deliveries.len(), 12);
        assert!(deliveries
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Delivered));
        assert_eq!(
            peak.load(Ordering::SeqCst),
            expected_peak,
            "requests in flight at once with concurrency {concurrency}"
        );
        sim.shutdown().await;
    }
}
