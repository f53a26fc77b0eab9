//! Organizations, members and roles of the reference service: sign-up, login, sessions,
//! invitations, the role rules, API keys, and tenant isolation of every management endpoint.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use igdm::service::http::auth::{allows, Permission, Role};
use igdm::service::{Config, RunningService, Service};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const OPERATOR_KEY: &str = "operator-key-1";
const PASSWORD: &str = "correct horse battery";

use igdm::service::testing::TestDir as Dir;

/// With `IGDM_TEST_POSTGRES_URL` (a role that may create databases), a fresh PostgreSQL
/// database per test; else SQLite in the test's directory.
async fn database() -> Option<String> {
    let url = std::env::var("IGDM_TEST_POSTGRES_URL").ok()?;
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!(
        "igdm_teams_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        uniq()
    );
    let mut admin = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    Some(format!("{base}/{name}"))
}

async fn start(dir: &Dir) -> RunningService {
    start_on(dir, database().await, None).await
}

/// The service on `database` (SQLite in `dir` when `None`), reading as `app_role` on PostgreSQL.
async fn start_on(dir: &Dir, database: Option<String>, app_role: Option<String>) -> RunningService {
    let mut c = Config::for_tests(&dir.0);
    c.database = database;
    c.database_app_role = app_role;
    c.app_secret = "teams-secret".into();
    // nothing answers here: subscribing and media sync fail fast and are only logged
    c.graph_base_url = "http://127.0.0.1:9".into();
    c.api_keys = vec![OPERATOR_KEY.into()];
    c.workers = false;
    Service::start(c).await.unwrap()
}

/// A logged-in client of one member (session cookie) or an API key.
#[derive(Clone)]
struct Who {
    base: String,
    /// `Cookie: igdm_session=...` or `Authorization: Bearer ...`.
    header: (&'static str, String),
    role: Role,
}

/// `who`'s call of `path` while `role` lacks `privilege` (e.g. `"SELECT ON media"`): its status.
/// The privilege is given back after the call.
async fn status_without(
    admin: &mut sqlx::AnyConnection,
    role: &str,
    privilege: &str,
    who: &Who,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> StatusCode {
    let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    run(format!("REVOKE {privilege} FROM {role}"))
        .execute(&mut *admin)
        .await
        .unwrap();
    let (status, _) = who.call(method, path, body).await;
    run(format!("GRANT {privilege} TO {role}"))
        .execute(&mut *admin)
        .await
        .unwrap();
    status
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

/// The session token in a `Set-Cookie` answer.
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

fn as_member(service: &RunningService, token: &str, role: Role) -> Who {
    Who {
        base: service.base_url(),
        header: ("cookie", format!("igdm_session={token}")),
        role,
    }
}

fn as_key(service: &RunningService, key: &str, role: Role) -> Who {
    Who {
        base: service.base_url(),
        header: ("authorization", format!("Bearer {key}")),
        role,
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

/// Signs up; the Owner and the organization's id.
async fn sign_up(service: &RunningService, email: &str, org: &str) -> (Who, Value) {
    let answer = post(
        service,
        "/api/signup",
        json!({ "email": email, "password": PASSWORD, "organization": org }),
    )
    .await;
    assert_eq!(answer.status(), 201);
    let token = session_of(&answer);
    let body: Value = answer.json().await.unwrap();
    (as_member(service, &token, Role::Owner), body)
}

/// Invites `email` with `role` and accepts; the new member.
async fn invite(service: &RunningService, by: &Who, email: &str, role: Role) -> (Who, Value) {
    let created = by
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": email, "role": role })),
        )
        .await;
    let token = created["token"].as_str().unwrap();
    let answer = post(
        service,
        "/api/invitations/accept",
        json!({ "token": token, "password": PASSWORD }),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let session = session_of(&answer);
    let body: Value = answer.json().await.unwrap();
    (as_member(service, &session, role), body)
}

async fn create_key(by: &Who, name: &str, role: Role) -> (String, Value) {
    let created = by
        .json(
            Method::POST,
            "/api/api-keys",
            Some(&json!({ "name": name, "role": role })),
        )
        .await;
    (
        created["key"].as_str().unwrap().to_string(),
        created["api_key"].clone(),
    )
}

fn hex_sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn signup_login_logout_and_cookie_flags() {
    let dir = Dir::local("login");
    let service = start(&dir).await;
    let answer = post(
        &service,
        "/api/signup",
        json!({ "email": " Ada@Example.com ", "password": PASSWORD, "organization": "Ada's shop" }),
    )
    .await;
    assert_eq!(answer.status(), 201);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in [
        "igdm_session=igdm_s_",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    let token = session_of(&answer);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["role"], "owner");
    assert!(
        !body.to_string().contains(&token),
        "the body never carries the session"
    );

    // the cookie and the same value as a bearer token both work
    let me = as_member(&service, &token, Role::Owner)
        .json(Method::GET, "/api/me", None)
        .await;
    assert_eq!(me["role"], "owner");
    assert_eq!(me["organization"]["name"], "Ada's shop");
    let bearer = as_key(&service, &token, Role::Owner)
        .json(Method::GET, "/api/me", None)
        .await;
    assert_eq!(bearer["organization"]["id"], me["organization"]["id"]);

    // the same e-mail address cannot sign up twice; bad input is refused
    let again = post(
        &service,
        "/api/signup",
        json!({ "email": "ada@example.com", "password": PASSWORD, "organization": "Other" }),
    )
    .await;
    assert_eq!(again.status(), 409);
    for bad in [
        json!({ "email": "not-an-address", "password": PASSWORD, "organization": "X" }),
        json!({ "email": "b@example.com", "password": "short", "organization": "X" }),
        json!({ "email": "b@example.com", "password": PASSWORD, "organization": " " }),
    ] {
        assert_eq!(post(&service, "/api/signup", bad).await.status(), 400);
    }

    // wrong password and unknown address look the same
    let wrong = post(
        &service,
        "/api/login",
        json!({ "email": "ada@example.com", "password": "wrong password!" }),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    let unknown = post(
        &service,
        "/api/login",
        json!({ "email": "nobody@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.text().await.unwrap(), wrong_text);

    let login = post(
        &service,
        "/api/login",
        json!({ "email": "ADA@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(login.status(), 200);
    let second = session_of(&login);
    assert_ne!(second, token);

    // logout ends that session only, and clears the cookie
    let (status, _) = as_member(&service, &token, Role::Owner)
        .call(Method::POST, "/api/logout", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = as_member(&service, &token, Role::Owner)
        .call(Method::GET, "/api/me", None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = as_member(&service, &second, Role::Owner)
        .call(Method::GET, "/api/me", None)
        .await;
    assert_eq!(status, 200);
    let logout = reqwest::Client::new()
        .post(format!("{}/api/logout", service.base_url()))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    let cleared = logout.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.contains("igdm_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // sessions are stored only hashed
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(service.shared().db.pool())
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 64 && !h.contains("igdm_s_")));
    assert!(!stored.contains(&token) && !stored.contains(&second));
    // an expired session no longer works
    let login = post(
        &service,
        "/api/login",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    let third = session_of(&login);
    let who = as_member(&service, &third, Role::Owner);
    assert_eq!(who.call(Method::GET, "/api/me", None).await.0, 200);
    sqlx::query("UPDATE sessions SET expires_at = 1 WHERE token_hash = $1")
        .bind(hex_sha256(&third))
        .execute(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(who.call(Method::GET, "/api/me", None).await.0, 401);
    // no credentials at all
    let (status, _) = Who {
        base: service.base_url(),
        header: ("x-nothing", String::new()),
        role: Role::Agent,
    }
    .call(Method::GET, "/api/me", None)
    .await;
    assert_eq!(status, 401);
    service.shutdown().await;
}

#[tokio::test]
async fn invitations_add_members_with_their_role() {
    let dir = Dir::local("invite");
    let service = start(&dir).await;
    let (owner, _) = sign_up(&service, "owner@a.example", "A").await;
    let created = owner
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "Agent@A.example", "role": "agent" })),
        )
        .await;
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["invitation"]["email"], "agent@a.example");
    let (status, _) = owner
        .call(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "not an address", "role": "agent" })),
        )
        .await;
    assert_eq!(status, 400);
    // listed without the token; stored only hashed
    let listed = owner.json(Method::GET, "/api/invitations", None).await;
    assert_eq!(listed["invitations"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&token));
    let hash: String = sqlx::query_scalar("SELECT token_hash FROM invitations")
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(hash, hex_sha256(&token));

    // a too-short password is refused and the invitation stays usable
    let short = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": token, "password": "short" }),
    )
    .await;
    assert_eq!(short.status(), 400);
    let accepted = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": token, "password": PASSWORD }),
    )
    .await;
    assert_eq!(accepted.status(), 200);
    let agent = as_member(&service, &session_of(&accepted), Role::Agent);
    let me = agent.json(Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "agent");
    assert_eq!(
        me["permissions"],
        json!(["view_inbox", "reply", "view_members", "edit_contacts"])
    );
    // an invitation is used once
    let twice = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": token, "password": PASSWORD }),
    )
    .await;
    assert_eq!(twice.status(), 404);
    let members = owner.json(Method::GET, "/api/members", None).await;
    let roles: BTreeSet<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from([
            ("agent@a.example".into(), "agent".into()),
            ("owner@a.example".into(), "owner".into())
        ])
    );
    // an Agent cannot invite, an Admin cannot invite Owners
    let (status, _) = agent
        .call(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "x@a.example", "role": "agent" })),
        )
        .await;
    assert_eq!(status, 403);
    let (admin, _) = invite(&service, &owner, "admin@a.example", Role::Admin).await;
    let (status, _) = admin
        .call(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "x@a.example", "role": "owner" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = admin
        .call(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "x@a.example", "role": "agent" })),
        )
        .await;
    assert_eq!(status, 201);

    // an existing user joins a second organization with their own password
    let (other_owner, other) = sign_up(&service, "owner@b.example", "B").await;
    let created = other_owner
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "agent@a.example", "role": "admin" })),
        )
        .await;
    let token = created["token"].as_str().unwrap();
    let wrong = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": token, "password": "not the password" }),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let joined = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": token, "password": PASSWORD }),
    )
    .await;
    assert_eq!(joined.status(), 200);
    let login = post(
        &service,
        "/api/login",
        json!({ "email": "agent@a.example", "password": PASSWORD,
                "organization": other["organization"]["id"] }),
    )
    .await;
    assert_eq!(login.status(), 200);
    let in_b = as_member(&service, &session_of(&login), Role::Admin)
        .json(Method::GET, "/api/me", None)
        .await;
    assert_eq!(in_b["role"], "admin");
    assert_eq!(in_b["organization"]["name"], "B");
    // an expired invitation cannot be used
    let created = owner
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": "late@a.example", "role": "agent" })),
        )
        .await;
    sqlx::query("UPDATE invitations SET expires_at = 1 WHERE id = $1")
        .bind(created["invitation"]["id"].as_str().unwrap())
        .execute(service.shared().db.pool())
        .await
        .unwrap();
    let late = post(
        &service,
        "/api/invitations/accept",
        json!({ "token": created["token"], "password": PASSWORD }),
    )
    .await;
    assert_eq!(late.status(), 404);
    // the invitation can be cancelled
    let pending = owner.json(Method::GET, "/api/invitations", None).await;
    let open = pending["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["accepted_at"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = owner
        .call(Method::DELETE, &format!("/api/invitations/{open}"), None)
        .await;
    assert_eq!(status, 204);
    service.shutdown().await;
}

