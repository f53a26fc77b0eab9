//! The `inbox` table: raw webhook notifications, keyed by the SHA-256 of the body.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Backend, Db, Result, Tx};

/// A notification waiting to be processed.
pub const PENDING: &str = "pending";
/// A notification whose events were all processed.
pub const DONE: &str = "done";
/// A notification refused at the door (not JSON, no notification shape); kept for inspection.
pub const REJECTED: &str = "rejected";
/// A notification whose processing failed too often; kept with the reason.
pub const FAILED: &str = "failed";
/// Every status a notification can have (add a new one here).
pub const STATUSES: [&str; 4] = [PENDING, DONE, REJECTED, FAILED];

/// The dedup key of a body: hex SHA-256.
pub fn body_key(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// `body_key(body)`.
    pub id: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// [`PENDING`] or [`REJECTED`].
    pub status: &'static str,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// Inserts a notification unless its body was seen before; `true` if it was new.
pub async fn insert(tx: &mut Tx, row: &NewNotification) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO inbox (id, body, received_at, status, reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.body)
    .bind(row.received_at)
    .bind(row.status)
    .bind(&row.reason)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts notifications in multi-row statements (one round trip per 100 rows); for each row,
/// whether it was new. A body given twice counts as new only the first time.
pub async fn insert_many(tx: &mut Tx, rows: &[&NewNotification]) -> Result<Vec<bool>> {
    use std::collections::HashSet;
    use std::fmt::Write as _;
    let mut inserted: HashSet<String> = HashSet::new();
    for chunk in rows.chunks(100) {
        let mut sql =
            String::from("INSERT INTO inbox (id, body, received_at, status, reason) VALUES ");
        for i in 0..chunk.len() {
            let b = i * 5;
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(
                sql,
                "{sep}(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            );
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(&row.id)
                .bind(&row.body)
                .bind(row.received_at)
                .bind(row.status)
                .bind(&row.reason);
        }
        inserted.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(rows.iter().map(|r| inserted.remove(&r.id)).collect())
}

/// A claimed notification.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it was received (Unix ms).
    pub received_at: i64,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// Claims up to `limit` pending rows whose lease is free or expired, for `owner` until
/// `lease_until`.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    // An idle poll finds nothing: a read answers it without a write transaction.
    if !db.finds(
        "SELECT 1 FROM inbox WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
        now,
    )
    .await?
    {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    // On PostgreSQL several instances claim at once: rows another claimer has locked are
    // skipped rather than waited for. SQLite has one writer at a time.
    let sql = match db.backend() {
        Backend::Sqlite => {
            "UPDATE inbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $3) AND id IN \
             (SELECT id FROM inbox WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $3) \
              ORDER BY received_at LIMIT $4)"
        }
        Backend::Postgres => {
            "WITH picked AS MATERIALIZED (SELECT id FROM inbox WHERE status = 'pending' \
              AND (lease_until IS NULL OR lease_until < $3) \
              ORDER BY received_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE inbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             FROM picked WHERE inbox.id = picked.id"
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
        "SELECT id, body, received_at, attempts FROM inbox WHERE lease_owner = $1 AND status = 'pending' \
         ORDER BY received_at",
    )
    .bind(owner)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter().map(claimed).collect()
}

fn claimed(r: &sqlx::any::AnyRow) -> Result<Claimed> {
    Ok(Claimed {
        id: r.try_get("id")?,
        body: r.try_get("body")?,
        received_at: r.try_get("received_at")?,
        attempts: r.try_get("attempts")?,
    })
}

/// Up to `limit` of the oldest pending rows whose lease is free or expired, read without a
/// write transaction and without a lease, for a single worker that marks them finished in the
/// transaction that processes them ([`finish_many`] without an owner): SQLite's inbox worker
/// (one writer; a claim would cost a commit per batch). `attempts` counts this one: failures
/// are counted with [`count_failure`].
pub async fn pending(db: &Db, now: i64, limit: i64) -> Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "SELECT id, body, received_at, attempts + 1 AS attempts FROM inbox \
         WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $1) \
         ORDER BY received_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(claimed).collect()
}

/// Counts a failed attempt at a row read by [`pending`] (a claim counts its own).
pub async fn count_failure(tx: &mut Tx, id: &str) -> Result<()> {
    sqlx::query("UPDATE inbox SET attempts = attempts + 1 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a row processed (`done`, or `failed` with a reason) if it is still pending and, with
/// an `owner`, if that owner still holds its claim. `false` when it was not (another worker
/// took the row over or finished it).
pub async fn finish(
    tx: &mut Tx,
    id: &str,
    owner: Option<&str>,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    Ok(finish_many(tx, &[id], owner, status, reason, now).await? == 1)
}

/// Marks rows processed with one status and reason, where they are still pending and, with an
/// `owner`, where that owner still holds their claims; how many were marked (fewer than `ids`
/// when another worker took one over or finished it).
pub async fn finish_many(
    tx: &mut Tx,
    ids: &[&str],
    owner: Option<&str>,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<usize> {
    let mut marked = 0;
    // by id, not by walking every pending row (`inbox_pending`)
    let table = super::indexed_by(tx.backend(), "inbox", "sqlite_autoindex_inbox_1");
    for chunk in ids.chunks(1000) {
        let (held, first) = match owner {
            Some(_) => ("lease_owner = $4 AND ", 5),
            None => ("", 4),
        };
        let sql = format!(
            "UPDATE {table} SET status = $1, reason = $2, processed_at = $3, lease_owner = NULL, \
             lease_until = NULL WHERE {held}status = 'pending' AND id IN ({})",
            super::rows::placeholders(first, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status)
            .bind(reason)
            .bind(now);
        if let Some(owner) = owner {
            query = query.bind(owner);
        }
        for id in chunk {
            query = query.bind(*id);
        }
        let done = query.execute(&mut **tx).await?;
        marked += usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
    }
    Ok(marked)
}

/// Rows by status.
pub async fn count(db: &Db, status: &str) -> Result<i64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE status = $1")
        .bind(status)
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_db;
    use super::*;

    fn row(body: &[u8]) -> NewNotification {
        NewNotification {
            id: body_key(body),
            body: body.to_vec(),
            received_at: 1,
            status: PENDING,
            reason: None,
        }
    }

    #[tokio::test]
    async fn same_body_is_stored_once_and_claims_are_exclusive() {
        let t = temp_db().await;
        let mut tx = t.db.begin().await.unwrap();
        assert!(insert(&mut tx, &row(b"{}")).await.unwrap());
        assert!(!insert(&mut tx, &row(b"{}")).await.unwrap());
        assert!(insert(&mut tx, &row(b"[]")).await.unwrap());
        let (a, b, c) = (row(b"[]"), row(b"[1]"), row(b"[1]"));
        assert_eq!(
            insert_many(&mut tx, &[&a, &b, &c]).await.unwrap(),
            [false, true, false]
        );
        tx.commit().await.unwrap();
        let a = claim(&t.db, "a", 100, 200, 10).await.unwrap();
        assert_eq!(a.len(), 3);
        // leased: nobody else gets them before expiry
        assert!(claim(&t.db, "b", 150, 300, 10).await.unwrap().is_empty());
        // expired: taken over, and the old owner can no longer finish
        let b = claim(&t.db, "b", 201, 300, 1).await.unwrap();
        assert_eq!(b.len(), 1);
        let mut tx = t.db.begin().await.unwrap();
        assert!(!finish(&mut tx, &b[0].id, Some("a"), DONE, None, 202)
            .await
            .unwrap());
        assert!(finish(&mut tx, &b[0].id, Some("b"), DONE, None, 202)
            .await
            .unwrap());
        tx.commit().await.unwrap();
        assert_eq!(count(&t.db, DONE).await.unwrap(), 1);
        assert_eq!(count(&t.db, PENDING).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn pending_rows_are_read_oldest_first_and_finished_once_without_a_claim() {
        let t = temp_db().await;
        let mut tx = t.db.begin().await.unwrap();
        for (i, body) in [b"[3]", b"[1]", b"[2]"].iter().enumerate() {
            let mut r = row(*body);
            r.received_at = [30, 10, 20][i];
            assert!(insert(&mut tx, &r).await.unwrap());
        }
        tx.commit().await.unwrap();
        let read = pending(&t.db, 100, 2).await.unwrap();
        let ids: Vec<&str> = read.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [body_key(b"[1]"), body_key(b"[2]")]);
        assert!(read.iter().all(|r| r.attempts == 1), "this read counts");
        // a failure is counted on the row; the next read sees it
        let mut tx = t.db.begin().await.unwrap();
        count_failure(&mut tx, &read[0].id).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(pending(&t.db, 100, 1).await.unwrap()[0].attempts, 2);
        // finished once: a second worker finishing the same rows finishes none
        let mut tx = t.db.begin().await.unwrap();
        assert_eq!(
            finish_many(&mut tx, &ids, None, DONE, None, 101)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            finish_many(&mut tx, &ids, None, DONE, None, 102)
                .await
                .unwrap(),
            0
        );
        tx.commit().await.unwrap();
        let left = pending(&t.db, 100, 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, body_key(b"[3]"));
        // a row claimed by a PostgreSQL-style worker is not read until its lease expires
        claim(&t.db, "w", 100, 200, 10).await.unwrap();
        assert!(pending(&t.db, 150, 10).await.unwrap().is_empty());
        assert_eq!(pending(&t.db, 201, 10).await.unwrap().len(), 1);
    }
}
