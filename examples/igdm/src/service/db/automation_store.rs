//! automation-core's store traits on SQL, inside one transaction: the engine's reads and writes
//! for an event commit (or roll back) together with the event's outbox rows.

use async_trait::async_trait;
use automation_core::flow::{FlowEvent, FlowState};
use automation_core::store::{ContactStore, DedupStore, FiringStore, FlowStore};
use automation_core::{Contact, Error as CoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::Mutex;

use super::Tx;

type CoreResult<T> = automation_core::Result<T>;

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> CoreError {
    CoreError::store(e)
}

/// automation-core's [`Store`](automation_core::Store) over one open transaction.
pub struct TxStore {
    tx: Mutex<Tx>,
}

impl std::fmt::Debug for TxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxStore")
    }
}

impl TxStore {
    /// Wraps a transaction.
    pub fn new(tx: Tx) -> Self {
        Self { tx: Mutex::new(tx) }
    }

    /// The transaction, to write more rows in it.
    pub async fn tx(&self) -> tokio::sync::MutexGuard<'_, Tx> {
        self.tx.lock().await
    }

    /// The transaction back, to commit it.
    pub fn into_inner(self) -> Tx {
        self.tx.into_inner()
    }
}

#[async_trait]
impl ContactStore for TxStore {
    async fn contact(&self, account: &str, id: &str) -> CoreResult<Option<Contact>> {
        let mut tx = self.tx.lock().await;
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(store_err)?;
        body.map(|b| serde_json::from_str(&b).map_err(store_err))
            .transpose()
    }

    async fn put_contact(&self, contact: Contact) -> CoreResult<()> {
        let body = serde_json::to_string(&contact).map_err(store_err)?;
        let mut tx = self.tx.lock().await;
        sqlx::query(
            "INSERT INTO contacts (account, id, username, body, last_interaction) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account, id) DO UPDATE SET username = excluded.username, body = excluded.body, \
             last_interaction = excluded.last_interaction",
        )
        .bind(&contact.account)
        .bind(&contact.id)
        .bind(&contact.username)
        .bind(body)
        .bind(contact.last_interaction.timestamp_millis())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(())
    }
}

#[async_trait]
impl DedupStore for TxStore {
    async fn claim(&self, account: &str, key: &str, at: DateTime<Utc>) -> CoreResult<bool> {
        let mut tx = self.tx.lock().await;
        let done = sqlx::query(
            "INSERT INTO dedup_keys (account, key, at) VALUES ($1, $2, $3) ON CONFLICT (account, key) DO NOTHING",
        )
        .bind(account)
        .bind(key)
        .bind(at.timestamp_millis())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_claimed(&self, account: &str, key: &str) -> CoreResult<bool> {
        let mut tx = self.tx.lock().await;
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM dedup_keys WHERE account = $1 AND key = $2")
                .bind(account)
                .bind(key)
                .fetch_one(&mut **tx)
                .await
                .map_err(store_err)?;
        Ok(n > 0)
    }
}

#[async_trait]
impl FiringStore for TxStore {
    async fn last_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
    ) -> CoreResult<Option<DateTime<Utc>>> {
        let mut tx = self.tx.lock().await;
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT at FROM firings WHERE account = $1 AND rule = $2 AND contact = $3",
        )
        .bind(account)
        .bind(rule)
        .bind(contact)
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(at.map(super::to_time))
    }

    async fn record_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
        at: DateTime<Utc>,
    ) -> CoreResult<()> {
        let mut tx = self.tx.lock().await;
        sqlx::query(
            "INSERT INTO firings (account, rule, contact, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account, rule, contact) DO UPDATE SET at = excluded.at",
        )
        .bind(account)
        .bind(rule)
        .bind(contact)
        .bind(at.timestamp_millis())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn count(&self, account: &str, key: &str, window: DateTime<Utc>) -> CoreResult<u64> {
        let mut tx = self.tx.lock().await;
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT value FROM counters WHERE account = $1 AND key = $2 AND window_start = $3",
        )
        .bind(account)
        .bind(key)
        .bind(window.timestamp_millis())
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    async fn increment(&self, account: &str, key: &str, window: DateTime<Utc>) -> CoreResult<u64> {
        let mut tx = self.tx.lock().await;
        sqlx::query(
            "INSERT INTO counters (account, key, window_start, value) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (account, key, window_start) DO UPDATE SET value = counters.value + 1",
        )
        .bind(account)
        .bind(key)
        .bind(window.timestamp_millis())
        .execute(&mut **tx)
        .await
        .map_err(store_err)?;
        let v: i64 = sqlx::query_scalar(
            "SELECT value FROM counters WHERE account = $1 AND key = $2 AND window_start = $3",
        )
        .bind(account)
        .bind(key)
        .bind(window.timestamp_millis())
        .fetch_one(&mut **tx)
        .await
        .map_err(store_err)?;
        Ok(u64::try_from(v).unwrap_or(0))
    }
}

