//! Webhook subscriptions (outbound and inbound), outbound deliveries and their attempts.
//!
//! Secrets are Standard Webhooks `whsec_` secrets, generated here, shown once when a
//! subscription is created, and stored only sealed by the token vault (bound to the
//! subscription id). Deliveries are enqueued with [`enqueue`] inside the transaction that
//! produced the event, so an event is published if and only if it was recorded.
//!
//! Every subscription, delivery and attempt carries its organization (`org_id`, never NULL);
//! the management functions take the caller's organization and see nothing of another's.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use webhook_verify::standard::Secret;

use super::{Backend, Db, Result, Tx};
use crate::service::error::{Error, ErrorKind};
use crate::service::vault::Vault;

/// A message was received from a contact.
pub const MESSAGE_RECEIVED: &str = "message.received";
/// An automation rule fired for an event.
pub const AUTOMATION_FIRED: &str = "automation.fired";
/// A contact's tags, fields or hand-off state changed.
pub const CONTACT_UPDATED: &str = "contact.updated";
/// Every event type a subscription may name.
pub const EVENT_TYPES: [&str; 3] = [MESSAGE_RECEIVED, AUTOMATION_FIRED, CONTACT_UPDATED];

/// Events are POSTed to the subscription's URL.
pub const OUTBOUND: &str = "outbound";
/// Another tool POSTs signed requests to `/hooks/inbound/{id}`.
pub const INBOUND: &str = "inbound";

/// A delivery waiting for its (next) attempt.
pub const PENDING: &str = "pending";
/// The receiver answered 2xx.
pub const DELIVERED: &str = "delivered";
/// Every attempt failed.
pub const FAILED: &str = "failed";

/// A subscription, without its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_<hex>`.
    pub id: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    /// The organization it belongs to (the creator's); only that organization's accounts'
    /// events are delivered to it, and only its members see or change it.
    pub org_id: String,
    /// The Instagram account (of the organization), when scoped to one (always set for
    /// inbound); without one, an outbound subscription receives the events of every account
    /// of its organization.
    pub account: Option<String>,
    /// Where events are POSTed (outbound).
    pub url: Option<String>,
    /// The event types delivered (outbound).
    pub event_types: Vec<String>,
    /// A note.
    pub description: Option<String>,
    /// Whether it is in force.
    pub enabled: bool,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last changed (Unix ms).
    pub updated_at: i64,
}

/// A subscription to create.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    /// `outbound` or `inbound`.
    pub direction: String,
    /// The organization (the caller's).
    pub org_id: String,
    /// The account; the caller checks it belongs to `org_id`.
    pub account: Option<String>,
    /// The URL (outbound).
    pub url: Option<String>,
    /// The event types (outbound).
    pub event_types: Vec<String>,
    /// A note.
    pub description: Option<String>,
}

macro_rules! subscription_columns {
    () => {
        "id, direction, org_id, account, url, event_types, description, enabled, created_at, updated_at"
    };
}

fn subscription(r: &AnyRow) -> Result<Subscription> {
    let types: String = r.try_get("event_types")?;
    let enabled: i64 = r.try_get("enabled")?;
    Ok(Subscription {
        id: r.try_get("id")?,
        direction: r.try_get("direction")?,
        org_id: r.try_get("org_id")?,
        account: r.try_get("account")?,
        url: r.try_get("url")?,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        description: r.try_get("description")?,
        enabled: enabled != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `prefix` followed by 16 random bytes in hex.
pub fn random_id(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("the system random generator failed: {e}"),
        )
    })?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// A new random signing secret.
fn new_secret() -> Result<Secret> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("the system random generator failed: {e}"),
        )
    })?;
    Secret::from_key_bytes(&key).map_err(|e| Error::new(ErrorKind::Vault, e.to_string()))
}

fn binding(id: &str) -> String {
    format!("webhook-subscription:{id}")
}

/// Creates a subscription; the subscription and its `whsec_` secret (to show once).
pub async fn create(
    db: &Db,
    vault: &Vault,
    new: &NewSubscription,
    now: i64,
) -> Result<(Subscription, String)> {
    let id = random_id("sub_")?;
    let secret = new_secret()?.to_whsec();
    let sealed = vault.seal(&binding(&id), &secret)?;
    let types = serde_json::to_string(&new.event_types).unwrap_or_else(|_| "[]".into());
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_subscriptions (id, direction, org_id, account, url, event_types, \
         description, secret_sealed, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
    )
    .bind(&id)
    .bind(&new.direction)
    .bind(&new.org_id)
    .bind(&new.account)
    .bind(&new.url)
    .bind(&types)
    .bind(&new.description)
    .bind(&sealed)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let sub = get(&mut tx, &new.org_id, &id).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::Database,
            "the subscription vanished after it was created",
        )
    })?;
    tx.commit().await?;
    Ok((sub, secret))
}

