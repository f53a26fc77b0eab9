//! The organization's people and keys: members, invitations and API keys. Every route needs a
//! [`Caller`] and checks the [permission matrix](super::auth#permission-matrix).
//!
//! - `GET /api/members`: the members (everyone).
//! - `PATCH /api/members/{user}` `{role}`: changes a role (Owner/Admin; only an Owner touches
//!   Owners; the last Owner cannot be demoted).
//! - `DELETE /api/members/{user}`: removes a member, or leaves when it is the caller (the last
//!   Owner cannot leave or be removed).
//! - `GET /api/invitations`, `POST /api/invitations` `{email, role}` (the token is answered
//!   once), `DELETE /api/invitations/{id}`.
//! - `GET /api/api-keys`, `POST /api/api-keys` `{name, role}` (the key is answered once and
//!   stored only hashed), `DELETE /api/api-keys/{id}` (revokes).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::api::begin_for;
use super::auth::{failure, problem, valid_email, Caller, Permission, Role};
use super::AppState;
use crate::service::db::{self, teams};
use crate::service::error::Error;

/// How long an invitation is valid, in milliseconds (7 days).
const INVITATION_TTL_MS: i64 = 7 * 86_400_000;

/// The routes (authenticated by the caller; merged under `/api`).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/members", get(list_members))
        .route(
            "/api/members/{user}",
            patch(change_role).delete(remove_member),
        )
        .route("/api/invitations", get(list_invitations).post(invite))
        .route("/api/invitations/{id}", delete(cancel_invitation))
        .route("/api/api-keys", get(list_keys).post(create_key))
        .route("/api/api-keys/{id}", delete(revoke_key))
}

async fn list_members(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Err(denied) = caller.require(Permission::ViewMembers) {
        return denied;
    }
    match teams::members(&state.shared.db, &caller.org_id).await {
        Ok(list) => Json(json!({ "members": list })).into_response(),
        Err(e) => failure(e),
    }
}

/// A change to a membership.
enum Change {
    Role(Role),
    Remove,
}

fn last_owner() -> Response {
    problem(
        StatusCode::CONFLICT,
        "the organization's last Owner cannot leave or be demoted; make another member Owner first",
    )
}

async fn apply(state: &AppState, caller: &Caller, user: &str, change: Change) -> Response {
    let leaving = matches!(change, Change::Remove) && caller.user_id.as_deref() == Some(user);
    if !leaving {
        if let Err(denied) = caller.require(Permission::ManageMembers) {
            return denied;
        }
    }
    let outcome = async {
        let mut tx = begin_for(state, caller).await?;
        teams::lock_org(&mut tx, &caller.org_id).await?;
        let current = sqlx::query_scalar::<_, String>(
            "SELECT role FROM members WHERE org_id = $1 AND user_id = $2",
        )
        .bind(&caller.org_id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current.as_deref().and_then(Role::parse) else {
            tx.rollback().await?;
            return Ok::<_, Error>(Err(problem(StatusCode::NOT_FOUND, "no such member")));
        };
        let touches_owner = current == Role::Owner || matches!(change, Change::Role(Role::Owner));
        if touches_owner && !leaving {
            if let Err(denied) = caller.require(Permission::ManageOwners) {
                tx.rollback().await?;
                return Ok(Err(denied));
            }
        }
        let demotes_owner = current == Role::Owner && !matches!(change, Change::Role(Role::Owner));
        if demotes_owner && teams::owner_count(&mut tx, &caller.org_id).await? <= 1 {
            tx.rollback().await?;
            return Ok(Err(last_owner()));
        }
        let answer = match change {
            Change::Role(role) => {
                teams::put_member(&mut tx, &caller.org_id, user, role, db::now_ms()).await?;
                Json(json!({ "user_id": user, "role": role })).into_response()
            }
            Change::Remove => {
                teams::remove_member(&mut tx, &caller.org_id, user).await?;
                StatusCode::NO_CONTENT.into_response()
            }
        };
        tx.commit().await?;
        Ok(Ok(answer))
    }
    .await;
    match outcome {
        Ok(Ok(answer)) | Ok(Err(answer)) => answer,
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct RoleChange {
    role: Role,
}

async fn change_role(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
    Json(body): Json<RoleChange>,
) -> Response {
    apply(&state, &caller, &user, Change::Role(body.role)).await
}

async fn remove_member(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Response {
    apply(&state, &caller, &user, Change::Remove).await
}

async fn list_invitations(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Err(denied) = caller.require(Permission::ManageMembers) {
        return denied;
    }
    match teams::invitations(&state.shared.db, &caller.org_id).await {
        Ok(list) => Json(json!({ "invitations": list })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Invite {
    email: String,
    role: Role,
}

async fn invite(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<Invite>,
) -> Response {
    let needed = if body.role == Role::Owner {
        Permission::ManageOwners
    } else {
        Permission::ManageMembers
    };
    for permission in [Permission::ManageMembers, needed] {
        if let Err(denied) = caller.require(permission) {
            return denied;
        }
    }
    let email = match valid_email(&body.email) {
        Ok(e) => e,
        Err(answer) => return answer,
    };
    match teams::create_invitation(
        &state.shared.db,
        &caller.org_id,
        &email,
        body.role,
        caller.user_id.as_deref(),
        db::now_ms(),
        INVITATION_TTL_MS,
    )
    .await
    {
        Ok((invitation, token)) => (
            StatusCode::CREATED,
            Json(json!({
                "invitation": invitation,
                "token": token,
                "note": "send this token to the invitee; it is shown only now",
            })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn cancel_invitation(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageMembers) {
        return denied;
    }
    match teams::delete_invitation(&state.shared.db, &caller.org_id, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such pending invitation"),
        Err(e) => failure(e),
    }
}

async fn list_keys(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Err(denied) = caller.require(Permission::ManageApiKeys) {
        return denied;
    }
    match teams::api_keys(&state.shared.db, &caller.org_id).await {
        Ok(list) => Json(json!({ "api_keys": list })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct NewKey {
    name: String,
    role: Role,
}

async fn create_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<NewKey>,
) -> Response {
    let needed = if body.role == Role::Owner {
        Permission::ManageOwners
    } else {
        Permission::ManageApiKeys
    };
    for permission in [Permission::ManageApiKeys, needed] {
        if let Err(denied) = caller.require(permission) {
            return denied;
        }
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return problem(
            StatusCode::BAD_REQUEST,
            "give the key a name (1 to 100 characters)",
        );
    }
    match teams::create_api_key(
        &state.shared.db,
        &caller.org_id,
        name,
        body.role,
        caller.user_id.as_deref(),
        db::now_ms(),
    )
    .await
    {
        Ok((listed, key)) => (
            StatusCode::CREATED,
            Json(json!({
                "api_key": listed,
                "key": key,
                "note": "store this key now; it is shown only once and stored only hashed",
            })),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageApiKeys) {
        return denied;
    }
    let db = &state.shared.db;
    let key = match teams::api_key_in(db, &caller.org_id, &id).await {
        Ok(Some(k)) => k,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no such API key"),
        Err(e) => return failure(e),
    };
    if key.role == Role::Owner {
        if let Err(denied) = caller.require(Permission::ManageOwners) {
            return denied;
        }
    }
    match teams::revoke_api_key(db, &caller.org_id, &id, db::now_ms()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}
