//! The retention sweeper: applies each account's retention policies (privacy-kit's presets by
//! default: DM logs anonymized after 12 months (P6), conversations deleted after 90 days (P9),
//! tokens deleted 30 days after a disconnect (P7), a removed connection's data deleted 30 days
//! after (P13), raw webhook notifications deleted after 7 days), writes a report per account,
//! and resumes deletions that did not finish.
//!
//! Organizations' own data classes (P8) and the access log (P17) are swept by
//! [`super::org_retention`] in the same run.
//!
//! The time is passed in ([`sweep`]), so tests can move it; the background job passes the
//! system time every `retention_interval_secs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use privacy_kit::cascade::{self, Counts, DeletionOptions};
use privacy_kit::clock::ManualClock;
use privacy_kit::retention::{
    presets, run_retention, Anchor, Disposal, Period, RetentionPolicy, RetentionReport,
};
use serde::Serialize;
use sqlx::Row;

use super::Shared;
use crate::service::db::privacy::{self as store, Scope, SqlStore};
use crate::service::db::Db;
use crate::service::error::{Error, ErrorKind, Result};

/// Records per read and per applied batch.
const BATCH: usize = 500;

/// The names of the policies that apply to an account that chose none.
pub const DEFAULT_PRESETS: &[&str] = &[
    "dm-logs",
    "conversations",
    "tokens",
    "account-data",
    "raw-notifications",
];

/// The policy of raw webhook notifications: their events are stored as conversation data once
/// processed; the raw bodies are kept a week (Meta retries a delivery for about 36 hours) for
/// replay and diagnosis, then deleted.
pub fn raw_notifications() -> RetentionPolicy {
    RetentionPolicy::new(
        "raw-notifications",
        store::raw_notification(),
        Period::Days(7),
        vec![Anchor::Created],
        Disposal::Delete,
        "Raw webhook notifications are kept 7 days, then deleted",
    )
}

/// The presets an account can choose by name: privacy-kit's, and `raw-notifications`.
pub fn available_presets() -> Vec<RetentionPolicy> {
    let mut all = presets();
    all.push(raw_notifications());
    all
}

/// The default policies.
pub fn default_policies() -> Vec<RetentionPolicy> {
    available_presets()
        .into_iter()
        .filter(|p| DEFAULT_PRESETS.contains(&p.name.as_str()))
        .collect()
}

/// The policies of `account`: its chosen ones, or the defaults.
pub async fn policies_of(db: &Db, account: &str) -> Result<Vec<RetentionPolicy>> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT presets FROM retention_settings WHERE account = $1")
            .bind(account)
            .fetch_optional(db.pool())
            .await?;
    match body {
        None => Ok(default_policies()),
        Some(b) => serde_json::from_str(&b).map_err(|e| {
            Error::new(
                ErrorKind::Privacy,
                format!("the stored retention policies of {account} are unreadable ({e}); set them again"),
            )
        }),
    }
}

/// Sets the policies of `account`.
pub async fn set_policies(
    db: &Db,
    account: &str,
    policies: &[RetentionPolicy],
    now: i64,
) -> Result<()> {
    let body = serde_json::to_string(policies)
        .map_err(|e| Error::new(ErrorKind::Privacy, format!("policies: {e}")))?;
    sqlx::query(
        "INSERT INTO retention_settings (account, presets, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (account) DO UPDATE SET presets = excluded.presets, updated_at = excluded.updated_at",
    )
    .bind(account)
    .bind(body)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What one sweep did for one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    /// The account.
    pub account: String,
    /// When the sweep ran.
    pub at: DateTime<Utc>,
    /// The policies applied (names).
    pub policies: Vec<String>,
    /// Records deleted / anonymized per table.
    pub counts: BTreeMap<String, Counts>,
    /// Records left alone because of a legal hold.
    pub held: u64,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Per account (only accounts where something changed).
    pub accounts: Vec<AccountReport>,
    /// Raw notifications deleted by the global pass.
    pub notifications_deleted: u64,
    /// Unfinished deletions resumed.
    pub deletions_resumed: u64,
    /// The organizations' own data classes (P8) and the access log (P17).
    pub classes: super::org_retention::ClassReport,
}

fn changed(r: &RetentionReport) -> bool {
    let t = cascade::total(&r.counts);
    t.deleted + t.anonymized + t.detached > 0 || r.held > 0
}

/// Runs retention for every account at `now`, then the global pass over raw notifications, then
/// resumes deletions requested more than a minute before `now` that are not done.
pub async fn sweep(shared: &Shared, now: DateTime<Utc>) -> Result<SweepReport> {
    let mut report = sweep_accounts(shared, None, now).await?;
    let schema = store::schema();
    let base = SqlStore::new(
        shared.db.clone(),
        shared.vault.pseudonymizer().clone(),
        "retention",
    );
    let global = vec![raw_notifications()];
    let inbox_only = base.clone().scoped(Scope::InboxOnly);
    let r = run_retention(
        &schema,
        &global,
        &[],
        &inbox_only,
        base.pseudonymizer(),
        now,
        BATCH,
    )
    .await?;
    report.notifications_deleted = r.counts.get(store::INBOX).map_or(0, |c| c.deleted);
    report.deletions_resumed = resume_deletions(shared, now).await?;
    report.classes = super::org_retention::sweep(shared, None, now).await?;
    Ok(report)
}

