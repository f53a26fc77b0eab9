//! The connect flow: `/connect/instagram` redirects to the OAuth authorize page; the callback
//! exchanges the code, gets a long-lived token, seals it in the vault, subscribes the account to
//! webhooks and syncs its media.
//!
//! The account joins the organization of whoever started the flow: a caller with a session or
//! an API key (it needs `ManageConnections`) connects it to their organization, carried in the
//! OAuth `state`; a start without credentials (the single-tenant setup, `igdm demo`) or with an
//! operator key connects it to the bootstrap organization.
//!
//! The permissions asked and the webhook fields subscribed follow what the organization's
//! automations need when it chose `automations` data access (P5, see
//! [`data_access`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use instagram_graph::oauth::{OAuthClient, OAuthConfig};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{self, Permission};
use super::AppState;
use crate::service::db::{self, accounts, teams};
use crate::service::error::{ErrorKind, Result};
use crate::service::pipeline::{data_access, Shared};

/// How long an OAuth state is valid, in milliseconds.
const STATE_TTL_MS: i64 = 15 * 60 * 1000;

/// Pending OAuth `state` values: when they were issued and for which organization.
#[derive(Debug, Default)]
pub struct States(Mutex<HashMap<String, (i64, String)>>);

impl States {
    fn issue(&self, secret: &str, org: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let now = db::now_ms();
        let mut h = Sha256::new();
        h.update(secret.as_bytes());
        h.update(now.to_le_bytes());
        h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(format!("{:?}", std::time::Instant::now()).as_bytes());
        let state = hex::encode(&h.finalize()[..16]);
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, (at, _)| now - *at < STATE_TTL_MS);
            map.insert(state.clone(), (now, org.to_string()));
        }
        state
    }

    /// The organization the state was issued for, if it is known and fresh (once).
    fn take(&self, state: &str) -> Option<String> {
        let now = db::now_ms();
        match self.0.lock() {
            Ok(mut map) => map
                .remove(state)
                .filter(|(at, _)| now - at < STATE_TTL_MS)
                .map(|(_, org)| org),
            Err(_) => None,
        }
    }
}

fn oauth(shared: &Shared, redirect: &str) -> OAuthClient {
    let config = &shared.config;
    OAuthClient::new(OAuthConfig::new(
        config.app_id.clone(),
        config.app_secret.clone(),
        redirect.to_string(),
    ))
    .base_urls(
        config.oauth_api_base_url.trim_end_matches('/'),
        config
            .oauth_graph_base_url
            .clone()
            .unwrap_or_else(|| config.graph_base_url.clone())
            .trim_end_matches('/'),
    )
}

fn redirect_uri(state: &AppState) -> String {
    let base = state.public_url().trim_end_matches('/').to_string();
    format!("{base}/connect/instagram/callback")
}

/// `GET /connect/instagram`: redirect to the authorize page.
pub async fn start(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // P17: a start by a caller is a management request, logged like the others
    const ROUTE: &str = "/connect/instagram";
    let caller = match auth::resolve(&state, &headers).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    let org = match &caller {
        Some(caller) => {
            if let Err(mut denied) = caller.require(Permission::ManageConnections) {
                super::access_log::mark(&mut denied, caller.clone(), Some(ROUTE.into()));
                return denied;
            }
            caller.org_id.clone()
        }
        None => teams::BOOTSTRAP_ORG.to_string(),
    };
    let shared = &state.shared;
    let oauth_state = state.oauth_states.issue(&shared.config.app_secret, &org);
    let config = OAuthConfig::new(
        shared.config.app_id.clone(),
        shared.config.app_secret.clone(),
        redirect_uri(&state),
    );
    // P5: only the permissions the organization's automations need
    let needs = match data_access::needs_of_org(&shared.db, &org).await {
        Ok(n) => n,
        Err(e) => return auth::failure(e),
    };
    let url = config.authorize_url(&needs.scopes(), &oauth_state);
    // Point the authorize page at the configured OAuth base (the simulator in tests).
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let location = format!("{}?{query}", shared.config.oauth_authorize_url);
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    if let Some(caller) = caller {
        super::access_log::mark(&mut response, caller, Some(ROUTE.into()));
    }
    response
}

