//! The `accounts` table: connected Instagram accounts. Tokens are stored only sealed.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, Result};
use crate::service::error::{Error, ErrorKind};

/// The account may send.
pub const ACTIVE: &str = "active";
/// The token was refused (error 190): nothing is sent until the account reconnects.
pub const NEEDS_RECONNECT: &str = "needs_reconnect";

/// A connected account, as the management API shows it (never the token).
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// The Instagram professional account id.
    pub id: String,
    /// The username.
    pub username: Option<String>,
    /// `active` or `needs_reconnect`.
    pub status: String,
    /// Why the status is what it is.
    pub status_reason: Option<String>,
    /// When the token expires (Unix ms), if known.
    pub token_expires_at: Option<i64>,
    /// When it was connected (Unix ms).
    pub connected_at: i64,
    /// The last webhook event for it (Unix ms).
    pub last_webhook_at: Option<i64>,
    /// Failed sends so far.
    pub failures: i64,
    /// Whole days until the token expires (negative once expired), if known.
    pub token_days_left: Option<i64>,
}

fn account(r: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        token_expires_at: r.try_get("token_expires_at")?,
        connected_at: r.try_get("connected_at")?,
        last_webhook_at: r.try_get("last_webhook_at")?,
        failures: r.try_get("failures")?,
        token_days_left: r
            .try_get::<Option<i64>, _>("token_expires_at")?
            .map(|at| (at - super::now_ms()).div_euclid(86_400_000)),
    })
}

/// Inserts or replaces an account's token (sealed) and marks it active, in the operator's
/// organization ([`super::teams::BOOTSTRAP_ORG`]).
pub async fn upsert(
    db: &Db,
    id: &str,
    username: Option<&str>,
    token_sealed: &str,
    token_expires_at: Option<i64>,
    now: i64,
) -> Result<()> {
    upsert_in(
        db,
        super::teams::BOOTSTRAP_ORG,
        id,
        username,
        token_sealed,
        token_expires_at,
        now,
    )
    .await
}

/// Inserts or replaces an account's token (sealed) in organization `org` and marks it active.
/// An account belongs to the organization that connected it first: connecting it from another
/// organization fails with [`ErrorKind::Conflict`] and changes nothing.
pub async fn upsert_in(
    db: &Db,
    org: &str,
    id: &str,
    username: Option<&str>,
    token_sealed: &str,
    token_expires_at: Option<i64>,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO accounts (id, username, token_sealed, token_expires_at, status, connected_at, updated_at, org_id) \
         VALUES ($1, $2, $3, $4, 'active', $5, $5, $6) ON CONFLICT (id) DO UPDATE SET \
         username = COALESCE(excluded.username, accounts.username), token_sealed = excluded.token_sealed, \
         token_expires_at = excluded.token_expires_at, status = 'active', status_reason = NULL, \
         updated_at = excluded.updated_at WHERE accounts.org_id = excluded.org_id",
    )
    .bind(id)
    .bind(username)
    .bind(token_sealed)
    .bind(token_expires_at)
    .bind(now)
    .bind(org)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            "this Instagram account is connected to another organization; disconnect it there first",
        ));
    }
    Ok(())
}

/// Replaces the sealed token after a refresh.
pub async fn set_token(
    db: &Db,
    id: &str,
    token_sealed: &str,
    expires_at: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE accounts SET token_sealed = $1, token_expires_at = $2, updated_at = $3 WHERE id = $4")
        .bind(token_sealed)
        .bind(expires_at)
        .bind(now)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The sealed token and status of an account.
pub async fn sealed_token(db: &Db, id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT token_sealed, status FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok((r.try_get("token_sealed")?, r.try_get("status")?)))
        .transpose()
}

/// Sets the status (with a reason).
pub async fn set_status(
    db: &Db,
    id: &str,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    set_status_in(&mut tx, id, status, reason, now).await?;
    tx.commit().await
}

/// Sets an account's status (and the reason shown with it) in `tx`, so that it commits with the
/// rows it explains: the sender holds an account's sends (`needs_reconnect`) in the commit that
/// puts the refused row back in the queue, so no other sender loop claims the row in between.
pub async fn set_status_in(
    tx: &mut super::Tx,
    id: &str,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET status = $1, status_reason = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts a failed send.
pub async fn add_failure(db: &Db, id: &str) -> Result<()> {
    sqlx::query("UPDATE accounts SET failures = failures + 1 WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records that webhook events arrived for the accounts: (account, when) pairs.
///
/// On SQLite, one statement. On PostgreSQL several instances decide at once, each in a
/// transaction that lasts a batch: a transaction that finds an account's row locked by another
/// one (which is recording about the same time) skips it instead of waiting for it, so the
/// account row never serializes the instances nor deadlocks their batches.
pub async fn touch_webhooks(tx: &mut super::Tx, touched: &[(&str, i64)]) -> Result<()> {
    if touched.is_empty() {
        return Ok(());
    }
    if tx.backend() == super::Backend::Sqlite {
        for chunk in touched.chunks(500) {
            let sql = super::rows::values_sql(
                "UPDATE accounts SET last_webhook_at = v.column2 FROM (",
                2,
                chunk.len(),
                ") AS v WHERE accounts.id = v.column1",
                tx.backend(),
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, at) in chunk {
                query = query.bind(*id).bind(*at);
            }
            query.execute(&mut **tx).await?;
        }
        return Ok(());
    }
    for (id, at) in touched {
        sqlx::query(
            "UPDATE accounts SET last_webhook_at = $1 WHERE id IN (SELECT id FROM accounts \
             WHERE id = $2 AND (last_webhook_at IS NULL OR last_webhook_at < $1) \
             FOR UPDATE SKIP LOCKED)",
        )
        .bind(*at)
        .bind(*id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One account.
pub async fn get(db: &Db, id: &str) -> Result<Option<Account>> {
    let row = sqlx::query("SELECT id, username, status, status_reason, token_expires_at, connected_at, last_webhook_at, failures FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(account).transpose()
}

/// The accounts of an organization.
pub async fn list_in(conn: &mut sqlx::AnyConnection, org: &str) -> Result<Vec<Account>> {
    let rows = sqlx::query("SELECT id, username, status, status_reason, token_expires_at, connected_at, last_webhook_at, failures FROM accounts WHERE org_id = $1 ORDER BY id")
        .bind(org)
        .fetch_all(conn)
        .await?;
    rows.iter().map(account).collect()
}

/// One account of an organization.
pub async fn get_in(
    conn: &mut sqlx::AnyConnection,
    org: &str,
    id: &str,
) -> Result<Option<Account>> {
    let row = sqlx::query("SELECT id, username, status, status_reason, token_expires_at, connected_at, last_webhook_at, failures FROM accounts WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(account).transpose()
}

/// Every account.
pub async fn list(db: &Db) -> Result<Vec<Account>> {
    let rows = sqlx::query("SELECT id, username, status, status_reason, token_expires_at, connected_at, last_webhook_at, failures FROM accounts ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(account).collect()
}

/// Active accounts whose token expires before `before` (Unix ms).
pub async fn expiring(db: &Db, before: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM accounts WHERE status = 'active' AND token_expires_at IS NOT NULL AND token_expires_at < $1",
    )
    .bind(before)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}
