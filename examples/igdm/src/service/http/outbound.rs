//! Webhooks to and from other tools.
//!
//! Management (authenticated like the rest of `/api`, by a [`Caller`], and scoped by the
//! caller's organization: subscriptions and deliveries of another organization answer 404 as
//! if they did not exist, and an `account` must be one of the organization's accounts, else
//! 404). Subscriptions and redeliveries need [`Permission::ManageWebhooks`] (Owner, Admin);
//! the delivery log needs [`Permission::ViewInbox`] (every role). A subscription belongs to the
//! organization that created it and receives only the events of its accounts (of the one
//! account it names, if it names one).
//!
//! - `GET /api/webhooks/subscriptions[?account=&direction=]`: subscriptions (never secrets).
//! - `POST /api/webhooks/subscriptions`: `{"direction": "outbound", "url", "event_types":
//!   ["message.received", "automation.fired", "contact.updated"], "account"?, "description"?}` or
//!   `{"direction": "inbound", "account", "description"?}`; answers 201 with the subscription and
//!   its `secret` (`whsec_...`), shown this once; 422 with every problem and its field.
//! - `GET`, `PATCH` (`url`, `event_types`, `description`, `enabled`), `DELETE
//!   /api/webhooks/subscriptions/{id}` (deleting removes its deliveries and their attempts);
//!   `POST /api/webhooks/subscriptions/{id}/secret`: a new secret, shown this once (the old one
//!   stops working at once).
//! - `GET /api/webhooks/deliveries[?subscription=&account=&contact=&status=&event_type=&since=&limit=]`:
//!   the delivery log, newest first; `GET /api/webhooks/deliveries/{id}`: one delivery with every
//!   attempt; `POST /api/webhooks/deliveries/{id}/redeliver`: send it again (same `webhook-id`
//!   and body) from a fresh set of attempts.
//!
//! Inbound (public, signed): `POST /hooks/inbound/{subscription id}` with Standard Webhooks
//! headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`, signed with the inbound
//! subscription's secret) and a JSON body
//!
//! ```json
//! { "contacts": [{ "id": "IGSID", "add_tags": ["vip"], "remove_tags": [], "fields": { "plan": "pro" } }],
//!   "messages": [{ "contact": "IGSID", "text": "Your order shipped!" }] }
//! ```
//!
//! The endpoint is public: the signature with the subscription's secret is the credential.
//! It writes only to the subscription's account, and only while that account belongs to the
//! subscription's organization (else 404, nothing applied).
//! Contacts of the subscription's account are created or updated (a `contact.updated` event is
//! published); messages go to the outbox as text DMs, sent like any other (rate limits, retries,
//! delivery log) and only inside the 24-hour window of the contact's last message. A bad or
//! missing signature is refused with 401; a body that is not valid JSON of this shape, or asks
//! for something not allowed, with 422 and every problem located (`path`, and `line`/`column`
//! for syntax); nothing of a refused request is applied. A request is idempotent on its
//! `webhook-id`: a retried delivery sends no second DM.

use std::collections::BTreeMap;
use std::sync::Arc;

use automation_core::rule::Message;
use automation_core::store::ContactStore;
use automation_core::{Contact, PlannedAction};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use webhook_verify::standard::{Headers, Webhook};

use super::api::scope;
use super::auth::{failure, problem, Caller, Permission};
use super::AppState;
use crate::service::db::automation_store::TxStore;
use crate::service::db::{self, delivery_log, outbound, outbox, teams};
use crate::service::error::{Error, ErrorKind};
use crate::service::pipeline;

/// The management routes (under `/api/webhooks`, authenticated) and the public inbound
/// endpoint (`/hooks/inbound/{id}`).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let limit = state.shared.config.outbound.inbound_body_limit;
    let api = Router::new()
        .route(
            "/api/webhooks/subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route(
            "/api/webhooks/subscriptions/{id}",
            get(get_subscription)
                .patch(update_subscription)
                .delete(delete_subscription),
        )
        .route(
            "/api/webhooks/subscriptions/{id}/secret",
            post(rotate_secret),
        )
        .route("/api/webhooks/deliveries", get(list_deliveries))
        .route("/api/webhooks/deliveries/{id}", get(get_delivery))
        .route("/api/webhooks/deliveries/{id}/redeliver", post(redeliver))
        .layer(middleware::from_fn_with_state(
            state,
            super::api::authenticate,
        ));
    api.route(
        "/hooks/inbound/{id}",
        post(inbound).layer(DefaultBodyLimit::max(limit)),
    )
}

