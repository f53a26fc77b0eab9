//! The `service_instances` and `account_leases` tables: which instance sends for which account
//! when several instances share one PostgreSQL database (see `pipeline::ownership`).

use sqlx::Row;

use super::{Db, Result};

/// An account's sending held by an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The account.
    pub account: String,
    /// Until when (Unix ms); the owner stops calling before this.
    pub lease_until: i64,
    /// From when the owner may call (Unix ms).
    pub sends_from: i64,
}

/// Records that `instance` is alive at `now` (started at `started_at`), and forgets instances
/// not seen since `forget_before`.
pub async fn heartbeat(
    db: &Db,
    instance: &str,
    started_at: i64,
    now: i64,
    forget_before: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO service_instances (id, started_at, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(instance)
    .bind(started_at)
    .bind(now)
    .execute(db.pool())
    .await?;
    sqlx::query("DELETE FROM service_instances WHERE seen_at < $1")
        .bind(forget_before)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Instances seen since `since` (at least 1: the caller).
pub async fn live_instances(db: &Db, since: i64) -> Result<i64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM service_instances WHERE seen_at >= $1")
        .bind(since)
        .fetch_one(db.pool())
        .await?;
    Ok(n.max(1))
}

/// Accounts that can send (status `active`), by id.
pub async fn active_accounts(db: &Db) -> Result<Vec<String>> {
    let ids = sqlx::query_scalar("SELECT id FROM accounts WHERE status = 'active' ORDER BY id")
        .fetch_all(db.pool())
        .await?;
    Ok(ids)
}

/// The leases `instance` holds that have not expired at `now`, by account.
pub async fn held(db: &Db, instance: &str, now: i64) -> Result<Vec<Lease>> {
    let rows = sqlx::query(
        "SELECT account, lease_until, sends_from FROM account_leases \
         WHERE owner = $1 AND lease_until >= $2 ORDER BY account",
    )
    .bind(instance)
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Lease {
                account: r.try_get("account")?,
                lease_until: r.try_get("lease_until")?,
                sends_from: r.try_get("sends_from")?,
            })
        })
        .collect()
}

/// Active accounts whose sending nobody holds at `now` (no lease, or an expired one), by id, each
/// with whether it was ever held (an account never sent for needs no wait).
pub async fn free_accounts(db: &Db, now: i64) -> Result<Vec<(String, bool)>> {
    let rows = sqlx::query(
        "SELECT a.id, l.lease_until FROM accounts a \
         LEFT JOIN account_leases l ON l.account = a.id \
         WHERE a.status = 'active' AND (l.account IS NULL OR l.lease_until < $1) ORDER BY a.id",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let held_until: Option<i64> = r.try_get("lease_until")?;
            Ok((r.try_get("id")?, held_until.is_some()))
        })
        .collect()
}

