//! Retention policies: per data class, keep records for a period counted from an anchor, then
//! delete or anonymize them; legal holds suspend this. [`presets`] reproduce the promises
//! products publish.
//!
//! [`plan_retention`] yields the due work in bounded batches for a given `now`;
//! [`apply_retention`] carries a batch out idempotently and reports counts per entity and action.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Days, Months, Utc};
use serde::{Deserialize, Serialize};

use crate::cascade::{apply_plan, plan_deletion, Counts, DeletionOptions};
use crate::error::{Error, Result};
use crate::schema::{DataClass, Pseudonymizer, Schema};
use crate::store::{Change, Page, Record, RecordStore};

/// What a retention period is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Anchor {
    /// The record's creation.
    Created,
    /// The record's last activity (its creation when it has none).
    LastActivity,
    /// The disconnection of the Instagram account it belongs to.
    Disconnected,
    /// The deletion or termination of the account it belongs to.
    AccountDeleted,
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "creation",
            Self::LastActivity => "last activity",
            Self::Disconnected => "disconnect",
            Self::AccountDeleted => "account deletion",
        })
    }
}

/// A retention period in calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Period {
    /// Days.
    Days(u32),
    /// Calendar months (the same day of the month, clamped to the month's end).
    Months(u32),
    /// Calendar years.
    Years(u32),
}

impl Period {
    /// `from` plus this period, or `None` if out of range.
    pub fn after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            Self::Days(d) => from.checked_add_days(Days::new(u64::from(d))),
            Self::Months(m) => from.checked_add_months(Months::new(m)),
            Self::Years(y) => from.checked_add_months(Months::new(y.checked_mul(12)?)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(n) => write!(f, "{n} days"),
            Self::Months(n) => write!(f, "{n} months"),
            Self::Years(n) => write!(f, "{n} years"),
        }
    }
}

/// What happens when the period is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disposal {
    /// Delete the record (and what the schema cascades below it).
    Delete,
    /// Anonymize the record in place.
    Anonymize,
}

impl fmt::Display for Disposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Delete => "delete",
            Self::Anonymize => "anonymize",
        })
    }
}

/// Keep records of a data class for a period from an anchor, then dispose of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// A short name (`dm-logs`).
    pub name: String,
    /// The data class it governs.
    pub data_class: DataClass,
    /// How long records are kept.
    pub keep_for: Period,
    /// What the period is counted from; the earliest anchor a record has counts.
    pub anchors: Vec<Anchor>,
    /// What happens afterwards.
    pub then: Disposal,
    /// The promise it implements, in words.
    pub promise: String,
}

impl RetentionPolicy {
    /// A policy.
    pub fn new(
        name: impl Into<String>,
        data_class: DataClass,
        keep_for: Period,
        anchors: Vec<Anchor>,
        then: Disposal,
        promise: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            data_class,
            keep_for,
            anchors,
            then,
            promise: promise.into(),
        }
    }

    /// When the record's period ends, or `None` if no anchor applies yet (a token of a connection
    /// that was never disconnected).
    pub fn deadline(&self, record: &Record) -> Option<DateTime<Utc>> {
        self.anchors
            .iter()
            .filter_map(|a| match a {
                Anchor::LastActivity => Some(
                    record
                        .anchors
                        .last_activity_at
                        .unwrap_or(record.anchors.created_at),
                ),
                other => record.anchors.get(*other),
            })
            .min()
            .and_then(|start| self.keep_for.after(start))
    }

    /// Whether the record is due at `now`: its deadline has been reached.
    pub fn is_due(&self, record: &Record, now: DateTime<Utc>) -> bool {
        self.deadline(record).is_some_and(|d| now >= d)
    }
}

/// The shipped policies, one per published promise:
///
/// | name | data class | keep for | from | then |
/// |---|---|---|---|---|
/// | `dm-logs` | delivery_log | 12 months | creation | anonymize |
/// | `conversations` | conversation | 90 days | last activity | delete |
/// | `tokens` | credential | 30 days | disconnect or account deletion | delete |
/// | `payments` | payment | 7 years | creation | delete |
/// | `support` | support_correspondence | 2 years | last activity | delete |
/// | `account-data` | account | 30 days | account deletion | delete |
pub fn presets() -> Vec<RetentionPolicy> {
    vec![
        RetentionPolicy::new(
            "dm-logs",
            DataClass::DeliveryLog,
            Period::Months(12),
            vec![Anchor::Created],
            Disposal::Anonymize,
            "DM logs are kept 12 months for analytics, then anonymized",
        ),
        RetentionPolicy::new(
            "conversations",
            DataClass::Conversation,
            Period::Days(90),
            vec![Anchor::LastActivity],
            Disposal::Delete,
            "Conversation data is kept 90 days by default",
        ),
        RetentionPolicy::new(
            "tokens",
            DataClass::Credential,
            Period::Days(30),
            vec![Anchor::Disconnected, Anchor::AccountDeleted],
            Disposal::Delete,
            "Tokens are deleted within 30 days of account deletion or Instagram disconnect",
        ),
        RetentionPolicy::new(
            "payments",
            DataClass::Payment,
            Period::Years(7),
            vec![Anchor::Created],
            Disposal::Delete,
            "Payment records are kept 7 years",
        ),
        RetentionPolicy::new(
            "support",
            DataClass::SupportCorrespondence,
            Period::Years(2),
            vec![Anchor::LastActivity],
            Disposal::Delete,
            "Support correspondence is kept 2 years",
        ),
        RetentionPolicy::new(
            "account-data",
            DataClass::Account,
            Period::Days(30),
            vec![Anchor::AccountDeleted],
            Disposal::Delete,
            "All personal data is deleted within 30 days of account termination",
        ),
    ]
}

