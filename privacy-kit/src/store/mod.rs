//! The storage traits `privacy-kit` works through, and [`MemoryStore`], an in-memory
//! implementation for tests, examples and small deployments.
//!
//! A backend implements [`RecordStore`] over its database (one entity per table, typically), and
//! optionally [`TokenStore`], [`ReceiptStore`] and [`AuditLog`]. The traits are small on purpose:
//! read a record, page through records linked to a parent, scan an entity, apply a list of changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{AuditEntry, AuditEvent};
use crate::cascade::DeletionReceipt;
use crate::error::Result;
use crate::retention::Anchor;
use crate::vault::{SealedToken, TokenBinding};

mod memory;

/// The attribute the store traits are declared with; implement them with `#[async_trait]`.
pub use async_trait::async_trait;
pub use memory::MemoryStore;

/// The timestamps retention periods are counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Anchors {
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// The last activity (last message of a conversation, last login of a member).
    pub last_activity_at: Option<DateTime<Utc>>,
    /// When the Instagram account the record belongs to was disconnected.
    pub disconnected_at: Option<DateTime<Utc>>,
    /// When the account (organization) the record belongs to was deleted or terminated.
    pub account_deleted_at: Option<DateTime<Utc>>,
}

impl Anchors {
    /// Anchors with only a creation time.
    pub fn created(at: DateTime<Utc>) -> Self {
        Self {
            created_at: at,
            last_activity_at: None,
            disconnected_at: None,
            account_deleted_at: None,
        }
    }

    /// The timestamp of `anchor`, if the record has it.
    pub fn get(&self, anchor: Anchor) -> Option<DateTime<Utc>> {
        match anchor {
            Anchor::Created => Some(self.created_at),
            Anchor::LastActivity => self.last_activity_at,
            Anchor::Disconnected => self.disconnected_at,
            Anchor::AccountDeleted => self.account_deleted_at,
        }
    }

    /// Sets the timestamp of `anchor`.
    pub fn set(&mut self, anchor: Anchor, at: DateTime<Utc>) {
        match anchor {
            Anchor::Created => self.created_at = at,
            Anchor::LastActivity => self.last_activity_at = Some(at),
            Anchor::Disconnected => self.disconnected_at = Some(at),
            Anchor::AccountDeleted => self.account_deleted_at = Some(at),
        }
    }
}

/// One stored record of an entity: its id, its links to parent records, its fields and its
/// retention anchors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// The entity (table) name, as declared in the schema.
    pub entity: String,
    /// The record id, unique within the entity.
    pub id: String,
    /// Links to parent records: relation field name (for example `conversation_id`) to parent id.
    pub links: BTreeMap<String, String>,
    /// The record's fields.
    pub fields: Map<String, Value>,
    /// The timestamps retention is counted from.
    pub anchors: Anchors,
    /// When the record was anonymized, if it was.
    pub anonymized_at: Option<DateTime<Utc>>,
}

impl Record {
    /// A record with no links or fields.
    pub fn new(
        entity: impl Into<String>,
        id: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            entity: entity.into(),
            id: id.into(),
            links: BTreeMap::new(),
            fields: Map::new(),
            anchors: Anchors::created(created_at),
            anonymized_at: None,
        }
    }

    /// Adds a link to a parent record.
    #[must_use]
    pub fn link(mut self, field: impl Into<String>, parent_id: impl Into<String>) -> Self {
        self.links.insert(field.into(), parent_id.into());
        self
    }

    /// Sets a field.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Sets an anchor timestamp.
    #[must_use]
    pub fn anchor(mut self, anchor: Anchor, at: DateTime<Utc>) -> Self {
        self.anchors.set(anchor, at);
        self
    }
}

/// A page request: records with an id greater than `after`, at most `limit` of them, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Page {
    /// Start after this id (exclusive); `None` starts at the beginning.
    pub after: Option<String>,
    /// The most records to return.
    pub limit: usize,
}

impl Page {
    /// The first page of `limit` records.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The page of `limit` records after `id`.
    pub fn after(id: impl Into<String>, limit: usize) -> Self {
        Self {
            after: Some(id.into()),
            limit,
        }
    }
}

