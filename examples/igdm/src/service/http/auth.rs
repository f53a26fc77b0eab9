//! Who is calling, and what they may do: sign-up, login, sessions, and the permission matrix.
//!
//! Every management request is made by a [`Caller`]: a member with a login session (the
//! `igdm_session` cookie, `Secure; HttpOnly; SameSite=Lax`, or the same value as
//! `Authorization: Bearer`), an organization's API key (`Authorization: Bearer igdm_k_...`), or
//! an operator key from the configuration (`api_keys`), which acts as the Owner of the
//! bootstrap organization ([`BOOTSTRAP_ORG`](crate::service::db::teams::BOOTSTRAP_ORG)).
//! Every query is scoped by the caller's organization; another organization's ids answer 404.
//!
//! ## Permission matrix
//!
//! One function decides every check: [`allows`].
//!
//! | Permission                                  | Owner | Admin | Agent |
//! |---------------------------------------------|:-----:|:-----:|:-----:|
//! | `ViewInbox`: accounts, media, contacts, conversations, deliveries, analytics, automations (read) | yes | yes | yes |
//! | `Reply`: answer conversations                | yes   | yes   | yes   |
//! | `ViewMembers`: list members                  | yes   | yes   | yes   |
//! | `ManageConnections`: connect/disconnect accounts | yes | yes | no  |
//! | `ManageAutomations`: save/delete automations | yes   | yes   | no    |
//! | `ManageWebhooks`: webhook subscriptions (list, create, change, delete, new secret), redeliveries | yes | yes | no |
//! | `ManageApiKeys`: create/list/revoke API keys | yes   | yes   | no    |
//! | `ManageMembers`: invite, change roles, remove (not Owners) | yes | yes | no |
//! | `ManagePrivacy`: deletions, exports, retention, audit register, legal requests | yes | yes | no |
//! | `ManageOwners`: make, demote, invite or remove Owners; Owner API keys | yes | no | no |
//! | `ManageSettings`: organization settings (billing-like) | yes | no | no |
//! | `DeleteOrganization`: delete the organization and everything in it | yes | no | no |
//! | `ViewAccessLog`: read the management API's access log (P17) | yes | no | no |
//! | `EditContacts`: tag contacts, set their field values, move them between pipeline stages, refresh their profiles | yes | yes | yes |
//! | `ManageContactSchema`: define the organization's custom fields and pipeline stages | yes | yes | no |
//!
//! Reading consent (opt-in) records needs `ViewInbox`; any logged-in member may export their
//! own data (profile, memberships, sessions) and delete their own account (unless they are the
//! last Owner of an organization) without a permission.
//!
//! Member rules on top: the last Owner can neither leave, be removed nor be demoted; any member
//! may leave (remove themselves) unless they are the last Owner.
//!
//! ## Endpoints
//!
//! - `POST /api/signup` `{email, password, organization}`: creates the organization and its
//!   Owner, logs in (201, session cookie).
//! - `POST /api/login` `{email, password, organization?}`: sets the session cookie.
//! - `POST /api/logout`: ends the session and clears the cookie.
//! - `GET /api/me`: the caller (organization, user, role, permissions).
//! - `POST /api/invitations/accept` `{token, password}`: joins the inviting organization
//!   (creating the user, or checking the password of an existing one) and logs in.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::service::db::{self, teams};
use crate::service::error::{Error, ErrorKind};

pub use crate::service::db::teams::Role;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "igdm_session";

/// Something a caller may be allowed to do. See the matrix in the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// Read accounts, media, contacts, conversations, deliveries, analytics and automations.
    ViewInbox,
    /// Answer conversations.
    Reply,
    /// List the organization's members.
    ViewMembers,
    /// Connect and disconnect Instagram accounts.
    ManageConnections,
    /// Save and delete automations.
    ManageAutomations,
    /// List, create, change and delete webhook subscriptions, give them new secrets, and
    /// redeliver outbound deliveries. Reading the delivery log needs only `ViewInbox`; the
    /// subscriptions themselves need this, since receiver URLs often carry credentials.
    ManageWebhooks,
    /// Create, list and revoke API keys.
    ManageApiKeys,
    /// Invite members, change their roles and remove them (except Owners).
    ManageMembers,
    /// Privacy operations: delete contacts and connections, make exports of accounts,
    /// contacts and the organization, set retention, read the audit register and deletion
    /// receipts, record legal requests.
    ManagePrivacy,
    /// Make, demote, invite and remove Owners; create Owner API keys.
    ManageOwners,
    /// Change the organization's settings (billing-like).
    ManageSettings,
    /// Delete the organization and everything in it.
    DeleteOrganization,
    /// Read the organization's access log of the management API (who called what, when).
    ViewAccessLog,
    /// Work on contacts in the CRM: add and remove tags, set and clear custom field values,
    /// move contacts between pipeline stages, refresh their profiles. Reading contacts needs
    /// only `ViewInbox`.
    EditContacts,
    /// Define, change and delete the organization's custom fields and pipeline stages (what
    /// every contact's data is validated against).
    ManageContactSchema,
}

