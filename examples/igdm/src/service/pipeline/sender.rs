//! The sender: claims due outbox rows with a lease, waits for the account's rate limiter, records
//! the attempt (committed) before calling the Graph API, and records the outcome in the delivery
//! log. Retries follow `instagram-graph`'s retry policy by error kind; an ambiguous failure of a
//! private reply is never retried; error 190 marks the account `needs_reconnect` and holds its
//! sends until it reconnects.

use std::time::{Duration, Instant};

use automation_core::PlannedAction;
use futures_util::StreamExt;
use instagram_graph::retry::{Operation, RetryDecision, RetryPolicy};
use instagram_graph::ErrorKind as GraphKind;

use super::convert::{self, Call};
use super::ratelimit::Class;
use super::Shared;
use crate::service::db::{self, accounts, delivery_log, outbox};
use crate::service::error::Result;

/// Sends one batch of due rows; the number of rows handled.
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
    )
    .await?;
    let n = rows.len();
    let results: Vec<Result<()>> = futures_util::stream::iter(rows)
        .map(|row| {
            let owner = owner.clone();
            async move { send_one(shared, &owner, row).await }
        })
        .buffer_unordered(shared.config.sender_concurrency)
        .collect()
        .await;
    for r in results {
        if let Err(e) = r {
            tracing::warn!(error = %e, "a send could not be recorded; its lease will expire and it will be resolved");
        }
    }
    Ok(n)
}

/// Why a call failed.
enum Failure {
    Graph(instagram_graph::Error),
    Http { message: String, before_send: bool },
}

