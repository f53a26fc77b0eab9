//! Webhook delivery: notification bodies, signing, retries with backoff, duplicates,
//! reordering and batching, with every attempt recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::config::DeliveryConfig;
use crate::model::{Delivery, DeliveryAttempt, DeliveryKind, DeliveryOutcome};
use crate::state::State;
use crate::Shared;

/// Something waiting to be delivered.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// One `entry` of an `object: instagram` notification.
    Entry(Value),
    /// A deauthorize callback form body (`signed_request=...`).
    Deauthorize(String),
}

/// A messaging entry: `{id, time (ms), messaging: [event]}`.
pub(crate) fn messaging_entry(account: &str, now_ms: i64, event: Value) -> Value {
    json!({ "id": account, "time": now_ms, "messaging": [event] })
}

/// A changes entry: `{id, time (s), changes: [{field, value}]}`.
pub(crate) fn changes_entry(account: &str, now_ms: i64, field: &str, value: Value) -> Value {
    json!({ "id": account, "time": now_ms / 1000, "changes": [{ "field": field, "value": value }] })
}

/// Queues an entry for the account, if the account receives webhooks.
pub(crate) fn notify(state: &mut State, account: &str, entry: Value) {
    let receives = state
        .accounts
        .get(account)
        .is_some_and(|a| a.authorized && (!state.require_subscription || a.subscribed.is_some()));
    if receives {
        state.enqueue(Outgoing::Entry(entry));
    }
}

impl State {
    pub(crate) fn enqueue(&mut self, item: Outgoing) {
        if let Some(outbox) = &self.outbox {
            if outbox.send(item).is_ok() {
                self.pending += 1;
            }
        }
    }
}

/// The delivery worker: first attempts go one at a time, in queue order unless reordering is
/// injected (or up to `concurrency` at once when configured); a failed delivery retries in its
/// own task, so it does not hold back the queue.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    config: DeliveryConfig,
    stop: watch::Receiver<bool>,
) {
    let http = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "instagram-sim: no HTTP client, webhooks will not be delivered");
            return;
        }
    };
    let config = Arc::new(config);
    let slots =
        (config.concurrency > 1).then(|| Arc::new(tokio::sync::Semaphore::new(config.concurrency)));
    while let Some(first) = queue.recv().await {
        let mut items = vec![first];
        let faults = shared.lock().faults.clone();
        if faults.reorder_window >= 2 {
            let flush = Duration::from_millis(if faults.reorder_flush_ms == 0 {
                50
            } else {
                faults.reorder_flush_ms
            });
            let deadline = tokio::time::Instant::now() + flush;
            while items.len() < faults.reorder_window {
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(item)) => items.push(item),
                    _ => break,
                }
            }
            shared.lock().rng.shuffle(&mut items);
        }
        let max_batch = config.max_batch.max(1);
        while max_batch > 1 && items.len() < max_batch {
            match queue.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        for (body, kind, count) in bodies(items, max_batch) {
            let duplicate = {
                let mut state = shared.lock();
                let rate = state.faults.duplicate_rate;
                kind == DeliveryKind::Notification && state.rng.chance(rate)
            };
            let job = Job {
                shared: shared.clone(),
                http: http.clone(),
                config: config.clone(),
                stop: stop.clone(),
                body: Arc::new(body),
                kind,
            };
            let copies = if duplicate { 2 } else { 1 };
            shared.lock().pending += copies - 1;
            match &slots {
                None => deliver(job, copies, count).await,
                Some(slots) => {
                    // Waits for a free slot before taking the next item off the queue.
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    tokio::spawn(async move {
                        deliver(job, copies, count).await;
                        drop(slot);
                    });
                }
            }
        }
    }
}

/// Delivers a body (and its injected duplicate right after the original's first attempt);
/// failed deliveries retry in their own task.
async fn deliver(job: Job, copies: usize, count: usize) {
    for copy in 0..copies {
        let mut job = job.clone();
        let done = if copy == 0 { count } else { 1 };
        if let Some(retry) = job.start(copy == 1).await {
            tokio::spawn(async move {
                job.retry(retry).await;
                job.finish(done);
            });
        } else {
            job.finish(done);
        }
    }
}

/// Groups queued items into request bodies: up to `max_batch` entries per notification.
fn bodies(items: Vec<Outgoing>, max_batch: usize) -> Vec<(String, DeliveryKind, usize)> {
    let mut out = Vec::new();
    let mut entries: Vec<Value> = Vec::new();
    let flush = |entries: &mut Vec<Value>, out: &mut Vec<(String, DeliveryKind, usize)>| {
        if !entries.is_empty() {
            let count = entries.len();
            let body = json!({ "object": "instagram", "entry": std::mem::take(entries) });
            out.push((body.to_string(), DeliveryKind::Notification, count));
        }
    };
    for item in items {
        match item {
            Outgoing::Entry(entry) => {
                entries.push(entry);
                if entries.len() >= max_batch {
                    flush(&mut entries, &mut out);
                }
            }
            Outgoing::Deauthorize(form) => {
                flush(&mut entries, &mut out);
                out.push((form, DeliveryKind::Deauthorize, 1));
            }
        }
    }
    flush(&mut entries, &mut out);
    out
}

