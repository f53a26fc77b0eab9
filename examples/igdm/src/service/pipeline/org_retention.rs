//! Retention of an organization's own data classes (P8) and of the management API's access log
//! (P17).
//!
//! An organization declares data classes of its own with their periods (privacy-kit
//! [`RetentionPolicy`] values: "payment records are kept 7 years from creation", "support
//! correspondence 2 years from the last activity") and keeps records in them (`org_records`:
//! a reference, such as an invoice or ticket number, and a JSON body). The retention sweeper
//! ([`super::retention`]) calls [`sweep`] with the time: each record whose period is over is
//! deleted or anonymized as its class says, and the run is written to the organization's audit
//! register (counts only). A record of a class the organization has not declared is refused
//! when it is kept, so every record has a period.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use privacy_kit::retention::{Anchor, Disposal, Period, RetentionPolicy};
use privacy_kit::schema::DataClass;
use privacy_kit::store::{AuditLog, Record};
use serde::Serialize;
use sqlx::Row;

use super::Shared;
use crate::service::db::privacy::SqlStore;
use crate::service::db::{to_time, Db};
use crate::service::error::{Error, ErrorKind, Result};

/// The name a class is stored under: its data class's name.
fn class_name(policy: &RetentionPolicy) -> String {
    policy.data_class.to_string()
}

/// Why `policy` cannot be an organization's data class, if it cannot.
pub fn class_problem(policy: &RetentionPolicy) -> Option<String> {
    let name = class_name(policy);
    if name.trim().is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Some(format!(
            "a data class is named with 1 to 64 letters, digits, `_` or `-` (not `{name}`)"
        ));
    }
    let zero = matches!(
        policy.keep_for,
        Period::Days(0) | Period::Months(0) | Period::Years(0)
    );
    if zero {
        return Some(format!("the period of `{name}` must be longer than zero"));
    }
    if policy.keep_for.after(DateTime::<Utc>::UNIX_EPOCH).is_none() {
        return Some(format!("the period of `{name}` is out of range"));
    }
    if policy.anchors.is_empty()
        || policy
            .anchors
            .iter()
            .any(|a| !matches!(a, Anchor::Created | Anchor::LastActivity))
    {
        return Some(format!(
            "the period of `{name}` counts from `created` or `last_activity`"
        ));
    }
    None
}

/// Declares (or changes) data class `policy.data_class` of organization `org` with its period.
/// `Privacy` error when [`class_problem`] finds one.
pub async fn set_class(db: &Db, org: &str, policy: &RetentionPolicy, now: i64) -> Result<()> {
    if let Some(why) = class_problem(policy) {
        return Err(Error::new(ErrorKind::Privacy, why));
    }
    let body = serde_json::to_string(policy)
        .map_err(|e| Error::new(ErrorKind::Privacy, format!("retention class: {e}")))?;
    sqlx::query(
        "INSERT INTO retention_classes (org_id, name, policy, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, name) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
    )
    .bind(org)
    .bind(class_name(policy))
    .bind(body)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Removes data class `name` of organization `org`; `false` when it declared no such class.
/// `Conflict` while records are kept in it: they would be left without a period. They leave by
/// the class's period (the sweeper), or with their subject's deletion.
pub async fn delete_class(db: &Db, org: &str, name: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let kept: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM org_records WHERE org_id = $1 AND data_class = $2",
    )
    .bind(org)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    if kept > 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{kept} records are kept in data class `{name}`, which would leave them without a \
                 period; the class can go once the retention sweeper has removed them"
            ),
        ));
    }
    let gone = sqlx::query("DELETE FROM retention_classes WHERE org_id = $1 AND name = $2")
        .bind(org)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(gone.rows_affected() > 0)
}

