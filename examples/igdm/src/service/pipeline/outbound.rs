//! Outbound webhooks: the events the service publishes (written in the transaction that
//! produced them) and the delivery worker that POSTs them, signed with Standard Webhooks
//! (`webhook-verify`'s `standard` module).
//!
//! Each delivery is a JSON body `{"type", "timestamp", "data"}` with the headers `webhook-id`
//! (the delivery id, stable across retries and redeliveries), `webhook-timestamp` (Unix
//! seconds of the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`). A 2xx answer
//! delivers it; anything else (or no answer within `outbound.timeout_ms`) is retried with
//! exponential backoff and full jitter up to `outbound.max_attempts`, then marked failed.
//! Every attempt is recorded in `outbound_attempts`.
//!
//! | type | when | `data` |
//! |---|---|---|
//! | `message.received` | a DM, story reply, quick reply, button tap or ice breaker is recorded | `account`, `contact`, `event` (key), `kind`, `text`, `occurred_at` |
//! | `automation.fired` | a rule fired for an event | `account`, `contact`, `event`, `rule`, `reason`, `actions` (types) |
//! | `contact.updated` | tags, fields or hand-off changed (by a rule or an inbound webhook) | `account`, `contact`, `tags`, `fields`, `paused_until` |
//! | `contact.updated` | CRM tags, field values or pipeline stage changed through `/api/crm` (see [`crate::service::http::crm`]) | `account`, `contact`, `source` (`"crm"`), `change`, `tags`, `fields`, `stage` |

use std::time::{Duration, Instant};

use automation_core::event::EventKind as Core;
use automation_core::{Decision, InboundEvent, Outcome, PlannedAction};
use futures_util::StreamExt;
use instagram_graph::retry::RetryPolicy;
use serde_json::json;
use webhook_verify::standard::Webhook;

use super::Shared;
use crate::service::db::{self, outbound, Tx};
use crate::service::error::Result;

/// Publishes what an inbox event produced, in the inbox worker's transaction:
/// `message.received` for a message of the contact, `automation.fired` when a rule fired, and
/// `contact.updated` when the decision changed the contact; `subs` are the account's
/// subscribers (nothing is built when none wants the event).
pub(crate) async fn publish_decision(
    tx: &mut Tx,
    subs: &outbound::Subscribers,
    event: &InboundEvent,
    decision: &Decision,
    stored: Option<&automation_core::Contact>,
    now: i64,
) -> Result<()> {
    let account = &event.account;
    let contact = &event.sender.id;
    let kind = match &event.kind {
        Core::Message { .. } => Some("message"),
        Core::StoryReply { .. } => Some("story_reply"),
        Core::QuickReply { .. } => Some("quick_reply"),
        Core::Postback { .. } => Some("postback"),
        Core::IceBreaker { .. } => Some("ice_breaker"),
        _ => None,
    };
    if let Some(kind) = kind.filter(|_| subs.want(outbound::MESSAGE_RECEIVED)) {
        let data = json!({
            "account": account,
            "contact": contact,
            "event": event.id,
            "kind": kind,
            "text": event.text(),
            "occurred_at": event.occurred_at.timestamp_millis(),
        });
        outbound::enqueue_to(
            tx,
            subs,
            account,
            contact,
            outbound::MESSAGE_RECEIVED,
            &data,
            now,
        )
        .await?;
    }
    if decision.outcome == Outcome::Fired && subs.want(outbound::AUTOMATION_FIRED) {
        let actions: Vec<serde_json::Value> = decision
            .actions
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok())
            .filter_map(|v| v.get("type").cloned())
            .collect();
        let data = json!({
            "account": account,
            "contact": contact,
            "event": event.id,
            "rule": decision.rule,
            "reason": decision.reason,
            "actions": actions,
        });
        outbound::enqueue_to(
            tx,
            subs,
            account,
            contact,
            outbound::AUTOMATION_FIRED,
            &data,
            now,
        )
        .await?;
    }
    let changed = decision.actions.iter().any(|a| {
        matches!(
            a,
            PlannedAction::AddTag { .. }
                | PlannedAction::RemoveTag { .. }
                | PlannedAction::SetField { .. }
                | PlannedAction::HandOff { .. }
        )
    });
    if let (true, Some(c)) = (changed && subs.want(outbound::CONTACT_UPDATED), stored) {
        publish_contact_value(tx, c, now).await?;
    }
    Ok(())
}

