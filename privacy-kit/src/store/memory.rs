//! [`MemoryStore`]: every store trait, in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AuditLog, Change, Page, ReceiptStore, Record, RecordStore, StoredToken, TokenStore};
use crate::audit::{AuditEntry, AuditEvent};
use crate::cascade::DeletionReceipt;
use crate::error::{Error, Result};
use crate::vault::{SealedToken, TokenBinding};

type LinkKey = (String, String, String);

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, BTreeMap<String, Record>>,
    links: HashMap<LinkKey, BTreeSet<String>>,
    tokens: BTreeMap<TokenBinding, SealedToken>,
    receipts: HashMap<String, DeletionReceipt>,
    audit: Vec<AuditEntry>,
    fail_after: Option<usize>,
    changes_applied: u64,
}

impl Inner {
    fn index(&mut self, record: &Record) {
        for (link, parent) in &record.links {
            self.links
                .entry((record.entity.clone(), link.clone(), parent.clone()))
                .or_default()
                .insert(record.id.clone());
        }
    }

    fn unindex(&mut self, record: &Record) {
        for (link, parent) in &record.links {
            let key = (record.entity.clone(), link.clone(), parent.clone());
            if let Some(set) = self.links.get_mut(&key) {
                set.remove(&record.id);
                if set.is_empty() {
                    self.links.remove(&key);
                }
            }
        }
    }

    fn insert(&mut self, record: Record) {
        if let Some(old) = self
            .records
            .get(&record.entity)
            .and_then(|m| m.get(&record.id))
            .cloned()
        {
            self.unindex(&old);
        }
        self.index(&record);
        self.records
            .entry(record.entity.clone())
            .or_default()
            .insert(record.id.clone(), record);
    }

    fn apply_one(&mut self, change: &Change) -> bool {
        let (entity, id) = change.target();
        let Some(existing) = self.records.get(entity).and_then(|m| m.get(id)).cloned() else {
            return false;
        };
        match change {
            Change::Delete { .. } => {
                self.unindex(&existing);
                if let Some(m) = self.records.get_mut(entity) {
                    m.remove(id);
                }
            }
            Change::Anonymize {
                set, unlink, at, ..
            } => {
                let mut r = existing;
                for (k, v) in set {
                    r.fields.insert(k.clone(), v.clone());
                }
                for l in unlink {
                    r.links.remove(l);
                }
                r.anonymized_at = Some(*at);
                self.insert(r);
            }
            Change::Unlink { links, .. } => {
                let mut r = existing;
                for l in links {
                    r.links.remove(l);
                }
                self.insert(r);
            }
            Change::SetAnchor { anchor, at, .. } => {
                let mut r = existing;
                r.anchors.set(*anchor, *at);
                self.insert(r);
            }
        }
        self.changes_applied += 1;
        true
    }
}

/// An in-memory implementation of [`RecordStore`], [`TokenStore`], [`ReceiptStore`] and
/// [`AuditLog`].
///
/// By default it is transactional ([`apply`](RecordStore::apply) is all-or-nothing); build it
/// with [`non_transactional`](Self::non_transactional) to exercise the resumable path. For tests,
/// [`fail_next_apply_after`](Self::fail_next_apply_after) makes the next `apply` fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    transactional: bool,
}

impl MemoryStore {
    /// An empty, transactional store.
    pub fn new() -> Self {
        Self {
            inner: Mutex::default(),
            transactional: true,
        }
    }

    /// An empty store whose `apply` is not all-or-nothing.
    pub fn non_transactional() -> Self {
        Self {
            inner: Mutex::default(),
            transactional: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data (every mutation is
        // completed before the guard drops), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts or replaces a record.
    pub fn insert(&self, record: Record) {
        self.lock().insert(record);
    }

    /// Inserts or replaces many records.
    pub fn insert_all(&self, records: impl IntoIterator<Item = Record>) {
        let mut inner = self.lock();
        for r in records {
            inner.insert(r);
        }
    }

    /// A copy of one record.
    pub fn record(&self, entity: &str, id: &str) -> Option<Record> {
        self.lock().records.get(entity)?.get(id).cloned()
    }

    /// Copies of all records, keyed by entity and id.
    pub fn snapshot(&self) -> BTreeMap<(String, String), Record> {
        let inner = self.lock();
        inner
            .records
            .values()
            .flat_map(|m| m.values())
            .map(|r| ((r.entity.clone(), r.id.clone()), r.clone()))
            .collect()
    }

    /// How many records `entity` has.
    pub fn count(&self, entity: &str) -> usize {
        self.lock().records.get(entity).map_or(0, BTreeMap::len)
    }

    /// How many changes found their record since the store was created.
    pub fn changes_applied(&self) -> u64 {
        self.lock().changes_applied
    }

    /// Makes the next call of `apply` fail after `n` changes (a transactional store then applies
    /// none of them).
    pub fn fail_next_apply_after(&self, n: usize) {
        self.lock().fail_after = Some(n);
    }

    /// Stores a sealed token.
    pub fn put_token(&self, token: StoredToken) {
        self.lock().tokens.insert(token.binding, token.sealed);
    }

    /// The sealed token of `binding`.
    pub fn token(&self, binding: &TokenBinding) -> Option<SealedToken> {
        self.lock().tokens.get(binding).cloned()
    }
}

fn page_of<'a>(
    ids: impl Iterator<Item = &'a String>,
    page: &Page,
) -> impl Iterator<Item = &'a String> {
    let after = page.after.clone();
    ids.filter(move |id| after.as_ref().is_none_or(|a| id.as_str() > a.as_str()))
        .take(page.limit)
}

#[async_trait]
impl RecordStore for MemoryStore {
    fn transactional(&self) -> bool {
        self.transactional
    }