#[async_trait]
impl FlowStore for TxStore {
    async fn flow_state(&self, account: &str, contact: &str) -> CoreResult<Option<FlowState>> {
        let mut tx = self.tx.lock().await;
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM flow_states WHERE account = $1 AND contact = $2")
                .bind(account)
                .bind(contact)
                .fetch_optional(&mut **tx)
                .await
                .map_err(store_err)?;
        body.map(|b| serde_json::from_str(&b).map_err(store_err))
            .transpose()
    }

    async fn put_flow_state(
        &self,
        account: &str,
        contact: &str,
        state: Option<FlowState>,
    ) -> CoreResult<()> {
        let mut tx = self.tx.lock().await;
        match state {
            Some(state) => {
                let body = serde_json::to_string(&state).map_err(store_err)?;
                sqlx::query(
                    "INSERT INTO flow_states (account, contact, body) VALUES ($1, $2, $3) \
                     ON CONFLICT (account, contact) DO UPDATE SET body = excluded.body",
                )
                .bind(account)
                .bind(contact)
                .bind(body)
                .execute(&mut **tx)
                .await
                .map_err(store_err)?;
            }
            None => {
                sqlx::query("DELETE FROM flow_states WHERE account = $1 AND contact = $2")
                    .bind(account)
                    .bind(contact)
                    .execute(&mut **tx)
                    .await
                    .map_err(store_err)?;
            }
        }
        Ok(())
    }

    async fn record_flow_events(&self, events: &[FlowEvent]) -> CoreResult<()> {
        let mut tx = self.tx.lock().await;
        for event in events {
            let body = serde_json::to_value(event).map_err(store_err)?;
            let account = body
                .get("account")
                .and_then(|a| a.as_str())
                .unwrap_or_default()
                .to_string();
            sqlx::query("INSERT INTO flow_events (account, body, at) VALUES ($1, $2, $3)")
                .bind(account)
                .bind(body.to_string())
                .bind(super::now_ms())
                .execute(&mut **tx)
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }
}

/// Reads a contact outside the pipeline (management API).
pub async fn contacts(db: &super::Db, account: &str, limit: i64) -> super::Result<Vec<Contact>> {
    contacts_on(&mut *db.pool().acquire().await?, account, limit).await
}

/// [`contacts`] on one connection (e.g. a [`super::Db::read_as`] transaction).
pub async fn contacts_on(
    conn: &mut sqlx::AnyConnection,
    account: &str,
    limit: i64,
) -> super::Result<Vec<Contact>> {
    let rows = sqlx::query(
        "SELECT body FROM contacts WHERE account = $1 ORDER BY last_interaction DESC LIMIT $2",
    )
    .bind(account)
    .bind(limit.clamp(1, 1000))
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let body: String = r.try_get("body")?;
        if let Ok(c) = serde_json::from_str(&body) {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::temp_db;
    use super::*;
    use automation_core::{Engine, InboundEvent, Outcome, RuleSet, RulesFile};

    #[tokio::test]
    async fn engine_decides_once_per_event_on_sql() {
        let t = temp_db().await;
        let file = RulesFile::from_toml(
            r#"
account = "A"
[[rules]]
id = "link"
on = ["comment"]
match = { mode = "contains", keywords = ["link"] }
limits = { once_per_contact = true }
actions = [{ type = "private_reply", text = "here" }, { type = "add_tag", tag = "lead" }]
"#,
        )
        .unwrap();
        let engine = Engine::new(RuleSet::from_file(file).unwrap());
        let event: InboundEvent = serde_json::from_str(
            r#"{"id":"c1","account":"A","occurred_at":1700000000,"sender":{"id":"P"},
                "kind":{"type":"comment","comment_id":"c1","media_id":"m","text":"LINK"}}"#,
        )
        .unwrap();
        let now = event.occurred_at;
        let store = TxStore::new(t.db.begin().await.unwrap());
        let d = engine.decide(&store, &event, now, 1).await.unwrap();
        assert_eq!(d.outcome, Outcome::Fired);
        store.into_inner().commit().await.unwrap();

        let store = TxStore::new(t.db.begin().await.unwrap());
        let d = engine.decide(&store, &event, now, 1).await.unwrap();
        assert_eq!(d.outcome, Outcome::Duplicate);
        let contact = store.contact("A", "P").await.unwrap().unwrap();
        assert!(contact.tags.contains("lead"));
        // a second comment by the same person: once_per_contact holds on SQL too
        let mut again = event.clone();
        again.id = "c2".into();
        let d = engine.decide(&store, &again, now, 1).await.unwrap();
        assert_ne!(d.outcome, Outcome::Fired);
        store.into_inner().rollback().await.unwrap();
    }
}
