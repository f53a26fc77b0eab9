//! Privacy operations over HTTP, wired to `privacy-kit` (deletion cascades, export bundles,
//! retention, the audit register, Meta's callbacks) on the service's database
//! ([`db::privacy`](crate::service::db::privacy)).
//!
//! Public (no API key; Meta or a person calls them):
//! - `POST /meta/deauthorize` (form field `signed_request`, verified with the app secret): the
//!   token is deleted at once and the connection marked removed (P7, P12). 200 `{"success":true}`.
//! - `POST /meta/data-deletion` (same form): the deletion of everything the app-scoped user id
//!   identifies (a connected account, or contacts with that id) is recorded and carried out; the
//!   answer is Meta's `{"url": ..., "confirmation_code": ...}` (P12, P13).
//! - `GET /meta/deletion-status/{code}`: where that deletion stands (`received`, `in_progress`,
//!   `done` with its date, `failed`), with counts only, never personal data; JSON, or an HTML
//!   page for `Accept: text/html`.
//! - `GET /privacy/exports/{token}`: downloads an export bundle once, before its link expires
//!   (404 after either).
//!
//! Management (a [`Caller`], like `/api`; scoped by the caller's organization: another
//! organization's accounts, contacts, receipts and legal requests answer 404, a role without
//! the permission 403; see the matrix in [`super::auth`]):
//! - `DELETE /privacy/contacts/{account}/{contact}` (`ManagePrivacy`): deletes a contact and
//!   everything reachable from it (P11); answers the receipt with counts per table.
//! - `DELETE /privacy/accounts/{account}[?data=now]` (`ManagePrivacy`): removes the connection:
//!   the token at once; the data at once with `data=now`, else by the retention policy
//!   `account-data` (30 days).
//! - `DELETE /privacy/organization` `{"organization": "<the caller's organization id>",
//!   "confirm": true}` (`DeleteOrganization`, Owners only): deletes the organization and
//!   everything in it (see [`delete_organization`]); answers the receipt.
//! - `DELETE /privacy/member` `{"member": "me", "confirm": true}` (any logged-in member, their
//!   own account; P13): deletes the user (see [`delete_member`]); 409 for the last Owner of an
//!   organization.
//! - `POST /privacy/exports` (P14): `{"account": ..., "contact": ...?}` or `{"organization":
//!   "<the caller's organization id>"}` (`ManagePrivacy`), or `{"member": "me"}` (any logged-in
//!   member, their own data): makes the export bundle (privacy-kit's zip of JSON Lines with a
//!   manifest) and answers an expiring, single-use download link.
//! - `GET /privacy/deletions/{code}` (`ManagePrivacy`): a deletion receipt of the organization.
//! - `GET|PUT /privacy/retention/{account}` (`ManagePrivacy`): the account's retention policies
//!   (`{"presets": ["dm-logs", ...]}` or `{"policies": [...]}` in privacy-kit's format);
//!   `GET /privacy/retention/{account}/reports`: what the sweeper did; `POST
//!   /privacy/retention/sweep`: sweep the organization's accounts now.
//! - `GET /privacy/audit[?account=&after=&limit=]` (`ManagePrivacy`): the organization's audit
//!   register (hash-chained, ids pseudonymized).
//! - `POST /privacy/legal-requests`, `POST /privacy/legal-requests/{id}/answer`,
//!   `GET /privacy/legal-requests[?account=[&contact=]][&status=open|overdue|answered]`
//!   (`ManagePrivacy`): the register of legal requests (P16) and of data subjects' requests
//!   (P15: `"kind"` one of [`REQUEST_KINDS`]; `access`, `rectification`, `erasure`,
//!   `restriction`, `objection` and `portability` are due 30 days after they are received,
//!   listed as `overdue` past that until answered; answers are written to the audit register);
//!   the contact a request concerns is stored as a pseudonym (the contact's own export does not
//!   reveal the request, and its deletion leaves the register intact).
//! - `GET /privacy/consents?account=[&contact=]` (`ViewInbox`): opt-in records (P19).
//! - `GET /privacy/retention-classes`, `DELETE /privacy/retention-classes/{name}` (refused
//!   with 409 while records are kept in the class), `PUT /privacy/retention-classes/{name}` `{"keep_for":
//!   {"years": 7}, "anchor": "created"|"last_activity", "then": "delete"|"anonymize",
//!   "promise": "..."}` (`ManagePrivacy`): the organization's own data classes and their
//!   periods (P8); `POST /privacy/records` `{"data_class": ..., "reference": ..., "body": {...}}`
//!   keeps a record in one (see [`org_retention`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use privacy_kit::audit::{AuditEvent, Disclosed, LegalResponse, RequestSource};
use privacy_kit::callback::{deauthorize_callback, SignedRequestFields};
use privacy_kit::cascade::{
    self, DeletionOptions, DeletionReceipt, DeletionStatus, Subject, SubjectKind,
};
use privacy_kit::clock::ManualClock;
use privacy_kit::export::export_subject;
use privacy_kit::retention::RetentionPolicy;
use privacy_kit::store::{AuditLog, Change, RecordStore};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::api::scope;
use super::auth::{Caller, Permission};
use super::AppState;
use crate::service::db::privacy::{self as store, contact_id, SqlStore};
use crate::service::error::{Error, ErrorKind, Result};
use crate::service::pipeline::{org_retention, retention, Shared};

