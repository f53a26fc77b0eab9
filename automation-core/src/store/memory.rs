//! In-memory storage, for tests, demos and single-process use.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Contact, ContactStore, DedupStore, FiringStore, FlowStore, RuleStore};
use crate::error::Result;
use crate::flow::{FlowEvent, FlowState};
use crate::rule::Rule;

#[derive(Debug, Default)]
struct Inner {
    rules: HashMap<(String, String), Rule>,
    contacts: HashMap<(String, String), Contact>,
    claims: HashMap<(String, String), DateTime<Utc>>,
    firings: HashMap<(String, String, String), DateTime<Utc>>,
    counters: HashMap<(String, String, DateTime<Utc>), u64>,
    flows: HashMap<(String, String), FlowState>,
    flow_events: Vec<FlowEvent>,
}

/// Every store trait, in memory behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain maps.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// All flow analytics records so far.
    pub fn flow_events(&self) -> Vec<FlowEvent> {
        self.lock().flow_events.clone()
    }
}

fn k2(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[async_trait]
impl RuleStore for MemoryStore {
    async fn rules(&self, account: &str) -> Result<Vec<Rule>> {
        let mut v: Vec<Rule> = self
            .lock()
            .rules
            .values()
            .filter(|r| r.account == account)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    async fn put_rule(&self, rule: Rule) -> Result<()> {
        self.lock().rules.insert(k2(&rule.account, &rule.id), rule);
        Ok(())
    }
    async fn delete_rule(&self, account: &str, id: &str) -> Result<bool> {
        Ok(self.lock().rules.remove(&k2(account, id)).is_some())
    }
}

#[async_trait]
impl ContactStore for MemoryStore {
    async fn contact(&self, account: &str, id: &str) -> Result<Option<Contact>> {
        Ok(self.lock().contacts.get(&k2(account, id)).cloned())
    }
    async fn put_contact(&self, contact: Contact) -> Result<()> {
        self.lock()
            .contacts
            .insert(k2(&contact.account, &contact.id), contact);
        Ok(())
    }
}

#[async_trait]
impl DedupStore for MemoryStore {
    async fn claim(&self, account: &str, key: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut g = self.lock();
        let k = k2(account, key);
        if g.claims.contains_key(&k) {
            return Ok(false);
        }
        g.claims.insert(k, at);
        Ok(true)
    }
    async fn is_claimed(&self, account: &str, key: &str) -> Result<bool> {
        Ok(self.lock().claims.contains_key(&k2(account, key)))
    }
}

#[async_trait]
impl FiringStore for MemoryStore {
    async fn last_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .lock()
            .firings
            .get(&(account.into(), rule.into(), contact.into()))
            .copied())
    }
    async fn record_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.lock()
            .firings
            .insert((account.into(), rule.into(), contact.into()), at);
        Ok(())
    }
    async fn count(&self, account: &str, key: &str, window: DateTime<Utc>) -> Result<u64> {
        Ok(self
            .lock()
            .counters
            .get(&(account.into(), key.into(), window))
            .copied()
            .unwrap_or(0))
    }
    async fn increment(&self, account: &str, key: &str, window: DateTime<Utc>) -> Result<u64> {
        let mut g = self.lock();
        let c = g
            .counters
            .entry((account.into(), key.into(), window))
            .or_insert(0);
        *c += 1;
        Ok(*c)
    }
}

#[async_trait]
impl FlowStore for MemoryStore {
    async fn flow_state(&self, account: &str, contact: &str) -> Result<Option<FlowState>> {
        Ok(self.lock().flows.get(&k2(account, contact)).cloned())
    }
    async fn put_flow_state(
        &self,
        account: &str,
        contact: &str,
        state: Option<FlowState>,
    ) -> Result<()> {
        let mut g = self.lock();
        match state {
            Some(s) => {
                g.flows.insert(k2(account, contact), s);
            }
            None => {
                g.flows.remove(&k2(account, contact));
            }
        }
        Ok(())
    }
    async fn record_flow_events(&self, events: &[FlowEvent]) -> Result<()> {
        self.lock().flow_events.extend_from_slice(events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn rules_round_trip() {
        let s = MemoryStore::new();
        s.put_rule(Rule::new("b", "acc")).await.unwrap();
        s.put_rule(Rule::new("a", "acc")).await.unwrap();
        s.put_rule(Rule::new("c", "other")).await.unwrap();
        let ids: Vec<_> = s
            .rules("acc")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(s.delete_rule("acc", "a").await.unwrap());
        assert!(!s.delete_rule("acc", "a").await.unwrap());
    }

    #[tokio::test]
    async fn claims_and_counters() {
        let s = MemoryStore::new();
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert!(s.claim("a", "k", t).await.unwrap());
        assert!(!s.claim("a", "k", t).await.unwrap());
        assert!(s.claim("b", "k", t).await.unwrap());
        assert_eq!(s.increment("a", "r", t).await.unwrap(), 1);
        assert_eq!(s.increment("a", "r", t).await.unwrap(), 2);
        assert_eq!(s.count("a", "r", t).await.unwrap(), 2);
        assert_eq!(
            s.count("a", "r", t + chrono::TimeDelta::hours(1))
                .await
                .unwrap(),
            0
        );
    }
}
