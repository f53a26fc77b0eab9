//! The inbox worker: claims stored notifications with a lease, parses them with
//! `instagram-graph`, dedups each event on its key, decides with `automation-core` (its stores on
//! SQL, in the same transaction), and writes one outbox row per action before committing.

use std::hash::{Hash, Hasher};

use automation_core::event::EventKind as Core;
use automation_core::{Decision, InboundEvent, Outcome};
use sqlx::Row;

use super::convert::{self, Converted};
use super::Shared;
use crate::service::db::automation_store::TxStore;
use crate::service::db::{self, delivery_log, inbox, outbox, Tx};
use crate::service::error::Result;

/// A notification whose processing failed this many times is set aside as `failed`.
const MAX_INBOX_ATTEMPTS: i64 = 5;

/// Claims and processes one batch; the number of notifications finished.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let owner = super::lease_owner("inbox");
    let now = db::now_ms();
    let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000);
    let rows = inbox::claim(
        &shared.db,
        &owner,
        now,
        now + lease,
        shared.config.inbox_batch,
    )
    .await?;
    if rows.len() > 1 {
        match process_batch(shared, &owner, &rows).await {
            Ok(n) => return Ok(n),
            Err(e) => {
                tracing::debug!(error = %e, "batch failed; processing its notifications one by one")
            }
        }
    }
    let mut done = 0;
    for row in rows {
        match process(shared, &owner, &row).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(inbox = %row.id, error = %e, "processing a notification failed; it will be retried");
                if row.attempts >= MAX_INBOX_ATTEMPTS {
                    let mut tx = shared.db.begin().await?;
                    let reason = format!("gave up after {} attempts: {e}", row.attempts);
                    inbox::finish(
                        &mut tx,
                        &row.id,
                        &owner,
                        "failed",
                        Some(&reason),
                        db::now_ms(),
                    )
                    .await?;
                    tx.commit().await?;
                }
            }
        }
    }
    Ok(done)
}

/// Processes one claimed notification in its own transaction; `false` when the lease was lost.
async fn process(shared: &Shared, owner: &str, row: &inbox::Claimed) -> Result<bool> {
    let engine = shared.engine();
    let store = TxStore::new(shared.db.begin().await?);
    let Some(outcomes) = process_in(&engine, &store, owner, row).await? else {
        store.into_inner().rollback().await?;
        return Ok(false);
    };
    store.into_inner().commit().await?;
    count(shared, &outcomes);
    Ok(true)
}

/// Processes claimed notifications together in one transaction (one commit for the batch).
/// Fails as a whole (nothing kept) if any of them fails or lost its lease; the caller then
/// processes them one by one.
async fn process_batch(shared: &Shared, owner: &str, rows: &[inbox::Claimed]) -> Result<usize> {
    let engine = shared.engine();
    let store = TxStore::new(shared.db.begin().await?);
    let mut all = Vec::new();
    for row in rows {
        match process_in(&engine, &store, owner, row).await? {
            Some(outcomes) => all.extend(outcomes),
            None => {
                return Err(crate::service::error::Error::new(
                    crate::service::error::ErrorKind::Database,
                    "a lease was lost during the batch",
                ))
            }
        }
    }
    store.into_inner().commit().await?;
    count(shared, &all);
    Ok(rows.len())
}

fn count(shared: &Shared, outcomes: &[&str]) {
    for outcome in outcomes {
        if *outcome == "unparseable" {
            shared.metrics.rejected("unparseable");
        } else {
            shared.metrics.processed(outcome);
        }
    }
}