/// The routes (public and authenticated ones).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let management = Router::new()
        .route(
            "/privacy/contacts/{account}/{contact}",
            delete(delete_contact_route),
        )
        .route("/privacy/accounts/{account}", delete(delete_account_route))
        .route("/privacy/exports", post(create_export))
        .route("/privacy/organization", delete(delete_organization_route))
        .route("/privacy/member", delete(delete_member_route))
        .route("/privacy/deletions/{code}", get(deletion_receipt))
        .route(
            "/privacy/retention/{account}",
            get(get_retention).put(put_retention),
        )
        .route(
            "/privacy/retention/{account}/reports",
            get(retention_reports),
        )
        .route("/privacy/retention/sweep", post(sweep_now))
        .route("/privacy/audit", get(audit))
        .route(
            "/privacy/legal-requests",
            get(list_legal_requests).post(record_legal_request),
        )
        .route(
            "/privacy/legal-requests/{id}/answer",
            post(answer_legal_request),
        )
        .route("/privacy/consents", get(consents))
        .route("/privacy/retention-classes", get(list_classes))
        .route(
            "/privacy/retention-classes/{name}",
            put(put_class).delete(delete_class),
        )
        .route("/privacy/records", post(keep_record_route))
        .route_layer(middleware::from_fn_with_state(
            state,
            super::api::authenticate,
        ));
    Router::new()
        .route("/meta/deauthorize", post(deauthorize))
        .route("/meta/data-deletion", post(data_deletion))
        .route("/meta/deletion-status/{code}", get(deletion_status))
        .route("/privacy/exports/{token}", get(download_export))
        .merge(management)
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn failure(e: Error) -> Response {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(error = %e, "privacy request failed");
    problem(status, e.message())
}

fn sql_store(shared: &Shared, actor: &str) -> SqlStore {
    SqlStore::new(
        shared.db.clone(),
        shared.vault.pseudonymizer().clone(),
        actor,
    )
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Privacy,
            format!("the operating system's random generator failed: {e}"),
        )
    })?;
    Ok(hex::encode(bytes))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Operations (also for embedders and tests: each takes the time)

/// Deletes everything reachable from `subject` now: records a receipt, runs privacy-kit's
/// cascade on the database, verifies that nothing reachable is left, and writes the audit
/// entries (requested, finished: counts only). Reloads the engine when automations were
/// deleted, and forgets the cached Graph client of a deleted connection.
pub async fn delete_subject(
    shared: &Shared,
    subject: Subject,
    source: RequestSource,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    let account = match subject.kind {
        SubjectKind::Connection => Some(subject.id.as_str()),
        SubjectKind::Contact => subject.id.split_once(':').map(|(a, _)| a),
        _ => None,
    };
    let org = match account {
        Some(a) => store::org_of_account(&shared.db, a).await?,
        None => None,
    };
    let sql = sql_store(shared, actor).in_org(org.as_deref());
    if subject.kind == SubjectKind::Connection {
        shared.forget_client(&subject.id);
    }
    let receipt = cascade::request_deletion(&sql, Some(&sql), subject, source, now).await?;
    run_receipt(shared, &sql, receipt, now).await
}

async fn run_receipt(
    shared: &Shared,
    sql: &SqlStore,
    receipt: DeletionReceipt,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    let schema = store::schema();
    let options = DeletionOptions::new(sql.pseudonymizer()).audit(sql);
    let clock = ManualClock::new(now);
    let done = cascade::run_deletion(&schema, sql, sql, receipt, &options, &clock).await?;
    if done
        .counts
        .get("automations")
        .is_some_and(|c| c.deleted > 0)
    {
        shared.reload_engine().await?;
    }
    Ok(done)
}

/// P11: deletes a contact of `account` and everything reachable from it (events, outbox rows to
/// it and their delivery log, automation state, consents, exports, its parts of raw
/// notifications). `NotFound` when the account has no such contact.
pub async fn delete_contact(
    shared: &Shared,
    account: &str,
    contact: &str,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    let id = contact_id(account, contact);
    let sql = sql_store(shared, "api");
    store::ensure_contact_rows(&shared.db, Some(account), contact, now).await?;
    if sql.get("contacts", &id).await?.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("account {account} has no contact {contact}"),
        ));
    }
    delete_subject(
        shared,
        Subject::contact(id),
        RequestSource::Operator,
        "api",
        now,
    )
    .await
}

/// P7: removes a connection's token at once and marks the connection removed (its data then
/// waits for the `account-data` retention policy, or [`delete_account`]). How many tokens were
/// deleted (0 when already removed). `NotFound` for an unknown account.
pub async fn disconnect(
    shared: &Shared,
    account: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let org = store::org_of_account(&shared.db, account).await?;
    let sql = sql_store(shared, actor).in_org(org.as_deref());
    if sql.get("accounts", account).await?.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no connected account {account}"),
        ));
    }
    let changes = vec![
        Change::Delete {
            entity: "account_token".into(),
            id: account.into(),
        },
        Change::SetAnchor {
            entity: "accounts".into(),
            id: account.into(),
            anchor: privacy_kit::retention::Anchor::Disconnected,
            at: now,
        },
    ];
    let before = sql.get("account_token", account).await?.is_some();
    sql.apply(&changes).await?;
    shared.forget_client(account);
    let deleted = u64::from(before);
    sql.append(
        now,
        AuditEvent::Disconnected {
            connections: vec![account.to_owned()],
            credentials_deleted: deleted,
        },
    )
    .await?;
    Ok(deleted)
}

/// Removes a connection and deletes all its data now (token first).
pub async fn delete_account(
    shared: &Shared,
    account: &str,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    disconnect(shared, account, "api", now).await?;
    let receipt = delete_subject(
        shared,
        Subject::connection(account),
        RequestSource::Operator,
        "api",
        now,
    )
    .await?;
    shared.forget_client(account);
    Ok(receipt)
}

/// An export ready for download.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportLink {
    /// The secret download token (shown once; stored only as its SHA-256).
    pub token: String,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
    /// Records in the bundle.
    pub records: u64,
    /// SHA-256 of the bundle's manifest.
    pub manifest_sha256: String,
}

