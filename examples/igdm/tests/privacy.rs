//! Privacy operations of the reference service, against a `wiremock` Graph API: deletion of a
//! contact and of a connection, export bundles with expiring links, Meta's deauthorize and
//! data-deletion callbacks, the retention sweeper with a moved clock, the audit register, consent
//! records and unsent messages. Every deletion is checked against the WHOLE database: a scan of
//! every column of every table for the subject's id (see [`mentions`]).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::time::Duration;

use chrono::Utc;
use igdm::service::db::privacy as store;
use igdm::service::http::privacy as ops;
use igdm::service::pipeline::retention;
use igdm::service::{Config, RunningService, Service};
use serde_json::{json, Value};
use sqlx::Row;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test-app-secret";
const KEY: &str = "api-key-1";
const ACCOUNT: &str = "17841400000000001";
const APP_SCOPED: &str = "26000000000077";
/// Ids chosen so that they cannot occur by chance inside timestamps or hashes.
const ALICE: &str = "IGSIDALICE7341";
const BOB: &str = "IGSIDBOB8452";

use igdm::service::testing::TestDir as Dir;

const RULES: &str = r#"
account = "17841400000000001"
[[rules]]
id = "link"
on = ["comment"]
match = { mode = "contains", keywords = ["link"] }
actions = [{ type = "private_reply", text = "Here it is: https://example.com" }]

[[rules]]
id = "price"
on = ["message"]
match = { mode = "contains", keywords = ["price"] }
actions = [{ type = "send_dm", message = { kind = "text", text = "Prices: https://example.com/p" } }]
"#;

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
    Mock::given(method("GET"))
        .and(path("/v1/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": APP_SCOPED, "user_id": ACCOUNT})),
        )
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

struct World {
    service: RunningService,
    _graph: MockServer,
    _dir: Dir,
}

impl World {
    async fn start(name: &str) -> World {
        let dir = Dir::local(name);
        let graph = graph().await;
        let mut c = Config::for_tests(&dir.0);
        c.database = postgres_database(name).await;
        c.app_secret = SECRET.into();
        c.verify_token = "vt".into();
        c.graph_base_url = graph.uri();
        c.graph_version = "v1".into();
        c.api_keys = vec![KEY.into()];
        let service = Service::start(c).await.unwrap();
        service
            .connect_account(ACCOUNT, Some("shop"), "IGAA-test-token", None)
            .await
            .unwrap();
        service.put_automations(RULES).await.unwrap();
        World {
            service,
            _graph: graph,
            _dir: dir,
        }
    }

    fn db(&self) -> &sqlx::AnyPool {
        self.service.shared().db.pool()
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.service.base_url())
    }

    async fn post_webhook(&self, body: &Value) {
        let body = body.to_string().into_bytes();
        let signature = webhook_verify::meta::sign(SECRET.as_bytes(), &body).unwrap();
        let r = reqwest::Client::new()
            .post(self.service.webhook_url())
            .header("X-Hub-Signature-256", signature.to_string())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.db())
            .await
            .unwrap()
    }

    /// Waits until every notification is processed and every outbox row is final.
    async fn settled(&self) {
        for _ in 0..400 {
            let busy = self
                .scalar(
                    "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending') + \
                     (SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending'))",
                )
                .await;
            if busy == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the pipeline did not settle");
    }

    fn api(&self, method: reqwest::Method, p: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(p))
            .bearer_auth(KEY)
    }

    /// Alice comments (in one notification with Bob's comment), writes a DM with a secret, and
    /// opts in; Bob comments. Replies go out.
    async fn conversations(&self) {
        let now = Utc::now().timestamp();
        self.post_webhook(&json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "changes": [
            {"field": "comments", "value": {"id": "C-A-1", "text": "link please", "from": {"id": ALICE, "username": "alice_u"},
                "media": {"id": "M1", "media_product_type": "REELS"}}},
            {"field": "comments", "value": {"id": "C-B-1", "text": "link for me too", "from": {"id": BOB, "username": "bob_u"},
                "media": {"id": "M1", "media_product_type": "REELS"}}}
        ]}]}))
        .await;
        self.post_webhook(&json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
            "sender": {"id": ALICE}, "recipient": {"id": ACCOUNT}, "timestamp": now * 1000,
            "message": {"mid": "mid.alice.1", "text": "what is the price? my secret is tulip"}}]}]}))
        .await;
        self.post_webhook(&json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
            "sender": {"id": ALICE}, "recipient": {"id": ACCOUNT}, "timestamp": now * 1000 + 1,
            "optin": {"ref": "spring-sale", "type": "notification_messages", "payload": "SALE"}}]}]}))
        .await;
        self.settled().await;
    }
}

/// With `IGDM_TEST_POSTGRES_URL` set (a PostgreSQL server where that user may create
/// databases), a fresh database on that server for one test; SQLite otherwise.
async fn postgres_database(name: &str) -> Option<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let url = std::env::var("IGDM_TEST_POSTGRES_URL").ok()?;
    sqlx::any::install_default_drivers();
    let database = format!(
        "igdm_privacy_{}_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let created = async {
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
    }
    .await;
    if let Err(e) = created {
        println!("cannot create a PostgreSQL database for this test ({e}); running it on SQLite");
        return None;
    }
    let mut parsed = url::Url::parse(&url).unwrap();
    parsed.set_path(&format!("/{database}"));
    Some(parsed.to_string())
}

fn is_postgres(db: &sqlx::AnyPool) -> bool {
    db.connect_options()
        .database_url
        .scheme()
        .starts_with("postgres")
}

/// Every user table of the database, with its columns and whether a column holds bytes.
async fn all_columns(db: &sqlx::AnyPool) -> BTreeMap<String, Vec<(String, bool)>> {
    let postgres = is_postgres(db);
    let tables: Vec<String> = if postgres {
        sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
        )
    } else {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
    }
    .fetch_all(db)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let sql = if postgres {
            format!(
                "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS type \
                 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{t}'"
            )
        } else {
            format!("SELECT name, type FROM pragma_table_info('{t}')")
        };
        let cols: Vec<(String, bool)> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(db)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let ty: String = r.try_get("type").unwrap();
                (
                    r.try_get::<String, _>("name").unwrap(),
                    ty.eq_ignore_ascii_case("bytea"),
                )
            })
            .collect();
        out.insert(t, cols);
    }
    out
}