/// Does the work of one notification inside `store`'s transaction: the outcome of each event
/// (`unparseable` for a body that is no notification), or `None` when the lease was lost.
async fn process_in(
    engine: &automation_core::Engine,
    store: &TxStore,
    owner: &str,
    row: &inbox::Claimed,
) -> Result<Option<Vec<&'static str>>> {
    let now = db::now_ms();
    let notification = match instagram_graph::webhook::parse(&row.body) {
        Ok(n) => n,
        Err(e) => {
            let mut tx = store.tx().await;
            let reason = format!("not a webhook notification: {e}");
            let ok =
                inbox::finish(&mut tx, &row.id, owner, inbox::REJECTED, Some(&reason), now).await?;
            return Ok(ok.then(|| vec!["unparseable"]));
        }
    };
    let received = db::to_time(row.received_at);
    let mut outcomes = Vec::new();
    for event in notification.events() {
        match convert::inbound(event, received) {
            Converted::Skip {
                account,
                key,
                kind,
                reason,
            } => {
                let mut tx = store.tx().await;
                let account = account.unwrap_or_default();
                let decision = serde_json::json!({ "outcome": "skipped", "reason": reason });
                record_event(
                    &mut tx,
                    &account,
                    &key,
                    &row.id,
                    kind,
                    "",
                    None,
                    now,
                    now,
                    "skipped",
                    None,
                    &decision.to_string(),
                    true,
                )
                .await?;
                outcomes.push("skipped");
            }
            Converted::Decide(event) => {
                let outcome = decide(engine, store, &row.id, event, now).await?;
                outcomes.push(outcome);
            }
        }
    }
    let reason = (!notification.is_complete()).then(|| {
        notification
            .errors()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    });
    let mut tx = store.tx().await;
    let ok = inbox::finish(&mut tx, &row.id, owner, inbox::DONE, reason.as_deref(), now).await?;
    Ok(ok.then_some(outcomes))
}

#[allow(clippy::too_many_arguments)]
async fn record_event(
    tx: &mut Tx,
    account: &str,
    key: &str,
    inbox_id: &str,
    kind: &str,
    contact: &str,
    text: Option<&str>,
    occurred_at: i64,
    now: i64,
    outcome: &str,
    rule: Option<&str>,
    decision: &str,
    ignore_duplicate: bool,
) -> Result<()> {
    let sql = if ignore_duplicate {
        "INSERT INTO events (account, key, inbox_id, kind, contact, text, occurred_at, processed_at, outcome, rule, decision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (account, key) DO NOTHING"
    } else {
        "INSERT INTO events (account, key, inbox_id, kind, contact, text, occurred_at, processed_at, outcome, rule, decision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    };
    sqlx::query(sql)
        .bind(account)
        .bind(key)
        .bind(inbox_id)
        .bind(kind)
        .bind(contact)
        .bind(text)
        .bind(occurred_at)
        .bind(now)
        .bind(outcome)
        .bind(rule)
        .bind(decision)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn kind_name(kind: &Core) -> &'static str {
    match kind {
        Core::Comment { .. } => "comment",
        Core::LiveComment { .. } => "live_comment",
        Core::Message { .. } => "message",
        Core::StoryReply { .. } => "story_reply",
        Core::StoryMention { .. } => "story_mention",
        Core::Postback { .. } => "postback",
        Core::QuickReply { .. } => "quick_reply",
        Core::IceBreaker { .. } => "ice_breaker",
        Core::Referral { .. } => "referral",
        Core::OptIn { .. } => "opt_in",
        Core::Reaction { .. } => "reaction",
        Core::Read { .. } => "read",
        Core::Echo { .. } => "echo",
        _ => "other",
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Fired => "fired",
        Outcome::Flow => "flow",
        Outcome::NoMatch => "no_match",
        Outcome::Duplicate => "duplicate",
        Outcome::Paused => "paused",
        Outcome::Ignored => "ignored",
        _ => "other",
    }
}

/// Decides one event inside the transaction; its outcome name.
async fn decide(
    engine: &automation_core::Engine,
    store: &TxStore,
    inbox_id: &str,
    mut event: InboundEvent,
    now: i64,
) -> Result<&'static str> {
    {
        let mut tx = store.tx().await;
        // Several instances: one decision at a time per contact (this one then sees the other's).
        tx.lock_contact(&event.account, &event.sender.id).await?;
        let seen = sqlx::query("SELECT 1 AS one FROM events WHERE account = $1 AND key = $2")
            .bind(&event.account)
            .bind(&event.id)
            .fetch_optional(&mut **tx)
            .await?;
        if seen.is_some() {
            return Ok("duplicate");
        }
        db::accounts::touch_webhook(&mut tx, &event.account, now).await?;
        // Delivery status from echoes and read receipts.
        match &mut event.kind {
            Core::Echo { mid, from_app, .. } => {
                *from_app = outbox::is_ours(&mut tx, &event.account, &event.sender.id, mid).await?;
                if let Some(key) = outbox::mark_delivered(&mut tx, &event.account, mid, now).await?
                {
                    log_status(&mut tx, &key, &event.account, "delivered", Some(mid), now).await?;
                }
            }
            Core::Read { mid } => {
                let until = match outbox::sent_at_of(&mut tx, &event.account, mid).await? {
                    Some(at) => at,
                    None => event.occurred_at.timestamp_millis(),
                };
                for key in
                    outbox::mark_read(&mut tx, &event.account, &event.sender.id, until, now).await?
                {
                    log_status(&mut tx, &key, &event.account, "read", None, now).await?;
                }
            }
            _ => {}
        }
    }
    let seed = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        event.id.hash(&mut h);
        h.finish()
    };
    let decision: Decision = engine.decide(store, &event, db::to_time(now), seed).await?;
    let mut tx = store.tx().await;
    write_actions(&mut tx, &event.id, &decision, now).await?;
    let outcome = outcome_name(decision.outcome);
    let json = serde_json::to_string(&decision).unwrap_or_default();
    record_event(
        &mut tx,
        &event.account,
        &event.id,
        inbox_id,
        kind_name(&event.kind),
        &event.sender.id,
        event.text(),
        event.occurred_at.timestamp_millis(),
        now,
        outcome,
        decision.rule.as_deref(),
        &json,
        false,
    )
    .await?;
    tracing::debug!(event = %event.id, outcome, rule = ?decision.rule, reason = %decision.reason, "decided");
    Ok(outcome)
}