impl Permission {
    /// Every permission, in the matrix's order.
    pub const ALL: [Permission; 15] = [
        Permission::ViewInbox,
        Permission::Reply,
        Permission::ViewMembers,
        Permission::ManageConnections,
        Permission::ManageAutomations,
        Permission::ManageWebhooks,
        Permission::ManageApiKeys,
        Permission::ManageMembers,
        Permission::ManagePrivacy,
        Permission::ManageOwners,
        Permission::ManageSettings,
        Permission::DeleteOrganization,
        Permission::ViewAccessLog,
        Permission::EditContacts,
        Permission::ManageContactSchema,
    ];

    /// A snake_case name, for answers.
    pub fn name(self) -> &'static str {
        match self {
            Permission::ViewInbox => "view_inbox",
            Permission::Reply => "reply",
            Permission::ViewMembers => "view_members",
            Permission::ManageConnections => "manage_connections",
            Permission::ManageAutomations => "manage_automations",
            Permission::ManageWebhooks => "manage_webhooks",
            Permission::ManageApiKeys => "manage_api_keys",
            Permission::ManageMembers => "manage_members",
            Permission::ManagePrivacy => "manage_privacy",
            Permission::ManageOwners => "manage_owners",
            Permission::ManageSettings => "manage_settings",
            Permission::DeleteOrganization => "delete_organization",
            Permission::ViewAccessLog => "view_access_log",
            Permission::EditContacts => "edit_contacts",
            Permission::ManageContactSchema => "manage_contact_schema",
        }
    }
}

/// The permission matrix: whether `role` may do `permission`. Every handler asks this.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Owner => true,
        Role::Admin => matches!(
            permission,
            ViewInbox
                | Reply
                | ViewMembers
                | ManageConnections
                | ManageAutomations
                | ManageWebhooks
                | ManageApiKeys
                | ManageMembers
                | ManagePrivacy
                | EditContacts
                | ManageContactSchema
        ),
        Role::Agent => matches!(permission, ViewInbox | Reply | ViewMembers | EditContacts),
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A login session (its token, to end it on logout).
    Session(String),
    /// An organization's API key (its id).
    ApiKey(String),
    /// An operator key from the configuration.
    Operator,
}

/// The authenticated caller of a management request, put in the request's extensions by
/// [`authenticate`]; handlers take it as an extractor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Caller {
    /// The organization every query is scoped by.
    pub org_id: String,
    /// The member, when the caller logged in.
    pub user_id: Option<String>,
    /// The role the caller acts with.
    pub role: Role,
    /// How the caller authenticated.
    pub credential: Credential,
}

