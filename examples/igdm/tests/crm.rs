//! Contacts as a CRM (issue 7, item 2), over HTTP against a `wiremock` Graph API, on SQLite and
//! (with `IGDM_TEST_POSTGRES_URL`) PostgreSQL: profiles only with consent, expiring pictures,
//! tags, typed custom fields, pipeline stages with history, role permissions, and deletion of a
//! contact taking all of its CRM data with it.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::time::Duration;

use igdm::service::{testing, Config, RunningService, Service};
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test-app-secret";
const ACCOUNT: &str = "17841400000000001";
const OPERATOR: &str = "api-key-1";
/// Messaged the account.
const MESSAGER: &str = "IGSID-messager";
/// Only commented.
const COMMENTER: &str = "IGSID-commenter";

use igdm::service::testing::TestDir as Dir;

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
    server
}

struct World {
    service: RunningService,
    graph: MockServer,
    _dir: Dir,
}

impl World {
    /// A service with one account, a contact who messaged it and one who only commented.
    async fn start(name: &str) -> World {
        let dir = Dir::new(name).await;
        let graph = graph().await;
        let mut c = Config::for_tests(&dir.0);
        c.database = dir.1.clone();
        c.app_secret = SECRET.into();
        c.verify_token = "vt".into();
        c.graph_base_url = graph.uri();
        c.graph_version = "v1".into();
        c.api_keys = vec![OPERATOR.into()];
        let service = Service::start(c).await.unwrap();
        service
            .connect_account(ACCOUNT, Some("shop"), "IGAA-test-token", None)
            .await
            .unwrap();
        let w = World {
            service,
            graph,
            _dir: dir,
        };
        let now = chrono::Utc::now();
        w.webhook(json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now.timestamp(),
            "messaging": [{"sender": {"id": MESSAGER}, "recipient": {"id": ACCOUNT},
                "timestamp": now.timestamp_millis(), "message": {"mid": "mid-1", "text": "hello"}}]}]}))
            .await;
        w.webhook(
            json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": now.timestamp(),
            "changes": [{"field": "comments", "value": {"id": "comment-1", "text": "nice",
                "from": {"id": COMMENTER, "username": "commenter"},
                "media": {"id": "M1", "media_product_type": "REELS"}}}]}]}),
        )
        .await;
        for who in [MESSAGER, COMMENTER] {
            w.eventually(&format!("the contact {who} is recorded"), || async {
                w.count("contacts", who).await > 0
            })
            .await;
        }
        w
    }

    async fn webhook(&self, body: Value) {
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

    async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..1200 {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    /// Rows of `table` about contact `who` (column `contact`, or `id` for `contacts`).
    async fn count(&self, table: &str, who: &str) -> i64 {
        let column = if table == "contacts" { "id" } else { "contact" };
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE account = $1 AND {column} = $2"
        )))
        .bind(ACCOUNT)
        .bind(who)
        .fetch_one(self.service.shared().db.pool())
        .await
        .unwrap()
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.service.shared().db.pool())
            .await
            .unwrap()
    }

    /// Calls the API with `key`; the status and the JSON answer (`null` when empty).
    async fn call_as(&self, key: &str, m: Method, p: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .request(m, format!("{}{p}", self.service.base_url()))
            .bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn call(&self, m: Method, p: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(OPERATOR, m, p, body).await
    }

    /// Profile API calls made for `who`.
    async fn profile_calls(&self, who: &str) -> usize {
        let wanted = format!("/v1/{who}");
        self.graph
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "GET" && r.url.path() == wanted)
            .count()
    }

    async fn mount_profile(&self, who: &str, answer: ResponseTemplate, times: Option<u64>) {
        let mock = Mock::given(method("GET"))
            .and(path(format!("/v1/{who}")))
            .respond_with(answer);
        let mock = match times {
            Some(n) => mock.up_to_n_times(n),
            None => mock,
        };
        mock.mount(&self.graph).await;
    }
}

fn contact_path(who: &str) -> String {
    format!("/api/crm/contacts/{ACCOUNT}/{who}")
}

fn profile(name: &str, pic: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "name": name, "username": "messager_handle", "profile_pic": pic,
        "follower_count": 1234, "is_user_follow_business": true, "is_business_follow_user": false,
    }))
}

