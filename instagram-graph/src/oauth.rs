//! Instagram Login OAuth: authorize URL, code exchange, long-lived exchange and refresh.
//!
//! ```
//! use instagram_graph::oauth::{OAuthClient, OAuthConfig, Scope};
//!
//! let config = OAuthConfig::new("990602627938098", "app-secret", "https://example.com/cb");
//! let url = config.authorize_url(&[Scope::BusinessBasic, Scope::BusinessManageMessages], "xyz");
//! assert!(url.starts_with("https://www.instagram.com/oauth/authorize?client_id=990602627938098"));
//! assert!(url.contains("scope=instagram_business_basic%2Cinstagram_business_manage_messages"));
//! # let _ = OAuthClient::new(config);
//! ```

use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::header::AUTHORIZATION;
use reqwest::Method;

use crate::client::{attach_body, execute, AppSecret, Body, Response};
use crate::error::Error;
use crate::model::oauth::{
    AccessToken, LongLivedToken, RefreshCheck, ShortLivedToken, TokenLifetime,
};

/// The authorize endpoint of Instagram Login.
pub const AUTHORIZE_URL: &str = "https://www.instagram.com/oauth/authorize";
/// The host of the code exchange.
pub const OAUTH_API_BASE: &str = "https://api.instagram.com";

/// An Instagram Login permission.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// `instagram_business_basic`: profile and media (required).
    BusinessBasic,
    /// `instagram_business_manage_messages`: messaging, conversations, profiles.
    BusinessManageMessages,
    /// `instagram_business_manage_comments`: comments and private replies.
    BusinessManageComments,
    /// `instagram_business_content_publish`: publishing.
    BusinessContentPublish,
    /// `instagram_business_manage_insights`: insights.
    BusinessManageInsights,
    /// Any other scope, as written.
    Other(String),
}

impl Scope {
    /// The wire name of the scope.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BusinessBasic => "instagram_business_basic",
            Self::BusinessManageMessages => "instagram_business_manage_messages",
            Self::BusinessManageComments => "instagram_business_manage_comments",
            Self::BusinessContentPublish => "instagram_business_content_publish",
            Self::BusinessManageInsights => "instagram_business_manage_insights",
            Self::Other(raw) => raw,
        }
    }
}

/// The app's OAuth settings. `Debug` redacts the secret.
#[derive(Clone)]
pub struct OAuthConfig {
    app_id: String,
    app_secret: AppSecret,
    redirect_uri: String,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &self.app_secret)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl OAuthConfig {
    /// The Instagram app id, its secret, and the redirect URI configured for the app (must match
    /// exactly).
    pub fn new(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: AppSecret::new(app_secret),
            redirect_uri: redirect_uri.into(),
        }
    }

    /// The URL to send the user to. `state` comes back on the redirect: check it.
    pub fn authorize_url(&self, scopes: &[Scope], state: &str) -> String {
        self.authorize_url_with(scopes, state, None, false)
    }

    /// Like [`Self::authorize_url`], with `enable_fb_login` and `force_authentication`.
    pub fn authorize_url_with(
        &self,
        scopes: &[Scope],
        state: &str,
        enable_fb_login: Option<bool>,
        force_authentication: bool,
    ) -> String {
        let scope = scopes
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.app_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &scope);
        if !state.is_empty() {
            query.append_pair("state", state);
        }
        if let Some(fb) = enable_fb_login {
            query.append_pair("enable_fb_login", if fb { "1" } else { "0" });
        }
        if force_authentication {
            query.append_pair("force_authentication", "1");
        }
        format!("{AUTHORIZE_URL}?{}", query.finish())
    }
}

/// Removes the `#_` Instagram appends to the code on the redirect (and surrounding spaces).
pub fn clean_code(code: &str) -> &str {
    let code = code.trim();
    let code = code.strip_suffix("#_").unwrap_or(code);
    code.strip_suffix('#').unwrap_or(code)
}

/// Calls the OAuth endpoints of Instagram Login.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    config: OAuthConfig,
    api_base: String,
    graph_base: String,
}

impl OAuthClient {
    /// A client on the real hosts (`api.instagram.com`, `graph.instagram.com`).
    pub fn new(config: OAuthConfig) -> Self {
        Self {
            http: reqwest::Client::new(),
            config,
            api_base: OAUTH_API_BASE.to_owned(),
            graph_base: crate::client::INSTAGRAM_GRAPH_BASE.to_owned(),
        }
    }