impl Caller {
    /// `Ok` when the caller's role allows `permission`, else the 403 answer.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, permission: Permission) -> Result<(), Response> {
        if allows(self.role, permission) {
            Ok(())
        } else {
            Err(problem(
                StatusCode::FORBIDDEN,
                &format!(
                    "your role ({}) does not allow {}; ask an Owner or Admin",
                    self.role.as_str(),
                    permission.name()
                ),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            problem(
                StatusCode::UNAUTHORIZED,
                "log in or send Authorization: Bearer <API key>",
            )
        })
    }
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The answer for a storage failure (the message never carries secrets).
pub(crate) fn failure(e: Error) -> Response {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Automation | ErrorKind::Config => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(error = %e, "management API request failed");
    problem(status, e.message())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session token or key a request carries: the bearer token, else the session cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Resolves the caller of a request: `Ok(None)` when it carries no credentials, `Err` with the
/// 401/500 answer when they are wrong or cannot be checked.
#[allow(clippy::result_large_err)]
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, Response> {
    let Some(given) = presented(headers) else {
        return Ok(None);
    };
    let unknown = || {
        problem(
            StatusCode::UNAUTHORIZED,
            "unknown, expired or revoked credentials; log in again or send a valid API key",
        )
    };
    if given.is_empty() {
        return Err(unknown());
    }
    if state
        .shared
        .config
        .api_keys
        .iter()
        .any(|k| constant_time_eq(k.as_bytes(), given.as_bytes()))
    {
        return Ok(Some(Caller {
            org_id: teams::BOOTSTRAP_ORG.to_string(),
            user_id: None,
            role: Role::Owner,
            credential: Credential::Operator,
        }));
    }
    let db = &state.shared.db;
    let now = db::now_ms();
    if given.starts_with("igdm_k_") {
        return match teams::api_key(db, &given, now).await {
            Ok(Some((id, org_id, role))) => Ok(Some(Caller {
                org_id,
                user_id: None,
                role,
                credential: Credential::ApiKey(id),
            })),
            Ok(None) => Err(unknown()),
            Err(e) => Err(failure(e)),
        };
    }
    match teams::session(db, &given, now).await {
        Ok(Some((user_id, org_id, role))) => Ok(Some(Caller {
            org_id,
            user_id: Some(user_id),
            role,
            credential: Credential::Session(given),
        })),
        Ok(None) => Err(unknown()),
        Err(e) => Err(failure(e)),
    }
}

/// The middleware of every management route: resolves the [`Caller`] (401 without one) and
/// puts it in the request's extensions.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    match resolve(&state, request.headers()).await {
        Ok(Some(caller)) => {
            // P17: the access-log layer logs the request with its caller and route pattern
            let route = request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|m| m.as_str().to_owned());
            request.extensions_mut().insert(caller.clone());
            let mut response = next.run(request).await;
            super::access_log::mark(&mut response, caller, route);
            response
        }
        Ok(None) => problem(
            StatusCode::UNAUTHORIZED,
            "missing credentials; log in (POST /api/login) or send Authorization: Bearer <API key>",
        ),
        Err(answer) => answer,
    }
}

/// The public routes (no caller needed): sign-up, login, accepting an invitation.
pub fn public_router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/signup", post(signup))
        .route("/api/login", post(login))
        .route("/api/invitations/accept", post(accept_invitation))
}

/// The authenticated routes of this module: logout and me.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

fn session_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; Secure; HttpOnly; SameSite=Lax"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Starts a session and answers `body` with its cookie.
async fn logged_in(
    state: &AppState,
    user: &str,
    org: &str,
    status: StatusCode,
    body: serde_json::Value,
) -> Response {
    let hours = state.shared.config.session_hours.max(1);
    match teams::create_session(&state.shared.db, user, org, db::now_ms(), hours * 3_600_000).await
    {
        Ok(token) => (
            status,
            [(header::SET_COOKIE, session_cookie(&token, hours * 3600))],
            Json(body),
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

/// Checks an e-mail address; the normalized address or the 400 answer.
#[allow(clippy::result_large_err)]
pub(crate) fn valid_email(email: &str) -> Result<String, Response> {
    let email = teams::normalize_email(email);
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
        && !email.contains(char::is_whitespace);
    if !valid {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "give a valid e-mail address (name@example.com)",
        ));
    }
    Ok(email)
}

/// Checks an e-mail address and a password; the normalized address or the 400 answer.
#[allow(clippy::result_large_err)]
fn check_credentials(email: &str, password: &str) -> Result<String, Response> {
    let email = valid_email(email)?;
    if password.chars().count() < 10 || password.len() > 1024 {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "the password must have 10 to 1024 characters",
        ));
    }
    Ok(email)
}

async fn hash(state: &AppState, password: &str) -> Result<String, Error> {
    let memory = state.shared.config.password_memory_kib;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || teams::hash_password(&password, memory))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("password hashing stopped: {e}")))?
}

async fn verify(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_string(), stored.to_string());
    tokio::task::spawn_blocking(move || teams::verify_password(&password, &stored))
        .await
        .unwrap_or(false)
}

#[derive(Debug, Deserialize)]
struct SignUp {
    email: String,
    password: String,
    organization: String,
}

