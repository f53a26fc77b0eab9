//! The team inbox: conversations, assignment, internal notes and agent replies.
//!
//! Authenticated like the rest of `/api` (a [`Caller`]) and scoped by the caller's
//! organization: another organization's accounts and conversations answer 404 as if they did
//! not exist. Reading needs [`Permission::ViewInbox`]; handling conversations (status, snooze,
//! taking one, notes, replies) needs [`Permission::Reply`] (every role); assigning a
//! conversation to someone else and the inbox settings need [`Permission::ManageMembers`]
//! (Owner, Admin).
//!
//! - `GET /api/inbox/conversations[?account=&status=open|pending|closed|snoozed&assignee=&unassigned=true&limit=&offset=]`:
//!   most recently active first; `next_offset` when there are more. `open` leaves out the
//!   conversations snoozed now; `snoozed` lists those.
//! - `GET /api/inbox/conversations/{account}/{contact}`: the conversation, its latest messages
//!   (`limit`, default 200) with reactions and read times, and its notes.
//! - `PATCH /api/inbox/conversations/{account}/{contact}` `{"status"?, "snoozed_until"?}`: change
//!   the status (`open`, `pending`, `closed`) and/or snooze until a time (Unix ms, in the future;
//!   a new message from the contact wakes the conversation). A status change without
//!   `snoozed_until` ends a snooze. Closing ends the human hand-off (automation answers again).
//! - `POST /api/inbox/conversations/{account}/{contact}/assign` `{"assignee": user id | null}`:
//!   manual assignment to a member (yourself with `Reply`, anyone with `ManageMembers`);
//!   assigning pauses automation for the contact (see below).
//! - `POST /api/inbox/conversations/{account}/{contact}/notes` `{"text"}`: an internal note.
//! - `POST /api/inbox/conversations/{account}/{contact}/reply` `{"text"}`: an agent's reply,
//!   queued in the outbox and sent by the sender like any DM. Within 24 hours of the contact's
//!   last message it is a standard message; from 24 hours up to 7 days it carries the
//!   `HUMAN_AGENT` tag, which Meta allows for replies written by a person only, so it is
//!   accepted only from a member's login session (not from an API key); after 7 days (or when
//!   the contact never wrote) it is refused with 422, saying why and when the window closed
//!   (`window_closed_at`). The reply shows in the conversation when its echo arrives.
//! - `GET /api/inbox/settings`, `PUT /api/inbox/settings` `{"round_robin": bool}`: with
//!   round-robin on, new and reopened conversations go to the next Agent or Admin member in
//!   turn (oldest member first).
//! - `GET /api/inbox/metrics[?from=&to=]` (Unix ms; default the last 30 days): the first
//!   responses an agent gave in the period, one per episode (a conversation closed and reopened
//!   is timed again from the contact's new message, and both answers count): `responses`, the
//!   `conversations` they answered, `median_ms` and `p90_ms`.
//! - `POST /api/inbox/backfill` `{"account"}` ([`Permission::ManageConnections`]): reads the
//!   account's existing threads through the Conversations API (the 20 most recent messages of
//!   each conversation, the ones Meta returns), at most 2 calls per second, in the background;
//!   starting it again after a failure resumes where it stopped. `GET
//!   /api/inbox/backfill/{account}`: its progress (`running`, `done`, `failed` with the
//!   reason; conversations and messages read).
//!
//! Automation paused while a human handles the conversation: an agent's reply or a manual
//! assignment pauses the automations for the contact until the conversation is closed or
//! `inbox_human_hours` (config, default 24) pass; the inbox worker records the contact's events
//! meanwhile as decided `paused`, with no outbox rows. Round-robin assignment routes a
//! conversation but does not pause the automations (nobody has taken it up yet).

use std::sync::Arc;

