//! The HTTP client: configuration, authentication, transport and usage headers.
//!
//! ```no_run
//! use instagram_graph::client::{Client, Flavor};
//!
//! # async fn run() -> Result<(), instagram_graph::Error> {
//! let client = Client::builder("IGAA...")
//!     .flavor(Flavor::InstagramLogin)
//!     .build()?;
//! let me = client.me(&["user_id", "username"]).await?;
//! println!("{:?} (usage {:?})", me.data.username, me.usage.max_percent());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{decode_json, Error};
use crate::id::PageId;
use crate::model::oauth::AccessToken;
use crate::usage::Usage;

/// The Graph API version this crate is written and tested against.
pub const DEFAULT_GRAPH_VERSION: &str = "v25.0";
/// The host of the Instagram API with Instagram Login.
pub const INSTAGRAM_GRAPH_BASE: &str = "https://graph.instagram.com";
/// The host of the Instagram API with Facebook Login.
pub const FACEBOOK_GRAPH_BASE: &str = "https://graph.facebook.com";
/// The default user agent.
pub const DEFAULT_USER_AGENT: &str = concat!("instagram-graph-rs/", env!("CARGO_PKG_VERSION"));

/// Which of the two Instagram API configurations the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// Instagram Login (`graph.instagram.com`): an Instagram user token; `/me` is the professional
    /// account and messaging goes through `/me/messages`.
    InstagramLogin,
    /// Facebook Login (`graph.facebook.com`): a Page token; messaging, conversations, the
    /// messenger profile and the webhook subscription go through the linked Facebook Page. Media
    /// and comments are read through the Instagram user id (`IG_USER_ID`), which the media and
    /// comment methods take explicitly.
    FacebookLogin {
        /// The Facebook Page linked to the Instagram account.
        page_id: PageId,
    },
}

impl Flavor {
    /// The default base URL of the flavour.
    pub fn default_base_url(&self) -> &'static str {
        match self {
            Self::InstagramLogin => INSTAGRAM_GRAPH_BASE,
            Self::FacebookLogin { .. } => FACEBOOK_GRAPH_BASE,
        }
    }

    /// The node that sends messages and owns conversations: `me` or the Page id.
    pub fn messaging_node(&self) -> &str {
        match self {
            Self::InstagramLogin => "me",
            Self::FacebookLogin { page_id } => page_id.as_str(),
        }
    }
}

/// An app secret, used for `appsecret_proof`. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct AppSecret(String);

impl AppSecret {
    /// Wraps an app secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret value. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(<redacted>)")
    }
}

/// Computes `appsecret_proof`: the hex HMAC-SHA256 of the token keyed with the app secret.
///
/// With `time` (Unix seconds) the message is `token|time` and the proof must be sent with
/// `appsecret_time` (valid 5 minutes); without it, the legacy proof over the token alone.
///
/// ```
/// use instagram_graph::client::appsecret_proof;
/// let legacy = appsecret_proof("secret", "token", None);
/// assert_eq!(legacy.len(), 64);
/// assert_ne!(legacy, appsecret_proof("secret", "token", Some(1_700_000_000)));
/// ```
pub fn appsecret_proof(app_secret: &str, token: &str, time: Option<i64>) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(token.as_bytes());
    if let Some(time) = time {
        mac.update(b"|");
        mac.update(time.to_string().as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// How `appsecret_proof` is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofMode {
    /// `appsecret_proof` over `token|time` plus `appsecret_time` (current form).
    Timestamped,
    /// `appsecret_proof` over the token alone (legacy form).
    Legacy,
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    token: AccessToken,
    flavor: Flavor,
    base_url: Option<String>,
    version: String,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: String,
    http: Option<reqwest::Client>,
    app_secret: Option<(AppSecret, ProofMode)>,
}

impl ClientBuilder {
    /// Sets the API flavour (default: Instagram Login).
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Overrides the base URL (scheme, host and optional path prefix), for example a local test
    /// server. Default: the flavour's host.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets the Graph API version (default [`DEFAULT_GRAPH_VERSION`]); an empty string sends no
    /// version segment (Meta then picks the app's default version).
    pub fn graph_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the timeout of a whole request (default 30 s). Ignored with [`Self::http_client`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the connect timeout (default 10 s). Ignored with [`Self::http_client`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the user agent (default [`DEFAULT_USER_AGENT`]).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Uses this `reqwest::Client` (with its own timeouts, proxies, TLS) instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Signs every call with `appsecret_proof` (and `appsecret_time` in the timestamped mode).
    pub fn app_secret(mut self, secret: impl Into<String>, mode: ProofMode) -> Self {
        self.app_secret = Some((AppSecret::new(secret), mode));
        self
    }

    /// Builds the client. Fails when the base URL does not parse or the HTTP client cannot be
    /// built (TLS backend initialisation).
    pub fn build(self) -> Result<Client, Error> {
        let base = self
            .base_url
            .unwrap_or_else(|| self.flavor.default_base_url().to_owned());
        let base = url::Url::parse(&base).map_err(|e| {
            Error::validation(format!(
                "the base URL `{base}` does not parse ({e}); give e.g. https://graph.instagram.com"
            ))
        })?;
        if base.cannot_be_a_base() {
            return Err(Error::validation(
                "the base URL must be an http(s) URL such as https://graph.instagram.com",
            ));
        }
        let http = match self.http {
            Some(http) => http,
            None => {
                let builder = reqwest::Client::builder()
                    .timeout(self.timeout.unwrap_or(Duration::from_secs(30)))
                    .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
                    .user_agent(self.user_agent.clone());
                #[cfg(feature = "native-tls")]
                let builder = builder.tls_backend_native();
                builder.build()?
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                version: self.version,
                token: self.token,
                flavor: self.flavor,
                app_secret: self.app_secret,
                user_agent: self.user_agent,
            }),
        })
    }
}

/// A response body together with what Meta reported about rate-limit usage.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Response<T> {
    /// The decoded body.
    pub data: T,
    /// The usage from `X-App-Usage` and `X-Business-Use-Case-Usage`.
    pub usage: Usage,
    /// The HTTP status.
    pub status: u16,
}

