//! Deletion cascades: from a subject (an organization, a member, an Instagram connection, a
//! contact, or the Instagram user id in Meta's callback) to an ordered plan over the schema graph,
//! executed through the store, with a receipt whose status can be looked up by its confirmation
//! code, and a verification that nothing reachable from the subject is left.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use privacy_kit::cascade::{self, DeletionOptions, DeletionStatus, Subject};
//! use privacy_kit::clock::ManualClock;
//! use privacy_kit::schema::{Pseudonymizer, Schema};
//! use privacy_kit::store::{MemoryStore, Record};
//! use privacy_kit::audit::RequestSource;
//!
//! # tokio_test_block_on(async {
//! let schema = Schema::example();
//! let store = MemoryStore::new();
//! let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
//! store.insert(Record::new("contact", "c1", t).field("username", "ana"));
//! store.insert(Record::new("conversation", "cv1", t).link("contact_id", "c1"));
//! store.insert(Record::new("message", "m1", t).link("conversation_id", "cv1").field("text", "hi"));
//!
//! let receipt = cascade::request_deletion(&store, None, Subject::contact("c1"), RequestSource::User, t).await?;
//! let pseudonymizer = Pseudonymizer::random()?;
//! let options = DeletionOptions::new(&pseudonymizer);
//! let clock = ManualClock::new(t);
//! let done = cascade::run_deletion(&schema, &store, &store, receipt, &options, &clock).await?;
//! assert_eq!(done.status, DeletionStatus::Done);
//! assert_eq!(done.counts["message"].deleted, 1);
//! assert_eq!(store.count("message"), 0);
//! let looked_up = cascade::deletion_status(&store, &done.confirmation_code).await?;
//! assert_eq!(looked_up, done);
//! # Ok::<(), privacy_kit::Error>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), privacy_kit::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, RequestSource};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::retention::{hold_for, LegalHold};
use crate::schema::{OnDelete, Pseudonymizer, Schema, SubjectKey};
use crate::store::{AuditLog, Change, Page, ReceiptStore, Record, RecordStore};

/// The kinds of subject a deletion or export starts from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectKind {
    /// An organization (tenant).
    Organization,
    /// A member of an organization.
    Member,
    /// An Instagram connection (a connected business account).
    Connection,
    /// A contact (a person the business talks to).
    Contact,
    /// The app-scoped Instagram user id from Meta's deauthorize or data-deletion callback.
    InstagramUser,
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Organization => "organization",
            Self::Member => "member",
            Self::Connection => "connection",
            Self::Contact => "contact",
            Self::InstagramUser => "instagram_user",
        })
    }
}

/// Whose data: a kind and an id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subject {
    /// The kind.
    pub kind: SubjectKind,
    /// The id (a record id, or an Instagram user id).
    pub id: String,
}

impl Subject {
    /// A subject of any kind.
    pub fn new(kind: SubjectKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }
    /// An organization.
    pub fn organization(id: impl Into<String>) -> Self {
        Self::new(SubjectKind::Organization, id)
    }
    /// A member.
    pub fn member(id: impl Into<String>) -> Self {
        Self::new(SubjectKind::Member, id)
    }
    /// An Instagram connection.
    pub fn connection(id: impl Into<String>) -> Self {
        Self::new(SubjectKind::Connection, id)
    }
    /// A contact.
    pub fn contact(id: impl Into<String>) -> Self {
        Self::new(SubjectKind::Contact, id)
    }
    /// An Instagram user id from Meta's callback.
    pub fn instagram_user(id: impl Into<String>) -> Self {
        Self::new(SubjectKind::InstagramUser, id)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

/// Records changed per action, for one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counts {
    /// Deleted.
    pub deleted: u64,
    /// Anonymized (kept for aggregates, personal fields removed).
    pub anonymized: u64,
    /// Detached from the deleted parent.
    pub detached: u64,
    /// Kept because of a restriction or legal hold.
    pub retained: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.deleted += other.deleted;
        self.anonymized += other.anonymized;
        self.detached += other.detached;
        self.retained += other.retained;
    }

    fn of_change(change: &Change) -> Self {
        let mut c = Self::default();
        match change {
            Change::Delete { .. } => c.deleted = 1,
            Change::Anonymize { .. } => c.anonymized = 1,
            Change::Unlink { .. } => c.detached = 1,
            Change::SetAnchor { .. } => {}
        }
        c
    }
}

/// Totals over entities.
pub fn total(counts: &BTreeMap<String, Counts>) -> Counts {
    let mut t = Counts::default();
    for c in counts.values() {
        t.add(c);
    }
    t
}

