//! P17: access to the management API is logged.
//!
//! Every authenticated management request leaves an entry: the organization, who called (the
//! member, or the API key's id; never a password, session token or key), the method,
//! the route pattern (`/privacy/contacts/{account}/{contact}`, not the ids in the path), the
//! answer's status and the time; starting the connect flow as a caller
//! (`/connect/instagram`) is logged too. Requests refused for missing or wrong credentials are
//! not entries (no organization is known for them).
//!
//! The layer ([`record`], wrapped around the whole router) is cheap on every request: it reads
//! what [`authenticate`](super::auth::authenticate) left on the response ([`mark`]) and pushes
//! one entry to an in-memory buffer; the buffer is written to `access_log` in multi-row
//! statements, at most 200 ms after its first entry (or at once past 500 entries), and before
//! the log is read. Entries of the last 200 ms may be lost if the process is killed.
//!
//! Owners read their organization's entries with `GET /api/access-log[?after=ID&limit=N]`
//! (the `ViewAccessLog` permission; Admins and Agents get 403). Entries are kept
//! `access_log_days` (default 365) and then deleted by the retention sweeper
//! ([`org_retention`](crate::service::pipeline::org_retention)).
//!
//! A member is stored as the pseudonym of their user id (`user_ref`, the HMAC the audit
//! register uses); the reader resolves it to the user id of each current member of the
//! organization. So the log holds no personal id: a deleted member's entries stay, and nobody
//! can tell whose they were. Deleting the organization deletes its log (entries of requests
//! that end after the deletion are not written).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;

use super::auth::{Caller, Credential, Permission};
use super::AppState;
use crate::service::db::rows::{self, Param};
use crate::service::db::{self, Db};
use crate::service::error::Result;

/// Entries written at once past this many.
const FLUSH_AT: usize = 500;

/// How long an entry may wait in the buffer.
const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// What [`authenticate`](super::auth::authenticate) leaves on a response for the layer: the
/// caller and the route pattern that answered.
#[derive(Debug, Clone)]
pub struct Served {
    caller: Caller,
    route: Option<String>,
}

/// Marks `response` as served to `caller` by `route` (the matched route pattern).
pub fn mark(response: &mut Response, caller: Caller, route: Option<String>) {
    response.extensions_mut().insert(Served { caller, route });
}

/// One entry of the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessEntry {
    /// Position in the log (0 before it is written).
    pub id: i64,
    /// The organization the caller acted in.
    pub org_id: String,
    /// The member, for a login session, while they are a member of the organization.
    pub user_id: Option<String>,
    /// The pseudonym of the member's user id, for a login session.
    pub user_ref: Option<String>,
    /// The API key's id (never the key), for an API key.
    pub api_key_id: Option<String>,
    /// `session`, `api_key` or `operator`.
    pub credential: String,
    /// The HTTP method.
    pub method: String,
    /// The route pattern (ids in the path are not kept).
    pub route: String,
    /// The answer's status code.
    pub status: i64,
    /// When (Unix ms).
    pub at: i64,
}

/// The buffer of entries not written yet.
#[derive(Debug, Default)]
pub struct AccessLog {
    pending: Mutex<Vec<AccessEntry>>,
    /// Whether a delayed write is scheduled.
    scheduled: Mutex<bool>,
    /// Writes take turns (so that a read after [`AccessLog::flush`] sees every earlier entry).
    writing: tokio::sync::Mutex<()>,
}

impl AccessLog {
    fn push(&self, entry: AccessEntry) -> (usize, bool) {
        let len = match self.pending.lock() {
            Ok(mut p) => {
                p.push(entry);
                p.len()
            }
            Err(_) => return (0, false),
        };
        let schedule = match self.scheduled.lock() {
            Ok(mut s) => !std::mem::replace(&mut *s, true),
            Err(_) => false,
        };
        (len, schedule)
    }

    /// Writes the pending entries to the database.
    pub async fn flush(&self, db: &Db) -> Result<()> {
        let _turn = self.writing.lock().await;
        self.write_pending(db).await
    }