/// What an export bundle is of.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportSubject {
    /// A connected account and everything reachable from it.
    Account(String),
    /// A contact of an account.
    Contact {
        /// The account.
        account: String,
        /// The contact's IGSID.
        contact: String,
    },
    /// An organization: every row reachable from it (accounts and all their data, members,
    /// invitations, sessions and API keys without their hashes, webhook subscriptions without
    /// their secrets, deliveries).
    Organization(String),
    /// A member's own data: profile (without the password hash), memberships, sessions
    /// (without their token hashes).
    Member(String),
}

/// P14: makes the export bundle of a contact (`contact` given) or of an account, stores it for
/// one download until `now + ttl`, and returns the link's token.
pub async fn export(
    shared: &Shared,
    account: &str,
    contact: Option<&str>,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<ExportLink> {
    let what = match contact {
        Some(c) => ExportSubject::Contact {
            account: account.to_owned(),
            contact: c.to_owned(),
        },
        None => ExportSubject::Account(account.to_owned()),
    };
    export_of(shared, &what, now, ttl).await
}

/// P14: makes the export bundle of `what`, stores it for one download until `now + ttl`, and
/// returns the link's token. `NotFound` when the subject does not exist.
pub async fn export_of(
    shared: &Shared,
    what: &ExportSubject,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<ExportLink> {
    let (subject, root, account, contact, org, user) = match what {
        ExportSubject::Account(a) => (
            Subject::connection(a.clone()),
            ("accounts", a.clone()),
            a.as_str(),
            None,
            store::org_of_account(&shared.db, a).await?,
            None,
        ),
        ExportSubject::Contact { account, contact } => {
            store::ensure_contact_rows(&shared.db, Some(account), contact, now).await?;
            let id = contact_id(account, contact);
            (
                Subject::contact(id.clone()),
                ("contacts", id),
                account.as_str(),
                Some(contact.as_str()),
                store::org_of_account(&shared.db, account).await?,
                None,
            )
        }
        ExportSubject::Organization(o) => (
            Subject::organization(o.clone()),
            ("organizations", o.clone()),
            "",
            None,
            Some(o.clone()),
            None,
        ),
        ExportSubject::Member(u) => (
            Subject::member(u.clone()),
            ("users", u.clone()),
            "",
            None,
            None,
            Some(u.as_str()),
        ),
    };
    let sql = sql_store(shared, "api").in_org(org.as_deref());
    if sql.get(root.0, &root.1).await?.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            match what {
                ExportSubject::Contact { account, contact } => {
                    format!("account {account} has no contact {contact}")
                }
                ExportSubject::Account(a) => format!("no connected account {a}"),
                ExportSubject::Organization(o) => format!("no organization {o}"),
                ExportSubject::Member(u) => format!("no user {u}"),
            },
        ));
    }
    let schema = store::schema();
    let made = export_subject(
        &schema,
        &sql,
        &subject,
        now,
        std::io::Cursor::new(Vec::new()),
        500,
        Some(&sql),
    )
    .await?;
    let bundle = made.writer.into_inner();
    let token = random_token()?;
    let expires_at = now + ttl;
    sqlx::query(
        "INSERT INTO export_links (token_hash, account, contact, subject_kind, bundle, records, created_at, expires_at, org_id, user_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(token_hash(&token))
    .bind(account)
    .bind(contact)
    .bind(subject.kind.to_string())
    .bind(bundle)
    .bind(i64::try_from(made.manifest.records()).unwrap_or(i64::MAX))
    .bind(now.timestamp_millis())
    .bind(expires_at.timestamp_millis())
    .bind(org.as_deref())
    .bind(user)
    .execute(shared.db.pool())
    .await?;
    Ok(ExportLink {
        token,
        expires_at,
        records: made.manifest.records(),
        manifest_sha256: made.manifest_sha256,
    })
}

/// P13: deletes user `user` (a member ending their own account) and everything reachable from
/// it: the profile, memberships, sessions, invitations addressed to them and their member export
/// links; API keys and invitations they made stay, without their id. `Conflict` while they are
/// the last Owner of an organization (hand it over or delete it first), `NotFound` for an unknown
/// user.
pub async fn delete_member(
    shared: &Shared,
    user: &str,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    let sql = sql_store(shared, "api");
    if sql.get("users", user).await?.is_none() {
        return Err(Error::new(ErrorKind::NotFound, format!("no user {user}")));
    }
    let sole: Vec<String> = sqlx::query_scalar(
        "SELECT m.org_id FROM members m WHERE m.user_id = $1 AND m.role = 'owner' AND \
         (SELECT COUNT(*) FROM members o WHERE o.org_id = m.org_id AND o.role = 'owner') = 1",
    )
    .bind(user)
    .fetch_all(shared.db.pool())
    .await?;
    if !sole.is_empty() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "you are the last Owner of {} organization(s); make another member Owner or delete the organization first",
                sole.len()
            ),
        ));
    }
    let receipt = cascade::request_deletion(
        &sql,
        Some(&sql),
        Subject::member(user),
        RequestSource::User,
        now,
    )
    .await?;
    run_receipt(shared, &sql, receipt, now).await
}

/// P11: deletes organization `org` and everything reachable from it: its accounts and all their
/// data, members, invitations, sessions, API keys, webhook subscriptions and deliveries, export
/// links, and the users who belong to no other organization (a member of several keeps the
/// profile and loses this membership). Legal requests stay, anonymized. The audit register and
/// deletion receipts keep no id of the organization (their `org_id` is cleared).
pub async fn delete_organization(
    shared: &Shared,
    org: &str,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    // Written as no organization's: nothing kept afterwards names it.
    let sql = sql_store(shared, "api");
    if sql.get("organizations", org).await?.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no organization {org}"),
        ));
    }
    let accounts: Vec<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE org_id = $1")
        .bind(org)
        .fetch_all(shared.db.pool())
        .await?;
    for a in &accounts {
        shared.forget_client(a);
    }
    let receipt = cascade::request_deletion(
        &sql,
        Some(&sql),
        Subject::organization(org),
        RequestSource::User,
        now,
    )
    .await?;
    let done = run_receipt(shared, &sql, receipt, now).await?;
    for table in ["privacy_audit", "deletion_receipts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET org_id = NULL WHERE org_id = $1"
        )))
        .bind(org)
        .execute(shared.db.pool())
        .await?;
    }
    Ok(done)
}