/// Replaces a subscription's secret; the new `whsec_` secret (to show once), `None` if the
/// subscription does not exist in organization `org`. Deliveries from now on are signed with it.
pub async fn rotate_secret(
    db: &Db,
    vault: &Vault,
    org: &str,
    id: &str,
    now: i64,
) -> Result<Option<String>> {
    let secret = new_secret()?.to_whsec();
    let sealed = vault.seal(&binding(id), &secret)?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET secret_sealed = $1, updated_at = $2 \
         WHERE id = $3 AND org_id = $4",
    )
    .bind(&sealed)
    .bind(now)
    .bind(id)
    .bind(org)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((done.rows_affected() == 1).then_some(secret))
}

/// One subscription of organization `org` (`None` for another organization's).
pub async fn get(conn: &mut AnyConnection, org: &str, id: &str) -> Result<Option<Subscription>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        subscription_columns!(),
        " FROM webhook_subscriptions WHERE id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(subscription).transpose()
}

/// Subscriptions of organization `org`, filtered by account and direction when given, oldest
/// first.
pub async fn list(
    conn: &mut AnyConnection,
    org: &str,
    account: Option<&str>,
    direction: Option<&str>,
) -> Result<Vec<Subscription>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        subscription_columns!(),
        " FROM webhook_subscriptions \
         WHERE org_id = $3 AND ($1 IS NULL OR account = $1) AND ($2 IS NULL OR direction = $2) \
         ORDER BY created_at, id"
    ))
    .bind(account)
    .bind(direction)
    .bind(org)
    .fetch_all(conn)
    .await?;
    rows.iter().map(subscription).collect()
}

/// Changes to a subscription; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The URL.
    pub url: Option<String>,
    /// The event types.
    pub event_types: Option<Vec<String>>,
    /// The note.
    pub description: Option<String>,
    /// Whether it is in force.
    pub enabled: Option<bool>,
}

/// Applies `changes`; the subscription after them, `None` if it does not exist in
/// organization `org`.
pub async fn update(
    db: &Db,
    org: &str,
    id: &str,
    changes: &Changes,
    now: i64,
) -> Result<Option<Subscription>> {
    let types = changes
        .event_types
        .as_ref()
        .map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into()));
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE webhook_subscriptions SET url = COALESCE($1, url), \
         event_types = COALESCE($2, event_types), description = COALESCE($3, description), \
         enabled = COALESCE($4, enabled), updated_at = $5 WHERE id = $6 AND org_id = $7",
    )
    .bind(&changes.url)
    .bind(types)
    .bind(&changes.description)
    .bind(changes.enabled.map(i64::from))
    .bind(now)
    .bind(id)
    .bind(org)
    .execute(&mut *tx)
    .await?;
    let sub = get(&mut tx, org, id).await?;
    tx.commit().await?;
    Ok(sub)
}

/// Deletes a subscription of organization `org` with its deliveries and their attempts;
/// whether it existed there (another organization's is left alone).
pub async fn delete(db: &Db, org: &str, id: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM outbound_attempts WHERE subscription_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM outbound_deliveries WHERE subscription_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// A subscription with its secret opened, `None` if it does not exist (in any organization:
/// for the delivery worker and the signed inbound endpoint, whose callers have no organization).
pub async fn with_secret(
    db: &Db,
    vault: &Vault,
    id: &str,
) -> Result<Option<(Subscription, Secret)>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        subscription_columns!(),
        ", secret_sealed FROM webhook_subscriptions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let sub = subscription(&row)?;
    let sealed: String = row.try_get("secret_sealed")?;
    let opened = vault.open(&binding(id), &sealed)?;
    let secret = Secret::parse(opened.expose()).map_err(|e| {
        Error::new(
            ErrorKind::Vault,
            format!("the stored secret of {id} is unreadable: {e}"),
        )
    })?;
    Ok(Some((sub, secret)))
}

/// The enabled outbound subscriptions that receive an account's events: those of the account's
/// organization (`accounts.org_id`) naming the account or no account. Another organization's
/// subscriptions never receive the account's events, even one naming the account (after the
/// account moved between organizations).
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    /// (subscription id, organization, event types).
    subscriptions: Vec<(String, String, Vec<String>)>,
}

impl Subscribers {
    /// Whether any subscription wants `event_type`.
    pub fn want(&self, event_type: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|(_, _, types)| types.iter().any(|t| t == event_type))
    }
}

const SUBSCRIBERS_SQL: &str = "SELECT a.id AS account, s.id, s.org_id, s.event_types \
     FROM webhook_subscriptions s JOIN accounts a ON a.org_id = s.org_id \
     WHERE s.direction = 'outbound' AND s.enabled = 1 \
     AND (s.account IS NULL OR s.account = a.id) AND a.id IN";

