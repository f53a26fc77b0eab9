//! The delivery log: every attempt and status change of an outbox row.

use serde::Serialize;
use sqlx::Row;

use super::rows::Param;
use super::{Db, Result, Tx};

/// One entry to append.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    /// The outbox row.
    pub outbox_key: &'a str,
    /// The account.
    pub account: &'a str,
    /// The rule.
    pub rule: Option<&'a str>,
    /// The action kind.
    pub kind: &'a str,
    /// The attempt number (0 for status changes that are not attempts).
    pub attempt: i64,
    /// `queued`, `sent`, `delivered`, `read`, `retry`, `held`, `failed`.
    pub status: &'a str,
    /// The error kind.
    pub error_kind: Option<&'a str>,
    /// The error message.
    pub error_message: Option<&'a str>,
    /// The message id.
    pub mid: Option<&'a str>,
}

/// Appends an entry.
pub async fn append(tx: &mut Tx, e: &Entry<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO delivery_log (outbox_key, account, rule, kind, attempt, status, error_kind, \
         error_message, mid, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.outbox_key)
    .bind(e.account)
    .bind(e.rule)
    .bind(e.kind)
    .bind(e.attempt)
    .bind(e.status)
    .bind(e.error_kind)
    .bind(e.error_message)
    .bind(e.mid)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Entry<'_> {
    /// The entry as a row for [`append_many`], at `now`.
    pub fn row(&self, now: i64) -> Vec<Param> {
        vec![
            self.outbox_key.into(),
            self.account.into(),
            self.rule.into(),
            self.kind.into(),
            self.attempt.into(),
            self.status.into(),
            self.error_kind.into(),
            self.error_message.into(),
            self.mid.into(),
            now.into(),
        ]
    }
}

/// Appends entries made with [`Entry::row`], in multi-row statements.
pub async fn append_many(tx: &mut Tx, rows: &[Vec<Param>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::rows::insert(
        tx,
        "INSERT INTO delivery_log (outbox_key, account, rule, kind, attempt, status, error_kind, \
         error_message, mid, at)",
        10,
        rows,
        "",
    )
    .await?;
    Ok(())
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Sequence number.
    pub id: i64,
    /// The outbox row.
    pub outbox_key: String,
    /// The account.
    pub account: String,
    /// The rule.
    pub rule: Option<String>,
    /// The action kind.
    pub kind: String,
    /// The attempt number.
    pub attempt: i64,
    /// The status.
    pub status: String,
    /// The error kind.
    pub error_kind: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// The message id.
    pub mid: Option<String>,
    /// When (Unix ms).
    pub at: i64,
}

/// Filters for [`list`]; `None` matches everything.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    /// Only this account.
    pub account: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this outbox row.
    pub outbox_key: Option<String>,
    /// Entries after this sequence number.
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Entries matching `filter`, oldest first.
pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<Record>> {
    let rows = sqlx::query(
        "SELECT id, outbox_key, account, rule, kind, attempt, status, error_kind, error_message, mid, at \
         FROM delivery_log WHERE ($1 IS NULL OR account = $1) AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR rule = $3) AND ($4 IS NULL OR outbox_key = $4) AND id > $5 \
         ORDER BY id LIMIT $6",
    )
    .bind(&filter.account)
    .bind(&filter.status)
    .bind(&filter.rule)
    .bind(&filter.outbox_key)
    .bind(filter.after.unwrap_or(0))
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Record {
                id: r.try_get("id")?,
                outbox_key: r.try_get("outbox_key")?,
                account: r.try_get("account")?,
                rule: r.try_get("rule")?,
                kind: r.try_get("kind")?,
                attempt: r.try_get("attempt")?,
                status: r.try_get("status")?,
                error_kind: r.try_get("error_kind")?,
                error_message: r.try_get("error_message")?,
                mid: r.try_get("mid")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}
