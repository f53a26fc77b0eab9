//! The `outbox` table: one row per planned action, keyed by event key + action index.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows::{self, Param};
use super::{Backend, Db, Result, Tx};

/// Waiting to be sent (also after a retryable failure, with a later `next_attempt_at`).
pub const QUEUED: &str = "queued";
/// Recorded as attempted before the call: a row left in this state by a crash is never re-sent.
pub const SENDING: &str = "sending";
/// The Graph API accepted it.
pub const SENT: &str = "sent";
/// The echo came back.
pub const DELIVERED: &str = "delivered";
/// The person read it.
pub const READ: &str = "read";
/// Gave up.
pub const FAILED: &str = "failed";

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// `event key#index`.
    pub key: String,
    /// The account.
    pub account: String,
    /// The event key.
    pub event_key: String,
    /// The index of the action in the decision.
    pub action_index: i64,
    /// The rule that planned it.
    pub rule: Option<String>,
    /// `private_reply`, `public_reply`, `send_dm`, `webhook`.
    pub kind: String,
    /// The person (or comment author) it is for.
    pub recipient: String,
    /// The `PlannedAction` as JSON.
    pub action: String,
}

/// Inserts an action unless its key exists; `true` if new.
pub async fn insert(tx: &mut Tx, row: &NewAction, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO outbox (key, account, event_key, action_index, rule, kind, recipient, action, \
         status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $9, $9) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&row.key)
    .bind(&row.account)
    .bind(&row.event_key)
    .bind(row.action_index)
    .bind(&row.rule)
    .bind(&row.kind)
    .bind(&row.recipient)
    .bind(&row.action)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts actions in multi-row statements, skipping keys that exist; the keys inserted.
pub async fn insert_many(tx: &mut Tx, rows: &[NewAction], now: i64) -> Result<Vec<String>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Vec<Param>> = rows
        .iter()
        .map(|r| {
            vec![
                Param::from(&r.key),
                Param::from(&r.account),
                Param::from(&r.event_key),
                Param::from(r.action_index),
                Param::from(r.rule.clone()),
                Param::from(&r.kind),
                Param::from(&r.recipient),
                Param::from(&r.action),
                Param::from(QUEUED),
                Param::from(0),
                Param::from(now),
                Param::from(now),
                Param::from(now),
            ]
        })
        .collect();
    rows::insert_returning(
        tx,
        "INSERT INTO outbox (key, account, event_key, action_index, rule, kind, recipient, action, \
         status, attempts, next_attempt_at, created_at, updated_at)",
        13,
        &values,
        "ON CONFLICT (key) DO NOTHING RETURNING key",
    )
    .await
}

/// A claimed outbox row.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its key.
    pub key: String,
    /// The account.
    pub account: String,
    /// The rule.
    pub rule: Option<String>,
    /// The kind.
    pub kind: String,
    /// The recipient.
    pub recipient: String,
    /// The `PlannedAction` JSON.
    pub action: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the webhook that caused it was received (Unix ms), when known.
    pub received_at: Option<i64>,
}

fn claimed(r: &AnyRow) -> Result<Claimed> {
    Ok(Claimed {
        key: r.try_get("key")?,
        account: r.try_get("account")?,
        rule: r.try_get("rule")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        action: r.try_get("action")?,
        attempts: r.try_get("attempts")?,
        received_at: r.try_get("received_at")?,
    })
}

/// How long an account's send lease must still run for its rows to be claimed (Unix ms): the
/// claimed rows are sent within this time, before the owner stops calling.
pub const CLAIM_LEASE_MARGIN_MS: i64 = 2_500;