/// A CDN-style picture URL expiring at Unix second `oe`.
fn picture(name: &str, oe: i64) -> String {
    format!("https://cdn.example/{name}.jpg?_nc_ht=x&oe={oe:X}")
}

#[tokio::test]
async fn profiles_are_fetched_only_for_contacts_who_messaged() {
    testing::on_each_backend(|| async {
        let w = World::start("consent").await;
        let far = chrono::Utc::now().timestamp() + 86_400;
        w.mount_profile(
            MESSAGER,
            profile("Peter Chang", &picture("peter", far)),
            None,
        )
        .await;
        w.mount_profile(COMMENTER, profile("Should Not", &picture("c", far)), None)
            .await;

        // the commenter never messaged: refused without asking Instagram, nothing stored
        let (status, body) = w
            .call(
                Method::POST,
                &format!("{}/profile", contact_path(COMMENTER)),
                None,
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["reason"], "consent_required");
        assert!(body["error"].as_str().unwrap().contains("has not messaged"));
        assert_eq!(w.profile_calls(COMMENTER).await, 0);
        assert_eq!(w.count("contact_profiles", COMMENTER).await, 0);
        let (_, shown) = w.call(Method::GET, &contact_path(COMMENTER), None).await;
        assert_eq!(shown["has_messaged"], false);
        assert_eq!(shown["profile"], Value::Null);

        // the person who messaged is fetched
        let (status, body) = w
            .call(
                Method::POST,
                &format!("{}/profile", contact_path(MESSAGER)),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(w.profile_calls(MESSAGER).await, 1);
        assert_eq!(body["has_messaged"], true);
        let p = &body["profile"];
        assert_eq!(p["name"], "Peter Chang");
        assert_eq!(p["follower_count"], 1234);
        assert_eq!(p["is_user_follow_business"], true);
        assert_eq!(p["is_business_follow_user"], false);
        assert_eq!(p["profile_pic"], picture("peter", far).as_str());
        assert_eq!(p["profile_pic_expires_at"], far * 1000);
        assert_eq!(p["profile_pic_status"], "fresh");
        assert_eq!(p["error"], Value::Null);

        // a contact who messaged but whom the platform refuses: recorded and answered
        w.webhook(
            json!({"object": "instagram", "entry": [{"id": ACCOUNT, "time": 1,
            "messaging": [{"sender": {"id": "IGSID-blocked"}, "recipient": {"id": ACCOUNT},
                "timestamp": chrono::Utc::now().timestamp_millis(),
                "message": {"mid": "mid-2", "text": "hi"}}]}]}),
        )
        .await;
        w.eventually("the blocked contact is recorded", || async {
            w.count("contacts", "IGSID-blocked").await > 0
        })
        .await;
        w.mount_profile(
            "IGSID-blocked",
            ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "User consent is required to access user profile.",
                "type": "OAuthException", "code": 230, "fbtrace_id": "t"}})),
            None,
        )
        .await;
        let (status, body) = w
            .call(
                Method::POST,
                &format!("{}/profile", contact_path("IGSID-blocked")),
                None,
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["reason"], "consent_required");
        let (_, shown) = w
            .call(Method::GET, &contact_path("IGSID-blocked"), None)
            .await;
        assert_eq!(
            shown["profile"]["error"]["kind"], "consent_required",
            "{shown}"
        );
        assert_eq!(shown["profile"]["fetched_at"], Value::Null);

        // another platform failure is a 502 with the platform's kind, recorded too
        Mock::given(method("GET"))
            .and(path(format!("/v1/{MESSAGER}")))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}})))
            .with_priority(1)
            .mount(&w.graph)
            .await;
        let (status, body) = w
            .call(
                Method::POST,
                &format!("{}/profile", contact_path(MESSAGER)),
                None,
            )
            .await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["reason"], "token_invalid");
        assert!(!body.to_string().contains("IGAA-test-token"));
        let (_, shown) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(
            shown["profile"]["error"]["kind"], "token_invalid",
            "{shown}"
        );
        let (_, account) = w
            .call(Method::GET, &format!("/api/accounts/{ACCOUNT}"), None)
            .await;
        assert_eq!(account["status"], "needs_reconnect", "{account}");
        // what was fetched before stays (its picture is still fresh)
        assert_eq!(shown["profile"]["name"], "Peter Chang");
        w.service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_expired_profile_picture_is_never_served_and_is_fetched_again() {
    testing::on_each_backend(|| async {
        let w = World::start("picture").await;
        let soon = chrono::Utc::now().timestamp() + 2;
        let far = chrono::Utc::now().timestamp() + 86_400;
        let first = picture("first", soon);
        let second = picture("second", far);
        w.mount_profile(MESSAGER, profile("Peter", &first), Some(1))
            .await;
        w.mount_profile(MESSAGER, profile("Peter", &second), Some(1))
            .await;
        let (status, body) = w
            .call(
                Method::POST,
                &format!("{}/profile", contact_path(MESSAGER)),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["profile"]["profile_pic"], first.as_str());
        assert_eq!(body["profile"]["profile_pic_expires_at"], soon * 1000);

        // past the URL's expiry: reading the contact fetches it again, the stale URL never shows
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(soon * 1000 - chrono::Utc::now().timestamp_millis() + 300).unwrap_or(0),
        ))
        .await;
        let (status, body) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains("first.jpg"), "{body}");
        assert_eq!(body["profile"]["profile_pic"], second.as_str());
        assert_eq!(body["profile"]["profile_pic_status"], "fresh");
        assert_eq!(w.profile_calls(MESSAGER).await, 2);

        // when it expires and Instagram fails, the picture is left out, never served stale
        sqlx::query("UPDATE contact_profiles SET profile_pic_expires_at = 1 WHERE contact = $1")
            .bind(MESSAGER)
            .execute(w.service.shared().db.pool())
            .await
            .unwrap();
        w.mount_profile(
            MESSAGER,
            ResponseTemplate::new(500).set_body_json(json!({"error": {
                "message": "An unexpected error has occurred.", "code": 2, "is_transient": true}})),
            None,
        )
        .await;
        let (status, body) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["profile"]["profile_pic"], Value::Null, "{body}");
        assert_eq!(body["profile"]["profile_pic_expires_at"], Value::Null);
        assert_eq!(body["profile"]["profile_pic_status"], "expired");
        assert!(!body.to_string().contains("second.jpg"), "{body}");
        assert!(body["profile"]["error"]["kind"].is_string(), "{body}");
        let calls = w.profile_calls(MESSAGER).await;
        assert!(calls >= 3);
        // right after a failure, reading the contact does not call Instagram again
        let (_, body) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(body["profile"]["profile_pic"], Value::Null, "{body}");
        assert_eq!(w.profile_calls(MESSAGER).await, calls);
        w.service.shutdown().await;
    })
    .await;
}

