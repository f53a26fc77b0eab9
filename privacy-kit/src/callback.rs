//! Meta's deauthorize and data-deletion callbacks.
//!
//! Both callbacks POST a `signed_request`. Verifying its signature is the job of
//! `webhook-verify`; this module takes the verified fields ([`SignedRequestFields`]) and turns
//! them into action:
//!
//! - **data deletion**: [`data_deletion_callback`] records a pending deletion of the Instagram
//!   user's data and returns the JSON answer Meta expects ([`DeletionCallbackAnswer`]: `url` and
//!   `confirmation_code`). A worker then carries it out with
//!   [`cascade::run_deletion`]; the status page looks the receipt
//!   up by its code.
//! - **deauthorize**: [`deauthorize_callback`] deletes the connection's tokens at once and marks
//!   the connection disconnected (the anchor retention policies count from).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use privacy_kit::callback::{data_deletion_callback, SignedRequestFields};
//! use privacy_kit::store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let now = Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap();
//! let fields = SignedRequestFields::new("17841400000000001", now)?;
//! let (receipt, answer) =
//!     data_deletion_callback(&store, Some(&store), &fields, "https://example.com/deletion", now).await?;
//! let json = serde_json::to_value(&answer).unwrap();
//! assert_eq!(json["confirmation_code"], receipt.confirmation_code.as_str());
//! assert_eq!(json["url"], format!("https://example.com/deletion?code={}", receipt.confirmation_code));
//! # Ok::<(), privacy_kit::Error>(())
//! # })?;
//! # Ok::<(), privacy_kit::Error>(())
//! ```

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{AuditEvent, RequestSource};
use crate::cascade::{
    self, plan_deletion, resolve_subject, DeletionOptions, DeletionReceipt, Subject,
};
use crate::error::{Error, Result};
use crate::retention::Anchor;
use crate::schema::{DataClass, OnDelete, Pseudonymizer, Schema};
use crate::store::{AuditLog, Change, Page, ReceiptStore, RecordStore};

/// The fields of a `signed_request` whose signature was already verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignedRequestFields {
    /// The app-scoped id of the user who removed the app or asked for deletion.
    pub user_id: String,
    /// When Meta issued the request.
    pub issued_at: DateTime<Utc>,
    /// When it expires, if given.
    pub expires: Option<DateTime<Utc>>,
    /// The signing algorithm Meta named (`HMAC-SHA256`).
    pub algorithm: String,
}

impl SignedRequestFields {
    /// Fields with a user id and issue time; the user id must not be empty.
    pub fn new(user_id: impl Into<String>, issued_at: DateTime<Utc>) -> Result<Self> {
        let user_id = user_id.into();
        if user_id.trim().is_empty() {
            return Err(Error::invalid(
                "the signed_request has an empty user_id; nothing can be deleted for it",
            ));
        }
        Ok(Self {
            user_id,
            issued_at,
            expires: None,
            algorithm: "HMAC-SHA256".to_owned(),
        })
    }

    /// Reads the decoded payload JSON leniently: `user_id` as a string or number; `issued_at`
    /// and `expires` as seconds or milliseconds, numbers or strings, or ISO 8601 (including
    /// `2024-01-01T00:00:00+0000`). Unknown fields are ignored.
    pub fn from_payload(payload: &Value) -> Result<Self> {
        let user_id = match payload.get("user_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(Error::invalid(
                    "the signed_request payload has no user_id (string or number)",
                ))
            }
        };
        let issued_at = payload
            .get("issued_at")
            .and_then(parse_timestamp)
            .ok_or_else(|| {
                Error::invalid("the signed_request payload has no readable issued_at timestamp")
            })?;
        let mut fields = Self::new(user_id, issued_at)?;
        fields.expires = payload.get("expires").and_then(parse_timestamp);
        if let Some(a) = payload.get("algorithm").and_then(Value::as_str) {
            a.clone_into(&mut fields.algorithm);
        }
        Ok(fields)
    }
}

/// Parses a Meta timestamp: seconds or milliseconds, as a number or a string, or ISO 8601.
pub fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let from_number = |n: i64| {
        if n.abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        }
    };
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .and_then(from_number),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return from_number(n);
            }
            DateTime::parse_from_rfc3339(s)
                .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                        .ok()
                        .map(|n| n.and_utc())
                })
        }
        _ => None,
    }
}

/// The JSON answer Meta expects from a data-deletion callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeletionCallbackAnswer {
    /// Where the person can check the deletion's status.
    pub url: String,
    /// The confirmation code.
    pub confirmation_code: String,
}

impl DeletionCallbackAnswer {
    /// The answer for a receipt, with its status page under `status_base_url` (HTTPS).
    pub fn for_receipt(receipt: &DeletionReceipt, status_base_url: &str) -> Result<Self> {
        Ok(Self {
            url: status_url(status_base_url, &receipt.confirmation_code)?,
            confirmation_code: receipt.confirmation_code.clone(),
        })
    }
}

