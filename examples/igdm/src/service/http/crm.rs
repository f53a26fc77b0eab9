//! Contacts as a CRM: search, profiles (with the User Profile API's consent rule), tags, custom
//! fields and pipeline stages with their history. Storage in [`db::crm`].
//!
//! Every route is organization-scoped like the rest of the management API: another
//! organization's accounts, contacts, fields and stages answer 404, and a role without the
//! permission gets 403 (see the matrix in [`super::auth`]).
//!
//! | Route | Permission |
//! |---|---|
//! | `GET /api/crm/contacts?account=&tag=&stage=&field=&value=&q=&after=&limit=` | `ViewInbox` |
//! | `GET /api/crm/contacts/{account}/{contact}` | `ViewInbox` |
//! | `POST /api/crm/contacts/{account}/{contact}/profile` (refresh) | `EditContacts` |
//! | `PUT`/`DELETE /api/crm/contacts/{account}/{contact}/tags/{tag}` | `EditContacts` |
//! | `PUT`/`DELETE /api/crm/contacts/{account}/{contact}/fields/{key}` (`{"value": ...}`) | `EditContacts` |
//! | `PUT /api/crm/contacts/{account}/{contact}/stage` (`{"stage": "id"}` or `null`) | `EditContacts` |
//! | `GET /api/crm/fields`, `GET /api/crm/stages` | `ViewInbox` |
//! | `PUT`/`DELETE /api/crm/fields/{key}` (`{"label", "type"}`) | `ManageContactSchema` |
//! | `PUT /api/crm/stages` (`{"stages": [{"id", "name"}]}`, the whole pipeline in order) | `ManageContactSchema` |
//!
//! **Listing** is paginated: `limit` (1 to 200, default 50) and `after`, the `next` of the
//! previous page (`ACCOUNT:IGSID`). `field` with `value` matches a custom field's value (given
//! as text, checked against the field's type); `q` matches the username or name.
//!
//! **Profiles** are fetched only for a contact who messaged the account (see
//! [`db::crm`] for how that is known): for anyone else the refresh
//! answers 409 with `"reason": "consent_required"` and Instagram is not called. A refusal or
//! error of the platform is recorded on the profile (`error`) and answered (409 for consent,
//! 502 otherwise, with the platform's error kind as `reason`); a refused token (190) marks the
//! account as needing a reconnect, as a refused send does. The picture URL is served only
//! while fresh (`profile_pic_expires_at`); reading a contact whose picture expired fetches the
//! profile again first (not within a minute of a failed attempt), and when that fails the
//! picture is left out (`"profile_pic_status": "expired"`), never served stale.
//!
//! **Changes** (tags, field values, stage) publish the outbound webhook event
//! `contact.updated` in the same transaction, with `data`: `account`, `contact`, `source`
//! (`"crm"`), `change` (what changed), `tags`, `fields` and `stage` (as after the change).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{authenticate, begin_for, scope};
use super::auth::{failure, problem, Caller, Credential, Permission};
use super::AppState;
use crate::service::db::{self, accounts, crm, outbound, Tx};
use crate::service::error::Result;

/// How long after a failed profile fetch reading the contact does not try again.
const RETRY_AFTER_FAILURE_MS: i64 = 60_000;

/// The CRM routes (authenticated).
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/crm/contacts", get(list_contacts))
        .route("/api/crm/contacts/{account}/{contact}", get(get_contact))
        .route(
            "/api/crm/contacts/{account}/{contact}/profile",
            post(refresh_profile),
        )
        .route(
            "/api/crm/contacts/{account}/{contact}/tags/{tag}",
            put(add_tag).delete(remove_tag),
        )
        .route(
            "/api/crm/contacts/{account}/{contact}/fields/{key}",
            put(set_value).delete(clear_value),
        )
        .route(
            "/api/crm/contacts/{account}/{contact}/stage",
            put(move_stage),
        )
        .route("/api/crm/fields", get(list_fields))
        .route("/api/crm/fields/{key}", put(put_field).delete(delete_field))
        .route("/api/crm/stages", get(list_stages).put(put_stages))
        .route_layer(middleware::from_fn_with_state(state, authenticate))
}