async fn signup(State(state): State<Arc<AppState>>, Json(body): Json<SignUp>) -> Response {
    let email = match check_credentials(&body.email, &body.password) {
        Ok(e) => e,
        Err(answer) => return answer,
    };
    let name = body.organization.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return problem(
            StatusCode::BAD_REQUEST,
            "give the organization's name (1 to 200 characters)",
        );
    }
    let password_hash = match hash(&state, &body.password).await {
        Ok(h) => h,
        Err(e) => return failure(e),
    };
    let now = db::now_ms();
    let created = async {
        let mut tx = state.shared.db.begin().await?;
        let Some(user) = teams::create_user(&mut tx, &email, &password_hash, now).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let org = teams::create_org(&mut tx, name, now).await?;
        teams::put_member(&mut tx, &org.id, &user.id, Role::Owner, now).await?;
        tx.commit().await?;
        Ok::<_, Error>(Some((org, user)))
    }
    .await;
    match created {
        Ok(Some((org, user))) => {
            let body = json!({ "organization": org, "user": user, "role": Role::Owner });
            logged_in(&state, &user.id, &org.id, StatusCode::CREATED, body).await
        }
        Ok(None) => problem(
            StatusCode::CONFLICT,
            "a user with this e-mail address exists; log in, or ask for an invitation to join another organization",
        ),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct Login {
    email: String,
    password: String,
    organization: Option<String>,
}

/// A hash of a random password, verified when the e-mail address is unknown so that unknown
/// addresses take as long as wrong passwords.
async fn decoy_hash(state: &AppState) -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(h) = DECOY.get() {
        return h.clone();
    }
    let random = teams::new_secret("").unwrap_or_default();
    let made = hash(state, &random).await.unwrap_or_default();
    DECOY.get_or_init(|| made).clone()
}

async fn login(State(state): State<Arc<AppState>>, Json(body): Json<Login>) -> Response {
    let db = &state.shared.db;
    let email = teams::normalize_email(&body.email);
    let found = match teams::user_by_email(db, &email).await {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    let stored = match &found {
        Some((_, h)) => h.clone(),
        None => decoy_hash(&state).await,
    };
    let matches = verify(&body.password, &stored).await && found.is_some();
    let Some((user, _)) = found.filter(|_| matches) else {
        return problem(StatusCode::UNAUTHORIZED, "wrong e-mail address or password");
    };
    let membership = match &body.organization {
        Some(org) => teams::member_role(db, org, &user.id)
            .await
            .map(|r| r.map(|role| (org.clone(), role))),
        None => teams::first_membership(db, &user.id).await,
    };
    let (org, role) = match membership {
        Ok(Some(m)) => m,
        Ok(None) => {
            return problem(
                StatusCode::FORBIDDEN,
                "you are not a member of that organization; ask its Owner for an invitation",
            )
        }
        Err(e) => return failure(e),
    };
    let body = json!({ "organization": { "id": org }, "user": user, "role": role });
    logged_in(&state, &user.id, &org, StatusCode::OK, body).await
}

async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    if let Credential::Session(token) = &caller.credential {
        if let Err(e) = teams::delete_session(&state.shared.db, token).await {
            return failure(e);
        }
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session_cookie("", 0))],
    )
        .into_response()
}