    /// Uses this `reqwest::Client`.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Overrides both hosts (for a local test server).
    pub fn base_urls(mut self, api_base: impl Into<String>, graph_base: impl Into<String>) -> Self {
        self.api_base = api_base.into().trim_end_matches('/').to_owned();
        self.graph_base = graph_base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Exchanges the code of the redirect for a short-lived token (1 hour). The `#_` suffix is
    /// removed first. The code is single-use and valid for 1 hour.
    pub async fn exchange_code(&self, code: &str) -> Result<Response<ShortLivedToken>, Error> {
        let code = clean_code(code);
        if code.is_empty() {
            return Err(Error::validation(
                "the authorization code is empty; pass the `code` query parameter of the redirect",
            ));
        }
        let url = format!("{}/oauth/access_token", self.api_base);
        let form = vec![
            ("client_id".to_owned(), self.config.app_id.clone()),
            (
                "client_secret".to_owned(),
                self.config.app_secret.expose_secret().to_owned(),
            ),
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("redirect_uri".to_owned(), self.config.redirect_uri.clone()),
            ("code".to_owned(), code.to_owned()),
        ];
        let request = attach_body(self.http.request(Method::POST, url), Body::Form(form))?;
        let span = tracing::debug_span!(
            "graph.oauth",
            step = "exchange_code",
            status = tracing::field::Empty
        );
        tracing::Instrument::instrument(execute_token(request, span.clone()), span).await
    }

    /// Exchanges a short-lived token for a long-lived one (about 60 days). The token travels in the
    /// `Authorization` header; the app secret in the query, as Meta requires for this GET.
    pub async fn exchange_long_lived(
        &self,
        short: &AccessToken,
    ) -> Result<Response<LongLivedToken>, Error> {
        let mut url = url::Url::parse(&format!("{}/access_token", self.graph_base))
            .map_err(|e| Error::validation(format!("bad graph base URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("grant_type", "ig_exchange_token")
            .append_pair("client_secret", self.config.app_secret.expose_secret());
        let request = self
            .http
            .request(Method::GET, url)
            .header(AUTHORIZATION, bearer(short)?);
        let span = tracing::debug_span!(
            "graph.oauth",
            step = "exchange_long_lived",
            status = tracing::field::Empty
        );
        tracing::Instrument::instrument(execute_token(request, span.clone()), span).await
    }

    /// Refreshes a long-lived token (60 more days). Meta accepts it once the token is 24 hours old
    /// and while it has not expired.
    pub async fn refresh(&self, token: &AccessToken) -> Result<Response<LongLivedToken>, Error> {
        let mut url = url::Url::parse(&format!("{}/refresh_access_token", self.graph_base))
            .map_err(|e| Error::validation(format!("bad graph base URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("grant_type", "ig_refresh_token");
        let request = self
            .http
            .request(Method::GET, url)
            .header(AUTHORIZATION, bearer(token)?);
        let span = tracing::debug_span!(
            "graph.oauth",
            step = "refresh",
            status = tracing::field::Empty
        );
        tracing::Instrument::instrument(execute_token(request, span.clone()), span).await
    }

    /// Refreshes only when `lifetime` allows it at `now`; otherwise returns a validation error
    /// saying when to try (too young) or that the user must log in again (expired), without
    /// calling Meta.
    pub async fn refresh_if_due(
        &self,
        token: &AccessToken,
        lifetime: &TokenLifetime,
        now: DateTime<Utc>,
    ) -> Result<Response<LongLivedToken>, Error> {
        match lifetime.refresh_check(now) {
            RefreshCheck::Ready => self.refresh(token).await,
            RefreshCheck::TooYoung { not_before } => Err(Error::validation(format!(
                "the token is younger than 24 hours; refresh it after {}",
                not_before.to_rfc3339()
            ))),
            RefreshCheck::Expired => Err(Error::validation(
                "the token has expired and cannot be refreshed; the user must log in again",
            )),
        }
    }
}

/// Like `execute`, but a body that fails to decode is kept with its tokens redacted.
async fn execute_token<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    span: tracing::Span,
) -> Result<Response<T>, Error> {
    execute(request, span)
        .await
        .map_err(|e| e.map_decode_body(redact_tokens))
}

/// Replaces the value of every `access_token` in a JSON body with `<redacted>`; a body that is
/// not JSON is replaced whole.
fn redact_tokens(body: &str) -> String {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if key == "access_token" {
                        *item = serde_json::Value::String("<redacted>".into());
                    } else {
                        walk(item);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) => {
            walk(&mut value);
            value.to_string()
        }
        Err(_) => "<redacted: the token response was not JSON>".to_owned(),
    }
}

fn bearer(token: &AccessToken) -> Result<reqwest::header::HeaderValue, Error> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| Error::validation("the access token contains invalid characters"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies_are_redacted() {
        let body = r#"{"data":[{"access_token":"SECRET","user_id":{"x":1}}]}"#;
        let redacted = redact_tokens(body);
        assert!(!redacted.contains("SECRET"));
        assert!(redacted.contains("user_id"));
        assert!(!redact_tokens("access_token=SECRET").contains("SECRET"));
    }

    #[test]
    fn code_is_cleaned() {
        assert_eq!(clean_code("AQBx#_"), "AQBx");
        assert_eq!(clean_code(" AQBx# "), "AQBx");
        assert_eq!(clean_code("AQBx"), "AQBx");
    }

    #[test]
    fn authorize_url_has_every_parameter() {
        let config = OAuthConfig::new("1", "s", "https://a.example/cb?x=1");
        let url = config.authorize_url_with(
            &[Scope::BusinessBasic, Scope::Other("x y".into())],
            "st&ate",
            Some(false),
            true,
        );
        assert_eq!(
            url,
            "https://www.instagram.com/oauth/authorize?client_id=1&redirect_uri=https%3A%2F%2Fa.example%2Fcb%3Fx%3D1&response_type=code&scope=instagram_business_basic%2Cx+y&state=st%26ate&enable_fb_login=0&force_authentication=1"
        );
        assert!(!format!("{config:?}").contains("\"s\""));
    }
}