/// The 422 answer for a value or definition that is not valid.
fn invalid(message: &str) -> Response {
    problem(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Checks the caller may do `permission` on `account`'s contact `contact` (which must exist);
/// else the 403/404 answer.
#[allow(clippy::result_large_err)]
async fn contact_scope(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    account: &str,
    contact: &str,
) -> std::result::Result<db::Reader, Response> {
    let mut reader = scope(state, caller, permission, Some(account)).await?;
    match crm::contact_exists(&mut reader, account, contact).await {
        Ok(true) => Ok(reader),
        Ok(false) => Err(problem(StatusCode::NOT_FOUND, "no such contact")),
        Err(e) => Err(failure(e)),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    account: Option<String>,
    tag: Option<String>,
    stage: Option<String>,
    field: Option<String>,
    value: Option<String>,
    q: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

async fn list_contacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, q.account.as_deref()).await
    {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.split_once(':') {
            Some((account, id)) => Some((account.to_owned(), id.to_owned())),
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "`after` must be the `next` of the previous page (ACCOUNT:IGSID)",
                )
            }
        },
    };
    let field = match (q.field.as_deref(), q.value.as_deref()) {
        (None, None) => None,
        (Some(key), Some(value)) => match crm::field(&mut reader, &caller.org_id, key).await {
            Ok(Some(def)) => match def.field_type.canonical(&Value::from(value)) {
                Ok(v) => Some((key.to_owned(), v)),
                Err(why) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        &format!("`value` for field `{key}`: {why}"),
                    )
                }
            },
            Ok(None) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("no custom field `{key}`; see GET /api/crm/fields"),
                )
            }
            Err(e) => return failure(e),
        },
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "give both `field` and `value` to filter by a field value",
            )
        }
    };
    let filter = crm::Filter {
        account: q.account,
        tag: q.tag.filter(|t| !t.is_empty()),
        stage: q.stage.filter(|s| !s.is_empty()),
        field,
        q: q.q.filter(|s| !s.trim().is_empty()),
        after,
        limit: q.limit.unwrap_or(50),
    };
    match crm::list(&mut reader, &caller.org_id, &filter).await {
        Ok((contacts, next)) => Json(json!({ "contacts": contacts, "next": next })).into_response(),
        Err(e) => failure(e),
    }
}

/// Why a profile was not fetched.
enum Refused {
    /// The contact never messaged the account: Instagram was not asked.
    NoConsent,
    /// The platform refused or failed (recorded on the profile).
    Platform(instagram_graph::Error),
    /// The service failed (no usable token, the database).
    Service(crate::service::error::Error),
}

impl Refused {
    fn answer(self) -> Response {
        match self {
            Refused::NoConsent => (
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "this contact has not messaged the account, so Instagram gives no \
                              profile for them (user consent is required); a profile can be read \
                              once they send a message or tap an ice breaker or menu item",
                    "reason": "consent_required",
                })),
            )
                .into_response(),
            Refused::Platform(e) => {
                let kind = e.kind().name();
                let consent = matches!(e.kind(), instagram_graph::ErrorKind::ConsentRequired);
                let status = if consent {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let message = if consent {
                    "Instagram refused the profile: user consent is required (the person has \
                     not messaged the account, or blocked it)"
                        .to_owned()
                } else {
                    format!("Instagram did not return the profile: {e}; {}", e.advice())
                };
                (
                    status,
                    Json(json!({ "error": message, "reason": kind, "code": e.code() })),
                )
                    .into_response()
            }
            Refused::Service(e) => failure(e),
        }
    }
}

