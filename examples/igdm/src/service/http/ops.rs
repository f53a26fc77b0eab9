//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::service::db::{inbox, outbox};

/// Alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.shared.db.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let shared = &state.shared;
    if let Ok(n) = inbox::count(&shared.db, inbox::PENDING).await {
        shared.metrics.inbox_depth.set(n);
    }
    if let Ok(n) = outbox::count(&shared.db, outbox::QUEUED).await {
        shared.metrics.outbox_depth.set(n);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}
