//! The HTTP routes: webhook, connect flow, management API, health and metrics.

pub mod access_log;
pub mod api;
pub mod auth;
pub mod connect;
pub mod crm;
pub mod data_access;
pub mod inbox;
pub mod ops;
pub mod orgs;
pub mod outbound;
pub mod privacy;
pub mod webhook;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::service::pipeline::Shared;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The service state.
    pub shared: Arc<Shared>,
    /// The group-commit ingest.
    pub ingest: webhook::Ingest,
    /// The app secret, then the previous ones.
    pub secrets: Vec<Vec<u8>>,
    /// Pending OAuth states.
    pub oauth_states: connect::States,
    /// The public base URL (for the OAuth redirect).
    pub public_url: String,
    /// Access-log entries not written yet (P17).
    pub access_log: access_log::AccessLog,
}

impl AppState {
    /// The public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.shared.config.body_limit;
    Router::new()
        .route(
            "/webhooks/instagram",
            get(webhook::handshake)
                .post(webhook::receive)
                .layer(DefaultBodyLimit::max(limit)),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/connect/instagram", get(connect::start))
        .route("/connect/instagram/callback", get(connect::callback))
        .nest("/api", api::router(state.clone()))
        .merge(outbound::router(state.clone()))
        .merge(inbox::router(state.clone()))
        .merge(auth::public_router())
        .merge(auth::router().merge(orgs::router()).route_layer(
            axum::middleware::from_fn_with_state(state.clone(), auth::authenticate),
        ))
        .merge(privacy::router(state.clone()))
        .merge(crm::router(state.clone()))
        .merge(access_log::router(state.clone()))
        .merge(data_access::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_log::record,
        ))
        .with_state(state)
}
