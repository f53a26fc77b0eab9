//! The sender: claims due outbox rows with a lease, waits for the account's rate limiter, records
//! the attempt (committed) before calling the Graph API, and records the outcome in the delivery
//! log as soon as the call returns. Retries follow `instagram-graph`'s retry policy by error
//! kind; an ambiguous failure of a private reply is never retried; a rate-limit refusal or usage
//! headers at the limit hold the account's rows until the platform allows it again (never a
//! failure); error 190 marks the account `needs_reconnect` and holds its sends until it
//! reconnects.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use futures_util::StreamExt;
use instagram_graph::retry::{Operation, RetryDecision, RetryPolicy};
use instagram_graph::ErrorKind as GraphKind;

use super::convert::{self, Call};
use super::ratelimit::Class;
use super::Shared;
use crate::service::db::rows::Param;
use crate::service::db::{self, accounts, conversations, delivery_log, outbox};
use crate::service::error::Result;

/// Sends one batch of due rows; the number of rows handled.
///
/// Two steps: the rows that cannot be sent are recorded; the calls run concurrently, each
/// attempt committed (`sending`) just before its call and each outcome as soon as its call
/// returns (concurrent attempts share a commit, and so do outcomes that arrive together).
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

    // 1. Prepare every row; record the rows that cannot be sent (one commit).
    let mut prepared = Vec::new();
    let mut clients = HashMap::new();
    for row in rows {
        prepared.push(prepare(shared, &mut clients, row).await);
    }
    let started_ms = db::now_ms();
    let mut ready = Vec::new();
    let mut metrics = Vec::new();
    let mut log = Vec::new();
    let mut tx = None;
    for p in prepared {
        match p {
            Prepared::Ready { row, call, client } => ready.push((row, call, client)),
            Prepared::Deferred { row, next } => {
                let tx = match &mut tx {
                    Some(tx) => tx,
                    None => tx.insert(shared.db.begin().await?),
                };
                outbox::requeue(tx, &row.key, next, None, false, started_ms).await?;
                metrics.push((row.kind, "rate_limited_locally"));
            }
            Prepared::Failed { row, kind, message } => {
                let tx = match &mut tx {
                    Some(tx) => tx,
                    None => tx.insert(shared.db.begin().await?),
                };
                outbox::mark_failed(tx, &row.key, kind, &message, started_ms).await?;
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
    if let Some(mut tx) = tx {
        delivery_log::append_many(&mut tx, &log).await?;
        tx.commit().await?;
    }
    for (kind, outcome) in &metrics {
        shared.metrics.send(kind, outcome);
    }

    // 2. Call, concurrently. Each attempt is committed (`sending`) just before its call, and
    // the account's window is checked after that commit, at the moment of the call. Each
    // outcome is committed as soon as its call returns (the outcomes that arrive together
    // share a commit), and the call's slot is only freed then. So a crash leaves at most
    // `sender_concurrency` rows per loop in `sending` (calls in flight, or returned but not yet
    // recorded): those are failed as ambiguous later, never re-sent; rows not yet attempted
    // stay `queued` and are sent after the restart.
    let (outcomes, mut arrived) = mpsc::unbounded_channel::<Outcome>();
    let calls = async move {
        futures_util::stream::iter(ready)
            .for_each_concurrent(shared.config.sender_concurrency, |(row, call, client)| {
                let owner = &owner;
                let outcomes = outcomes.clone();
                async move {
                    let Some(result) = attempt(shared, owner, &row, &call, &client).await else {
                        return;
                    };
                    let (recorded, answer) = oneshot::channel();
                    if outcomes.send((row, result, recorded)).is_ok() {
                        let _ = answer.await;
                    }
                }
            })
            .await;
        // `outcomes` is dropped here: the recording below ends with the last call
    };
    let recording = async {
        let mut failed = None;
        while let Some(first) = arrived.recv().await {
            let mut batch = vec![first];
            while let Ok(next) = arrived.try_recv() {
                batch.push(next);
            }
            let (results, answers): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .map(|(row, result, answer)| ((row, result), answer))
                .unzip();
            if let Err(e) = record_outcomes(shared, &results).await {
                // the rows stay `sending`: failed as ambiguous when their lease ends
                tracing::warn!(error = %e, rows = results.len(), "send outcomes not recorded");
                failed.get_or_insert(e);
            }
            for answer in answers {
                let _ = answer.send(());
            }
        }
        failed.map_or(Ok(()), Err)
    };
    let ((), recorded) = tokio::join!(calls, recording);
    recorded?;
    Ok(n)
}

/// A call's outcome on its way to [`record_outcomes`], with where to say it is recorded.
type Outcome = (
    outbox::Claimed,
    Result<Option<String>, Failure>,
    oneshot::Sender<()>,
);

/// Records the attempt of `row`, then makes its call; `None` when the attempt was not recorded
/// (the lease was lost): no call was made.
async fn attempt(
    shared: &Shared,
    owner: &str,
    row: &outbox::Claimed,
    call: &Call,
    client: &instagram_graph::Client,
) -> Option<Result<Option<String>, Failure>> {
    if !shared.attempts.record(&row.key, owner).await {
        return None;
    }
    if let (Some(received), 0) = (row.received_at, row.attempts) {
        let delay = (db::now_ms() - received).max(0) as f64 / 1000.0;
        shared.metrics.event_to_send.observe(delay);
    }
    if let Err(wait) = pace(shared, row).await {
        return Some(Err(Failure::Held(wait)));
    }
    let started = Instant::now();
    // Several instances: only the account's owner calls (see `ownership`).
    let result = if shared.ownership.may_send(&row.account, db::now_ms()) {
        perform(shared, &row.account, client, call).await
    } else {
        Err(Failure::Http {
            message: "not sent: this instance no longer owns the account's sending; the next \
                      owner sends it"
                .into(),
            before_send: true,
        })
    };
    shared
        .metrics
        .send_latency
        .observe(started.elapsed().as_secs_f64());
    Some(result)
}

/// Records calls' outcomes in one commit, then acts on them. An account whose token was
/// refused (190) is held in that same commit, first: its refused rows go back in the queue
/// due now, and no sender loop may claim them before the account is held.
async fn record_outcomes(
    shared: &Shared,
    results: &[(outbox::Claimed, Result<Option<String>, Failure>)],
) -> Result<()> {
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    let mut reconnect: Vec<&str> = Vec::new();
    for (row, result) in results {
        if token_refused(result) && !reconnect.contains(&row.account.as_str()) {
            accounts::set_status_in(
                &mut tx,
                &row.account,
                accounts::NEEDS_RECONNECT,
                Some("the access token was refused (error 190); reconnect the account"),
                now,
            )
            .await?;
            reconnect.push(&row.account);
        }
    }
    let mut effects = Vec::new();
    let mut log = Vec::new();
    for (row, result) in results {
        effects.push(record(shared, &mut tx, &mut log, row, result, now).await?);
    }
    let sent: Vec<(&str, Option<&str>)> = results
        .iter()
        .filter_map(|(row, result)| match result {
            Ok(mid) => Some((row.key.as_str(), mid.as_deref())),
            Err(_) => None,
        })
        .collect();
    outbox::mark_sent_many(&mut tx, &sent, now).await?;
    delivery_log::append_many(&mut tx, &log).await?;
    tx.commit().await?;
    for account in reconnect {
        shared.forget_client(account);
        tracing::warn!(
            account,
            "token refused (190): account needs reconnect; its sends are held"
        );
    }
    show_agent_replies(shared, results, now).await;
    for ((row, _), effect) in results.iter().zip(effects) {
        shared.metrics.send(&row.kind, effect.outcome);
        if effect.failed {
            // a health counter: the outcomes are committed already, whatever happens to it
            if let Err(error) = accounts::add_failure(&shared.db, &row.account).await {
                tracing::warn!(account = %row.account, %error, "failed send not counted");
            }
        }
    }
    Ok(())
}

/// Whether the platform refused the call's token (error 190): the account must reconnect.
fn token_refused(result: &Result<Option<String>, Failure>) -> bool {
    matches!(result, Err(Failure::Graph(e)) if matches!(e.kind(), GraphKind::TokenInvalid { .. }))
}

/// Shows the agents' replies among `results` in the team inbox as soon as they are sent (not only
/// when their echoes arrive), in a transaction of their own that first takes the contacts'
/// locks like the inbox worker's. A failure is logged: the echo shows the reply then.
async fn show_agent_replies(
    shared: &Shared,
    results: &[(outbox::Claimed, Result<Option<String>, Failure>)],
    now: i64,
) {
    let mut replies = conversations::Batch::default();
    let mut contacts = Vec::new();
    for (row, result) in results {
        if let Ok(Some(mid)) = result {
            replies.note_agent_reply(
                &row.key,
                &row.account,
                &row.recipient,
                mid,
                &row.action,
                now,
            );
            if conversations::is_reply_key(&row.key) {
                contacts.push((row.account.as_str(), row.recipient.as_str()));
            }
        }
    }
    if replies.is_empty() {
        return;
    }
    contacts.sort_unstable();
    contacts.dedup();
    let shown = async {
        let mut tx = shared.db.begin().await?;
        tx.lock_contacts(&contacts).await?;
        replies.write(&mut tx, now).await?;
        tx.commit().await
    }
    .await;
    if let Err(error) = shown {
        tracing::warn!(%error, "agents' replies not shown yet; their echoes will show them");
    }
}

/// Records attempts (`queued` -> `sending`) just before their calls; the attempts of concurrent
/// calls, of every sender loop, share one commit. One per service ([`Shared::attempts`]).
#[derive(Debug)]
pub struct Attempts {
    jobs: mpsc::UnboundedSender<Attempt>,
}

/// An attempt to record: the row, the lease owner that claimed it, and where to answer.
type Attempt = (String, String, oneshot::Sender<bool>);

impl Attempts {
    /// Starts the recording task; leases are extended by `lease_ms` from each commit. The task
    /// ends when the `Attempts` is dropped.
    pub fn start(db: db::Db, lease_ms: i64) -> Attempts {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Attempt>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(job) = rx.try_recv() {
                    batch.push(job);
                }
                let mut by_owner: HashMap<&str, Vec<&str>> = HashMap::new();
                for (key, owner, _) in &batch {
                    by_owner.entry(owner).or_default().push(key);
                }
                let now = db::now_ms();
                let marked = async {
                    let mut tx = db.begin().await?;
                    let mut marked = std::collections::HashSet::new();
                    for (owner, keys) in &by_owner {
                        marked.extend(
                            outbox::mark_sending_many(&mut tx, keys, owner, now, now + lease_ms)
                                .await?,
                        );
                    }
                    tx.commit().await?;
                    Ok::<_, crate::service::error::Error>(marked)
                }
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, rows = batch.len(), "attempts not recorded; the rows stay queued");
                    Default::default()
                });
                for (key, _, reply) in batch {
                    let _ = reply.send(marked.contains(&key));
                }
            }
        });
        Attempts { jobs }
    }

    /// Records the attempt of `key`, claimed by `owner`; `false` when it was not recorded (the
    /// lease was lost or the database failed): the call must not be made.
    async fn record(&self, key: &str, owner: &str) -> bool {
        let (reply, answer) = oneshot::channel();
        if self
            .jobs
            .send((key.to_owned(), owner.to_owned(), reply))
            .is_err()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// Waits until the account's Send API window has room at the moment of the call (see
/// `Shared::pacer`); actions that make no Send API call pass at once.
/// `Err` with the wait when the account is held by the platform for longer than a pacing wait:
/// the call is not made.
async fn pace(shared: &Shared, row: &outbox::Claimed) -> Result<(), Duration> {
    if !matches!(row.kind.as_str(), "private_reply" | "send_dm" | "ai_reply") {
        // no Send API call, but a throttled account still waits
        return match shared.pacer.held_for(&row.account, Instant::now()) {
            Some(wait) if wait > MAX_PACING_WAIT => Err(wait),
            _ => Ok(()),
        };
    }
    loop {
        match shared
            .pacer
            .try_acquire(&row.account, &[Class::Send], Instant::now())
        {
            Ok(()) => return Ok(()),
            Err(wait) if wait > MAX_PACING_WAIT => return Err(wait),
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
}

/// The longest a call waits for its account's window; a longer wait (the platform throttles
/// the account) puts the row back in the queue.
const MAX_PACING_WAIT: Duration = Duration::from_secs(2);

/// Why a call failed.
enum Failure {
    Graph(instagram_graph::Error),
    Http {
        message: String,
        before_send: bool,
    },
    /// Not called: the platform throttles the account for this long.
    Held(Duration),
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
    let call = convert::call_stored(&row.action);
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
    account: &str,
    client: &instagram_graph::Client,
    call: &Call,
) -> Result<Option<String>, Failure> {
    match call {
        Call::Send(request) => match client.send(request).await {
            Ok(r) => {
                throttle(shared, account, r.usage.regain_access_after());
                Ok(r.data.message_id.map(|m| m.as_str().to_string()))
            }
            Err(e) => {
                throttle(shared, account, refused_for(&e));
                Err(Failure::Graph(e))
            }
        },
        Call::PublicReply { comment_id, text } => {
            match client.reply_to_comment(comment_id, text).await {
                Ok(r) => {
                    throttle(shared, account, r.usage.regain_access_after());
                    Ok(Some(r.data.id))
                }
                Err(e) => {
                    throttle(shared, account, refused_for(&e));
                    Err(Failure::Graph(e))
                }
            }
        }
        Call::Webhook { url, body } => {
            if let Err(message) =
                crate::service::egress::check_url(url, shared.config.outbound.allow_private_targets)
            {
                return Err(Failure::Http {
                    message,
                    before_send: true,
                });
            }
            perform_webhook(shared, url, body).await
        }
    }
}

/// Calls an automation's webhook (its URL checked by the caller).
async fn perform_webhook(
    shared: &Shared,
    url: &str,
    body: &serde_json::Value,
) -> Result<Option<String>, Failure> {
    match shared.http.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => Ok(None),
        Ok(r) => Err(Failure::Http {
            message: format!("the automation webhook answered HTTP {}", r.status()),
            before_send: false,
        }),
        Err(e) => Err(Failure::Http {
            message: format!("the automation webhook failed: {e}"),
            before_send: e.is_connect(),
        }),
    }
}

/// How long the platform refused the account for, when the error is a rate limit (its
/// `Retry-After`, or one second when it gave none).
fn refused_for(e: &instagram_graph::Error) -> Option<Duration> {
    matches!(e.kind(), GraphKind::RateLimited { .. })
        .then(|| e.retry_after().unwrap_or(Duration::from_secs(1)))
}

/// Holds the account's calls for `wait` when the platform throttles it (its usage headers'
/// `estimated_time_to_regain_access`, or a rate-limit refusal): rows due meanwhile are put back
/// in the queue instead of being refused one by one.
fn throttle(shared: &Shared, account: &str, wait: Option<Duration>) {
    let Some(wait) = wait.filter(|w| !w.is_zero()) else {
        return;
    };
    let until = Instant::now() + wait;
    shared.limiter.hold(account, until);
    shared.pacer.hold(account, until);
    tracing::warn!(
        account,
        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        "the platform throttles this account; its calls wait"
    );
}

/// What recording one outcome means beyond its rows.
struct Effect {
    /// The outcome, for the metrics.
    outcome: &'static str,
    /// The send failed for good: counted on the account's health.
    failed: bool,
}

/// Records one call's outcome in `tx`: held (190), retry, or failed; a sent row only gets its
/// delivery-log row here (the caller marks the sent rows together).
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
            log.push(
                delivery_log::Entry {
                    mid: mid.as_deref(),
                    ..entry("sent")
                }
                .row(now),
            );
            return Ok(Effect {
                outcome: "sent",
                failed: false,
            });
        }
        Err(failure) => failure,
    };
    // Not sent because the platform limits the account: back in the queue, due when the
    // platform allows the account again, the attempt given back. A rate-limit refusal is never
    // a failure, however long the platform asks to wait (750 private replies an hour: up to an
    // hour); the retry policy's `max_wait` bounds in-process waits, not a queued row's.
    let held = match failure {
        Failure::Held(wait) => Some((
            *wait,
            "throttled",
            format!(
                "the platform throttles this account (usage headers or a rate-limit answer); \
                 not called, due again in {} s",
                wait.as_secs()
            ),
        )),
        Failure::Graph(e) => refused_for(e).map(|wait| {
            (
                wait,
                "rate_limited",
                format!("{e}; not sent, due again in {} s", wait.as_secs()),
            )
        }),
        Failure::Http { .. } => None,
    };
    if let Some((wait, kind, message)) = held {
        let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        outbox::requeue(tx, &row.key, next, Some((kind, &message)), true, now).await?;
        log.push(
            delivery_log::Entry {
                error_kind: Some(kind),
                error_message: Some(&message),
                attempt: row.attempts,
                ..entry("held")
            }
            .row(now),
        );
        return Ok(Effect {
            outcome: "held",
            failed: false,
        });
    }
    if let (Failure::Graph(e), true) = (failure, token_refused(result)) {
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
            failed: false, // the caller holds the account
        });
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
        // handled above; kept total
        Failure::Held(wait) => (
            "throttled".to_string(),
            "the platform throttles this account".to_string(),
            RetryDecision::Retry { after: *wait },
        ),
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
                failed: false,
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
                failed: true,
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
