//! The management API: JSON over HTTP. Every request is made by a [`Caller`] (a login session,
//! an organization's API key, or an operator key; see [`super::auth`]) and every query is scoped
//! by the caller's organization: another organization's account ids answer 404 as if they did
//! not exist, and a role without the permission gets 403. Tokens are never returned.
//!
//! - `GET /api/accounts`, `GET /api/accounts/{id}`: connected accounts and their health.
//! - `GET /api/automations[?account=]`, `POST /api/automations` (a rules file, JSON or TOML;
//!   422 with every problem and its location when invalid), `DELETE /api/automations/{account}/{id}`.
//! - `GET /api/media?account=`: media synced on connect.
//! - `GET /api/contacts?account=`: contacts with tags and fields.
//! - `GET /api/conversations?account=&contact=`: a contact's events and decisions.
//! - `GET /api/deliveries?account=&status=&rule=&after=&limit=`: the delivery log.
//! - `GET /api/analytics?account=`: per automation: triggered, sent, delivered, read, failed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use super::auth::{failure, problem, Caller, Permission};
use super::AppState;
use crate::service::db::{self, accounts, automation_store, automations, delivery_log, teams};
use crate::service::pipeline::data_access;

/// The middleware that resolves the [`Caller`] of management routes (kept under this name for
/// routers that authenticate like `/api`).
pub(crate) use super::auth::authenticate;

/// The API routes (under `/api`).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/accounts", get(list_accounts))
        .route("/accounts/{id}", get(get_account))
        .route("/automations", get(list_automations).post(save_automations))
        .route("/automations/{account}/{id}", delete(delete_automation))
        .route("/media", get(list_media))
        .route("/contacts", get(list_contacts))
        .route("/conversations", get(conversation))
        .route("/deliveries", get(deliveries))
        .route("/analytics", get(analytics))
        .layer(middleware::from_fn_with_state(state, authenticate))
}

/// `Ok` with a read transaction for the caller's organization (see [`db::Db::read_as`]) when
/// the caller's role allows `permission` and `account` (if given) belongs to the caller's
/// organization; else the 403 or 404 answer (the same 404 as for an unknown account).
#[allow(clippy::result_large_err)]
pub(crate) async fn scope(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    account: Option<&str>,
) -> Result<db::Reader, Response> {
    caller.require(permission)?;
    let role = state.shared.config.database_app_role.as_deref();
    let mut reader = state
        .shared
        .db
        .read_as(&caller.org_id, role)
        .await
        .map_err(failure)?;
    if let Some(account) = account {
        match teams::owns_account(&mut reader, &caller.org_id, account).await {
            Ok(true) => {}
            Ok(false) => return Err(problem(StatusCode::NOT_FOUND, "no such account")),
            Err(e) => return Err(failure(e)),
        }
    }
    Ok(reader)
}

/// A write transaction for the caller's organization (see [`db::Db::begin_as`]): on PostgreSQL
/// with `database_app_role`, row-level security stands behind the request's writes as it does
/// behind its reads. The caller checks the permission and the ids first (see [`scope`]).
pub(crate) async fn begin_for(
    state: &AppState,
    caller: &Caller,
) -> crate::service::error::Result<db::Tx> {
    let role = state.shared.config.database_app_role.as_deref();
    state.shared.db.begin_as(&caller.org_id, role).await
}