/// Publishes `contact.updated` with the contact as stored in `tx`.
pub(crate) async fn publish_contact(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    now: i64,
) -> Result<()> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(c) = body.and_then(|b| serde_json::from_str::<automation_core::Contact>(&b).ok())
    else {
        return Ok(());
    };
    publish_contact_value(tx, &c, now).await
}

/// Publishes `contact.updated` with `c`.
async fn publish_contact_value(tx: &mut Tx, c: &automation_core::Contact, now: i64) -> Result<()> {
    let (account, contact) = (&c.account, &c.id);
    let data = json!({
        "account": account,
        "contact": contact,
        "tags": c.tags,
        "fields": c.fields,
        "paused_until": c.paused_until.map(|t| t.timestamp_millis()),
    });
    outbound::enqueue(tx, account, contact, outbound::CONTACT_UPDATED, &data, now).await?;
    Ok(())
}

/// Delivers one batch of due deliveries; how many were attempted.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let owner = super::lease_owner("outbound");
    let now = db::now_ms();
    let config = &shared.config.outbound;
    let timeout = Duration::from_millis(config.timeout_ms.max(1));
    let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000)
        + i64::try_from(timeout.as_millis()).unwrap_or(10_000);
    let claimed = outbound::claim(&shared.db, &owner, now, now + lease, config.batch).await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    let results: Vec<(outbound::Claimed, Called)> = futures_util::stream::iter(claimed)
        .map(|d| async move {
            let called = call(shared, &d, timeout).await;
            (d, called)
        })
        .buffer_unordered(shared.config.sender_concurrency.max(1))
        .collect()
        .await;
    let policy = RetryPolicy::new().backoff(
        Duration::from_millis(config.retry_base_ms),
        Duration::from_millis(config.retry_max_ms.max(config.retry_base_ms)),
    );
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    for (d, called) in &results {
        let attempt = d.attempts + 1;
        let (outcome, next) = if called.ok {
            ("delivered", None)
        } else if attempt < i64::from(config.max_attempts) {
            let after = policy.backoff_for(
                u32::try_from(attempt).unwrap_or(u32::MAX),
                instagram_graph::retry::random_jitter(),
            );
            (
                "retry",
                Some(now + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2)),
            )
        } else {
            ("failed", None)
        };
        let recorded = outbound::record_attempt(
            &mut tx,
            d,
            &owner,
            &outbound::Attempt {
                outcome,
                status_code: called.status,
                error: called.error.as_deref(),
                duration_ms: called.duration_ms,
                next_attempt_at: next,
            },
            now,
        )
        .await?;
        if recorded {
            tracing::debug!(delivery = %d.id, outcome, status = ?called.status, "outbound webhook attempt");
        }
    }
    tx.commit().await?;
    Ok(n)
}

/// What one POST gave.
struct Called {
    ok: bool,
    status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

async fn call(shared: &Shared, d: &outbound::Claimed, timeout: Duration) -> Called {
    let started = Instant::now();
    let fail = |error: String| Called {
        ok: false,
        status: None,
        error: Some(error),
        duration_ms: 0,
    };
    let mut called = match outbound::with_secret(&shared.db, &shared.vault, &d.subscription_id)
        .await
    {
        Ok(Some((sub, secret))) => match sub.url {
            Some(url) if sub.enabled => 'call: {
                if let Err(e) = crate::service::egress::check_url(
                    &url,
                    shared.config.outbound.allow_private_targets,
                ) {
                    break 'call fail(e);
                }
                let timestamp = db::now_ms() / 1000;
                let signature = Webhook::new(secret).sign(&d.id, timestamp, d.payload.as_bytes());
                let sent = shared
                    .http
                    .post(&url)
                    .timeout(timeout)
                    .header("content-type", "application/json")
                    .header("webhook-id", &d.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(d.payload.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Called {
                        ok: true,
                        status: Some(i64::from(r.status().as_u16())),
                        error: None,
                        duration_ms: 0,
                    },
                    Ok(r) => Called {
                        ok: false,
                        status: Some(i64::from(r.status().as_u16())),
                        error: Some(format!("the receiver answered HTTP {}", r.status())),
                        duration_ms: 0,
                    },
                    Err(e) if e.is_timeout() => fail(format!(
                        "the receiver did not answer within {} ms",
                        timeout.as_millis()
                    )),
                    Err(e) => fail(format!(
                        "the receiver could not be reached: {}",
                        e.without_url()
                    )),
                }
            }
            Some(_) => fail("the subscription is disabled".into()),
            None => fail("the subscription has no URL".into()),
        },
        Ok(None) => fail("the subscription was deleted".into()),
        Err(e) => fail(format!("the subscription could not be read: {e}")),
    };
    called.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    called
}