/// The subscribers of each of `accounts` (one statement; accounts without any are absent).
pub async fn subscribers(
    tx: &mut Tx,
    accounts: &[&str],
) -> Result<std::collections::HashMap<String, Subscribers>> {
    let mut out: std::collections::HashMap<String, Subscribers> = Default::default();
    for chunk in accounts.chunks(1000) {
        let sql = format!(
            "{SUBSCRIBERS_SQL} ({})",
            super::rows::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for account in chunk {
            query = query.bind(*account);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let types: String = row.try_get("event_types")?;
            out.entry(row.try_get("account")?)
                .or_default()
                .subscriptions
                .push((
                    row.try_get("id")?,
                    row.try_get("org_id")?,
                    serde_json::from_str(&types).unwrap_or_default(),
                ));
        }
    }
    Ok(out)
}

/// Enqueues `event_type` with `data` (about `contact`) for every enabled outbound subscription
/// of `account` that wants it (see [`Subscribers`]), in `tx`; how many deliveries were written.
pub async fn enqueue(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    event_type: &str,
    data: &serde_json::Value,
    now: i64,
) -> Result<usize> {
    let subs = subscribers(tx, &[account])
        .await?
        .remove(account)
        .unwrap_or_default();
    enqueue_to(tx, &subs, account, contact, event_type, data, now).await
}

/// Like [`enqueue`], to subscribers already looked up (the inbox worker looks them up once per
/// batch).
pub async fn enqueue_to(
    tx: &mut Tx,
    subs: &Subscribers,
    account: &str,
    contact: &str,
    event_type: &str,
    data: &serde_json::Value,
    now: i64,
) -> Result<usize> {
    let mut n = 0;
    for (sub, org, types) in &subs.subscriptions {
        if !types.iter().any(|t| t == event_type) {
            continue;
        }
        let id = random_id("msg_")?;
        let payload = serde_json::json!({
            "type": event_type,
            "timestamp": super::to_time(now).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        });
        sqlx::query(
            "INSERT INTO outbound_deliveries (id, subscription_id, org_id, account, contact, \
             event_type, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8)",
        )
        .bind(&id)
        .bind(sub)
        .bind(org)
        .bind(account)
        .bind(contact)
        .bind(event_type)
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        n += 1;
    }
    Ok(n)
}

/// A delivery claimed by the delivery worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// `msg_<hex>`, the `webhook-id`.
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// The organization.
    pub org_id: String,
    /// The account.
    pub account: Option<String>,
    /// The JSON body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// Claims up to `limit` due deliveries for `owner` until `lease_until`.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    // Most polls find nothing due: a read answers them without a write transaction.
    if !db
        .finds(
            "SELECT 1 FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
            now,
        )
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    // Several instances on PostgreSQL: each picks rows the others have not locked, once (a
    // materialized CTE; a LIMIT subquery inside IN may run twice).
    let sql = match db.backend() {
        Backend::Sqlite => {
            "UPDATE outbound_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $3) AND id IN \
             (SELECT id FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_at <= $3 \
              AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at, created_at LIMIT $4)"
        }
        Backend::Postgres => {
            "WITH picked AS MATERIALIZED (SELECT id FROM outbound_deliveries \
              WHERE status = 'pending' AND next_attempt_at <= $3 \
              AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at, created_at \
              LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE outbound_deliveries SET lease_owner = $1, lease_until = $2 FROM picked \
             WHERE outbound_deliveries.id = picked.id"
        }
    };
    sqlx::query(sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(
        "SELECT id, subscription_id, org_id, account, payload, attempts FROM outbound_deliveries \
         WHERE lease_owner = $1 AND status = 'pending' ORDER BY created_at",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                subscription_id: r.try_get("subscription_id")?,
                org_id: r.try_get("org_id")?,
                account: r.try_get("account")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .collect()
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// `delivered`, `retry` or `failed`.
    pub outcome: &'a str,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong.
    pub error: Option<&'a str>,
    /// How long the call took.
    pub duration_ms: i64,
    /// When to try again (`retry`).
    pub next_attempt_at: Option<i64>,
}

/// Records an attempt of `delivery` and moves it on (delivered, pending again, or failed) if
/// `owner` still holds it; whether it did.
pub async fn record_attempt(
    tx: &mut Tx,
    delivery: &Claimed,
    owner: &str,
    attempt: &Attempt<'_>,
    now: i64,
) -> Result<bool> {
    let status = match attempt.outcome {
        "delivered" => DELIVERED,
        "retry" => PENDING,
        _ => FAILED,
    };
    let done = sqlx::query(
        "UPDATE outbound_deliveries SET status = $1, attempts = attempts + 1, \
         next_attempt_at = COALESCE($2, next_attempt_at), lease_owner = NULL, lease_until = NULL, \
         last_status_code = $3, last_error = $4, updated_at = $5, \
         delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END \
         WHERE id = $6 AND lease_owner = $7",
    )
    .bind(status)
    .bind(attempt.next_attempt_at)
    .bind(attempt.status_code)
    .bind(attempt.error)
    .bind(now)
    .bind(&delivery.id)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO outbound_attempts (delivery_id, subscription_id, org_id, account, attempt, \
         outcome, status_code, error, duration_ms, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&delivery.id)
    .bind(&delivery.subscription_id)
    .bind(&delivery.org_id)
    .bind(&delivery.account)
    .bind(delivery.attempts + 1)
    .bind(attempt.outcome)
    .bind(attempt.status_code)
    .bind(attempt.error)
    .bind(attempt.duration_ms)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// An outbound delivery as listed by the API.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `msg_<hex>` (the `webhook-id`).
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// The account.
    pub account: Option<String>,
    /// The contact the event is about.
    pub contact: Option<String>,
    /// The event type.
    pub event_type: String,
    /// The JSON body.
    pub payload: serde_json::Value,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made (since the last redelivery).
    pub attempts: i64,
    /// When the next attempt is due (pending).
    pub next_attempt_at: i64,
    /// The last HTTP status received.
    pub last_status_code: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Delivered (Unix ms).
    pub delivered_at: Option<i64>,
}

/// One recorded attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Sequence number.
    pub id: i64,
    /// The delivery.
    pub delivery_id: String,
    /// The attempt number (restarts at 1 after a redelivery).
    pub attempt: i64,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    /// The receiver's HTTP status.
    pub status_code: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: i64,
    /// When (Unix ms).
    pub at: i64,
}

/// Filters of [`deliveries`]; `None` matches everything.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DeliveryFilter {
    /// Only this subscription.
    pub subscription: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Only this contact.
    pub contact: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Created at or after (Unix ms).
    pub since: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

macro_rules! delivery_columns {
    () => {
        "id, subscription_id, account, contact, event_type, payload, status, attempts, next_attempt_at, \
         last_status_code, last_error, created_at, delivered_at"
    };
}

fn delivery(r: &AnyRow) -> Result<Delivery> {
    let payload: String = r.try_get("payload")?;
    Ok(Delivery {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        account: r.try_get("account")?,
        contact: r.try_get("contact")?,
        event_type: r.try_get("event_type")?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// Deliveries of organization `org` matching `filter`, newest first.
pub async fn deliveries(
    conn: &mut AnyConnection,
    org: &str,
    filter: &DeliveryFilter,
) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM outbound_deliveries \
         WHERE ($1 IS NULL OR subscription_id = $1) AND ($2 IS NULL OR account = $2) \
         AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR event_type = $4) AND created_at >= $5 \
         AND ($7 IS NULL OR contact = $7) AND org_id = $8 ORDER BY created_at DESC, id LIMIT $6"
    ))
    .bind(&filter.subscription)
    .bind(&filter.account)
    .bind(&filter.status)
    .bind(&filter.event_type)
    .bind(filter.since.unwrap_or(0))
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .bind(&filter.contact)
    .bind(org)
    .fetch_all(conn)
    .await?;
    rows.iter().map(delivery).collect()
}

