//! The promises that needed more than the other files' features: P5 (only the data the
//! automations need), P8 (an organization's own retention classes), P15 (data subjects'
//! requests answered within 30 days) and P17 (access to the management API is logged). Each
//! runs on SQLite and, with `IGDM_TEST_POSTGRES_URL` set, on PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use igdm::service::http::access_log;
use igdm::service::http::privacy::{self as ops, NewRequest, RequestStatus};
use igdm::service::pipeline::{org_retention, retention};
use igdm::service::{testing, Config, RunningService, Service};
use privacy_kit::audit::LegalResponse;
use privacy_kit::retention::{Anchor, Disposal, Period};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

use igdm::service::testing::TestDir as Dir;

/// The service (no workers: the tests move the clock themselves).
async fn start(dir: &Dir, graph: Option<String>) -> RunningService {
    let mut c = Config::for_tests(&dir.0);
    c.database = testing::fresh_database().await;
    c.app_secret = "promises-secret".into();
    c.verify_token = "vt".into();
    // nothing answers here unless a test starts a Graph API: subscribing and media sync fail
    // fast and are only logged
    c.graph_base_url = graph.unwrap_or_else(|| "http://127.0.0.1:9".into());
    c.graph_version = "v1".into();
    c.workers = false;
    Service::start(c).await.unwrap()
}

/// A caller: a session cookie or an API key.
#[derive(Clone)]
struct Who {
    base: String,
    header: (&'static str, String),
}

impl Who {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, String) {
        let mut request = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .request(method, format!("{}{path}", self.base))
            .header(self.header.0, &self.header.1);
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let location = answer
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            status,
            format!("{location}{}", answer.text().await.unwrap()),
        )
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = self.call(method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }
}

fn session_of(answer: &reqwest::Response) -> String {
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("igdm_session=")
        .unwrap()
        .to_string()
}

fn member(service: &RunningService, token: &str) -> Who {
    Who {
        base: service.base_url(),
        header: ("cookie", format!("igdm_session={token}")),
    }
}