/// The data classes organization `org` declared, by name.
pub async fn classes_of(db: &Db, org: &str) -> Result<Vec<RetentionPolicy>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT policy FROM retention_classes WHERE org_id = $1 ORDER BY name")
            .bind(org)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|b| {
            serde_json::from_str(b).map_err(|e| {
                Error::new(
                    ErrorKind::Privacy,
                    format!("a stored retention class of {org} is unreadable ({e}); set it again"),
                )
            })
        })
        .collect()
}

/// Keeps a record of data class `class` for organization `org`, created at `now`; its id.
/// `NotFound` when the organization has not declared the class.
pub async fn keep_record(
    db: &Db,
    org: &str,
    class: &str,
    reference: Option<&str>,
    body: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<String> {
    let declared: Option<String> =
        sqlx::query_scalar("SELECT name FROM retention_classes WHERE org_id = $1 AND name = $2")
            .bind(org)
            .bind(class)
            .fetch_optional(db.pool())
            .await?;
    if declared.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            "your organization has no such data class: declare it with its period first (PUT /privacy/retention-classes/{name})",
        ));
    }
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Privacy,
            format!("the operating system's random generator failed: {e}"),
        )
    })?;
    let id = format!("rec_{}", hex::encode(bytes));
    sqlx::query(
        "INSERT INTO org_records (id, org_id, data_class, reference, body, created_at, last_activity_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&id)
    .bind(org)
    .bind(class)
    .bind(reference)
    .bind(body.to_string())
    .bind(now.timestamp_millis())
    .execute(db.pool())
    .await?;
    Ok(id)
}

/// Marks activity on record `id` of organization `org` (a new message in a support thread) at
/// `now`: a period counted from the last activity starts again. Whether the record exists.
pub async fn touch_record(db: &Db, org: &str, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE org_records SET last_activity_at = $1 WHERE id = $2 AND org_id = $3 AND anonymized_at IS NULL",
    )
    .bind(now.timestamp_millis())
    .bind(id)
    .bind(org)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What [`sweep`] did.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct ClassReport {
    /// Records deleted per organization and data class (`ORG/CLASS`).
    pub deleted: BTreeMap<String, u64>,
    /// Records anonymized per organization and data class (`ORG/CLASS`).
    pub anonymized: BTreeMap<String, u64>,
    /// Access-log entries deleted (older than `access_log_days`).
    pub access_log_deleted: u64,
}

/// Applies the data classes of organization `org` (of every organization when `None`) at
/// `now`, and deletes access-log entries older than the configured `access_log_days`; writes
/// a `retention_run` entry to each organization's audit register where something changed.
pub async fn sweep(shared: &Shared, org: Option<&str>, now: DateTime<Utc>) -> Result<ClassReport> {
    let mut report = ClassReport::default();
    let orgs: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT org_id FROM retention_classes WHERE ($1 = '' OR org_id = $1) ORDER BY org_id",
    )
    .bind(org.unwrap_or_default())
    .fetch_all(shared.db.pool())
    .await?;
    for o in orgs {
        let mut deleted = 0u64;
        let mut anonymized = 0u64;
        for policy in classes_of(&shared.db, &o).await? {
            let (d, a) = apply_class(&shared.db, &o, &policy, now).await?;
            let key = format!("{o}/{}", class_name(&policy));
            if d > 0 {
                report.deleted.insert(key.clone(), d);
            }
            if a > 0 {
                report.anonymized.insert(key, a);
            }
            deleted += d;
            anonymized += a;
        }
        if deleted + anonymized > 0 {
            SqlStore::new(
                shared.db.clone(),
                shared.vault.pseudonymizer().clone(),
                "retention",
            )
            .in_org(Some(&o))
            .append(
                now,
                privacy_kit::audit::AuditEvent::RetentionRun {
                    deleted,
                    anonymized,
                    held: 0,
                },
            )
            .await?;
        }
    }
    let days = chrono::Duration::days(i64::from(shared.config.access_log_days.max(1)));
    report.access_log_deleted =
        sqlx::query("DELETE FROM access_log WHERE at < $1 AND ($2 = '' OR org_id = $2)")
            .bind((now - days).timestamp_millis())
            .bind(org.unwrap_or_default())
            .execute(shared.db.pool())
            .await?
            .rows_affected();
    Ok(report)
}