/// A located problem of a request body.
#[derive(Debug, Clone, serde::Serialize)]
struct Problem {
    path: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
}

impl Problem {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

fn unprocessable(problems: Vec<Problem>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "errors": problems })),
    )
        .into_response()
}

/// Parses JSON into `T`; a located problem when it does not fit.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("the body is not valid JSON: {inner}")
            }
            _ => inner.to_string(),
        };
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        Problem {
            path: if path == "." { String::new() } else { path },
            message,
            line: Some(inner.line()),
            column: Some(inner.column()),
        }
    })
}

#[derive(Debug, Deserialize)]
struct SubscriptionQuery {
    account: Option<String>,
    direction: Option<String>,
}

async fn list_subscriptions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<SubscriptionQuery>,
) -> Response {
    let mut reader = match scope(
        &state,
        &caller,
        Permission::ManageWebhooks,
        q.account.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match outbound::list(
        &mut reader,
        &caller.org_id,
        q.account.as_deref(),
        q.direction.as_deref(),
    )
    .await
    {
        Ok(list) => Json(json!({ "subscriptions": list })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscription {
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
}

fn check_url(url: &str, path: &str, allow_private: bool, problems: &mut Vec<Problem>) {
    if let Err(message) = crate::service::egress::check_url(url, allow_private) {
        problems.push(Problem::at(path, message));
    }
}

fn check_event_types(types: &[String], path: &str, problems: &mut Vec<Problem>) {
    if types.is_empty() {
        problems.push(Problem::at(
            path,
            format!(
                "name at least one event type: {}",
                outbound::EVENT_TYPES.join(", ")
            ),
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if !outbound::EVENT_TYPES.contains(&t.as_str()) {
            problems.push(Problem::at(
                format!("{path}[{i}]"),
                format!(
                    "unknown event type `{t}`; use {}",
                    outbound::EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
}

async fn create_subscription(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageWebhooks) {
        return denied;
    }
    let req: CreateSubscription = match parse(&body) {
        Ok(r) => r,
        Err(p) => return unprocessable(vec![p]),
    };
    let direction = req.direction.as_deref().unwrap_or(outbound::OUTBOUND);
    let mut problems = Vec::new();
    match direction {
        outbound::OUTBOUND => {
            match &req.url {
                Some(url) => check_url(
                    url,
                    "url",
                    state.shared.config.outbound.allow_private_targets,
                    &mut problems,
                ),
                None => problems.push(Problem::at("url", "an outbound subscription needs a url")),
            }
            match &req.event_types {
                Some(types) => check_event_types(types, "event_types", &mut problems),
                None => check_event_types(&[], "event_types", &mut problems),
            }
        }
        outbound::INBOUND => {
            if req.account.is_none() {
                problems.push(Problem::at(
                    "account",
                    "an inbound subscription needs the account its contacts and messages belong to",
                ));
            }
            if req.url.is_some() || req.event_types.is_some() {
                problems.push(Problem::at(
                    "url",
                    "an inbound subscription has no url or event_types; other tools POST to /hooks/inbound/{id}",
                ));
            }
        }
        other => problems.push(Problem::at(
            "direction",
            format!("unknown direction `{other}`; use outbound or inbound"),
        )),
    }
    // the body's own problems first (they say nothing about other organizations' accounts)
    if !problems.is_empty() {
        return unprocessable(problems);
    }
    if let Some(account) = &req.account {
        if let Err(answer) = owned(&state, &caller, account).await {
            return answer;
        }
    }
    let new = outbound::NewSubscription {
        direction: direction.to_string(),
        org_id: caller.org_id.clone(),
        account: req.account,
        url: req.url,
        event_types: req.event_types.unwrap_or_default(),
        description: req.description,
    };
    match outbound::create(&state.shared.db, &state.shared.vault, &new, db::now_ms()).await {
        Ok((sub, secret)) => {
            let mut body = serde_json::to_value(&sub).unwrap_or_default();
            body["secret"] = json!(secret);
            if sub.direction == outbound::INBOUND {
                body["endpoint"] =
                    json!(format!("{}/hooks/inbound/{}", state.public_url(), sub.id));
            }
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e) => failure(e),
    }
}

/// `Ok` when `account` belongs to the caller's organization, else the 404 answer (the same as
/// for an account that does not exist).
#[allow(clippy::result_large_err)]
async fn owned(state: &AppState, caller: &Caller, account: &str) -> Result<(), Response> {
    let mut conn = state
        .shared
        .db
        .pool()
        .acquire()
        .await
        .map_err(|e| failure(e.into()))?;
    match teams::owns_account(&mut conn, &caller.org_id, account).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(problem(
            StatusCode::NOT_FOUND,
            "no such account: the account is not connected to your organization; connect it first",
        )),
        Err(e) => Err(failure(e)),
    }
}

async fn get_subscription(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ManageWebhooks, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match outbound::get(&mut reader, &caller.org_id, &id).await {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such subscription"),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSubscription {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn update_subscription(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ManageWebhooks, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let req: UpdateSubscription = match parse(&body) {
        Ok(r) => r,
        Err(p) => return unprocessable(vec![p]),
    };
    let existing = match outbound::get(&mut reader, &caller.org_id, &id).await {
        Ok(Some(s)) => s,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "no such subscription"),
        Err(e) => return failure(e),
    };
    let mut problems = Vec::new();
    if existing.direction == outbound::INBOUND && (req.url.is_some() || req.event_types.is_some()) {
        problems.push(Problem::at(
            "url",
            "an inbound subscription has no url or event_types",
        ));
    } else {
        if let Some(url) = &req.url {
            check_url(
                url,
                "url",
                state.shared.config.outbound.allow_private_targets,
                &mut problems,
            );
        }
        if let Some(types) = &req.event_types {
            check_event_types(types, "event_types", &mut problems);
        }
    }
    if !problems.is_empty() {
        return unprocessable(problems);
    }
    let changes = outbound::Changes {
        url: req.url,
        event_types: req.event_types,
        description: req.description,
        enabled: req.enabled,
    };
    drop(reader);
    match outbound::update(
        &state.shared.db,
        &caller.org_id,
        &id,
        &changes,
        db::now_ms(),
    )
    .await
    {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such subscription"),
        Err(e) => failure(e),
    }
}

async fn delete_subscription(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageWebhooks) {
        return denied;
    }
    match outbound::delete(&state.shared.db, &caller.org_id, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such subscription"),
        Err(e) => failure(e),
    }
}

async fn rotate_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageWebhooks) {
        return denied;
    }
    let shared = &state.shared;
    let rotated =
        outbound::rotate_secret(&shared.db, &shared.vault, &caller.org_id, &id, db::now_ms()).await;
    match rotated {
        Ok(Some(secret)) => Json(json!({ "id": id, "secret": secret })).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such subscription"),
        Err(e) => failure(e),
    }
}

async fn list_deliveries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<outbound::DeliveryFilter>,
) -> Response {
    let mut reader = match scope(
        &state,
        &caller,
        Permission::ViewInbox,
        filter.account.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match outbound::deliveries(&mut reader, &caller.org_id, &filter).await {
        Ok(list) => Json(json!({ "deliveries": list })).into_response(),
        Err(e) => failure(e),
    }
}

async fn get_delivery(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match outbound::delivery_with_attempts(&mut reader, &caller.org_id, &id).await {
        Ok(Some((delivery, attempts))) => {
            Json(json!({ "delivery": delivery, "attempts": attempts })).into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such delivery"),
        Err(e) => failure(e),
    }
}

async fn redeliver(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageWebhooks) {
        return denied;
    }
    let db = &state.shared.db;
    match outbound::redeliver(db, &caller.org_id, &id, db::now_ms()).await {
        Ok(true) => (StatusCode::ACCEPTED, Json(json!({ "redelivering": id }))).into_response(),
        Ok(false) => match async {
            let mut conn = db.pool().acquire().await?;
            outbound::delivery_with_attempts(&mut conn, &caller.org_id, &id).await
        }
        .await
        {
            Ok(Some(_)) => problem(
                StatusCode::CONFLICT,
                "the delivery is being attempted right now; try again in a moment",
            ),
            Ok(None) => problem(StatusCode::NOT_FOUND, "no such delivery"),
            Err(e) => failure(e),
        },
        Err(e) => failure(e),
    }
}

/// The body of an inbound webhook.
#[derive(Debug, Deserialize)]
struct InboundBody {
    #[serde(default)]
    contacts: Vec<ContactUpsert>,
    #[serde(default)]
    messages: Vec<InboundMessage>,
}

#[derive(Debug, Deserialize)]
struct ContactUpsert {
    id: String,
    #[serde(default)]
    add_tags: Vec<String>,
    #[serde(default)]
    remove_tags: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, automation_core::rule::FieldValue>,
}

#[derive(Debug, Deserialize)]
struct InboundMessage {
    contact: String,
    text: String,
}

/// Longest `webhook-id` accepted (it becomes part of the outbox keys).
const MAX_WEBHOOK_ID_BYTES: usize = 256;

/// Longest tag, field name or field value accepted.
const MAX_VALUE_CHARS: usize = 1000;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn inbound(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shared = &state.shared;
    let (sub, secret) = match outbound::with_secret(&shared.db, &shared.vault, &id).await {
        Ok(Some((sub, secret))) if sub.direction == outbound::INBOUND => (sub, secret),
        Ok(_) => return problem(StatusCode::NOT_FOUND, "no such inbound webhook"),
        Err(e) => return failure(e),
    };
    let (Some(webhook_id), Some(timestamp), Some(signature)) = (
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
        header(&headers, "webhook-signature"),
    ) else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "missing webhook-id, webhook-timestamp or webhook-signature header (Standard Webhooks)",
        );
    };
    if webhook_id.is_empty() || webhook_id.len() > MAX_WEBHOOK_ID_BYTES {
        return problem(
            StatusCode::BAD_REQUEST,
            "webhook-id must be 1 to 256 bytes (a unique id per message)",
        );
    }
    let now_secs = db::now_ms() / 1000;
    if let Err(e) = Webhook::new(secret).verify(
        &Headers::new(webhook_id, timestamp, signature),
        &body,
        now_secs,
    ) {
        shared.metrics.rejected("bad_signature");
        return problem(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    if !sub.enabled {
        return problem(StatusCode::FORBIDDEN, "this inbound webhook is disabled");
    }
    let Some(account) = sub.account.clone() else {
        return problem(StatusCode::NOT_FOUND, "no such inbound webhook");
    };
    let request: InboundBody = match parse(&body) {
        Ok(r) => r,
        Err(p) => return unprocessable(vec![p]),
    };
    match apply(shared, &sub, &account, webhook_id, &request).await {
        Ok(Ok(applied)) => (StatusCode::ACCEPTED, Json(applied)).into_response(),
        Ok(Err(problems)) => unprocessable(problems),
        Err(e) => failure(e),
    }
}

fn check_text(value: &str, path: String, what: &str, problems: &mut Vec<Problem>) {
    if value.trim().is_empty() {
        problems.push(Problem::at(path, format!("the {what} is empty")));
    } else if value.chars().count() > MAX_VALUE_CHARS {
        problems.push(Problem::at(
            path,
            format!("the {what} is longer than {MAX_VALUE_CHARS} characters"),
        ));
    }
}

/// Checks and applies an inbound request in one transaction: the located problems (nothing
/// applied), or what was done.
async fn apply(
    shared: &pipeline::Shared,
    sub: &outbound::Subscription,
    account: &str,
    webhook_id: &str,
    request: &InboundBody,
) -> crate::service::Result<Result<serde_json::Value, Vec<Problem>>> {
    let mut problems = Vec::new();
    for (i, c) in request.contacts.iter().enumerate() {
        check_text(
            &c.id,
            format!("contacts[{i}].id"),
            "contact id",
            &mut problems,
        );
        for (j, t) in c.add_tags.iter().enumerate() {
            check_text(
                t,
                format!("contacts[{i}].add_tags[{j}]"),
                "tag",
                &mut problems,
            );
        }
        for (j, t) in c.remove_tags.iter().enumerate() {
            check_text(
                t,
                format!("contacts[{i}].remove_tags[{j}]"),
                "tag",
                &mut problems,
            );
        }
        for (name, value) in &c.fields {
            check_text(
                name,
                format!("contacts[{i}].fields"),
                "field name",
                &mut problems,
            );
            if value.0.chars().count() > MAX_VALUE_CHARS {
                problems.push(Problem::at(
                    format!("contacts[{i}].fields.{name}"),
                    format!("the value is longer than {MAX_VALUE_CHARS} characters"),
                ));
            }
        }
    }
    for (i, m) in request.messages.iter().enumerate() {
        check_text(
            &m.contact,
            format!("messages[{i}].contact"),
            "contact id",
            &mut problems,
        );
        if m.text.trim().is_empty() {
            problems.push(Problem::at(
                format!("messages[{i}].text"),
                "the text is empty",
            ));
        } else if m.text.len() > 1000 {
            problems.push(Problem::at(
                format!("messages[{i}].text"),
                "the text is longer than 1000 bytes (the Send API's limit)",
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    // only an account of the subscription's organization, checked in the writing transaction
    if !teams::owns_account(&mut tx, &sub.org_id, account).await? {
        tx.rollback().await?;
        return Err(Error::new(
            ErrorKind::NotFound,
            "no such inbound webhook: its account is no longer connected to its organization",
        ));
    }
    let store = TxStore::new(tx);
    let mut updated = Vec::new();
    for c in &request.contacts {
        let mut contact = match store.contact(account, &c.id).await? {
            Some(existing) => existing,
            None => Contact::new(account, c.id.clone(), db::to_time(now)),
        };
        for t in &c.add_tags {
            contact.tags.insert(t.clone());
        }
        for t in &c.remove_tags {
            contact.tags.remove(t);
        }
        for (name, value) in &c.fields {
            contact.fields.insert(name.clone(), value.0.clone());
        }
        store.put_contact(contact).await?;
        updated.push(c.id.clone());
    }
    // Messages only inside the 24-hour window of the contact's last message.
    let mut planned = Vec::new();
    for (i, m) in request.messages.iter().enumerate() {
        let contact = store.contact(account, &m.contact).await?;
        let window = automation_core::policy::messaging_window(
            contact.as_ref().and_then(|c| c.last_inbound),
            db::to_time(now),
        );
        if !window.allows_standard() {
            problems.push(Problem::at(
                format!("messages[{i}]"),
                format!(
                    "contact {} has not messaged the account in the last 24 hours; only a human may reply now (with the HUMAN_AGENT tag, within 7 days)",
                    m.contact
                ),
            ));
            continue;
        }
        planned.push((
            i,
            PlannedAction::SendDm {
                recipient: m.contact.clone(),
                message: Message::Text {
                    text: m.text.clone(),
                    quick_replies: Vec::new(),
                },
            },
        ));
    }
    if !problems.is_empty() {
        store.rollback().await?;
        return Ok(Err(problems));
    }
    let mut tx = store.finish().await?;
    for id in &updated {
        pipeline::outbound::publish_contact(&mut tx, account, id, now).await?;
    }
    let event_key = format!("inbound:{}:{webhook_id}", sub.id);
    let mut queued = Vec::new();
    let mut duplicate = false;
    for (i, action) in planned {
        let PlannedAction::SendDm { recipient, .. } = &action else {
            continue;
        };
        let key = format!("{event_key}#{i}");
        let row = outbox::NewAction {
            key: key.clone(),
            account: account.to_string(),
            event_key: event_key.clone(),
            action_index: i64::try_from(i).unwrap_or(i64::MAX),
            rule: None,
            kind: "send_dm".into(),
            recipient: recipient.clone(),
            action: serde_json::to_string(&action).unwrap_or_default(),
        };
        if outbox::insert(&mut tx, &row, now).await? {
            delivery_log::append(
                &mut tx,
                &delivery_log::Entry {
                    outbox_key: &key,
                    account,
                    kind: "send_dm",
                    status: "queued",
                    ..Default::default()
                },
                now,
            )
            .await?;
        } else {
            duplicate = true;
        }
        queued.push(key);
    }
    tx.commit().await?;
    Ok(Ok(json!({
        "contacts": updated,
        "messages": queued,
        "duplicate": duplicate,
    })))
}
