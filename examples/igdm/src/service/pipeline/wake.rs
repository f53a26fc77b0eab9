//! The wake worker: resumes flows waiting on a delay (automation-core's `Wake` actions) when they
//! are due, writing the resumed flow's actions to the outbox in the same transaction.

use sqlx::Row;

use super::Shared;
use crate::service::db;
use crate::service::db::automation_store::TxStore;
use crate::service::error::Result;

/// Resumes the due flows; how many.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let owner = super::lease_owner("wake");
    let now = db::now_ms();
    let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000);
    // Most polls find nothing due: a read answers them without a write transaction.
    if !shared.db.finds(
        "SELECT 1 FROM wakes WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
        now,
    )
    .await?
    {
        return Ok(0);
    }
    let mut tx = shared.db.begin().await?;
    let sql = match shared.db.backend() {
        db::Backend::Sqlite => {
            "UPDATE wakes SET lease_owner = $1, lease_until = $2 WHERE due_at <= $3 \
             AND (lease_until IS NULL OR lease_until < $3)"
        }
        // Several instances: each claims the due rows the others have not locked.
        db::Backend::Postgres => {
            "WITH picked AS MATERIALIZED (SELECT account, contact FROM wakes WHERE due_at <= $3 \
              AND (lease_until IS NULL OR lease_until < $3) LIMIT 256 FOR UPDATE SKIP LOCKED) \
             UPDATE wakes SET lease_owner = $1, lease_until = $2 FROM picked \
             WHERE wakes.account = picked.account AND wakes.contact = picked.contact"
        }
    };
    sqlx::query(sql)
        .bind(&owner)
        .bind(now + lease)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query("SELECT account, contact FROM wakes WHERE lease_owner = $1 LIMIT 256")
        .bind(&owner)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let engine = shared.engine();
    let mut done = 0;
    for row in rows {
        let account: String = row.try_get("account")?;
        let contact: String = row.try_get("contact")?;
        let store = TxStore::new(shared.db.begin().await?);
        {
            let mut tx = store.tx().await;
            tx.lock_contact(&account, &contact).await?;
            let mine = sqlx::query(
                "DELETE FROM wakes WHERE account = $1 AND contact = $2 AND lease_owner = $3",
            )
            .bind(&account)
            .bind(&contact)
            .bind(&owner)
            .execute(&mut **tx)
            .await?;
            if mine.rows_affected() == 0 {
                continue;
            }
        }
        let now = db::now_ms();
        let decision = engine
            .wake(
                &store,
                &account,
                &contact,
                db::to_time(now),
                u64::try_from(now).unwrap_or(0),
            )
            .await?;
        let key = decision.event.clone();
        {
            let mut tx = store.tx().await;
            super::inbox::write_actions(&mut tx, &key, &decision, now).await?;
        }
        store.finish().await?.commit().await?;
        tracing::debug!(account, contact, reason = %decision.reason, "flow woken");
        done += 1;
    }
    Ok(done)
}