/// Claims up to `limit` due rows of active accounts. With `instance`, only rows of accounts whose
/// sending that instance owns (`account_leases`: sending allowed now, lease running at least
/// [`CLAIM_LEASE_MARGIN_MS`] more); rows locked by another claimer are skipped
/// (`FOR UPDATE SKIP LOCKED`, PostgreSQL). On PostgreSQL the rows are picked in a materialized
/// CTE: a `LIMIT` subquery inside `IN (...)` may be evaluated more than once and claim more rows
/// than the limit.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    instance: Option<&str>,
) -> Result<Vec<Claimed>> {
    // An idle poll finds nothing due: a read answers it without a write transaction.
    if !db
        .finds(
            "SELECT 1 FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
            now,
        )
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    let sql = match (db.backend(), instance) {
        (Backend::Sqlite, _) => {
            "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
             WHERE status = 'queued' AND (lease_until IS NULL OR lease_until < $3) AND key IN \
             (SELECT o.key FROM outbox o JOIN accounts a ON a.id = o.account \
              WHERE o.status = 'queued' AND o.next_attempt_at <= $3 AND a.status = 'active' \
              AND (o.lease_until IS NULL OR o.lease_until < $3) \
              ORDER BY o.next_attempt_at, o.created_at LIMIT $4)"
        }
        (Backend::Postgres, None) => {
            "WITH picked AS MATERIALIZED (SELECT o.key FROM outbox o JOIN accounts a ON a.id = o.account \
              WHERE o.status = 'queued' AND o.next_attempt_at <= $3 AND a.status = 'active' \
              AND (o.lease_until IS NULL OR o.lease_until < $3) \
              ORDER BY o.next_attempt_at, o.created_at LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE outbox SET lease_owner = $1, lease_until = $2 FROM picked \
             WHERE outbox.key = picked.key"
        }
        (Backend::Postgres, Some(_)) => {
            "WITH picked AS MATERIALIZED (SELECT o.key FROM outbox o JOIN accounts a ON a.id = o.account \
              JOIN account_leases l ON l.account = o.account \
              WHERE o.status = 'queued' AND o.next_attempt_at <= $3 AND a.status = 'active' \
              AND (o.lease_until IS NULL OR o.lease_until < $3) \
              AND l.owner = $5 AND l.sends_from <= $3 AND l.lease_until > $6 \
              ORDER BY o.next_attempt_at, o.created_at LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE outbox SET lease_owner = $1, lease_until = $2 FROM picked \
             WHERE outbox.key = picked.key"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit);
    if let (Backend::Postgres, Some(instance)) = (db.backend(), instance) {
        query = query.bind(instance).bind(now + CLAIM_LEASE_MARGIN_MS);
    }
    query.execute(&mut *tx).await?;
    let rows = sqlx::query(
        "SELECT key, account, rule, kind, recipient, action, attempts, \
         (SELECT i.received_at FROM events e JOIN inbox i ON i.id = e.inbox_id \
          WHERE e.account = outbox.account AND e.key = outbox.event_key) AS received_at \
         FROM outbox WHERE lease_owner = $1 AND status = 'queued' ORDER BY created_at",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(claimed).collect()
}

/// Records the attempt before the call: `queued` -> `sending`, attempts + 1, if `owner` still
/// holds the lease. Committed before the Graph API is called.
/// The lease is extended to `lease_until`, beyond the call's timeout.
pub async fn mark_sending(
    tx: &mut Tx,
    key: &str,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = $1, lease_until = $4 \
         WHERE key = $2 AND lease_owner = $3 AND status = 'queued'",
    )
    .bind(now)
    .bind(key)
    .bind(owner)
    .bind(lease_until)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_sending`] for many rows in one statement; the keys marked (those `owner` still held).
pub async fn mark_sending_many(
    tx: &mut Tx,
    keys: &[&str],
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<std::collections::HashSet<String>> {
    let mut marked = std::collections::HashSet::new();
    // by key, not by walking every queued row (`outbox_due`)
    let table = super::indexed_by(tx.backend(), "outbox", "sqlite_autoindex_outbox_1");
    for chunk in keys.chunks(1000) {
        let sql = format!(
            "UPDATE {table} SET status = 'sending', attempts = attempts + 1, updated_at = $1, \
             lease_until = $2 WHERE lease_owner = $3 AND status = 'queued' AND key IN ({}) RETURNING key",
            rows::placeholders(4, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(lease_until)
            .bind(owner);
        for key in chunk {
            query = query.bind(*key);
        }
        marked.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(marked)
}

/// `sending` -> `sent`.
pub async fn mark_sent(tx: &mut Tx, key: &str, mid: Option<&str>, now: i64) -> Result<()> {
    mark_sent_many(tx, &[(key, mid)], now).await
}

/// [`mark_sent`] for several rows ((key, mid) pairs), a few hundred per statement.
pub async fn mark_sent_many(tx: &mut Tx, sent: &[(&str, Option<&str>)], now: i64) -> Result<()> {
    for chunk in sent.chunks(500) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE outbox SET status = 'sent', mid = v.column2, sent_at = $1, updated_at = $1, \
             lease_owner = NULL, lease_until = NULL, error_kind = NULL, error_message = NULL \
             FROM (VALUES {values}) AS v WHERE outbox.key = v.column1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for (key, mid) in chunk {
            query = query.bind(*key).bind(*mid);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Back to `queued` (a retry at `next_attempt_at`, or held until the account reconnects), with
/// the error of the last attempt. `undo_attempt` gives the attempt back (nothing was sent).
pub async fn requeue(
    tx: &mut Tx,
    key: &str,
    next_attempt_at: i64,
    error: Option<(&str, &str)>,
    undo_attempt: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'queued', next_attempt_at = $1, lease_owner = NULL, \
         lease_until = NULL, error_kind = $2, error_message = $3, updated_at = $4, \
         attempts = attempts - $5 WHERE key = $6",
    )
    .bind(next_attempt_at)
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .bind(now)
    .bind(i64::from(undo_attempt))
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// -> `failed` with the error.
pub async fn mark_failed(
    tx: &mut Tx,
    key: &str,
    kind: &str,
    message: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'failed', error_kind = $1, error_message = $2, updated_at = $3, \
         lease_owner = NULL, lease_until = NULL WHERE key = $4",
    )
    .bind(kind)
    .bind(message)
    .bind(now)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows left in `sending` whose lease expired: a worker died between recording the attempt and
/// recording its outcome. They may have been delivered, so they are failed as ambiguous, never
/// re-sent. Returns their keys, accounts, rules and kinds.
pub async fn fail_abandoned(
    db: &Db,
    now: i64,
) -> Result<Vec<(String, String, Option<String>, String, i64)>> {
    // Nearly always none: a read answers without a write transaction.
    if !db
        .finds(
            "SELECT 1 FROM outbox WHERE status = 'sending' AND lease_until IS NOT NULL \
             AND lease_until < $1 LIMIT 1",
            now,
        )
        .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    // On PostgreSQL another instance may be failing the same rows: each takes the ones it locked.
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT key, account, rule, kind, attempts FROM outbox WHERE status = 'sending' \
             AND lease_until IS NOT NULL AND lease_until < $1"
        }
        Backend::Postgres => {
            "SELECT key, account, rule, kind, attempts FROM outbox WHERE status = 'sending' \
             AND lease_until IS NOT NULL AND lease_until < $1 FOR UPDATE SKIP LOCKED"
        }
    };
    let rows = sqlx::query(sql).bind(now).fetch_all(&mut *tx).await?;
    let mut out = Vec::new();
    for r in &rows {
        let key: String = r.try_get("key")?;
        mark_failed(
            &mut tx,
            &key,
            "ambiguous",
            "the worker stopped during the call; it may have been delivered, so it is not re-sent",
            now,
        )
        .await?;
        out.push((
            key,
            r.try_get("account")?,
            r.try_get("rule")?,
            r.try_get("kind")?,
            r.try_get("attempts")?,
        ));
    }
    tx.commit().await?;
    Ok(out)
}

/// The row a status change applied to: its key, rule and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The outbox key.
    pub key: String,
    /// The rule that planned it.
    pub rule: Option<String>,
    /// The action kind.
    pub kind: String,
}

fn changed(rows: Vec<AnyRow>) -> Result<Vec<Changed>> {
    rows.iter()
        .map(|r| {
            Ok(Changed {
                key: r.try_get("key")?,
                rule: r.try_get("rule")?,
                kind: r.try_get("kind")?,
            })
        })
        .collect()
}

/// Marks the rows of a batch's echoes ((account, mid) pairs) `delivered`, where they were
/// `sent`, in one statement per few hundred: the rows that changed, with their accounts and
/// message ids.
pub async fn mark_delivered_many(
    tx: &mut Tx,
    echoes: &[(&str, &str)],
    now: i64,
) -> Result<Vec<(String, String, Changed)>> {
    let mut out = Vec::new();
    // Not by `outbox_due`: that walks every `sent` row once per echo (a batch's update took
    // 20 ms with thousands of sends waiting for their echoes).
    let table = super::indexed_by(tx.backend(), "outbox", "outbox_mid");
    for chunk in echoes.chunks(500) {
        // `now` is a number made here, written into the text (the values list is bound).
        let sql = rows::values_sql(
            &format!("UPDATE {table} SET status = 'delivered', updated_at = {now} FROM ("),
            2,
            chunk.len(),
            ") AS v WHERE outbox.account = v.column1 AND outbox.mid = v.column2 \
             AND outbox.status = 'sent' \
             RETURNING outbox.key, outbox.rule, outbox.kind, outbox.account, outbox.mid",
            tx.backend(),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (account, mid) in chunk {
            query = query.bind(*account).bind(*mid);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let account: String = row.try_get("account")?;
            let mid: String = row.try_get("mid")?;
            if let Some(c) = changed(vec![row])?.pop() {
                out.push((account, mid, c));
            }
        }
    }
    Ok(out)
}

/// The outbox rows that may have sent each of a batch's outbound messages ((account, recipient,
/// mid), from echoes), by (account, mid): the row carrying that message id, else the rows of
/// sends to that person in flight (an echo can arrive before the Send API answers and the
/// message id is stored). Empty for a message this service did not send. Two statements per
/// few hundred messages.
pub async fn echo_sources(
    tx: &mut Tx,
    echoes: &[(&str, &str, &str)],
) -> Result<HashMap<(String, String), Vec<String>>> {
    let mids: Vec<(&str, &str)> = echoes.iter().map(|(a, _, m)| (*a, *m)).collect();
    let mut sources: HashMap<(String, String), Vec<String>> = HashMap::new();
    for row in rows::select_pairs(
        tx,
        "outbox",
        ("account", "mid"),
        "t.account, t.mid, t.key",
        &mids,
    )
    .await?
    {
        let mid: Option<String> = row.try_get("mid")?;
        if let Some(mid) = mid {
            sources.insert((row.try_get("account")?, mid), vec![row.try_get("key")?]);
        }
    }
    let rest: Vec<(&str, &str)> = echoes
        .iter()
        .filter(|(a, _, m)| !sources.contains_key(&((*a).to_owned(), (*m).to_owned())))
        .map(|(a, r, _)| (*a, *r))
        .collect();
    let mut sending: HashMap<(String, String), Vec<String>> = HashMap::new();
    for row in rows::select_pairs(
        tx,
        "outbox",
        ("account", "recipient"),
        "t.account, t.recipient, t.key, t.status",
        &rest,
    )
    .await?
    {
        if row.try_get::<String, _>("status")? == "sending" {
            sending
                .entry((row.try_get("account")?, row.try_get("recipient")?))
                .or_default()
                .push(row.try_get("key")?);
        }
    }
    for (account, recipient, mid) in echoes {
        let known = ((*account).to_owned(), (*mid).to_owned());
        if sources.contains_key(&known) {
            continue;
        }
        let in_flight = sending
            .get(&((*account).to_owned(), (*recipient).to_owned()))
            .cloned()
            .unwrap_or_default();
        sources.insert(known, in_flight);
    }
    Ok(sources)
}

/// Marks as read the messages to `recipient` sent up to `until` (Unix ms); the rows changed.
pub async fn mark_read(
    tx: &mut Tx,
    account: &str,
    recipient: &str,
    until: i64,
    now: i64,
) -> Result<Vec<Changed>> {
    let rows = sqlx::query(
        "UPDATE outbox SET status = 'read', updated_at = $1 WHERE account = $2 AND recipient = $3 \
         AND status IN ('sent', 'delivered') AND sent_at <= $4 RETURNING key, rule, kind",
    )
    .bind(now)
    .bind(account)
    .bind(recipient)
    .bind(until)
    .fetch_all(&mut **tx)
    .await?;
    changed(rows)
}

/// The sent time of the row with `mid`.
pub async fn sent_at_of(tx: &mut Tx, account: &str, mid: &str) -> Result<Option<i64>> {
    let v: Option<Option<i64>> =
        sqlx::query_scalar("SELECT sent_at FROM outbox WHERE account = $1 AND mid = $2")
            .bind(account)
            .bind(mid)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(v.flatten())
}

/// Rows by status.
pub async fn count(db: &Db, status: &str) -> Result<i64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = $1")
        .bind(status)
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}
