//! Storage traits and in-memory implementations.
//!
//! The engine owns no storage: it reads and writes through these traits. The in-memory
//! implementation ([`MemoryStore`]) ships here; a service implements them on its database.
//! Implementations must make [`DedupStore::claim`] atomic (insert-if-absent).

mod memory;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;

use crate::error::Result;
use crate::flow::{FlowEvent, FlowState};
use crate::rule::Rule;

/// What the engine knows about a person, per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Contact {
    /// The account.
    pub account: String,
    /// The person's id.
    pub id: String,
    /// Username, if known.
    #[serde(default)]
    pub username: Option<String>,
    /// Display name, if known.
    #[serde(default)]
    pub name: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Custom fields.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// First event seen.
    pub first_seen: DateTime<Utc>,
    /// Last event seen.
    pub last_interaction: DateTime<Utc>,
    /// Last message from them that opens the messaging window.
    #[serde(default)]
    pub last_inbound: Option<DateTime<Utc>>,
    /// Automation is paused until then (hand-off).
    #[serde(default)]
    pub paused_until: Option<DateTime<Utc>>,
    /// Whether they follow the account, as last reported by an event.
    #[serde(default)]
    pub follows_account: Option<bool>,
}

impl Contact {
    /// A new contact first seen at `now`.
    pub fn new(account: impl Into<String>, id: impl Into<String>, now: DateTime<Utc>) -> Self {
        Contact {
            account: account.into(),
            id: id.into(),
            username: None,
            name: None,
            tags: BTreeSet::new(),
            fields: BTreeMap::new(),
            first_seen: now,
            last_interaction: now,
            last_inbound: None,
            paused_until: None,
            follows_account: None,
        }
    }
}

/// Saved rules.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// The rules of an account.
    async fn rules(&self, account: &str) -> Result<Vec<Rule>>;
    /// Saves (inserts or replaces by id) a rule.
    async fn put_rule(&self, rule: Rule) -> Result<()>;
    /// Deletes a rule; whether it existed.
    async fn delete_rule(&self, account: &str, id: &str) -> Result<bool>;
}

/// Contacts.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// A contact, if known.
    async fn contact(&self, account: &str, id: &str) -> Result<Option<Contact>>;
    /// Saves a contact.
    async fn put_contact(&self, contact: Contact) -> Result<()>;
}

/// Idempotency keys: processed events and private replies.
#[async_trait]
pub trait DedupStore: Send + Sync {
    /// Records `key` if absent; `true` if it was absent (first time), `false` if already there.
    async fn claim(&self, account: &str, key: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Whether `key` was recorded.
    async fn is_claimed(&self, account: &str, key: &str) -> Result<bool>;
}

/// Rule firings and counters for limits.
#[async_trait]
pub trait FiringStore: Send + Sync {
    /// When `rule` last fired for `contact`.
    async fn last_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Records a firing.
    async fn record_firing(
        &self,
        account: &str,
        rule: &str,
        contact: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The counter `key` in the window starting at `window`.
    async fn count(&self, account: &str, key: &str, window: DateTime<Utc>) -> Result<u64>;
    /// Increments the counter and returns its new value.
    async fn increment(&self, account: &str, key: &str, window: DateTime<Utc>) -> Result<u64>;
}

/// Flow state and analytics.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// The contact's flow state.
    async fn flow_state(&self, account: &str, contact: &str) -> Result<Option<FlowState>>;
    /// Sets (or clears, with `None`) the contact's flow state.
    async fn put_flow_state(
        &self,
        account: &str,
        contact: &str,
        state: Option<FlowState>,
    ) -> Result<()>;
    /// Appends analytics records.
    async fn record_flow_events(&self, events: &[FlowEvent]) -> Result<()>;
}

/// Everything the engine needs.
pub trait Store: ContactStore + DedupStore + FiringStore + FlowStore {}

impl<T: ContactStore + DedupStore + FiringStore + FlowStore> Store for T {}