/// Fetches and stores the profile of a contact who messaged the account; a refusal or error
/// of the platform is recorded on the profile.
async fn fetch_profile(
    state: &AppState,
    caller: &Caller,
    account: &str,
    contact: &str,
) -> std::result::Result<(), Refused> {
    let consented = {
        let mut reader = scope(state, caller, Permission::ViewInbox, Some(account))
            .await
            .map_err(|_| {
                Refused::Service(crate::service::error::Error::new(
                    crate::service::error::ErrorKind::NotFound,
                    "no such account",
                ))
            })?;
        crm::has_messaged(&mut reader, account, contact)
            .await
            .map_err(Refused::Service)?
    };
    if !consented {
        return Err(Refused::NoConsent);
    }
    let client = state
        .shared
        .client_for(account)
        .await
        .map_err(Refused::Service)?;
    let fetched = client.user_profile(contact, &[]).await;
    let now = db::now_ms();
    let record = async {
        let mut tx = begin_for(state, caller).await?;
        match &fetched {
            Ok(p) => crm::record_profile(&mut tx, account, contact, &p.data, now).await?,
            Err(e) => {
                crm::record_profile_error(
                    &mut tx,
                    account,
                    contact,
                    e.kind().name(),
                    &e.to_string(),
                    now,
                )
                .await?
            }
        }
        tx.commit().await
    }
    .await;
    record.map_err(Refused::Service)?;
    if let Err(e) = &fetched {
        if matches!(e.kind(), instagram_graph::ErrorKind::TokenInvalid { .. }) {
            // as for sends: the account needs reconnecting, and its cached client goes
            accounts::set_status(
                &state.shared.db,
                account,
                accounts::NEEDS_RECONNECT,
                Some("the access token was refused (error 190); reconnect the account"),
                now,
            )
            .await
            .map_err(Refused::Service)?;
            state.shared.forget_client(account);
        }
    }
    fetched.map(|_| ()).map_err(Refused::Platform)
}

/// The contact as answered by `GET /api/crm/contacts/{account}/{contact}`.
async fn contact_json(
    conn: &mut sqlx::AnyConnection,
    org: &str,
    account: &str,
    contact: &str,
    now: i64,
) -> Result<Value> {
    let defs = crm::fields(conn, org).await?;
    let profile = crm::profile(conn, account, contact).await?;
    let messaged = crm::has_messaged(conn, account, contact).await?;
    let automation = crm::automation_contact(conn, account, contact).await?;
    let username: Option<String> =
        sqlx::query_scalar("SELECT username FROM contacts WHERE account = $1 AND id = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    let profile = profile.map(|p| {
        let picture = p.picture(now).map(str::to_owned);
        let status = if picture.is_some() {
            "fresh"
        } else if p.profile_pic.is_some() {
            "expired"
        } else {
            "none"
        };
        let error = p
            .error_kind
            .as_ref()
            .map(|k| json!({ "kind": k, "message": p.error_message }));
        json!({
            "name": p.name,
            "username": p.username,
            "profile_pic": picture,
            "profile_pic_expires_at": picture.as_ref().and(p.profile_pic_expires_at),
            "profile_pic_fetched_at": picture.as_ref().and(p.profile_pic_fetched_at),
            "profile_pic_status": status,
            "follower_count": p.follower_count,
            "is_user_follow_business": p.is_user_follow_business,
            "is_business_follow_user": p.is_business_follow_user,
            "is_verified_user": p.is_verified_user,
            "fetched_at": p.fetched_at,
            "attempted_at": p.attempted_at,
            "error": error,
        })
    });
    Ok(json!({
        "account": account,
        "id": contact,
        "username": username,
        "has_messaged": messaged,
        "profile": profile,
        "tags": crm::tags(conn, account, contact).await?,
        "fields": crm::values(conn, account, contact, &defs).await?,
        "stage": crm::stage(conn, account, contact).await?,
        "history": crm::history(conn, account, contact).await?,
        "automation": automation.map(|c| json!({
            "tags": c.tags,
            "fields": c.fields,
            "last_interaction": c.last_interaction.timestamp_millis(),
            "paused_until": c.paused_until.map(|t| t.timestamp_millis()),
        })),
    }))
}