fn user_id(body: &Value) -> String {
    body["user"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn role_rules_protect_owners_and_the_last_owner() {
    let dir = Dir::local("roles");
    let service = start(&dir).await;
    let (owner, signed) = sign_up(&service, "owner@a.example", "A").await;
    let owner_id = user_id(&signed);
    let (admin, a) = invite(&service, &owner, "admin@a.example", Role::Admin).await;
    let admin_id = user_id(&a);
    let (agent, g) = invite(&service, &owner, "agent@a.example", Role::Agent).await;
    let agent_id = user_id(&g);
    let role = |r: &str| json!({ "role": r });
    let patch = |who: &Who, id: &str, r: &str| {
        let (who, path, body) = (who.clone(), format!("/api/members/{id}"), role(r));
        async move { who.call(Method::PATCH, &path, Some(&body)).await.0 }
    };
    let remove = |who: &Who, id: &str| {
        let (who, path) = (who.clone(), format!("/api/members/{id}"));
        async move { who.call(Method::DELETE, &path, None).await.0 }
    };
    // only an Owner makes or removes Owners
    assert_eq!(patch(&admin, &agent_id, "owner").await, 403);
    assert_eq!(patch(&admin, &owner_id, "agent").await, 403);
    assert_eq!(remove(&admin, &owner_id).await, 403);
    // an Agent manages nobody
    assert_eq!(patch(&agent, &admin_id, "agent").await, 403);
    assert_eq!(remove(&agent, &admin_id).await, 403);
    // an Admin manages Agents
    assert_eq!(patch(&admin, &agent_id, "admin").await, 200);
    assert_eq!(patch(&admin, &agent_id, "agent").await, 200);
    // the last Owner can neither be demoted nor leave
    assert_eq!(patch(&owner, &owner_id, "admin").await, 409);
    assert_eq!(remove(&owner, &owner_id).await, 409);
    // with a second Owner, the first may leave
    assert_eq!(patch(&owner, &admin_id, "owner").await, 200);
    let me = admin.json(Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "owner", "role changes apply to live sessions");
    assert_eq!(remove(&owner, &owner_id).await, 204);
    let (status, _) = owner.call(Method::GET, "/api/me", None).await;
    assert_eq!(status, 401, "a member who left has no session there");
    // the new last Owner is protected too
    assert_eq!(patch(&admin, &admin_id, "agent").await, 409);
    // any member may leave; removed members lose access at once
    assert_eq!(remove(&agent, &agent_id).await, 204);
    let (status, _) = agent.call(Method::GET, "/api/members", None).await;
    assert_eq!(status, 401);
    let members = admin.json(Method::GET, "/api/members", None).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    // unknown roles are refused
    let (status, _) = admin
        .call(
            Method::PATCH,
            &format!("/api/members/{admin_id}"),
            Some(&role("superuser")),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    service.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_and_hashed_at_rest() {
    let dir = Dir::local("keys");
    let service = start(&dir).await;
    let (owner, _) = sign_up(&service, "owner@a.example", "A").await;
    let (key, listed) = create_key(&owner, "zapier", Role::Agent).await;
    assert!(key.starts_with("igdm_k_") && key.len() > 60, "{key}");
    let id = listed["id"].as_str().unwrap().to_string();
    // the list never carries the key
    let list = owner.json(Method::GET, "/api/api-keys", None).await;
    assert_eq!(list["api_keys"][0]["name"], "zapier");
    assert!(!list.to_string().contains(&key), "{list}");
    // at rest: only the SHA-256 of the key, in no column the key itself
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, key_hash, prefix FROM api_keys")
            .fetch_all(service.shared().db.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, hex_sha256(&key));
    assert!(rows.iter().all(|(a, b, c)| ![a, b, c].contains(&&key)));
    // it acts with its role, in its organization
    let agent_key = as_key(&service, &key, Role::Agent);
    let me = agent_key.json(Method::GET, "/api/me", None).await;
    assert_eq!(me["role"], "agent");
    assert_eq!(me["credential"]["kind"], "api_key");
    let list = owner.json(Method::GET, "/api/api-keys", None).await;
    assert!(list["api_keys"][0]["last_used_at"].is_i64(), "{list}");
    let (status, _) = agent_key
        .call(
            Method::POST,
            "/api/api-keys",
            Some(&json!({"name": "x", "role": "agent"})),
        )
        .await;
    assert_eq!(status, 403);
    // an Admin cannot mint Owner keys
    let (admin, _) = invite(&service, &owner, "admin@a.example", Role::Admin).await;
    let (status, _) = admin
        .call(
            Method::POST,
            "/api/api-keys",
            Some(&json!({"name": "x", "role": "owner"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = admin
        .call(
            Method::POST,
            "/api/api-keys",
            Some(&json!({"name": " ", "role": "agent"})),
        )
        .await;
    assert_eq!(status, 400);
    // revoked keys stop working at once
    let (status, _) = owner
        .call(Method::DELETE, &format!("/api/api-keys/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = agent_key.call(Method::GET, "/api/me", None).await;
    assert_eq!(status, 401);
    let list = owner.json(Method::GET, "/api/api-keys", None).await;
    assert!(list["api_keys"][0]["revoked_at"].is_i64(), "{list}");
    // operator keys from the configuration act as the bootstrap organization's Owner
    let operator = as_key(&service, OPERATOR_KEY, Role::Owner)
        .json(Method::GET, "/api/me", None)
        .await;
    assert_eq!(operator["organization"]["id"], "bootstrap");
    assert_eq!(operator["role"], "owner");
    service.shutdown().await;
}

#[tokio::test]
async fn p2_passwords_are_stored_only_as_one_way_hashes() {
    let dir = Dir::local("p2");
    let service = start(&dir).await;
    let password = "a very particular passphrase 4711";
    let answer = post(
        &service,
        "/api/signup",
        json!({ "email": "p2@example.com", "password": password, "organization": "P2" }),
    )
    .await;
    assert_eq!(answer.status(), 201);
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'p2@example.com'")
            .fetch_one(service.shared().db.pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert!(!stored.contains(password));
    // the stored string verifies the password and nothing else (argon2, salted)
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(&stored).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"a very particular passphrase 4712", &parsed)
        .is_err());
    service.shutdown().await;
    // the password appears nowhere in the database files (main file and write-ahead log);
    // on PostgreSQL the files are the server's, and the column check above stands
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("igdm.db") {
            let bytes = std::fs::read(&path).unwrap();
            if bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes())
            {
                found.push(path);
            }
        }
    }
    assert!(found.is_empty(), "the password is stored in {found:?}");
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation

/// One organization with data in every table the management API reads.
struct Org {
    owner: Who,
    /// The tag its ids are made from.
    tag: String,
    org_id: String,
    owner_id: String,
    account: String,
    contact: String,
    token: String,
    rule: String,
    invitation: String,
    key_id: String,
    key: String,
    /// An outbound webhook subscription naming the account.
    subscription: String,
    /// An outbound delivery of it (failed after three attempts).
    delivery: String,
    /// A legal request recorded for the account.
    legal_request: String,
    /// The confirmation code of a contact deletion in the organization.
    receipt: String,
    /// Every id and value of this organization that must never show to another.
    values: Vec<String>,
}

async fn organization(service: &RunningService, tag: &str) -> Org {
    let (owner, signed) = sign_up(
        service,
        &format!("owner@{tag}.example"),
        &format!("Org {tag}"),
    )
    .await;
    let org_id = signed["organization"]["id"].as_str().unwrap().to_string();
    let owner_id = user_id(&signed);
    let account = format!(
        "1784140000000{}",
        tag.len() * 7 + tag.as_bytes()[0] as usize
    );
    let contact = format!("IGSID-{tag}-contact");
    let token = format!("IGAA-{tag}-plain-token-value");
    service
        .connect_account_in(&org_id, &account, Some(&format!("{tag}_shop")), &token)
        .await
        .unwrap();
    let rule = format!("rule-{tag}");
    let rules = format!(
        "account = \"{account}\"\n[[rules]]\nid = \"{rule}\"\non = [\"comment\"]\n\
         match = {{ mode = \"contains\", keywords = [\"kw{tag}\"] }}\n\
         actions = [{{ type = \"private_reply\", text = \"reply-text-{tag}\" }}]\n"
    );
    let saved = reqwest::Client::new()
        .post(format!("{}/api/automations", service.base_url()))
        .header(owner.header.0, &owner.header.1)
        .body(rules)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 201, "{}", saved.text().await.unwrap());
    let pool = service.shared().db.pool();
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query("INSERT INTO media (account, id, kind, caption, permalink, synced_at) VALUES ($1, $2, 'REELS', $3, $4, $5)")
        .bind(&account)
        .bind(format!("media-{tag}"))
        .bind(format!("caption-{tag}"))
        .bind(format!("https://instagram.example/p/{tag}"))
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO contacts (account, id, username, body, last_interaction) VALUES ($1, $2, $3, $4, $5)")
        .bind(&account)
        .bind(&contact)
        .bind(format!("fan_{tag}"))
        .bind(json!({ "id": contact, "username": format!("fan_{tag}"), "tags": [format!("tag-{tag}")] }).to_string())
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO events (account, key, inbox_id, kind, contact, text, occurred_at, processed_at, outcome, rule, decision) \
                 VALUES ($1, $2, 'inbox', 'comment', $3, $4, $5, $5, 'fired', $6, '{}')")
        .bind(&account)
        .bind(format!("event-{tag}"))
        .bind(&contact)
        .bind(format!("comment-text-{tag}"))
        .bind(now)
        .bind(&rule)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO outbox (key, account, event_key, action_index, rule, kind, recipient, action, status, next_attempt_at, mid, created_at, updated_at) \
                 VALUES ($1, $2, $3, 0, $4, 'private_reply', $5, '{}', 'sent', $6, $7, $6, $6)")
        .bind(format!("outbox-{tag}"))
        .bind(&account)
        .bind(format!("event-{tag}"))
        .bind(&rule)
        .bind(&contact)
        .bind(now)
        .bind(format!("mid-{tag}"))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO delivery_log (outbox_key, account, rule, kind, attempt, status, mid, at) \
                 VALUES ($1, $2, $3, 'private_reply', 1, 'sent', $4, $5)",
    )
    .bind(format!("outbox-{tag}"))
    .bind(&account)
    .bind(&rule)
    .bind(format!("mid-{tag}"))
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    // the team inbox: a conversation with a message and a note
    sqlx::query("INSERT INTO conversations (account, contact, status, assignee, last_inbound_at, created_at, updated_at) \
                 VALUES ($1, $2, 'open', $3, $4, $4, $4)")
        .bind(&account)
        .bind(&contact)
        .bind(&owner_id)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO messages (account, mid, contact, direction, text, sent_at, sent_by) \
                 VALUES ($1, $2, $3, 'in', $4, $5, 'contact')",
    )
    .bind(&account)
    .bind(format!("inbox-mid-{tag}"))
    .bind(&contact)
    .bind(format!("inbox-message-{tag}"))
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO conversation_notes (id, account, contact, author, text, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(format!("note-{tag}"))
    .bind(&account)
    .bind(&contact)
    .bind(&owner_id)
    .bind(format!("inbox-note-{tag}"))
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    // CRM: a custom field, a pipeline stage, and a tag and a field value on the contact
    owner
        .json(
            Method::PUT,
            &format!("/api/crm/fields/field_{tag}"),
            Some(&json!({ "type": "text", "label": format!("field-label-{tag}") })),
        )
        .await;
    owner
        .json(
            Method::PUT,
            "/api/crm/stages",
            Some(&json!({ "stages": [{ "id": format!("stage_{tag}"), "name": format!("stage-name-{tag}") }] })),
        )
        .await;
    owner
        .json(
            Method::PUT,
            &format!("/api/crm/contacts/{account}/{contact}/tags/crm-tag-{tag}"),
            None,
        )
        .await;
    owner
        .json(
            Method::PUT,
            &format!("/api/crm/contacts/{account}/{contact}/fields/field_{tag}"),
            Some(&json!({ "value": format!("crm-value-{tag}") })),
        )
        .await;
    let created = owner
        .json(
            Method::POST,
            "/api/invitations",
            Some(&json!({ "email": format!("invitee@{tag}.example"), "role": "agent" })),
        )
        .await;
    let invitation = created["invitation"]["id"].as_str().unwrap().to_string();
    let invitation_token = created["token"].as_str().unwrap().to_string();
    let (key, listed) = create_key(&owner, &format!("key-name-{tag}"), Role::Admin).await;
    let key_id = listed["id"].as_str().unwrap().to_string();
    let hook = owner
        .json(
            Method::POST,
            "/api/webhooks/subscriptions",
            Some(&json!({
                "url": format!("https://hooks-{tag}.example/receive"),
                "event_types": ["message.received"],
                "account": account,
                "description": format!("hook-description-{tag}"),
            })),
        )
        .await;
    assert_eq!(hook["org_id"], org_id.as_str(), "{hook}");
    let subscription = hook["id"].as_str().unwrap().to_string();
    let hook_secret = hook["secret"].as_str().unwrap().to_string();
    let delivery = format!("msg_delivery_{tag}");
    let payload =
        json!({ "type": "message.received", "data": { "text": format!("hook-payload-{tag}") } });
    sqlx::query(
        "INSERT INTO outbound_deliveries (id, subscription_id, org_id, account, contact, event_type, \
         payload, status, attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'message.received', $6, 'failed', 3, $7, 503, $8, $7, $7)",
    )
    .bind(&delivery)
    .bind(&subscription)
    .bind(&org_id)
    .bind(&account)
    .bind(&contact)
    .bind(payload.to_string())
    .bind(now)
    .bind(format!("hook-error-{tag}"))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbound_attempts (delivery_id, subscription_id, org_id, account, attempt, \
         outcome, status_code, error, duration_ms, at) VALUES ($1, $2, $3, $4, 3, 'failed', 503, $5, 12, $6)",
    )
    .bind(&delivery)
    .bind(&subscription)
    .bind(&org_id)
    .bind(&account)
    .bind(format!("hook-error-{tag}"))
    .bind(now)
    .execute(pool)
    .await
    .unwrap();
    // privacy: a legal request, and a deleted contact (its receipt)
    let legal = owner
        .json(
            Method::POST,
            "/privacy/legal-requests",
            Some(&json!({
                "account": account, "contact": contact, "authority": format!("authority-{tag}"),
                "request": format!("legal-request-{tag}"), "legal_basis": format!("basis-{tag}"),
            })),
        )
        .await;
    let legal_request = legal["id"].as_str().unwrap().to_string();
    // P8: a data class of its own
    owner
        .json(
            Method::PUT,
            &format!("/privacy/retention-classes/receipts-{tag}"),
            Some(&json!({ "keep_for": { "years": 7 }, "promise": format!("class-promise-{tag}") })),
        )
        .await;
    let gone = format!("IGSID-{tag}-gone");
    sqlx::query("INSERT INTO contacts (account, id, username, body, last_interaction) VALUES ($1, $2, NULL, '{}', $3)")
        .bind(&account)
        .bind(&gone)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
    let deleted = owner
        .json(
            Method::DELETE,
            &format!("/privacy/contacts/{account}/{gone}"),
            None,
        )
        .await;
    let receipt = deleted["confirmation_code"].as_str().unwrap().to_string();
    let sealed: String = sqlx::query_scalar("SELECT token_sealed FROM accounts WHERE id = $1")
        .bind(&account)
        .fetch_one(pool)
        .await
        .unwrap();
    let values = vec![
        org_id.clone(),
        owner_id.clone(),
        format!("owner@{tag}.example"),
        format!("Org {tag}"),
        account.clone(),
        format!("{tag}_shop"),
        contact.clone(),
        format!("fan_{tag}"),
        token.clone(),
        sealed,
        rule.clone(),
        format!("reply-text-{tag}"),
        format!("media-{tag}"),
        format!("caption-{tag}"),
        format!("comment-text-{tag}"),
        format!("outbox-{tag}"),
        format!("mid-{tag}"),
        invitation.clone(),
        invitation_token,
        format!("invitee@{tag}.example"),
        key_id.clone(),
        key.clone(),
        format!("key-name-{tag}"),
        subscription.clone(),
        hook_secret,
        format!("https://hooks-{tag}.example"),
        format!("hook-description-{tag}"),
        delivery.clone(),
        format!("hook-payload-{tag}"),
        format!("hook-error-{tag}"),
        legal_request.clone(),
        format!("authority-{tag}"),
        format!("legal-request-{tag}"),
        receipt.clone(),
        format!("inbox-mid-{tag}"),
        format!("inbox-message-{tag}"),
        format!("note-{tag}"),
        format!("inbox-note-{tag}"),
        format!("receipts-{tag}"),
        format!("class-promise-{tag}"),
        format!("field-label-{tag}"),
        format!("stage-name-{tag}"),
        format!("crm-tag-{tag}"),
        format!("crm-value-{tag}"),
    ];
    Org {
        owner,
        tag: tag.to_string(),
        org_id,
        owner_id,
        account,
        contact,
        token,
        rule,
        invitation,
        key_id,
        key,
        subscription,
        delivery,
        legal_request,
        receipt,
        values,
    }
}

/// The routes of the HTTP service as (METHOD, path template), read from the router's sources
/// (`src/service/http/*.rs`, nests from `mod.rs`): an endpoint added anywhere shows up here.
fn routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/service/http");
    let module = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    // `.nest("/prefix", file::router(...))`
    let mut prefixes = std::collections::BTreeMap::new();
    for part in module.split(".nest(").skip(1) {
        let prefix = part.split('"').nth(1).unwrap().to_string();
        let file = part
            .split(',')
            .nth(1)
            .unwrap()
            .trim()
            .split("::")
            .next()
            .unwrap()
            .to_string();
        prefixes.insert(format!("{file}.rs"), prefix);
    }
    // every Rust file under http/, sub-modules included
    let mut files = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut found = BTreeSet::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let source = std::fs::read_to_string(&path).unwrap();
        let prefix = prefixes.get(&name).cloned().unwrap_or_default();
        for part in source.split(".route(").skip(1) {
            let route = part.split('"').nth(1).unwrap();
            // the arguments of this `.route(...)` call: up to the matching parenthesis
            let mut depth = 1;
            let mut end = part.len();
            for (i, c) in part.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &part[..end];
            for m in ["get", "post", "put", "patch", "delete"] {
                let call = format!("{m}(");
                let mut rest = args;
                while let Some(at) = rest.find(&call) {
                    let before = rest[..at].chars().last().unwrap_or(' ');
                    if !(before.is_alphanumeric() || before == '_') {
                        found.insert((m.to_uppercase(), format!("{prefix}{route}")));
                    }
                    rest = &rest[at + call.len()..];
                }
            }
        }
    }
    found
}

/// Routes that take no caller, and why they are safe to call by anyone.
const PUBLIC: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/webhooks/instagram",
        "Meta's subscription handshake",
    ),
    ("POST", "/webhooks/instagram", "Meta's signed notifications"),
    ("GET", "/healthz", "liveness, no data"),
    ("GET", "/readyz", "readiness, no data"),
    ("GET", "/metrics", "counters without ids"),
    (
        "GET",
        "/connect/instagram/callback",
        "Meta's OAuth redirect; the organization comes from the state",
    ),
    ("POST", "/api/signup", "creates a new organization"),
    ("POST", "/api/login", "checks a password"),
    (
        "POST",
        "/api/invitations/accept",
        "the invitation token is the credential",
    ),
    (
        "POST",
        "/meta/deauthorize",
        "Meta's callback: the signed_request, verified with the app secret, is the credential",
    ),
    (
        "POST",
        "/meta/data-deletion",
        "Meta's callback: the signed_request, verified with the app secret, is the credential",
    ),
    (
        "GET",
        "/meta/deletion-status/{code}",
        "the public status page Meta links to: the unguessable confirmation code is the key, and \
         it shows counts only",
    ),
    (
        "GET",
        "/privacy/exports/{token}",
        "the download link: the single-use, expiring token is the credential",
    ),
    (
        "POST",
        "/hooks/inbound/{id}",
        "other tools' Standard Webhooks requests: the signature with the subscription's secret is \
         the credential, and writes reach only the subscription's account in its organization",
    ),
];

/// One request made as another organization.
struct Case {
    method: &'static str,
    route: &'static str,
    path: String,
    body: Option<Value>,
    /// What the role needs.
    permission: Permission,
    /// The request names the other organization's ids: 404 when allowed.
    foreign: bool,
}

fn cases(a: &Org) -> Vec<Case> {
    let c = |method, route, path: String, permission, foreign| Case {
        method,
        route,
        path,
        body: None,
        permission,
        foreign,
    };
    let acc = &a.account;
    let rules = format!(
        "{{\"account\": \"{acc}\", \"rules\": [{{\"id\": \"{}\", \"on\": [\"comment\"], \
         \"match\": {{\"mode\": \"contains\", \"keywords\": [\"x\"]}}, \
         \"actions\": [{{\"type\": \"private_reply\", \"text\": \"hijacked\"}}]}}]}}",
        a.rule
    );
    use Permission::*;
    vec![
        c(
            "GET",
            "/api/accounts",
            "/api/accounts".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/accounts/{id}",
            format!("/api/accounts/{acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/automations",
            "/api/automations".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/automations",
            format!("/api/automations?account={acc}"),
            ViewInbox,
            true,
        ),
        Case {
            body: Some(Value::String(rules)),
            ..c(
                "POST",
                "/api/automations",
                "/api/automations".into(),
                ManageAutomations,
                true,
            )
        },
        c(
            "DELETE",
            "/api/automations/{account}/{id}",
            format!("/api/automations/{acc}/{}", a.rule),
            ManageAutomations,
            true,
        ),
        c("GET", "/api/media", "/api/media".into(), ViewInbox, false),
        c(
            "GET",
            "/api/media",
            format!("/api/media?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/contacts",
            format!("/api/contacts?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/conversations",
            format!("/api/conversations?account={acc}&contact={}", a.contact),
            ViewInbox,
            true,
        ),
        // CRM (http/crm.rs)
        c(
            "GET",
            "/api/crm/contacts",
            "/api/crm/contacts".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/crm/contacts",
            format!("/api/crm/contacts?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/crm/contacts/{account}/{contact}",
            format!("/api/crm/contacts/{acc}/{}", a.contact),
            ViewInbox,
            true,
        ),
        c(
            "POST",
            "/api/crm/contacts/{account}/{contact}/profile",
            format!("/api/crm/contacts/{acc}/{}/profile", a.contact),
            EditContacts,
            true,
        ),
        c(
            "PUT",
            "/api/crm/contacts/{account}/{contact}/tags/{tag}",
            format!("/api/crm/contacts/{acc}/{}/tags/hijacked", a.contact),
            EditContacts,
            true,
        ),
        c(
            "DELETE",
            "/api/crm/contacts/{account}/{contact}/tags/{tag}",
            format!("/api/crm/contacts/{acc}/{}/tags/crm-tag-a", a.contact),
            EditContacts,
            true,
        ),
        Case {
            body: Some(json!({ "value": "hijacked" })),
            ..c(
                "PUT",
                "/api/crm/contacts/{account}/{contact}/fields/{key}",
                format!("/api/crm/contacts/{acc}/{}/fields/field_a", a.contact),
                EditContacts,
                true,
            )
        },
        c(
            "DELETE",
            "/api/crm/contacts/{account}/{contact}/fields/{key}",
            format!("/api/crm/contacts/{acc}/{}/fields/field_a", a.contact),
            EditContacts,
            true,
        ),
        Case {
            body: Some(json!({ "stage": "stage_a" })),
            ..c(
                "PUT",
                "/api/crm/contacts/{account}/{contact}/stage",
                format!("/api/crm/contacts/{acc}/{}/stage", a.contact),
                EditContacts,
                true,
            )
        },
        c(
            "GET",
            "/api/crm/fields",
            "/api/crm/fields".into(),
            ViewInbox,
            false,
        ),
        Case {
            // field keys are per organization: this defines one in the caller's own
            body: Some(json!({ "type": "text" })),
            ..c(
                "PUT",
                "/api/crm/fields/{key}",
                "/api/crm/fields/case_field".into(),
                ManageContactSchema,
                false,
            )
        },
        c(
            "DELETE",
            "/api/crm/fields/{key}",
            "/api/crm/fields/field_a".into(),
            ManageContactSchema,
            true,
        ),
        c(
            "GET",
            "/api/crm/stages",
            "/api/crm/stages".into(),
            ViewInbox,
            false,
        ),
        Case {
            body: Some(json!({ "stages": [{ "id": "case_stage" }] })),
            ..c(
                "PUT",
                "/api/crm/stages",
                "/api/crm/stages".into(),
                ManageContactSchema,
                false,
            )
        },
        c(
            "GET",
            "/api/deliveries",
            "/api/deliveries".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/deliveries",
            "/api/deliveries?outbox_key=outbox-a".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/deliveries",
            format!("/api/deliveries?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/analytics",
            "/api/analytics".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/analytics",
            format!("/api/analytics?account={acc}"),
            ViewInbox,
            true,
        ),
        c("GET", "/api/me", "/api/me".into(), ViewInbox, false),
        c(
            "POST",
            "/api/logout",
            "/api/logout".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/members",
            "/api/members".into(),
            ViewMembers,
            false,
        ),
        Case {
            body: Some(json!({ "role": "agent" })),
            ..c(
                "PATCH",
                "/api/members/{user}",
                format!("/api/members/{}", a.owner_id),
                ManageMembers,
                true,
            )
        },
        c(
            "DELETE",
            "/api/members/{user}",
            format!("/api/members/{}", a.owner_id),
            ManageMembers,
            true,
        ),
        c(
            "GET",
            "/api/invitations",
            "/api/invitations".into(),
            ManageMembers,
            false,
        ),
        Case {
            body: Some(json!({ "email": "new@example.com", "role": "agent" })),
            ..c(
                "POST",
                "/api/invitations",
                "/api/invitations".into(),
                ManageMembers,
                false,
            )
        },
        c(
            "DELETE",
            "/api/invitations/{id}",
            format!("/api/invitations/{}", a.invitation),
            ManageMembers,
            true,
        ),
        c(
            "GET",
            "/api/api-keys",
            "/api/api-keys".into(),
            ManageApiKeys,
            false,
        ),
        Case {
            body: Some(json!({ "name": "another", "role": "agent" })),
            ..c(
                "POST",
                "/api/api-keys",
                "/api/api-keys".into(),
                ManageApiKeys,
                false,
            )
        },
        c(
            "DELETE",
            "/api/api-keys/{id}",
            format!("/api/api-keys/{}", a.key_id),
            ManageApiKeys,
            true,
        ),
        c(
            "GET",
            "/connect/instagram",
            "/connect/instagram".into(),
            ManageConnections,
            false,
        ),
        c(
            "GET",
            "/api/webhooks/subscriptions",
            "/api/webhooks/subscriptions".into(),
            ManageWebhooks,
            false,
        ),
        c(
            "GET",
            "/api/webhooks/subscriptions",
            format!("/api/webhooks/subscriptions?account={acc}"),
            ManageWebhooks,
            true,
        ),
        Case {
            body: Some(json!({
                "url": "https://receiver.example/hook",
                "event_types": ["message.received", "contact.updated"],
                "account": acc,
            })),
            ..c(
                "POST",
                "/api/webhooks/subscriptions",
                "/api/webhooks/subscriptions".into(),
                ManageWebhooks,
                true,
            )
        },
        Case {
            body: Some(json!({ "direction": "inbound", "account": acc })),
            ..c(
                "POST",
                "/api/webhooks/subscriptions",
                "/api/webhooks/subscriptions".into(),
                ManageWebhooks,
                true,
            )
        },
        Case {
            body: Some(json!({
                "url": "https://receiver.example/hook",
                "event_types": ["message.received"],
            })),
            ..c(
                "POST",
                "/api/webhooks/subscriptions",
                "/api/webhooks/subscriptions".into(),
                ManageWebhooks,
                false,
            )
        },
        c(
            "GET",
            "/api/webhooks/subscriptions/{id}",
            format!("/api/webhooks/subscriptions/{}", a.subscription),
            ManageWebhooks,
            true,
        ),
        Case {
            body: Some(json!({ "enabled": false, "url": "https://hijack.example/h" })),
            ..c(
                "PATCH",
                "/api/webhooks/subscriptions/{id}",
                format!("/api/webhooks/subscriptions/{}", a.subscription),
                ManageWebhooks,
                true,
            )
        },
        c(
            "POST",
            "/api/webhooks/subscriptions/{id}/secret",
            format!("/api/webhooks/subscriptions/{}/secret", a.subscription),
            ManageWebhooks,
            true,
        ),
        c(
            "DELETE",
            "/api/webhooks/subscriptions/{id}",
            format!("/api/webhooks/subscriptions/{}", a.subscription),
            ManageWebhooks,
            true,
        ),
        c(
            "GET",
            "/api/webhooks/deliveries",
            "/api/webhooks/deliveries".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/webhooks/deliveries",
            format!("/api/webhooks/deliveries?subscription={}", a.subscription),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/webhooks/deliveries",
            format!("/api/webhooks/deliveries?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/webhooks/deliveries/{id}",
            format!("/api/webhooks/deliveries/{}", a.delivery),
            ViewInbox,
            true,
        ),
        c(
            "POST",
            "/api/webhooks/deliveries/{id}/redeliver",
            format!("/api/webhooks/deliveries/{}/redeliver", a.delivery),
            ManageWebhooks,
            true,
        ),
        // the team inbox
        c(
            "GET",
            "/api/inbox/conversations",
            "/api/inbox/conversations".into(),
            ViewInbox,
            false,
        ),
        c(
            "GET",
            "/api/inbox/conversations",
            format!("/api/inbox/conversations?account={acc}"),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/api/inbox/conversations/{account}/{contact}",
            format!("/api/inbox/conversations/{acc}/{}", a.contact),
            ViewInbox,
            true,
        ),
        Case {
            body: Some(json!({ "status": "pending" })),
            ..c(
                "PATCH",
                "/api/inbox/conversations/{account}/{contact}",
                format!("/api/inbox/conversations/{acc}/{}", a.contact),
                Reply,
                true,
            )
        },
        Case {
            body: Some(json!({ "assignee": a.owner_id })),
            ..c(
                "POST",
                "/api/inbox/conversations/{account}/{contact}/assign",
                format!("/api/inbox/conversations/{acc}/{}/assign", a.contact),
                ManageMembers,
                true,
            )
        },
        Case {
            body: Some(json!({ "text": "a note from elsewhere" })),
            ..c(
                "POST",
                "/api/inbox/conversations/{account}/{contact}/notes",
                format!("/api/inbox/conversations/{acc}/{}/notes", a.contact),
                Reply,
                true,
            )
        },
        Case {
            body: Some(json!({ "text": "a reply from elsewhere" })),
            ..c(
                "POST",
                "/api/inbox/conversations/{account}/{contact}/reply",
                format!("/api/inbox/conversations/{acc}/{}/reply", a.contact),
                Reply,
                true,
            )
        },
        c(
            "GET",
            "/api/inbox/settings",
            "/api/inbox/settings".into(),
            ViewInbox,
            false,
        ),
        Case {
            body: Some(json!({ "round_robin": false })),
            ..c(
                "PUT",
                "/api/inbox/settings",
                "/api/inbox/settings".into(),
                ManageMembers,
                false,
            )
        },
        c(
            "GET",
            "/api/inbox/metrics",
            "/api/inbox/metrics".into(),
            ViewInbox,
            false,
        ),
        Case {
            body: Some(json!({ "account": acc })),
            ..c(
                "POST",
                "/api/inbox/backfill",
                "/api/inbox/backfill".into(),
                ManageConnections,
                true,
            )
        },
        c(
            "GET",
            "/api/inbox/backfill/{account}",
            format!("/api/inbox/backfill/{acc}"),
            ViewInbox,
            true,
        ),
        // privacy operations (last: as the data's own Owner, p1 really runs them)
        c(
            "GET",
            "/privacy/consents",
            format!("/privacy/consents?account={acc}&contact={}", a.contact),
            ViewInbox,
            true,
        ),
        c(
            "GET",
            "/privacy/audit",
            "/privacy/audit".into(),
            ManagePrivacy,
            false,
        ),
        c(
            "GET",
            "/privacy/audit",
            format!("/privacy/audit?account={acc}"),
            ManagePrivacy,
            true,
        ),
        c(
            "GET",
            "/privacy/legal-requests",
            "/privacy/legal-requests".into(),
            ManagePrivacy,
            false,
        ),
        c(
            "GET",
            "/privacy/legal-requests",
            format!("/privacy/legal-requests?account={acc}"),
            ManagePrivacy,
            true,
        ),
        Case {
            body: Some(json!({
                "account": acc, "authority": "someone", "request": "everything", "legal_basis": "none",
            })),
            ..c(
                "POST",
                "/privacy/legal-requests",
                "/privacy/legal-requests".into(),
                ManagePrivacy,
                true,
            )
        },
        Case {
            body: Some(json!({ "response": "refused", "legal_basis": "hijack" })),
            ..c(
                "POST",
                "/privacy/legal-requests/{id}/answer",
                format!("/privacy/legal-requests/{}/answer", a.legal_request),
                ManagePrivacy,
                true,
            )
        },
        c(
            "GET",
            "/privacy/deletions/{code}",
            format!("/privacy/deletions/{}", a.receipt),
            ManagePrivacy,
            true,
        ),
        c(
            "GET",
            "/privacy/retention/{account}",
            format!("/privacy/retention/{acc}"),
            ManagePrivacy,
            true,
        ),
        Case {
            body: Some(json!({ "presets": ["dm-logs"] })),
            ..c(
                "PUT",
                "/privacy/retention/{account}",
                format!("/privacy/retention/{acc}"),
                ManagePrivacy,
                true,
            )
        },
        c(
            "GET",
            "/privacy/retention/{account}/reports",
            format!("/privacy/retention/{acc}/reports"),
            ManagePrivacy,
            true,
        ),
        c(
            "POST",
            "/privacy/retention/sweep",
            "/privacy/retention/sweep".into(),
            ManagePrivacy,
            false,
        ),
        Case {
            body: Some(json!({ "account": acc, "contact": a.contact })),
            ..c(
                "POST",
                "/privacy/exports",
                "/privacy/exports".into(),
                ManagePrivacy,
                true,
            )
        },
        Case {
            body: Some(json!({ "account": acc })),
            ..c(
                "POST",
                "/privacy/exports",
                "/privacy/exports".into(),
                ManagePrivacy,
                true,
            )
        },
        Case {
            body: Some(json!({ "organization": a.org_id })),
            ..c(
                "POST",
                "/privacy/exports",
                "/privacy/exports".into(),
                ManagePrivacy,
                true,
            )
        },
        Case {
            // members export only their own data
            body: Some(json!({ "member": a.owner_id })),
            ..c(
                "POST",
                "/privacy/exports",
                "/privacy/exports".into(),
                ViewInbox,
                true,
            )
        },
        Case {
            // members delete only their own account (p1: the last Owner may not)
            body: Some(json!({ "member": a.owner_id, "confirm": true })),
            ..c(
                "DELETE",
                "/privacy/member",
                "/privacy/member".into(),
                ViewInbox,
                true,
            )
        },
        Case {
            // without "confirm": true, so that the data's own Owner (p1) deletes nothing
            body: Some(json!({ "organization": a.org_id })),
            ..c(
                "DELETE",
                "/privacy/organization",
                "/privacy/organization".into(),
                DeleteOrganization,
                true,
            )
        },
        c(
            "DELETE",
            "/privacy/contacts/{account}/{contact}",
            format!("/privacy/contacts/{acc}/{}", a.contact),
            ManagePrivacy,
            true,
        ),
        c(
            "DELETE",
            "/privacy/accounts/{account}",
            format!("/privacy/accounts/{acc}"),
            ManagePrivacy,
            true,
        ),
        // P8: the organization's own data classes and records
        c(
            "GET",
            "/privacy/retention-classes",
            "/privacy/retention-classes".into(),
            ManagePrivacy,
            false,
        ),
        Case {
            body: Some(json!({ "keep_for": { "years": 2 }, "anchor": "last_activity" })),
            ..c(
                "PUT",
                "/privacy/retention-classes/{name}",
                "/privacy/retention-classes/support".into(),
                ManagePrivacy,
                false,
            )
        },
        // a class only the other organization declared
        c(
            "DELETE",
            "/privacy/retention-classes/{name}",
            format!("/privacy/retention-classes/receipts-{}", a.tag),
            ManagePrivacy,
            true,
        ),
        Case {
            // a class only the other organization declared
            body: Some(json!({ "data_class": format!("receipts-{}", a.tag), "body": { "n": 1 } })),
            ..c(
                "POST",
                "/privacy/records",
                "/privacy/records".into(),
                ManagePrivacy,
                true,
            )
        },
        // P17: the access log (Owners only)
        c(
            "GET",
            "/api/access-log",
            "/api/access-log".into(),
            ViewAccessLog,
            false,
        ),
        // P5: the organization's data access (Owners only)
        c(
            "GET",
            "/api/organization/data-access",
            "/api/organization/data-access".into(),
            ManageSettings,
            false,
        ),
        Case {
            body: Some(json!({ "data_access": "full" })),
            ..c(
                "PUT",
                "/api/organization/data-access",
                "/api/organization/data-access".into(),
                ManageSettings,
                false,
            )
        },
    ]
}

async fn call_case(who: &Who, case: &Case) -> (StatusCode, String) {
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    match &case.body {
        Some(Value::String(text)) => {
            let answer = reqwest::Client::new()
                .request(method, format!("{}{}", who.base, case.path))
                .header(who.header.0, &who.header.1)
                .body(text.clone())
                .send()
                .await
                .unwrap();
            (answer.status(), answer.text().await.unwrap())
        }
        body => who.call(method, &case.path, body.as_ref()).await,
    }
}

/// Fresh callers of organization `b`, one per role, and API keys.
async fn callers(service: &RunningService, b: &Org) -> Vec<Who> {
    let tag = uniq();
    let (admin, _) = invite(
        service,
        &b.owner,
        &format!("admin{tag}@b.example"),
        Role::Admin,
    )
    .await;
    let (agent, _) = invite(
        service,
        &b.owner,
        &format!("agent{tag}@b.example"),
        Role::Agent,
    )
    .await;
    let login = post(
        service,
        "/api/login",
        json!({ "email": "owner@b.example", "password": PASSWORD }),
    )
    .await;
    let owner = as_member(service, &session_of(&login), Role::Owner);
    let (agent_key, _) = create_key(&owner, &format!("agent-key-{tag}"), Role::Agent).await;
    let (owner_key, _) = create_key(&owner, &format!("owner-key-{tag}"), Role::Owner).await;
    vec![
        owner,
        admin,
        agent,
        as_key(service, &agent_key, Role::Agent),
        as_key(service, &owner_key, Role::Owner),
        as_key(service, &b.key, Role::Admin),
    ]
}

fn uniq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Calls every case as each role of `b` with `a`'s ids: 403 without the permission, 404 for
/// `a`'s ids, success otherwise, and none of `a`'s values in any answer.
async fn every_endpoint_hides(service: &RunningService, a: &Org, b: &Org) {
    for case in cases(a) {
        // fresh callers per case: some cases log out or would change members
        for who in callers(service, b).await {
            let (status, text) = call_case(&who, &case).await;
            let what = format!(
                "{} {} as {:?} ({})",
                case.method, case.path, who.role, who.header.0
            );
            if !allows(who.role, case.permission) {
                assert_eq!(status, 403, "{what}: {text}");
            } else if case.foreign {
                assert_eq!(status, 404, "{what}: {text}");
            } else {
                assert!(
                    status.is_success() || status == StatusCode::FOUND,
                    "{what}: {status} {text}"
                );
            }
            for value in &a.values {
                assert!(
                    !text.contains(value.as_str()),
                    "{what} leaked `{value}`: {text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn p4_each_organization_only_sees_its_own_data() {
    let dir = Dir::local("p4");
    let service = start(&dir).await;
    let a = organization(&service, "a").await;
    let b = organization(&service, "b").await;

    // every route is either public (with a reason) or has a case here
    let covered: BTreeSet<(String, String)> = cases(&a)
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_string()))
        .chain(
            PUBLIC
                .iter()
                .map(|(m, r, _)| (m.to_string(), r.to_string())),
        )
        .collect();
    let all = routes();
    assert!(all.len() >= 20, "the route scan found too little: {all:?}");
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a tenant-isolation case: {missing:?}; add them to `cases`"
    );
    let stale: Vec<_> = covered.difference(&all).collect();
    assert!(
        stale.is_empty(),
        "cases for routes that do not exist: {stale:?}"
    );

    every_endpoint_hides(&service, &a, &b).await;

    // and B sees its own data
    let own = b.owner.json(Method::GET, "/api/accounts", None).await;
    assert_eq!(own["accounts"][0]["id"], b.account.as_str());
    assert_eq!(own["accounts"].as_array().unwrap().len(), 1);

    // nothing of A changed: its rule, its Owner, its invitation, its key
    let automations = a
        .owner
        .json(
            Method::GET,
            &format!("/api/automations?account={}", a.account),
            None,
        )
        .await;
    assert_eq!(
        automations["automations"][0]["automation"]["id"],
        a.rule.as_str()
    );
    assert!(!automations.to_string().contains("hijacked"));
    // its contact's CRM data and its definitions
    let crm = a
        .owner
        .json(
            Method::GET,
            &format!("/api/crm/contacts/{}/{}", a.account, a.contact),
            None,
        )
        .await;
    assert_eq!(crm["tags"], json!(["crm-tag-a"]), "{crm}");
    assert_eq!(crm["fields"]["field_a"], "crm-value-a", "{crm}");
    assert_eq!(crm["stage"], Value::Null, "{crm}");
    let stages = a.owner.json(Method::GET, "/api/crm/stages", None).await;
    assert_eq!(stages["stages"][0]["id"], "stage_a", "{stages}");
    let members = a.owner.json(Method::GET, "/api/members", None).await;
    assert_eq!(members["members"][0]["role"], "owner");
    let invitations = a.owner.json(Method::GET, "/api/invitations", None).await;
    assert!(invitations.to_string().contains(&a.invitation));
    let me = as_key(&service, &a.key, Role::Admin)
        .json(Method::GET, "/api/me", None)
        .await;
    assert_eq!(me["organization"]["id"], a.org_id.as_str());
    // its webhook subscription (same URL, still enabled, secret untouched) and its delivery
    let hook = a
        .owner
        .json(
            Method::GET,
            &format!("/api/webhooks/subscriptions/{}", a.subscription),
            None,
        )
        .await;
    assert_eq!(hook["enabled"], true, "{hook}");
    assert_eq!(hook["url"], "https://hooks-a.example/receive");
    let (rotated_at, created_at) = (hook["updated_at"].clone(), hook["created_at"].clone());
    assert_eq!(rotated_at, created_at, "nobody else changed it: {hook}");
    let delivery = a
        .owner
        .json(
            Method::GET,
            &format!("/api/webhooks/deliveries/{}", a.delivery),
            None,
        )
        .await;
    assert_eq!(delivery["delivery"]["status"], "failed", "{delivery}");
    assert_eq!(delivery["delivery"]["attempts"], 3);
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
    // B's own subscriptions are B's: bound to B's organization, none of A's listed
    let hooks = b
        .owner
        .json(Method::GET, "/api/webhooks/subscriptions", None)
        .await;
    let hooks = hooks["subscriptions"].as_array().unwrap();
    assert!(hooks.len() > 1, "{hooks:?}");
    assert!(hooks.iter().all(|h| h["org_id"] == b.org_id.as_str()));
    assert!(hooks.iter().any(|h| h["id"] == b.subscription.as_str()));

    // an account connected by one organization cannot be taken over by another
    let taken = service
        .connect_account_in(&b.org_id, &a.account, None, "IGAA-takeover")
        .await
        .unwrap_err();
    assert_eq!(taken.kind(), igdm::service::ErrorKind::Conflict);
    let owner: String = sqlx::query_scalar("SELECT org_id FROM accounts WHERE id = $1")
        .bind(&a.account)
        .fetch_one(service.shared().db.pool())
        .await
        .unwrap();
    assert_eq!(owner, a.org_id);
    service.shutdown().await;
}

#[tokio::test]
async fn p1_no_api_answer_contains_a_token() {
    let dir = Dir::local("p1");
    let service = start(&dir).await;
    let a = organization(&service, "a").await;
    let sealed = a.values[9].clone();
    assert!(sealed.len() > 20 && sealed != a.token);
    // the operator's account too
    service
        .connect_account("17841400000000999", Some("op"), "IGAA-operator-token", None)
        .await
        .unwrap();
    let operator = as_key(&service, OPERATOR_KEY, Role::Owner);
    let mut bodies = 0;
    for case in cases(&a) {
        // as the data's own Owner every endpoint answers with its data
        let login = post(
            &service,
            "/api/login",
            json!({ "email": "owner@a.example", "password": PASSWORD }),
        )
        .await;
        let owner = as_member(&service, &session_of(&login), Role::Owner);
        for who in [&owner, &operator] {
            let (status, text) = call_case(who, &case).await;
            assert!(
                status != StatusCode::INTERNAL_SERVER_ERROR,
                "{}: {text}",
                case.path
            );
            for secret in [
                a.token.as_str(),
                sealed.as_str(),
                "IGAA-operator-token",
                "IGAA",
            ] {
                assert!(
                    !text.contains(secret),
                    "{} {} answered a token: {text}",
                    case.method,
                    case.path
                );
            }
            bodies += 1;
        }
    }
    assert!(bodies > 40);
    // the data really is there: the Owner's account list names the account, not its token
    let accounts = a.owner.json(Method::GET, "/api/accounts", None).await;
    assert_eq!(accounts["accounts"][0]["id"], a.account.as_str());
    assert_eq!(accounts["accounts"][0]["username"], "a_shop");
    service.shutdown().await;
}

/// On PostgreSQL, row-level security is a second wall: the application's database role sees
/// only the rows of the organization set in `igdm.org_id`, and nothing without it. Skipped on
/// SQLite (it has no row-level security).
#[tokio::test]
async fn p4_postgres_row_level_security_hides_other_organizations_rows() {
    if std::env::var("IGDM_TEST_POSTGRES_URL").is_err() {
        println!("skipped: set IGDM_TEST_POSTGRES_URL to check row-level security on PostgreSQL");
        return;
    }
    use sqlx::{AssertSqlSafe, Connection, Row};
    let dir = Dir::local("rls");
    let service = start(&dir).await;
    let a = organization(&service, "a").await;
    let b = organization(&service, "b").await;
    let owner = service.shared().db.pool();
    let role = format!("igdm_app_{}_{}", std::process::id(), uniq());
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD 'app-password'"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(owner)
            .await
            .unwrap();
    }
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(owner)
        .await
        .unwrap();
    let mut url = url::Url::parse(&std::env::var("IGDM_TEST_POSTGRES_URL").unwrap()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("app-password")).unwrap();
    url.set_path(&database);
    let mut app = sqlx::AnyConnection::connect(url.as_str()).await.unwrap();

    // every table holding tenant data has row-level security
    let tables: Vec<(String, String)> = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text FROM information_schema.columns c \
         WHERE c.table_schema = 'public' AND c.column_name IN ('account', 'org_id') \
         ORDER BY c.table_name",
    )
    .fetch_all(owner)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
    .collect();
    assert!(tables.len() >= 15, "{tables:?}");
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace \
         AND NOT relrowsecurity AND relname <> '_sqlx_migrations' ORDER BY relname",
    )
    .fetch_all(owner)
    .await
    .unwrap();
    assert!(
        unprotected.is_empty(),
        "tables without row-level security: {unprotected:?}; add `ENABLE ROW LEVEL SECURITY` and an \
         `igdm_tenant` policy in the PostgreSQL migration"
    );

    let count = |table: &str, column: &str, value: &str| {
        format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{value}'")
    };
    // without an organization: nothing at all
    for (table, _) in &tables {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut app)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without igdm.org_id");
    }
    // as organization B: none of A's rows, B's own rows
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('igdm.org_id', $1, true)")
        .bind(&b.org_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    for (table, column) in &tables {
        let (theirs, ours) = if column == "account" {
            (a.account.as_str(), b.account.as_str())
        } else {
            (a.org_id.as_str(), b.org_id.as_str())
        };
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(count(table, column, theirs)))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}: B's role sees A's rows");
        let own: i64 = sqlx::query_scalar(AssertSqlSafe(count(table, column, ours)))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let all: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(own, all, "{table}: every visible row is B's");
        if [
            "accounts",
            "media",
            "contacts",
            "events",
            "outbox",
            "delivery_log",
            "automations",
            "members",
            "api_keys",
            "invitations",
        ]
        .contains(&table.as_str())
        {
            assert!(own > 0, "{table}: B sees its own rows");
        }
    }
    let users: Vec<String> = sqlx::query_scalar("SELECT email FROM users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(
        !users.iter().any(|e| e.ends_with("@a.example")),
        "{users:?}"
    );
    assert!(users.iter().any(|e| e == "owner@b.example"));
    // A's rows cannot be changed either, nor rows written into A
    let changed = sqlx::query("UPDATE accounts SET username = 'taken' WHERE id = $1")
        .bind(&a.account)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 0);
    tx.rollback().await.unwrap();
    let mut tx = app.begin().await.unwrap();
    sqlx::query("SELECT set_config('igdm.org_id', $1, true)")
        .bind(&b.org_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let planted =
        sqlx::query("INSERT INTO media (account, id, synced_at) VALUES ($1, 'planted', 0)")
            .bind(&a.account)
            .execute(&mut *tx)
            .await;
    assert!(
        planted.is_err(),
        "a row was written into another organization"
    );
    tx.rollback().await.unwrap();
    app.close().await.unwrap();
    for sql in [
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("DROP ROLE {role}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(owner)
            .await
            .unwrap();
    }
    service.shutdown().await;
}

/// A Graph API and OAuth server that connects account `id` (wiremock).
async fn oauth_graph(id: &str) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "IGAA-short", "user_id": id})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "IGAA-long-lived", "token_type": "bearer", "expires_in": 5184000})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "scoped", "user_id": id, "username": "oauth_shop"})))
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/me/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me/media"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&graph)
        .await;
    graph
}