/// One body to deliver, with what it needs to be retried on its own.
#[derive(Clone)]
struct Job {
    shared: Arc<Shared>,
    http: reqwest::Client,
    config: Arc<DeliveryConfig>,
    stop: watch::Receiver<bool>,
    body: Arc<String>,
    kind: DeliveryKind,
}

/// Where a delivery continues after a failed first attempt.
struct Retry {
    id: u64,
    url: String,
    signature: String,
}

impl Job {
    /// Records the delivery and makes the first attempt; `Some` when it must be retried.
    async fn start(&mut self, duplicate: bool) -> Option<Retry> {
        let (url, signature, id) = {
            let mut state = self.shared.lock();
            let url = match self.kind {
                DeliveryKind::Notification => state.webhook_url.clone(),
                DeliveryKind::Deauthorize => state.deauthorize_url.clone(),
            };
            let signature = match self.kind {
                DeliveryKind::Notification => {
                    webhook_verify::meta::sign(state.app_secret.as_bytes(), self.body.as_bytes())
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                }
                DeliveryKind::Deauthorize => String::new(),
            };
            state.ids.delivery += 1;
            let id = state.ids.delivery;
            state.deliveries.push(Delivery {
                id,
                kind: self.kind,
                url: url.clone(),
                body: self.body.as_ref().clone(),
                signature: signature.clone(),
                duplicate,
                attempts: Vec::new(),
                outcome: if url.is_some() {
                    DeliveryOutcome::Pending
                } else {
                    DeliveryOutcome::NoCallbackUrl
                },
            });
            (url, signature, id)
        };
        self.shared.bump();
        let url = url?;
        let retry = Retry { id, url, signature };
        if self.attempt(&retry, 0).await {
            None
        } else {
            Some(retry)
        }
    }

    /// The remaining attempts, after each of the configured waits (cut short by shutdown).
    async fn retry(&mut self, retry: Retry) {
        for number in 1..=self.config.retry_delays.len() {
            let wait = self.config.retry_delays[number - 1];
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = self.stop.changed() => return,
            }
            if self.attempt(&retry, number).await {
                return;
            }
        }
    }

    /// Ends the job: `count` queued items are done.
    fn finish(&self, count: usize) {
        let mut state = self.shared.lock();
        state.pending = state.pending.saturating_sub(count);
        drop(state);
        self.shared.bump();
    }

    /// One attempt (`number` from 0); `true` on a 2xx answer.
    async fn attempt(&self, retry: &Retry, number: usize) -> bool {
        let content_type = match self.kind {
            DeliveryKind::Notification => "application/json",
            DeliveryKind::Deauthorize => "application/x-www-form-urlencoded",
        };
        let started = Instant::now();
        let at = Utc::now();
        let mut request = self
            .http
            .post(&retry.url)
            .header("content-type", content_type)
            .body(self.body.as_ref().clone());
        if !retry.signature.is_empty() {
            request = request.header("x-hub-signature-256", retry.signature.as_str());
        }
        let result = request.send().await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer so the connection can be reused.
                let _ = response.bytes().await;
                (Some(status), None)
            }
            Err(error) => {
                let what = if error.is_timeout() {
                    "timed out".to_owned()
                } else if error.is_connect() {
                    "connection failed".to_owned()
                } else {
                    format!("transport error: {}", error.without_url())
                };
                (None, Some(what))
            }
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let last = number == self.config.retry_delays.len();
        {
            let mut state = self.shared.lock();
            if let Some(delivery) = state.deliveries.iter_mut().rev().find(|d| d.id == retry.id) {
                delivery.attempts.push(DeliveryAttempt {
                    number: u32::try_from(number + 1).unwrap_or(u32::MAX),
                    status,
                    error,
                    latency_ms,
                    at,
                });
                if ok {
                    delivery.outcome = DeliveryOutcome::Delivered;
                } else if last {
                    delivery.outcome = DeliveryOutcome::Failed;
                }
            }
        }
        self.shared.bump();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_entries_and_keeps_callbacks_apart() {
        let items = vec![
            Outgoing::Entry(json!({"id":"1"})),
            Outgoing::Entry(json!({"id":"2"})),
            Outgoing::Deauthorize("signed_request=x".into()),
            Outgoing::Entry(json!({"id":"3"})),
        ];
        let out = bodies(items, 5);
        assert_eq!(out.len(), 3);
        let first: Value = serde_json::from_str(&out[0].0).unwrap();
        assert_eq!(first["entry"].as_array().unwrap().len(), 2);
        assert_eq!(first["object"], "instagram");
        assert_eq!(out[0].2, 2);
        assert_eq!(out[1].1, DeliveryKind::Deauthorize);
        let single = bodies(
            vec![Outgoing::Entry(json!({})), Outgoing::Entry(json!({}))],
            1,
        );
        assert_eq!(single.len(), 2);
    }
}