async fn me(State(state): State<Arc<AppState>>, caller: Caller) -> Response {
    let org = match teams::org(&state.shared.db, &caller.org_id).await {
        Ok(Some(org)) => org,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "the organization no longer exists"),
        Err(e) => return failure(e),
    };
    let permissions: Vec<&str> = Permission::ALL
        .iter()
        .filter(|p| allows(caller.role, **p))
        .map(|p| p.name())
        .collect();
    let via = match &caller.credential {
        Credential::Session(_) => json!({ "kind": "session" }),
        Credential::ApiKey(id) => json!({ "kind": "api_key", "id": id }),
        Credential::Operator => json!({ "kind": "operator" }),
    };
    Json(json!({
        "organization": org,
        "user_id": caller.user_id,
        "role": caller.role,
        "permissions": permissions,
        "credential": via,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct Accept {
    token: String,
    password: String,
}

async fn accept_invitation(
    State(state): State<Arc<AppState>>,
    Json(body): Json<Accept>,
) -> Response {
    let db = &state.shared.db;
    let now = db::now_ms();
    let invitation = match teams::invitation_by_token(db, &body.token, now).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "unknown, used or expired invitation; ask for a new one",
            )
        }
        Err(e) => return failure(e),
    };
    let existing = match teams::user_by_email(db, &invitation.email).await {
        Ok(u) => u,
        Err(e) => return failure(e),
    };
    let new_hash = match &existing {
        Some((_, stored)) => {
            if !verify(&body.password, stored).await {
                return problem(
                    StatusCode::UNAUTHORIZED,
                    "a user with this e-mail address exists; give its password to join",
                );
            }
            None
        }
        None => {
            if let Err(answer) = check_credentials(&invitation.email, &body.password) {
                return answer;
            }
            match hash(&state, &body.password).await {
                Ok(h) => Some(h),
                Err(e) => return failure(e),
            }
        }
    };
    let joined = async {
        let mut tx = db.begin().await?;
        if !teams::accept_invitation(&mut tx, &invitation.id, now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let user = match (&existing, &new_hash) {
            (Some((user, _)), _) => Some(user.clone()),
            (None, Some(h)) => teams::create_user(&mut tx, &invitation.email, h, now).await?,
            (None, None) => None,
        };
        let Some(user) = user else {
            tx.rollback().await?;
            return Ok(None);
        };
        let current = sqlx::query_scalar::<_, String>(
            "SELECT role FROM members WHERE org_id = $1 AND user_id = $2",
        )
        .bind(&invitation.org_id)
        .bind(&user.id)
        .fetch_optional(&mut *tx)
        .await?;
        // joining never lowers a role the member already has
        let role = match current.as_deref().and_then(Role::parse) {
            Some(r) if r > invitation.role => r,
            _ => invitation.role,
        };
        teams::put_member(&mut tx, &invitation.org_id, &user.id, role, now).await?;
        tx.commit().await?;
        Ok::<_, Error>(Some((user, role)))
    }
    .await;
    match joined {
        Ok(Some((user, role))) => {
            let body =
                json!({ "organization": { "id": invitation.org_id }, "user": user, "role": role });
            logged_in(&state, &user.id, &invitation.org_id, StatusCode::OK, body).await
        }
        Ok(None) => problem(
            StatusCode::CONFLICT,
            "the invitation was used meanwhile; ask for a new one",
        ),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_gives_owners_everything_and_agents_only_the_inbox() {
        for p in Permission::ALL {
            assert!(allows(Role::Owner, p), "{p:?}");
        }
        let admin: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| !allows(Role::Admin, *p))
            .collect();
        assert_eq!(
            admin,
            [
                Permission::ManageOwners,
                Permission::ManageSettings,
                Permission::DeleteOrganization,
                Permission::ViewAccessLog
            ]
        );
        let agent: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| allows(Role::Agent, *p))
            .collect();
        assert_eq!(
            agent,
            [
                Permission::ViewInbox,
                Permission::Reply,
                Permission::ViewMembers,
                Permission::EditContacts
            ]
        );
    }

    #[test]
    fn agents_work_on_contacts_and_only_owners_and_admins_define_fields_and_stages() {
        for role in [Role::Owner, Role::Admin, Role::Agent] {
            assert!(allows(role, Permission::EditContacts), "{role:?}");
        }
        assert!(allows(Role::Owner, Permission::ManageContactSchema));
        assert!(allows(Role::Admin, Permission::ManageContactSchema));
        assert!(!allows(Role::Agent, Permission::ManageContactSchema));
    }

    #[test]
    fn webhooks_are_managed_by_owners_and_admins_and_their_log_read_by_everyone() {
        assert!(allows(Role::Owner, Permission::ManageWebhooks));
        assert!(allows(Role::Admin, Permission::ManageWebhooks));
        assert!(!allows(Role::Agent, Permission::ManageWebhooks));
        // the delivery log is read with ViewInbox, which every role has
        for role in [Role::Owner, Role::Admin, Role::Agent] {
            assert!(allows(role, Permission::ViewInbox), "{role:?}");
        }
        assert_eq!(Permission::ManageWebhooks.name(), "manage_webhooks");
        let names: std::collections::BTreeSet<&str> =
            Permission::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(names.len(), Permission::ALL.len(), "names are unique");
    }

    #[test]
    fn privacy_is_managed_by_owners_and_admins_and_only_owners_delete_the_organization() {
        assert!(allows(Role::Owner, Permission::ManagePrivacy));
        assert!(allows(Role::Admin, Permission::ManagePrivacy));
        assert!(!allows(Role::Agent, Permission::ManagePrivacy));
        assert!(allows(Role::Owner, Permission::DeleteOrganization));
        assert!(!allows(Role::Admin, Permission::DeleteOrganization));
        assert!(!allows(Role::Agent, Permission::DeleteOrganization));
        assert_eq!(Permission::ManagePrivacy.name(), "manage_privacy");
    }

    #[test]
    fn the_matrix_is_monotonic_in_the_role() {
        for p in Permission::ALL {
            assert!(
                !allows(Role::Agent, p) || allows(Role::Admin, p),
                "{p:?}: an Admin may do what an Agent may"
            );
            assert!(!allows(Role::Admin, p) || allows(Role::Owner, p), "{p:?}");
        }
    }

    #[test]
    fn credentials_come_from_bearer_then_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; igdm_session=igdm_s_x"),
        );
        assert_eq!(presented(&h).as_deref(), Some("igdm_s_x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert_eq!(presented(&h).as_deref(), Some("k"));
        assert_eq!(presented(&HeaderMap::new()), None);
    }
}
