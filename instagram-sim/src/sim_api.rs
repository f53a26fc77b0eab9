//! The scripting API over HTTP (`/_sim/...`), mirroring the Rust API of
//! [`crate::RunningSimulator`]. Errors answer `{"error":{"kind","message"}}` with 400 or 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::Faults;
use crate::error::{Error, ErrorKind};
use crate::model::{AccountSpec, MediaSpec, PersonSpec};
use crate::script::{self, Action};
use crate::state::{iso, State as SimState};
use crate::Shared;

type SharedState = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sim/accounts", post(create_account).get(list_accounts))
        .route("/_sim/accounts/{account}/media", post(add_media))
        .route("/_sim/accounts/{account}/revoke", post(revoke))
        .route("/_sim/accounts/{account}/expire_tokens", post(expire))
        .route("/_sim/accounts/{account}/change_password", post(password))
        .route("/_sim/accounts/{account}/tokens", post(token))
        .route("/_sim/people", post(add_person))
        .route("/_sim/actions", post(action))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/faults", get(get_faults).put(set_faults))
        .route("/_sim/webhook", axum::routing::put(set_webhook))
        .route("/_sim/requests", get(requests))
        .route("/_sim/sent", get(sent))
        .route("/_sim/public_replies", get(public_replies))
        .route("/_sim/deliveries", get(deliveries))
        .route("/_sim/comments/{id}", get(comment))
        .route("/_sim/records", axum::routing::delete(clear))
}

fn error_response(error: &Error) -> Response {
    let status = match error.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    let kind = match error.kind() {
        ErrorKind::NotFound => "not_found",
        ErrorKind::Bind => "bind",
        ErrorKind::Timeout => "timeout",
        _ => "invalid",
    };
    (
        status,
        Json(json!({ "error": { "kind": kind, "message": error.message() } })),
    )
        .into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("the JSON body does not fit: {e}")))
}

fn run<T: serde::Serialize>(
    shared: &Shared,
    f: impl FnOnce(&mut SimState) -> Result<T, Error>,
) -> Response {
    let outcome = f(&mut shared.lock());
    shared.bump();
    match outcome {
        Ok(value) => Json(value).into_response(),
        Err(error) => error_response(&error),
    }
}

async fn create_account(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<AccountSpec>(&body) {
        Ok(spec) => run(&shared, |s| script::create_account(s, &spec)),
        Err(error) => error_response(&error),
    }
}

async fn list_accounts(State(shared): SharedState) -> Response {
    let state = shared.lock();
    let accounts: Vec<Value> = state
        .accounts
        .values()
        .map(|a| {
            json!({
                "ig_user_id": a.ig_id,
                "app_scoped_id": a.app_scoped_id,
                "username": a.username,
                "authorized": a.authorized,
                "subscribed_fields": a.subscribed,
            })
        })
        .collect();
    Json(json!({ "data": accounts })).into_response()
}

async fn add_media(
    State(shared): SharedState,
    Path(account): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<MediaSpec>(&body) {
        Ok(spec) => run(&shared, |s| {
            script::add_media(s, &account, &spec).map(|id| json!({ "id": id }))
        }),
        Err(error) => error_response(&error),
    }
}

async fn revoke(State(shared): SharedState, Path(account): Path<String>) -> Response {
    run(&shared, |s| {
        script::revoke_app(s, &account).map(|()| json!({ "success": true }))
    })
}

async fn expire(State(shared): SharedState, Path(account): Path<String>) -> Response {
    run(&shared, |s| {
        script::expire_tokens(s, &account).map(|()| json!({ "success": true }))
    })
}

async fn password(State(shared): SharedState, Path(account): Path<String>) -> Response {
    run(&shared, |s| {
        script::change_password(s, &account).map(|()| json!({ "success": true }))
    })
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn token(State(shared): SharedState, Path(account): Path<String>, body: Bytes) -> Response {
    match parse::<TokenRequest>(&body) {
        Ok(request) => run(&shared, |s| {
            let scopes = request.scopes.unwrap_or_else(crate::state::all_scopes);
            script::issue_token(s, &account, scopes).map(|t| json!({ "access_token": t }))
        }),
        Err(error) => error_response(&error),
    }
}

async fn add_person(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<PersonSpec>(&body) {
        Ok(spec) => run(&shared, |s| {
            script::add_person(s, &spec).map(|()| json!({ "success": true }))
        }),
        Err(error) => error_response(&error),
    }
}

async fn action(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<Action>(&body) {
        Ok(action) => run(&shared, |s| script::apply(s, action)),
        Err(error) => error_response(&error),
    }
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<Advance>(&body) {
        Ok(advance) if advance.seconds.is_finite() && advance.seconds >= 0.0 => run(&shared, |s| {
            s.clock.advance((advance.seconds * 1000.0) as i64);
            Ok(json!({ "now": iso(s.now()) }))
        }),
        Ok(_) => error_response(&Error::invalid(
            "seconds must be a finite number, 0 or more",
        )),
        Err(error) => error_response(&error),
    }
}

async fn get_faults(State(shared): SharedState) -> Response {
    Json(shared.lock().faults.clone()).into_response()
}

async fn set_faults(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<Faults>(&body) {
        Ok(faults) => run(&shared, |s| {
            s.faults = faults.clone();
            Ok(faults)
        }),
        Err(error) => error_response(&error),
    }
}

#[derive(Deserialize)]
struct Webhook {
    url: Option<String>,
}

async fn set_webhook(State(shared): SharedState, body: Bytes) -> Response {
    match parse::<Webhook>(&body) {
        Ok(hook) => run(&shared, |s| {
            s.webhook_url = hook.url.clone();
            Ok(json!({ "url": hook.url }))
        }),
        Err(error) => error_response(&error),
    }
}

async fn requests(State(shared): SharedState) -> Response {
    Json(json!({ "data": shared.lock().requests })).into_response()
}

async fn sent(State(shared): SharedState) -> Response {
    Json(json!({ "data": shared.lock().sent })).into_response()
}

async fn public_replies(State(shared): SharedState) -> Response {
    Json(json!({ "data": shared.lock().public_replies })).into_response()
}

async fn deliveries(State(shared): SharedState) -> Response {
    Json(json!({ "data": shared.lock().deliveries })).into_response()
}

async fn comment(State(shared): SharedState, Path(id): Path<String>) -> Response {
    let info = shared.lock().comment_info(&id);
    match info {
        Some(info) => Json(info).into_response(),
        None => error_response(&Error::not_found("comment", &id)),
    }
}

async fn clear(State(shared): SharedState) -> Response {
    run(&shared, |s| {
        s.requests.clear();
        s.sent.clear();
        s.public_replies.clear();
        s.deliveries.clear();
        Ok(json!({ "success": true }))
    })
}