    async fn get(&self, entity: &str, id: &str) -> Result<Option<Record>> {
        Ok(self.record(entity, id))
    }

    async fn find(&self, entity: &str, field: &str, value: &str) -> Result<Vec<String>> {
        let inner = self.lock();
        let Some(records) = inner.records.get(entity) else {
            return Ok(Vec::new());
        };
        Ok(records
            .values()
            .filter(|r| match r.fields.get(field) {
                Some(serde_json::Value::String(s)) => s == value,
                Some(serde_json::Value::Number(n)) => n.to_string() == value,
                _ => false,
            })
            .map(|r| r.id.clone())
            .collect())
    }

    async fn linked(
        &self,
        entity: &str,
        link: &str,
        parent_id: &str,
        page: &Page,
    ) -> Result<Vec<Record>> {
        let inner = self.lock();
        let key = (entity.to_owned(), link.to_owned(), parent_id.to_owned());
        let Some(ids) = inner.links.get(&key) else {
            return Ok(Vec::new());
        };
        let records = inner.records.get(entity);
        Ok(page_of(ids.iter(), page)
            .filter_map(|id| records.and_then(|m| m.get(id)).cloned())
            .collect())
    }

    async fn scan(&self, entity: &str, page: &Page) -> Result<Vec<Record>> {
        let inner = self.lock();
        let Some(records) = inner.records.get(entity) else {
            return Ok(Vec::new());
        };
        let range = match &page.after {
            Some(a) => records.range::<String, _>((
                std::ops::Bound::Excluded(a.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => records.range::<String, _>(..),
        };
        Ok(range.take(page.limit).map(|(_, r)| r.clone()).collect())
    }

    async fn apply(&self, changes: &[Change]) -> Result<u64> {
        let mut inner = self.lock();
        let fail_after = inner.fail_after.take();
        if let Some(n) = fail_after {
            if n < changes.len() {
                if !self.transactional {
                    for c in &changes[..n] {
                        inner.apply_one(c);
                    }
                }
                return Err(Error::store(format!(
                    "injected failure after {n} of {} changes",
                    changes.len()
                )));
            }
        }
        let mut found = 0;
        for c in changes {
            if inner.apply_one(c) {
                found += 1;
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn sealed_tokens(
        &self,
        after: Option<&TokenBinding>,
        limit: usize,
    ) -> Result<Vec<StoredToken>> {
        let inner = self.lock();
        Ok(inner
            .tokens
            .iter()
            .filter(|(b, _)| after.is_none_or(|a| *b > a))
            .take(limit)
            .map(|(b, s)| StoredToken::new(b.clone(), s.clone()))
            .collect())
    }

    async fn replace_sealed(
        &self,
        binding: &TokenBinding,
        expected: &SealedToken,
        new: SealedToken,
    ) -> Result<bool> {
        let mut inner = self.lock();
        match inner.tokens.get_mut(binding) {
            Some(current) if current == expected => {
                *current = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl ReceiptStore for MemoryStore {
    async fn save_receipt(&self, receipt: &DeletionReceipt) -> Result<()> {
        self.lock()
            .receipts
            .insert(receipt.confirmation_code.clone(), receipt.clone());
        Ok(())
    }

    async fn receipt(&self, confirmation_code: &str) -> Result<Option<DeletionReceipt>> {
        Ok(self.lock().receipts.get(confirmation_code).cloned())
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, at: DateTime<Utc>, event: AuditEvent) -> Result<AuditEntry> {
        let mut inner = self.lock();
        let entry = AuditEntry::next(inner.audit.last(), at, event)?;
        inner.audit.push(entry.clone());
        Ok(entry)
    }

    async fn entries(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>> {
        let inner = self.lock();
        Ok(inner
            .audit
            .iter()
            .filter(|e| after.is_none_or(|a| e.seq > a))
            .take(limit)
            .cloned()
            .collect())
    }
}