/// Takes the bundle of a download token: once, and only before it expires.
pub async fn take_export(shared: &Shared, token: &str, now: DateTime<Utc>) -> Result<Vec<u8>> {
    let mut tx = shared.db.begin().await?;
    let row = sqlx::query("SELECT bundle, expires_at FROM export_links WHERE token_hash = $1")
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM export_links WHERE token_hash = $1 OR expires_at <= $2")
        .bind(token_hash(token))
        .bind(now.timestamp_millis())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let gone = || {
        Error::new(
            ErrorKind::NotFound,
            "no export behind this link: it expired, was already downloaded, or never existed",
        )
    };
    let row = row.ok_or_else(gone)?;
    let expires_at: i64 = row.try_get("expires_at")?;
    if expires_at <= now.timestamp_millis() {
        return Err(gone());
    }
    Ok(row.try_get("bundle")?)
}

// ---------------------------------------------------------------------------------------------
// Meta's callbacks

fn verified_fields(
    state: &AppState,
    form: &HashMap<String, String>,
) -> std::result::Result<SignedRequestFields, (StatusCode, String)> {
    let Some(value) = form.get("signed_request") else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the form field signed_request is missing".to_owned(),
        ));
    };
    let (request, _) = webhook_verify::signed_request::decode_with_any(value, &state.secrets)
        .map_err(|e| {
            state.shared.metrics.rejected("signed_request");
            (
                StatusCode::UNAUTHORIZED,
                format!("the signed_request is not valid: {e}"),
            )
        })?;
    request
        .ensure_fresh(
            std::time::Duration::from_secs(86_400),
            Utc::now().timestamp(),
        )
        .map_err(|e| {
            (
                StatusCode::UNAUTHORIZED,
                format!("the signed_request is too old: {e}"),
            )
        })?;
    SignedRequestFields::from_payload(&request.to_json())
        .map_err(|e| (StatusCode::BAD_REQUEST, e.message().to_owned()))
}

async fn deauthorize(
    State(state): State<Arc<AppState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fields = match verified_fields(&state, &form) {
        Ok(f) => f,
        Err((status, why)) => return problem(status, &why),
    };
    let shared = &state.shared;
    let sql = sql_store(shared, "meta");
    let schema = store::schema();
    match deauthorize_callback(&schema, &sql, Some(&sql), &fields, Utc::now()).await {
        Ok(done) => {
            for c in &done.connections {
                shared.forget_client(c);
            }
            tracing::info!(
                connections = done.connections.len(),
                tokens = done.credentials_deleted,
                "deauthorized"
            );
            Json(json!({ "success": true })).into_response()
        }
        Err(e) => failure(e.into()),
    }
}

async fn data_deletion(
    State(state): State<Arc<AppState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fields = match verified_fields(&state, &form) {
        Ok(f) => f,
        Err((status, why)) => return problem(status, &why),
    };
    let shared = state.shared.clone();
    let sql = sql_store(&shared, "meta");
    let now = Utc::now();
    if let Err(e) = store::ensure_contact_rows(&shared.db, None, &fields.user_id, now).await {
        return failure(e);
    }
    let receipt = match cascade::request_deletion(
        &sql,
        Some(&sql),
        Subject::instagram_user(fields.user_id.clone()),
        RequestSource::MetaCallback,
        now,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failure(e.into()),
    };
    let code = receipt.confirmation_code.clone();
    // The deletion runs after the answer; the sweeper resumes it if the process stops first.
    tokio::spawn(async move {
        let sql = sql_store(&shared, "meta");
        if let Err(e) = run_receipt(&shared, &sql, receipt, Utc::now()).await {
            tracing::warn!(error = %e, "data deletion failed; the retention sweeper will resume it");
        }
    });
    Json(json!({
        "url": format!("{}/meta/deletion-status/{code}", state.public_url().trim_end_matches('/')),
        "confirmation_code": code,
    }))
    .into_response()
}

fn public_status(receipt: &DeletionReceipt) -> serde_json::Value {
    let status = match receipt.status {
        DeletionStatus::Pending => "received",
        DeletionStatus::Running => "in_progress",
        DeletionStatus::Done => "done",
        DeletionStatus::Failed { .. } => "failed",
        _ => "in_progress",
    };
    let t = cascade::total(&receipt.counts);
    json!({
        "confirmation_code": receipt.confirmation_code,
        "status": status,
        "requested_at": receipt.requested_at,
        "finished_at": (receipt.status == DeletionStatus::Done).then_some(receipt.finished_at).flatten(),
        "records_deleted": t.deleted,
        "records_anonymized": t.anonymized,
        "message": receipt.status_text(),
    })
}

/// The status as a small HTML page, for a person following the link in a browser.
fn status_page(receipt: &DeletionReceipt) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Deletion request {code}</title></head>\
         <body><h1>Deletion request {code}</h1><p>{text}</p></body></html>",
        code = escape(&receipt.confirmation_code),
        text = escape(&receipt.status_text()),
    )
}

async fn deletion_status(
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let sql = sql_store(&state.shared, "meta");
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    match privacy_kit::store::ReceiptStore::receipt(&sql, &code).await {
        Ok(Some(r)) if html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            status_page(&r),
        )
            .into_response(),
        Ok(Some(r)) => Json(public_status(&r)).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "no deletion request has this confirmation code; check the code",
        ),
        Err(e) => failure(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Management handlers

/// `Ok` when `caller` may do `permission` and (when given) `account` belongs to the caller's
/// organization; else the 403 or 404 answer.
#[allow(clippy::result_large_err)]
async fn allowed(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    account: Option<&str>,
) -> std::result::Result<(), Response> {
    scope(state, caller, permission, account).await.map(drop)
}

/// The value of a `Result<T, Response>`, or returns the answer.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(answer) => return answer,
        }
    };
}

