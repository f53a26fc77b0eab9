//! The management API: JSON over HTTP, authenticated with `Authorization: Bearer <api key>`.
//! Tokens are never returned.
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

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;
use subtle_eq::constant_time_eq;

use super::AppState;
use crate::service::db::{self, accounts, automation_store, automations, delivery_log};
use crate::service::error::{Error, ErrorKind};

mod subtle_eq {
    /// Compares two byte strings in time independent of where they differ.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

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

pub(crate) async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.shared.config.api_keys;
    if keys.is_empty() {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the management API is off; set api_keys (IGDM_API_KEYS) to enable it",
        );
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !keys
        .iter()
        .any(|k| constant_time_eq(k.as_bytes(), given.as_bytes()))
    {
        return problem(
            StatusCode::UNAUTHORIZED,
            "missing or unknown API key; send Authorization: Bearer <key>",
        );
    }
    next.run(request).await
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn failure(e: Error) -> Response {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Automation | ErrorKind::Config => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(error = %e, "management API request failed");
    problem(status, e.message())
}

async fn list_accounts(State(state): State<Arc<AppState>>) -> Response {
    match accounts::list(&state.shared.db).await {
        Ok(list) => Json(json!({ "accounts": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn get_account(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match accounts::get(&state.shared.db, &id).await {
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
    Query(q): Query<AccountQuery>,
) -> Response {
    match automations::list(&state.shared.db, q.account.as_deref()).await {
        Ok(list) => Json(json!({ "automations": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn save_automations(State(state): State<Arc<AppState>>, body: String) -> Response {
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
    match automations::save(&state.shared.db, file, db::now_ms()).await {
        Ok(Ok(set)) => {
            state.shared.set_engine(automation_core::Engine::new(set));
            (StatusCode::CREATED, Json(json!({ "saved": ids }))).into_response()
        }
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
    Path((account, id)): Path<(String, String)>,
) -> Response {
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

async fn list_media(State(state): State<Arc<AppState>>, Query(q): Query<AccountQuery>) -> Response {
    let rows = sqlx::query(
        "SELECT account, id, kind, caption, permalink, synced_at FROM media \
         WHERE ($1 IS NULL OR account = $1) ORDER BY account, id LIMIT $2",
    )
    .bind(&q.account)
    .bind(q.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(state.shared.db.pool())
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
    Query(q): Query<AccountQuery>,
) -> Response {
    let Some(account) = q.account else {
        return problem(StatusCode::BAD_REQUEST, "give ?account=<id>");
    };
    match automation_store::contacts(&state.shared.db, &account, q.limit.unwrap_or(100)).await {
        Ok(list) => Json(json!({ "contacts": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn conversation(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AccountQuery>,
) -> Response {
    let (Some(account), Some(contact)) = (q.account, q.contact) else {
        return problem(StatusCode::BAD_REQUEST, "give ?account=<id>&contact=<id>");
    };
    let rows = sqlx::query(
        "SELECT key, kind, text, occurred_at, outcome, rule FROM events WHERE account = $1 AND contact = $2 \
         ORDER BY occurred_at LIMIT $3",
    )
    .bind(&account)
    .bind(&contact)
    .bind(q.limit.unwrap_or(200).clamp(1, 1000))
    .fetch_all(state.shared.db.pool())
    .await;
    let sent = sqlx::query(
        "SELECT key, kind, status, mid, action, sent_at FROM outbox WHERE account = $1 AND recipient = $2 ORDER BY created_at",
    )
    .bind(&account)
    .bind(&contact)
    .fetch_all(state.shared.db.pool())
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
    Query(filter): Query<delivery_log::Filter>,
) -> Response {
    match delivery_log::list(&state.shared.db, &filter).await {
        Ok(list) => Json(json!({ "deliveries": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn analytics(State(state): State<Arc<AppState>>, Query(q): Query<AccountQuery>) -> Response {
    let db = state.shared.db.pool();
    let triggered = sqlx::query(
        "SELECT rule, processed_at / 86400000 AS day, COUNT(*) AS n FROM events \
         WHERE rule IS NOT NULL AND ($1 IS NULL OR account = $1) GROUP BY rule, processed_at / 86400000",
    )
    .bind(&q.account)
    .fetch_all(db)
    .await;
    let statuses = sqlx::query(
        "SELECT rule, created_at / 86400000 AS day, status, COUNT(*) AS n FROM outbox \
         WHERE rule IS NOT NULL AND ($1 IS NULL OR account = $1) GROUP BY rule, created_at / 86400000, status",
    )
    .bind(&q.account)
    .fetch_all(db)
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