/// Outbound `contact.updated` deliveries written so far.
async fn contact_updates(w: &World) -> i64 {
    w.scalar("SELECT COUNT(*) FROM outbound_deliveries WHERE event_type = 'contact.updated'")
        .await
}

#[tokio::test]
async fn tags_fields_and_stages_are_kept_with_their_history() {
    testing::on_each_backend(|| async {
        let w = World::start("crm").await;
        let (status, hook) = w
            .call(
                Method::POST,
                "/api/webhooks/subscriptions",
                Some(json!({"url": format!("{}/hook", w.graph.uri()),
                    "event_types": ["contact.updated"], "account": ACCOUNT})),
            )
            .await;
        assert_eq!(status, 201, "{hook}");

        // tags
        let (status, body) = w
            .call(Method::PUT, &format!("{}/tags/vip", contact_path(MESSAGER)), None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tags"], json!(["vip"]));
        // automations see it too
        assert_eq!(body["automation"]["tags"], json!(["vip"]), "{body}");
        assert_eq!(contact_updates(&w).await, 1);
        // adding it again changes nothing and publishes nothing
        w.call(Method::PUT, &format!("{}/tags/vip", contact_path(MESSAGER)), None)
            .await;
        assert_eq!(contact_updates(&w).await, 1);
        w.call(Method::PUT, &format!("{}/tags/lead%20magnet", contact_path(COMMENTER)), None)
            .await;
        let (_, list) = w.call(Method::GET, "/api/crm/contacts?tag=vip", None).await;
        let ids: Vec<&str> = list["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [MESSAGER]);
        let (_, list) = w
            .call(Method::GET, "/api/crm/contacts?tag=lead%20magnet", None)
            .await;
        assert_eq!(list["contacts"][0]["id"], COMMENTER);
        let (status, _) = w
            .call(Method::PUT, &format!("{}/tags/%20", contact_path(MESSAGER)), None)
            .await;
        assert_eq!(status, 422);
        let (_, body) = w
            .call(Method::DELETE, &format!("{}/tags/lead%20magnet", contact_path(COMMENTER)), None)
            .await;
        assert_eq!(body["tags"], json!([]));
        assert_eq!(body["automation"]["tags"], json!([]));

        // typed fields
        for (key, ty) in [("budget", "number"), ("follow_up", "date"), ("newsletter", "bool")] {
            let (status, body) = w
                .call(Method::PUT, &format!("/api/crm/fields/{key}"), Some(json!({"type": ty, "label": key})))
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["type"], ty);
        }
        let (status, body) = w
            .call(Method::PUT, "/api/crm/fields/x", Some(json!({"type": "color"})))
            .await;
        assert_eq!(status, 422);
        assert!(body["error"].as_str().unwrap().contains("text, number, date or bool"));
        let set = |who: &'static str, key: &'static str, value: Value| {
            let w = &w;
            async move {
                w.call(
                    Method::PUT,
                    &format!("{}/fields/{key}", contact_path(who)),
                    Some(json!({ "value": value })),
                )
                .await
            }
        };
        let (status, body) = set(MESSAGER, "budget", json!(1500)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["fields"]["budget"], 1500);
        let before = contact_updates(&w).await;
        let (status, body) = set(MESSAGER, "budget", json!("a lot")).await;
        assert_eq!(status, 422, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("budget") && error.contains("number") && error.contains("a lot"), "{error}");
        let (status, body) = set(MESSAGER, "follow_up", json!("2026-02-30")).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"].as_str().unwrap().contains("YYYY-MM-DD"));
        let (status, _) = set(MESSAGER, "undefined_field", json!("x")).await;
        assert_eq!(status, 404);
        // nothing changed by the refused values
        let (_, shown) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(shown["fields"], json!({"budget": 1500}));
        assert_eq!(contact_updates(&w).await, before);
        let (status, _) = set(MESSAGER, "follow_up", json!("2026-03-01")).await;
        assert_eq!(status, 200);
        let (_, body) = set(COMMENTER, "newsletter", json!(true)).await;
        assert_eq!(body["fields"]["newsletter"], true);
        // search by a field value (given as text, checked against the type)
        let (_, list) = w
            .call(Method::GET, "/api/crm/contacts?field=budget&value=1500.0", None)
            .await;
        assert_eq!(list["contacts"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["contacts"][0]["fields"]["follow_up"], "2026-03-01");
        let (status, _) = w
            .call(Method::GET, "/api/crm/contacts?field=budget&value=cheap", None)
            .await;
        assert_eq!(status, 400);
        // a field with values keeps its type
        let (status, _) = w
            .call(Method::PUT, "/api/crm/fields/budget", Some(json!({"type": "text"})))
            .await;
        assert_eq!(status, 409);

        // stages with history
        let (status, body) = w
            .call(Method::PUT, "/api/crm/stages", Some(json!({"stages": [
                {"id": "lead", "name": "Lead"}, {"id": "qualified", "name": "Qualified"},
                {"id": "won", "name": "Won"}]})))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stages"][2]["id"], "won");
        let to = |stage: Value| {
            let w = &w;
            async move {
                w.call(
                    Method::PUT,
                    &format!("{}/stage", contact_path(MESSAGER)),
                    Some(json!({ "stage": stage })),
                )
                .await
            }
        };
        assert_eq!(to(json!("lead")).await.0, 200);
        let (status, body) = to(json!("qualified")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stage"], "qualified");
        let (status, body) = to(json!("negotiation")).await;
        assert_eq!(status, 422);
        assert!(body["error"].as_str().unwrap().contains("negotiation"));
        let (_, shown) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        let history = shown["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "{shown}");
        assert_eq!(history[0]["from"], Value::Null);
        assert_eq!(history[0]["to"], "lead");
        assert_eq!(history[1]["from"], "lead");
        assert_eq!(history[1]["to"], "qualified");
        assert_eq!(history[1]["moved_via"], "operator");
        assert!(history[1]["at"].as_i64().unwrap() >= history[0]["at"].as_i64().unwrap());
        let (_, list) = w.call(Method::GET, "/api/crm/contacts?stage=qualified", None).await;
        assert_eq!(list["contacts"][0]["id"], MESSAGER);
        assert_eq!(list["contacts"].as_array().unwrap().len(), 1);
        // a stage that holds contacts cannot be removed
        let (status, body) = w
            .call(Method::PUT, "/api/crm/stages", Some(json!({"stages": [{"id": "lead"}]})))
            .await;
        assert_eq!(status, 409, "{body}");
        // stages are renamed and reordered in place; the contact stays where it is
        let (status, body) = w
            .call(
                Method::PUT,
                "/api/crm/stages",
                Some(json!({"stages": [{"id": "won"}, {"id": "qualified", "name": "Hot"}, {"id": "lead"}]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stages"][0]["id"], "won");
        assert_eq!(body["stages"][1]["name"], "Hot");
        assert_eq!(body["stages"][1]["position"], 1);
        let (_, shown) = w.call(Method::GET, &contact_path(MESSAGER), None).await;
        assert_eq!(shown["stage"], "qualified");
        // every change was published as contact.updated
        let payloads: Vec<String> = sqlx::query_scalar(
            "SELECT payload FROM outbound_deliveries WHERE event_type = 'contact.updated' ORDER BY created_at",
        )
        .fetch_all(w.service.shared().db.pool())
        .await
        .unwrap();
        assert!(payloads.len() >= 7, "{payloads:?}");
        let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
        assert_eq!(last["data"]["source"], "crm");
        assert_eq!(last["data"]["stage"], "qualified");

        // pagination: one per page, in order, then no next page
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let (_, page) = w
                .call(Method::GET, &format!("/api/crm/contacts?limit=1&after={after}"), None)
                .await;
            for c in page["contacts"].as_array().unwrap() {
                seen.push(c["id"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, [COMMENTER, MESSAGER]);
        let (_, found) = w.call(Method::GET, "/api/crm/contacts?q=COMMENT", None).await;
        assert_eq!(found["contacts"].as_array().unwrap().len(), 1, "{found}");
        w.service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn agents_work_on_contacts_but_only_owners_and_admins_define_fields_and_stages() {
    testing::on_each_backend(|| async {
        let w = World::start("roles").await;
        let key = |role: &'static str| {
            let w = &w;
            async move {
                let (status, made) = w
                    .call(
                        Method::POST,
                        "/api/api-keys",
                        Some(json!({"name": role, "role": role})),
                    )
                    .await;
                assert_eq!(status, 201, "{made}");
                made["key"].as_str().unwrap().to_owned()
            }
        };
        let agent = key("agent").await;
        let admin = key("admin").await;
        let field = Some(json!({"type": "text"}));
        let stages = Some(json!({"stages": [{"id": "lead"}]}));
        // Agents: no definitions, nothing stored
        let (status, _) = w
            .call_as(&agent, Method::PUT, "/api/crm/fields/city", field.clone())
            .await;
        assert_eq!(status, 403);
        let (status, _) = w
            .call_as(&agent, Method::PUT, "/api/crm/stages", stages.clone())
            .await;
        assert_eq!(status, 403);
        assert_eq!(w.scalar("SELECT COUNT(*) FROM crm_fields").await, 0);
        assert_eq!(w.scalar("SELECT COUNT(*) FROM crm_stages").await, 0);
        // Admins define them
        let (status, _) = w
            .call_as(&admin, Method::PUT, "/api/crm/fields/city", field)
            .await;
        assert_eq!(status, 200);
        let (status, _) = w
            .call_as(&admin, Method::PUT, "/api/crm/stages", stages)
            .await;
        assert_eq!(status, 200);
        let (status, _) = w
            .call_as(&agent, Method::DELETE, "/api/crm/fields/city", None)
            .await;
        assert_eq!(status, 403);
        // Agents read and work on contacts
        let (status, _) = w
            .call_as(&agent, Method::GET, "/api/crm/fields", None)
            .await;
        assert_eq!(status, 200);
        let p = contact_path(MESSAGER);
        let (status, _) = w
            .call_as(&agent, Method::PUT, &format!("{p}/tags/hot"), None)
            .await;
        assert_eq!(status, 200);
        let (status, body) = w
            .call_as(
                &agent,
                Method::PUT,
                &format!("{p}/fields/city"),
                Some(json!({"value": "Lyon"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = w
            .call_as(
                &agent,
                Method::PUT,
                &format!("{p}/stage"),
                Some(json!({"stage": "lead"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["history"][0]["moved_via"], "api_key");
        let (status, list) = w
            .call_as(&agent, Method::GET, "/api/crm/contacts?tag=hot", None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(list["contacts"][0]["fields"]["city"], "Lyon");
        // no credentials, no access; unknown contacts and accounts are 404
        let (status, _) = w
            .call_as("wrong", Method::GET, "/api/crm/contacts", None)
            .await;
        assert_eq!(status, 401);
        let (status, _) = w
            .call_as(&agent, Method::GET, &contact_path("IGSID-nobody"), None)
            .await;
        assert_eq!(status, 404);
        let (status, _) = w
            .call_as(&agent, Method::PUT, "/api/crm/contacts/999/x/tags/a", None)
            .await;
        assert_eq!(status, 404);
        w.service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn p11_deleting_a_contact_deletes_its_profile_tags_fields_and_stage_history() {
    testing::on_each_backend(|| async {
        let w = World::start("delete").await;
        let far = chrono::Utc::now().timestamp() + 86_400;
        w.mount_profile(
            MESSAGER,
            profile("Peter Chang", &picture("peter", far)),
            None,
        )
        .await;
        let p = contact_path(MESSAGER);
        assert_eq!(
            w.call(Method::POST, &format!("{p}/profile"), None).await.0,
            200
        );
        assert_eq!(
            w.call(Method::PUT, &format!("{p}/tags/vip"), None).await.0,
            200
        );
        w.call(
            Method::PUT,
            "/api/crm/fields/budget",
            Some(json!({"type": "number"})),
        )
        .await;
        w.call(
            Method::PUT,
            "/api/crm/stages",
            Some(json!({"stages": [{"id": "lead"}, {"id": "won"}]})),
        )
        .await;
        assert_eq!(
            w.call(
                Method::PUT,
                &format!("{p}/fields/budget"),
                Some(json!({"value": 99}))
            )
            .await
            .0,
            200
        );
        for stage in ["lead", "won"] {
            let moved = w
                .call(
                    Method::PUT,
                    &format!("{p}/stage"),
                    Some(json!({"stage": stage})),
                )
                .await;
            assert_eq!(moved.0, 200);
        }
        // the other contact's CRM data stays
        w.call(
            Method::PUT,
            &format!("{}/tags/vip", contact_path(COMMENTER)),
            None,
        )
        .await;
        let tables = [
            "contact_profiles",
            "contact_tags",
            "contact_field_values",
            "contact_stages",
            "contact_stage_history",
        ];
        for t in tables {
            assert!(w.count(t, MESSAGER).await > 0, "{t} has the contact's rows");
        }

        // the contact's export holds its CRM data
        let (status, made) = w
            .call(
                Method::POST,
                "/privacy/exports",
                Some(json!({"account": ACCOUNT, "contact": MESSAGER})),
            )
            .await;
        assert_eq!(status, 200, "{made}");
        let bytes = reqwest::get(made["url"].as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let manifest = privacy_kit::export::verify_bundle(Cursor::new(&bytes)).unwrap();
        let entities: Vec<String> = manifest.files.iter().map(|f| f.entity.clone()).collect();
        for t in tables {
            assert!(
                entities.iter().any(|e| e == t),
                "{t} missing from {entities:?}"
            );
        }
        let records =
            privacy_kit::export::read_records(Cursor::new(&bytes), "contact_profiles").unwrap();
        assert!(records
            .iter()
            .any(|r| r.to_string().contains("Peter Chang")));

        let (status, body) = w
            .call(
                Method::DELETE,
                &format!("/privacy/contacts/{ACCOUNT}/{MESSAGER}"),
                None,
            )
            .await;
        assert!(status == 200 || status == 202, "{status} {body}");
        w.eventually("the contact's CRM rows are deleted", || async {
            let mut left = 0;
            for t in tables {
                left += w.count(t, MESSAGER).await;
            }
            left == 0 && w.count("contacts", MESSAGER).await == 0
        })
        .await;
        // the organization's definitions and the other contact's data are kept
        assert_eq!(w.scalar("SELECT COUNT(*) FROM crm_fields").await, 1);
        assert_eq!(w.scalar("SELECT COUNT(*) FROM crm_stages").await, 2);
        assert_eq!(w.count("contact_tags", COMMENTER).await, 1);
        let (status, _) = w.call(Method::GET, &p, None).await;
        assert_eq!(status, 404);
        w.service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn p11_deleting_an_organization_deletes_its_fields_stages_and_contacts_crm_data() {
    testing::on_each_backend(|| async {
        let w = World::start("org-delete").await;
        // a second organization, with its own account and a contact who messaged it
        let signed = reqwest::Client::new()
            .post(format!("{}/api/signup", w.service.base_url()))
            .json(
                &json!({"email": "owner@crm-org.example", "password": "a long password 1",
                "organization": "CRM Org"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 201);
        let session = signed
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("igdm_session=")
            .to_owned();
        let body: Value = signed.json().await.unwrap();
        let org = body["organization"]["id"].as_str().unwrap().to_owned();
        let other = "17841400000000077";
        w.service
            .connect_account_in(&org, other, Some("other_shop"), "IGAA-other-token")
            .await
            .unwrap();
        w.webhook(
            json!({"object": "instagram", "entry": [{"id": other, "time": 1,
            "messaging": [{"sender": {"id": "IGSID-their-fan"}, "recipient": {"id": other},
                "timestamp": chrono::Utc::now().timestamp_millis(),
                "message": {"mid": "mid-other", "text": "hi"}}]}]}),
        )
        .await;
        w.eventually("the other organization's contact is recorded", || async {
            w.scalar(&format!(
                "SELECT COUNT(*) FROM contacts WHERE account = '{other}'"
            ))
            .await
                > 0
        })
        .await;
        let theirs = format!("/api/crm/contacts/{other}/IGSID-their-fan");
        for (m, p, body) in [
            (
                Method::PUT,
                "/api/crm/fields/size".to_owned(),
                Some(json!({"type": "text"})),
            ),
            (
                Method::PUT,
                "/api/crm/stages".to_owned(),
                Some(json!({"stages": [{"id": "new"}]})),
            ),
            (Method::PUT, format!("{theirs}/tags/fan"), None),
            (
                Method::PUT,
                format!("{theirs}/fields/size"),
                Some(json!({"value": "XL"})),
            ),
            (
                Method::PUT,
                format!("{theirs}/stage"),
                Some(json!({"stage": "new"})),
            ),
        ] {
            let (status, answer) = w.call_as(&session, m, &p, body).await;
            assert_eq!(status, 200, "{p}: {answer}");
        }
        // and the operator's organization has CRM data of its own
        w.call(
            Method::PUT,
            "/api/crm/fields/size",
            Some(json!({"type": "number"})),
        )
        .await;
        w.call(
            Method::PUT,
            &format!("{}/tags/mine", contact_path(MESSAGER)),
            None,
        )
        .await;

        let (status, answer) = w
            .call_as(
                &session,
                Method::DELETE,
                "/privacy/organization",
                Some(json!({"organization": org, "confirm": true})),
            )
            .await;
        assert!(status == 200 || status == 202, "{status} {answer}");
        let org_rows = format!(
            "SELECT (SELECT COUNT(*) FROM crm_fields WHERE org_id = '{org}') \
             + (SELECT COUNT(*) FROM crm_stages WHERE org_id = '{org}') \
             + (SELECT COUNT(*) FROM contact_tags WHERE account = '{other}') \
             + (SELECT COUNT(*) FROM contact_field_values WHERE account = '{other}') \
             + (SELECT COUNT(*) FROM contact_stages WHERE account = '{other}') \
             + (SELECT COUNT(*) FROM contact_stage_history WHERE account = '{other}')"
        );
        w.eventually("the organization's CRM rows are deleted", || async {
            w.scalar(&org_rows).await == 0
        })
        .await;
        // the operator's organization keeps its own
        let (_, fields) = w.call(Method::GET, "/api/crm/fields", None).await;
        assert_eq!(fields["fields"][0]["type"], "number", "{fields}");
        assert_eq!(w.count("contact_tags", MESSAGER).await, 1);
        w.service.shutdown().await;
    })
    .await;
}