async fn delete_contact_route(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(&account)).await);
    match delete_contact(&state.shared, &account, &contact, Utc::now()).await {
        Ok(r) => Json(receipt_json(&r)).into_response(),
        Err(e) => failure(e),
    }
}

fn receipt_json(r: &DeletionReceipt) -> serde_json::Value {
    let mut v = public_status(r);
    v["counts"] = json!(r.counts);
    v["retained"] = json!(r.retained);
    v
}

#[derive(Debug, Deserialize)]
struct DeleteAccountQuery {
    data: Option<String>,
}

async fn delete_account_route(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(account): Path<String>,
    Query(q): Query<DeleteAccountQuery>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(&account)).await);
    let now = Utc::now();
    match q.data.as_deref() {
        Some("now") => match delete_account(&state.shared, &account, now).await {
            Ok(r) => Json(receipt_json(&r)).into_response(),
            Err(e) => failure(e),
        },
        None | Some("policy") => match disconnect(&state.shared, &account, "api", now).await {
            Ok(n) => Json(json!({
                "account": account,
                "tokens_deleted": n,
                "data": "kept until the retention policy `account-data` deletes it",
            }))
            .into_response(),
            Err(e) => failure(e),
        },
        Some(other) => problem(
            StatusCode::BAD_REQUEST,
            &format!("data={other} is not known; use data=now or data=policy"),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct DeleteOrganizationRequest {
    organization: Option<String>,
    #[serde(default)]
    confirm: bool,
}

async fn delete_organization_route(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Option<Json<DeleteOrganizationRequest>>,
) -> Response {
    check!(caller.require(Permission::DeleteOrganization));
    let Some(Json(req)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send {\"organization\": \"<your organization's id>\", \"confirm\": true}",
        );
    };
    // Another organization's id is answered like an unknown one.
    if req.organization.as_deref() != Some(caller.org_id.as_str()) {
        return problem(
            StatusCode::NOT_FOUND,
            "no such organization among yours; name your organization's id in `organization`",
        );
    }
    if !req.confirm {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deleting the organization deletes everything in it and cannot be undone; send \"confirm\": true",
        );
    }
    // the access log's entries so far are written (and deleted by the cascade); later ones
    // wait until the organization is gone, and are dropped then
    let _held = match state.access_log.hold(&state.shared.db).await {
        Ok(held) => held,
        Err(e) => return failure(e),
    };
    match delete_organization(&state.shared, &caller.org_id, Utc::now()).await {
        Ok(r) => Json(receipt_json(&r)).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct DeleteMemberRequest {
    member: Option<String>,
    #[serde(default)]
    confirm: bool,
}

async fn delete_member_route(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Option<Json<DeleteMemberRequest>>,
) -> Response {
    let Some(Json(req)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send {\"member\": \"me\", \"confirm\": true}",
        );
    };
    let member = req.member.unwrap_or_default();
    // A member ends their own account; anybody else's id is answered like an unknown one.
    if member != "me" && caller.user_id.as_deref() != Some(member.as_str()) {
        return problem(
            StatusCode::NOT_FOUND,
            "no such member: members delete their own account (\"member\": \"me\")",
        );
    }
    let Some(user) = caller.user_id.clone() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "a member deletes their own account: log in (an API key acts for no member)",
        );
    };
    if !req.confirm {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deleting your account removes you from every organization and cannot be undone; send \"confirm\": true",
        );
    }
    match delete_member(&state.shared, &user, Utc::now()).await {
        Ok(r) => Json(receipt_json(&r)).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct ExportRequest {
    account: Option<String>,
    contact: Option<String>,
    organization: Option<String>,
    member: Option<String>,
    ttl_secs: Option<u64>,
}

async fn create_export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(req): Json<ExportRequest>,
) -> Response {
    let what = match (&req.account, &req.organization, &req.member) {
        (Some(account), None, None) => {
            check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(account)).await);
            match &req.contact {
                Some(c) => ExportSubject::Contact {
                    account: account.clone(),
                    contact: c.clone(),
                },
                None => ExportSubject::Account(account.clone()),
            }
        }
        (None, Some(org), None) => {
            check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
            if *org != caller.org_id {
                return problem(StatusCode::NOT_FOUND, "no such organization");
            }
            ExportSubject::Organization(org.clone())
        }
        (None, None, Some(member)) => {
            // A member exports their own data; nobody else's (it names their other
            // organizations).
            if member != "me" && caller.user_id.as_deref() != Some(member.as_str()) {
                return problem(
                    StatusCode::NOT_FOUND,
                    "no such member: members export their own data (\"member\": \"me\")",
                );
            }
            let Some(user) = &caller.user_id else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "a member export is made by the member: log in (an API key acts for no member)",
                );
            };
            ExportSubject::Member(user.clone())
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "name one subject: {\"account\": ..., \"contact\"?: ...}, {\"organization\": ...} or {\"member\": \"me\"}",
            )
        }
    };
    let ttl = req
        .ttl_secs
        .unwrap_or(state.shared.config.export_link_ttl_secs)
        .clamp(1, 30 * 86_400);
    let ttl = chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(86_400));
    match export_of(&state.shared, &what, Utc::now(), ttl).await {
        Ok(link) => Json(json!({
            "url": format!("{}/privacy/exports/{}", state.public_url().trim_end_matches('/'), link.token),
            "expires_at": link.expires_at,
            "records": link.records,
            "manifest_sha256": link.manifest_sha256,
        }))
        .into_response(),
        Err(e) => failure(e),
    }
}

