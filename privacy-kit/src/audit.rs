//! The audit register: an append-only, hash-chained record of privacy events.
//!
//! Entries carry ids, counts and legal bases, never personal payload. Each entry holds the
//! SHA-256 of the previous entry, so [`verify_chain`] detects an entry removed, reordered or
//! edited after the fact.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cascade::Subject;
use crate::error::{Error, ErrorKind, Result};

/// Who asked for a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestSource {
    /// The person or customer, through the product.
    User,
    /// Meta's data-deletion callback.
    MetaCallback,
    /// An operator of the backend.
    Operator,
}

/// How a legal request was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LegalResponse {
    /// The requested data was disclosed.
    Disclosed,
    /// Part of the requested data was disclosed.
    PartiallyDisclosed,
    /// Nothing was disclosed.
    Refused,
    /// A data subject's request (rectification, restriction, objection, erasure) was carried
    /// out.
    Fulfilled,
}

/// Records disclosed in answer to a legal request: ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Disclosed {
    /// The entity.
    pub entity: String,
    /// The ids of the disclosed records.
    pub record_ids: Vec<String>,
}

impl Disclosed {
    /// Disclosed records of one entity.
    pub fn new(entity: impl Into<String>, record_ids: Vec<String>) -> Self {
        Self {
            entity: entity.into(),
            record_ids,
        }
    }
}

/// A privacy event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// An export bundle was produced.
    ExportMade {
        /// Whose data.
        subject: Subject,
        /// Records in the bundle.
        records: u64,
        /// SHA-256 of the bundle's manifest.
        manifest_sha256: String,
    },
    /// A deletion was requested.
    DeletionRequested {
        /// The receipt's confirmation code.
        confirmation_code: String,
        /// Whose data.
        subject: Subject,
        /// Who asked.
        source: RequestSource,
    },
    /// A deletion finished (or failed).
    DeletionFinished {
        /// The receipt's confirmation code.
        confirmation_code: String,
        /// Whether every step was applied.
        completed: bool,
        /// Records deleted.
        deleted: u64,
        /// Records anonymized.
        anonymized: u64,
        /// Records kept under a restriction or legal hold.
        retained: u64,
    },
    /// An Instagram account was disconnected (deauthorize callback or user action).
    Disconnected {
        /// The connection record ids.
        connections: Vec<String>,
        /// Credential records deleted.
        credentials_deleted: u64,
    },
    /// A retention run.
    RetentionRun {
        /// Records deleted.
        deleted: u64,
        /// Records anonymized.
        anonymized: u64,
        /// Records left alone because of a legal hold.
        held: u64,
    },
    /// A government or legal request was received.
    LegalRequestReceived {
        /// The backend's id for the request.
        request_id: String,
        /// The requesting authority (an institution, not a person).
        authority: String,
        /// The legal basis the request cites.
        legal_basis: String,
        /// Whose data is requested.
        subjects: Vec<Subject>,
    },
    /// A legal request was answered.
    LegalRequestAnswered {
        /// The backend's id for the request.
        request_id: String,
        /// The answer.
        response: LegalResponse,
        /// The legal basis of the answer.
        legal_basis: String,
        /// What was disclosed (ids only).
        disclosed: Vec<Disclosed>,
    },
}

/// One entry of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Position in the register, from 1.
    pub seq: u64,
    /// When the event happened.
    pub at: DateTime<Utc>,
    /// The event.
    pub event: AuditEvent,
    /// Hash of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Hash of this entry (over seq, time, event and `prev_hash`).
    pub hash: String,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(seq: u64, at: &DateTime<Utc>, event: &AuditEvent, prev: &str) -> Result<String> {
    let event = serde_json::to_vec(event)
        .map_err(|e| Error::invalid(format!("the audit event cannot be encoded: {e}")))?;
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(at.to_rfc3339().as_bytes());
    h.update([0]);
    h.update(&event);
    h.update([0]);
    h.update(prev.as_bytes());
    Ok(hex::encode(h.finalize()))
}

impl AuditEntry {
    /// The entry that follows `prev` (or the first entry). For implementors of
    /// [`AuditLog`](crate::store::AuditLog).
    pub fn next(prev: Option<&AuditEntry>, at: DateTime<Utc>, event: AuditEvent) -> Result<Self> {
        let seq = prev.map_or(1, |p| p.seq + 1);
        let prev_hash = prev.map_or_else(|| GENESIS.to_owned(), |p| p.hash.clone());
        let hash = entry_hash(seq, &at, &event, &prev_hash)?;
        Ok(Self {
            seq,
            at,
            event,
            prev_hash,
            hash,
        })
    }
}

/// Checks that `entries` (from the first entry on) form an unbroken chain.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<()> {
    let mut prev: Option<&AuditEntry> = None;
    for e in entries {
        let expected_seq = prev.map_or(1, |p| p.seq + 1);
        let expected_prev = prev.map_or(GENESIS, |p| p.hash.as_str());
        let broken = |what: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("the audit register is broken at entry {}: {what}", e.seq),
            )
        };
        if e.seq != expected_seq {
            return Err(broken(&format!("expected sequence number {expected_seq}")));
        }
        if e.prev_hash != expected_prev {
            return Err(broken("it does not follow the previous entry"));
        }
        if entry_hash(e.seq, &e.at, &e.event, &e.prev_hash)? != e.hash {
            return Err(broken("its content does not match its hash"));
        }
        prev = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditLog, MemoryStore};
    use chrono::TimeZone;

    #[tokio::test]
    async fn register_is_append_only_and_chained() {
        let store = MemoryStore::new();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        store
            .append(
                t,
                AuditEvent::LegalRequestReceived {
                    request_id: "lr-1".into(),
                    authority: "District Court".into(),
                    legal_basis: "court order 12/2026".into(),
                    subjects: vec![Subject::contact("c1")],
                },
            )
            .await
            .unwrap();
        store
            .append(
                t,
                AuditEvent::LegalRequestAnswered {
                    request_id: "lr-1".into(),
                    response: LegalResponse::PartiallyDisclosed,
                    legal_basis: "court order 12/2026".into(),
                    disclosed: vec![Disclosed::new("message", vec!["m1".into()])],
                },
            )
            .await
            .unwrap();
        store
            .append(
                t,
                AuditEvent::RetentionRun {
                    deleted: 3,
                    anonymized: 1,
                    held: 0,
                },
            )
            .await
            .unwrap();
        let entries = store.entries(None, 10).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        verify_chain(&entries).unwrap();
        assert_eq!(store.entries(Some(2), 10).await.unwrap().len(), 1);

        // editing, removing or reordering is detected
        let mut edited = entries.clone();
        edited[1].event = AuditEvent::RetentionRun {
            deleted: 0,
            anonymized: 0,
            held: 0,
        };
        assert!(verify_chain(&edited).is_err());
        let removed = vec![entries[0].clone(), entries[2].clone()];
        assert!(verify_chain(&removed).is_err());
        let swapped = vec![entries[1].clone(), entries[0].clone()];
        assert!(verify_chain(&swapped).is_err());

        let json = serde_json::to_value(&entries[1]).unwrap();
        assert_eq!(json["event"]["event"], "legal_request_answered");
        assert_eq!(json["event"]["disclosed"][0]["record_ids"][0], "m1");
    }
}