async fn post(service: &RunningService, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", service.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An organization: its Owner, id and the Owner's user id.
struct Org {
    owner: Who,
    id: String,
    owner_id: String,
}

async fn sign_up(service: &RunningService, email: &str, name: &str) -> Org {
    let answer = post(
        service,
        "/api/signup",
        json!({ "email": email, "password": PASSWORD, "organization": name }),
    )
    .await;
    assert_eq!(answer.status(), 201);
    let owner = member(service, &session_of(&answer));
    let body: Value = answer.json().await.unwrap();
    Org {
        owner,
        id: body["organization"]["id"].as_str().unwrap().to_string(),
        owner_id: body["user"]["id"].as_str().unwrap().to_string(),
    }
}

async fn invite(service: &RunningService, by: &Who, email: &str, role: &str) -> (Who, String) {
    let created = by
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": email, "role": role })),
        )
        .await;
    let answer = post(
        service,
        "/api/invitations/accept",
        json!({ "token": created["token"], "password": PASSWORD }),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let session = session_of(&answer);
    let body: Value = answer.json().await.unwrap();
    (
        member(service, &session),
        body["user"]["id"].as_str().unwrap().to_string(),
    )
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

async fn count(service: &RunningService, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// P8

/// P8: an organization declares its own data classes with their periods (payment records 7
/// years from creation, support correspondence 2 years from the last activity); the sweeper,
/// handed the time, keeps each record until its period is over and removes it then, without
/// touching another organization's records.
#[tokio::test]
async fn p8_payment_records_are_kept_7_years_and_support_correspondence_2_years() {
    testing::on_each_backend(p8_on).await;
}

async fn p8_on() {
    let dir = Dir::local("p8");
    let service = start(&dir, None).await;
    let shared = service.shared().clone();
    let a = sign_up(&service, "owner@a.example", "A").await;
    let b = sign_up(&service, "owner@b.example", "B").await;

    // declared through the API (validated), and read back
    let (status, text) = a
        .owner
        .call(
            Method::PUT,
            "/privacy/retention-classes/payment",
            Some(&json!({"keep_for": {"years": 0}})),
        )
        .await;
    assert_eq!(status, 422, "{text}");
    a.owner
        .json(
            Method::PUT,
            "/privacy/retention-classes/payment",
            Some(
                &json!({"keep_for": {"years": 7}, "anchor": "created", "then": "delete",
                "promise": "Payment records are kept 7 years"}),
            ),
        )
        .await;
    a.owner
        .json(
            Method::PUT,
            "/privacy/retention-classes/support",
            Some(
                &json!({"keep_for": {"years": 2}, "anchor": "last_activity", "then": "delete",
                "promise": "Support correspondence is kept 2 years"}),
            ),
        )
        .await;
    let classes = a
        .owner
        .json(Method::GET, "/privacy/retention-classes", None)
        .await;
    assert_eq!(classes["classes"].as_array().unwrap().len(), 2, "{classes}");
    // a record of an undeclared class is refused
    let (status, _) = a
        .owner
        .call(
            Method::POST,
            "/privacy/records",
            Some(&json!({"data_class": "invoices", "body": {}})),
        )
        .await;
    assert_eq!(status, 404);
    // B's classes are its own: none declared
    let none = b
        .owner
        .json(Method::GET, "/privacy/retention-classes", None)
        .await;
    assert!(none["classes"].as_array().unwrap().is_empty());

    let start = at(2020, 3, 1);
    let db = &shared.db;
    let invoice = org_retention::keep_record(
        db,
        &a.id,
        "payment",
        Some("INV-1"),
        &json!({"amount": 4900}),
        start,
    )
    .await
    .unwrap();
    let ticket = org_retention::keep_record(
        db,
        &a.id,
        "support",
        Some("T-1"),
        &json!({"text": "my reel link does not work"}),
        start,
    )
    .await
    .unwrap();
    // B keeps a payment record too, under a 1-year class of its own
    org_retention::set_class(
        db,
        &b.id,
        &org_retention::class(
            "payment",
            Period::Years(1),
            Anchor::Created,
            Disposal::Delete,
            "",
        ),
        0,
    )
    .await
    .unwrap();
    let b_invoice = org_retention::keep_record(db, &b.id, "payment", None, &json!({}), start)
        .await
        .unwrap();
    let exists = |id: &str| format!("SELECT COUNT(*) FROM org_records WHERE id = '{id}'");

    // a year and a half later, the support thread has a new message: its 2 years start again
    assert!(
        org_retention::touch_record(db, &a.id, &ticket, at(2021, 9, 1))
            .await
            .unwrap()
    );
    // B's 1-year class removes B's record only
    let r = retention::sweep(&shared, at(2021, 9, 2)).await.unwrap();
    assert_eq!(count(&service, &exists(&b_invoice)).await, 0);
    assert_eq!(count(&service, &exists(&invoice)).await, 1);
    assert_eq!(count(&service, &exists(&ticket)).await, 1);
    assert_eq!(
        r.classes.deleted.get(&format!("{}/payment", b.id)),
        Some(&1)
    );

    // two years after the creation, but not after the last activity: still kept
    retention::sweep(&shared, at(2022, 3, 2)).await.unwrap();
    assert_eq!(count(&service, &exists(&ticket)).await, 1);
    // a class that still keeps records cannot go (they would have no period)
    let (status, text) = a
        .owner
        .call(Method::DELETE, "/privacy/retention-classes/support", None)
        .await;
    assert_eq!(status, 409, "{text}");
    // the day before two years from the last activity: kept; the day after: removed
    retention::sweep(&shared, at(2023, 8, 31)).await.unwrap();
    assert_eq!(count(&service, &exists(&ticket)).await, 1);
    let r = retention::sweep(&shared, at(2023, 9, 2)).await.unwrap();
    assert_eq!(count(&service, &exists(&ticket)).await, 0);
    assert_eq!(
        r.classes.deleted.get(&format!("{}/support", a.id)),
        Some(&1)
    );
    assert_eq!(count(&service, &exists(&invoice)).await, 1);

    // the payment record: kept the day before 7 years, removed on the day
    retention::sweep(&shared, at(2027, 2, 28)).await.unwrap();
    assert_eq!(count(&service, &exists(&invoice)).await, 1);
    retention::sweep(&shared, at(2027, 3, 1)).await.unwrap();
    assert_eq!(count(&service, &exists(&invoice)).await, 0);

    // every run that removed something is in A's audit register (counts only)
    let audit = a.owner.json(Method::GET, "/privacy/audit", None).await;
    let runs = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains("retention_run"))
        .count();
    assert_eq!(runs, 2, "{audit}");
    assert!(!audit.to_string().contains("INV-1"));
    // once empty, a class can go; then it is not found
    let (status, text) = a
        .owner
        .call(Method::DELETE, "/privacy/retention-classes/support", None)
        .await;
    assert_eq!(status, 204, "{text}");
    let (status, _) = a
        .owner
        .call(Method::DELETE, "/privacy/retention-classes/support", None)
        .await;
    assert_eq!(status, 404);
    let classes = a
        .owner
        .json(Method::GET, "/privacy/retention-classes", None)
        .await;
    assert_eq!(classes["classes"].as_array().unwrap().len(), 1, "{classes}");
    service.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// P15

/// P15: access, rectification, restriction and objection requests get a due date 30 days after
/// they are received; past it, an unanswered request is listed as overdue; answering it (with
/// the answer in the audit register) takes it off the overdue list.
#[tokio::test]
async fn p15_subject_requests_are_due_in_30_days_and_listed_when_overdue() {
    testing::on_each_backend(p15_on).await;
}

async fn p15_on() {
    let dir = Dir::local("p15");
    let service = start(&dir, None).await;
    let shared = service.shared().clone();
    let a = sign_up(&service, "owner@a.example", "A").await;
    let b = sign_up(&service, "owner@b.example", "B").await;
    service
        .connect_account_in(&a.id, "17841400000000101", Some("shop_a"), "tok-a")
        .await
        .unwrap();

    // through the API: the kind is checked, the due date answered
    let (status, text) = a
        .owner
        .call(
            Method::POST,
            "/privacy/legal-requests",
            Some(&json!({"kind": "gossip", "account": "17841400000000101"})),
        )
        .await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("access"), "{text}");
    let made = a
        .owner
        .json(
            Method::POST,
            "/privacy/legal-requests",
            Some(&json!({"kind": "access", "account": "17841400000000101",
                "contact": "IGSIDP15", "request": "a copy of my data"})),
        )
        .await;
    let due = made["due_at"].as_i64().unwrap();
    let listed = a
        .owner
        .json(Method::GET, "/privacy/legal-requests?status=open", None)
        .await;
    let received = listed["legal_requests"][0]["received_at"].as_i64().unwrap();
    assert_eq!(due - received, 30 * 86_400_000);
    assert_eq!(listed["legal_requests"][0]["kind"], "access");
    assert!(listed["legal_requests"][0]["legal_basis"]
        .as_str()
        .unwrap()
        .contains("Art. 15"));

    // with the clock handed in
    let received = at(2025, 1, 10);
    let mut ids = Vec::new();
    for kind in ["access", "rectification", "restriction", "objection"] {
        let r = ops::record_request(
            &shared,
            &a.id,
            &NewRequest::data_subject(kind, "17841400000000101", "IGSIDP15", "please"),
            received,
        )
        .await
        .unwrap();
        assert_eq!(
            r.due_at,
            Some((received + Duration::days(30)).timestamp_millis())
        );
        ids.push(r.id);
    }
    let overdue = |now: DateTime<Utc>| {
        let shared = shared.clone();
        let org = a.id.clone();
        async move {
            let mut conn = shared.db.pool().acquire().await.unwrap();
            ops::list_requests(&mut conn, &org, None, None, RequestStatus::Overdue, now)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<BTreeSet<_>>()
        }
    };
    // day 29: none overdue; day 30: all four (the API's own request is not due yet)
    assert!(overdue(received + Duration::days(29)).await.is_empty());
    let late = received + Duration::days(30);
    assert_eq!(overdue(late).await, ids.iter().cloned().collect());

    // answering takes a request off the list, and the answer is in the audit register
    ops::answer_request(
        &shared,
        &a.id,
        &ids[1],
        LegalResponse::Fulfilled,
        "GDPR Art. 16",
        &[],
        received + Duration::days(12),
    )
    .await
    .unwrap();
    let left = overdue(late).await;
    assert_eq!(
        left,
        BTreeSet::from([ids[0].clone(), ids[2].clone(), ids[3].clone()])
    );
    // answered late still counts as answered
    ops::answer_request(
        &shared,
        &a.id,
        &ids[0],
        LegalResponse::Disclosed,
        "GDPR Art. 15",
        &[],
        late + Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!(overdue(late + Duration::days(2)).await.len(), 2);
    let audit = a.owner.json(Method::GET, "/privacy/audit", None).await;
    let text = audit.to_string();
    assert!(
        text.contains(&ids[1]) && text.contains("fulfilled"),
        "{text}"
    );
    assert!(
        !text.contains("IGSIDP15"),
        "the contact is pseudonymized: {text}"
    );

    // another organization can neither list nor answer them
    let theirs = b
        .owner
        .json(Method::GET, "/privacy/legal-requests?status=overdue", None)
        .await;
    assert!(theirs["legal_requests"].as_array().unwrap().is_empty());
    let (status, _) = b
        .owner
        .call(
            Method::POST,
            &format!("/privacy/legal-requests/{}/answer", ids[2]),
            Some(&json!({"response": "refused", "legal_basis": "none"})),
        )
        .await;
    assert_eq!(status, 404);
    // the API shows the overdue ones at the real time (they were received in 2025)
    let api = a
        .owner
        .json(Method::GET, "/privacy/legal-requests?status=overdue", None)
        .await;
    let api_ids: BTreeSet<&str> = api["legal_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(api_ids, BTreeSet::from([ids[2].as_str(), ids[3].as_str()]));
    assert!(api["legal_requests"][0]["overdue"].as_bool().unwrap());
    service.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// P17

/// P17: every authenticated management request is logged with its caller (the member, or the
/// API key's id, never a secret), the route pattern and the status; Owners read their own
/// organization's log only, Admins and Agents are refused; entries older than the retention
/// period are deleted by the sweeper.
#[tokio::test]
async fn p17_management_access_is_logged_and_only_owners_read_it() {
    testing::on_each_backend(p17_on).await;
}

async fn p17_on() {
    let dir = Dir::local("p17");
    let service = start(&dir, None).await;
    let a = sign_up(&service, "owner@a.example", "A").await;
    let b = sign_up(&service, "owner@b.example", "B").await;
    let (admin, admin_id) = invite(&service, &a.owner, "admin@a.example", "admin").await;
    let (agent, _) = invite(&service, &a.owner, "agent@a.example", "agent").await;
    let created = a
        .owner
        .json(
            Method::POST,
            "/api/api-keys",
            Some(&json!({"name": "ci", "role": "admin"})),
        )
        .await;
    let secret = created["key"].as_str().unwrap().to_string();
    let key_id = created["api_key"]["id"].as_str().unwrap().to_string();
    let key = Who {
        base: service.base_url(),
        header: ("authorization", format!("Bearer {secret}")),
    };

    key.json(Method::GET, "/api/accounts", None).await;
    let (status, _) = key
        .call(Method::GET, "/api/accounts/17841400009999999", None)
        .await;
    assert_eq!(status, 404);
    admin.json(Method::GET, "/api/me", None).await;
    b.owner.json(Method::GET, "/api/me", None).await;
    // no credentials: refused and not an entry of anyone's log
    let (status, _) = Who {
        base: service.base_url(),
        header: ("x-nothing", String::new()),
    }
    .call(Method::GET, "/api/accounts", None)
    .await;
    assert_eq!(status, 401);

    // starting the connect flow is a management request too (refused for the Agent)
    let (status, _) = agent.call(Method::GET, "/connect/instagram", None).await;
    assert_eq!(status, 403);
    let (status, _) = a.owner.call(Method::GET, "/connect/instagram", None).await;
    assert_eq!(status, 302);
    // roles: Owners only
    for who in [&admin, &agent, &key] {
        let (status, text) = who.call(Method::GET, "/api/access-log", None).await;
        assert_eq!(status, 403, "{text}");
    }
    let log = a
        .owner
        .json(Method::GET, "/api/access-log?limit=1000", None)
        .await;
    let entries = log["entries"].as_array().unwrap();
    let text = log.to_string();
    // the key's two calls, by key id, with the route pattern and the status
    let by_key: Vec<&Value> = entries
        .iter()
        .filter(|e| e["api_key_id"] == key_id.as_str())
        .collect();
    let routes: Vec<(&str, &str, i64)> = by_key
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap(),
                e["route"].as_str().unwrap(),
                e["status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(routes.contains(&("GET", "/api/accounts", 200)), "{text}");
    assert!(
        routes.contains(&("GET", "/api/accounts/{id}", 404)),
        "{text}"
    );
    assert!(routes.contains(&("GET", "/api/access-log", 403)), "{text}");
    assert!(by_key
        .iter()
        .all(|e| e["credential"] == "api_key" && e["user_id"].is_null()));
    // the Admin's call names the Admin; the Owner's own calls name the Owner
    assert!(entries.iter().any(|e| e["user_id"] == admin_id.as_str()
        && e["route"] == "/api/me"
        && e["credential"] == "session"));
    assert!(entries
        .iter()
        .any(|e| e["user_id"] == a.owner_id.as_str() && e["route"] == "/api/api-keys"));
    assert!(entries.iter().any(|e| e["user_id"] == a.owner_id.as_str()
        && e["route"] == "/connect/instagram"
        && e["status"] == 302));
    assert!(entries
        .iter()
        .any(|e| e["route"] == "/connect/instagram" && e["status"] == 403));
    // no secret, no raw id from a path, nothing of B
    assert!(!text.contains(&secret), "the key leaked: {text}");
    assert!(!text.contains("17841400009999999"), "{text}");
    assert!(!text.contains(&b.owner_id), "{text}");
    assert!(entries.iter().all(|e| e["org_id"] == a.id.as_str()));
    let cookie = a.owner.header.1.trim_start_matches("igdm_session=");
    assert!(!text.contains(cookie));
    // and the table holds no secret either
    let rows = count(
        &service,
        &format!(
            "SELECT COUNT(*) FROM access_log WHERE user_ref = '{secret}' OR api_key_id = '{secret}' \
             OR route LIKE '%{cookie}%' OR user_ref = '{admin_id}'"
        ),
    )
    .await;
    assert_eq!(rows, 0);

    // B's Owner sees B's entries only
    let theirs = b
        .owner
        .json(Method::GET, "/api/access-log?limit=1000", None)
        .await;
    let theirs = theirs["entries"].as_array().unwrap();
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|e| e["org_id"] == b.id.as_str()));

    // a removed member's entries stay, no longer naming them (the log holds pseudonyms only)
    let (status, text) = a
        .owner
        .call(Method::DELETE, &format!("/api/members/{admin_id}"), None)
        .await;
    assert!(status.is_success(), "{status} {text}");
    let after = a
        .owner
        .json(Method::GET, "/api/access-log?limit=1000", None)
        .await;
    let admins: Vec<&Value> = after["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "/api/me" && e["credential"] == "session")
        .collect();
    assert!(!admins.is_empty());
    assert!(admins
        .iter()
        .all(|e| e["user_id"].is_null() && e["user_ref"].is_string()));
    assert!(!after.to_string().contains(&admin_id));

    // the retention period: 365 days by default
    let shared = service.shared().clone();
    let now = Utc::now();
    retention::sweep(&shared, now + Duration::days(364))
        .await
        .unwrap();
    let mut conn = shared.db.pool().acquire().await.unwrap();
    assert!(
        !access_log::entries(&mut conn, shared.vault.pseudonymizer(), &a.id, 0, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    let r = retention::sweep(&shared, now + Duration::days(366))
        .await
        .unwrap();
    assert!(r.classes.access_log_deleted > 0);
    assert!(
        access_log::entries(&mut conn, shared.vault.pseudonymizer(), &a.id, 0, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    drop(conn);
    service.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// P5

const SECRET: &str = "promises-secret";

async fn graph() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
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
    Mock::given(method("GET"))
        .and(path("/v1/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "26000000000501"})))
        .mount(&server)
        .await;
    server
}

/// The `subscribed_fields` of each subscription the service made, in order.
async fn subscriptions(graph: &wiremock::MockServer) -> Vec<String> {
    graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/subscribed_apps"))
        .map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "subscribed_fields")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        })
        .collect()
}

async fn post_webhook(service: &RunningService, body: &Value) {
    let body = body.to_string().into_bytes();
    let signature = webhook_verify::meta::sign(SECRET.as_bytes(), &body).unwrap();
    let r = reqwest::Client::new()
        .post(service.webhook_url())
        .header("X-Hub-Signature-256", signature.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Processes every stored notification (the workers are off).
async fn process(service: &RunningService) {
    for _ in 0..50 {
        igdm::service::pipeline::inbox::run_once(service.shared())
            .await
            .unwrap();
        if count(
            service,
            "SELECT COUNT(*) FROM inbox WHERE status = 'pending'",
        )
        .await
            == 0
        {
            return;
        }
    }
    panic!("the inbox did not drain");
}

async fn save_rules(owner: &Who, rules: String) {
    let saved = reqwest::Client::new()
        .post(format!("{}/api/automations", owner.base))
        .header(owner.header.0, &owner.header.1)
        .body(rules)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 201, "{}", saved.text().await.unwrap());
}

fn dm(account: &str, from: &str, mid: &str, text: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({"sender": {"id": from}, "recipient": {"id": account}, "timestamp": now * 1000,
        "message": {"mid": mid, "text": text}})
}

/// Every raw notification body, as text.
async fn bodies(service: &RunningService) -> String {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM inbox")
        .fetch_all(service.shared().db.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// P5: with `automations` data access, a comment-only configuration asks no messaging
/// permission, subscribes to no `messages` field, and does not read the private messages Meta
/// delivers anyway (Meta sends an app every field it subscribes to, whatever the account chose):
/// no text, sender or decision is kept, and the raw notification loses them at once. Comments
/// are still read; an organization with `full` access (an inbox) and one whose automations
/// start to use DMs read them.
#[tokio::test]
async fn p5_a_comment_only_configuration_neither_asks_for_nor_reads_private_messages() {
    testing::on_each_backend(p5_on).await;
}

async fn p5_on() {
    const A_ACCOUNT: &str = "17841400000000501";
    const B_ACCOUNT: &str = "17841400000000502";
    let dir = Dir::local("p5");
    let graph = graph().await;
    let service = start(&dir, Some(graph.uri())).await;
    let a = sign_up(&service, "owner@a.example", "A").await;
    let b = sign_up(&service, "owner@b.example", "B").await;

    // the default is full access (inboxes)
    let full = a
        .owner
        .json(Method::GET, "/api/organization/data-access", None)
        .await;
    assert_eq!(full["data_access"], "full");
    assert!(full["scopes"]
        .to_string()
        .contains("instagram_business_manage_messages"));
    // only what the automations need
    let set = a
        .owner
        .json(
            Method::PUT,
            "/api/organization/data-access",
            Some(&json!({"data_access": "automations"})),
        )
        .await;
    assert_eq!(
        set["scopes"],
        json!([
            "instagram_business_basic",
            "instagram_business_manage_comments"
        ])
    );
    assert_eq!(set["webhook_fields"], json!(["comments"]));
    // the connect flow asks no messaging permission
    let (status, location) = a.owner.call(Method::GET, "/connect/instagram", None).await;
    assert_eq!(status, 302);
    assert!(
        location.contains("instagram_business_manage_comments"),
        "{location}"
    );
    assert!(!location.contains("manage_messages"), "{location}");
    let (_, b_location) = b.owner.call(Method::GET, "/connect/instagram", None).await;
    assert!(b_location.contains("instagram_business_manage_messages"));

    // connecting subscribes A's account to comments only, B's to messages too
    service
        .connect_account_in(&a.id, A_ACCOUNT, Some("shop_a"), "tok-a")
        .await
        .unwrap();
    service
        .connect_account_in(&b.id, B_ACCOUNT, Some("shop_b"), "tok-b")
        .await
        .unwrap();
    let subscribed = subscriptions(&graph).await;
    assert_eq!(subscribed.len(), 2, "{subscribed:?}");
    assert_eq!(subscribed[0], "comments");
    assert!(subscribed[1].split(',').any(|f| f == "messages"));

    // a comment-only configuration (private replies need no messaging permission)
    save_rules(
        &a.owner,
        format!(
            "account = \"{A_ACCOUNT}\"\n[[rules]]\nid = \"link\"\non = [\"comment\"]\n\
             match = {{ mode = \"contains\", keywords = [\"link\"] }}\n\
             actions = [{{ type = \"private_reply\", text = \"Here: https://example.com\" }}]\n"
        ),
    )
    .await;
    let still = a
        .owner
        .json(Method::GET, "/api/organization/data-access", None)
        .await;
    assert_eq!(still["needs"], json!({"comments": true, "messages": false}));

    // Meta delivers A's DMs anyway, in a notification with a comment
    let now = Utc::now().timestamp();
    post_webhook(&service, &json!({"object": "instagram", "entry": [
        {"id": A_ACCOUNT, "time": now, "changes": [{"field": "comments", "value": {
            "id": "C-P5-1", "text": "link please", "from": {"id": "IGSIDALICE501", "username": "alice"},
            "media": {"id": "M1", "media_product_type": "REELS"}}}]},
        {"id": A_ACCOUNT, "time": now, "messaging": [
            dm(A_ACCOUNT, "IGSIDALICE501", "mid.p5.a1", "my secret is tulip")]}
    ]}))
    .await;
    post_webhook(
        &service,
        &json!({"object": "instagram", "entry": [
            {"id": B_ACCOUNT, "time": now, "messaging": [
                dm(B_ACCOUNT, "IGSIDBOB502", "mid.p5.b1", "my secret is rose")]}
        ]}),
    )
    .await;
    process(&service).await;

    // A: the comment is read and answered; the DM is kept only as a key
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM events WHERE text LIKE '%link please%'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'private_reply'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM events WHERE text LIKE '%tulip%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM events WHERE outcome = 'not_read' AND contact = '' AND text IS NULL"
        )
        .await,
        1
    );
    let raw = bodies(&service).await;
    assert!(!raw.contains("tulip"), "{raw}");
    assert!(raw.contains("link please"), "{raw}");
    // B (full access): its DM is read
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM events WHERE text LIKE '%rose%'"
        )
        .await,
        1
    );
    assert!(raw.contains("rose"));

    // A's automations start to use DMs: they need messages, and DMs are read from now on
    save_rules(
        &a.owner,
        format!(
            "account = \"{A_ACCOUNT}\"\n[[rules]]\nid = \"price\"\non = [\"message\"]\n\
             match = {{ mode = \"contains\", keywords = [\"price\"] }}\n\
             actions = [{{ type = \"send_dm\", message = {{ kind = \"text\", text = \"Prices\" }} }}]\n"
        ),
    )
    .await;
    let now_needs = a
        .owner
        .json(Method::GET, "/api/organization/data-access", None)
        .await;
    assert_eq!(now_needs["needs"]["messages"], true);
    // ... and A's connected account is subscribed to messages at once (B's is not touched)
    let subscribed = subscriptions(&graph).await;
    assert_eq!(subscribed.len(), 3, "{subscribed:?}");
    assert!(
        subscribed[2].split(',').any(|f| f == "messages"),
        "{subscribed:?}"
    );
    post_webhook(
        &service,
        &json!({"object": "instagram", "entry": [
            {"id": A_ACCOUNT, "time": now, "messaging": [
                dm(A_ACCOUNT, "IGSIDALICE501", "mid.p5.a2", "what is the price of a daisy")]}
        ]}),
    )
    .await;
    process(&service).await;
    assert_eq!(
        count(
            &service,
            "SELECT COUNT(*) FROM events WHERE text LIKE '%daisy%'"
        )
        .await,
        1
    );
    service.shutdown().await;
}