/// Disposes of the records of one class whose period is over at `now`: (deleted, anonymized).
async fn apply_class(
    db: &Db,
    org: &str,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let class = class_name(policy);
    let rows = sqlx::query(
        "SELECT id, created_at, last_activity_at FROM org_records \
         WHERE org_id = $1 AND data_class = $2 AND anonymized_at IS NULL ORDER BY id",
    )
    .bind(org)
    .bind(&class)
    .fetch_all(db.pool())
    .await?;
    let mut due = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let mut record = Record::new(
            "org_records",
            id.clone(),
            to_time(row.try_get("created_at")?),
        );
        record.anchors.last_activity_at = row
            .try_get::<Option<i64>, _>("last_activity_at")?
            .map(to_time);
        if policy.is_due(&record, now) {
            due.push(id);
        }
    }
    let mut tx = db.begin().await?;
    let (mut deleted, mut anonymized) = (0, 0);
    for id in &due {
        match policy.then {
            Disposal::Anonymize => {
                anonymized += sqlx::query(
                    "UPDATE org_records SET reference = NULL, body = '{}', anonymized_at = $1 WHERE id = $2 AND org_id = $3",
                )
                .bind(now.timestamp_millis())
                .bind(id)
                .bind(org)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            _ => {
                deleted += sqlx::query("DELETE FROM org_records WHERE id = $1 AND org_id = $2")
                    .bind(id)
                    .bind(org)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
        }
    }
    tx.commit().await?;
    Ok((deleted, anonymized))
}

/// A data class of an organization: `name` kept `keep_for` from `anchor`, then `then`.
pub fn class(
    name: &str,
    keep_for: Period,
    anchor: Anchor,
    then: Disposal,
    promise: &str,
) -> RetentionPolicy {
    RetentionPolicy::new(
        name,
        DataClass::Other(name.to_owned()),
        keep_for,
        vec![anchor],
        then,
        promise,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_need_a_name_a_period_and_a_usable_anchor() {
        let ok = class(
            "payment",
            Period::Years(7),
            Anchor::Created,
            Disposal::Delete,
            "",
        );
        assert_eq!(class_problem(&ok), None);
        let bad = [
            class("", Period::Years(7), Anchor::Created, Disposal::Delete, ""),
            class(
                "a b",
                Period::Years(7),
                Anchor::Created,
                Disposal::Delete,
                "",
            ),
            class("x", Period::Days(0), Anchor::Created, Disposal::Delete, ""),
            class(
                "x",
                Period::Years(u32::MAX),
                Anchor::Created,
                Disposal::Delete,
                "",
            ),
            class(
                "x",
                Period::Years(1),
                Anchor::Disconnected,
                Disposal::Delete,
                "",
            ),
        ];
        for policy in bad {
            assert!(class_problem(&policy).is_some(), "{policy:?}");
        }
    }

    #[test]
    fn a_record_is_due_when_its_period_from_its_anchor_is_over() {
        let support = class(
            "support",
            Period::Years(2),
            Anchor::LastActivity,
            Disposal::Delete,
            "",
        );
        let created = to_time(1_600_000_000_000);
        let mut record = Record::new("org_records", "r", created);
        record.anchors.last_activity_at = Some(created + chrono::Duration::days(100));
        let deadline = support.deadline(&record).unwrap();
        assert_eq!(
            deadline,
            Period::Years(2)
                .after(created + chrono::Duration::days(100))
                .unwrap()
        );
        assert!(!support.is_due(&record, deadline - chrono::Duration::seconds(1)));
        assert!(support.is_due(&record, deadline));
    }
}