async fn download_export(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Response {
    match take_export(&state.shared, &token, Utc::now()).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/zip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"export.zip\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn deletion_receipt(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(code): Path<String>,
) -> Response {
    // whose receipt it is, read as the caller's organization (row-level security behind it)
    let mut reader = check!(scope(&state, &caller, Permission::ManagePrivacy, None).await);
    let mine: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT 1 FROM deletion_receipts WHERE code = $1 AND org_id = $2")
            .bind(&code)
            .bind(&caller.org_id)
            .fetch_optional(&mut *reader)
            .await;
    match mine {
        Ok(Some(_)) => {}
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "no deletion request of your organization has this confirmation code",
            )
        }
        Err(e) => return failure(e.into()),
    }
    let sql = sql_store(&state.shared, "api");
    match cascade::deletion_status(&sql, &code).await {
        Ok(r) => Json(receipt_json(&r)).into_response(),
        Err(e) => failure(e.into()),
    }
}

async fn get_retention(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(account): Path<String>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(&account)).await);
    match retention::policies_of(&state.shared.db, &account).await {
        Ok(p) => Json(json!({
            "account": account,
            "policies": p,
            "presets": retention::available_presets(),
        }))
        .into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct RetentionRequest {
    presets: Option<Vec<String>>,
    policies: Option<Vec<RetentionPolicy>>,
}

async fn put_retention(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(account): Path<String>,
    Json(req): Json<RetentionRequest>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(&account)).await);
    let mut policies = req.policies.unwrap_or_default();
    let available = retention::available_presets();
    for name in req.presets.unwrap_or_default() {
        match available.iter().find(|p| p.name == name) {
            Some(p) => policies.push(p.clone()),
            None => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "no retention preset is named `{name}`; known: {}",
                        available
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
        }
    }
    match retention::set_policies(
        &state.shared.db,
        &account,
        &policies,
        Utc::now().timestamp_millis(),
    )
    .await
    {
        Ok(()) => Json(json!({ "account": account, "policies": policies })).into_response(),
        Err(e) => failure(e),
    }
}

async fn retention_reports(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(account): Path<String>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, Some(&account)).await);
    match retention::reports(&state.shared.db, &account, 100).await {
        Ok(r) => Json(json!({ "reports": r })).into_response(),
        Err(e) => failure(e),
    }
}

async fn sweep_now(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    match retention::sweep_organization(&state.shared, &caller.org_id, Utc::now()).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    account: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Response {
    // read as the caller's organization (row-level security behind the query on PostgreSQL)
    let account = q.account.as_deref();
    let mut reader = check!(scope(&state, &caller, Permission::ManagePrivacy, account).await);
    let sql = sql_store(&state.shared, "api");
    match store::audit_rows(
        &mut reader,
        &sql,
        &caller.org_id,
        q.account.as_deref(),
        q.after.unwrap_or(0),
        q.limit.unwrap_or(100),
    )
    .await
    {
        Ok(rows) => Json(json!({ "entries": rows })).into_response(),
        Err(e) => failure(e),
    }
}

/// The kinds of request the register holds: `legal` (a government or legal request, P16) and
/// the requests of data subjects (P15) under the GDPR's articles 15 to 21.
pub const REQUEST_KINDS: &[&str] = &[
    "legal",
    "access",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "portability",
];

/// How many days a data subject's request may wait for its answer (P15).
pub const ANSWER_WITHIN_DAYS: i64 = 30;

/// The legal basis a data subject's request of `kind` rests on, when the caller names none.
fn default_basis(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "access" => "GDPR Art. 15 (right of access)",
        "rectification" => "GDPR Art. 16 (right to rectification)",
        "erasure" => "GDPR Art. 17 (right to erasure)",
        "restriction" => "GDPR Art. 18 (right to restriction of processing)",
        "portability" => "GDPR Art. 20 (right to data portability)",
        "objection" => "GDPR Art. 21 (right to object)",
        _ => return None,
    })
}

/// A request to record in the register: a legal request (P16) or a data subject's request
/// (P15).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct NewRequest {
    /// One of [`REQUEST_KINDS`]; `legal` when absent.
    #[serde(default)]
    pub kind: Option<String>,
    /// The account whose data the request concerns.
    pub account: String,
    /// The contact it concerns, if one (stored as a pseudonym).
    #[serde(default)]
    pub contact: Option<String>,
    /// Who asks: the authority of a legal request; `data subject` by default for the others.
    #[serde(default)]
    pub authority: Option<String>,
    /// What is asked.
    #[serde(default)]
    pub request: String,
    /// The legal basis cited; for a data subject's request, the GDPR article by default.
    #[serde(default)]
    pub legal_basis: Option<String>,
}

impl NewRequest {
    /// A data subject's request of `kind` (`access`, `rectification`, `erasure`,
    /// `restriction`, `objection`, `portability`) about `contact` of `account`.
    pub fn data_subject(kind: &str, account: &str, contact: &str, request: &str) -> Self {
        Self {
            kind: Some(kind.to_owned()),
            account: account.to_owned(),
            contact: Some(contact.to_owned()),
            authority: None,
            request: request.to_owned(),
            legal_basis: None,
        }
    }

    /// The kind, `legal` when none was given.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("legal")
    }

    /// Why the request cannot be recorded, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let kind = self.kind();
        if !REQUEST_KINDS.contains(&kind) {
            return Some(format!(
                "no request kind is named `{kind}`; known: {}",
                REQUEST_KINDS.join(", ")
            ));
        }
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if kind == "legal" && (blank(&self.authority) || blank(&self.legal_basis)) {
            return Some(
                "a legal request needs the requesting authority and the legal basis it cites"
                    .into(),
            );
        }
        None
    }
}