/// The status page URL of a confirmation code: `base?code=CODE` (or `&code=` when `base` already
/// has a query). Meta requires HTTPS.
pub fn status_url(base: &str, confirmation_code: &str) -> Result<String> {
    let base = base.trim();
    let host = base.strip_prefix("https://").unwrap_or_default();
    if host.is_empty()
        || host.starts_with('/')
        || base.contains(char::is_whitespace)
        || base.contains('#')
    {
        return Err(Error::invalid(format!(
            "the status page URL `{base}` must be an absolute https:// URL without a fragment"
        )));
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}code={confirmation_code}"))
}

/// Handles a data-deletion callback: records a pending deletion of everything the schema holds
/// for the Instagram user, saves the receipt, writes an audit entry, and returns the answer for
/// Meta. Carry the deletion out afterwards with [`cascade::run_deletion`].
pub async fn data_deletion_callback(
    receipts: &dyn ReceiptStore,
    audit: Option<&dyn AuditLog>,
    fields: &SignedRequestFields,
    status_base_url: &str,
    now: DateTime<Utc>,
) -> Result<(DeletionReceipt, DeletionCallbackAnswer)> {
    // Validate the URL before recording anything.
    status_url(status_base_url, "X")?;
    let receipt = cascade::request_deletion(
        receipts,
        audit,
        Subject::instagram_user(fields.user_id.clone()),
        RequestSource::MetaCallback,
        now,
    )
    .await?;
    let answer = DeletionCallbackAnswer::for_receipt(&receipt, status_base_url)?;
    Ok((receipt, answer))
}

/// What a deauthorize callback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Disconnect {
    /// The Instagram user id from the callback.
    pub instagram_user_id: String,
    /// The connection records marked disconnected.
    pub connections: Vec<String>,
    /// Credential records deleted.
    pub credentials_deleted: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Handles a deauthorize callback: for every connection of the Instagram user, deletes its
