//! Per-account send ownership, so that rate limits hold across several instances.
//!
//! Several `igdm serve` processes may share one PostgreSQL database. They share the inbox and the
//! outbox (rows are claimed with `FOR UPDATE SKIP LOCKED` and leases), but the platform's limits
//! are per account (100 sends per second, 750 private replies per hour), and each instance's rate
//! limiter only knows the calls it made itself. So each account's sending is owned by one
//! instance at a time:
//!
//! - Every instance writes a heartbeat (`service_instances`). Its fair share is
//!   `ceil(active accounts / live instances)`.
//! - It holds leases (`account_leases`) on up to its share of accounts, renews them every second
//!   (or quarter of `account_lease_secs` if shorter), takes free or expired ones, and hands extra ones over (it stops
//!   claiming their rows and shortens their lease so that calls already admitted can finish).
//! - The sender claims only outbox rows of accounts it owns, and checks ownership again right
//!   before each call: an instance never calls for an account later than [`STOP_BEFORE_MS`]
//!   before its lease ends (if it cannot renew, for example because the database is unreachable
//!   or the process was paused, it stops on its own; the row is retried by the next owner).
//! - A new owner sends only one rate-limit window ([`WINDOW_MS`]) after it took an account that
//!   was held before (at shutdown an instance expires its leases rather than deleting them),
//!   and first loads the private replies of the last hour from the delivery log into its rate
//!   limiter. So the old owner's last call and the new owner's first call are at least
//!   `STOP_BEFORE_MS + WINDOW_MS` apart and no sliding window at the platform holds calls from
//!   both; the hourly private-reply budget carries over through the database.
//!
//! Failure mode: when an instance dies, its accounts are not sent for until their leases expire
//! (`account_lease_secs`, default 10 s) plus one window; their rows wait in the outbox, nothing
//! is lost or sent twice. Clocks of the instances must agree to well under `STOP_BEFORE_MS`
//! (NTP), since leases are compared across machines.
//!
//! The same round reloads the automation engine when the stored automations changed (another
//! instance's management API wrote them).
//!
//! On SQLite (one process) there is no ownership: the instance owns every account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ratelimit::Class;
use super::Shared;
use crate::service::db::{self, ownership, Backend};
use crate::service::error::Result;

/// An owner stops calling this long before its lease ends.
pub const STOP_BEFORE_MS: i64 = 1_000;
/// A new owner waits this long before its first call: the platform's send window (1 s) plus the
/// rate limiter's guard.
pub const WINDOW_MS: i64 = 1_250;
/// A handed-over lease ends this long after the handover, so admitted calls can finish.
const HANDOVER_MS: i64 = 2 * STOP_BEFORE_MS;

/// This instance's view of the accounts it sends for.
#[derive(Debug)]
pub struct Ownership {
    instance: String,
    started_at: i64,
    shared_database: bool,
    held: Mutex<HashMap<String, ownership::Lease>>,
    next_round: Mutex<Option<Instant>>,
    automations_seen: Mutex<Option<(i64, i64)>>,
}

impl Ownership {
    /// Ownership for an instance on `backend`: leases on PostgreSQL, none on SQLite.
    pub fn new(backend: Backend) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let now = db::now_ms();
        Self {
            instance: format!(
                "{host}:{}:{now}:{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
            started_at: now,
            shared_database: backend == Backend::Postgres,
            held: Mutex::new(HashMap::new()),
            next_round: Mutex::new(None),
            automations_seen: Mutex::new(None),
        }
    }

    /// This instance's id (the `owner` of its leases).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The owner to filter outbox claims by: `None` when this instance owns every account.
    pub fn claim_filter(&self) -> Option<&str> {
        self.shared_database.then_some(self.instance.as_str())
    }

    /// Whether this instance may call for `account` at `now` (Unix ms).
    pub fn may_send(&self, account: &str, now: i64) -> bool {
        if !self.shared_database {
            return true;
        }
        let held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        held.get(account)
            .is_some_and(|l| now >= l.sends_from && now < l.lease_until - STOP_BEFORE_MS)
    }