/// A record kept despite the deletion, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetainedRecord {
    /// Entity.
    pub entity: String,
    /// Record id.
    pub id: String,
    /// The legal basis or hold reason.
    pub reason: String,
}

/// The ordered changes that delete a subject's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeletionPlan {
    /// The records the plan starts from.
    pub roots: Vec<(String, String)>,
    /// The changes, children before parents.
    pub changes: Vec<Change>,
    /// Records kept, with the reason.
    pub retained: Vec<RetainedRecord>,
    /// What the plan does, per entity.
    pub counts: BTreeMap<String, Counts>,
}

impl DeletionPlan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[derive(Debug)]
enum Planned {
    Delete,
    Anonymize(Record, BTreeSet<String>),
    Detach(Record, BTreeSet<String>),
    Retain(String),
}

/// The options of a deletion run.
#[derive(Clone)]
#[non_exhaustive]
pub struct DeletionOptions<'a> {
    /// Legal holds: records they cover are kept.
    pub holds: &'a [LegalHold],
    /// Pseudonymizes identifiers of anonymized records.
    pub pseudonymizer: &'a Pseudonymizer,
    /// Changes per `apply` call on a non-transactional store (and records per page read).
    pub batch_size: usize,
    /// Where [`run_deletion`] records a `deletion_finished` entry, if anywhere.
    pub audit: Option<&'a dyn AuditLog>,
}

impl fmt::Debug for DeletionOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeletionOptions")
            .field("holds", &self.holds)
            .field("batch_size", &self.batch_size)
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> DeletionOptions<'a> {
    /// Options with no holds, no audit log and batches of 500.
    pub fn new(pseudonymizer: &'a Pseudonymizer) -> Self {
        Self {
            holds: &[],
            pseudonymizer,
            batch_size: 500,
            audit: None,
        }
    }

    /// With an audit log.
    #[must_use]
    pub fn audit(mut self, audit: &'a dyn AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// With legal holds.
    #[must_use]
    pub fn holds(mut self, holds: &'a [LegalHold]) -> Self {
        self.holds = holds;
        self
    }

    /// With a batch size (at least 1).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }
}

/// The records a subject resolves to, through the schema's subject mappings.
pub async fn resolve_subject(
    schema: &Schema,
    store: &dyn RecordStore,
    subject: &Subject,
) -> Result<Vec<(String, String)>> {
    let mut roots = Vec::new();
    let mut mapped = false;
    for m in schema.subjects().iter().filter(|m| m.kind == subject.kind) {
        mapped = true;
        match &m.key {
            SubjectKey::Id => {
                if store.get(&m.entity, &subject.id).await?.is_some() {
                    roots.push((m.entity.clone(), subject.id.clone()));
                }
            }
            SubjectKey::Field(f) => {
                for id in store.find(&m.entity, f, &subject.id).await? {
                    roots.push((m.entity.clone(), id));
                }
            }
        }
    }
    if !mapped {
        return Err(Error::invalid(format!(
            "the schema declares no subject of kind `{}`; add one with `subject(...)`",
            subject.kind
        )));
    }
    roots.sort();
    roots.dedup();
    Ok(roots)
}

fn merge(slot: &mut Option<Planned>, incoming: Planned) {
    use Planned::{Anonymize, Delete, Detach, Retain};
    let next = match (slot.take(), incoming) {
        (Some(Retain(r)), _) | (_, Retain(r)) => Retain(r),
        (Some(Delete), _) | (_, Delete) => Delete,
        (Some(Anonymize(rec, mut a)), Anonymize(_, b) | Detach(_, b))
        | (Some(Detach(rec, mut a)), Anonymize(_, b)) => {
            a.extend(b);
            Anonymize(rec, a)
        }
        (Some(Detach(rec, mut a)), Detach(_, b)) => {
            a.extend(b);
            Detach(rec, a)
        }
        (None, other) => other,
    };
    *slot = Some(next);
}