/// Runs the OAuth flow as `who` (or without credentials); the callback's answer.
async fn connect_through_oauth(
    service: &RunningService,
    who: Option<&Who>,
) -> (StatusCode, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut start = http.get(format!("{}/connect/instagram", service.base_url()));
    if let Some(who) = who {
        start = start.header(who.header.0, &who.header.1);
    }
    let start = start.send().await.unwrap();
    if start.status() != StatusCode::FOUND {
        return (start.status(), start.text().await.unwrap());
    }
    let location = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let state = location
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    // Meta redirects the browser: no credentials on the callback
    let done = http
        .get(format!(
            "{}/connect/instagram/callback?code=abc&state={state}",
            service.base_url()
        ))
        .send()
        .await
        .unwrap();
    (done.status(), done.text().await.unwrap())
}

#[tokio::test]
async fn accounts_connected_through_oauth_join_the_callers_organization() {
    let id = "17841400000000777";
    let graph = oauth_graph(id).await;
    let dir = Dir::local("oauth");
    let mut c = Config::for_tests(&dir.0);
    c.database = database().await;
    c.graph_base_url = graph.uri();
    c.graph_version = "v1".into();
    c.oauth_api_base_url = graph.uri();
    c.oauth_authorize_url = format!("{}/oauth/authorize", graph.uri());
    c.api_keys = vec![OPERATOR_KEY.into()];
    c.workers = false;
    let service = Service::start(c).await.unwrap();
    let (owner_a, _) = sign_up(&service, "owner@a.example", "A").await;
    let (owner_b, _) = sign_up(&service, "owner@b.example", "B").await;
    let (agent_a, _) = invite(&service, &owner_a, "agent@a.example", Role::Agent).await;
    // an Agent may not connect accounts
    let (status, _) = connect_through_oauth(&service, Some(&agent_a)).await;
    assert_eq!(status, 403);
    // bad credentials are refused, not treated as anonymous
    let stranger = as_key(&service, "igdm_k_unknown", Role::Owner);
    let (status, _) = connect_through_oauth(&service, Some(&stranger)).await;
    assert_eq!(status, 401);
    // the Owner of A connects: the account is A's, and only A's
    let (status, text) = connect_through_oauth(&service, Some(&owner_a)).await;
    assert_eq!(status, 200, "{text}");
    let listed = owner_a.json(Method::GET, "/api/accounts", None).await;
    assert_eq!(listed["accounts"][0]["id"], id, "{listed}");
    assert_eq!(listed["accounts"][0]["username"], "oauth_shop");
    let (status, _) = owner_b
        .call(Method::GET, &format!("/api/accounts/{id}"), None)
        .await;
    assert_eq!(status, 404);
    let operator = as_key(&service, OPERATOR_KEY, Role::Owner)
        .json(Method::GET, "/api/accounts", None)
        .await;
    assert_eq!(operator["accounts"], json!([]), "{operator}");
    // B cannot take the account over by connecting it too
    let (status, text) = connect_through_oauth(&service, Some(&owner_b)).await;
    assert_eq!(status, 409, "{text}");
    let listed = owner_b.json(Method::GET, "/api/accounts", None).await;
    assert_eq!(listed["accounts"], json!([]), "{listed}");
    // A reconnects its own account fine
    let (status, _) = connect_through_oauth(&service, Some(&owner_a)).await;
    assert_eq!(status, 200);
    service.shutdown().await;
}

