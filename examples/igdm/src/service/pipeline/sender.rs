//! The sender: claims due outbox rows with a lease, waits for the account's rate limiter, records
//! the attempt (committed) before calling the Graph API, and records the outcome in the delivery
//! log. Retries follow `instagram-graph`'s retry policy by error kind; an ambiguous failure of a
//! private reply is never retried; error 190 marks the account `needs_reconnect` and holds its
//! sends until it reconnects.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use automation_core::PlannedAction;
use futures_util::StreamExt;
use instagram_graph::retry::{Operation, RetryDecision, RetryPolicy};
use instagram_graph::ErrorKind as GraphKind;

use super::convert::{self, Call};
use super::ratelimit::Class;
use super::Shared;
use crate::service::db::rows::Param;
use crate::service::db::{self, accounts, delivery_log, outbox};
use crate::service::error::Result;

/// Sends one batch of due rows; the number of rows handled.
///
/// Three steps, two commits for the whole batch: every attempt is recorded (`sending`) before
/// any call; the calls run concurrently; their outcomes are recorded together.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let now = db::now_ms();
    for (key, account, rule, kind, attempts) in outbox::fail_abandoned(&shared.db, now).await? {
        let mut tx = shared.db.begin().await?;
        delivery_log::append(
            &mut tx,
            &delivery_log::Entry {
                outbox_key: &key,
                account: &account,
                rule: rule.as_deref(),
                kind: &kind,
                attempt: attempts,
                status: "failed",
                error_kind: Some("ambiguous"),
                error_message: Some("the worker stopped during the call; not re-sent"),
                ..Default::default()
            },
            now,
        )
        .await?;
        tx.commit().await?;
        shared.metrics.send(&kind, "ambiguous");
    }
    let owner = super::lease_owner("sender");
    let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000);
    let rows = outbox::claim(
        &shared.db,
        &owner,
        now,
        now + lease,
        shared.config.outbox_batch,
        shared.ownership.claim_filter(),
    )
    .await?;
    let n = rows.len();
    if n == 0 {
        return Ok(0);
    }
    // AI replies become the text DMs to send (asked concurrently; see `service::ai`).
    let rows = crate::service::ai::resolve_batch(shared, rows).await;

    // 1. Prepare every row; record the attempts (and the rows that cannot be sent) in one commit.
    let mut prepared = Vec::new();
    let mut clients = HashMap::new();
    for row in rows {
        prepared.push(prepare(shared, &mut clients, row).await);
    }
    let started_ms = db::now_ms();
    let lease_until =
        started_ms + lease + i64::try_from(shared.config.call_timeout_ms).unwrap_or(30_000);
    let mut ready = Vec::new();
    let mut metrics = Vec::new();
    let mut log = Vec::new();
    let mut tx = shared.db.begin().await?;
    let keys: Vec<&str> = prepared
        .iter()
        .filter_map(|p| match p {
            Prepared::Ready { row, .. } => Some(row.key.as_str()),
            _ => None,
        })
        .collect();
    let marked = outbox::mark_sending_many(&mut tx, &keys, &owner, started_ms, lease_until).await?;
    for p in prepared {
        match p {
            Prepared::Ready { row, call, client } => {
                if marked.contains(&row.key) {
                    ready.push((row, call, client));
                }
            }
            Prepared::Deferred { row, next } => {
                outbox::requeue(&mut tx, &row.key, next, None, false, started_ms).await?;
                metrics.push((row.kind, "rate_limited_locally"));
            }
            Prepared::Failed { row, kind, message } => {
                outbox::mark_failed(&mut tx, &row.key, kind, &message, started_ms).await?;
                log.push(
                    delivery_log::Entry {
                        outbox_key: &row.key,
                        account: &row.account,
                        rule: row.rule.as_deref(),
                        kind: &row.kind,
                        attempt: row.attempts,
                        status: "failed",
                        error_kind: Some(kind),
                        error_message: Some(&message),
                        ..Default::default()
                    }
                    .row(started_ms),
                );
                metrics.push((row.kind, "failed"));
            }
        }
    }
    delivery_log::append_many(&mut tx, &log).await?;
    // The attempts are on record before any call: a crash from here on never re-sends.
    tx.commit().await?;
    for (kind, outcome) in &metrics {
        shared.metrics.send(kind, outcome);
    }

    // 2. Call, concurrently.
    let results: Vec<(outbox::Claimed, Result<Option<String>, Failure>)> =
        futures_util::stream::iter(ready)
            .map(|(row, call, client)| async move {
                if let (Some(received), 0) = (row.received_at, row.attempts) {
                    let delay = (started_ms - received).max(0) as f64 / 1000.0;
                    shared.metrics.event_to_send.observe(delay);
                }
                pace(shared, &row).await;
                let started = Instant::now();
                // Several instances: only the account's owner calls (see `ownership`).
                let result = if shared.ownership.may_send(&row.account, db::now_ms()) {
                    perform(shared, &client, &call).await
                } else {
                    Err(Failure::Http {
                        message: "not sent: this instance no longer owns the account's sending; \
                                  the next owner sends it"
                            .into(),
                        before_send: true,
                    })
                };
                shared
                    .metrics
                    .send_latency
                    .observe(started.elapsed().as_secs_f64());
                (row, result)
            })
            .buffer_unordered(shared.config.sender_concurrency)
            .collect()
            .await;

    // 3. Record the outcomes in one commit, then act on them.
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    let mut effects = Vec::new();
    let mut log = Vec::new();
    for (row, result) in &results {
        effects.push(record(shared, &mut tx, &mut log, row, result, now).await?);
    }
    delivery_log::append_many(&mut tx, &log).await?;
    tx.commit().await?;
    for ((row, _), effect) in results.iter().zip(effects) {
        shared.metrics.send(&row.kind, effect.outcome);
        match effect.account {
            Some(AccountEffect::NeedsReconnect) => {
                accounts::set_status(
                    &shared.db,
                    &row.account,
                    accounts::NEEDS_RECONNECT,
                    Some("the access token was refused (error 190); reconnect the account"),
                    now,
                )
                .await?;
                shared.forget_client(&row.account);
                tracing::warn!(account = %row.account, "token refused (190): account needs reconnect; its sends are held");
            }
            Some(AccountEffect::Failure) => accounts::add_failure(&shared.db, &row.account).await?,
            None => {}
        }
    }
    Ok(n)
}