/// Writes a decision's outbox rows (key = event key + `#` + action index, each logged as
/// `queued`) and schedules its flow wake-ups, in the caller's transaction.
pub(crate) async fn write_actions(
    tx: &mut Tx,
    event_key: &str,
    decision: &Decision,
    now: i64,
) -> Result<()> {
    let account = &decision.account;
    for (index, action) in decision.actions.iter().enumerate() {
        if let automation_core::PlannedAction::Wake { at } = action {
            sqlx::query(
                "INSERT INTO wakes (account, contact, due_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (account, contact) DO UPDATE SET due_at = excluded.due_at, \
                 lease_owner = NULL, lease_until = NULL",
            )
            .bind(account)
            .bind(&decision.contact)
            .bind(at.timestamp_millis())
            .execute(&mut **tx)
            .await?;
            continue;
        }
        let Some((kind, recipient)) = convert::outbox_kind(action, &decision.contact) else {
            continue;
        };
        let key = format!("{event_key}#{index}");
        let row = outbox::NewAction {
            key: key.clone(),
            account: account.clone(),
            event_key: event_key.to_string(),
            action_index: i64::try_from(index).unwrap_or(i64::MAX),
            rule: decision.rule.clone(),
            kind: kind.to_string(),
            recipient,
            action: serde_json::to_string(action).unwrap_or_default(),
        };
        if outbox::insert(tx, &row, now).await? {
            delivery_log::append(
                tx,
                &delivery_log::Entry {
                    outbox_key: &key,
                    account,
                    rule: decision.rule.as_deref(),
                    kind,
                    attempt: 0,
                    status: "queued",
                    ..Default::default()
                },
                now,
            )
            .await?;
        }
    }
    Ok(())
}

async fn log_status(
    tx: &mut Tx,
    key: &str,
    account: &str,
    status: &str,
    mid: Option<&str>,
    now: i64,
) -> Result<()> {
    let row = sqlx::query("SELECT rule, kind FROM outbox WHERE key = $1")
        .bind(key)
        .fetch_one(&mut **tx)
        .await?;
    let rule: Option<String> = row.try_get("rule")?;
    let kind: String = row.try_get("kind")?;
    delivery_log::append(
        tx,
        &delivery_log::Entry {
            outbox_key: key,
            account,
            rule: rule.as_deref(),
            kind: &kind,
            status,
            mid,
            ..Default::default()
        },
        now,
    )
    .await
}