/// On PostgreSQL with `database_app_role`, the management API reads and writes as that role with
/// the caller's organization set: row-level security stands behind every read endpoint and the
/// organization-scoped writes (CRM, team inbox, members).
#[tokio::test]
async fn p4_on_postgres_the_api_reads_through_row_level_security() {
    let Some(url) = database().await else {
        println!("skipped: set IGDM_TEST_POSTGRES_URL to run the API under row-level security");
        return;
    };
    use sqlx::{AssertSqlSafe, Connection};
    let role = format!("igdm_reader_{}_{}", std::process::id(), uniq());
    let dir = Dir::local("rls-api");
    // migrate, then create the application role: table privileges, and our login may SET ROLE
    start_on(&dir, Some(url.clone()), None)
        .await
        .shutdown()
        .await;
    let mut admin = sqlx::AnyConnection::connect(&url).await.unwrap();
    let run = |sql: String| sqlx::raw_sql(AssertSqlSafe(sql));
    for sql in [
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("GRANT {role} TO CURRENT_USER"),
    ] {
        run(sql).execute(&mut admin).await.unwrap();
    }
    let service = start_on(&dir, Some(url.clone()), Some(role.clone())).await;
    let a = organization(&service, "a").await;
    let b = organization(&service, "b").await;
    every_endpoint_hides(&service, &a, &b).await;
    let media_path = format!("/api/media?account={}", b.account);
    let media = b.owner.json(Method::GET, &media_path, None).await;
    assert_eq!(media["media"][0]["id"], "media-b", "{media}");
    // the team inbox: B's conversation, its message and note, read as the application role
    let inbox = b
        .owner
        .json(Method::GET, "/api/inbox/conversations", None)
        .await;
    assert_eq!(
        inbox["conversations"].as_array().unwrap().len(),
        1,
        "{inbox}"
    );
    assert_eq!(inbox["conversations"][0]["contact"], b.contact.as_str());
    let one = b
        .owner
        .json(
            Method::GET,
            &format!("/api/inbox/conversations/{}/{}", b.account, b.contact),
            None,
        )
        .await;
    assert_eq!(one["messages"][0]["text"], "inbox-message-b", "{one}");
    assert_eq!(one["notes"][0]["text"], "inbox-note-b", "{one}");
    // the reads really run as the application role: without its privilege they fail
    let status = status_without(
        &mut admin,
        &role,
        "SELECT ON media",
        &b.owner,
        Method::GET,
        &media_path,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = b.owner.call(Method::GET, &media_path, None).await;
    assert_eq!(status, StatusCode::OK);
    // the privacy registers too: B's legal request, read as the application role
    let legal = b
        .owner
        .json(Method::GET, "/privacy/legal-requests", None)
        .await;
    assert_eq!(legal["legal_requests"][0]["id"], b.legal_request.as_str());
    assert_eq!(legal["legal_requests"].as_array().unwrap().len(), 1);
    let status = status_without(
        &mut admin,
        &role,
        "SELECT ON legal_requests",
        &b.owner,
        Method::GET,
        "/privacy/legal-requests",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // and the audit register: B's entries (its legal request), read as the application role
    let audit = b.owner.json(Method::GET, "/privacy/audit", None).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{audit}");
    assert!(
        !audit.to_string().contains(a.legal_request.as_str()),
        "A's entries leaked: {audit}"
    );
    let status = status_without(
        &mut admin,
        &role,
        "SELECT ON privacy_audit",
        &b.owner,
        Method::GET,
        "/privacy/audit",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // whose deletion receipt a code names is read as the application role too
    let receipt = "/privacy/deletions/no-such-code";
    let (status, _) = b.owner.call(Method::GET, receipt, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = status_without(
        &mut admin,
        &role,
        "SELECT ON deletion_receipts",
        &b.owner,
        Method::GET,
        receipt,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // the API's writes run as the application role too (B's set-up above wrote stages, tags and
    // fields that way): B's note is written, and without the privilege the write fails
    let notes = format!("/api/inbox/conversations/{}/{}/notes", b.account, b.contact);
    let note = json!({ "text": "written-as-the-app-role" });
    b.owner.json(Method::POST, &notes, Some(&note)).await;
    let status = status_without(
        &mut admin,
        &role,
        "INSERT ON conversation_notes",
        &b.owner,
        Method::POST,
        &notes,
        Some(&note),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // a write into a table with a generated id (the stage history) works as the role too
    let stage = format!("/api/crm/contacts/{}/{}/stage", b.account, b.contact);
    let stages = b.owner.json(Method::GET, "/api/crm/stages", None).await;
    let moved = json!({ "stage": stages["stages"][0]["id"] });
    b.owner.json(Method::PUT, &stage, Some(&moved)).await;
    // the second wall for writes: a write transaction for A that names B's contact changes
    // nothing, while A's own contact is changed
    let db = &service.shared().db;
    let mut tx = db.begin_as(&a.org_id, Some(&role)).await.unwrap();
    let touch =
        "UPDATE contacts SET last_interaction = last_interaction WHERE account = $1 AND id = $2";
    for (who, expected) in [(&b, 0), (&a, 1)] {
        let changed = sqlx::query(touch)
            .bind(&who.account)
            .bind(&who.contact)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(changed, expected, "{}'s contact, written for A", who.tag);
    }
    tx.rollback().await.unwrap();
    service.shutdown().await;
    for sql in [
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}"),
        format!("REVOKE {role} FROM CURRENT_USER"),
        format!("DROP ROLE {role}"),
    ] {
        run(sql).execute(&mut admin).await.unwrap();
    }
}
