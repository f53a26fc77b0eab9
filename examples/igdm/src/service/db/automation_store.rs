//! automation-core's store traits on SQL, inside one transaction: the engine's reads and writes
//! for an event commit (or roll back) together with the event's outbox rows.
//!
//! Contacts and flow states are read once and written back when the transaction is finished
//! ([`TxStore::finish`]), in multi-row statements: the engine reads and rewrites a contact
//! several times per event, and a batch often holds several events of one person. A batch can
//! read its contacts, flow states and dedup keys up front ([`TxStore::prefetch`]); claims and
//! firings are then written at the finish too, so deciding an event costs no round trip to the
//! database.

use async_trait::async_trait;
use automation_core::flow::{FlowEvent, FlowState};
use automation_core::store::{ContactStore, DedupStore, FiringStore, FlowStore};
use automation_core::{Contact, Error as CoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::{HashMap, HashSet};

use tokio::sync::Mutex;

use super::rows::Param;
use super::Tx;

type CoreResult<T> = automation_core::Result<T>;

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> CoreError {
    CoreError::store(e)
}

/// automation-core's [`Store`](automation_core::Store) over one open transaction.
pub struct TxStore {
    tx: Mutex<Tx>,
    cache: std::sync::Mutex<Cache>,
}

type Key = (String, String);

/// What the transaction read and wrote of contacts and flow states; `None` = no row.
#[derive(Default)]
struct Cache {
    contacts: HashMap<Key, Option<Contact>>,
    dirty_contacts: HashSet<Key>,
    flows: HashMap<Key, Option<FlowState>>,
    dirty_flows: HashSet<Key>,
    /// Dedup keys known to be claimed (`true`) or free (`false`).
    dedup: HashMap<Key, bool>,
    /// Claims made through the cache, written at the finish: (account, key, at).
    claims: Vec<(String, String, i64)>,
    /// Dedup keys the caller records in a table of its own in this transaction: claimed in
    /// the cache only (no `dedup_keys` row).
    recorded_elsewhere: HashSet<Key>,
    /// Firings recorded, written at the finish: (account, rule, contact) -> at.
    firings: HashMap<(String, String, String), i64>,
}

fn key(account: &str, id: &str) -> Key {
    (account.to_owned(), id.to_owned())
}

impl std::fmt::Debug for TxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxStore")
    }
}