use automation_core::rule::Message as RuleMessage;
use automation_core::store::ContactStore;
use automation_core::{Contact, PlannedAction};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::api::{begin_for, scope};
use super::auth::{failure, problem, Caller, Permission};
use super::AppState;
use crate::service::db::automation_store::TxStore;
use crate::service::db::conversations::{self, Conversation, Filter, Note};
use crate::service::db::{self, backfill, delivery_log, outbox, teams, Tx};
use crate::service::error::Result;

/// The inbox routes (under `/api/inbox`, authenticated).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/inbox/conversations", get(list))
        .route(
            "/api/inbox/conversations/{account}/{contact}",
            get(get_one).patch(update),
        )
        .route(
            "/api/inbox/conversations/{account}/{contact}/assign",
            post(assign),
        )
        .route(
            "/api/inbox/conversations/{account}/{contact}/notes",
            post(add_note),
        )
        .route(
            "/api/inbox/conversations/{account}/{contact}/reply",
            post(reply),
        )
        .route("/api/inbox/settings", get(settings).put(put_settings))
        .route("/api/inbox/metrics", get(metrics))
        .route("/api/inbox/backfill", post(start_backfill))
        .route("/api/inbox/backfill/{account}", get(backfill_status))
        .layer(middleware::from_fn_with_state(
            state,
            super::api::authenticate,
        ))
}

/// Checks the permission and that the account is the caller's organization's (else the 403 or
/// 404 answer); the read transaction is dropped.
async fn check(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    account: &str,
) -> std::result::Result<(), Response> {
    scope(state, caller, permission, Some(account))
        .await
        .map(drop)
}

fn no_conversation() -> Response {
    problem(StatusCode::NOT_FOUND, "no such conversation")
}

async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<Filter>,
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
    if let Some(s) = filter.status.as_deref() {
        if !matches!(s, "open" | "pending" | "closed" | "snoozed") {
            return problem(
                StatusCode::BAD_REQUEST,
                "status must be open, pending, closed or snoozed",
            );
        }
    }
    match conversations::list(&mut reader, &caller.org_id, &filter, db::now_ms()).await {
        Ok((list, more)) => {
            let offset = filter.offset.unwrap_or(0).max(0);
            let next = more.then(|| offset + i64::try_from(list.len()).unwrap_or(0));
            Json(json!({ "conversations": list, "next_offset": next })).into_response()
        }
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    Query(q): Query<Limit>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, Some(&account)).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let conversation = match conversations::get(&mut reader, &account, &contact).await {
        Ok(Some(c)) => c,
        Ok(None) => return no_conversation(),
        Err(e) => return failure(e),
    };
    let limit = q.limit.unwrap_or(200);
    let messages = match conversations::messages(&mut reader, &account, &contact, limit).await {
        Ok(m) => m,
        Err(e) => return failure(e),
    };
    match conversations::notes(&mut reader, &account, &contact).await {
        Ok(notes) => Json(json!({
            "conversation": conversation,
            "messages": messages,
            "notes": notes,
        }))
        .into_response(),
        Err(e) => failure(e),
    }
}

/// Pauses the automations for the contact until `until` (a human handles the conversation).
async fn hand_to_human(tx: Tx, account: &str, contact: &str, until: i64, now: i64) -> Result<Tx> {
    let store = TxStore::new(tx);
    let mut c = match store.contact(account, contact).await? {
        Some(c) => c,
        None => Contact::new(account, contact, db::to_time(now)),
    };
    let until = db::to_time(until);
    c.paused_until = Some(c.paused_until.map_or(until, |p| p.max(until)));
    store.put_contact(c).await?;
    store.finish().await
}

/// Ends the hand-off started by the inbox (a pause up to `human_until`; a longer pause, from an
/// automation's hand-off, stays).
async fn end_hand_off(tx: Tx, account: &str, contact: &str, human_until: i64) -> Result<Tx> {
    let store = TxStore::new(tx);
    if let Some(mut c) = store.contact(account, contact).await? {
        if c.paused_until
            .is_some_and(|p| p.timestamp_millis() <= human_until)
        {
            c.paused_until = None;
            store.put_contact(c).await?;
        }
    }
    store.finish().await
}