/// Plans the deletion of `roots` and everything the schema hangs below them. Reads the store,
/// changes nothing.
pub async fn plan_deletion(
    schema: &Schema,
    store: &dyn RecordStore,
    roots: &[(String, String)],
    options: &DeletionOptions<'_>,
    now: DateTime<Utc>,
) -> Result<DeletionPlan> {
    let page_size = options.batch_size.max(1);
    let mut planned: HashMap<String, BTreeMap<String, Option<Planned>>> = HashMap::new();
    for (entity, id) in roots {
        let Some(record) = store.get(entity, id).await? else {
            continue;
        };
        let action = match hold_for(options.holds, schema, &record) {
            Some(h) => Planned::Retain(h.reason.clone()),
            None => Planned::Delete,
        };
        let slot = planned
            .entry(entity.clone())
            .or_default()
            .entry(id.clone())
            .or_default();
        merge(slot, action);
    }
    for entity in schema.topological_order() {
        for rel in schema.parents_of(entity) {
            let parents: Vec<String> = planned
                .get(&rel.parent)
                .map(|m| {
                    m.iter()
                        .filter(|(_, p)| matches!(p, Some(Planned::Delete)))
                        .map(|(id, _)| id.clone())
                        .collect()
                })
                .unwrap_or_default();
            for parent_id in parents {
                let mut page = Page::first(page_size);
                loop {
                    let records = store.linked(entity, &rel.link, &parent_id, &page).await?;
                    let full = records.len() >= page_size;
                    let last = records.last().map(|r| r.id.clone());
                    for record in records {
                        let action = if let Some(h) = hold_for(options.holds, schema, &record) {
                            Planned::Retain(h.reason.clone())
                        } else {
                            let link: BTreeSet<String> = [rel.link.clone()].into();
                            match &rel.on_delete {
                                OnDelete::Cascade => Planned::Delete,
                                OnDelete::Anonymize => Planned::Anonymize(record.clone(), link),
                                OnDelete::Detach => Planned::Detach(record.clone(), link),
                                OnDelete::Restrict { legal_basis } => {
                                    Planned::Retain(legal_basis.clone())
                                }
                                // Future variants: keep the record (the safe default).
                                #[allow(unreachable_patterns)]
                                _ => Planned::Retain("unknown on-delete rule".to_owned()),
                            }
                        };
                        let slot = planned
                            .entry(entity.clone())
                            .or_default()
                            .entry(record.id)
                            .or_default();
                        merge(slot, action);
                    }
                    match (full, last) {
                        (true, Some(id)) => page = Page::after(id, page_size),
                        _ => break,
                    }
                }
            }
        }
    }
    let mut plan = DeletionPlan {
        roots: roots.to_vec(),
        changes: Vec::new(),
        retained: Vec::new(),
        counts: BTreeMap::new(),
    };
    for entity in schema.deletion_order() {
        let Some(records) = planned.remove(entity) else {
            continue;
        };
        let counts = plan.counts.entry(entity.to_owned()).or_default();
        for (id, action) in records {
            match action {
                Some(Planned::Delete) => {
                    counts.deleted += 1;
                    plan.changes.push(Change::Delete {
                        entity: entity.to_owned(),
                        id,
                    });
                }
                Some(Planned::Anonymize(record, unlink)) => {
                    counts.anonymized += 1;
                    plan.changes.push(schema.anonymization(
                        &record,
                        options.pseudonymizer,
                        unlink.into_iter().collect(),
                        now,
                    ));
                }
                Some(Planned::Detach(_, links)) => {
                    counts.detached += 1;
                    plan.changes.push(Change::Unlink {
                        entity: entity.to_owned(),
                        id,
                        links: links.into_iter().collect(),
                    });
                }
                Some(Planned::Retain(reason)) => {
                    counts.retained += 1;
                    plan.retained.push(RetainedRecord {
                        entity: entity.to_owned(),
                        id,
                        reason,
                    });
                }
                None => {}
            }
        }
    }
    Ok(plan)
}

/// Where a deletion stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeletionStatus {
    /// Requested, not started.
    Pending,
    /// Being carried out.
    Running,
    /// Finished and verified.
    Done,
    /// Stopped; running it again resumes it.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// Records of one entity kept under one legal basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetentionNotice {
    /// Entity.
    pub entity: String,
    /// How many records.
    pub records: u64,
    /// Why they are kept.
    pub legal_basis: String,
}

/// The receipt of a deletion: what a person (or Meta) can look up with the confirmation code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeletionReceipt {
    /// Unguessable alphanumeric code (20 characters, 100 bits from the OS random generator).
    pub confirmation_code: String,
    /// Whose data.
    pub subject: Subject,
    /// Where it stands.
    pub status: DeletionStatus,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When the first run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Records changed per entity, over all runs.
    pub counts: BTreeMap<String, Counts>,
    /// Records kept, and why.
    pub retained: Vec<RetentionNotice>,
    /// How many runs were made.
    pub runs: u32,
}

