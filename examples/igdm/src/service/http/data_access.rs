//! P5 over HTTP: an organization's data access (see
//! [`pipeline::data_access`](crate::service::pipeline::data_access)).
//!
//! - `GET /api/organization/data-access` (`ManageSettings`, Owners): the setting (`full` or
//!   `automations`), what the automations need, and the permissions and webhook fields that
//!   follow (what the connect flow asks and what a connected account subscribes to).
//! - `PUT /api/organization/data-access` `{"data_access": "full"|"automations"}`
//!   (`ManageSettings`): changes it; accounts connected before keep the permissions they
//!   granted until they connect again, but the service stops reading what is not needed at once.

use std::sync::Arc;

use axum::extract::State;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{failure, Caller, Permission};
use super::AppState;
use crate::service::pipeline::data_access::{self, DataAccess};

/// The routes (authenticated like `/api`).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/organization/data-access", get(read).put(change))
        .route_layer(middleware::from_fn_with_state(
            state,
            super::api::authenticate,
        ))
}

async fn answer(state: &AppState, org: &str) -> Response {
    let shared = &state.shared;
    let mode = match data_access::mode_of(&shared.db, org).await {
        Ok(m) => m,
        Err(e) => return failure(e),
    };
    let needs = match data_access::needs_of_org(&shared.db, org).await {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    let scopes: Vec<String> = needs
        .scopes()
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    Json(json!({
        "data_access": mode,
        "needs": needs,
        "scopes": scopes,
        "webhook_fields": needs.webhook_fields(),
    }))
    .into_response()
}

async fn read(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Err(denied) = caller.require(Permission::ManageSettings) {
        return denied;
    }
    answer(&state, &caller.org_id).await
}

#[derive(Debug, Deserialize)]
struct Change {
    data_access: DataAccess,
}

async fn change(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(req): Json<Change>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageSettings) {
        return denied;
    }
    let shared = &state.shared;
    let set = data_access::set_mode(&shared.db, &caller.org_id, req.data_access);
    if let Err(e) = data_access::keeping_subscriptions(shared, &caller.org_id, set).await {
        return failure(e);
    }
    if let Err(e) = shared.data_access.refresh(&shared.db).await {
        return failure(e);
    }
    answer(&state, &caller.org_id).await
}