async fn list_accounts(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match accounts::list_in(&mut reader, &caller.org_id).await {
        Ok(list) => Json(json!({ "accounts": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn get_account(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match accounts::get_in(&mut reader, &caller.org_id, &id).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such account"),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    account: Option<String>,
    contact: Option<String>,
    limit: Option<i64>,
}

async fn list_automations(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, q.account.as_deref()).await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match automations::list_in(&mut reader, &caller.org_id, q.account.as_deref()).await {
        Ok(list) => Json(json!({ "automations": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn save_automations(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: String,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageAutomations) {
        return denied;
    }
    let file = match automation_core::RulesFile::parse(&body) {
        Ok(f) => f,
        Err(e) => {
            let p = automations::Problem::from(&e);
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "errors": [p] })),
            )
                .into_response();
        }
    };
    let ids: Vec<String> = file
        .rules
        .iter()
        .map(|r| r.id.clone())
        .chain(file.flows.iter().map(|f| f.id.clone()))
        .collect();
    // the file's own problems first (they say nothing about other organizations' accounts)
    let problems: Vec<automations::Problem> = automation_core::RuleSet::check(&file)
        .iter()
        .map(automations::Problem::from)
        .collect();
    if !problems.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": problems })),
        )
            .into_response();
    }
    let mut accounts: Vec<&str> = file
        .rules
        .iter()
        .map(|r| r.account.as_str())
        .chain(file.flows.iter().map(|f| f.account.as_str()))
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut conn = match state.shared.db.pool().acquire().await {
        Ok(c) => c,
        Err(e) => return failure(e.into()),
    };
    for account in accounts {
        match teams::owns_account(&mut conn, &caller.org_id, account).await {
            Ok(true) => {}
            Ok(false) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    "no such account: an account named in the file is not connected to your organization; connect it first",
                )
            }
            Err(e) => return failure(e),
        }
    }
    drop(conn);
    let save = state.shared.save_automations(file);
    match data_access::keeping_subscriptions(&state.shared, &caller.org_id, save).await {
        Ok(Ok(())) => (StatusCode::CREATED, Json(json!({ "saved": ids }))).into_response(),
        Ok(Err(problems)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": problems })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn delete_automation(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, id)): Path<(String, String)>,
) -> Response {
    if let Err(answer) = scope(
        &state,
        &caller,
        Permission::ManageAutomations,
        Some(&account),
    )
    .await
    {
        return answer;
    }
    let db = &state.shared.db;
    let removed = match automations::delete(db, "rule", &account, &id).await {
        Ok(true) => true,
        Ok(false) => match automations::delete(db, "flow", &account, &id).await {
            Ok(r) => r,
            Err(e) => return failure(e),
        },
        Err(e) => return failure(e),
    };
    if !removed {
        return problem(StatusCode::NOT_FOUND, "no such automation");
    }
    if let Err(e) = state.shared.reload_engine().await {
        return failure(e);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list_media(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, q.account.as_deref()).await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let sql = "SELECT account, id, kind, caption, permalink, synced_at FROM media \
         WHERE ($1 IS NULL OR account = $1) AND account IN (SELECT id FROM accounts WHERE org_id = $3) ORDER BY account, id LIMIT $2";
    let rows = sqlx::query(sql)
        .bind(&q.account)
        .bind(q.limit.unwrap_or(100).clamp(1, 1000))
        .bind(&caller.org_id)
        .fetch_all(&mut *reader)
        .await;
    match rows {
        Ok(rows) => {
            let media: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "account": r.try_get::<String, _>("account").ok(),
                        "id": r.try_get::<String, _>("id").ok(),
                        "kind": r.try_get::<Option<String>, _>("kind").ok().flatten(),
                        "caption": r.try_get::<Option<String>, _>("caption").ok().flatten(),
                        "permalink": r.try_get::<Option<String>, _>("permalink").ok().flatten(),
                        "synced_at": r.try_get::<i64, _>("synced_at").ok(),
                    })
                })
                .collect();
            Json(json!({ "media": media })).into_response()
        }
        Err(e) => failure(e.into()),
    }
}

async fn list_contacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let Some(account) = q.account else {
        return problem(StatusCode::BAD_REQUEST, "give ?account=<id>");
    };
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, Some(&account)).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match automation_store::contacts_on(&mut reader, &account, q.limit.unwrap_or(100)).await {
        Ok(list) => Json(json!({ "contacts": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn conversation(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let (Some(account), Some(contact)) = (q.account, q.contact) else {
        return problem(StatusCode::BAD_REQUEST, "give ?account=<id>&contact=<id>");
    };
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, Some(&account)).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let rows = sqlx::query(
        "SELECT key, kind, text, occurred_at, outcome, rule FROM events WHERE account = $1 AND contact = $2 \
         ORDER BY occurred_at LIMIT $3",
    )
    .bind(&account)
    .bind(&contact)
    .bind(q.limit.unwrap_or(200).clamp(1, 1000))
    .fetch_all(&mut *reader)
    .await;
    let sent = sqlx::query(
        "SELECT key, kind, status, mid, action, sent_at FROM outbox WHERE account = $1 AND recipient = $2 ORDER BY created_at",
    )
    .bind(&account)
    .bind(&contact)
    .fetch_all(&mut *reader)
    .await;
    match (rows, sent) {
        (Ok(rows), Ok(sent)) => {
            let inbound: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "key": r.try_get::<String, _>("key").ok(),
                        "kind": r.try_get::<String, _>("kind").ok(),
                        "text": r.try_get::<Option<String>, _>("text").ok().flatten(),
                        "occurred_at": r.try_get::<i64, _>("occurred_at").ok(),
                        "outcome": r.try_get::<String, _>("outcome").ok(),
                        "rule": r.try_get::<Option<String>, _>("rule").ok().flatten(),
                    })
                })
                .collect();
            let outbound: Vec<_> = sent
                .iter()
                .map(|r| {
                    json!({
                        "key": r.try_get::<String, _>("key").ok(),
                        "kind": r.try_get::<String, _>("kind").ok(),
                        "status": r.try_get::<String, _>("status").ok(),
                        "mid": r.try_get::<Option<String>, _>("mid").ok().flatten(),
                        "action": r.try_get::<String, _>("action").ok().and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()),
                        "sent_at": r.try_get::<Option<i64>, _>("sent_at").ok().flatten(),
                    })
                })
                .collect();
            Json(json!({ "inbound": inbound, "outbound": outbound })).into_response()
        }
        (Err(e), _) | (_, Err(e)) => failure(e.into()),
    }
}