/// Waits until the account's Send API window has room at the moment of the call (see
/// `Shared::pacer`); actions that make no Send API call pass at once.
async fn pace(shared: &Shared, row: &outbox::Claimed) {
    if !matches!(row.kind.as_str(), "private_reply" | "send_dm" | "ai_reply") {
        return;
    }
    while let Err(wait) = shared
        .pacer
        .try_acquire(&row.account, &[Class::Send], Instant::now())
    {
        tokio::time::sleep(wait).await;
    }
}

/// Why a call failed.
enum Failure {
    Graph(instagram_graph::Error),
    Http { message: String, before_send: bool },
}

/// A claimed row after the checks that need no call.
enum Prepared {
    Ready {
        row: outbox::Claimed,
        call: Call,
        client: instagram_graph::Client,
    },
    Deferred {
        row: outbox::Claimed,
        next: i64,
    },
    Failed {
        row: outbox::Claimed,
        kind: &'static str,
        message: String,
    },
}

/// Checks a claimed row and readies its call; `clients` keeps each account's client for the
/// batch (one token lookup per account, not per row).
async fn prepare(
    shared: &Shared,
    clients: &mut HashMap<String, instagram_graph::Client>,
    row: outbox::Claimed,
) -> Prepared {
    let call = serde_json::from_str::<PlannedAction>(&row.action)
        .map_err(|e| format!("the stored action is unreadable: {e}"))
        .and_then(|a| convert::call(&a).map_err(|e| e.to_string()));
    let call = match call {
        Ok(Some(call)) => call,
        Ok(None) => {
            return Prepared::Failed {
                row,
                kind: "unsupported",
                message: "this action does not call out".into(),
            }
        }
        Err(message) => {
            return Prepared::Failed {
                row,
                kind: "validation",
                message,
            }
        }
    };
    let known = clients.get(&row.account).cloned();
    let client = match known {
        Some(c) => Ok(c),
        None => shared.client_for(&row.account).await.inspect(|c| {
            clients.insert(row.account.clone(), c.clone());
        }),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            return Prepared::Failed {
                row,
                kind: "account",
                message: e.message().to_string(),
            }
        }
    };
    let classes: &[Class] = match row.kind.as_str() {
        "private_reply" => &[Class::Send, Class::PrivateReply],
        "send_dm" | "ai_reply" => &[Class::Send],
        _ => &[],
    };
    loop {
        match shared
            .limiter
            .try_acquire(&row.account, classes, Instant::now())
        {
            Ok(()) => return Prepared::Ready { row, call, client },
            Err(wait) if wait <= Duration::from_millis(200) => tokio::time::sleep(wait).await,
            Err(wait) => {
                let next = db::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                return Prepared::Deferred { row, next };
            }
        }
    }
}