/// A request as the register holds it.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// Its id (`lr_...`).
    pub id: String,
    /// Its kind (see [`REQUEST_KINDS`]).
    pub kind: String,
    /// The account it concerns.
    pub account: String,
    /// The pseudonym of the contact it concerns.
    pub contact: Option<String>,
    /// Who asked.
    pub authority: String,
    /// What was asked.
    pub request: String,
    /// The legal basis cited.
    pub legal_basis: String,
    /// The answer (`disclosed`, `partially_disclosed`, `refused`, `fulfilled`).
    pub response: Option<String>,
    /// What was disclosed (ids pseudonymized).
    pub disclosed: Option<serde_json::Value>,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// When the answer is due (Unix ms): received + 30 days for a data subject's request.
    pub due_at: Option<i64>,
    /// When it was answered (Unix ms).
    pub answered_at: Option<i64>,
    /// Whether it is unanswered past its due date at the time of the listing.
    pub overdue: bool,
}

/// Records `req` for organization `org` at `now`, with its due date (P15: received + 30 days for
/// a data subject's request), and writes the audit entry. The new request.
pub async fn record_request(
    shared: &Shared,
    org: &str,
    req: &NewRequest,
    now: DateTime<Utc>,
) -> Result<RequestRecord> {
    if let Some(why) = req.problem() {
        return Err(Error::new(ErrorKind::Privacy, why));
    }
    let kind = req.kind().to_owned();
    let authority = req
        .authority
        .clone()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "data subject".into());
    let legal_basis = req
        .legal_basis
        .clone()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| default_basis(&kind).map(str::to_owned))
        .unwrap_or_default();
    let due_at = (kind != "legal")
        .then(|| (now + chrono::Duration::days(ANSWER_WITHIN_DAYS)).timestamp_millis());
    let id = format!("lr_{}", &random_token()?[..16]);
    let sql = sql_store(shared, "api").in_org(Some(org));
    let contact = req
        .contact
        .as_deref()
        .map(|c| sql.pseudonym(&contact_id(&req.account, c)));
    sqlx::query(
        "INSERT INTO legal_requests (id, account, contact, authority, request, legal_basis, received_at, org_id, kind, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&req.account)
    .bind(contact.as_deref())
    .bind(&authority)
    .bind(&req.request)
    .bind(&legal_basis)
    .bind(now.timestamp_millis())
    .bind(org)
    .bind(&kind)
    .bind(due_at)
    .execute(shared.db.pool())
    .await?;
    let subject = match &req.contact {
        Some(c) => Subject::contact(contact_id(&req.account, c)),
        None => Subject::connection(req.account.clone()),
    };
    sql.append(
        now,
        AuditEvent::LegalRequestReceived {
            request_id: id.clone(),
            authority: authority.clone(),
            legal_basis: legal_basis.clone(),
            subjects: vec![subject],
        },
    )
    .await?;
    Ok(RequestRecord {
        id,
        kind,
        account: req.account.clone(),
        contact,
        authority,
        request: req.request.clone(),
        legal_basis,
        response: None,
        disclosed: None,
        received_at: now.timestamp_millis(),
        due_at,
        answered_at: None,
        overdue: false,
    })
}

/// Records the answer to request `id` of organization `org` at `now` (the register names
/// disclosed records by pseudonym) and writes it to the audit register. `NotFound` for a
/// request of another organization or none.
pub async fn answer_request(
    shared: &Shared,
    org: &str,
    id: &str,
    response: LegalResponse,
    legal_basis: &str,
    disclosed: &[Disclosed],
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = sql_store(shared, "api").in_org(Some(org));
    let pseudonymous: Vec<Disclosed> = disclosed
        .iter()
        .map(|d| {
            Disclosed::new(
                d.entity.clone(),
                d.record_ids.iter().map(|i| sql.pseudonym(i)).collect(),
            )
        })
        .collect();
    let name = serde_json::to_value(&response)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let done = sqlx::query(
        "UPDATE legal_requests SET response = $1, disclosed = $2, answered_at = $3 WHERE id = $4 AND org_id = $5",
    )
    .bind(&name)
    .bind(serde_json::to_string(&pseudonymous).unwrap_or_default())
    .bind(now.timestamp_millis())
    .bind(id)
    .bind(org)
    .execute(shared.db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::new(ErrorKind::NotFound, "no such legal request"));
    }
    sql.append(
        now,
        AuditEvent::LegalRequestAnswered {
            request_id: id.to_owned(),
            response,
            legal_basis: legal_basis.to_owned(),
            disclosed: disclosed.to_vec(),
        },
    )
    .await?;
    Ok(())
}

/// Which requests a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestStatus {
    /// Every request.
    All,
    /// Not answered yet.
    Open,
    /// Not answered and past the due date (P15).
    Overdue,
    /// Answered.
    Answered,
}