impl TxStore {
    /// Wraps a transaction.
    pub fn new(tx: Tx) -> Self {
        Self {
            tx: Mutex::new(tx),
            cache: std::sync::Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The transaction, to write more rows in it.
    pub async fn tx(&self) -> tokio::sync::MutexGuard<'_, Tx> {
        self.tx.lock().await
    }

    /// Rolls the transaction back, with every write made through this store.
    pub async fn rollback(self) -> super::Result<()> {
        self.tx.into_inner().rollback().await
    }

    /// Reads, in a few statements, the contacts and flow states of `contacts` ((account,
    /// contact) pairs) and whether each dedup key of `dedup` ((account, key) pairs) is claimed,
    /// so that the engine's reads of them need no round trip. On PostgreSQL the caller must
    /// hold the contacts' locks ([`Tx::lock_contacts`]) before, so that no other instance
    /// changes them until the commit.
    pub async fn prefetch(
        &self,
        contacts: &[(&str, &str)],
        dedup: &[(&str, &str)],
    ) -> super::Result<()> {
        let mut tx = self.tx.lock().await;
        let (mut found_contacts, mut found_flows, mut found_keys) =
            (HashMap::new(), HashMap::new(), HashSet::new());
        if !contacts.is_empty() {
            for row in super::rows::select_pairs(
                &mut tx,
                "contacts",
                ("account", "id"),
                "t.account, t.id, t.body",
                contacts,
            )
            .await?
            {
                let body: String = row.try_get("body")?;
                let contact: Contact = serde_json::from_str(&body).map_err(|e| {
                    super::Error::new(
                        super::ErrorKind::Database,
                        format!("a stored contact is unreadable: {e}"),
                    )
                })?;
                found_contacts.insert(
                    key(
                        &row.try_get::<String, _>("account")?,
                        &row.try_get::<String, _>("id")?,
                    ),
                    contact,
                );
            }
            for row in super::rows::select_pairs(
                &mut tx,
                "flow_states",
                ("account", "contact"),
                "t.account, t.contact, t.body",
                contacts,
            )
            .await?
            {
                let body: String = row.try_get("body")?;
                let state: FlowState = serde_json::from_str(&body).map_err(|e| {
                    super::Error::new(
                        super::ErrorKind::Database,
                        format!("a stored flow state is unreadable: {e}"),
                    )
                })?;
                found_flows.insert(
                    key(
                        &row.try_get::<String, _>("account")?,
                        &row.try_get::<String, _>("contact")?,
                    ),
                    state,
                );
            }
        }
        if !dedup.is_empty() {
            for row in super::rows::select_pairs(
                &mut tx,
                "dedup_keys",
                ("account", "key"),
                "t.account, t.key",
                dedup,
            )
            .await?
            {
                found_keys.insert(key(
                    &row.try_get::<String, _>("account")?,
                    &row.try_get::<String, _>("key")?,
                ));
            }
        }
        drop(tx);
        let mut cache = self.cache();
        for (account, id) in contacts {
            let k = key(account, id);
            let contact = found_contacts.remove(&k);
            cache.contacts.entry(k.clone()).or_insert(contact);
            let flow = found_flows.remove(&k);
            cache.flows.entry(k).or_insert(flow);
        }
        for (account, k) in dedup {
            let k = key(account, k);
            let claimed = found_keys.contains(&k);
            cache.dedup.entry(k).or_insert(claimed);
        }
        Ok(())
    }

    /// Dedup keys ((account, key, already recorded)) that the caller records itself, in this
    /// transaction, in a table keyed by them: the service's `events` rows record the engine's
    /// `event:<id>` claims, so a second `dedup_keys` row per event would only repeat them.
    /// The engine's claims of these keys are answered from `already recorded` and write
    /// nothing. On PostgreSQL the caller holds the contacts' locks, so no other instance
    /// records the same event meanwhile.
    pub fn claims_recorded_elsewhere(&self, keys: &[(&str, &str, bool)]) {
        let mut cache = self.cache();
        for (account, k, recorded) in keys {
            let k = key(account, k);
            cache.dedup.entry(k.clone()).or_insert(*recorded);
            cache.recorded_elsewhere.insert(k);
        }
    }

    /// Writes the contacts and flow states changed through this store (and the claims and
    /// firings made through its cache), and gives the transaction back, to commit it. Fails
    /// if a claim made through the cache was taken meanwhile by another transaction (the
    /// caller then rolls back).
    pub async fn finish(self) -> super::Result<Tx> {
        let cache = match self.cache.into_inner() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut tx = self.tx.into_inner();
        let claims: Vec<Vec<Param>> = cache
            .claims
            .iter()
            .map(|(a, k, at)| vec![Param::from(a), Param::from(k), Param::from(*at)])
            .collect();
        let claimed = super::rows::insert(
            &mut tx,
            "INSERT INTO dedup_keys (account, key, at)",
            3,
            &claims,
            "ON CONFLICT (account, key) DO NOTHING",
        )
        .await?;
        if claimed != claims.len() as u64 {
            return Err(super::Error::new(
                super::ErrorKind::Database,
                "an event was claimed by another worker during the batch; it is decided again",
            ));
        }
        let firings: Vec<Vec<Param>> = cache
            .firings
            .iter()
            .map(|((a, r, c), at)| {
                vec![
                    Param::from(a),
                    Param::from(r),
                    Param::from(c),
                    Param::from(*at),
                ]
            })
            .collect();
        super::rows::insert(
            &mut tx,
            "INSERT INTO firings (account, rule, contact, at)",
            4,
            &firings,
            "ON CONFLICT (account, rule, contact) DO UPDATE SET at = excluded.at",
        )
        .await?;
        let mut contacts = Vec::new();
        for k in &cache.dirty_contacts {
            if let Some(Some(c)) = cache.contacts.get(k) {
                let body = serde_json::to_string(c).map_err(|e| {
                    super::Error::new(
                        super::ErrorKind::Database,
                        format!("cannot encode a contact: {e}"),
                    )
                })?;
                contacts.push(vec![
                    Param::from(&c.account),
                    Param::from(&c.id),
                    Param::from(c.username.clone()),
                    Param::from(body),
                    Param::from(c.last_interaction.timestamp_millis()),
                ]);
            }
        }
        super::rows::insert(
            &mut tx,
            "INSERT INTO contacts (account, id, username, body, last_interaction)",
            5,
            &contacts,
            "ON CONFLICT (account, id) DO UPDATE SET username = excluded.username, \
             body = excluded.body, last_interaction = excluded.last_interaction",
        )
        .await?;
        let mut flows = Vec::new();
        for k in &cache.dirty_flows {
            match cache.flows.get(k) {
                Some(Some(state)) => {
                    let body = serde_json::to_string(state).map_err(|e| {
                        super::Error::new(
                            super::ErrorKind::Database,
                            format!("cannot encode a flow state: {e}"),
                        )
                    })?;
                    flows.push(vec![
                        Param::from(&k.0),
                        Param::from(&k.1),
                        Param::from(body),
                    ]);
                }
                _ => {
                    sqlx::query("DELETE FROM flow_states WHERE account = $1 AND contact = $2")
                        .bind(&k.0)
                        .bind(&k.1)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        super::rows::insert(
            &mut tx,
            "INSERT INTO flow_states (account, contact, body)",
            3,
            &flows,
            "ON CONFLICT (account, contact) DO UPDATE SET body = excluded.body",
        )
        .await?;
        Ok(tx)
    }
}

#[async_trait]
impl ContactStore for TxStore {
    async fn contact(&self, account: &str, id: &str) -> CoreResult<Option<Contact>> {
        if let Some(known) = self.cache().contacts.get(&key(account, id)) {
            return Ok(known.clone());
        }
        let mut tx = self.tx.lock().await;
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(store_err)?;
        let contact: Option<Contact> = body
            .map(|b| serde_json::from_str(&b).map_err(store_err))
            .transpose()?;
        self.cache()
            .contacts
            .insert(key(account, id), contact.clone());
        Ok(contact)
    }

    async fn put_contact(&self, contact: Contact) -> CoreResult<()> {
        let k = key(&contact.account, &contact.id);
        let mut cache = self.cache();
        cache.dirty_contacts.insert(k.clone());
        cache.contacts.insert(k, Some(contact));
        Ok(())
    }
}

#[async_trait]
impl DedupStore for TxStore {
    async fn claim(&self, account: &str, key: &str, at: DateTime<Utc>) -> CoreResult<bool> {
        {
            let mut cache = self.cache();
            let k = self::key(account, key);
            match cache.dedup.get(&k) {
                Some(true) => return Ok(false),
                Some(false) => {
                    if !cache.recorded_elsewhere.contains(&k) {
                        cache.claims.push((
                            account.to_owned(),
                            key.to_owned(),
                            at.timestamp_millis(),
                        ));
                    }
                    cache.dedup.insert(k, true);
                    return Ok(true);
                }
                None => {}
            }
        }
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
        self.cache().dedup.insert(self::key(account, key), true);
        Ok(done.rows_affected() == 1)
    }

    async fn is_claimed(&self, account: &str, key: &str) -> CoreResult<bool> {
        if let Some(known) = self.cache().dedup.get(&self::key(account, key)) {
            return Ok(*known);
        }
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
        let recorded = (account.to_owned(), rule.to_owned(), contact.to_owned());
        if let Some(at) = self.cache().firings.get(&recorded) {
            return Ok(Some(super::to_time(*at)));
        }
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
        // written at the finish, in one statement for the batch
        self.cache().firings.insert(
            (account.to_owned(), rule.to_owned(), contact.to_owned()),
            at.timestamp_millis(),
        );
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
        let v: i64 = sqlx::query_scalar(
            "INSERT INTO counters (account, key, window_start, value) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (account, key, window_start) DO UPDATE SET value = counters.value + 1 \
             RETURNING value",
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
        if let Some(known) = self.cache().flows.get(&key(account, contact)) {
            return Ok(known.clone());
        }
        let mut tx = self.tx.lock().await;
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM flow_states WHERE account = $1 AND contact = $2")
                .bind(account)
                .bind(contact)
                .fetch_optional(&mut **tx)
                .await
                .map_err(store_err)?;
        let state: Option<FlowState> = body
            .map(|b| serde_json::from_str(&b).map_err(store_err))
            .transpose()?;
        self.cache()
            .flows
            .insert(key(account, contact), state.clone());
        Ok(state)
    }

    async fn put_flow_state(
        &self,
        account: &str,
        contact: &str,
        state: Option<FlowState>,
    ) -> CoreResult<()> {
        let k = key(account, contact);
        let mut cache = self.cache();
        cache.dirty_flows.insert(k.clone());
        cache.flows.insert(k, state);
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
    async fn prefetched_reads_need_no_statement_and_claims_are_written_at_finish() {
        let t = temp_db().await;
        let mut tx = t.db.begin().await.unwrap();
        sqlx::query("INSERT INTO dedup_keys (account, key, at) VALUES ('A', 'event:old', 1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let contact = Contact::new("A", "P1", Utc::now());
        sqlx::query(
            "INSERT INTO contacts (account, id, username, body, last_interaction) \
             VALUES ('A', 'P1', NULL, $1, 1)",
        )
        .bind(serde_json::to_string(&contact).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
        let store = TxStore::new(tx);
        store
            .prefetch(
                &[("A", "P1"), ("A", "P2")],
                &[("A", "event:old"), ("A", "event:new")],
            )
            .await
            .unwrap();
        assert_eq!(store.contact("A", "P1").await.unwrap().unwrap().id, "P1");
        assert!(store.contact("A", "P2").await.unwrap().is_none());
        assert!(store.flow_state("A", "P1").await.unwrap().is_none());
        let now = Utc::now();
        assert!(!store.claim("A", "event:old", now).await.unwrap());
        assert!(store.claim("A", "event:new", now).await.unwrap());
        assert!(!store.claim("A", "event:new", now).await.unwrap());
        assert!(store.is_claimed("A", "event:new").await.unwrap());
        // a key that was not prefetched is claimed in the database at once
        assert!(store.claim("A", "event:other", now).await.unwrap());
        assert!(!store.claim("A", "event:other", now).await.unwrap());
        store.record_firing("A", "r1", "P1", now).await.unwrap();
        assert_eq!(
            store
                .last_firing("A", "r1", "P1")
                .await
                .unwrap()
                .map(|t| t.timestamp_millis()),
            Some(now.timestamp_millis())
        );
        {
            let mut tx = store.tx().await;
            let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dedup_keys")
                .fetch_one(&mut **tx)
                .await
                .unwrap();
            assert_eq!(keys, 2, "the cached claim waits for the finish");
        }
        let mut tx = store.finish().await.unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM dedup_keys ORDER BY key")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(keys, ["event:new", "event:old", "event:other"]);
        let firing: i64 = sqlx::query_scalar("SELECT at FROM firings WHERE rule = 'r1'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(firing, now.timestamp_millis());
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_prefetched_claim_taken_meanwhile_fails_the_finish() {
        let t = temp_db().await;
        let store = TxStore::new(t.db.begin().await.unwrap());
        store.prefetch(&[], &[("A", "event:1")]).await.unwrap();
        {
            // another writer took the key after the prefetch
            let mut tx = store.tx().await;
            sqlx::query("INSERT INTO dedup_keys (account, key, at) VALUES ('A', 'event:1', 1)")
                .execute(&mut **tx)
                .await
                .unwrap();
        }
        assert!(store.claim("A", "event:1", Utc::now()).await.unwrap());
        let err = store.finish().await.unwrap_err();
        assert!(
            err.to_string().contains("claimed by another worker"),
            "{err}"
        );
    }

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
        store.finish().await.unwrap().commit().await.unwrap();

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
        store.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn claims_recorded_elsewhere_are_answered_from_the_caller_and_write_no_row() {
        let t = temp_db().await;
        let store = TxStore::new(t.db.begin().await.unwrap());
        store.claims_recorded_elsewhere(&[("A", "event:new", false), ("A", "event:old", true)]);
        let at = Utc::now();
        assert!(
            store.claim("A", "event:new", at).await.unwrap(),
            "first claim"
        );
        assert!(
            !store.claim("A", "event:new", at).await.unwrap(),
            "claimed once"
        );
        assert!(
            !store.claim("A", "event:old", at).await.unwrap(),
            "recorded before"
        );
        // an ordinary key still gets its row
        assert!(store.claim("A", "private_reply:c1", at).await.unwrap());
        store.finish().await.unwrap().commit().await.unwrap();
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM dedup_keys ORDER BY key")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
        assert_eq!(keys, vec!["private_reply:c1".to_string()]);
    }

    #[tokio::test]
    async fn contacts_and_flow_states_are_written_back_at_finish_and_dropped_on_rollback() {
        let t = temp_db().await;
        let stored = |db: super::super::Db| async move {
            sqlx::query_scalar::<_, String>("SELECT body FROM contacts WHERE account = 'A'")
                .fetch_all(db.pool())
                .await
                .unwrap()
        };
        let store = TxStore::new(t.db.begin().await.unwrap());
        assert!(store.contact("A", "P").await.unwrap().is_none());
        let mut contact = Contact::new("A", "P", Utc::now());
        store.put_contact(contact.clone()).await.unwrap();
        contact.tags.insert("vip".into());
        store.put_contact(contact.clone()).await.unwrap();
        // read back inside the transaction: the latest write
        let seen = store.contact("A", "P").await.unwrap().unwrap();
        assert!(seen.tags.contains("vip"));
        let state: FlowState = serde_json::from_value(serde_json::json!({
            "flow": "f", "step": "s", "waiting": {"for": "reply"},
            "started_at": "2024-01-01T00:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("a flow state from JSON: {e}"));
        store
            .put_flow_state("A", "P", Some(state.clone()))
            .await
            .unwrap();
        store.finish().await.unwrap().commit().await.unwrap();
        let bodies = stored(t.db.clone()).await;
        assert_eq!(bodies.len(), 1, "one row for two writes");
        assert!(bodies[0].contains("vip"));
        let flows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flow_states")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(flows, 1);

        // a rolled-back store writes nothing; a cleared flow state is deleted at finish
        let store = TxStore::new(t.db.begin().await.unwrap());
        contact.tags.insert("lost".into());
        store.put_contact(contact.clone()).await.unwrap();
        store.rollback().await.unwrap();
        assert!(!stored(t.db.clone()).await[0].contains("lost"));
        let store = TxStore::new(t.db.begin().await.unwrap());
        assert!(store.flow_state("A", "P").await.unwrap().is_some());
        store.put_flow_state("A", "P", None).await.unwrap();
        assert!(store.flow_state("A", "P").await.unwrap().is_none());
        store.finish().await.unwrap().commit().await.unwrap();
        let flows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flow_states")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(flows, 0);
    }
}