/// What a legal hold covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HoldScope {
    /// One record.
    Record {
        /// Entity.
        entity: String,
        /// Record id.
        id: String,
    },
    /// Every record linked (directly) to this parent record, and the parent itself.
    Parent {
        /// Parent entity.
        entity: String,
        /// Parent id.
        id: String,
    },
    /// All records of an entity.
    Entity {
        /// Entity.
        entity: String,
    },
    /// All records of a data class.
    DataClass {
        /// Data class.
        data_class: DataClass,
    },
}

/// A legal hold: records it covers are neither deleted nor anonymized, by retention or by a
/// deletion cascade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LegalHold {
    /// What it covers.
    pub scope: HoldScope,
    /// Why (the legal basis, a case reference).
    pub reason: String,
}

impl LegalHold {
    /// A hold.
    pub fn new(scope: HoldScope, reason: impl Into<String>) -> Self {
        Self {
            scope,
            reason: reason.into(),
        }
    }

    /// Whether the hold covers `record`.
    pub fn covers(&self, schema: &Schema, record: &Record) -> bool {
        match &self.scope {
            HoldScope::Record { entity, id } => *entity == record.entity && *id == record.id,
            HoldScope::Parent { entity, id } => {
                (*entity == record.entity && *id == record.id)
                    || schema
                        .parents_of(&record.entity)
                        .any(|r| r.parent == *entity && record.links.get(&r.link) == Some(id))
            }
            HoldScope::Entity { entity } => *entity == record.entity,
            HoldScope::DataClass { data_class } => schema
                .entity(&record.entity)
                .is_some_and(|e| e.data_class == *data_class),
        }
    }
}

/// The first hold covering `record`.
pub fn hold_for<'a>(
    holds: &'a [LegalHold],
    schema: &Schema,
    record: &Record,
) -> Option<&'a LegalHold> {
    holds.iter().find(|h| h.covers(schema, record))
}

/// Where the planner stopped: the entity (by position in the schema) and the last record id read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionCursor {
    entity: usize,
    after: Option<String>,
}

/// One record whose period is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DueRecord {
    /// Entity.
    pub entity: String,
    /// Record id.
    pub id: String,
    /// The policy.
    pub policy: String,
    /// What to do.
    pub action: Disposal,
    /// When its period ended.
    pub deadline: DateTime<Utc>,
}

/// A bounded batch of due work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetentionBatch {
    /// The time the batch was planned for.
    pub now: DateTime<Utc>,
    /// The due records (at most the limit).
    pub due: Vec<DueRecord>,
    /// Records skipped because a legal hold covers them.
    pub held: u64,
    /// Where to continue; `None` when every entity was read.
    pub next: Option<RetentionCursor>,
}

