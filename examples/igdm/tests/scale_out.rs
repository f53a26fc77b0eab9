//! Scale-out: three `igdm serve` processes on one PostgreSQL database and one simulator share the
//! inbox and the outbox. 10,000 DMs to ten accounts must each get exactly one reply, and the
//! simulator (at the platform's limits: 100 sends per second per account, over a sliding second)
//! must never answer a rate-limit error. Runs only with `IGDM_TEST_POSTGRES_URL` (see
//! `igdm::service::testing`); skipped otherwise.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use igdm::service::{testing, Config, Service};
use instagram_sim::{AccountSpec, RunningSimulator, SimConfig, Simulator};

const INSTANCES: usize = 3;
const ACCOUNTS: usize = 10;
const EVENTS: usize = 10_000;
const VAULT_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A spawned `igdm serve`, killed when dropped (also when the test fails).
struct Instance {
    child: Child,
    base_url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `igdm serve` with `config_file`; waits for its "listening on" line.
fn spawn(config_file: &PathBuf, name: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["serve", "--config"])
        .arg(config_file)
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                if let Some(tx) = tx.take() {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.to_string());
                }
            } else {
                eprintln!("[{name}] {line}");
            }
        }
    });
    let base_url = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    Instance { child, base_url }
}

fn config(dir: &std::path::Path, database: &str, sim: &RunningSimulator) -> Config {
    let mut c = Config::for_tests(dir);
    c.database = Some(database.into());
    c.app_id = sim.app_id();
    c.app_secret = sim.app_secret();
    c.verify_token = "scale-verify".into();
    c.graph_base_url = sim.base_url().to_owned();
    c.vault_key = Some(VAULT_KEY.into());
    c
}

/// The TOML of an instance: the service's defaults (100 sends per second per account, batches
/// of 64) except the test's addresses and a fast idle poll.
fn config_toml(database: &str, sim: &RunningSimulator, data_dir: &std::path::Path) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{}"
database = "{database}"
max_connections = 8
app_id = "{}"
app_secret = "{}"
verify_token = "scale-verify"
graph_base_url = "{}"
vault_key = "{VAULT_KEY}"
poll_interval_ms = 20
account_lease_secs = 5
"#,
        data_dir.display(),
        sim.app_id(),
        sim.app_secret(),
        sim.base_url(),
    )
}