async fn deliveries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(mut filter): Query<delivery_log::Filter>,
) -> Response {
    let mut reader = match scope(
        &state,
        &caller,
        Permission::ViewInbox,
        filter.account.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    filter.org = Some(caller.org_id.clone());
    match delivery_log::list_on(&mut reader, &filter).await {
        Ok(list) => Json(json!({ "deliveries": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn analytics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, q.account.as_deref()).await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let sql = "SELECT rule, processed_at / 86400000 AS day, COUNT(*) AS n FROM events \
         WHERE rule IS NOT NULL AND ($1 IS NULL OR account = $1) AND account IN (SELECT id FROM accounts WHERE org_id = $2) GROUP BY rule, processed_at / 86400000";
    let triggered = sqlx::query(sql)
        .bind(&q.account)
        .bind(&caller.org_id)
        .fetch_all(&mut *reader)
        .await;
    let sql = "SELECT rule, created_at / 86400000 AS day, status, COUNT(*) AS n FROM outbox \
         WHERE rule IS NOT NULL AND ($1 IS NULL OR account = $1) AND account IN (SELECT id FROM accounts WHERE org_id = $2) GROUP BY rule, created_at / 86400000, status";
    let statuses = sqlx::query(sql)
        .bind(&q.account)
        .bind(&caller.org_id)
        .fetch_all(&mut *reader)
        .await;
    let (triggered, statuses) = match (triggered, statuses) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(e), _) | (_, Err(e)) => return failure(e.into()),
    };
    type Counts = serde_json::Map<String, serde_json::Value>;
    let mut totals: std::collections::BTreeMap<String, Counts> = Default::default();
    let mut days: std::collections::BTreeMap<(String, String), Counts> = Default::default();
    let mut add = |rule: &str, day: i64, counter: &str, n: i64| {
        let date = db::to_time(day * 86_400_000).format("%Y-%m-%d").to_string();
        for counts in [
            totals.entry(rule.to_string()).or_default(),
            days.entry((rule.to_string(), date)).or_default(),
        ] {
            let v = counts
                .get(counter)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
                + n;
            counts.insert(counter.to_string(), v.into());
        }
    };
    for r in &triggered {
        let rule: String = r.try_get("rule").unwrap_or_default();
        add(
            &rule,
            r.try_get("day").unwrap_or_default(),
            "triggered",
            r.try_get("n").unwrap_or_default(),
        );
    }
    for r in &statuses {
        let rule: String = r.try_get("rule").unwrap_or_default();
        let status: String = r.try_get("status").unwrap_or_default();
        let day: i64 = r.try_get("day").unwrap_or_default();
        let n: i64 = r.try_get("n").unwrap_or_default();
        // delivered and read messages were sent; read ones were delivered
        let counters: &[&str] = match status.as_str() {
            "sent" => &["sent"],
            "delivered" => &["sent", "delivered"],
            "read" => &["sent", "delivered", "read"],
            "failed" => &["failed"],
            _ => &["pending"],
        };
        for c in counters {
            add(&rule, day, c, n);
        }
    }
    let per_day: Vec<_> = days
        .into_iter()
        .map(|((rule, day), counts)| json!({ "automation": rule, "day": day, "counts": counts }))
        .collect();
    Json(json!({ "automations": totals, "per_day": per_day })).into_response()
}