async fn get_contact(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
) -> Response {
    let now = db::now_ms();
    let stale = {
        let mut reader =
            match contact_scope(&state, &caller, Permission::ViewInbox, &account, &contact).await {
                Ok(r) => r,
                Err(answer) => return answer,
            };
        match crm::profile(&mut reader, &account, &contact).await {
            // a failed attempt is not repeated for a minute (the picture stays left out)
            Ok(p) => p.is_some_and(|p| {
                p.picture_stale(now)
                    && !(p.error_kind.is_some() && now - p.attempted_at < RETRY_AFTER_FAILURE_MS)
            }),
            Err(e) => return failure(e),
        }
    };
    if stale {
        // fetched again before it is shown; on failure the picture is left out (and the
        // failure recorded on the profile)
        if let Err(Refused::Service(e)) = fetch_profile(&state, &caller, &account, &contact).await {
            tracing::warn!(error = %e, "could not refresh an expired profile picture");
        }
    }
    contact_answer(&state, &caller, &account, &contact).await
}

/// The contact as the caller may see it (`ViewInbox`), as the answer of a CRM route.
async fn contact_answer(
    state: &AppState,
    caller: &Caller,
    account: &str,
    contact: &str,
) -> Response {
    let mut reader =
        match contact_scope(state, caller, Permission::ViewInbox, account, contact).await {
            Ok(r) => r,
            Err(answer) => return answer,
        };
    match contact_json(&mut reader, &caller.org_id, account, contact, db::now_ms()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failure(e),
    }
}

async fn refresh_profile(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
) -> Response {
    if let Err(answer) = contact_scope(
        &state,
        &caller,
        Permission::EditContacts,
        &account,
        &contact,
    )
    .await
    {
        return answer;
    }
    if let Err(refused) = fetch_profile(&state, &caller, &account, &contact).await {
        return refused.answer();
    }
    contact_answer(&state, &caller, &account, &contact).await
}

/// Publishes `contact.updated` for a CRM change, with the contact as it is in `tx`.
async fn publish(
    tx: &mut Tx,
    org: &str,
    account: &str,
    contact: &str,
    change: Value,
    now: i64,
) -> Result<()> {
    let defs = crm::fields(tx, org).await?;
    let data = json!({
        "account": account,
        "contact": contact,
        "source": "crm",
        "change": change,
        "tags": crm::tags(tx, account, contact).await?,
        "fields": crm::values(tx, account, contact, &defs).await?,
        "stage": crm::stage(tx, account, contact).await?,
    });
    outbound::enqueue(tx, account, contact, outbound::CONTACT_UPDATED, &data, now).await?;
    Ok(())
}

/// Runs a change of a contact in one transaction with its `contact.updated` event (published
/// when `change` says something changed); the answer is the contact afterwards.
async fn change_contact<F>(
    state: &AppState,
    caller: &Caller,
    account: &str,
    contact: &str,
    apply: F,
) -> Response
where
    F: for<'t> FnOnce(
        &'t mut Tx,
        i64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<Value>>> + Send + 't>,
    >,
{
    if let Err(answer) =
        contact_scope(state, caller, Permission::EditContacts, account, contact).await
    {
        return answer;
    }
    let now = db::now_ms();
    let done = async {
        let mut tx = begin_for(state, caller).await?;
        if let Some(change) = apply(&mut tx, now).await? {
            publish(&mut tx, &caller.org_id, account, contact, change, now).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = done {
        return failure(e);
    }
    let mut reader =
        match contact_scope(state, caller, Permission::ViewInbox, account, contact).await {
            Ok(r) => r,
            Err(answer) => return answer,
        };
    match contact_json(&mut reader, &caller.org_id, account, contact, now).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => failure(e),
    }
}

async fn add_tag(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact, tag)): Path<(String, String, String)>,
) -> Response {
    let tag = match crm::valid_tag(&tag) {
        Ok(t) => t,
        Err(why) => return invalid(&why),
    };
    let (a, c) = (account.clone(), contact.clone());
    change_contact(&state, &caller, &account, &contact, move |tx, now| {
        Box::pin(async move {
            let added = crm::add_tag(tx, &a, &c, &tag, now).await?;
            Ok(added.then(|| json!({ "tag_added": tag })))
        })
    })
    .await
}