/// The whole-schema scan: for every table and every column (text, numbers and blobs read as
/// text), the rows whose value contains `needle`. Keyed by table, the row's key (the columns
/// privacy-kit's schema keys the table by; `?` for a table the schema does not declare).
/// sqlx's own `_sqlx_migrations` is skipped: its checksums and timings are arbitrary bytes and
/// numbers that can contain any short needle by chance.
async fn mentions(db: &sqlx::AnyPool, needle: &str) -> BTreeMap<String, BTreeSet<String>> {
    let keys: BTreeMap<&str, Vec<&str>> = store::tables()
        .into_iter()
        .filter(|t| t.entity == t.table)
        .map(|t| (t.table, t.key))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, columns) in all_columns(db).await {
        if table == "_sqlx_migrations" {
            continue;
        }
        let key = keys
            .get(table.as_str())
            .map(|k| {
                k.iter()
                    .map(|c| format!("CAST({c} AS TEXT)"))
                    .collect::<Vec<_>>()
                    .join(" || ':' || ")
            })
            .unwrap_or_else(|| "'?'".to_owned());
        let postgres = is_postgres(db);
        let any = columns
            .iter()
            .map(|(c, bytes)| match (postgres, bytes) {
                (false, _) => format!("instr(CAST({c} AS TEXT), $1) > 0"),
                (true, true) => format!("position(convert_to($1, 'UTF8') in {c}) > 0"),
                (true, false) => format!("strpos(CAST({c} AS TEXT), $1) > 0"),
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {key} FROM {table} WHERE {any}"
        )))
        .bind(needle)
        .fetch_all(db)
        .await
        .unwrap();
        if !rows.is_empty() {
            out.entry(table).or_default().extend(rows);
        }
    }
    out
}

async fn assert_gone(db: &sqlx::AnyPool, needle: &str) {
    let left = mentions(db, needle).await;
    assert!(
        left.is_empty(),
        "rows still holding `{needle}` after the deletion: {left:?}"
    );
}