/// The callback's query.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /connect/instagram/callback`.
pub async fn callback(State(state): State<Arc<AppState>>, Query(q): Query<Callback>) -> Response {
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or(error);
        return (
            StatusCode::BAD_REQUEST,
            format!("the connection was not authorized: {why}"),
        )
            .into_response();
    }
    let Some(org) = q.state.as_deref().and_then(|s| state.oauth_states.take(s)) else {
        return (
            StatusCode::BAD_REQUEST,
            "unknown or expired state; start again at /connect/instagram",
        )
            .into_response();
    };
    let Some(code) = q.code else {
        return (StatusCode::BAD_REQUEST, "the redirect carried no code").into_response();
    };
    match connect(&state, &code, &org).await {
        Ok(account) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "connected": account })),
        )
            .into_response(),
        Err(e) if e.kind() == ErrorKind::Conflict => {
            (StatusCode::CONFLICT, e.message().to_string()).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "connecting an account failed");
            (StatusCode::BAD_GATEWAY, format!("connecting failed: {e}")).into_response()
        }
    }
}

async fn connect(state: &AppState, code: &str, org: &str) -> Result<String> {
    let shared = &state.shared;
    let oauth = oauth(shared, &redirect_uri(state));
    let short = oauth
        .exchange_code(instagram_graph::oauth::clean_code(code))
        .await?
        .into_inner();
    let long = oauth
        .exchange_long_lived(&short.access_token)
        .await?
        .into_inner();
    let token = long.access_token.expose_secret().to_string();
    let expires_at = long
        .expires_in
        .and_then(|s| i64::try_from(s).ok())
        .map(|s| db::now_ms() + s * 1000);
    let client = shared
        .graph
        .with_token(token.as_str(), instagram_graph::Flavor::InstagramLogin);
    let me = client.me(&["user_id", "username"]).await?.into_inner();
    let id = me
        .user_id
        .as_ref()
        .map(|u| u.as_str().to_string())
        .or_else(|| short.user_id.clone())
        .or_else(|| me.id.clone())
        .ok_or_else(|| {
            crate::service::error::Error::new(
                crate::service::error::ErrorKind::Graph,
                "the Graph API did not say which account the token belongs to",
            )
        })?;
    let username = me.username.clone();
    connect_with_token_in(shared, org, &id, username.as_deref(), &token, expires_at).await?;
    Ok(id)
}

/// Stores an account's token (sealed) in the bootstrap organization, subscribes it to webhooks
/// and syncs its media. Used by embedders that already hold a token and by the CLI.
pub async fn connect_with_token(
    shared: &Shared,
    id: &str,
    username: Option<&str>,
    token: &str,
    expires_at: Option<i64>,
) -> Result<()> {
    connect_with_token_in(
        shared,
        teams::BOOTSTRAP_ORG,
        id,
        username,
        token,
        expires_at,
    )
    .await
}

/// Stores an account's token (sealed) in organization `org`, subscribes it to webhooks and
/// syncs its media, like the end of the OAuth flow. An account connected to another
/// organization is refused ([`ErrorKind::Conflict`]).
pub async fn connect_with_token_in(
    shared: &Shared,
    org: &str,
    id: &str,
    username: Option<&str>,
    token: &str,
    expires_at: Option<i64>,
) -> Result<()> {
    let sealed = shared.vault.seal(id, token)?;
    accounts::upsert_in(
        &shared.db,
        org,
        id,
        username,
        &sealed,
        expires_at,
        db::now_ms(),
    )
    .await?;
    shared.forget_client(id);
    let client = shared.client_for(id).await?;
    // P5: only the fields the organization's automations need
    let needs = data_access::needs_of_org(&shared.db, org).await?;
    shared.data_access.refresh(&shared.db).await?;
    if let Err(e) = client.subscribe_webhooks(&needs.webhook_fields()).await {
        tracing::warn!(account = id, error = %e, "subscribing to webhooks failed");
    }
    if let Err(e) = sync_media(shared, id, &client).await {
        tracing::warn!(account = id, error = %e, "media sync failed");
    }
    // The app-scoped id Meta's deauthorize and data-deletion callbacks will name.
    let app_user_id = match client.me(&["user_id"]).await {
        Ok(me) => me.into_inner().id,
        Err(e) => {
            tracing::warn!(account = id, error = %e, "reading the app-scoped id failed");
            None
        }
    };
    db::privacy::connected(&shared.db, id, app_user_id.as_deref()).await?;
    Ok(())
}

async fn sync_media(shared: &Shared, id: &str, client: &instagram_graph::Client) -> Result<()> {
    let page = client.media_list("me").limit(50).send().await?.into_inner();
    let page = &page;
    let now = db::now_ms();
    let mut tx = shared.db.begin().await?;
    for media in &page.data {
        sqlx::query(
            "INSERT INTO media (account, id, kind, caption, permalink, synced_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account, id) DO UPDATE SET kind = excluded.kind, caption = excluded.caption, \
             permalink = excluded.permalink, synced_at = excluded.synced_at",
        )
        .bind(id)
        .bind(media.id.as_str())
        .bind(media.media_product_type.as_ref().map(|k| format!("{k:?}")))
        .bind(media.caption.as_deref())
        .bind(media.permalink.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