    /// The accounts held now, by id.
    pub fn held(&self) -> Vec<String> {
        let held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut ids: Vec<String> = held.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn set_held(&self, leases: Vec<ownership::Lease>) {
        let mut held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        *held = leases.into_iter().map(|l| (l.account.clone(), l)).collect();
    }

    fn due(&self, every: Duration) -> bool {
        let mut next = match self.next_round.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        if next.is_some_and(|n| now < n) {
            return false;
        }
        *next = Some(now + every);
        true
    }
}

/// One ownership round (every quarter of `account_lease_secs`, at most 1 s apart; other calls
/// return at once):
/// heartbeat, renew, hand over extras, take free accounts up to the fair share. The number of
/// accounts taken.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let own = &shared.ownership;
    let lease_ms = i64::try_from(shared.config.account_lease().as_millis()).unwrap_or(10_000);
    let every = (shared.config.account_lease() / 4).min(Duration::from_secs(1));
    if !own.shared_database || !own.due(every) {
        return Ok(0);
    }
    let db = &shared.db;
    let now = db::now_ms();
    ownership::heartbeat(db, &own.instance, own.started_at, now, now - 10 * lease_ms).await?;
    let live = ownership::live_instances(db, now - lease_ms).await?;
    let accounts = ownership::active_accounts(db).await?.len() as i64;
    let share = usize::try_from((accounts + live - 1) / live).unwrap_or(0);
    let mut keep = Vec::new();
    for (i, lease) in ownership::held(db, &own.instance, now)
        .await?
        .into_iter()
        .enumerate()
    {
        if i < share {
            if ownership::renew(db, &lease.account, &own.instance, now, now + lease_ms).await? {
                keep.push(ownership::Lease {
                    lease_until: now + lease_ms,
                    ..lease
                });
            }
        } else {
            let until = lease.lease_until.min(now + HANDOVER_MS);
            ownership::shorten(db, &lease.account, &own.instance, until).await?;
            tracing::debug!(account = %lease.account, "handing the account's sending over");
            keep.push(ownership::Lease {
                lease_until: until,
                ..lease
            });
        }
    }
    let mut taken = 0;
    let mut holding = keep
        .iter()
        .filter(|l| l.lease_until > now + HANDOVER_MS)
        .count();
    if holding < share {
        for (account, was_held) in ownership::free_accounts(db, now).await? {
            if holding >= share {
                break;
            }
            // Nobody ever sent for an account never held; otherwise wait one window.
            let sends_from = if was_held { now + WINDOW_MS } else { now };
            if ownership::acquire(db, &account, &own.instance, now, now + lease_ms, sends_from)
                .await?
            {
                // The hourly private-reply budget carries over from the previous owners.
                let since = now - 3_600_000 - WINDOW_MS;
                let at = ownership::private_replies_since(db, &account, since).await?;
                let base = Instant::now();
                shared.limiter.seed(
                    &account,
                    Class::PrivateReply,
                    at.iter().filter_map(|&t| {
                        base.checked_sub(Duration::from_millis(u64::try_from(now - t).unwrap_or(0)))
                    }),
                );
                tracing::debug!(%account, "took over the account's sending");
                keep.push(ownership::Lease {
                    account,
                    lease_until: now + lease_ms,
                    sends_from,
                });
                holding += 1;
                taken += 1;
            }
        }
    }
    own.set_held(keep);
    reload_changed_automations(shared).await?;
    Ok(taken)
}

/// Another instance may have changed the automations (through its management API): reloads the
/// engine when their count or latest change differs from the last round's.
async fn reload_changed_automations(shared: &Shared) -> Result<()> {
    let row = sqlx::query("SELECT COUNT(*) AS n, MAX(updated_at) AS latest FROM automations")
        .fetch_one(shared.db.pool())
        .await?;
    use sqlx::Row;
    let now_seen = (
        row.try_get::<i64, _>("n")?,
        row.try_get::<Option<i64>, _>("latest")?.unwrap_or(0),
    );
    let before = {
        let mut seen = match shared.ownership.automations_seen.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        seen.replace(now_seen)
    };
    if before != Some(now_seen) {
        shared.reload_engine().await?;
        tracing::debug!("automations changed in the database; engine reloaded");
    }
    Ok(())
}

/// Gives up this instance's leases and heartbeat (at shutdown, after the workers stopped).
pub async fn release(shared: &Shared) -> Result<()> {
    if shared.ownership.shared_database {
        ownership::release_all(&shared.db, &shared.ownership.instance, db::now_ms()).await?;
        shared.ownership.set_held(Vec::new());
    }
    Ok(())
}
