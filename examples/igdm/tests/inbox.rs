//! The team inbox of the reference service, on both databases, against a `wiremock` Graph API:
//! conversations recorded from webhooks (messages, echoes, reactions, reads, unsends), status
//! and snooze, manual and round-robin assignment, each role's permissions, notes, agent replies
//! in the 24-hour / 7-day windows (and refused after), automation paused while a human handles
//! the conversation, and first-response metrics.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use igdm::service::{testing, Config, RunningService, Service};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "inbox-app-secret";
const ACCOUNT: &str = "17841400000000077";
const PASSWORD: &str = "correct horse battery";

/// A test's data directory and its database (a fresh one per directory on PostgreSQL).
use igdm::service::testing::TestDir as Dir;

/// A Graph API that accepts every send with a new message id (`out-1`, `out-2`, ...).
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
    let n = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/v1/me/messages"))
        .respond_with(move |_: &Request| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": "P", "message_id": format!("out-{i}")}))
        })
        .mount(&server)
        .await;
    server
}

/// A logged-in member (session cookie) or an API key.
#[derive(Clone)]
struct Who {
    base: String,
    header: (&'static str, String),
}

impl Who {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .header(self.header.0, &self.header.1);
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
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

/// The service with an organization: its Owner, an Admin and an Agent (invited in that order),
/// and the account connected to it.
struct Team {
    service: RunningService,
    graph: MockServer,
    owner: Who,
    admin: Who,
    agent: Who,
    admin_id: String,
    agent_id: String,
    org_id: String,
    _dir: Dir,
}

async fn team(name: &str, configure: impl FnOnce(&mut Config)) -> Team {
    let dir = Dir::new(name).await;
    let graph = graph().await;
    let mut c = Config::for_tests(&dir.0);
    c.database = dir.1.clone();
    c.app_secret = SECRET.into();
    c.graph_base_url = graph.uri();
    c.graph_version = "v1".into();
    configure(&mut c);
    let service = Service::start(c).await.unwrap();
    let base = service.base_url();
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{base}/api/signup"))
        .json(&json!({ "email": "owner@inbox.example", "password": PASSWORD, "organization": "Inbox" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let owner = Who {
        base: base.clone(),
        header: ("cookie", format!("igdm_session={}", session_of(&answer))),
    };
    let signed: Value = answer.json().await.unwrap();
    let org_id = signed["organization"]["id"].as_str().unwrap().to_string();
    let mut members = Vec::new();
    for (email, role) in [
        ("admin@inbox.example", "admin"),
        ("agent@inbox.example", "agent"),
    ] {
        let created = owner
            .json(
                Method::POST,
                "/api/invitations",
                Some(&json!({ "email": email, "role": role })),
            )
            .await;
        let answer = client
            .post(format!("{base}/api/invitations/accept"))
            .json(&json!({ "token": created["token"], "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let who = Who {
            base: base.clone(),
            header: ("cookie", format!("igdm_session={}", session_of(&answer))),
        };
        let body: Value = answer.json().await.unwrap();
        members.push((who, body["user"]["id"].as_str().unwrap().to_string()));
    }
    service
        .connect_account_in(&org_id, ACCOUNT, Some("shop"), "IGAA-token")
        .await
        .unwrap();
    let (agent, agent_id) = members.pop().unwrap();
    let (admin, admin_id) = members.pop().unwrap();
    Team {
        service,
        graph,
        owner,
        admin,
        agent,
        admin_id,
        agent_id,
        org_id,
        _dir: dir,
    }
}

impl Team {
    async fn webhook(&self, messaging: Value) {
        let body = json!({"object": "instagram", "entry": [{
            "id": ACCOUNT, "time": chrono::Utc::now().timestamp(), "messaging": [messaging]}]})
        .to_string();
        let signature = webhook_verify::meta::sign(SECRET.as_bytes(), body.as_bytes()).unwrap();
        let answer = reqwest::Client::new()
            .post(self.service.webhook_url())
            .header("X-Hub-Signature-256", signature.to_string())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    /// A message from `person` at `at` (Unix ms).
    async fn message_at(&self, mid: &str, person: &str, text: &str, at: i64) {
        self.webhook(
            json!({"sender": {"id": person}, "recipient": {"id": ACCOUNT}, "timestamp": at,
            "message": {"mid": mid, "text": text}}),
        )
        .await;
    }

    async fn message(&self, mid: &str, person: &str, text: &str) {
        self.message_at(mid, person, text, now()).await;
    }

    /// The echo of a message the account sent to `person` at `at`.
    async fn echo_at(&self, mid: &str, person: &str, text: &str, at: i64) {
        self.webhook(
            json!({"sender": {"id": ACCOUNT}, "recipient": {"id": person}, "timestamp": at,
            "message": {"mid": mid, "text": text, "is_echo": true}}),
        )
        .await;
    }

    /// An agent's reply to `person` as the sender leaves it (outbox `key` sent at `at`, with
    /// its `mid`); its echo then shows it as the agent's.
    async fn agent_reply_sent(&self, key: &str, person: &str, mid: &str, at: i64) {
        sqlx::query(
            "INSERT INTO outbox (key, account, event_key, action_index, kind, recipient, action, \
             status, next_attempt_at, mid, created_at, updated_at) \
             VALUES ($1, $2, $1, 0, 'send_dm', $3, '{}', 'sent', $4, $5, $4, $4)",
        )
        .bind(format!("reply:{key}:{}", self.agent_id))
        .bind(ACCOUNT)
        .bind(person)
        .bind(at)
        .bind(mid)
        .execute(self.service.shared().db.pool())
        .await
        .unwrap();
    }

    /// Moves the contact's last message (as the inbox recorded it) to `at`.
    async fn last_inbound(&self, person: &str, at: i64) {
        sqlx::query(
            "UPDATE conversations SET last_inbound_at = $1 WHERE account = $2 AND contact = $3",
        )
        .bind(at)
        .bind(ACCOUNT)
        .bind(person)
        .execute(self.service.shared().db.pool())
        .await
        .unwrap();
    }

    async fn int(&self, sql: &'static str, binds: &[&str]) -> i64 {
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_one(self.service.shared().db.pool()).await.unwrap()
    }

    /// The conversation with `person` as the Owner sees it, once it exists.
    async fn conversation(&self, person: &str) -> Value {
        let (status, body) = self
            .owner
            .call(
                Method::GET,
                &format!("/api/inbox/conversations/{ACCOUNT}/{person}"),
                None,
            )
            .await;
        if status == StatusCode::OK {
            body
        } else {
            Value::Null
        }
    }

    async fn until(&self, what: &str, person: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let c = self.conversation(person).await;
            if !c.is_null() && check(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for: {what}; last: {}",
            self.conversation(person).await
        );
    }

    /// The Send API requests made so far.
    async fn sends(&self) -> Vec<Value> {
        self.graph
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/v1/me/messages")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    async fn sends_until(&self, what: &str, n: usize) -> Vec<Value> {
        for _ in 0..600 {
            let sends = self.sends().await;
            if sends.len() >= n {
                return sends;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}: {:?}", self.sends().await);
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn messages(c: &Value) -> Vec<Value> {
    c["messages"].as_array().cloned().unwrap_or_default()
}

fn message<'a>(c: &'a Value, mid: &str) -> Option<&'a Value> {
    c["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mid"] == mid))
}

#[tokio::test]
async fn messages_echoes_reactions_reads_and_unsends_are_recorded() {
    testing::on_each_backend(recording_on).await;
}

async fn recording_on() {
    let t = team("record", |_| {}).await;
    t.message("m-in-1", "P1", "hello, is this in stock?").await;
    let c = t
        .until("the message is recorded", "P1", |c| {
            message(c, "m-in-1").is_some()
        })
        .await;
    assert_eq!(c["conversation"]["status"], "open");
    let m = message(&c, "m-in-1").unwrap();
    assert_eq!(m["direction"], "in");
    assert_eq!(m["sent_by"], "contact");
    assert_eq!(m["text"], "hello, is this in stock?");
    // an echo of a message sent from Instagram's app
    t.echo_at("m-out-1", "P1", "yes it is", now()).await;
    let c = t
        .until("the echo is recorded", "P1", |c| {
            message(c, "m-out-1").is_some()
        })
        .await;
    let m = message(&c, "m-out-1").unwrap();
    assert_eq!(m["direction"], "out");
    assert_eq!(m["sent_by"], "app");
    assert!(c["conversation"]["last_outbound_at"].is_i64());
    // reactions: react, then unreact
    t.webhook(
        json!({"sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now(),
        "reaction": {"mid": "m-out-1", "action": "react", "reaction": "love", "emoji": "❤"}}),
    )
    .await;
    t.until("the reaction is shown", "P1", |c| {
        message(c, "m-out-1").unwrap()["reactions"]["P1"] == "❤"
    })
    .await;
    t.webhook(
        json!({"sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now() + 1,
        "reaction": {"mid": "m-out-1", "action": "unreact"}}),
    )
    .await;
    t.until("the reaction is removed", "P1", |c| {
        message(c, "m-out-1").unwrap()["reactions"] == json!({})
    })
    .await;
    // a read receipt
    assert!(message(&c, "m-out-1").unwrap()["read_at"].is_null());
    t.webhook(
        json!({"sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now(),
        "read": {"mid": "m-out-1"}}),
    )
    .await;
    t.until("the read receipt is shown", "P1", |c| {
        message(c, "m-out-1").unwrap()["read_at"].is_i64()
    })
    .await;
    // an unsend removes the message
    t.webhook(
        json!({"sender": {"id": "P1"}, "recipient": {"id": ACCOUNT}, "timestamp": now(),
        "message": {"mid": "m-in-1", "is_deleted": true}}),
    )
    .await;
    let c = t
        .until("the unsent message is removed", "P1", |c| {
            message(c, "m-in-1").is_none()
        })
        .await;
    assert_eq!(messages(&c).len(), 1);
    // an echo that arrives before the sender stored the message id of its send (the one row
    // being sent to the contact): the agent's reply
    sqlx::query(
        "INSERT INTO outbox (key, account, event_key, action_index, kind, recipient, action, \
         status, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $1, 0, 'send_dm', 'P1', '{}', 'sending', 0, 0, 0)",
    )
    .bind(format!("reply:early:{}", t.agent_id))
    .bind(ACCOUNT)
    .execute(t.service.shared().db.pool())
    .await
    .unwrap();
    t.echo_at("m-out-early", "P1", "typed fast", now()).await;
    let c = t
        .until("the early echo is recorded", "P1", |c| {
            message(c, "m-out-early").is_some()
        })
        .await;
    let m = message(&c, "m-out-early").unwrap();
    assert_eq!(m["sent_by"], "agent");
    assert_eq!(m["agent"], t.agent_id.as_str());
    assert_eq!(
        t.int(
            "SELECT COUNT(*) FROM messages WHERE account = $1 AND mid = 'm-in-1'",
            &[ACCOUNT]
        )
        .await,
        0
    );
    t.service.shutdown().await;
}

#[tokio::test]
async fn status_snooze_reopen_and_pages() {
    testing::on_each_backend(status_on).await;
}

async fn status_on() {
    let t = team("status", |_| {}).await;
    for p in ["S1", "S2", "S3"] {
        t.message(&format!("m-{p}"), p, "hi").await;
        t.until("recorded", p, |c| c["conversation"]["status"] == "open")
            .await;
    }
    let path = format!("/api/inbox/conversations/{ACCOUNT}/S1");
    // the Agent closes it
    let closed = t
        .agent
        .json(Method::PATCH, &path, Some(&json!({"status": "closed"})))
        .await;
    assert_eq!(closed["status"], "closed");
    let (status, _) = t
        .agent
        .call(Method::PATCH, &path, Some(&json!({"status": "done"})))
        .await;
    assert_eq!(status, 422);
    let list = t
        .agent
        .json(Method::GET, "/api/inbox/conversations?status=closed", None)
        .await;
    let contacts: Vec<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact"].as_str().unwrap())
        .collect();
    assert_eq!(contacts, vec!["S1"]);
    // a new message reopens it
    t.message("m-S1-2", "S1", "one more thing").await;
    t.until("reopened", "S1", |c| c["conversation"]["status"] == "open")
        .await;
    // snooze S2: not in the open list, in the snoozed one; a message wakes it
    let later = now() + 3_600_000;
    let snoozed = t
        .agent
        .json(
            Method::PATCH,
            &format!("/api/inbox/conversations/{ACCOUNT}/S2"),
            Some(&json!({"snoozed_until": later})),
        )
        .await;
    assert_eq!(snoozed["snoozed_until"], later);
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contact"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let open = t
        .agent
        .json(Method::GET, "/api/inbox/conversations?status=open", None)
        .await;
    assert_eq!(ids(&open), vec!["S1", "S3"]);
    let sleeping = t
        .agent
        .json(Method::GET, "/api/inbox/conversations?status=snoozed", None)
        .await;
    assert_eq!(ids(&sleeping), vec!["S2"]);
    t.message("m-S2-2", "S2", "wake up").await;
    t.until("woken", "S2", |c| {
        c["conversation"]["snoozed_until"].is_null()
    })
    .await;
    let open = t
        .agent
        .json(Method::GET, "/api/inbox/conversations?status=open", None)
        .await;
    assert_eq!(ids(&open), vec!["S1", "S2", "S3"]);
    // pages
    let first = t
        .agent
        .json(Method::GET, "/api/inbox/conversations?limit=2", None)
        .await;
    assert_eq!(first["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_offset"], 2);
    let second = t
        .agent
        .json(
            Method::GET,
            "/api/inbox/conversations?limit=2&offset=2",
            None,
        )
        .await;
    assert_eq!(second["conversations"].as_array().unwrap().len(), 1);
    assert!(second["next_offset"].is_null());
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    assert_eq!(all, vec!["S1", "S2", "S3"]);
    t.service.shutdown().await;
}

#[tokio::test]
async fn manual_and_round_robin_assignment_with_role_rules() {
    testing::on_each_backend(assignment_on).await;
}

async fn assignment_on() {
    let t = team("assign", |_| {}).await;
    t.message("m-A1", "A1", "hi").await;
    t.until("recorded", "A1", |c| c["conversation"]["status"] == "open")
        .await;
    let assign = format!("/api/inbox/conversations/{ACCOUNT}/A1/assign");
    // an Agent takes it themselves, but may not give it to someone else
    let taken = t
        .agent
        .json(
            Method::POST,
            &assign,
            Some(&json!({"assignee": t.agent_id})),
        )
        .await;
    assert_eq!(taken["assignee"], t.agent_id.as_str());
    let (status, _) = t
        .agent
        .call(
            Method::POST,
            &assign,
            Some(&json!({"assignee": t.admin_id})),
        )
        .await;
    assert_eq!(status, 403);
    // an Admin may; a stranger is refused
    let given = t
        .admin
        .json(
            Method::POST,
            &assign,
            Some(&json!({"assignee": t.admin_id})),
        )
        .await;
    assert_eq!(given["assignee"], t.admin_id.as_str());
    let (status, _) = t
        .admin
        .call(
            Method::POST,
            &assign,
            Some(&json!({"assignee": "usr_not_a_member"})),
        )
        .await;
    assert_eq!(status, 422);
    let mine = t
        .admin
        .json(
            Method::GET,
            &format!("/api/inbox/conversations?assignee={}", t.admin_id),
            None,
        )
        .await;
    assert_eq!(mine["conversations"].as_array().unwrap().len(), 1);
    // round-robin: only Owners and Admins turn it on
    let (status, _) = t
        .agent
        .call(
            Method::PUT,
            "/api/inbox/settings",
            Some(&json!({"round_robin": true})),
        )
        .await;
    assert_eq!(status, 403);
    t.admin
        .json(
            Method::PUT,
            "/api/inbox/settings",
            Some(&json!({"round_robin": true})),
        )
        .await;
    let settings = t.agent.json(Method::GET, "/api/inbox/settings", None).await;
    assert_eq!(settings["round_robin"], true);
    // new conversations go to the Admin, the Agent, the Admin (Agents and Admins in turn,
    // oldest member first; the Owner is not in the rotation)
    let mut assignees = Vec::new();
    for p in ["R1", "R2", "R3"] {
        t.message(&format!("m-{p}"), p, "hello").await;
        let c = t
            .until("assigned", p, |c| c["conversation"]["assignee"].is_string())
            .await;
        assignees.push(c["conversation"]["assignee"].as_str().unwrap().to_string());
    }
    assert_eq!(
        assignees,
        vec![t.admin_id.clone(), t.agent_id.clone(), t.admin_id.clone()]
    );
    // a reopened conversation goes to the next in turn too
    t.agent
        .json(
            Method::PATCH,
            &format!("/api/inbox/conversations/{ACCOUNT}/R1"),
            Some(&json!({"status": "closed"})),
        )
        .await;
    t.message("m-R1-2", "R1", "back again").await;
    let c = t
        .until("reopened", "R1", |c| c["conversation"]["status"] == "open")
        .await;
    assert_eq!(c["conversation"]["assignee"], t.agent_id.as_str());
    let unassigned = t
        .owner
        .json(
            Method::GET,
            "/api/inbox/conversations?unassigned=true",
            None,
        )
        .await;
    assert_eq!(unassigned["conversations"].as_array().unwrap().len(), 0);
    t.service.shutdown().await;
}

#[tokio::test]
async fn notes_and_role_permissions() {
    testing::on_each_backend(notes_on).await;
}

async fn notes_on() {
    let t = team("notes", |_| {}).await;
    t.message("m-N1", "N1", "hi").await;
    t.until("recorded", "N1", |c| c["conversation"]["status"] == "open")
        .await;
    let notes = format!("/api/inbox/conversations/{ACCOUNT}/N1/notes");
    let (status, note) = t
        .agent
        .call(
            Method::POST,
            &notes,
            Some(&json!({"text": "VIP customer, be nice"})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["author"], t.agent_id.as_str());
    let (status, _) = t
        .agent
        .call(Method::POST, &notes, Some(&json!({"text": "  "})))
        .await;
    assert_eq!(status, 422);
    let c = t.conversation("N1").await;
    assert_eq!(c["notes"][0]["text"], "VIP customer, be nice");
    // notes are internal: nothing was sent
    assert!(t.sends().await.is_empty());
    // an unknown conversation of the organization's account
    let (status, _) = t
        .agent
        .call(
            Method::POST,
            &format!("/api/inbox/conversations/{ACCOUNT}/nobody/notes"),
            Some(&json!({"text": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    // each role: every one may view, note and reply; settings need Owner or Admin
    for (who, may_manage) in [(&t.owner, true), (&t.admin, true), (&t.agent, false)] {
        let (status, _) = who
            .call(Method::GET, "/api/inbox/conversations", None)
            .await;
        assert_eq!(status, 200);
        let (status, _) = who
            .call(Method::POST, &notes, Some(&json!({"text": "seen"})))
            .await;
        assert_eq!(status, 201);
        let (status, _) = who
            .call(
                Method::POST,
                &format!("/api/inbox/conversations/{ACCOUNT}/N1/reply"),
                Some(&json!({"text": "on it"})),
            )
            .await;
        assert_eq!(status, 202);
        let (status, _) = who
            .call(
                Method::PUT,
                "/api/inbox/settings",
                Some(&json!({"round_robin": false})),
            )
            .await;
        assert_eq!(status.is_success(), may_manage, "{status}");
    }
    // another organization sees none of it
    let answer = reqwest::Client::new()
        .post(format!("{}/api/signup", t.service.base_url()))
        .json(
            &json!({ "email": "other@else.example", "password": PASSWORD, "organization": "Else" }),
        )
        .send()
        .await
        .unwrap();
    let other = Who {
        base: t.service.base_url(),
        header: ("cookie", format!("igdm_session={}", session_of(&answer))),
    };
    let (status, _) = other
        .call(Method::POST, &notes, Some(&json!({"text": "x"})))
        .await;
    assert_eq!(status, 404);
    let list = other
        .json(Method::GET, "/api/inbox/conversations", None)
        .await;
    assert_eq!(list["conversations"], json!([]));
    t.service.shutdown().await;
}

#[tokio::test]
async fn replies_are_standard_in_24_hours_human_agent_to_7_days_and_refused_after() {
    testing::on_each_backend(windows_on).await;
}

async fn windows_on() {
    let t = team("windows", |_| {}).await;
    let first = now() - 60_000;
    t.message_at("m-W1", "W1", "where is my order?", first)
        .await;
    t.until("recorded", "W1", |c| c["conversation"]["status"] == "open")
        .await;
    let reply = format!("/api/inbox/conversations/{ACCOUNT}/W1/reply");
    // within 24 hours: a standard message
    let (status, sent) = t
        .agent
        .call(
            Method::POST,
            &reply,
            Some(&json!({"text": "It ships today"})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["tag"].is_null());
    let sends = t.sends_until("the standard reply", 1).await;
    assert_eq!(sends[0]["message"]["text"], "It ships today");
    assert_eq!(sends[0]["recipient"]["id"], "W1");
    assert!(sends[0].get("tag").is_none(), "{}", sends[0]);
    // it shows as the agent's message as soon as it is sent (before any echo), and times the
    // first response
    let key = sent["outbox_key"].as_str().unwrap().to_string();
    let c = t
        .until("the sent reply is shown", "W1", |c| {
            message(c, "out-1").is_some()
        })
        .await;
    let m = message(&c, "out-1").unwrap();
    assert_eq!(m["sent_by"], "agent");
    assert_eq!(m["agent"], t.agent_id.as_str());
    assert_eq!(m["text"], "It ships today");
    let responded = c["conversation"]["first_response_ms"].as_i64().unwrap();
    assert!(responded > 0 && responded <= now() - first, "{c}");
    // its echo finds it shown: one message, the same first response
    t.echo_at("out-1", "W1", "It ships today", now()).await;
    for _ in 0..600 {
        let delivered = t
            .int(
                "SELECT COUNT(*) FROM outbox WHERE key = $1 AND status = 'delivered'",
                &[&key],
            )
            .await;
        if delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = t.conversation("W1").await;
    let shown = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mid"] == "out-1")
        .count();
    assert_eq!(shown, 1, "{c}");
    assert_eq!(c["conversation"]["first_response_ms"], responded);
    // 2 days after the contact's last message: HUMAN_AGENT, from a person only
    t.last_inbound("W1", now() - 2 * 86_400_000).await;
    let (status, sent) = t
        .agent
        .call(
            Method::POST,
            &reply,
            Some(&json!({"text": "Sorry for the wait"})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["tag"], "HUMAN_AGENT");
    let sends = t.sends_until("the tagged reply", 2).await;
    assert_eq!(sends[1]["tag"], "HUMAN_AGENT");
    assert_eq!(sends[1]["messaging_type"], "MESSAGE_TAG");
    let key = t
        .owner
        .json(
            Method::POST,
            "/api/api-keys",
            Some(&json!({"name": "bot", "role": "agent"})),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let bot = Who {
        base: t.service.base_url(),
        header: ("authorization", format!("Bearer {key}")),
    };
    let (status, refused) = bot
        .call(Method::POST, &reply, Some(&json!({"text": "automated"})))
        .await;
    assert_eq!(status, 422);
    assert!(
        refused["error"].as_str().unwrap().contains("HUMAN_AGENT"),
        "{refused}"
    );
    // 8 days: refused, saying when the window closed
    let eight_days = now() - 8 * 86_400_000;
    t.last_inbound("W1", eight_days).await;
    let (status, refused) = t
        .agent
        .call(Method::POST, &reply, Some(&json!({"text": "hello?"})))
        .await;
    assert_eq!(status, 422);
    assert_eq!(refused["window_closed_at"], eight_days + 7 * 86_400_000);
    assert!(
        refused["error"].as_str().unwrap().contains("closed at"),
        "{refused}"
    );
    // nothing more was queued
    assert_eq!(
        t.int(
            "SELECT COUNT(*) FROM outbox WHERE account = $1 AND recipient = 'W1'",
            &[ACCOUNT]
        )
        .await,
        2
    );
    t.service.shutdown().await;
}

const RULES: &str = r#"
account = "17841400000000077"
[[rules]]
id = "price"
on = ["message"]
match = { mode = "contains", keywords = ["price"] }
actions = [{ type = "send_dm", message = { kind = "text", text = "It costs 10 EUR" } }]
"#;

#[tokio::test]
async fn automation_is_paused_while_a_human_handles_the_conversation() {
    testing::on_each_backend(paused_on).await;
}

async fn outcome(t: &Team, key: &str) -> String {
    for _ in 0..600 {
        let row: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM events WHERE account = $1 AND key = $2")
                .bind(ACCOUNT)
                .bind(key)
                .fetch_optional(t.service.shared().db.pool())
                .await
                .unwrap();
        if let Some(o) = row {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("event {key} was not processed");
}

async fn paused_on() {
    let t = team("paused", |_| {}).await;
    t.service.put_automations(RULES).await.unwrap();
    t.message("m-H1", "H1", "what is the price?").await;
    assert_eq!(outcome(&t, "mid:m-H1").await, "fired");
    t.sends_until("the automation's answer", 1).await;
    // an agent replies: the automation stays silent
    let reply = format!("/api/inbox/conversations/{ACCOUNT}/H1/reply");
    let sent = t
        .agent
        .json(Method::POST, &reply, Some(&json!({"text": "Let me check"})))
        .await;
    assert!(sent["automation_paused_until"].is_i64());
    t.sends_until("the agent's reply", 2).await;
    t.message("m-H1-2", "H1", "and the price with shipping?")
        .await;
    assert_eq!(outcome(&t, "mid:m-H1-2").await, "paused");
    assert_eq!(
        t.int(
            "SELECT COUNT(*) FROM outbox WHERE event_key = 'mid:m-H1-2'",
            &[]
        )
        .await,
        0
    );
    // closing hands the contact back to the automations
    t.agent
        .json(
            Method::PATCH,
            &format!("/api/inbox/conversations/{ACCOUNT}/H1"),
            Some(&json!({"status": "closed"})),
        )
        .await;
    t.message("m-H1-3", "H1", "price again?").await;
    assert_eq!(outcome(&t, "mid:m-H1-3").await, "fired");
    // assigning pauses too
    t.message("m-G1", "G1", "price?").await;
    assert_eq!(outcome(&t, "mid:m-G1").await, "fired");
    t.agent
        .json(
            Method::POST,
            &format!("/api/inbox/conversations/{ACCOUNT}/G1/assign"),
            Some(&json!({"assignee": t.agent_id})),
        )
        .await;
    t.message("m-G1-2", "G1", "price??").await;
    assert_eq!(outcome(&t, "mid:m-G1-2").await, "paused");
    t.service.shutdown().await;
}

#[tokio::test]
async fn a_pause_ends_after_the_configured_time() {
    testing::on_each_backend(pause_expires_on).await;
}

async fn pause_expires_on() {
    // zero hours: the hand-off is over at once
    let t = team("expires", |c| c.inbox_human_hours = 0).await;
    t.service.put_automations(RULES).await.unwrap();
    t.message("m-E1", "E1", "price?").await;
    assert_eq!(outcome(&t, "mid:m-E1").await, "fired");
    t.agent
        .json(
            Method::POST,
            &format!("/api/inbox/conversations/{ACCOUNT}/E1/reply"),
            Some(&json!({"text": "hello"})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    t.message("m-E1-2", "E1", "price now?").await;
    assert_eq!(outcome(&t, "mid:m-E1-2").await, "fired");
    t.service.shutdown().await;
}

#[tokio::test]
async fn first_response_metrics_give_the_median_and_p90() {
    testing::on_each_backend(metrics_on).await;
}

async fn metrics_on() {
    let t = team("metrics", |_| {}).await;
    let base = now() - 3_600_000;
    // five conversations answered by an agent after 1, 2, 3, 4 and 10 minutes
    for (i, minutes) in [1i64, 2, 3, 4, 10].into_iter().enumerate() {
        let person = format!("F{i}");
        let asked = base + i64::try_from(i).unwrap() * 1000;
        t.message_at(&format!("m-F{i}"), &person, "hello?", asked)
            .await;
        t.until("recorded", &person, |c| {
            c["conversation"]["status"] == "open"
        })
        .await;
        // the agent's reply as the sender left it (sent, with its mid), then its echo
        t.agent_reply_sent(&format!("r{i}"), &person, &format!("out-F{i}"), asked)
            .await;
        t.echo_at(
            &format!("out-F{i}"),
            &person,
            "hi!",
            asked + minutes * 60_000,
        )
        .await;
        t.until("answered", &person, |c| {
            c["conversation"]["first_response_ms"].is_i64()
        })
        .await;
    }
    // a message sent from Instagram's app is no agent reply
    t.message_at("m-F9", "F9", "hello?", base).await;
    t.echo_at("out-F9", "F9", "auto", base + 1000).await;
    t.until("the echo", "F9", |c| message(c, "out-F9").is_some())
        .await;
    let m = t.agent.json(Method::GET, "/api/inbox/metrics", None).await;
    assert_eq!(m["first_response"]["conversations"], 5, "{m}");
    assert_eq!(m["first_response"]["responses"], 5, "{m}");
    assert_eq!(m["first_response"]["median_ms"], 3 * 60_000);
    assert_eq!(m["first_response"]["p90_ms"], 10 * 60_000);
    // F0's conversation is closed, reopened by a new message and answered after 30 minutes:
    // both answers count (the conversation itself shows the new episode's)
    let path = format!("/api/inbox/conversations/{ACCOUNT}/F0");
    t.agent
        .json(Method::PATCH, &path, Some(&json!({"status": "closed"})))
        .await;
    let again = base + 120_000;
    t.message_at("m-F0-again", "F0", "me again", again).await;
    t.until("reopened", "F0", |c| {
        c["conversation"]["status"] == "open" && c["conversation"]["first_response_ms"].is_null()
    })
    .await;
    t.agent_reply_sent("r0-again", "F0", "out-F0-again", again)
        .await;
    t.echo_at("out-F0-again", "F0", "sorry!", again + 30 * 60_000)
        .await;
    t.until("answered again", "F0", |c| {
        c["conversation"]["first_response_ms"] == 30 * 60_000
    })
    .await;
    let m = t.agent.json(Method::GET, "/api/inbox/metrics", None).await;
    assert_eq!(m["first_response"]["responses"], 6, "{m}");
    assert_eq!(m["first_response"]["conversations"], 5, "{m}");
    assert_eq!(m["first_response"]["median_ms"], 3 * 60_000);
    assert_eq!(m["first_response"]["p90_ms"], 30 * 60_000);
    // a period before any of them
    let m = t
        .agent
        .json(
            Method::GET,
            &format!("/api/inbox/metrics?from={}&to={}", base - 7_200_000, base),
            None,
        )
        .await;
    assert_eq!(m["first_response"]["conversations"], 0);
    assert!(m["first_response"]["median_ms"].is_null());
    let _ = &t.org_id;
    t.service.shutdown().await;
}

#[tokio::test]
async fn p11_deleting_a_contact_deletes_its_conversation_messages_and_notes() {
    testing::on_each_backend(contact_deletion_on).await;
}

async fn contact_deletion_on() {
    let t = team("p11", |_| {}).await;
    for (mid, person) in [("m-D1", "D1"), ("m-K1", "K1")] {
        t.message(mid, person, &format!("secret of {person}")).await;
        t.until("recorded", person, |c| message(c, mid).is_some())
            .await;
        t.agent
            .json(
                Method::POST,
                &format!("/api/inbox/conversations/{ACCOUNT}/{person}/notes"),
                Some(&json!({"text": format!("note about {person}")})),
            )
            .await;
    }
    // the contact's export holds its conversation, messages and notes
    let made = t
        .owner
        .json(
            Method::POST,
            "/privacy/exports",
            Some(&json!({"account": ACCOUNT, "contact": "D1"})),
        )
        .await;
    let bytes = reqwest::get(made["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    for (entity, needle) in [
        ("conversations", "D1"),
        ("messages", "secret of D1"),
        ("conversation_notes", "note about D1"),
    ] {
        let records =
            privacy_kit::export::read_records(std::io::Cursor::new(&bytes), entity).unwrap();
        let all = serde_json::to_string(&records).unwrap();
        assert!(all.contains(needle), "{entity}: {all}");
        assert!(!all.contains("K1"), "{entity}: {all}");
    }
    // deleting the contact deletes them; the other contact's stay
    let (status, body) = t
        .owner
        .call(
            Method::DELETE,
            &format!("/privacy/contacts/{ACCOUNT}/D1"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    for table in ["conversations", "messages", "conversation_notes"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE contact = $1");
        let count = |who: &'static str| {
            let sql = sql.clone();
            let pool = t.service.shared().db.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(who)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("D1").await, 0, "{table}");
        assert_eq!(count("K1").await, 1, "{table}");
    }
    assert!(t.conversation("D1").await.is_null());
    t.service.shutdown().await;
}

/// A responder that notes when it answered (to check the pace of the calls).
fn timed(
    log: &Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    answer: ResponseTemplate,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    let log = log.clone();
    move |_: &Request| {
        log.lock().unwrap().push(std::time::Instant::now());
        answer.clone()
    }
}

#[tokio::test]
async fn backfill_reads_existing_threads_at_two_calls_per_second_and_resumes() {
    testing::on_each_backend(backfill_on).await;
}

async fn backfill_on() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let t = team("backfill", |_| {}).await;
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    let g = &t.graph;
    Mock::given(method("GET"))
        .and(path("/v1/me/conversations"))
        .and(query_param_is_missing("after"))
        .respond_with(timed(
            &calls,
            ok(json!({"data": [{"id": "c1"}, {"id": "c2"}],
                "paging": {"cursors": {"after": "CUR2"}, "next": "https://graph.example/next"}})),
        ))
        .mount(g)
        .await;
    // the second page fails once (the backfill stops), then answers
    Mock::given(method("GET"))
        .and(path("/v1/me/conversations"))
        .and(query_param("after", "CUR2"))
        .respond_with(timed(
            &calls,
            ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Invalid parameter", "type": "OAuthException", "code": 100, "fbtrace_id": "x"}})),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(g)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me/conversations"))
        .and(query_param("after", "CUR2"))
        .respond_with(timed(&calls, ok(json!({"data": [{"id": "c3"}]}))))
        .mount(g)
        .await;
    let threads = [
        (
            "c1",
            vec![
                ("b1", "Q1", "old question", 1_700_000_000),
                ("b2", ACCOUNT, "old answer", 1_700_000_060),
            ],
        ),
        ("c2", vec![("b3", "Q2", "are you open?", 1_700_000_100)]),
        (
            "c3",
            vec![("b4", "Q3", "hello from long ago", 1_700_000_200)],
        ),
    ];
    for (conversation, list) in &threads {
        let ids: Vec<Value> = list.iter().map(|(id, ..)| json!({"id": id})).collect();
        Mock::given(method("GET"))
            .and(path(format!("/v1/{conversation}")))
            .respond_with(timed(
                &calls,
                ok(json!({"id": conversation, "messages": {"data": ids}})),
            ))
            .mount(g)
            .await;
        for (id, from, text, at) in list {
            let to = if *from == ACCOUNT { "Q1" } else { ACCOUNT };
            Mock::given(method("GET"))
                .and(path(format!("/v1/{id}")))
                .respond_with(timed(
                    &calls,
                    ok(json!({"id": id, "created_time": at, "from": {"id": from},
                        "to": {"data": [{"id": to}]}, "message": text})),
                ))
                .mount(g)
                .await;
        }
    }
    // an Agent may not start it; an Admin may
    let start = json!({"account": ACCOUNT});
    let (status, _) = t
        .agent
        .call(Method::POST, "/api/inbox/backfill", Some(&start))
        .await;
    assert_eq!(status, 403);
    t.admin
        .json(Method::POST, "/api/inbox/backfill", Some(&start))
        .await;
    let progress = format!("/api/inbox/backfill/{ACCOUNT}");
    let wait = |want: &'static str| {
        let agent = t.agent.clone();
        let progress = progress.clone();
        async move {
            for _ in 0..400 {
                let p = agent.json(Method::GET, &progress, None).await;
                if p["backfill"]["status"] == want {
                    return p;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the backfill never became {want}");
        }
    };
    let failed = wait("failed").await;
    assert!(
        failed["backfill"]["error"]
            .as_str()
            .unwrap()
            .contains("Invalid parameter"),
        "{failed}"
    );
    assert_eq!(failed["backfill"]["conversations"], 2);
    // started again, it resumes at the second page: nothing is read twice
    t.admin
        .json(Method::POST, "/api/inbox/backfill", Some(&start))
        .await;
    let done = wait("done").await;
    assert_eq!(done["backfill"]["conversations"], 3, "{done}");
    assert_eq!(done["backfill"]["messages"], 4, "{done}");
    let requests = t.graph.received_requests().await.unwrap();
    let count = |p: &str| requests.iter().filter(|r| r.url.path() == p).count();
    assert_eq!(count("/v1/c1"), 1);
    assert_eq!(count("/v1/b1"), 1);
    assert_eq!(count("/v1/me/conversations"), 3);
    // the messages are the inbox's
    let c = t.conversation("Q1").await;
    assert_eq!(message(&c, "b1").unwrap()["text"], "old question");
    assert_eq!(message(&c, "b1").unwrap()["sent_at"], 1_700_000_000_000i64);
    assert_eq!(message(&c, "b2").unwrap()["direction"], "out");
    assert_eq!(c["conversation"]["last_inbound_at"], 1_700_000_000_000i64);
    assert_eq!(t.conversation("Q3").await["conversation"]["status"], "open");
    // at most 2 calls per second: 500 ms apart
    let times = calls.lock().unwrap().clone();
    assert_eq!(times.len(), 10);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(490), "calls {gap:?} apart");
    }
    t.service.shutdown().await;
}