fn human_until(state: &AppState, now: i64) -> i64 {
    let hours = i64::try_from(state.shared.config.inbox_human_hours).unwrap_or(i64::MAX / 4);
    now.saturating_add(hours.saturating_mul(3_600_000))
}

#[derive(Debug, Deserialize)]
struct Update {
    status: Option<String>,
    snoozed_until: Option<i64>,
}

async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    Json(body): Json<Update>,
) -> Response {
    if let Err(answer) = check(&state, &caller, Permission::Reply, &account).await {
        return answer;
    }
    let now = db::now_ms();
    if let Some(s) = body.status.as_deref() {
        if !matches!(s, "open" | "pending" | "closed") {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "status must be open, pending or closed",
            );
        }
    }
    if body.status.is_none() && body.snoozed_until.is_none() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give status (open, pending, closed) and/or snoozed_until (Unix ms)",
        );
    }
    if body.snoozed_until.is_some_and(|t| t <= now) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "snoozed_until must be in the future (Unix milliseconds)",
        );
    }
    if body.snoozed_until.is_some() && body.status.as_deref() == Some("closed") {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a closed conversation cannot be snoozed; snooze it open or pending",
        );
    }
    let result: Result<Option<Conversation>> = async {
        let mut tx = begin_for(&state, &caller).await?;
        tx.lock_contact(&account, &contact).await?;
        let Some(mut c) = conversations::get(&mut tx, &account, &contact).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut ended = None;
        if let Some(status) = &body.status {
            c.status = status.clone();
            c.snoozed_until = None;
            if status == conversations::CLOSED {
                ended = c.human_until.take();
            }
        }
        if let Some(until) = body.snoozed_until {
            c.snoozed_until = Some(until);
        }
        c.updated_at = now;
        conversations::put(&mut tx, &c).await?;
        if let Some(h) = ended {
            tx = end_hand_off(tx, &account, &contact, h).await?;
        }
        tx.commit().await?;
        Ok(Some(c))
    }
    .await;
    match result {
        Ok(Some(c)) => Json(c).into_response(),
        Ok(None) => no_conversation(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Assign {
    assignee: Option<String>,
}

async fn assign(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    Json(body): Json<Assign>,
) -> Response {
    // yourself (or nobody, if it is yours) with Reply; anyone else needs ManageMembers
    let own = body.assignee.is_some() && body.assignee == caller.user_id;
    let permission = if own {
        Permission::Reply
    } else {
        Permission::ManageMembers
    };
    if let Err(answer) = check(&state, &caller, permission, &account).await {
        return answer;
    }
    if let Some(user) = &body.assignee {
        match teams::member_role(&state.shared.db, &caller.org_id, user).await {
            Ok(Some(_)) => {}
            Ok(None) => return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "assignee is not a member of your organization; list members with GET /api/members",
            ),
            Err(e) => return failure(e),
        }
    }
    let now = db::now_ms();
    let until = human_until(&state, now);
    let result: Result<Option<Conversation>> = async {
        let mut tx = begin_for(&state, &caller).await?;
        tx.lock_contact(&account, &contact).await?;
        let Some(mut c) = conversations::get(&mut tx, &account, &contact).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        c.assignee = body.assignee.clone();
        c.updated_at = now;
        if c.assignee.is_some() {
            c.human_until = Some(c.human_until.map_or(until, |h| h.max(until)));
        }
        conversations::put(&mut tx, &c).await?;
        if c.assignee.is_some() {
            tx = hand_to_human(tx, &account, &contact, until, now).await?;
        }
        tx.commit().await?;
        Ok(Some(c))
    }
    .await;
    match result {
        Ok(Some(c)) => Json(c).into_response(),
        Ok(None) => no_conversation(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Text {
    text: String,
}

/// Longest note, in characters.
const MAX_NOTE: usize = 10_000;

async fn add_note(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    Json(body): Json<Text>,
) -> Response {
    if let Err(answer) = check(&state, &caller, Permission::Reply, &account).await {
        return answer;
    }
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text must be 1 to 10000 characters",
        );
    }
    let result: Result<Option<Note>> = async {
        let id = teams::new_id("note_")?;
        let mut tx = begin_for(&state, &caller).await?;
        if conversations::get(&mut tx, &account, &contact)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let note = Note {
            id,
            author: caller.user_id.clone(),
            text: text.to_string(),
            created_at: db::now_ms(),
        };
        conversations::add_note(&mut tx, &note, &account, &contact).await?;
        tx.commit().await?;
        Ok(Some(note))
    }
    .await;
    match result {
        Ok(Some(note)) => (StatusCode::CREATED, Json(note)).into_response(),
        Ok(None) => no_conversation(),
        Err(e) => failure(e),
    }
}

/// Why a reply cannot be sent now.
fn refused(message: String, closed_at: Option<i64>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": message, "window_closed_at": closed_at })),
    )
        .into_response()
}

async fn reply(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    Json(body): Json<Text>,
) -> Response {
    if let Err(answer) = check(&state, &caller, Permission::Reply, &account).await {
        return answer;
    }
    let text = body.text.trim().to_string();
    if let Err(e) = instagram_graph::model::SendRequest::text(contact.clone(), text.clone()) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
    }
    let now = db::now_ms();
    let until = human_until(&state, now);
    let result: Result<std::result::Result<serde_json::Value, Response>> = async {
        let mut tx = begin_for(&state, &caller).await?;
        tx.lock_contact(&account, &contact).await?;
        let Some(mut c) = conversations::get(&mut tx, &account, &contact).await? else {
            tx.rollback().await?;
            return Ok(Err(no_conversation()));
        };
        // the contact's last message: the inbox's record, else the automations' contact
        let last = match c.last_inbound_at {
            Some(at) => Some(at),
            None => {
                let store = TxStore::new(tx);
                let known = store.contact(&account, &contact).await?;
                tx = store.finish().await?;
                known.and_then(|k| k.last_inbound).map(|t| t.timestamp_millis())
            }
        };
        let window = automation_core::policy::messaging_window(last.map(db::to_time), db::to_time(now));
        let closed_at = last.map(|l| l.saturating_add(7 * 86_400_000));
        let time = |ms: i64| db::to_time(ms).to_rfc3339();
        use automation_core::policy::Window;
        let tag = match window {
            Window::Standard => false,
            Window::HumanAgentOnly if caller.user_id.is_some() => true,
            Window::HumanAgentOnly => {
                tx.rollback().await?;
                return Ok(Err(refused(
                    format!(
                        "the contact's last message was more than 24 hours ago ({}): from then until {} only a person may reply (HUMAN_AGENT tag); reply from a member's login session, not with an API key",
                        time(last.unwrap_or_default()),
                        time(closed_at.unwrap_or_default())
                    ),
                    closed_at,
                )));
            }
            _ => {
                tx.rollback().await?;
                let message = match last {
                    Some(l) => format!(
                        "the messaging window closed at {}: the contact's last message was at {}, and Instagram allows replies only within 24 hours of it (standard) or, written by a person, within 7 days (HUMAN_AGENT); wait until the contact writes again",
                        time(closed_at.unwrap_or_default()),
                        time(l)
                    ),
                    None => "the contact has never messaged this account: Instagram allows replies only within 7 days of the contact's last message".to_string(),
                };
                return Ok(Err(refused(message, closed_at)));
            }
        };
        let action = PlannedAction::SendDm {
            recipient: contact.clone(),
            message: RuleMessage::Text {
                text: text.clone(),
                quick_replies: Vec::new(),
            },
        };
        let mut stored = serde_json::to_value(&action).unwrap_or_default();
        if tag {
            stored["tag"] = json!("HUMAN_AGENT");
        }
        let key = conversations::reply_key(&teams::new_id("r")?, caller.user_id.as_deref());
        let row = outbox::NewAction {
            key: key.clone(),
            account: account.clone(),
            event_key: key.clone(),
            action_index: 0,
            rule: None,
            kind: "send_dm".into(),
            recipient: contact.clone(),
            action: stored.to_string(),
        };
        outbox::insert(&mut tx, &row, now).await?;
        delivery_log::append(
            &mut tx,
            &delivery_log::Entry {
                outbox_key: &key,
                account: &account,
                kind: "send_dm",
                status: "queued",
                ..Default::default()
            },
            now,
        )
        .await?;
        c.human_until = Some(c.human_until.map_or(until, |h| h.max(until)));
        c.updated_at = now;
        conversations::put(&mut tx, &c).await?;
        let tx = hand_to_human(tx, &account, &contact, until, now).await?;
        tx.commit().await?;
        Ok(Ok(json!({
            "outbox_key": key,
            "tag": tag.then_some("HUMAN_AGENT"),
            "automation_paused_until": until,
        })))
    }
    .await;
    match result {
        Ok(Ok(answer)) => (StatusCode::ACCEPTED, Json(answer)).into_response(),
        Ok(Err(answer)) => answer,
        Err(e) => failure(e),
    }
}