async fn remove_tag(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact, tag)): Path<(String, String, String)>,
) -> Response {
    let tag = tag.trim().to_owned();
    let (a, c) = (account.clone(), contact.clone());
    change_contact(&state, &caller, &account, &contact, move |tx, _now| {
        Box::pin(async move {
            let removed = crm::remove_tag(tx, &a, &c, &tag).await?;
            Ok(removed.then(|| json!({ "tag_removed": tag })))
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
struct SetValue {
    value: Option<Value>,
}

async fn set_value(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact, key)): Path<(String, String, String)>,
    body: Option<Json<SetValue>>,
) -> Response {
    let Some(Json(SetValue { value: Some(value) })) = body else {
        return invalid("send {\"value\": ...} (JSON) with the field's value; DELETE clears it");
    };
    // the definition is the caller's organization's (another's fields do not exist here)
    let def = {
        let mut reader =
            match scope(&state, &caller, Permission::EditContacts, Some(&account)).await {
                Ok(r) => r,
                Err(answer) => return answer,
            };
        match crm::field(&mut reader, &caller.org_id, &key).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "no custom field `{key}`; define it first (PUT /api/crm/fields/{key})"
                    ),
                )
            }
            Err(e) => return failure(e),
        }
    };
    let canonical = match def.field_type.canonical(&value) {
        Ok(v) => v,
        Err(why) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": format!("field `{key}` is of type {}: {why}; nothing was changed", def.field_type.as_str()),
                    "field": key,
                    "type": def.field_type,
                })),
            )
                .into_response()
        }
    };
    let (a, c, org) = (account.clone(), contact.clone(), caller.org_id.clone());
    let ty = def.field_type;
    change_contact(&state, &caller, &account, &contact, move |tx, now| {
        Box::pin(async move {
            crm::check_field(tx, &org, &key, ty).await?;
            crm::set_value(tx, &a, &c, &key, &canonical, now).await?;
            Ok(Some(
                json!({ "field_set": key, "value": ty.to_json(&canonical) }),
            ))
        })
    })
    .await
}