async fn get_json(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Tables that hold no subject data by design: the migrations, the privacy bookkeeping whose ids
/// are pseudonyms, and the service instances' heartbeats.
const BOOKKEEPING: &[&str] = &[
    "_sqlx_migrations",
    "deletion_receipts",
    "privacy_audit",
    "service_instances",
];

#[tokio::test]
async fn every_table_is_declared_to_privacy_kit() {
    let w = World::start("declared").await;
    let declared: BTreeSet<&str> = store::tables().iter().map(|t| t.table).collect();
    for table in all_columns(w.db()).await.keys() {
        assert!(
            declared.contains(table.as_str()) || BOOKKEEPING.contains(&table.as_str()),
            "table `{table}` is not declared in db::privacy: deletions and exports would miss it"
        );
    }
    // the schema is valid and reaches every table from a subject
    assert!(store::schema().entities().len() >= declared.len());
}

#[tokio::test]
async fn p11_deleting_a_contact_deletes_its_conversations() {
    let w = World::start("p11").await;
    w.conversations().await;
    // a flow in progress: its state, a scheduled wake-up and its analytics
    let later = Utc::now().timestamp_millis() + 86_400_000;
    for (sql, body) in [
        (
            "INSERT INTO flow_states (account, contact, body) VALUES ($1, $2, $3)",
            json!({"flow": "welcome", "step": "ask"}),
        ),
        (
            "INSERT INTO flow_events (account, body, at) VALUES ($1, $2, 1)",
            json!({"account": ACCOUNT, "contact": ALICE, "flow": "welcome", "kind": {"type": "started"}}),
        ),
    ] {
        let q = sqlx::query(sql).bind(ACCOUNT);
        let q = if sql.contains("$3") { q.bind(ALICE) } else { q };
        q.bind(body.to_string()).execute(w.db()).await.unwrap();
    }
    sqlx::query("INSERT INTO wakes (account, contact, due_at) VALUES ($1, $2, $3)")
        .bind(ACCOUNT)
        .bind(ALICE)
        .bind(later)
        .execute(w.db())
        .await
        .unwrap();
    // an outbound webhook delivery about her message, with an attempt
    let payload = json!({"type": "message.received", "data": {"account": ACCOUNT, "contact": ALICE,
        "text": "what is the price? my secret is tulip"}});
    sqlx::query(
        "INSERT INTO outbound_deliveries (id, subscription_id, org_id, account, contact, event_type, \
         payload, status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ('msg_alice_1', 'sub_x', 'bootstrap', $1, $2, 'message.received', $3, 'failed', 1, 1, 1, 1)",
    )
    .bind(ACCOUNT)
    .bind(ALICE)
    .bind(payload.to_string())
    .execute(w.db())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbound_attempts (delivery_id, subscription_id, org_id, account, attempt, outcome, \
         status_code, error, duration_ms, at) VALUES ('msg_alice_1', 'sub_x', 'bootstrap', $1, 1, 'failed', 503, 'busy', 5, 1)",
    )
    .bind(ACCOUNT)
    .execute(w.db())
    .await
    .unwrap();
    // before: Alice is everywhere a conversation leaves traces (the engine's event claims are
    // the `events` rows themselves, so `dedup_keys` holds none of hers here)
    let before = mentions(w.db(), ALICE).await;
    for table in [
        "outbound_deliveries",
        "events",
        "outbox",
        "contacts",
        "inbox",
        "consents",
        "flow_states",
        "flow_events",
        "wakes",
    ] {
        assert!(before.contains_key(table), "{table}: {before:?}");
    }
    let log_rows = w
        .scalar(&format!(
            "SELECT COUNT(*) FROM delivery_log WHERE outbox_key IN (SELECT key FROM outbox WHERE recipient = '{ALICE}')"
        ))
        .await;
    assert!(log_rows >= 2, "{log_rows}");

    let (status, receipt) = get_json(w.api(
        reqwest::Method::DELETE,
        &format!("/privacy/contacts/{ACCOUNT}/{ALICE}"),
    ))
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["status"], "done", "{receipt}");
    assert!(receipt["counts"]["events"]["deleted"].as_u64().unwrap() >= 3);
    assert!(
        receipt["counts"]["delivery_log"]["deleted"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert!(receipt["counts"]["inbox"]["deleted"].as_u64().unwrap() >= 3);
    assert_eq!(receipt["counts"]["outbound_deliveries"]["deleted"], 1);
    assert_eq!(receipt["counts"]["outbound_attempts"]["deleted"], 1);
    assert!(!receipt.to_string().contains(ALICE));

    // after: no row of any table holds Alice's id or her message, Bob's data is untouched
    assert_gone(w.db(), ALICE).await;
    assert_gone(w.db(), "tulip").await;
    assert_gone(w.db(), "alice_u").await;
    let bob = mentions(w.db(), BOB).await;
    for table in ["events", "outbox", "contacts", "inbox"] {
        assert!(bob.contains_key(table), "Bob lost {table}: {bob:?}");
    }
    // the shared notification was rewritten without Alice's comment, not dropped
    let shared: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM inbox")
        .fetch_all(w.db())
        .await
        .unwrap();
    let texts: Vec<String> = shared
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(texts
        .iter()
        .any(|t| t.contains("C-B-1") && !t.contains("C-A-1")));
    assert!(texts.iter().any(|t| t == store::TOMBSTONE));
    // a second deletion finds nothing
    let (status, _) = get_json(w.api(
        reqwest::Method::DELETE,
        &format!("/privacy/contacts/{ACCOUNT}/{ALICE}"),
    ))
    .await;
    assert_eq!(status, 404);
    // the audit register says who, what, when, with counts, and no personal data
    let (status, audit) = get_json(w.api(reqwest::Method::GET, "/privacy/audit")).await;
    assert_eq!(status, 200);
    let text = audit.to_string();
    assert!(text.contains("deletion_requested") && text.contains("deletion_finished"));
    assert!(!text.contains(ALICE), "{text}");
    let finished = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["event"]["event"] == "deletion_finished")
        .unwrap();
    assert_eq!(finished["actor"], "api");
    assert!(finished["counts"]["events"]["deleted"].as_u64().unwrap() >= 3);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p11_a_contact_known_only_from_its_events_is_deleted_too() {
    let w = World::start("p11-orphan").await;
    w.conversations().await;
    sqlx::query("DELETE FROM contacts WHERE id = $1")
        .bind(ALICE)
        .execute(w.db())
        .await
        .unwrap();
    assert!(mentions(w.db(), ALICE).await.contains_key("events"));
    let (status, receipt) = get_json(w.api(
        reqwest::Method::DELETE,
        &format!("/privacy/contacts/{ACCOUNT}/{ALICE}"),
    ))
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert_gone(w.db(), ALICE).await;
    // an id nobody knows is a 404, and creates nothing
    let (status, _) = get_json(w.api(
        reqwest::Method::DELETE,
        &format!("/privacy/contacts/{ACCOUNT}/NOBODY123"),
    ))
    .await;
    assert_eq!(status, 404);
    assert!(mentions(w.db(), "NOBODY123").await.is_empty());
    w.service.shutdown().await;
}

#[tokio::test]
async fn p14_an_export_holds_every_row_reachable_from_the_contact() {
    let w = World::start("p14").await;
    w.conversations().await;
    // the whole-schema scan, before the export is made
    let expected = mentions(w.db(), ALICE).await;
    assert!(!expected.is_empty());
    let (status, made) = get_json(
        w.api(reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"account": ACCOUNT, "contact": ALICE})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let url = made["url"].as_str().unwrap().to_owned();
    // the link is public but single-use
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);

    let manifest = privacy_kit::export::verify_bundle(Cursor::new(&bytes)).unwrap();
    // the CLI verifies the bundle too
    let file = w._dir.0.join("export.zip");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["privacy", "verify-bundle"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(manifest.records(), made["records"].as_u64().unwrap());
    for (table, rows) in &expected {
        assert!(
            !rows.contains("?"),
            "table `{table}` holds the subject but privacy-kit's schema does not declare it"
        );
        let records =
            privacy_kit::export::read_records(Cursor::new(&bytes), table).unwrap_or_default();
        let ids: BTreeSet<String> = records
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        for row in rows {
            let found = if table == "inbox" {
                ids.iter().any(|id| id.starts_with(&format!("{row}#")))
            } else {
                ids.contains(row)
            };
            assert!(
                found,
                "{table} row {row} is missing from the export ({ids:?})"
            );
        }
    }
    // the export holds Alice's message but nothing of Bob's, and no token
    let all: String = manifest
        .files
        .iter()
        .map(|f| {
            privacy_kit::export::read_records(Cursor::new(&bytes), &f.entity)
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect::<String>()
        })
        .collect();
    assert!(all.contains("tulip"));
    assert!(!all.contains(BOB), "{all}");
    assert!(!all.contains("IGAA-test-token"));

    // an account export; its link expires
    let link = ops::export(
        w.service.shared(),
        ACCOUNT,
        None,
        Utc::now(),
        chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    let later = Utc::now() + chrono::Duration::seconds(61);
    assert!(ops::take_export(w.service.shared(), &link.token, later)
        .await
        .is_err());
    let fresh = ops::export(
        w.service.shared(),
        ACCOUNT,
        None,
        Utc::now(),
        chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    let bundle = ops::take_export(w.service.shared(), &fresh.token, Utc::now())
        .await
        .unwrap();
    let m = privacy_kit::export::verify_bundle(Cursor::new(&bundle)).unwrap();
    let tokens = privacy_kit::export::read_records(Cursor::new(&bundle), "account_token").unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["fields"]["token_sealed"], "[redacted]");
    assert!(m.records() > manifest.records());
    // links are stored hashed
    let stored: i64 = w
        .scalar(&format!(
            "SELECT COUNT(*) FROM export_links WHERE token_hash = '{}'",
            fresh.token
        ))
        .await;
    assert_eq!(stored, 0);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p14_an_export_is_the_same_whatever_the_page_size() {
    let w = World::start("p14-pages").await;
    w.conversations().await;
    let shared = w.service.shared();
    let sql = store::SqlStore::new(
        shared.db.clone(),
        shared.vault.pseudonymizer().clone(),
        "test",
    );
    let schema = store::schema();
    let now = Utc::now();
    let mut files = Vec::new();
    for page in [1, 2, 500] {
        let made = privacy_kit::export::export_subject(
            &schema,
            &sql,
            &privacy_kit::cascade::Subject::connection(ACCOUNT),
            now,
            Cursor::new(Vec::new()),
            page,
            None,
        )
        .await
        .unwrap();
        // the account's send lease is renewed every second by the running service: its row
        // changes between the exports whatever the page size, so it is compared by count only
        let mut listed = made.manifest.files;
        for f in listed.iter_mut().filter(|f| f.entity == "account_leases") {
            f.bytes = 0;
            f.sha256.clear();
        }
        files.push(listed);
    }
    assert!(files[0].iter().map(|f| f.records).sum::<u64>() > 20);
    // the account's sending lease is renewed every second while the exports run: its row
    // (not its presence) may differ between them
    let stable = |files: &[privacy_kit::export::ManifestFile]| -> Vec<String> {
        files
            .iter()
            .map(|f| match f.entity.as_str() {
                "account_leases" => format!("{} {}", f.entity, f.records),
                _ => format!("{} {} {} {}", f.entity, f.records, f.bytes, f.sha256),
            })
            .collect()
    };
    assert_eq!(stable(&files[0]), stable(&files[2]));
    assert_eq!(stable(&files[1]), stable(&files[2]));
    w.service.shutdown().await;
}

fn form(signed_request: String) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("signed_request", &signed_request)
        .finish()
}

fn signed(user_id: &str, secret: &str) -> String {
    webhook_verify::signed_request::SignedRequest::new(user_id, Utc::now().timestamp())
        .encode(secret.as_bytes())
        .unwrap()
}

#[tokio::test]
async fn p12_removing_the_app_deletes_the_token_and_marks_the_connection_removed() {
    let w = World::start("p12").await;
    w.conversations().await;
    let client = reqwest::Client::new();
    // a forged callback changes nothing
    let r = client
        .post(w.url("/meta/deauthorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(signed(APP_SCOPED, "not-the-secret")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM accounts WHERE token_sealed <> ''")
            .await,
        1
    );
    let r = client
        .post(w.url("/meta/deauthorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(signed(APP_SCOPED, SECRET)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row =
        sqlx::query("SELECT token_sealed, status, disconnected_at FROM accounts WHERE id = $1")
            .bind(ACCOUNT)
            .fetch_one(w.db())
            .await
            .unwrap();
    assert_eq!(row.try_get::<String, _>("token_sealed").unwrap(), "");
    assert_eq!(row.try_get::<String, _>("status").unwrap(), "disconnected");
    assert!(row
        .try_get::<Option<i64>, _>("disconnected_at")
        .unwrap()
        .is_some());
    // the data stays until its policy (or a deletion request) removes it
    assert!(w.scalar("SELECT COUNT(*) FROM events").await > 0);

    // data deletion for a person: a confirmation code and a public status page
    let r = client
        .post(w.url("/meta/data-deletion"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(signed(ALICE, SECRET)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer.as_object().unwrap().len(), 2);
    let code = answer["confirmation_code"].as_str().unwrap().to_owned();
    let url = answer["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&format!("/meta/deletion-status/{code}")));
    let mut page = Value::Null;
    for _ in 0..200 {
        page = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if page["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(page["status"], "done", "{page}");
    assert!(page["finished_at"].is_string());
    assert!(!page.to_string().contains(ALICE));
    let html = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&code) && html.contains("was completed on"),
        "{html}"
    );
    assert!(!html.contains(ALICE));
    assert_gone(w.db(), ALICE).await;
    assert_eq!(
        reqwest::get(w.url("/meta/deletion-status/NOSUCHCODE"))
            .await
            .unwrap()
            .status(),
        404
    );
    w.service.shutdown().await;
}

#[tokio::test]
async fn p7_disconnecting_removes_the_token_at_once_and_the_data_after_30_days() {
    let w = World::start("p7").await;
    w.conversations().await;
    let (status, body) = get_json(w.api(
        reqwest::Method::DELETE,
        &format!("/privacy/accounts/{ACCOUNT}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokens_deleted"], 1);
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM accounts WHERE token_sealed <> ''")
            .await,
        0
    );
    let shared = w.service.shared();
    let now = Utc::now();
    retention::sweep(shared, now + chrono::Duration::days(29))
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM accounts").await, 1);
    assert!(w.scalar("SELECT COUNT(*) FROM events").await > 0);
    let report = retention::sweep(shared, now + chrono::Duration::days(31))
        .await
        .unwrap();
    assert_eq!(report.accounts.len(), 1);
    assert_eq!(report.accounts[0].counts["accounts"].deleted, 1);
    assert_gone(w.db(), ACCOUNT).await;
    assert_gone(w.db(), ALICE).await;
    w.service.shutdown().await;
}

#[tokio::test]
async fn p13_a_deletion_request_for_the_account_deletes_all_its_data() {
    let w = World::start("p13").await;
    w.conversations().await;
    let r = reqwest::Client::new()
        .post(w.url("/meta/data-deletion"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(signed(APP_SCOPED, SECRET)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let url = answer["url"].as_str().unwrap().to_owned();
    let mut page = Value::Null;
    for _ in 0..200 {
        page = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if page["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(page["status"], "done", "{page}");
    assert!(page["records_deleted"].as_u64().unwrap() > 10);
    for id in [ACCOUNT, APP_SCOPED, ALICE, BOB, "tulip"] {
        assert_gone(w.db(), id).await;
    }
    w.service.shutdown().await;
}

#[tokio::test]
async fn p9_conversations_are_kept_90_days_then_deleted_with_a_report() {
    let w = World::start("p9").await;
    w.conversations().await;
    let events = w.scalar("SELECT COUNT(*) FROM events").await;
    assert!(events >= 4);
    let shared = w.service.shared();
    let now = Utc::now();
    let notifications = w.scalar("SELECT COUNT(*) FROM inbox").await;
    retention::sweep(shared, now + chrono::Duration::days(6))
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM inbox").await, notifications);
    // the raw notifications go after a week; the conversation stays
    retention::sweep(shared, now + chrono::Duration::days(89))
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM inbox").await, 0);
    assert_eq!(w.scalar("SELECT COUNT(*) FROM events").await, events);
    retention::sweep(shared, now + chrono::Duration::days(91))
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(w.scalar("SELECT COUNT(*) FROM inbox").await, 0);
    assert_gone(w.db(), "tulip").await;
    let (status, reports) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/retention/{ACCOUNT}/reports"),
    ))
    .await;
    assert_eq!(status, 200);
    let latest = &reports["reports"][0];
    assert_eq!(
        latest["counts"]["events"]["deleted"].as_i64().unwrap(),
        events
    );
    w.service.shutdown().await;
}

#[tokio::test]
async fn p6_dm_logs_are_kept_12_months_then_anonymized() {
    let w = World::start("p6").await;
    w.conversations().await;
    let outbox = w.scalar("SELECT COUNT(*) FROM outbox").await;
    let logs = w.scalar("SELECT COUNT(*) FROM delivery_log").await;
    assert!(outbox >= 3);
    let shared = w.service.shared();
    let now = Utc::now();
    retention::sweep(shared, now + chrono::Duration::days(300))
        .await
        .unwrap();
    assert_eq!(
        w.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '{ALICE}'"
        ))
        .await,
        2
    );
    retention::sweep(shared, now + chrono::Duration::days(370))
        .await
        .unwrap();
    // the rows stay for analytics (rule, kind, status, times), without the person
    assert_eq!(w.scalar("SELECT COUNT(*) FROM outbox").await, outbox);
    assert_eq!(w.scalar("SELECT COUNT(*) FROM delivery_log").await, logs);
    assert_eq!(
        w.scalar(
            "SELECT COUNT(*) FROM outbox WHERE anonymized_at IS NULL OR recipient NOT LIKE 'psn_%'"
        )
        .await,
        0
    );
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND rule = 'link'")
            .await,
        2
    );
    let left = mentions(w.db(), ALICE).await;
    assert!(
        !left.contains_key("outbox") && !left.contains_key("delivery_log"),
        "{left:?}"
    );
    // the message texts are gone from the log (the rule that wrote them keeps its template)
    let texts = mentions(w.db(), "Here it is").await;
    assert_eq!(
        texts.keys().collect::<Vec<_>>(),
        ["automations"],
        "{texts:?}"
    );
    w.service.shutdown().await;
}

#[tokio::test]
async fn p10_an_account_can_keep_event_logs_shorter() {
    let w = World::start("p10").await;
    w.conversations().await;
    let (status, body) = get_json(
        w.api(
            reqwest::Method::PUT,
            &format!("/privacy/retention/{ACCOUNT}"),
        )
        .json(&json!({"presets": ["dm-logs"], "policies": [{
                "name": "events-7d", "data_class": "conversation", "keep_for": {"days": 7},
                "anchors": ["created"], "then": "delete", "promise": "event logs kept 7 days"}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_json(
        w.api(
            reqwest::Method::PUT,
            &format!("/privacy/retention/{ACCOUNT}"),
        )
        .json(&json!({"presets": ["forever"]})),
    )
    .await;
    assert_eq!(status, 422);
    let shared = w.service.shared();
    let now = Utc::now();
    retention::sweep(shared, now + chrono::Duration::days(6))
        .await
        .unwrap();
    assert!(w.scalar("SELECT COUNT(*) FROM events").await > 0);
    retention::sweep(shared, now + chrono::Duration::days(8))
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM events").await, 0);
    // the DM log stays (its own policy: 12 months)
    assert!(w.scalar("SELECT COUNT(*) FROM delivery_log").await > 0);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p16_legal_requests_are_recorded_with_basis_answer_and_disclosure() {
    let w = World::start("p16").await;
    w.conversations().await;
    let (status, made) = get_json(
        w.api(reqwest::Method::POST, "/privacy/legal-requests")
            .json(&json!({
            "account": ACCOUNT, "contact": ALICE, "authority": "District Court of Example",
            "request": "messages of the contact in March", "legal_basis": "court order 12/2026"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let (status, _) = get_json(
        w.api(reqwest::Method::POST, &format!("/privacy/legal-requests/{id}/answer"))
            .json(&json!({"response": "partially_disclosed", "legal_basis": "court order 12/2026",
                "disclosed": [{"entity": "events", "record_ids": [format!("{ACCOUNT}:optin:{ALICE}:1")]}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, list) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/legal-requests?account={ACCOUNT}"),
    ))
    .await;
    assert_eq!(status, 200);
    let lr = &list["legal_requests"][0];
    assert!(!list.to_string().contains(ALICE), "{list}");
    let (_, by_contact) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/legal-requests?account={ACCOUNT}&contact={ALICE}"),
    ))
    .await;
    assert_eq!(by_contact["legal_requests"].as_array().unwrap().len(), 1);
    let (_, by_other) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/legal-requests?account={ACCOUNT}&contact={BOB}"),
    ))
    .await;
    assert!(by_other["legal_requests"].as_array().unwrap().is_empty());
    assert_eq!(lr["authority"], "District Court of Example");
    assert_eq!(lr["legal_basis"], "court order 12/2026");
    assert_eq!(lr["response"], "partially_disclosed");
    assert_eq!(lr["disclosed"][0]["entity"], "events");
    let (_, audit) = get_json(w.api(reqwest::Method::GET, "/privacy/audit")).await;
    let text = audit.to_string();
    assert!(text.contains("legal_request_received") && text.contains("legal_request_answered"));
    assert!(!text.contains(ALICE));
    let entries: Vec<privacy_kit::audit::AuditEntry> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_value(e["entry"].clone()).unwrap())
        .collect();
    privacy_kit::audit::verify_chain(&entries).unwrap();
    // deleting the contact keeps the register entry, without the person's id
    ops::delete_contact(w.service.shared(), ACCOUNT, ALICE, Utc::now())
        .await
        .unwrap();
    assert_eq!(w.scalar("SELECT COUNT(*) FROM legal_requests").await, 1);
    assert_gone(w.db(), ALICE).await;
    w.service.shutdown().await;
}

#[tokio::test]
async fn p19_opt_ins_are_recorded_per_contact() {
    let w = World::start("p19").await;
    w.conversations().await;
    let (status, body) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/consents?account={ACCOUNT}&contact={ALICE}"),
    ))
    .await;
    assert_eq!(status, 200);
    let list = body["consents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["kind"], "opt_in");
    assert_eq!(list[0]["contact"], ALICE);
    let (_, body) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/privacy/consents?account={ACCOUNT}&contact={BOB}"),
    ))
    .await;
    assert!(body["consents"].as_array().unwrap().is_empty());
    // without a key: refused
    let r = reqwest::get(w.url(&format!("/privacy/consents?account={ACCOUNT}")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p20_an_unsent_message_is_no_longer_shown_or_kept() {
    let w = World::start("p20").await;
    w.conversations().await;
    let (_, conv) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/api/conversations?account={ACCOUNT}&contact={ALICE}"),
    ))
    .await;
    assert!(conv.to_string().contains("tulip"));
    assert!(!mentions(w.db(), "tulip").await.is_empty());
    let now = Utc::now().timestamp();
    w.post_webhook(
        &json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": ALICE}, "recipient": {"id": ACCOUNT}, "timestamp": now * 1000 + 5,
        "message": {"mid": "mid.alice.1", "is_deleted": true}}]}]}),
    )
    .await;
    w.settled().await;
    let (_, conv) = get_json(w.api(
        reqwest::Method::GET,
        &format!("/api/conversations?account={ACCOUNT}&contact={ALICE}"),
    ))
    .await;
    assert!(!conv.to_string().contains("tulip"), "{conv}");
    assert_gone(w.db(), "tulip").await;
    // Alice's other data (her comment) stays
    assert!(mentions(w.db(), "C-A-1").await.contains_key("events"));

    // an unsend that arrives before its message (a late delivery): the message is not kept
    w.post_webhook(
        &json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": ALICE}, "recipient": {"id": ACCOUNT}, "timestamp": now * 1000 + 9,
        "message": {"mid": "mid.alice.2", "is_deleted": true}}]}]}),
    )
    .await;
    w.settled().await;
    w.post_webhook(
        &json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": ALICE}, "recipient": {"id": ACCOUNT}, "timestamp": now * 1000 + 7,
        "message": {"mid": "mid.alice.2", "text": "the price? my pin is 4455"}}]}]}),
    )
    .await;
    w.settled().await;
    assert_gone(w.db(), "pin is 4455").await;
    assert_eq!(
        w.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE recipient = '{ALICE}' AND kind = 'send_dm'"
        ))
        .await,
        1,
        "an unsent message triggers nothing"
    );
    w.service.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Organizations and members