/// The requests of organization `org` (of `account`, of the contact whose pseudonym is
/// `contact`, when given) in `status` at `now`, oldest first, read through `conn` (the caller's
/// scoped reader, or the pool).
pub async fn list_requests(
    conn: &mut sqlx::AnyConnection,
    org: &str,
    account: Option<&str>,
    contact: Option<&str>,
    status: RequestStatus,
    now: DateTime<Utc>,
) -> Result<Vec<RequestRecord>> {
    let now = now.timestamp_millis();
    let rows = sqlx::query(
        "SELECT id, kind, account, contact, authority, request, legal_basis, response, disclosed, received_at, due_at, answered_at \
         FROM legal_requests WHERE org_id = $3 AND ($1 = '' OR account = $1) AND ($2 = '' OR contact = $2) \
         AND ($4 = 'all' OR ($4 = 'answered' AND answered_at IS NOT NULL) OR ($4 = 'open' AND answered_at IS NULL) \
              OR ($4 = 'overdue' AND answered_at IS NULL AND due_at IS NOT NULL AND due_at <= $5)) \
         ORDER BY received_at, id LIMIT 1000",
    )
    .bind(account.unwrap_or_default())
    .bind(contact.unwrap_or_default())
    .bind(org)
    .bind(match status {
        RequestStatus::All => "all",
        RequestStatus::Open => "open",
        RequestStatus::Overdue => "overdue",
        RequestStatus::Answered => "answered",
    })
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let disclosed: Option<String> = r.try_get("disclosed")?;
            let due_at: Option<i64> = r.try_get("due_at")?;
            let answered_at: Option<i64> = r.try_get("answered_at")?;
            Ok(RequestRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                account: r.try_get("account")?,
                contact: r.try_get("contact")?,
                authority: r.try_get("authority")?,
                request: r.try_get("request")?,
                legal_basis: r.try_get("legal_basis")?,
                response: r.try_get("response")?,
                disclosed: disclosed.and_then(|d| serde_json::from_str(&d).ok()),
                received_at: r.try_get("received_at")?,
                due_at,
                answered_at,
                overdue: answered_at.is_none() && due_at.is_some_and(|d| d <= now),
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(Error::from)
}

async fn record_legal_request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(req): Json<NewRequest>,
) -> Response {
    check!(
        allowed(
            &state,
            &caller,
            Permission::ManagePrivacy,
            Some(&req.account)
        )
        .await
    );
    if let Some(why) = req.problem() {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &why);
    }
    match record_request(&state.shared, &caller.org_id, &req, Utc::now()).await {
        Ok(r) => (
            StatusCode::CREATED,
            Json(json!({ "id": r.id, "kind": r.kind, "due_at": r.due_at })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct LegalAnswer {
    response: LegalResponse,
    legal_basis: String,
    #[serde(default)]
    disclosed: Vec<Disclosed>,
}

async fn answer_legal_request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(answer): Json<LegalAnswer>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    match answer_request(
        &state.shared,
        &caller.org_id,
        &id,
        answer.response,
        &answer.legal_basis,
        &answer.disclosed,
        Utc::now(),
    )
    .await
    {
        Ok(()) => Json(json!({ "id": id, "answered": true })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct AccountQuery {
    account: Option<String>,
    contact: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RequestQuery {
    account: Option<String>,
    contact: Option<String>,
    status: Option<RequestStatus>,
}

async fn list_legal_requests(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<RequestQuery>,
) -> Response {
    // read as the caller's organization (on PostgreSQL with an application role, row-level
    // security is the second wall)
    let account = q.account.as_deref();
    let mut reader = check!(scope(&state, &caller, Permission::ManagePrivacy, account).await);
    let contact = match (&q.account, &q.contact) {
        (Some(a), Some(c)) => Some(sql_store(&state.shared, "api").pseudonym(&contact_id(a, c))),
        _ => None,
    };
    match list_requests(
        &mut reader,
        &caller.org_id,
        q.account.as_deref(),
        contact.as_deref(),
        q.status.unwrap_or(RequestStatus::All),
        Utc::now(),
    )
    .await
    {
        Ok(list) => Json(json!({ "legal_requests": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn consents(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Response {
    let Some(account) = q.account else {
        return problem(StatusCode::BAD_REQUEST, "give ?account=");
    };
    let mut reader = check!(scope(&state, &caller, Permission::ViewInbox, Some(&account)).await);
    let rows = sqlx::query(
        "SELECT contact, event, kind, payload, at FROM consents WHERE account = $1 \
         AND ($2 = '' OR contact = $2) ORDER BY at, event LIMIT 1000",
    )
    .bind(&account)
    .bind(q.contact.unwrap_or_default())
    .fetch_all(&mut *reader)
    .await;
    match rows {
        Ok(rows) => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "contact": r.try_get::<String, _>("contact").unwrap_or_default(),
                        "event": r.try_get::<String, _>("event").unwrap_or_default(),
                        "kind": r.try_get::<String, _>("kind").unwrap_or_default(),
                        "payload": r.try_get::<Option<String>, _>("payload").unwrap_or_default(),
                        "at": r.try_get::<i64, _>("at").unwrap_or_default(),
                    })
                })
                .collect();
            Json(json!({ "account": account, "consents": list })).into_response()
        }
        Err(e) => failure(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ClassRequest {
    keep_for: privacy_kit::retention::Period,
    #[serde(default = "created")]
    anchor: privacy_kit::retention::Anchor,
    #[serde(default = "delete_disposal")]
    then: privacy_kit::retention::Disposal,
    #[serde(default)]
    promise: String,
}

fn created() -> privacy_kit::retention::Anchor {
    privacy_kit::retention::Anchor::Created
}

fn delete_disposal() -> privacy_kit::retention::Disposal {
    privacy_kit::retention::Disposal::Delete
}

async fn list_classes(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    match org_retention::classes_of(&state.shared.db, &caller.org_id).await {
        Ok(classes) => Json(json!({ "classes": classes })).into_response(),
        Err(e) => failure(e),
    }
}

async fn put_class(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(req): Json<ClassRequest>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    let policy = org_retention::class(&name, req.keep_for, req.anchor, req.then, &req.promise);
    if let Some(why) = org_retention::class_problem(&policy) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &why);
    }
    match org_retention::set_class(
        &state.shared.db,
        &caller.org_id,
        &policy,
        Utc::now().timestamp_millis(),
    )
    .await
    {
        Ok(()) => Json(json!({ "class": policy })).into_response(),
        Err(e) => failure(e),
    }
}

async fn delete_class(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    match org_retention::delete_class(&state.shared.db, &caller.org_id, &name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(
            StatusCode::NOT_FOUND,
            "your organization has no such data class (GET /privacy/retention-classes lists them)",
        ),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct RecordRequest {
    data_class: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    body: serde_json::Value,
}

async fn keep_record_route(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(req): Json<RecordRequest>,
) -> Response {
    check!(allowed(&state, &caller, Permission::ManagePrivacy, None).await);
    match org_retention::keep_record(
        &state.shared.db,
        &caller.org_id,
        &req.data_class,
        req.reference.as_deref(),
        &req.body,
        Utc::now(),
    )
    .await
    {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e) => failure(e),
    }
}