async fn send_one(shared: &Shared, owner: &str, row: outbox::Claimed) -> Result<()> {
    let now = db::now_ms();
    let call = serde_json::from_str::<PlannedAction>(&row.action)
        .map_err(|e| format!("the stored action is unreadable: {e}"))
        .and_then(|a| convert::call(&a).map_err(|e| e.to_string()));
    let call = match call {
        Ok(Some(call)) => call,
        Ok(None) => {
            return fail(
                shared,
                &row,
                "unsupported",
                "this action does not call out",
                now,
            )
            .await
        }
        Err(message) => return fail(shared, &row, "validation", &message, now).await,
    };
    let classes: &[Class] = match row.kind.as_str() {
        "private_reply" => &[Class::Send, Class::PrivateReply],
        "send_dm" => &[Class::Send],
        _ => &[],
    };
    loop {
        match shared
            .limiter
            .try_acquire(&row.account, classes, Instant::now())
        {
            Ok(()) => break,
            Err(wait) if wait <= Duration::from_secs(1) => tokio::time::sleep(wait).await,
            Err(wait) => {
                let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                let mut tx = shared.db.begin().await?;
                outbox::requeue(&mut tx, &row.key, next, None, false, now).await?;
                tx.commit().await?;
                shared.metrics.send(&row.kind, "rate_limited_locally");
                return Ok(());
            }
        }
    }
    let client = match shared.client_for(&row.account).await {
        Ok(c) => c,
        Err(e) => return fail(shared, &row, "account", e.message(), now).await,
    };
    // The attempt is on record before the call: a crash from here on never re-sends.
    let started_ms = db::now_ms();
    let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000);
    if !outbox::mark_sending(
        &shared.db,
        &row.key,
        owner,
        started_ms,
        started_ms + lease + i64::try_from(shared.config.call_timeout_ms).unwrap_or(30_000),
    )
    .await?
    {
        return Ok(());
    }
    let attempt = row.attempts + 1;
    let started = Instant::now();
    let result: Result<Option<String>, Failure> = match &call {
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
    };
    shared
        .metrics
        .send_latency
        .observe(started.elapsed().as_secs_f64());
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    let entry = |status: &'static str| delivery_log::Entry {
        outbox_key: &row.key,
        account: &row.account,
        rule: row.rule.as_deref(),
        kind: &row.kind,
        attempt,
        status,
        ..Default::default()
    };
    match result {
        Ok(mid) => {
            outbox::mark_sent(&mut tx, &row.key, mid.as_deref(), now).await?;
            delivery_log::append(
                &mut tx,
                &delivery_log::Entry {
                    mid: mid.as_deref(),
                    ..entry("sent")
                },
                now,
            )
            .await?;
            tx.commit().await?;
            shared.metrics.send(&row.kind, "sent");
        }
        Err(Failure::Graph(e)) if matches!(e.kind(), GraphKind::TokenInvalid { .. }) => {
            let message = e.to_string();
            // Refused before anything was sent: held (queued) until the account reconnects.
            outbox::requeue(
                &mut tx,
                &row.key,
                now,
                Some(("token_invalid", &message)),
                true,
                now,
            )
            .await?;
            delivery_log::append(
                &mut tx,
                &delivery_log::Entry {
                    error_kind: Some("token_invalid"),
                    error_message: Some(&message),
                    ..entry("failed")
                },
                now,
            )
            .await?;
            tx.commit().await?;
            accounts::set_status(
                &shared.db,
                &row.account,
                accounts::NEEDS_RECONNECT,
                Some("the access token was refused (error 190); reconnect the account"),
                now,
            )
            .await?;
            shared.forget_client(&row.account);
            shared.metrics.send(&row.kind, "token_invalid");
            tracing::warn!(account = %row.account, "token refused (190): account needs reconnect; its sends are held");
        }
        Err(failure) => {
            let (kind, message, decision) = match &failure {
                Failure::Graph(e) => {
                    let operation = match row.kind.as_str() {
                        "private_reply" => Operation::PrivateReply,
                        _ => Operation::Send,
                    };
                    let policy = policy(shared);
                    let decision = policy.decide(
                        u32::try_from(attempt).unwrap_or(u32::MAX),
                        e,
                        operation,
                        instagram_graph::retry::random_jitter(),
                    );
                    (e.kind().name().to_string(), e.to_string(), decision)
                }
                Failure::Http {
                    message,
                    before_send,
                } => {
                    let policy = policy(shared);
                    let retry = *before_send || attempt < i64::from(policy.max_attempts);
                    let decision = if retry && attempt < i64::from(policy.max_attempts) {
                        RetryDecision::Retry {
                            after: policy.backoff_for(
                                u32::try_from(attempt).unwrap_or(u32::MAX),
                                instagram_graph::retry::random_jitter(),
                            ),
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
                    outbox::requeue(&mut tx, &row.key, next, Some((&kind, &message)), false, now)
                        .await?;
                    delivery_log::append(
                        &mut tx,
                        &delivery_log::Entry {
                            error_kind: Some(&kind),
                            error_message: Some(&message),
                            ..entry("retry")
                        },
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    shared.metrics.send(&row.kind, "retry");
                }
                RetryDecision::GiveUp => {
                    outbox::mark_failed(&mut tx, &row.key, &kind, &message, now).await?;
                    delivery_log::append(
                        &mut tx,
                        &delivery_log::Entry {
                            error_kind: Some(&kind),
                            error_message: Some(&message),
                            ..entry("failed")
                        },
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    accounts::add_failure(&shared.db, &row.account).await?;
                    shared.metrics.send(&row.kind, "failed");
                }
            }
        }
    }
    Ok(())
}

fn policy(shared: &Shared) -> RetryPolicy {
    RetryPolicy::new()
        .max_attempts(shared.config.max_attempts.max(1))
        .backoff(
            Duration::from_millis(shared.config.retry_base_ms),
            Duration::from_millis(shared.config.retry_max_ms.max(shared.config.retry_base_ms)),
        )
}

/// Fails a row without calling out.
async fn fail(
    shared: &Shared,
    row: &outbox::Claimed,
    kind: &str,
    message: &str,
    now: i64,
) -> Result<()> {
    let mut tx = shared.db.begin().await?;
    outbox::mark_failed(&mut tx, &row.key, kind, message, now).await?;
    delivery_log::append(
        &mut tx,
        &delivery_log::Entry {
            outbox_key: &row.key,
            account: &row.account,
            rule: row.rule.as_deref(),
            kind: &row.kind,
            attempt: row.attempts,
            status: "failed",
            error_kind: Some(kind),
            error_message: Some(message),
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await?;
    shared.metrics.send(&row.kind, "failed");
    Ok(())
}