/// One delivery of organization `org` with its attempts (oldest first); `None` for another
/// organization's.
pub async fn delivery_with_attempts(
    conn: &mut AnyConnection,
    org: &str,
    id: &str,
) -> Result<Option<(Delivery, Vec<AttemptRecord>)>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM outbound_deliveries WHERE id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let rows = sqlx::query(
        "SELECT id, delivery_id, attempt, outcome, status_code, error, duration_ms, at \
         FROM outbound_attempts WHERE delivery_id = $1 AND org_id = $2 ORDER BY id",
    )
    .bind(id)
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    let attempts = rows
        .iter()
        .map(|r| {
            Ok(AttemptRecord {
                id: r.try_get("id")?,
                delivery_id: r.try_get("delivery_id")?,
                attempt: r.try_get("attempt")?,
                outcome: r.try_get("outcome")?,
                status_code: r.try_get("status_code")?,
                error: r.try_get("error")?,
                duration_ms: r.try_get("duration_ms")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some((delivery(&row)?, attempts)))
}

/// Sends a delivery of organization `org` again from its first attempt (same `webhook-id` and
/// body); whether it was reset. Another organization's delivery, and one being attempted right
/// now, are left alone (`Ok(false)`).
pub async fn redeliver(db: &Db, org: &str, id: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE outbound_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, \
         lease_owner = NULL, lease_until = NULL, updated_at = $1 \
         WHERE id = $2 AND org_id = $3 AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .bind(id)
    .bind(org)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}