async fn settings(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match conversations::round_robin_enabled(&mut reader, &caller.org_id).await {
        Ok(on) => Json(json!({ "round_robin": on })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Settings {
    round_robin: bool,
}

async fn put_settings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<Settings>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageMembers) {
        return denied;
    }
    let result: Result<()> = async {
        let mut tx = begin_for(&state, &caller).await?;
        conversations::set_round_robin(&mut tx, &caller.org_id, body.round_robin, db::now_ms())
            .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Json(json!({ "round_robin": body.round_robin })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Period {
    from: Option<i64>,
    to: Option<i64>,
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(period): Query<Period>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let to = period.to.unwrap_or_else(|| db::now_ms().saturating_add(1));
    let from = period
        .from
        .unwrap_or_else(|| to.saturating_sub(30 * 86_400_000));
    if from >= to {
        return problem(
            StatusCode::BAD_REQUEST,
            "from must be before to (Unix milliseconds)",
        );
    }
    match conversations::first_response_times(&mut reader, &caller.org_id, from, to).await {
        Ok(r) => Json(json!({
            "from": from,
            "to": to,
            "first_response": {
                "responses": r.times.len(),
                "conversations": r.conversations,
                "median_ms": conversations::percentile(&r.times, 50),
                "p90_ms": conversations::percentile(&r.times, 90),
            },
        }))
        .into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct BackfillRequest {
    account: String,
}

async fn start_backfill(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(body): Json<BackfillRequest>,
) -> Response {
    if let Err(answer) = check(
        &state,
        &caller,
        Permission::ManageConnections,
        &body.account,
    )
    .await
    {
        return answer;
    }
    let result: Result<Option<backfill::Backfill>> = async {
        let mut tx = begin_for(&state, &caller).await?;
        backfill::start(&mut tx, &body.account, db::now_ms()).await?;
        let progress = backfill::get(&mut tx, &body.account).await?;
        tx.commit().await?;
        Ok(progress)
    }
    .await;
    match result {
        Ok(progress) => {
            (StatusCode::ACCEPTED, Json(json!({ "backfill": progress }))).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn backfill_status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(account): Path<String>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, Some(&account)).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match backfill::get(&mut reader, &account).await {
        Ok(Some(progress)) => Json(json!({ "backfill": progress })).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "no backfill of this account; start one with POST /api/inbox/backfill",
        ),
        Err(e) => failure(e),
    }
}