/// Plans the next batch of due work at `now`: at most `limit` due records, starting at `cursor`
/// (or the beginning). Reads records in id order, entity by entity; deterministic for a given
/// store and `now`. Records already anonymized are not due again.
pub async fn plan_retention(
    schema: &Schema,
    policies: &[RetentionPolicy],
    holds: &[LegalHold],
    store: &dyn RecordStore,
    now: DateTime<Utc>,
    cursor: Option<&RetentionCursor>,
    limit: usize,
) -> Result<RetentionBatch> {
    if limit == 0 {
        return Err(Error::invalid(
            "the retention batch limit must be at least 1",
        ));
    }
    let mut batch = RetentionBatch {
        now,
        due: Vec::new(),
        held: 0,
        next: None,
    };
    let entities = schema.entities();
    let mut position = cursor.map_or(0, |c| c.entity);
    let mut after = cursor.and_then(|c| c.after.clone());
    while let Some(entity) = entities.get(position) {
        let Some(policy) = policies.iter().find(|p| p.data_class == entity.data_class) else {
            position += 1;
            after = None;
            continue;
        };
        loop {
            let page = Page {
                after: after.clone(),
                limit,
            };
            let records = store.scan(&entity.name, &page).await?;
            let full = records.len() >= limit;
            for record in records {
                after = Some(record.id.clone());
                let Some(deadline) = policy.deadline(&record) else {
                    continue;
                };
                if now < deadline
                    || (policy.then == Disposal::Anonymize && record.anonymized_at.is_some())
                {
                    continue;
                }
                if hold_for(holds, schema, &record).is_some() {
                    batch.held += 1;
                    continue;
                }
                batch.due.push(DueRecord {
                    entity: record.entity,
                    id: record.id,
                    policy: policy.name.clone(),
                    action: policy.then,
                    deadline,
                });
                if batch.due.len() >= limit {
                    batch.next = Some(RetentionCursor {
                        entity: position,
                        after,
                    });
                    return Ok(batch);
                }
            }
            if !full {
                break;
            }
        }
        position += 1;
        after = None;
    }
    Ok(batch)
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Records changed per entity and action (cascaded deletions included).
    pub counts: BTreeMap<String, Counts>,
    /// Due records found already gone or already anonymized (nothing to do).
    pub skipped: u64,
    /// Records left alone because of a legal hold.
    pub held: u64,
    /// Batches applied.
    pub batches: u64,
}

impl RetentionReport {
    /// The audit register entry for this run.
    pub fn audit_event(&self) -> crate::audit::AuditEvent {
        let t = crate::cascade::total(&self.counts);
        crate::audit::AuditEvent::RetentionRun {
            deleted: t.deleted,
            anonymized: t.anonymized,
            held: self.held,
        }
    }

    fn merge(&mut self, other: RetentionReport) {
        for (e, c) in other.counts {
            let t = self.counts.entry(e).or_default();
            t.deleted += c.deleted;
            t.anonymized += c.anonymized;
            t.detached += c.detached;
            t.retained += c.retained;
        }
        self.skipped += other.skipped;
        self.held += other.held;
        self.batches += other.batches;
    }
}

/// Carries out a batch. Idempotent: records already deleted or anonymized are skipped, so
/// applying the same batch twice changes nothing the second time. Deletions cascade as the schema
/// says; holds are honoured again at this point.
pub async fn apply_retention(
    schema: &Schema,
    store: &dyn RecordStore,
    batch: &RetentionBatch,
    holds: &[LegalHold],
    pseudonymizer: &Pseudonymizer,
) -> Result<RetentionReport> {
    let mut report = RetentionReport {
        held: batch.held,
        batches: 1,
        ..RetentionReport::default()
    };
    let mut anonymize: Vec<Change> = Vec::new();
    let mut roots: Vec<(String, String)> = Vec::new();
    for due in &batch.due {
        let Some(record) = store.get(&due.entity, &due.id).await? else {
            report.skipped += 1;
            continue;
        };
        match due.action {
            Disposal::Anonymize if record.anonymized_at.is_some() => report.skipped += 1,
            Disposal::Anonymize if hold_for(holds, schema, &record).is_some() => report.held += 1,
            Disposal::Anonymize => {
                anonymize.push(schema.anonymization(&record, pseudonymizer, Vec::new(), batch.now))
            }
            Disposal::Delete => roots.push((due.entity.clone(), due.id.clone())),
        }
    }
    let options = DeletionOptions::new(pseudonymizer).holds(holds);
    let mut plan = plan_deletion(schema, store, &roots, &options, batch.now).await?;
    // A record both anonymized and (through a cascade) deleted is only deleted.
    anonymize.retain(|a| !plan.changes.iter().any(|c| c.target() == a.target()));
    plan.changes.extend(anonymize);
    let (counts, error) = apply_plan(store, &plan, plan.changes.len().max(1)).await;
    if let Some(e) = error {
        return Err(e);
    }
    report.counts = counts;
    for (entity, c) in &plan.counts {
        if c.retained > 0 {
            report.counts.entry(entity.clone()).or_default().retained += c.retained;
        }
    }
    Ok(report)
}

/// Plans and applies batches until no due work is left at `now`.
pub async fn run_retention(
    schema: &Schema,
    policies: &[RetentionPolicy],
    holds: &[LegalHold],
    store: &dyn RecordStore,
    pseudonymizer: &Pseudonymizer,
    now: DateTime<Utc>,
    batch_size: usize,
) -> Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let mut cursor: Option<RetentionCursor> = None;
    loop {
        let batch = plan_retention(
            schema,
            policies,
            holds,
            store,
            now,
            cursor.as_ref(),
            batch_size,
        )
        .await?;
        let next = batch.next.clone();
        report.merge(apply_retention(schema, store, &batch, holds, pseudonymizer).await?);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(report)
}