impl DeletionReceipt {
    /// A pending receipt with a fresh confirmation code.
    pub fn new(subject: Subject, requested_at: DateTime<Utc>) -> Result<Self> {
        Ok(Self {
            confirmation_code: crate::random::code(20)?,
            subject,
            status: DeletionStatus::Pending,
            requested_at,
            started_at: None,
            finished_at: None,
            counts: BTreeMap::new(),
            retained: Vec::new(),
            runs: 0,
        })
    }

    /// A one-paragraph, human-readable status for a status page.
    pub fn status_text(&self) -> String {
        let t = total(&self.counts);
        let mut s = match &self.status {
            DeletionStatus::Pending => format!(
                "Deletion request {} was received on {} and will be carried out shortly.",
                self.confirmation_code,
                self.requested_at.format("%Y-%m-%d")
            ),
            DeletionStatus::Running => format!(
                "Deletion request {} is being carried out.",
                self.confirmation_code
            ),
            DeletionStatus::Done => format!(
                "Deletion request {} was completed on {}: {} records deleted, {} anonymized.",
                self.confirmation_code,
                self.finished_at
                    .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d").to_string()),
                t.deleted,
                t.anonymized
            ),
            DeletionStatus::Failed { .. } => format!(
                "Deletion request {} was interrupted and will be retried.",
                self.confirmation_code
            ),
        };
        for n in &self.retained {
            s.push_str(&format!(
                " {} {} record(s) are kept: {}.",
                n.records, n.entity, n.legal_basis
            ));
        }
        s
    }
}

/// Records a deletion request: a pending receipt, saved, and (with an audit log) a
/// `deletion_requested` entry.
pub async fn request_deletion(
    receipts: &dyn ReceiptStore,
    audit: Option<&dyn AuditLog>,
    subject: Subject,
    source: RequestSource,
    now: DateTime<Utc>,
) -> Result<DeletionReceipt> {
    let receipt = DeletionReceipt::new(subject, now)?;
    receipts.save_receipt(&receipt).await?;
    if let Some(audit) = audit {
        audit
            .append(
                now,
                AuditEvent::DeletionRequested {
                    confirmation_code: receipt.confirmation_code.clone(),
                    subject: receipt.subject.clone(),
                    source,
                },
            )
            .await?;
    }
    Ok(receipt)
}

/// The receipt with this confirmation code.
pub async fn deletion_status(
    receipts: &dyn ReceiptStore,
    confirmation_code: &str,
) -> Result<DeletionReceipt> {
    receipts.receipt(confirmation_code).await?.ok_or_else(|| {
        Error::not_found("no deletion request has this confirmation code; check the code")
    })
}

/// Applies a plan: in one `apply` call on a transactional store, in batches otherwise. Returns
/// the counts of the batches that completed, and the error that stopped it, if any.
pub async fn apply_plan(
    store: &dyn RecordStore,
    plan: &DeletionPlan,
    batch_size: usize,
) -> (BTreeMap<String, Counts>, Option<Error>) {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let size = if store.transactional() {
        plan.changes.len().max(1)
    } else {
        batch_size.max(1)
    };
    for batch in plan.changes.chunks(size) {
        if let Err(e) = store.apply(batch).await {
            return (counts, Some(e));
        }
        for c in batch {
            counts
                .entry(c.target().0.to_owned())
                .or_default()
                .add(&Counts::of_change(c));
        }
    }
    (counts, None)
}