/// One change to apply to the store. Changes that name a record that does not exist are no-ops,
/// which makes re-running a plan safe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Change {
    /// Delete the record.
    Delete {
        /// Entity.
        entity: String,
        /// Record id.
        id: String,
    },
    /// Replace personal fields and remove links, marking the record anonymized.
    Anonymize {
        /// Entity.
        entity: String,
        /// Record id.
        id: String,
        /// New values of the personal fields (null for blanked fields, a pseudonym otherwise).
        set: Map<String, Value>,
        /// Links to remove.
        unlink: Vec<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove links to parents, keeping the record.
    Unlink {
        /// Entity.
        entity: String,
        /// Record id.
        id: String,
        /// Links to remove.
        links: Vec<String>,
    },
    /// Set an anchor timestamp (for example mark a connection disconnected).
    SetAnchor {
        /// Entity.
        entity: String,
        /// Record id.
        id: String,
        /// Which anchor.
        anchor: Anchor,
        /// The timestamp.
        at: DateTime<Utc>,
    },
}

impl Change {
    /// The entity and record id the change applies to.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Self::Delete { entity, id }
            | Self::Anonymize { entity, id, .. }
            | Self::Unlink { entity, id, .. }
            | Self::SetAnchor { entity, id, .. } => (entity, id),
        }
    }
}

/// The records of a backend, as `privacy-kit` sees them.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Whether [`apply`](Self::apply) is all-or-nothing. When it is not, deletions run in steps
    /// and can be resumed after a failure.
    fn transactional(&self) -> bool {
        false
    }

    /// One record.
    async fn get(&self, entity: &str, id: &str) -> Result<Option<Record>>;

    /// Ids of the records of `entity` whose field `field` equals `value` (strings, or numbers
    /// written as text).
    async fn find(&self, entity: &str, field: &str, value: &str) -> Result<Vec<String>>;

    /// A page of records of `entity` whose link `link` points at `parent_id`, in id order.
    async fn linked(
        &self,
        entity: &str,
        link: &str,
        parent_id: &str,
        page: &Page,
    ) -> Result<Vec<Record>>;

    /// A page of all records of `entity`, in id order.
    async fn scan(&self, entity: &str, page: &Page) -> Result<Vec<Record>>;

    /// Applies changes in order and returns how many found their record. A transactional store
    /// applies all or none.
    async fn apply(&self, changes: &[Change]) -> Result<u64>;
}

/// A sealed token as stored, with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredToken {
    /// Tenant and account of the row.
    pub binding: TokenBinding,
    /// The ciphertext.
    pub sealed: SealedToken,
}

impl StoredToken {
    /// A stored token.
    pub fn new(binding: TokenBinding, sealed: SealedToken) -> Self {
        Self { binding, sealed }
    }
}

/// Where sealed tokens live, for key rotation.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// A page of stored tokens ordered by binding, after `after`.
    async fn sealed_tokens(
        &self,
        after: Option<&TokenBinding>,
        limit: usize,
    ) -> Result<Vec<StoredToken>>;

    /// Replaces the token of `binding` with `new` if it still is `expected`; returns whether it
    /// was replaced.
    async fn replace_sealed(
        &self,
        binding: &TokenBinding,
        expected: &SealedToken,
        new: SealedToken,
    ) -> Result<bool>;
}

/// Where deletion receipts are kept, so their status can be looked up by confirmation code.
#[async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Saves (inserts or replaces) a receipt.
    async fn save_receipt(&self, receipt: &DeletionReceipt) -> Result<()>;

    /// The receipt with this confirmation code.
    async fn receipt(&self, confirmation_code: &str) -> Result<Option<DeletionReceipt>>;
}

/// An append-only register of privacy events.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event and returns the entry as stored.
    async fn append(&self, at: DateTime<Utc>, event: AuditEvent) -> Result<AuditEntry>;

    /// Entries with a sequence number greater than `after`, at most `limit`, in order.
    async fn entries(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>>;
}