/// Runs retention for the accounts of organization `org` only (what `POST
/// /privacy/retention/sweep` does for its caller); raw notifications and interrupted deletions
/// are left to the scheduled sweep.
pub async fn sweep_organization(
    shared: &Shared,
    org: &str,
    now: DateTime<Utc>,
) -> Result<SweepReport> {
    let mut report = sweep_accounts(shared, Some(org), now).await?;
    report.classes = super::org_retention::sweep(shared, Some(org), now).await?;
    Ok(report)
}

async fn sweep_accounts(
    shared: &Shared,
    org: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SweepReport> {
    let schema = store::schema();
    let base = SqlStore::new(
        shared.db.clone(),
        shared.vault.pseudonymizer().clone(),
        "retention",
    );
    let mut report = SweepReport::default();
    let accounts: Vec<(String, String)> =
        sqlx::query("SELECT id, org_id FROM accounts WHERE ($1 = '' OR org_id = $1) ORDER BY id")
            .bind(org.unwrap_or_default())
            .fetch_all(shared.db.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("org_id")?)))
            .collect::<std::result::Result<_, sqlx::Error>>()?;
    for (account, account_org) in accounts {
        let policies = policies_of(&shared.db, &account).await?;
        let scoped = base.clone().scoped(Scope::Account(account.clone()));
        let r = run_retention(
            &schema,
            &policies,
            &[],
            &scoped,
            base.pseudonymizer(),
            now,
            BATCH,
        )
        .await?;
        if !changed(&r) {
            continue;
        }
        let account_report = AccountReport {
            account: account.clone(),
            at: now,
            policies: policies.iter().map(|p| p.name.clone()).collect(),
            counts: r.counts.clone(),
            held: r.held,
        };
        // The account row itself may be gone (a removed connection's data); keep the report
        // only while the account exists, the audit register keeps the counts either way.
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1")
            .bind(&account)
            .fetch_optional(shared.db.pool())
            .await?;
        if exists.is_some() {
            let body = serde_json::to_string(&account_report)
                .map_err(|e| Error::new(ErrorKind::Privacy, format!("report: {e}")))?;
            sqlx::query("INSERT INTO retention_reports (account, at, body) VALUES ($1, $2, $3)")
                .bind(&account)
                .bind(now.timestamp_millis())
                .bind(body)
                .execute(shared.db.pool())
                .await?;
        }
        // the register entry belongs to the account's organization, even when retention just
        // deleted the account
        base.clone()
            .in_org(Some(&account_org))
            .append_for_account(now, r.audit_event(), &account)
            .await?;
        report.accounts.push(account_report);
    }
    // Raw notifications no account claims (or kept by an account's longer policy) are deleted
    // by the default policy.
    Ok(report)
}

/// Resumes deletions requested more than a minute before `now` that are not done.
pub async fn resume_deletions(shared: &Shared, now: DateTime<Utc>) -> Result<u64> {
    let schema = store::schema();
    let sql = SqlStore::new(
        shared.db.clone(),
        shared.vault.pseudonymizer().clone(),
        "retention",
    );
    let mut resumed = 0;
    for code in store::unfinished_receipts(&shared.db, now.timestamp_millis() - 60_000).await? {
        // the audit entries of a resumed deletion belong to the organization that asked
        let org: Option<Option<String>> =
            sqlx::query_scalar("SELECT org_id FROM deletion_receipts WHERE code = $1")
                .bind(&code)
                .fetch_optional(shared.db.pool())
                .await?;
        let sql = sql.clone().in_org(org.flatten().as_deref());
        let receipt = cascade::deletion_status(&sql, &code).await?;
        let options = DeletionOptions::new(sql.pseudonymizer()).audit(&sql);
        let clock = ManualClock::new(now);
        cascade::run_deletion(&schema, &sql, &sql, receipt, &options, &clock).await?;
        resumed += 1;
    }
    Ok(resumed)
}

/// One sweep at the system time; the number of accounts where something changed.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let report = sweep(shared, Utc::now()).await?;
    if !report.accounts.is_empty() || report.notifications_deleted > 0 {
        tracing::info!(
            accounts = report.accounts.len(),
            notifications = report.notifications_deleted,
            "retention sweep"
        );
    }
    Ok(report.accounts.len())
}

/// The reports of `account`, newest first.
pub async fn reports(db: &Db, account: &str, limit: i64) -> Result<Vec<serde_json::Value>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM retention_reports WHERE account = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(account)
    .bind(limit.clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect())
}