/// Runs (or resumes) a deletion: marks the receipt running, plans from the subject's records,
/// applies the plan, verifies that nothing reachable is left, and saves the receipt as done or
/// failed with the reason. Running a failed receipt again continues where it stopped (changes
/// are idempotent; the plan is recomputed from what is left).
///
/// Errors are returned only when the receipt itself cannot be saved or the store cannot be read
/// while planning; a failure to apply changes ends in a `Failed` receipt.
pub async fn run_deletion(
    schema: &Schema,
    store: &dyn RecordStore,
    receipts: &dyn ReceiptStore,
    mut receipt: DeletionReceipt,
    options: &DeletionOptions<'_>,
    clock: &dyn Clock,
) -> Result<DeletionReceipt> {
    let now = clock.now();
    receipt.status = DeletionStatus::Running;
    receipt.started_at.get_or_insert(now);
    receipt.runs += 1;
    receipts.save_receipt(&receipt).await?;

    let outcome = async {
        let roots = resolve_subject(schema, store, &receipt.subject).await?;
        let plan = plan_deletion(schema, store, &roots, options, now).await?;
        let (applied, error) = apply_plan(store, &plan, options.batch_size).await;
        Ok::<_, Error>((plan, applied, error))
    }
    .await;

    match outcome {
        Err(e) => {
            receipt.status = DeletionStatus::Failed {
                reason: e.message().to_owned(),
            };
        }
        Ok((plan, applied, error)) => {
            for (entity, c) in &applied {
                receipt.counts.entry(entity.clone()).or_default().add(c);
            }
            let mut notices: BTreeMap<(String, String), u64> = BTreeMap::new();
            for r in &plan.retained {
                *notices
                    .entry((r.entity.clone(), r.reason.clone()))
                    .or_default() += 1;
            }
            receipt.retained = notices
                .into_iter()
                .map(|((entity, legal_basis), records)| RetentionNotice {
                    entity,
                    records,
                    legal_basis,
                })
                .collect();
            for (entity, c) in &plan.counts {
                receipt.counts.entry(entity.clone()).or_default().retained = c.retained;
            }
            receipt.status = match error {
                Some(e) => DeletionStatus::Failed {
                    reason: e.message().to_owned(),
                },
                None => {
                    let v = verify_deletion(schema, store, &plan).await?;
                    if v.leftovers.is_empty() {
                        DeletionStatus::Done
                    } else {
                        DeletionStatus::Failed {
                            reason: format!(
                                "{} record(s) reachable from the subject remain (first: {} {})",
                                v.leftovers.len(),
                                v.leftovers[0].0,
                                v.leftovers[0].1
                            ),
                        }
                    }
                }
            };
        }
    }
    let finished_at = clock.now();
    receipt.finished_at = Some(finished_at);
    receipts.save_receipt(&receipt).await?;
    if let Some(audit) = options.audit {
        let t = total(&receipt.counts);
        audit
            .append(
                finished_at,
                AuditEvent::DeletionFinished {
                    confirmation_code: receipt.confirmation_code.clone(),
                    completed: receipt.status == DeletionStatus::Done,
                    deleted: t.deleted,
                    anonymized: t.anonymized,
                    retained: t.retained,
                },
            )
            .await?;
    }
    Ok(receipt)
}

/// The result of [`verify_deletion`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// Records and links checked.
    pub checked: u64,
    /// Records still reachable from the subject: `(entity, id)`.
    pub leftovers: Vec<(String, String)>,
}

/// Proves a plan was carried out: every deleted record is gone, no record other than the retained
/// ones still links to a deleted record, and every anonymized or detached record lost its links.
pub async fn verify_deletion(
    schema: &Schema,
    store: &dyn RecordStore,
    plan: &DeletionPlan,
) -> Result<Verification> {
    let retained: HashSet<(&str, &str)> = plan
        .retained
        .iter()
        .map(|r| (r.entity.as_str(), r.id.as_str()))
        .collect();
    let mut v = Verification::default();
    for change in &plan.changes {
        let (entity, id) = change.target();
        let current = store.get(entity, id).await?;
        v.checked += 1;
        match change {
            Change::Delete { .. } => {
                if current.is_some() {
                    v.leftovers.push((entity.to_owned(), id.to_owned()));
                }
                for rel in schema.children_of(entity) {
                    let mut page = Page::first(256);
                    loop {
                        let linked = store.linked(&rel.child, &rel.link, id, &page).await?;
                        v.checked += 1;
                        let full = linked.len() >= 256;
                        let last = linked.last().map(|r| r.id.clone());
                        for r in linked {
                            if !retained.contains(&(r.entity.as_str(), r.id.as_str())) {
                                v.leftovers.push((r.entity, r.id));
                            }
                        }
                        match (full, last) {
                            (true, Some(l)) => page = Page::after(l, 256),
                            _ => break,
                        }
                    }
                }
            }
            Change::Anonymize { unlink, .. } | Change::Unlink { links: unlink, .. } => {
                if let Some(r) = current {
                    let anonymized_ok =
                        !matches!(change, Change::Anonymize { .. }) || r.anonymized_at.is_some();
                    if !anonymized_ok || unlink.iter().any(|l| r.links.contains_key(l)) {
                        v.leftovers.push((r.entity, r.id));
                    }
                }
            }
            Change::SetAnchor { .. } => {}
        }
    }
    Ok(v)
}

/// Checks that `kind` is declared by the schema (for callers validating input early).
pub fn check_subject_kind(schema: &Schema, kind: &SubjectKind) -> Result<()> {
    if schema.subjects().iter().any(|m| &m.kind == kind) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the schema declares no subject of kind `{kind}`"),
        ))
    }
}