/// Takes `account` for `instance` if nobody holds it at `now`; `true` if taken. The new owner
/// may call from `sends_from`.
pub async fn acquire(
    db: &Db,
    account: &str,
    instance: &str,
    now: i64,
    lease_until: i64,
    sends_from: i64,
) -> Result<bool> {
    // On PostgreSQL a concurrent taker waits for the row lock, then re-checks the condition
    // against the new row: only one of them takes the account.
    let done = sqlx::query(
        "INSERT INTO account_leases (account, owner, lease_until, sends_from, acquired_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account) DO UPDATE SET owner = excluded.owner, \
         lease_until = excluded.lease_until, sends_from = excluded.sends_from, \
         acquired_at = excluded.acquired_at WHERE account_leases.lease_until < $5",
    )
    .bind(account)
    .bind(instance)
    .bind(lease_until)
    .bind(sends_from)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends `instance`'s unexpired lease on `account` to `lease_until`; `false` if it no longer
/// holds it.
pub async fn renew(
    db: &Db,
    account: &str,
    instance: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE account_leases SET lease_until = $1 \
         WHERE account = $2 AND owner = $3 AND lease_until >= $4",
    )
    .bind(lease_until)
    .bind(account)
    .bind(instance)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Shortens `instance`'s lease on `account` to end by `until` (a handover: calls already
/// admitted finish, then another instance takes over).
pub async fn shorten(db: &Db, account: &str, instance: &str, until: i64) -> Result<()> {
    sqlx::query(
        "UPDATE account_leases SET lease_until = $1 \
         WHERE account = $2 AND owner = $3 AND lease_until > $1",
    )
    .bind(until)
    .bind(account)
    .bind(instance)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Gives up every lease of `instance` at `now` and its heartbeat (at shutdown, when no call is in
/// flight). The leases stay on record as expired, so the next owner still waits one window.
pub async fn release_all(db: &Db, instance: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE account_leases SET lease_until = $1 WHERE owner = $2 AND lease_until > $1")
        .bind(now - 1)
        .bind(instance)
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM service_instances WHERE id = $1")
        .bind(instance)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// When `account`'s private replies were attempted since `since` (Unix ms): calls another
/// instance may have made, for the new owner's rate limiter.
pub async fn private_replies_since(db: &Db, account: &str, since: i64) -> Result<Vec<i64>> {
    let at = sqlx::query_scalar(
        "SELECT at FROM delivery_log WHERE account = $1 AND kind = 'private_reply' \
         AND status IN ('sent', 'retry', 'failed') AND at >= $2 ORDER BY at",
    )
    .bind(account)
    .bind(since)
    .fetch_all(db.pool())
    .await?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_db;
    use super::*;

    async fn account(db: &Db, id: &str) {
        sqlx::query(
            "INSERT INTO accounts (id, token_sealed, status, connected_at, updated_at) \
             VALUES ($1, 'sealed', 'active', 0, 0)",
        )
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn one_owner_at_a_time_and_handover_after_expiry() {
        let t = temp_db().await;
        account(&t.db, "A").await;
        account(&t.db, "B").await;
        let never = |ids: &[&str]| {
            ids.iter()
                .map(|i| (i.to_string(), false))
                .collect::<Vec<_>>()
        };
        assert_eq!(free_accounts(&t.db, 0).await.unwrap(), never(&["A", "B"]));
        assert!(acquire(&t.db, "A", "i1", 100, 1_000, 1_350).await.unwrap());
        // held: nobody else takes it before it expires, even by a race
        assert!(!acquire(&t.db, "A", "i2", 500, 1_500, 1_850).await.unwrap());
        assert_eq!(free_accounts(&t.db, 500).await.unwrap(), never(&["B"]));
        assert!(renew(&t.db, "A", "i1", 900, 2_000).await.unwrap());
        assert!(!renew(&t.db, "A", "i2", 900, 2_000).await.unwrap());
        let held_1 = held(&t.db, "i1", 1_500).await.unwrap();
        assert_eq!(
            held_1,
            [Lease {
                account: "A".into(),
                lease_until: 2_000,
                sends_from: 1_350
            }]
        );
        // a handover: shortened, then expired, then taken by the other instance
        shorten(&t.db, "A", "i1", 1_600).await.unwrap();
        assert!(!acquire(&t.db, "A", "i2", 1_600, 3_000, 2_850)
            .await
            .unwrap());
        assert!(acquire(&t.db, "A", "i2", 1_601, 3_000, 2_851)
            .await
            .unwrap());
        // the old owner can neither renew nor see it any more
        assert!(!renew(&t.db, "A", "i1", 1_700, 4_000).await.unwrap());
        assert!(held(&t.db, "i1", 1_700).await.unwrap().is_empty());
        heartbeat(&t.db, "i1", 0, 1_700, 0).await.unwrap();
        heartbeat(&t.db, "i2", 0, 1_000, 0).await.unwrap();
        assert_eq!(live_instances(&t.db, 1_500).await.unwrap(), 1);
        assert_eq!(live_instances(&t.db, 900).await.unwrap(), 2);
        release_all(&t.db, "i2", 1_700).await.unwrap();
        assert_eq!(
            free_accounts(&t.db, 1_700).await.unwrap(),
            [("A".to_string(), true), ("B".to_string(), false)]
        );
        assert_eq!(live_instances(&t.db, 0).await.unwrap(), 1);
    }
}