/// credentials (tokens) now and marks it disconnected at `now`. Other data stays until its
/// retention policy or a deletion request removes it. Safe to repeat.
pub async fn deauthorize_callback(
    schema: &Schema,
    store: &dyn RecordStore,
    audit: Option<&dyn AuditLog>,
    fields: &SignedRequestFields,
    now: DateTime<Utc>,
) -> Result<Disconnect> {
    let subject = Subject::instagram_user(fields.user_id.clone());
    let connections = resolve_subject(schema, store, &subject).await?;
    let mut credential_roots = Vec::new();
    for (entity, id) in &connections {
        for rel in schema.children_of(entity) {
            let is_credential = schema
                .entity(&rel.child)
                .is_some_and(|e| e.data_class == DataClass::Credential);
            if !is_credential || rel.on_delete != OnDelete::Cascade {
                continue;
            }
            let mut page = Page::first(500);
            loop {
                let records = store.linked(&rel.child, &rel.link, id, &page).await?;
                let full = records.len() >= 500;
                credential_roots.extend(records.iter().map(|r| (r.entity.clone(), r.id.clone())));
                match (full, records.last()) {
                    (true, Some(last)) => page = Page::after(last.id.clone(), 500),
                    _ => break,
                }
            }
        }
    }
    // Credentials carry no anonymizable fields; the pseudonymizer is never used for them.
    let pseudonymizer = Pseudonymizer::random()?;
    let options = DeletionOptions::new(&pseudonymizer);
    let plan = plan_deletion(schema, store, &credential_roots, &options, now).await?;
    let mut changes = plan.changes;
    let credentials_deleted = changes
        .iter()
        .filter(|c| matches!(c, Change::Delete { .. }))
        .count() as u64;
    changes.extend(connections.iter().map(|(entity, id)| Change::SetAnchor {
        entity: entity.clone(),
        id: id.clone(),
        anchor: Anchor::Disconnected,
        at: now,
    }));
    if !changes.is_empty() {
        store.apply(&changes).await?;
    }
    let connections: Vec<String> = connections.into_iter().map(|(_, id)| id).collect();
    if let Some(audit) = audit {
        audit
            .append(
                now,
                AuditEvent::Disconnected {
                    connections: connections.clone(),
                    credentials_deleted,
                },
            )
            .await?;
    }
    Ok(Disconnect {
        instagram_user_id: fields.user_id.clone(),
        connections,
        credentials_deleted,
        at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cascade::{run_deletion, DeletionStatus};
    use crate::clock::ManualClock;
    use crate::secret::Secret;
    use crate::store::{MemoryStore, Record};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap()
    }

    fn store() -> MemoryStore {
        let s = MemoryStore::new();
        let t = now() - chrono::Duration::days(100);
        s.insert(Record::new("organization", "o", t));
        s.insert(
            Record::new("instagram_connection", "conn", t)
                .link("organization_id", "o")
                .field("instagram_user_id", 178414),
        );
        s.insert(
            Record::new("access_token", "tok", t)
                .link("connection_id", "conn")
                .field("token", "IGQ"),
        );
        s.insert(Record::new("contact", "ct", t).link("connection_id", "conn"));
        s.insert(Record::new("conversation", "cv", t).link("contact_id", "ct"));
        s
    }

    #[test]
    fn payload_parsing_is_lenient() {
        let f = SignedRequestFields::from_payload(&json!({
            "algorithm": "HMAC-SHA256", "expires": "1291840400", "issued_at": 1291836800,
            "user_id": 218471, "extra": true
        }))
        .unwrap();
        assert_eq!(f.user_id, "218471");
        assert_eq!(f.issued_at, Utc.timestamp_opt(1_291_836_800, 0).unwrap());
        assert_eq!(
            f.expires,
            Some(Utc.timestamp_opt(1_291_840_400, 0).unwrap())
        );
        for v in [
            json!(1291836800000u64),
            json!("2010-12-08T19:33:20+0000"),
            json!("2010-12-08T19:33:20Z"),
        ] {
            assert_eq!(
                parse_timestamp(&v),
                Some(Utc.timestamp_opt(1_291_836_800, 0).unwrap()),
                "{v}"
            );
        }
        assert!(SignedRequestFields::from_payload(&json!({"issued_at": 1})).is_err());
        assert!(
            SignedRequestFields::from_payload(&json!({"user_id": "", "issued_at": 1})).is_err()
        );
        assert!(
            SignedRequestFields::from_payload(&json!({"user_id": "1", "issued_at": "soon"}))
                .is_err()
        );
    }

    #[test]
    fn status_urls() {
        assert_eq!(
            status_url("https://x.io/s", "AB").unwrap(),
            "https://x.io/s?code=AB"
        );
        assert_eq!(
            status_url("https://x.io/s?l=en", "AB").unwrap(),
            "https://x.io/s?l=en&code=AB"
        );
        for bad in [
            "http://x.io/s",
            "https://",
            "x.io",
            "https://x.io/s#f",
            "https:///p",
        ] {
            assert!(status_url(bad, "AB").is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn deletion_callback_then_worker_then_status() {
        let schema = Schema::example();
        let s = store();
        let fields = SignedRequestFields::new("178414", now()).unwrap();
        assert!(
            data_deletion_callback(&s, None, &fields, "http://insecure", now())
                .await
                .is_err()
        );
        let (receipt, answer) =
            data_deletion_callback(&s, Some(&s), &fields, "https://ex.com/status", now())
                .await
                .unwrap();
        assert_eq!(receipt.status, DeletionStatus::Pending);
        assert!(answer
            .confirmation_code
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 2);

        let p = Pseudonymizer::new(Secret::new(vec![1; 32])).unwrap();
        let clock = ManualClock::new(now());
        let done = run_deletion(&schema, &s, &s, receipt, &DeletionOptions::new(&p), &clock)
            .await
            .unwrap();
        assert_eq!(done.status, DeletionStatus::Done);
        assert!(s.record("instagram_connection", "conn").is_none());
        assert!(s.record("conversation", "cv").is_none());
        assert!(s.record("organization", "o").is_some());
        let looked = cascade::deletion_status(&s, &answer.confirmation_code)
            .await
            .unwrap();
        assert_eq!(looked.status, DeletionStatus::Done);
        assert!(looked.status_text().contains(&answer.confirmation_code));
    }

    #[tokio::test]
    async fn deauthorize_removes_token_at_once_and_marks_disconnect() {
        let schema = Schema::example();
        let s = store();
        let fields = SignedRequestFields::new("178414", now()).unwrap();
        let d = deauthorize_callback(&schema, &s, Some(&s), &fields, now())
            .await
            .unwrap();
        assert_eq!(d.connections, vec!["conn".to_owned()]);
        assert_eq!(d.credentials_deleted, 1);
        assert!(s.record("access_token", "tok").is_none());
        let conn = s.record("instagram_connection", "conn").unwrap();
        assert_eq!(conn.anchors.disconnected_at, Some(now()));
        assert!(s.record("conversation", "cv").is_some());
        // repeat: nothing more to delete
        let again = deauthorize_callback(&schema, &s, None, &fields, now())
            .await
            .unwrap();
        assert_eq!(again.credentials_deleted, 0);
        // unknown user: nothing happens
        let other = SignedRequestFields::new("999", now()).unwrap();
        let none = deauthorize_callback(&schema, &s, None, &other, now())
            .await
            .unwrap();
        assert!(none.connections.is_empty());
        let log = crate::store::AuditLog::entries(&s, None, 10).await.unwrap();
        assert_eq!(log.len(), 1);
    }
}
