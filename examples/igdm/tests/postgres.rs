//! The pipeline on PostgreSQL. Runs only when `IGDM_TEST_POSTGRES_URL` names a role that may
//! create databases (for example `postgres://igdm:igdm@127.0.0.1:55432/igdm`, what
//! `.ci/postgres start` prints); the test runs in a database of its own. Skipped otherwise.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use igdm::service::testing::{self, TestBackend};
use igdm::service::{Config, Service};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "pg-app-secret";
const ACCOUNT: &str = "17841400000000001";

#[tokio::test]
async fn the_pipeline_runs_on_postgres() {
    let Some(admin_url) = testing::postgres_admin_url() else {
        println!(
            "skipped: set IGDM_TEST_POSTGRES_URL to a PostgreSQL role that may create databases"
        );
        return;
    };
    testing::run_on(
        TestBackend::Postgres { admin_url },
        &the_pipeline_runs_on_postgres_in,
    )
    .await;
}

async fn the_pipeline_runs_on_postgres_in() {
    let url = testing::fresh_database().await.unwrap();
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "P1", "message_id": "mid.pg"})),
        )
        .mount(&graph)
        .await;
    let dir = std::env::temp_dir().join(format!("igdm-pg-{}", std::process::id()));
    let mut config = Config::for_tests(&dir);
    config.database = Some(url);
    config.app_secret = SECRET.into();
    config.graph_base_url = graph.uri();
    config.graph_version = "v1".into();
    config.api_keys = vec!["k".into()];
    let service = Service::start(config).await.unwrap();
    service
        .connect_account(ACCOUNT, Some("shop"), "IGAA-pg", None)
        .await
        .unwrap();
    service
        .put_automations(
            r#"
account = "17841400000000001"
[[rules]]
id = "link"
on = ["comment"]
match = { mode = "contains", keywords = ["link"] }
limits = { once_per_contact = true }
actions = [{ type = "private_reply", text = "Here" }, { type = "add_tag", tag = "lead" }]
"#,
        )
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "changes": [{
        "field": "comments", "value": {"id": "C1", "text": "LINK", "from": {"id": "P1"},
        "media": {"id": "M1", "media_product_type": "REELS"}}}]}]})
    .to_string();
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let sig = webhook_verify::meta::sign(SECRET.as_bytes(), body.as_bytes()).unwrap();
        let r = http
            .post(service.webhook_url())
            .header("X-Hub-Signature-256", sig.to_string())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut sent = 0;
    for _ in 0..200 {
        sent = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .fetch_one(service.shared().db.pool())
            .await
            .unwrap();
        if sent == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 1);
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(inbox, 1);
    let sends = graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/me/messages")
        .count();
    assert_eq!(sends, 1);
    for api in [
        "accounts",
        "contacts?account=17841400000000001",
        "deliveries",
        "analytics",
        "media",
        "automations",
    ] {
        let r = http
            .get(format!("{}/api/{api}", service.base_url()))
            .bearer_auth("k")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{api}: {:?}", r.text().await);
    }
    service.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