async fn clear_value(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact, key)): Path<(String, String, String)>,
) -> Response {
    let (a, c) = (account.clone(), contact.clone());
    change_contact(&state, &caller, &account, &contact, move |tx, _now| {
        Box::pin(async move {
            let cleared = crm::clear_value(tx, &a, &c, &key).await?;
            Ok(cleared.then(|| json!({ "field_cleared": key })))
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
struct MoveTo {
    stage: Option<String>,
}

async fn move_stage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((account, contact)): Path<(String, String)>,
    body: Option<Json<MoveTo>>,
) -> Response {
    let Some(Json(MoveTo { stage: to })) = body else {
        return invalid("send {\"stage\": \"<stage id>\"}, or {\"stage\": null} to take the contact out of the pipeline");
    };
    if let Some(to) = &to {
        let mut reader =
            match scope(&state, &caller, Permission::EditContacts, Some(&account)).await {
                Ok(r) => r,
                Err(answer) => return answer,
            };
        match crm::stages(&mut reader, &caller.org_id).await {
            Ok(stages) if stages.iter().any(|s| s.id == *to) => {}
            Ok(stages) => {
                let known: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
                return invalid(&format!(
                    "no pipeline stage `{to}`; the stages are {known:?} (PUT /api/crm/stages defines them)"
                ));
            }
            Err(e) => return failure(e),
        }
    }
    let (user, via) = match &caller.credential {
        Credential::Session(_) => (caller.user_id.clone(), "session"),
        Credential::ApiKey(_) => (None, "api_key"),
        _ => (None, "operator"),
    };
    let (a, c, org) = (account.clone(), contact.clone(), caller.org_id.clone());
    change_contact(&state, &caller, &account, &contact, move |tx, now| {
        Box::pin(async move {
            if let Some(to) = &to {
                crm::check_stage(tx, &org, to).await?;
            }
            let by = crm::Mover {
                user: user.as_deref(),
                via,
            };
            let from = crm::move_stage(tx, &a, &c, to.as_deref(), &by, now).await?;
            Ok((from != to).then(|| json!({ "stage_from": from, "stage_to": to })))
        })
    })
    .await
}

async fn list_fields(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match crm::fields(&mut reader, &caller.org_id).await {
        Ok(fields) => Json(json!({ "fields": fields })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct FieldBody {
    label: Option<String>,
    #[serde(rename = "type")]
    field_type: String,
}

async fn put_field(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key): Path<String>,
    body: Option<Json<FieldBody>>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageContactSchema) {
        return denied;
    }
    if !crm::is_slug(&key) {
        return invalid("a field key has 1 to 64 characters of a-z, 0-9, _ and -");
    }
    let Some(Json(body)) = body else {
        return invalid("send {\"type\": \"text|number|date|bool\", \"label\": \"...\"}");
    };
    let Some(ty) = crm::FieldType::parse(&body.field_type) else {
        return invalid(&format!(
            "unknown field type `{}`; use text, number, date or bool",
            body.field_type
        ));
    };
    let label = body.label.unwrap_or_else(|| key.clone());
    if label.trim().is_empty() || label.chars().count() > 200 {
        return invalid("a field label has 1 to 200 characters");
    }
    let done = async {
        let mut tx = begin_for(&state, &caller).await?;
        let def = crm::put_field(
            &mut tx,
            &caller.org_id,
            &key,
            label.trim(),
            ty,
            db::now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, crate::service::error::Error>(def)
    }
    .await;
    match done {
        Ok(def) => Json(def).into_response(),
        Err(e) => failure(e),
    }
}

async fn delete_field(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(key): Path<String>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageContactSchema) {
        return denied;
    }
    let done = async {
        let mut tx = begin_for(&state, &caller).await?;
        let existed = crm::delete_field(&mut tx, &caller.org_id, &key).await?;
        tx.commit().await?;
        Ok::<_, crate::service::error::Error>(existed)
    }
    .await;
    match done {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such field"),
        Err(e) => failure(e),
    }
}

async fn list_stages(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let mut reader = match scope(&state, &caller, Permission::ViewInbox, None).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    match crm::stages(&mut reader, &caller.org_id).await {
        Ok(stages) => Json(json!({ "stages": stages })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct StageDef {
    id: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StagesBody {
    stages: Vec<StageDef>,
}

async fn put_stages(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Option<Json<StagesBody>>,
) -> Response {
    if let Err(denied) = caller.require(Permission::ManageContactSchema) {
        return denied;
    }
    let Some(Json(body)) = body else {
        return invalid(
            "send {\"stages\": [{\"id\": \"lead\", \"name\": \"Lead\"}, ...]} in pipeline order",
        );
    };
    if body.stages.len() > 50 {
        return invalid("a pipeline has at most 50 stages");
    }
    let mut new: Vec<(String, String)> = Vec::new();
    for s in body.stages {
        if !crm::is_slug(&s.id) {
            return invalid(&format!(
                "stage id `{}`: use 1 to 64 characters of a-z, 0-9, _ and -",
                s.id
            ));
        }
        if new.iter().any(|(id, _)| *id == s.id) {
            return invalid(&format!("stage `{}` is listed twice", s.id));
        }
        let name = s.name.unwrap_or_else(|| s.id.clone());
        if name.trim().is_empty() || name.chars().count() > 200 {
            return invalid("a stage name has 1 to 200 characters");
        }
        new.push((s.id, name.trim().to_owned()));
    }
    let done = async {
        let mut tx = begin_for(&state, &caller).await?;
        let stages = crm::put_stages(&mut tx, &caller.org_id, &new, db::now_ms()).await?;
        tx.commit().await?;
        Ok::<_, crate::service::error::Error>(stages)
    }
    .await;
    match done {
        Ok(stages) => Json(json!({ "stages": stages })).into_response(),
        Err(e) => failure(e),
    }
}
