//! The webhook endpoint: `GET` answers the subscription handshake; `POST` verifies the signature
//! over the raw bytes (`webhook-verify`), then commits the raw notification to the `inbox`
//! (deduplicated by the SHA-256 of the body) before answering 200. Concurrent requests share one
//! transaction (group commit): a batching task takes rows from a channel and answers each
//! request through a oneshot once the batch is committed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};
use webhook_verify::meta::{self, Subscription};

use super::AppState;
use crate::service::db::inbox::{self, NewNotification};
use crate::service::db::{self, Db};

/// A request waiting for its group commit.
struct Job {
    row: NewNotification,
    reply: oneshot::Sender<Result<bool, String>>,
}

/// The sending side of the group-commit task.
#[derive(Debug, Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.row.id).finish()
    }
}

impl Ingest {
    /// Starts the group-commit task: at most `max_batch` rows per transaction. It ends when every
    /// [`Ingest`] is dropped.
    pub fn spawn(db: Db, max_batch: usize) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(max_batch.max(1) * 4);
        let task = tokio::spawn(group_commit(db, rx, max_batch.max(1)));
        (Ingest { jobs }, task)
    }

    /// Stores a notification; `Ok(true)` once committed as new, `Ok(false)` if the same body was
    /// stored before.
    pub async fn store(&self, row: NewNotification) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { row, reply })
            .await
            .map_err(|_| "the service is shutting down".to_string())?;
        answer
            .await
            .map_err(|_| "the commit task stopped".to_string())?
    }
}

async fn group_commit(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit(&db, &batch).await {
            Ok(fresh) => {
                for (job, new) in batch.drain(..).zip(fresh) {
                    let _ = job.reply.send(Ok(new));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, rows = batch.len(), "inbox commit failed; answering 503 so Meta retries");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

async fn commit(db: &Db, batch: &[Job]) -> crate::service::error::Result<Vec<bool>> {
    let mut tx = db.begin().await?;
    let rows: Vec<&NewNotification> = batch.iter().map(|job| &job.row).collect();
    let fresh = inbox::insert_many(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// `GET`: the subscription handshake.
pub async fn handshake(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    match Subscription::from_query(&query).verify(&state.shared.config.verify_token) {
        Ok(challenge) => (StatusCode::OK, challenge.to_string()).into_response(),
        Err(e) => {
            tracing::warn!(reason = %e, "webhook handshake refused");
            (StatusCode::FORBIDDEN, "verification failed").into_response()
        }
    }
}

/// `POST`: verify, store, answer.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let metrics = &state.shared.metrics;
    let header = headers
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if let Err(e) = meta::verify_with_any(&state.secrets, &body, header) {
        metrics.rejected("signature");
        tracing::warn!(reason = %e, bytes = body.len(), "webhook refused: bad signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    let (status, reason) = match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        Ok(_) => (inbox::PENDING, None),
        Err(e) => {
            metrics.rejected("malformed_json");
            tracing::warn!(reason = %e, bytes = body.len(), "signed webhook is not JSON; stored as rejected");
            (inbox::REJECTED, Some(format!("malformed JSON: {e}")))
        }
    };
    let row = NewNotification {
        id: inbox::body_key(&body),
        body: body.to_vec(),
        received_at: db::now_ms(),
        status,
        reason,
    };
    match state.ingest.store(row).await {
        Ok(new) => {
            if status == inbox::PENDING {
                metrics.received(if new { "new" } else { "duplicate" });
            }
            metrics
                .ingest_latency
                .observe(started.elapsed().as_secs_f64());
            (StatusCode::OK, "EVENT_RECEIVED").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored; retry").into_response()
        }
    }
}