    /// Writes the pending entries, then holds every later write back until the guard is
    /// dropped: an organization's deletion holds it, so that no entry of the organization is
    /// written while its cascade runs (the entries held back find it gone and are dropped).
    pub async fn hold(&self, db: &Db) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let turn = self.writing.lock().await;
        self.write_pending(db).await?;
        Ok(turn)
    }

    /// Writes the pending entries; the caller holds the `writing` turn.
    async fn write_pending(&self, db: &Db) -> Result<()> {
        if let Ok(mut s) = self.scheduled.lock() {
            *s = false;
        }
        let entries = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(()),
        };
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = db.begin().await?;
        // an organization deleted meanwhile (by the request being logged, say) keeps no entry
        let mut orgs: Vec<&str> = entries.iter().map(|e| e.org_id.as_str()).collect();
        orgs.sort_unstable();
        orgs.dedup();
        let mut alive = std::collections::HashSet::new();
        for org in orgs {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM organizations WHERE id = $1")
                    .bind(org)
                    .fetch_optional(&mut *tx)
                    .await?;
            alive.extend(found);
        }
        let rows: Vec<Vec<Param>> = entries
            .into_iter()
            .filter(|e| alive.contains(&e.org_id))
            .map(|e| {
                vec![
                    e.org_id.into(),
                    e.user_ref.into(),
                    e.api_key_id.into(),
                    e.credential.into(),
                    e.method.into(),
                    e.route.into(),
                    e.status.into(),
                    e.at.into(),
                ]
            })
            .collect();
        rows::insert(
            &mut tx,
            "INSERT INTO access_log (org_id, user_ref, api_key_id, credential, method, route, status, at)",
            8,
            &rows,
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The layer: logs every request [`authenticate`](super::auth::authenticate) let through.
pub async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let Some(served) = response.extensions().get::<Served>() else {
        return response;
    };
    let caller = &served.caller;
    let (user_ref, api_key_id, credential) = match &caller.credential {
        Credential::Session(_) => (
            caller.user_id.as_deref().map(|u| {
                state
                    .shared
                    .vault
                    .pseudonymizer()
                    .pseudonym(&serde_json::Value::from(u))
            }),
            None,
            "session",
        ),
        Credential::ApiKey(id) => (None, Some(id.clone()), "api_key"),
        _ => (None, None, "operator"),
    };
    let entry = AccessEntry {
        id: 0,
        org_id: caller.org_id.clone(),
        user_id: None,
        user_ref,
        api_key_id,
        credential: credential.into(),
        method,
        route: served.route.clone().unwrap_or_else(|| "(unmatched)".into()),
        status: i64::from(response.status().as_u16()),
        at: db::now_ms(),
    };
    let (len, schedule) = state.access_log.push(entry);
    if len >= FLUSH_AT || schedule {
        let state = state.clone();
        tokio::spawn(async move {
            if len < FLUSH_AT {
                tokio::time::sleep(FLUSH_AFTER).await;
            }
            if let Err(e) = state.access_log.flush(&state.shared.db).await {
                tracing::warn!(error = %e, "writing the access log failed");
            }
        });
    }
    response
}

/// The route of the log (authenticated like `/api`).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/access-log", get(read))
        .route_layer(middleware::from_fn_with_state(
            state,
            super::api::authenticate,
        ))
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// The entries of organization `org` after position `after` (oldest first), at most `limit`,
/// read through `conn` (the caller's scoped reader); members are resolved from their
/// pseudonyms with `pseudonymizer` (the vault's).
pub async fn entries(
    conn: &mut sqlx::AnyConnection,
    pseudonymizer: &privacy_kit::schema::Pseudonymizer,
    org: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<AccessEntry>> {
    let members: Vec<String> = sqlx::query_scalar("SELECT user_id FROM members WHERE org_id = $1")
        .bind(org)
        .fetch_all(&mut *conn)
        .await?;
    let who: std::collections::HashMap<String, String> = members
        .into_iter()
        .map(|u| {
            (
                pseudonymizer.pseudonym(&serde_json::Value::from(u.as_str())),
                u,
            )
        })
        .collect();
    let rows = sqlx::query(
        "SELECT id, org_id, user_ref, api_key_id, credential, method, route, status, at FROM access_log \
         WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(org)
    .bind(after)
    .bind(limit.clamp(1, 1000))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let user_ref: Option<String> = r.try_get("user_ref")?;
            Ok(AccessEntry {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                user_id: user_ref.as_ref().and_then(|p| who.get(p).cloned()),
                user_ref,
                api_key_id: r.try_get("api_key_id")?,
                credential: r.try_get("credential")?,
                method: r.try_get("method")?,
                route: r.try_get("route")?,
                status: r.try_get("status")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<LogQuery>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ViewAccessLog) {
        return denied;
    }
    if let Err(e) = state.access_log.flush(&state.shared.db).await {
        return super::auth::failure(e);
    }
    let mut reader = match super::api::scope(&state, &caller, Permission::ViewAccessLog, None).await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match entries(
        &mut reader,
        state.shared.vault.pseudonymizer(),
        &caller.org_id,
        q.after.unwrap_or(0),
        q.limit.unwrap_or(100),
    )
    .await
    {
        Ok(list) => Json(json!({ "entries": list })).into_response(),
        Err(e) => super::auth::failure(e),
    }
}
