//! The HTTP server: routes, the Graph and OAuth handlers, recording and fault injection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::error::GraphFailure;
use crate::graph::GraphRequest;
use crate::model::RecordedRequest;
use crate::state::State as SimState;
use crate::Shared;

const SECRET_KEYS: &[&str] = &[
    "access_token",
    "client_secret",
    "appsecret_proof",
    "fb_exchange_token",
];
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/access_token", post(exchange_code))
        .merge(crate::sim_api::routes())
        .fallback(graph)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn failure_response(
    state: &mut SimState,
    failure: &GraphFailure,
    account: Option<&str>,
) -> Response {
    let trace = state.trace_id();
    let mut response = json_response(failure.status, &failure.body(&trace));
    if let Some(account) = account {
        add_usage(state, &mut response, account);
    }
    if let Some(wait) = failure.retry_after {
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

fn add_usage(state: &mut SimState, response: &mut Response, account: &str) {
    let (app, buc) = state.usage_headers(account);
    if let (Ok(app), Ok(buc)) = (HeaderValue::from_str(&app), HeaderValue::from_str(&buc)) {
        response.headers_mut().insert("x-app-usage", app);
        response
            .headers_mut()
            .insert("x-business-use-case-usage", buc);
    }
}

/// Every Graph call: `/{version}/{node}[/{edge}]`.
async fn graph(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = GraphRequest::parse(method, uri.path(), uri.query(), &headers, &body);
    let response = {
        let mut state = shared.lock();
        match crate::graph::handle(&mut state, &req) {
            Ok(answer) => {
                let mut response = json_response(200, &answer.body);
                if let Some(account) = answer.account {
                    add_usage(&mut state, &mut response, &account);
                }
                response
            }
            Err(failure) => {
                let account = req
                    .token
                    .as_ref()
                    .and_then(|t| state.tokens.get(t))
                    .map(|t| t.account.clone());
                failure_response(&mut state, &failure, account.as_deref())
            }
        }
    };
    shared.bump();
    response
}

/// `GET /oauth/authorize`: consents at once and redirects.
async fn authorize(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let params: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let outcome = crate::oauth::authorize(&mut shared.lock(), &params);
    shared.bump();
    match outcome {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => {
                let mut response = StatusCode::FOUND.into_response();
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            Err(_) => (
                StatusCode::BAD_REQUEST,
                "redirect_uri cannot be used in a Location header",
            )
                .into_response(),
        },
        Err(message) => {
            let page = format!(
                "<!doctype html><html><head><title>Instagram (simulated)</title></head><body><h1>Sorry, this page isn't available.</h1><p>{}</p></body></html>",
                html_escape(&message)
            );
            let mut response = (StatusCode::BAD_REQUEST, page).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `POST /oauth/access_token`: the code exchange (form body).
async fn exchange_code(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let outcome = crate::oauth::exchange_code(&mut shared.lock(), &form);
    shared.bump();
    match outcome {
        Ok(body) => json_response(200, &body),
        Err(body) => json_response(400, &body),
    }
}

fn redact_pairs(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            if SECRET_KEYS.contains(&k.as_str()) {
                (k, "<redacted>".to_owned())
            } else {
                (k, v)
            }
        })
        .collect()
}

fn cut_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "instagram-sim: injected dropped connection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// Records every platform request and injects the configured faults.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/_sim") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let failure = GraphFailure::param("the request body is too large or could not be read");
        return json_response(413, &failure.body("ASimBodyTooLarge"));
    };
    let is_graph = !path.starts_with("/oauth/");
    let (latency, fail, cut, seq) = {
        let mut state = shared.lock();
        let faults = state.faults.clone();
        let fail = is_graph && state.rng.chance(faults.error_rate);
        let cut = is_graph && !fail && state.rng.chance(faults.drop_rate);
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(|| {
                query
                    .iter()
                    .find(|(k, _)| k == "access_token")
                    .map(|(_, v)| v.clone())
            });
        let account = bearer
            .and_then(|t| state.tokens.get(&t))
            .map(|t| t.account.clone());
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = if name == header::AUTHORIZATION {
                    "<redacted>".to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.as_str().to_owned(), value)
            })
            .collect();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = if is_form {
            let pairs = redact_pairs(url::form_urlencoded::parse(&bytes).into_owned().collect());
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        state.ids.request += 1;
        let seq = state.ids.request;
        state.requests.push(RecordedRequest {
            seq,
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            query: redact_pairs(query),
            headers,
            body,
            account,
            status: 0,
        });
        state.trim_records();
        (faults.latency_ms, fail, cut, seq)
    };
    shared.bump();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response = if fail {
        let mut state = shared.lock();
        failure_response(&mut state, &GraphFailure::transient(), None)
    } else {
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    };
    let status = if cut { 0 } else { response.status().as_u16() };
    {
        let mut state = shared.lock();
        if let Some(record) = state.requests.iter_mut().rev().find(|r| r.seq == seq) {
            record.status = status;
        }
    }
    shared.bump();
    if cut {
        cut_connection()
    } else {
        response
    }
}