async fn perform(
    shared: &Shared,
    client: &instagram_graph::Client,
    call: &Call,
) -> Result<Option<String>, Failure> {
    match call {
        Call::Send(request) => client
            .send(request)
            .await
            .map(|r| r.data.message_id.map(|m| m.as_str().to_string()))
            .map_err(Failure::Graph),
        Call::PublicReply { comment_id, text } => client
            .reply_to_comment(comment_id, text)
            .await
            .map(|r| Some(r.data.id))
            .map_err(Failure::Graph),
        Call::Webhook { url, body } => match shared.http.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => Ok(None),
            Ok(r) => Err(Failure::Http {
                message: format!("the automation webhook answered HTTP {}", r.status()),
                before_send: false,
            }),
            Err(e) => Err(Failure::Http {
                message: format!("the automation webhook failed: {e}"),
                before_send: e.is_connect(),
            }),
        },
    }
}

enum AccountEffect {
    NeedsReconnect,
    Failure,
}

struct Effect {
    outcome: &'static str,
    account: Option<AccountEffect>,
}

/// Records one call's outcome in `tx`: sent, held (190), retry, or failed.
async fn record(
    shared: &Shared,
    tx: &mut db::Tx,
    log: &mut Vec<Vec<Param>>,
    row: &outbox::Claimed,
    result: &Result<Option<String>, Failure>,
    now: i64,
) -> Result<Effect> {
    let attempt = row.attempts + 1;
    let entry = |status: &'static str| delivery_log::Entry {
        outbox_key: &row.key,
        account: &row.account,
        rule: row.rule.as_deref(),
        kind: &row.kind,
        attempt,
        status,
        ..Default::default()
    };
    let failure = match result {
        Ok(mid) => {
            outbox::mark_sent(tx, &row.key, mid.as_deref(), now).await?;
            log.push(
                delivery_log::Entry {
                    mid: mid.as_deref(),
                    ..entry("sent")
                }
                .row(now),
            );
            return Ok(Effect {
                outcome: "sent",
                account: None,
            });
        }
        Err(failure) => failure,
    };
    if let Failure::Graph(e) = failure {
        if matches!(e.kind(), GraphKind::TokenInvalid { .. }) {
            let message = e.to_string();
            // Refused before anything was sent: held (queued) until the account reconnects.
            outbox::requeue(
                tx,
                &row.key,
                now,
                Some(("token_invalid", &message)),
                true,
                now,
            )
            .await?;
            log.push(
                delivery_log::Entry {
                    error_kind: Some("token_invalid"),
                    error_message: Some(&message),
                    ..entry("failed")
                }
                .row(now),
            );
            return Ok(Effect {
                outcome: "token_invalid",
                account: Some(AccountEffect::NeedsReconnect),
            });
        }
    }
    let policy = policy(shared);
    let attempt_u32 = u32::try_from(attempt).unwrap_or(u32::MAX);
    let jitter = instagram_graph::retry::random_jitter();
    let (kind, message, decision) = match failure {
        Failure::Graph(e) => {
            let operation = match row.kind.as_str() {
                "private_reply" => Operation::PrivateReply,
                _ => Operation::Send,
            };
            let decision = policy.decide(attempt_u32, e, operation, jitter);
            (e.kind().name().to_string(), e.to_string(), decision)
        }
        Failure::Http {
            message,
            before_send,
        } => {
            let left = attempt < i64::from(policy.max_attempts);
            let decision = if left && (*before_send || row.kind == "webhook") {
                RetryDecision::Retry {
                    after: policy.backoff_for(attempt_u32, jitter),
                }
            } else {
                RetryDecision::GiveUp
            };
            ("http".to_string(), message.clone(), decision)
        }
    };
    match decision {
        RetryDecision::Retry { after } => {
            let next = now + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
            outbox::requeue(tx, &row.key, next, Some((&kind, &message)), false, now).await?;
            log.push(
                delivery_log::Entry {
                    error_kind: Some(&kind),
                    error_message: Some(&message),
                    ..entry("retry")
                }
                .row(now),
            );
            Ok(Effect {
                outcome: "retry",
                account: None,
            })
        }
        RetryDecision::GiveUp => {
            outbox::mark_failed(tx, &row.key, &kind, &message, now).await?;
            log.push(
                delivery_log::Entry {
                    error_kind: Some(&kind),
                    error_message: Some(&message),
                    ..entry("failed")
                }
                .row(now),
            );
            Ok(Effect {
                outcome: "failed",
                account: Some(AccountEffect::Failure),
            })
        }
    }
}

fn policy(shared: &Shared) -> RetryPolicy {
    RetryPolicy::new()
        .max_attempts(shared.config.max_attempts.max(1))
        .backoff(
            Duration::from_millis(shared.config.retry_base_ms),
            Duration::from_millis(shared.config.retry_max_ms.max(shared.config.retry_base_ms)),
        )
}