/// A session or an API key as `Authorization: Bearer`.
fn bearer(w: &World, token: &str, method: reqwest::Method, p: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, w.url(p))
        .bearer_auth(token)
}

fn session_of(r: &reqwest::Response) -> String {
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("igdm_session=")
        .unwrap()
        .to_owned()
}

const PASSWORD: &str = "correct horse battery";

/// Signs up; (session, organization id, user id).
async fn sign_up(w: &World, email: &str, org: &str) -> (String, String, String) {
    let r = reqwest::Client::new()
        .post(w.url("/api/signup"))
        .json(&json!({"email": email, "password": PASSWORD, "organization": org}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let session = session_of(&r);
    let body: Value = r.json().await.unwrap();
    (
        session,
        body["organization"]["id"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_str().unwrap().to_owned(),
    )
}

/// Invites `email` into the inviter's organization and accepts; (session, user id).
async fn join(w: &World, inviter: &str, email: &str, role: &str) -> (String, String) {
    let (status, made) = get_json(
        bearer(w, inviter, reqwest::Method::POST, "/api/invitations")
            .json(&json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let r = reqwest::Client::new()
        .post(w.url("/api/invitations/accept"))
        .json(&json!({"token": made["token"], "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = session_of(&r);
    let body: Value = r.json().await.unwrap();
    (session, body["user"]["id"].as_str().unwrap().to_owned())
}

/// The shop's account in an organization of its own, with everything an organization holds.
struct Tenant {
    org: String,
    owner: String,
    owner_id: String,
    /// An agent who belongs to this organization only.
    agent: String,
    agent_id: String,
    /// The Owner of another organization who is also an Admin here.
    guest_id: String,
    guest_org: String,
    /// The guest's session in their own organization.
    guest: String,
    subscription: String,
}

async fn tenant(w: &World) -> Tenant {
    let (owner, org, owner_id) = sign_up(w, "owner@shop.example", "Shop Ltd").await;
    sqlx::query("UPDATE accounts SET org_id = $1 WHERE id = $2")
        .bind(&org)
        .bind(ACCOUNT)
        .execute(w.db())
        .await
        .unwrap();
    let (agent, agent_id) = join(w, &owner, "agent@shop.example", "agent").await;
    let (guest, guest_org, guest_id) = sign_up(w, "guest@elsewhere.example", "Elsewhere").await;
    let (_, joined) = join(w, &owner, "guest@elsewhere.example", "admin").await;
    assert_eq!(joined, guest_id);
    // an open invitation, an API key, a webhook subscription with a failed delivery
    let (status, _) = get_json(
        bearer(w, &owner, reqwest::Method::POST, "/api/invitations")
            .json(&json!({"email": "later@shop.example", "role": "agent"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = get_json(
        bearer(w, &owner, reqwest::Method::POST, "/api/api-keys")
            .json(&json!({"name": "shop-key", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, hook) = get_json(
        bearer(
            w,
            &owner,
            reqwest::Method::POST,
            "/api/webhooks/subscriptions",
        )
        .json(
            &json!({"url": "https://hooks.shop.example/in", "event_types": ["message.received"],
                "account": ACCOUNT}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let subscription = hook["id"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp_millis();
    let payload = json!({"type": "message.received", "data": {"account": ACCOUNT, "contact": ALICE,
        "text": "what is the price? my secret is tulip"}});
    sqlx::query(
        "INSERT INTO outbound_deliveries (id, subscription_id, org_id, account, contact, event_type, \
         payload, status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ('msg_shop_1', $1, $2, $3, $4, 'message.received', $5, 'failed', 1, $6, $6, $6)",
    )
    .bind(&subscription)
    .bind(&org)
    .bind(ACCOUNT)
    .bind(ALICE)
    .bind(payload.to_string())
    .bind(now)
    .execute(w.db())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbound_attempts (delivery_id, subscription_id, org_id, account, attempt, outcome, \
         status_code, error, duration_ms, at) VALUES ('msg_shop_1', $1, $2, $3, 1, 'failed', 503, 'busy', 5, $4)",
    )
    .bind(&subscription)
    .bind(&org)
    .bind(ACCOUNT)
    .bind(now)
    .execute(w.db())
    .await
    .unwrap();
    // a legal request of the organization
    let (status, _) = get_json(
        bearer(w, &owner, reqwest::Method::POST, "/privacy/legal-requests").json(&json!({
            "account": ACCOUNT, "contact": ALICE, "authority": "Court",
            "request": "messages", "legal_basis": "order 1"})),
    )
    .await;
    assert_eq!(status, 201);
    Tenant {
        org,
        owner,
        owner_id,
        agent,
        agent_id,
        guest_id,
        guest_org,
        guest,
        subscription,
    }
}

/// The union of the whole-schema scans for `needles`, without the privacy bookkeeping (whose
/// ids are pseudonyms or cleared).
async fn reachable(db: &sqlx::AnyPool, needles: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in needles {
        for (table, rows) in mentions(db, n).await {
            if !BOOKKEEPING.contains(&table.as_str()) {
                out.entry(table).or_default().extend(rows);
            }
        }
    }
    out
}

async fn download(url: &str) -> Vec<u8> {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

/// Every record of a bundle as text.
fn bundle_text(bytes: &[u8]) -> String {
    let manifest = privacy_kit::export::verify_bundle(Cursor::new(bytes)).unwrap();
    manifest
        .files
        .iter()
        .flat_map(|f| privacy_kit::export::read_records(Cursor::new(bytes), &f.entity).unwrap())
        .map(|r| r.to_string())
        .collect()
}

#[tokio::test]
async fn p11_deleting_an_organization_deletes_everything_in_it() {
    let w = World::start("p11-org").await;
    // the conversations first: the subscription then holds only the recorded delivery
    w.conversations().await;
    let t = tenant(&w).await;
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"account": ACCOUNT, "contact": ALICE})),
    )
    .await;
    assert_eq!(status, 200);
    let before = mentions(w.db(), &t.org).await;
    for table in [
        "organizations",
        "accounts",
        "members",
        "invitations",
        "sessions",
        "api_keys",
        "webhook_subscriptions",
        "outbound_deliveries",
        "outbound_attempts",
        "legal_requests",
        "export_links",
    ] {
        assert!(before.contains_key(table), "{table}: {before:?}");
    }
    let path = "/privacy/organization";
    let body = json!({"organization": t.org, "confirm": true});
    // only an Owner, only with the confirmation, only its own organization
    let (status, _) =
        get_json(bearer(&w, &t.agent, reqwest::Method::DELETE, path).json(&body)).await;
    assert_eq!(status, 403);
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::DELETE, path).json(&json!({"organization": t.org})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::DELETE, path)
            .json(&json!({"organization": t.guest_org, "confirm": true})),
    )
    .await;
    assert_eq!(status, 404);
    let unchanged = mentions(w.db(), &t.org).await;
    assert_eq!(
        unchanged.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(unchanged["members"].len(), 3);

    let (status, receipt) =
        get_json(bearer(&w, &t.owner, reqwest::Method::DELETE, path).json(&body)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["status"], "done", "{receipt}");
    for table in [
        "accounts",
        "events",
        "members",
        "users",
        "outbound_deliveries",
    ] {
        assert!(
            receipt["counts"][table]["deleted"].as_u64().unwrap() >= 1,
            "{table}: {receipt}"
        );
    }
    // nothing in any table holds the organization, its account, its people or its messages
    for gone in [
        t.org.as_str(),
        ACCOUNT,
        ALICE,
        BOB,
        "tulip",
        "alice_u",
        "owner@shop.example",
        "agent@shop.example",
        "later@shop.example",
        t.owner_id.as_str(),
        t.agent_id.as_str(),
        t.subscription.as_str(),
        "msg_shop_1",
        "hooks.shop.example",
        "shop-key",
    ] {
        assert_gone(w.db(), gone).await;
    }
    // the register of legal requests keeps the request, anonymized
    assert_eq!(w.scalar("SELECT COUNT(*) FROM legal_requests").await, 1);
    // the guest keeps their profile and their own organization; only the membership went
    let guest = mentions(w.db(), &t.guest_id).await;
    assert!(
        guest.contains_key("users") && guest.contains_key("members"),
        "{guest:?}"
    );
    assert_eq!(
        w.scalar(&format!(
            "SELECT COUNT(*) FROM members WHERE user_id = '{}'",
            t.guest_id
        ))
        .await,
        1
    );
    assert!(mentions(w.db(), &t.guest_org)
        .await
        .contains_key("organizations"));
    // the deleted Owner's session is gone with the organization
    let (status, _) = get_json(bearer(&w, &t.owner, reqwest::Method::GET, "/api/me")).await;
    assert_eq!(status, 401);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p14_an_organization_export_holds_every_row_reachable_from_it() {
    let w = World::start("p14-org").await;
    // the conversations first: the subscription then holds only the recorded delivery
    w.conversations().await;
    let t = tenant(&w).await;
    let expected = reachable(
        w.db(),
        &[&t.org, ACCOUNT, &t.owner_id, &t.agent_id, ALICE, BOB],
    )
    .await;
    for table in [
        "users",
        "sessions",
        "api_keys",
        "outbound_attempts",
        "events",
    ] {
        assert!(expected.contains_key(table), "{table}: {expected:?}");
    }
    // Admins and Owners may export the organization; Agents may not; nobody another one
    let (status, _) = get_json(
        bearer(&w, &t.agent, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"organization": t.org})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"organization": t.guest_org})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, made) = get_json(
        bearer(&w, &t.owner, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"organization": t.org})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let bytes = download(made["url"].as_str().unwrap()).await;
    let manifest = privacy_kit::export::verify_bundle(Cursor::new(&bytes)).unwrap();
    assert_eq!(manifest.records(), made["records"].as_u64().unwrap());
    for (table, rows) in &expected {
        assert!(
            !rows.contains("?"),
            "table `{table}` holds the organization's data but privacy-kit's schema does not declare it"
        );
        let ids: BTreeSet<String> = privacy_kit::export::read_records(Cursor::new(&bytes), table)
            .unwrap_or_default()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        for row in rows {
            let found = if table == "inbox" {
                ids.iter().any(|id| id.starts_with(&format!("{row}#")))
            } else {
                ids.contains(row)
            };
            assert!(
                found,
                "{table} row {row} is missing from the export ({ids:?})"
            );
        }
    }
    // no secret: tokens, password, key, invitation and session hashes, webhook secrets
    let all = bundle_text(&bytes);
    assert!(all.contains("tulip") && all.contains("agent@shop.example"));
    for secret in ["IGAA-test-token", "$argon2", "whsec_"] {
        assert!(!all.contains(secret), "the export holds `{secret}`");
    }
    let hashes: Vec<String> = sqlx::query_scalar(
        "SELECT token_hash FROM sessions UNION ALL SELECT key_hash FROM api_keys \
         UNION ALL SELECT token_hash FROM invitations",
    )
    .fetch_all(w.db())
    .await
    .unwrap();
    assert!(hashes.len() >= 4);
    for h in &hashes {
        assert!(!all.contains(h.as_str()), "the export holds a hash");
    }
    // nothing of the other organization
    assert!(!all.contains(&t.guest_org));
    assert!(!all.contains("Elsewhere"));
    w.service.shutdown().await;
}

#[tokio::test]
async fn p14_a_member_can_export_their_own_data() {
    let w = World::start("p14-member").await;
    // the conversations first: the subscription then holds only the recorded delivery
    w.conversations().await;
    let t = tenant(&w).await;
    let (status, made) = get_json(
        bearer(&w, &t.agent, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"member": "me"})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let bytes = download(made["url"].as_str().unwrap()).await;
    let users = privacy_kit::export::read_records(Cursor::new(&bytes), "users").unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], t.agent_id.as_str());
    assert_eq!(users[0]["fields"]["email"], "agent@shop.example");
    assert_eq!(users[0]["fields"]["password_hash"], "[redacted]");
    let members = privacy_kit::export::read_records(Cursor::new(&bytes), "members").unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["fields"]["role"], "agent");
    let sessions = privacy_kit::export::read_records(Cursor::new(&bytes), "sessions").unwrap();
    assert!(!sessions.is_empty());
    // every row holding the member's id is in the bundle, and no hash of their sessions
    for (table, rows) in reachable(w.db(), &[&t.agent_id]).await {
        let ids: BTreeSet<String> = privacy_kit::export::read_records(Cursor::new(&bytes), &table)
            .unwrap_or_default()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        for row in rows {
            assert!(
                ids.contains(&row),
                "{table} row {row} is missing from the export"
            );
        }
    }
    let all = bundle_text(&bytes);
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM sessions WHERE user_id = $1")
            .bind(&t.agent_id)
            .fetch_all(w.db())
            .await
            .unwrap();
    for h in &hashes {
        assert!(
            !all.contains(h.as_str()),
            "the export holds a session's hash"
        );
    }
    assert!(!all.contains("$argon2"));
    // the member's own data only: no conversation, no other member
    assert!(!all.contains("tulip") && !all.contains("owner@shop.example"));
    // nobody exports another member; an API key is no member
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"member": t.agent_id})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get_json(
        w.api(reqwest::Method::POST, "/privacy/exports")
            .json(&json!({"member": "me"})),
    )
    .await;
    assert_eq!(status, 400);
    w.service.shutdown().await;
}

#[tokio::test]
async fn p13_a_member_can_delete_their_own_account() {
    let w = World::start("p13-member").await;
    w.conversations().await;
    let t = tenant(&w).await;
    let path = "/privacy/member";
    let me = json!({"member": "me", "confirm": true});
    // the last Owner of an organization hands it over or deletes it first
    let (status, body) =
        get_json(bearer(&w, &t.owner, reqwest::Method::DELETE, path).json(&me)).await;
    assert_eq!(status, 409, "{body}");
    // nobody deletes another member; the confirmation is required
    let (status, _) = get_json(
        bearer(&w, &t.owner, reqwest::Method::DELETE, path)
            .json(&json!({"member": t.agent_id, "confirm": true})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get_json(
        bearer(&w, &t.agent, reqwest::Method::DELETE, path).json(&json!({"member": "me"})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(mentions(w.db(), &t.agent_id).await.contains_key("users"));

    let (status, receipt) =
        get_json(bearer(&w, &t.agent, reqwest::Method::DELETE, path).json(&me)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["status"], "done", "{receipt}");
    assert_gone(w.db(), &t.agent_id).await;
    assert_gone(w.db(), "agent@shop.example").await;
    let (status, _) = get_json(bearer(&w, &t.agent, reqwest::Method::GET, "/api/me")).await;
    assert_eq!(status, 401);
    // the organization and its other members are untouched
    assert_eq!(
        w.scalar(&format!(
            "SELECT COUNT(*) FROM members WHERE org_id = '{}'",
            t.org
        ))
        .await,
        2
    );
    assert!(mentions(w.db(), ALICE).await.contains_key("events"));
    // the receipt is the organization's business no more than the person's: no ids in it
    assert!(!receipt.to_string().contains(&t.agent_id));
    w.service.shutdown().await;
}

#[tokio::test]
async fn p4_privacy_registers_are_kept_per_organization() {
    let w = World::start("p4-registers").await;
    w.conversations().await;
    let t = tenant(&w).await;
    let (status, deleted) = get_json(bearer(
        &w,
        &t.owner,
        reqwest::Method::DELETE,
        &format!("/privacy/contacts/{ACCOUNT}/{BOB}"),
    ))
    .await;
    assert_eq!(status, 200, "{deleted}");
    let code = deleted["confirmation_code"].as_str().unwrap();
    let get = |who: &str, p: &str| get_json(bearer(&w, who, reqwest::Method::GET, p));
    // the shop sees its register, its legal request and its receipt
    let (_, audit) = get(&t.owner, "/privacy/audit").await;
    let text = audit.to_string();
    assert!(
        text.contains("legal_request_received") && text.contains("deletion_finished"),
        "{audit}"
    );
    let (_, legal) = get(&t.owner, "/privacy/legal-requests").await;
    assert_eq!(legal["legal_requests"].as_array().unwrap().len(), 1);
    let (status, _) = get(&t.owner, &format!("/privacy/deletions/{code}")).await;
    assert_eq!(status, 200);
    // the Owner of another organization sees none of it
    let (status, audit) = get(&t.guest, "/privacy/audit").await;
    assert_eq!(status, 200);
    assert!(audit["entries"].as_array().unwrap().is_empty(), "{audit}");
    let (_, legal) = get(&t.guest, "/privacy/legal-requests").await;
    assert!(legal["legal_requests"].as_array().unwrap().is_empty());
    let (status, _) = get(&t.guest, &format!("/privacy/deletions/{code}")).await;
    assert_eq!(status, 404);
    for p in [
        format!("/privacy/consents?account={ACCOUNT}"),
        format!("/privacy/retention/{ACCOUNT}"),
        format!("/privacy/audit?account={ACCOUNT}"),
    ] {
        let (status, _) = get(&t.guest, &p).await;
        assert_eq!(status, 404, "{p}");
    }
    // nor does the operator's organization, which held the account before
    let (_, audit) = get_json(w.api(reqwest::Method::GET, "/privacy/audit")).await;
    assert!(
        !audit.to_string().contains("legal_request_received"),
        "{audit}"
    );
    // an Agent of the shop reads consents, not the register
    let (status, _) = get(&t.agent, &format!("/privacy/consents?account={ACCOUNT}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&t.agent, "/privacy/audit").await;
    assert_eq!(status, 403);
    w.service.shutdown().await;
}