impl<T> Response<T> {
    /// The body, dropping the usage.
    pub fn into_inner(self) -> T {
        self.data
    }

    /// Maps the body, keeping the usage.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            data: f(self.data),
            usage: self.usage,
            status: self.status,
        }
    }
}

/// The body of a request.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// A form-encoded body.
    Form(Vec<(String, String)>),
}

/// A Graph API client for one access token. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: url::Url,
    version: String,
    token: AccessToken,
    flavor: Flavor,
    app_secret: Option<(AppSecret, ProofMode)>,
    user_agent: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("version", &self.inner.version)
            .field("flavor", &self.inner.flavor)
            .field("token", &self.inner.token)
            .finish()
    }
}

impl Client {
    /// Starts building a client for `token` (Instagram Login flavour by default).
    pub fn builder(token: impl Into<AccessToken>) -> ClientBuilder {
        ClientBuilder {
            token: token.into(),
            flavor: Flavor::InstagramLogin,
            base_url: None,
            version: DEFAULT_GRAPH_VERSION.to_owned(),
            timeout: None,
            connect_timeout: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            http: None,
            app_secret: None,
        }
    }

    /// A client for another access token (another account) that shares this client's
    /// connection pool and settings. With Facebook Login, give the Page of that account.
    pub fn with_token(&self, token: impl Into<AccessToken>, flavor: Flavor) -> Client {
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                version: self.inner.version.clone(),
                token: token.into(),
                flavor,
                app_secret: self.inner.app_secret.clone(),
                user_agent: self.inner.user_agent.clone(),
            }),
        }
    }

    /// The API flavour.
    pub fn flavor(&self) -> &Flavor {
        &self.inner.flavor
    }

    /// The node that sends messages and owns conversations (`me` or the Page id).
    pub fn messaging_node(&self) -> &str {
        self.inner.flavor.messaging_node()
    }

    /// The Graph API version in use.
    pub fn graph_version(&self) -> &str {
        &self.inner.version
    }

    /// Builds the URL of `path` (segments separated by `/`; each segment is percent-encoded).
    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<url::Url, Error> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                Error::validation("the base URL cannot take a path; use an http(s) URL")
            })?;
            segments.pop_if_empty();
            if !self.inner.version.is_empty() {
                segments.push(&self.inner.version);
            }
            for segment in path.split('/').filter(|s| !s.is_empty()) {
                segments.push(segment);
            }
        }
        let proof = self.inner.app_secret.as_ref().map(|(secret, mode)| {
            let time = match mode {
                ProofMode::Timestamped => SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .and_then(|d| i64::try_from(d.as_secs()).ok()),
                ProofMode::Legacy => None,
            };
            let proof = appsecret_proof(
                secret.expose_secret(),
                self.inner.token.expose_secret(),
                time,
            );
            (proof, time)
        });
        if !query.is_empty() || proof.is_some() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
            if let Some((proof, time)) = proof {
                pairs.append_pair("appsecret_proof", &proof);
                if let Some(time) = time {
                    pairs.append_pair("appsecret_time", &time.to_string());
                }
            }
        }
        Ok(url)
    }

    /// Sends one request with the token in the `Authorization` header and decodes the answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body,
    ) -> Result<Response<T>, Error> {
        let url = self.url(path, query)?;
        let span = tracing::debug_span!(
            "graph.call",
            method = %method,
            path = %path,
            status = tracing::field::Empty,
        );
        let request = self
            .inner
            .http
            .request(method, url)
            .header(AUTHORIZATION, bearer(&self.inner.token)?)
            .header(reqwest::header::USER_AGENT, self.inner.user_agent.as_str());
        let request = attach_body(request, body)?;
        execute(request, span.clone()).instrument(span).await
    }
}

