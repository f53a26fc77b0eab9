//! Privacy operations end to end: the reference service (`igdm::service`) against the Instagram
//! Platform simulator (`instagram-sim`). The simulator delivers Meta's deauthorize callback when
//! the account removes the app (`revoke_app`); the service verifies its `signed_request`, deletes
//! the token at once and marks the connection removed; a data-deletion request for the account
//! then removes every row that mentions it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use igdm::service::{Config, Service};
use instagram_sim::{AccountSpec, DeliveryKind, DeliveryOutcome, MediaSpec, SimConfig, Simulator};
use sqlx::Row;

const WAIT: Duration = Duration::from_secs(60);

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const RULES: &str = r#"
account = "ACCOUNT"
[[rules]]
id = "reel-link"
on = ["comment"]
scope = { kind = "media", ids = ["REEL"] }
match = { mode = "contains", keywords = ["link"] }
actions = [{ type = "private_reply", text = "Here is the link: https://example.com" }]
"#;

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Every row of every table whose value (any column, read as text) contains `needle`.
async fn rows_mentioning(db: &sqlx::AnyPool, needle: &str) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut found = Vec::new();
    for t in tables {
        let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{t}')"
        )))
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("name").unwrap())
        .collect();
        let any = columns
            .iter()
            .map(|c| format!("instr(CAST({c} AS TEXT), $1) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {t} WHERE {any}"
        )))
        .bind(needle)
        .fetch_one(db)
        .await
        .unwrap();
        if n > 0 {
            found.push((t, n));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_removing_the_app_in_instagram_deletes_the_token_through_metas_callback() {
    let dir = Dir(std::env::temp_dir().join(format!(
        "igdm-privacy-e2e-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    // The simulator needs the callback URL at start: reserve the service's port first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut sim_config = SimConfig::default()
        .with_deauthorize_url(format!("http://127.0.0.1:{port}/meta/deauthorize"));
    sim_config.delivery.retry_delays = vec![Duration::from_millis(50), Duration::from_millis(100)];
    let sim = Simulator::start(sim_config).await.unwrap();
    let mut config = Config::for_tests(&dir.0);
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.app_id = sim.app_id();
    config.app_secret = sim.app_secret();
    config.graph_base_url = sim.base_url().to_owned();
    config.oauth_api_base_url = sim.base_url().to_owned();
    config.api_keys = vec!["e2e-key".into()];
    let service = Service::start(config).await.unwrap();
    sim.set_webhook_url(Some(service.webhook_url()));
    let shop = sim.create_account(AccountSpec::new("shop")).unwrap();
    let reel = sim
        .add_media(&shop.ig_user_id, MediaSpec::reel("Comment LINK"))
        .unwrap();
    service
        .connect_account(
            &shop.ig_user_id,
            Some("shop"),
            &shop.access_token,
            Some(shop.expires_at),
        )
        .await
        .unwrap();
    service
        .put_automations(
            &RULES
                .replace("ACCOUNT", &shop.ig_user_id)
                .replace("REEL", &reel),
        )
        .await
        .unwrap();
    let db = service.shared().db.pool().clone();
    let account = shop.ig_user_id.clone();

    // A comment gets its private reply: the connection works.
    let comment = sim.person("alice").comment(&reel, "LINK please").unwrap();
    sim.wait_for_sent(1, WAIT).await.unwrap();
    let alice = sim.igsid("alice", &account).unwrap();
    assert!(!rows_mentioning(&db, &alice).await.is_empty());

    // The account removes the app in Instagram: Meta's callback deletes the token at once.
    sim.revoke_app(&account).unwrap();
    eventually("the deauthorize callback was delivered", async || {
        sim.deliveries()
            .iter()
            .any(|d| d.kind == DeliveryKind::Deauthorize && d.outcome == DeliveryOutcome::Delivered)
    })
    .await;
    let row =
        sqlx::query("SELECT token_sealed, status, disconnected_at FROM accounts WHERE id = $1")
            .bind(&account)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(row.try_get::<String, _>("token_sealed").unwrap(), "");
    assert_eq!(row.try_get::<String, _>("status").unwrap(), "disconnected");
    assert!(row
        .try_get::<Option<i64>, _>("disconnected_at")
        .unwrap()
        .is_some());
    // The management API shows the connection removed, and no token.
    let accounts: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/accounts/{account}", service.base_url()))
        .bearer_auth("e2e-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accounts["status"], "disconnected");
    assert!(!accounts.to_string().contains(&shop.access_token));
    assert!(sim.comment(&comment).unwrap().private_replied);

    // Meta's data-deletion callback for the same app-scoped user removes every row about it.
    let deauth = sim
        .deliveries()
        .into_iter()
        .find(|d| d.kind == DeliveryKind::Deauthorize)
        .unwrap();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/meta/data-deletion", service.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(deauth.body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_url = answer["url"].as_str().unwrap().to_owned();
    eventually("the deletion is done", async || {
        let page: serde_json::Value = reqwest::get(&status_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["status"] == "done"
    })
    .await;
    for id in [account.as_str(), alice.as_str(), comment.as_str()] {
        let left = rows_mentioning(&db, id).await;
        assert!(left.is_empty(), "rows still mention {id}: {left:?}");
    }
    service.shutdown().await;
    sim.shutdown().await;
}
