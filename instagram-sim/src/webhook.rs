//! Webhook delivery: notification bodies, signing, retries with backoff, duplicates,
//! reordering and batching, with every attempt recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::mpsc;

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

/// The delivery worker: one request at a time, in queue order unless reordering is injected.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    config: DeliveryConfig,
) {
    let http = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "instagram-sim: no HTTP client, webhooks will not be delivered");
            return;
        }
    };
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
            deliver(&shared, &http, &config, &body, kind, false).await;
            if duplicate {
                deliver(&shared, &http, &config, &body, kind, true).await;
            }
            let mut state = shared.lock();
            state.pending = state.pending.saturating_sub(count);
            drop(state);
            shared.bump();
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

async fn deliver(
    shared: &Shared,
    http: &reqwest::Client,
    config: &DeliveryConfig,
    body: &str,
    kind: DeliveryKind,
    duplicate: bool,
) {
    let (url, signature, index) = {
        let mut state = shared.lock();
        let url = match kind {
            DeliveryKind::Notification => state.webhook_url.clone(),
            DeliveryKind::Deauthorize => state.deauthorize_url.clone(),
        };
        let signature = match kind {
            DeliveryKind::Notification => {
                webhook_verify::meta::sign(state.app_secret.as_bytes(), body.as_bytes())
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }
            DeliveryKind::Deauthorize => String::new(),
        };
        let id = state.deliveries.len() as u64 + 1;
        state.deliveries.push(Delivery {
            id,
            kind,
            url: url.clone(),
            body: body.to_owned(),
            signature: signature.clone(),
            duplicate,
            attempts: Vec::new(),
            outcome: if url.is_some() {
                DeliveryOutcome::Pending
            } else {
                DeliveryOutcome::NoCallbackUrl
            },
        });
        (url, signature, state.deliveries.len() - 1)
    };
    shared.bump();
    let Some(url) = url else { return };
    let content_type = match kind {
        DeliveryKind::Notification => "application/json",
        DeliveryKind::Deauthorize => "application/x-www-form-urlencoded",
    };
    let attempts = config.retry_delays.len() + 1;
    for number in 0..attempts {
        if number > 0 {
            tokio::time::sleep(config.retry_delays[number - 1]).await;
        }
        let started = Instant::now();
        let at = Utc::now();
        let mut request = http
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_owned());
        if !signature.is_empty() {
            request = request.header("x-hub-signature-256", signature.as_str());
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
        {
            let mut state = shared.lock();
            if let Some(delivery) = state.deliveries.get_mut(index) {
                delivery.attempts.push(DeliveryAttempt {
                    number: u32::try_from(number + 1).unwrap_or(u32::MAX),
                    status,
                    error,
                    latency_ms,
                    at,
                });
                if ok {
                    delivery.outcome = DeliveryOutcome::Delivered;
                } else if number + 1 == attempts {
                    delivery.outcome = DeliveryOutcome::Failed;
                }
            }
        }
        shared.bump();
        if ok {
            return;
        }
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