fn bearer(token: &AccessToken) -> Result<reqwest::header::HeaderValue, Error> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                Error::validation(
                    "the access token contains characters not allowed in a header; check it was copied whole",
                )
            })?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) fn attach_body(
    request: reqwest::RequestBuilder,
    body: Body,
) -> Result<reqwest::RequestBuilder, Error> {
    Ok(match body {
        Body::Empty => request,
        Body::Json(value) => {
            let text = serde_json::to_string(&value).map_err(|e| {
                Error::validation(format!("the request body could not be encoded: {e}"))
            })?;
            request.header(CONTENT_TYPE, "application/json").body(text)
        }
        Body::Form(pairs) => {
            let text = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(text)
        }
    })
}

/// Reads the usage headers of a response.
pub fn usage_from_headers(headers: &HeaderMap) -> Usage {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Usage::from_headers(get("x-app-usage"), get("x-business-use-case-usage"))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends a prepared request and turns the answer into a typed response or an [`Error`].
///
/// `span` is the call's span; the HTTP status is recorded on its `status` field.
pub(crate) async fn execute<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    span: tracing::Span,
) -> Result<Response<T>, Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    span.record("status", status);
    let usage = usage_from_headers(response.headers());
    let wait = retry_after(response.headers());
    let body = response.text().await?;
    if !(200..300).contains(&status) {
        let error = Error::from_response(status, &body, wait, usage.regain_access_after());
        tracing::debug!(kind = ?error.kind(), code = ?error.code(), "graph error");
        return Err(error);
    }
    // Some endpoints answer 200 with an error envelope.
    if body.trim_start().starts_with('{') && body.contains("\"error\"") {
        let error = Error::from_response(status, &body, wait, usage.regain_access_after());
        if error.code().is_some() && error.graph().is_some_and(|g| !g.message.is_empty()) {
            return Err(error);
        }
    }
    let data = decode_json::<T>(&body)?;
    Ok(Response {
        data,
        usage,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_has_version_and_encoded_segments() {
        let client = Client::builder("t")
            .base_url("http://localhost:9/prefix/")
            .build()
            .unwrap();
        let url = client
            .url("me/media", &[("fields", "id,caption".into())])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://localhost:9/prefix/v25.0/me/media?fields=id%2Ccaption"
        );
        let url = client.url("a b/c", &[]).unwrap();
        assert_eq!(url.as_str(), "http://localhost:9/prefix/v25.0/a%20b/c");
        let bare = Client::builder("t").graph_version("").build().unwrap();
        assert_eq!(
            bare.url("me", &[]).unwrap().as_str(),
            "https://graph.instagram.com/me"
        );
    }

    #[test]
    fn proof_matches_hmac_of_token() {
        let client = Client::builder("tok")
            .app_secret("sec", ProofMode::Legacy)
            .build()
            .unwrap();
        let url = client.url("me", &[]).unwrap();
        let expected = appsecret_proof("sec", "tok", None);
        assert_eq!(
            url.query(),
            Some(format!("appsecret_proof={expected}").as_str())
        );
        assert!(!url.as_str().contains("tok&") && !url.as_str().contains("access_token"));
    }

    #[test]
    fn debug_hides_the_token() {
        let client = Client::builder("SECRET-TOKEN").build().unwrap();
        assert!(!format!("{client:?}").contains("SECRET"));
    }

    #[test]
    fn bad_base_url_is_a_validation_error() {
        let err = Client::builder("t")
            .base_url("not a url")
            .build()
            .unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::Validation { .. }));
    }
}