async fn scalar(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_send_exactly_one_dm_per_event_within_the_rate_limits() {
    let Some(admin_url) = testing::postgres_admin_url() else {
        println!(
            "skipped: set IGDM_TEST_POSTGRES_URL to a PostgreSQL role that may create databases"
        );
        return;
    };
    let (db_name, database) = testing::create_database(&admin_url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("igdm-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The simulator at the platform's default limits; notifications merged up to 20 per body,
    // quick retries.
    let mut sim_config = SimConfig::default();
    sim_config.delivery.max_batch = 20;
    sim_config.delivery.retry_delays = vec![Duration::from_millis(100); 5];
    let sim = Simulator::start(sim_config).await.unwrap();

    // Accounts, tokens and automations go into the database through an instance without
    // workers, stopped before the three instances start.
    let mut setup = config(&dir.join("setup"), &database, &sim);
    setup.workers = false;
    let setup = Service::start(setup).await.unwrap();
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let shop = sim
            .create_account(AccountSpec::new(format!("shop{i}")))
            .unwrap();
        setup
            .connect_account(
                &shop.ig_user_id,
                Some(&format!("shop{i}")),
                &shop.access_token,
                Some(shop.expires_at),
            )
            .await
            .unwrap();
        setup
            .put_automations(&format!(
                r#"
account = "{}"
[[rules]]
id = "hello{i}"
on = ["message"]
actions = [{{ type = "send_dm", message = {{ kind = "text", text = "Thanks, we got your message." }} }}]
"#,
                shop.ig_user_id
            ))
            .await
            .unwrap();
        accounts.push(shop.ig_user_id);
    }
    setup.shutdown().await;

    let start = |i: usize| {
        let data_dir = dir.join(format!("instance{i}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let file = data_dir.join("igdm.toml");
        std::fs::write(&file, config_toml(&database, &sim, &data_dir)).unwrap();
        spawn(&file, &format!("instance{i}"))
    };
    // Two instances first; the third joins while the DMs are being sent, so accounts change
    // owner under load.
    let mut instances: Vec<Instance> = (0..INSTANCES - 1).map(start).collect();
    sim.set_webhook_url(Some(format!(
        "{}/webhooks/instagram",
        instances[0].base_url
    )));

    // Watch the database: the instances share the accounts (each holds some).
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&database)
        .await
        .unwrap();
    let owners_of_all = async |pool: &sqlx::AnyPool, instances: usize| {
        let mut owners = 0;
        for _ in 0..300 {
            owners = scalar(
                pool,
                "SELECT COUNT(DISTINCT owner) FROM account_leases WHERE lease_until > \
                 CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            )
            .await;
            let held = scalar(
                pool,
                "SELECT COUNT(*) FROM account_leases WHERE lease_until > \
                 CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            )
            .await;
            if owners == instances as i64 && held == ACCOUNTS as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        owners
    };
    assert_eq!(
        owners_of_all(&pool, INSTANCES - 1).await,
        INSTANCES as i64 - 1,
        "both instances send for some accounts"
    );

    // 10,000 DMs from 10,000 people, spread over the accounts.
    for i in 0..EVENTS {
        sim.person(&format!("p{i:05}"))
            .dm(&accounts[i % ACCOUNTS], "hi")
            .unwrap();
    }
    sim.wait_for_sent(500, Duration::from_secs(120))
        .await
        .unwrap();
    instances.push(start(INSTANCES - 1));
    assert_eq!(
        owners_of_all(&pool, INSTANCES).await,
        INSTANCES as i64,
        "the third instance took its share"
    );
    let handed_over = sim.sent_messages().len();
    assert!(
        handed_over < EVENTS,
        "accounts changed owner while DMs were being sent ({handed_over} sent by then)"
    );
    if let Err(e) = sim.wait_for_sent(EVENTS, Duration::from_secs(240)).await {
        panic!(
            "waited for {EVENTS} sends: {e}; {} sent, outbox {:?}",
            sim.sent_messages().len(),
            scalar(&pool, "SELECT COUNT(*) FROM outbox").await
        );
    }
    // Let anything still queued or in flight finish (it must not add a send).
    for _ in 0..200 {
        let busy = scalar(
            &pool,
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending') + \
             (SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending'))",
        )
        .await;
        if busy == 0
            && sim
                .wait_for_webhooks_idle(Duration::from_millis(1))
                .await
                .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Exactly one DM per event: one per person, to the account the person wrote to.
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), EVENTS, "one DM per event, none twice");
    let mut per_person: HashMap<(&str, &str), usize> = HashMap::new();
    for m in &sent {
        *per_person
            .entry((m.account.as_str(), m.recipient_username.as_str()))
            .or_default() += 1;
    }
    assert_eq!(per_person.len(), EVENTS);
    for i in 0..EVENTS {
        let person = format!("p{i:05}");
        assert_eq!(
            per_person.get(&(accounts[i % ACCOUNTS].as_str(), person.as_str())),
            Some(&1),
            "{person} got exactly one reply from the account they wrote to"
        );
    }
    // The platform never refused a send: no 613 / code 4 (nor anything else).
    let refused: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/me/messages") && r.status != 200)
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused sends, first: {:?}",
        refused.len(),
        refused.first().map(|r| (r.status, &r.body))
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM outbox WHERE status IN ('sent', 'delivered', 'read')"
        )
        .await,
        EVENTS as i64
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM delivery_log WHERE error_kind IS NOT NULL"
        )
        .await,
        0,
        "no attempt failed"
    );
    // The platform's view: at most 100 sends per account in any sliding second.
    let mut times: HashMap<&str, Vec<i64>> = HashMap::new();
    for m in &sent {
        times
            .entry(m.account.as_str())
            .or_default()
            .push(m.at.timestamp_millis());
    }
    for (account, mut at) in times {
        at.sort_unstable();
        for (i, &start) in at.iter().enumerate() {
            let in_window = at[i..].iter().take_while(|&&t| t - start < 1000).count();
            assert!(
                in_window <= 100,
                "{account}: {in_window} sends within one second"
            );
        }
    }
    pool.close().await;
    drop(instances);
    sim.shutdown().await;
    let _ = testing::drop_database(&admin_url, &db_name).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_changed_through_one_instance_apply_on_the_others() {
    let Some(admin_url) = testing::postgres_admin_url() else {
        println!(
            "skipped: set IGDM_TEST_POSTGRES_URL to a PostgreSQL role that may create databases"
        );
        return;
    };
    let (db_name, database) = testing::create_database(&admin_url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("igdm-scale-rules-{}", std::process::id()));
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // The worker instance starts before any automation exists; the API instance (no workers)
    // connects the account and stores the rule.
    let worker = Service::start(config(&dir.join("worker"), &database, &sim))
        .await
        .unwrap();
    let mut api = config(&dir.join("api"), &database, &sim);
    api.workers = false;
    let api = Service::start(api).await.unwrap();
    sim.set_webhook_url(Some(worker.webhook_url()));
    let shop = sim.create_account(AccountSpec::new("shop")).unwrap();
    api.connect_account(
        &shop.ig_user_id,
        Some("shop"),
        &shop.access_token,
        Some(shop.expires_at),
    )
    .await
    .unwrap();
    api.put_automations(&format!(
        r#"
account = "{}"
[[rules]]
id = "hello"
on = ["message"]
actions = [{{ type = "send_dm", message = {{ kind = "text", text = "Thanks!" }} }}]
"#,
        shop.ig_user_id
    ))
    .await
    .unwrap();
    // The worker reloads within its next ownership round (about a second); wait for its engine
    // to hold the rule rather than for a fixed time, which a loaded machine may overrun.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while worker.shared().engine().rules().get("hello").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never reloaded the automations stored through the API instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.person("ann").dm(&shop.ig_user_id, "hi").unwrap();
    sim.wait_for_sent(1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(sim.sent_messages()[0].text.as_deref(), Some("Thanks!"));
    api.shutdown().await;
    worker.shutdown().await;
    sim.shutdown().await;
    let _ = testing::drop_database(&admin_url, &db_name).await;
    let _ = std::fs::remove_dir_all(&dir);
}
