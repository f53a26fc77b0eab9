//! Backfills of existing threads through the Conversations API: one row per account, resumable
//! (the page being read and the cursor of the next one are stored after every step), run by one
//! instance at a time (a lease).

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Db, Result, Tx};

/// A backfill's progress, as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Backfill {
    /// The account.
    pub account: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Conversations read so far.
    pub conversations: i64,
    /// Messages recorded so far.
    pub messages: i64,
    /// Why it stopped, when it failed (start it again to resume).
    pub error: Option<String>,
    /// When it started (Unix ms).
    pub started_at: i64,
    /// When it last moved (Unix ms).
    pub updated_at: i64,
}

/// A backfill claimed for a step.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The account.
    pub account: String,
    /// The cursor of the next page of conversations (`None`: the first page, or none left when
    /// a page was read).
    pub next_cursor: Option<String>,
    /// Conversations of the current page not read yet.
    pub pending: Vec<String>,
    /// Whether a page was read at all.
    pub started: bool,
}

/// Starts a backfill of `account`, or resumes a failed or running one where it stopped; a
/// finished one starts over.
pub async fn start(tx: &mut Tx, account: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_backfills (account, status, pending, started_at, updated_at) \
         VALUES ($1, 'running', '[]', $2, $2) ON CONFLICT (account) DO UPDATE SET \
         next_cursor = CASE WHEN inbox_backfills.status = 'done' THEN NULL ELSE inbox_backfills.next_cursor END, \
         conversations = CASE WHEN inbox_backfills.status = 'done' THEN 0 ELSE inbox_backfills.conversations END, \
         messages = CASE WHEN inbox_backfills.status = 'done' THEN 0 ELSE inbox_backfills.messages END, \
         status = 'running', error = NULL, updated_at = excluded.updated_at",
    )
    .bind(account)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The backfill of `account`, if any.
pub async fn get(conn: &mut AnyConnection, account: &str) -> Result<Option<Backfill>> {
    let row = sqlx::query(
        "SELECT account, status, conversations, messages, error, started_at, updated_at \
         FROM inbox_backfills WHERE account = $1",
    )
    .bind(account)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Backfill {
            account: r.try_get("account")?,
            status: r.try_get("status")?,
            conversations: r.try_get("conversations")?,
            messages: r.try_get("messages")?,
            error: r.try_get("error")?,
            started_at: r.try_get("started_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// Claims the running backfill that waited longest (this owner's, or one whose lease ran out)
/// until `until`.
pub async fn claim(db: &Db, owner: &str, now: i64, until: i64) -> Result<Option<Claimed>> {
    const CLAIMABLE: &str = "SELECT account, next_cursor, pending, conversations, messages \
         FROM inbox_backfills WHERE status = 'running' \
         AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < $2) \
         ORDER BY updated_at LIMIT 1";
    // Most polls find nothing to do: a read answers them without a write transaction.
    if sqlx::query(CLAIMABLE)
        .bind(owner)
        .bind(now)
        .fetch_optional(db.pool())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let mut tx = db.begin().await?;
    let row = sqlx::query(CLAIMABLE)
        .bind(owner)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let account: String = row.try_get("account")?;
    let taken = sqlx::query(
        "UPDATE inbox_backfills SET lease_owner = $1, lease_until = $2 WHERE account = $3 \
         AND status = 'running' AND (lease_owner = $1 OR lease_until IS NULL OR lease_until < $4)",
    )
    .bind(owner)
    .bind(until)
    .bind(&account)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if taken.rows_affected() != 1 {
        return Ok(None);
    }
    let pending: String = row.try_get("pending")?;
    let conversations: i64 = row.try_get("conversations")?;
    let messages: i64 = row.try_get("messages")?;
    let next_cursor: Option<String> = row.try_get("next_cursor")?;
    Ok(Some(Claimed {
        account,
        started: next_cursor.is_some() || conversations > 0 || messages > 0 || pending != "[]",
        next_cursor,
        pending: serde_json::from_str(&pending).unwrap_or_default(),
    }))
}

/// Stores a step's progress: the page being read, the next cursor, what was added, and whether
/// the backfill is finished.
#[allow(clippy::too_many_arguments)]
pub async fn progress(
    tx: &mut Tx,
    account: &str,
    next_cursor: Option<&str>,
    pending: &[String],
    conversations: i64,
    messages: i64,
    done: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE inbox_backfills SET next_cursor = $1, pending = $2, conversations = conversations + $3, \
         messages = messages + $4, status = $5, updated_at = $6 WHERE account = $7",
    )
    .bind(next_cursor)
    .bind(serde_json::to_string(pending).unwrap_or_else(|_| "[]".into()))
    .bind(conversations)
    .bind(messages)
    .bind(if done { "done" } else { "running" })
    .bind(now)
    .bind(account)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stops a backfill with the reason (its progress is kept: starting it again resumes).
pub async fn fail(db: &Db, account: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE inbox_backfills SET status = 'failed', error = $1, lease_owner = NULL, \
         lease_until = NULL, updated_at = $2 WHERE account = $3",
    )
    .bind(error)
    .bind(now)
    .bind(account)
    .execute(db.pool())
    .await?;
    Ok(())
}
