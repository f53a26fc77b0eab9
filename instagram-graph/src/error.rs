//! The crate's single error type, [`Error`], and the [`ErrorKind`] to match on.
//!
//! Errors come from four places: Meta's error envelope (`{"error":{"code":..}}`), the flat OAuth
//! error of the code exchange, the transport (connect, timeout), and this crate itself (a request
//! builder refusing a message that breaks a documented limit, or a body that does not decode).
//! Every error can say whether retrying makes sense ([`Error::is_retryable`]) and how long to wait
//! ([`Error::retry_after`]), and [`Error::advice`] says what to do in plain words.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// What went wrong, to match on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The app, the user or the account is throttled (codes 4, 17, 32, 613, 80001-80009).
    RateLimited {
        /// How long Meta asked us to wait (`estimated_time_to_regain_access` or `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The access token is expired, revoked or otherwise invalid (code 190, 102).
    TokenInvalid {
        /// Why, from the error subcode.
        reason: TokenInvalidReason,
    },
    /// The token lacks a permission or the app lacks a feature (codes 3, 10, 200-299).
    PermissionDenied,
    /// The message was sent outside the allowed messaging window (10/2534022, 10/2018278).
    OutsideMessagingWindow,
    /// The recipient cannot receive messages from this account right now (551, 200/1545041,
    /// 10/2018108, 200/2534041).
    RecipientUnavailable,
    /// The comment cannot receive a private reply (100/2534025): too old, already answered, or
    /// not a comment on this account's media.
    InvalidPrivateReply,
    /// The user profile cannot be read until the user messages the account (User Profile API).
    ConsentRequired,
    /// A parameter was rejected by Meta (code 100 and the flat OAuth error shape).
    InvalidParameter,
    /// A temporary failure on Meta's side (codes 1, 2, 341, `is_transient`, HTTP 5xx).
    Transient,
    /// A Graph error that fits none of the other kinds; see [`Error::graph`] for its code.
    Api,
    /// A request builder refused a value that breaks a documented platform limit. Nothing was sent.
    LimitExceeded {
        /// The limit that was broken.
        limit: Limit,
        /// The value that broke it (a count, a length in bytes or characters).
        actual: usize,
    },
    /// A request builder refused an invalid combination of values. Nothing was sent.
    Validation {
        /// What was wrong.
        reason: String,
    },
    /// A response body did not decode into the expected type.
    Decode {
        /// Where in the body the decoding failed (a `serde_path_to_error` path, `.` for the root).
        path: String,
        /// The raw body, kept so nothing is lost.
        body: String,
    },
    /// The request did not complete: connection, TLS, timeout or body read failure.
    Transport {
        /// `true` when the failure happened before the request reached the server (connect
        /// error), so retrying cannot send anything twice.
        before_send: bool,
        /// `true` when the request timed out.
        timeout: bool,
    },
}

impl ErrorKind {
    /// A short snake_case name of the kind, for logs, metrics and command-line output.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::TokenInvalid { .. } => "token_invalid",
            Self::PermissionDenied => "permission_denied",
            Self::OutsideMessagingWindow => "outside_messaging_window",
            Self::RecipientUnavailable => "recipient_unavailable",
            Self::InvalidPrivateReply => "invalid_private_reply",
            Self::ConsentRequired => "consent_required",
            Self::InvalidParameter => "invalid_parameter",
            Self::Transient => "transient",
            Self::Api => "api",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::Validation { .. } => "validation",
            Self::Decode { .. } => "decode",
            Self::Transport { .. } => "transport",
        }
    }
}

/// Why an access token is invalid, from the subcode of error 190.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenInvalidReason {
    /// 458: the user removed the app.
    AppNotInstalled,
    /// 459: the user must log in to Instagram or Facebook to pass a checkpoint.
    Checkpointed,
    /// 460: the user changed the password.
    PasswordChanged,
    /// 463: the token expired.
    Expired,
    /// 464: the user is not confirmed.
    UnconfirmedUser,
    /// 467: the token is invalid.
    Invalid,
    /// 492: the session is invalid (Page role changed).
    InvalidSession,
    /// Code 102: the API session is invalid.
    Session,
    /// Another or no subcode (kept as received).
    Other(Option<i64>),
}

impl TokenInvalidReason {
    fn from_subcode(subcode: Option<i64>) -> Self {
        match subcode {
            Some(458) => Self::AppNotInstalled,
            Some(459) => Self::Checkpointed,
            Some(460) => Self::PasswordChanged,
            Some(463) => Self::Expired,
            Some(464) => Self::UnconfirmedUser,
            Some(467) => Self::Invalid,
            Some(492) => Self::InvalidSession,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for TokenInvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::AppNotInstalled => "the user removed the app",
            Self::Checkpointed => "the user must pass a security checkpoint",
            Self::PasswordChanged => "the user changed the password",
            Self::Expired => "the token expired",
            Self::UnconfirmedUser => "the user is not confirmed",
            Self::Invalid => "the token is invalid",
            Self::InvalidSession => "the session is invalid",
            Self::Session => "the API session is invalid",
            Self::Other(_) => "the token was rejected",
        };
        f.write_str(text)
    }
}

/// A documented platform limit that a request builder enforces before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Text message: at most 1,000 UTF-8 bytes.
    TextBytes,
    /// Text message: must not be empty.
    TextEmpty,
    /// Images in one message: 1 to 10.
    Images,
    /// Quick replies on one message: 1 to 13.
    QuickReplies,
    /// Quick reply title: at most 20 characters.
    QuickReplyTitle,
    /// Button template text: at most 640 characters.
    ButtonTemplateText,
    /// Buttons on a button template: 1 to 3.
    ButtonTemplateButtons,
    /// Elements in a generic template: 1 to 10.
    GenericElements,
    /// Generic template element title: at most 80 characters.
    GenericTitle,
    /// Generic template element subtitle: at most 80 characters.
    GenericSubtitle,
    /// Buttons on one generic template element: at most 3.
    GenericButtons,
    /// Ice breaker questions per locale: 1 to 4.
    IceBreakers,
    /// Comments per page: 1 to 50.
    CommentsPerPage,
    /// Messages of a conversation readable in detail: the 20 most recent.
    RecentMessages,
}

impl Limit {
    /// The smallest allowed value.
    pub fn min(self) -> usize {
        match self {
            Self::TextEmpty
            | Self::Images
            | Self::QuickReplies
            | Self::ButtonTemplateButtons
            | Self::GenericElements
            | Self::IceBreakers
            | Self::CommentsPerPage
            | Self::RecentMessages => 1,
            _ => 0,
        }
    }

    /// The largest allowed value.
    pub fn max(self) -> usize {
        match self {
            Self::TextBytes => 1000,
            Self::TextEmpty => usize::MAX,
            Self::Images => 10,
            Self::QuickReplies => 13,
            Self::QuickReplyTitle => 20,
            Self::ButtonTemplateText => 640,
            Self::ButtonTemplateButtons => 3,
            Self::GenericElements => 10,
            Self::GenericTitle | Self::GenericSubtitle => 80,
            Self::GenericButtons => 3,
            Self::IceBreakers => 4,
            Self::CommentsPerPage => 50,
            Self::RecentMessages => 20,
        }
    }

    /// A short name of the limit, such as `"text bytes"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TextBytes => "text length (UTF-8 bytes)",
            Self::TextEmpty => "text length",
            Self::Images => "images per message",
            Self::QuickReplies => "quick replies per message",
            Self::QuickReplyTitle => "quick reply title (characters)",
            Self::ButtonTemplateText => "button template text (characters)",
            Self::ButtonTemplateButtons => "buttons per button template",
            Self::GenericElements => "generic template elements",
            Self::GenericTitle => "generic template title (characters)",
            Self::GenericSubtitle => "generic template subtitle (characters)",
            Self::GenericButtons => "buttons per generic template element",
            Self::IceBreakers => "ice breakers per locale",
            Self::CommentsPerPage => "comments per page",
            Self::RecentMessages => "recent messages readable in detail",
        }
    }

    /// Checks `actual` against the limit, returning [`ErrorKind::LimitExceeded`] when outside.
    pub fn check(self, actual: usize) -> Result<(), Error> {
        if actual < self.min() || actual > self.max() {
            Err(Error::new(ErrorKind::LimitExceeded {
                limit: self,
                actual,
            }))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = (self.min(), self.max());
        if max == usize::MAX {
            write!(f, "{} must be at least {min}", self.name())
        } else if min > 0 {
            write!(f, "{} must be {min} to {max}", self.name())
        } else {
            write!(f, "{} must be at most {max}", self.name())
        }
    }
}

/// The fields of Meta's error envelope: `{"error": {"message", "type", "code", ...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct GraphError {
    /// The error message (English, for developers).
    #[serde(default)]
    pub message: String,
    /// The error type, such as `OAuthException`.
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    /// The error code.
    #[serde(default)]
    pub code: Option<i64>,
    /// The error subcode.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// A title that may be shown to the user.
    #[serde(default)]
    pub error_user_title: Option<String>,
    /// A message that may be shown to the user.
    #[serde(default)]
    pub error_user_msg: Option<String>,
    /// Whether Meta considers the error temporary.
    #[serde(default)]
    pub is_transient: Option<bool>,
    /// Meta's trace id, for support requests (expires shortly).
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

/// The flat error of the OAuth code exchange: `{"error_type","code","error_message"}`.
#[derive(Deserialize)]
struct FlatOAuthError {
    error_type: Option<String>,
    code: Option<i64>,
    error_message: String,
}

/// The error of every fallible operation of this crate.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    graph: Option<GraphError>,
    status: Option<u16>,
    message: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of the given kind with no further detail.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                graph: None,
                status: None,
                message: None,
                source: None,
            }),
        }
    }

    /// A decoding error: the body at `path` did not fit; `message` says why.
    pub fn decode(
        path: impl Into<String>,
        body: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let mut error = Self::new(ErrorKind::Decode {
            path: path.into(),
            body: body.into(),
        });
        error.inner.message = Some(message.into());
        error
    }

    /// A validation error of a request builder.
    pub fn validation(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation {
            reason: reason.into(),
        })
    }

    /// Builds the error for a non-success HTTP response from its status and body.
    ///
    /// `retry_after` is the `Retry-After` header, if any; the Business Use Case header's
    /// `estimated_time_to_regain_access` is given as `regain_access` (both optional). When the body
    /// is neither Meta's envelope nor the flat OAuth shape, the status decides the kind.
    pub fn from_response(
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
        regain_access: Option<Duration>,
    ) -> Self {
        if let Ok(envelope) = serde_json::from_str::<Envelope>(body) {
            let wait = regain_access.or(retry_after);
            let mut error = Self::from_graph(envelope.error, wait);
            if error.inner.kind == ErrorKind::Api && status >= 500 {
                error.inner.kind = ErrorKind::Transient;
            }
            error.inner.status = Some(status);
            return error;
        }
        if let Ok(flat) = serde_json::from_str::<FlatOAuthError>(body) {
            let mut error = Self::new(ErrorKind::InvalidParameter);
            error.inner.graph = Some(GraphError {
                message: flat.error_message,
                error_type: flat.error_type,
                code: flat.code,
                ..GraphError::default()
            });
            error.inner.status = Some(status);
            return error;
        }
        let kind = match status {
            429 => ErrorKind::RateLimited {
                retry_after: regain_access.or(retry_after),
            },
            500..=599 => ErrorKind::Transient,
            401 => ErrorKind::TokenInvalid {
                reason: TokenInvalidReason::Other(None),
            },
            403 => ErrorKind::PermissionDenied,
            _ => ErrorKind::Api,
        };
        let mut error = Self::new(kind);
        error.inner.status = Some(status);
        let snippet: String = body.chars().take(200).collect();
        error.inner.message = Some(format!(
            "HTTP {status} without a Graph error body: {snippet}"
        ));
        error
    }

    /// Classifies a Graph error envelope. `wait` is the time Meta asked us to wait, if known.
    pub fn from_graph(graph: GraphError, wait: Option<Duration>) -> Self {
        let kind = classify(&graph, wait);
        let mut error = Self::new(kind);
        error.inner.graph = Some(graph);
        error
    }

    /// Rewrites the raw body kept by a [`ErrorKind::Decode`] error (to redact secrets).
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn map_decode_body(mut self, redact: impl FnOnce(&str) -> String) -> Self {
        if let ErrorKind::Decode { body, .. } = &mut self.inner.kind {
            *body = redact(body);
        }
        self
    }

    /// What went wrong, to match on.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The Graph error envelope, when the error came from Meta.
    pub fn graph(&self) -> Option<&GraphError> {
        self.inner.graph.as_ref()
    }

    /// The Graph error code, when the error came from Meta.
    pub fn code(&self) -> Option<i64> {
        self.inner.graph.as_ref().and_then(|g| g.code)
    }

    /// The Graph error subcode, when the error came from Meta and had one.
    pub fn subcode(&self) -> Option<i64> {
        self.inner.graph.as_ref().and_then(|g| g.error_subcode)
    }

    /// The HTTP status of the response, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// Whether the same request may succeed later (rate limits, transient and transport failures).
    ///
    /// This says nothing about whether a retry is *safe*: a send that timed out may have been
    /// delivered. The retry policy of this crate takes that into account.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::RateLimited { .. } | ErrorKind::Transient | ErrorKind::Transport { .. }
        )
    }

    /// How long Meta asked us to wait before trying again, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// One sentence saying what to do about this error.
    pub fn advice(&self) -> &'static str {
        match &self.inner.kind {
            ErrorKind::RateLimited { .. } => "rate limited: stop calling and retry after the wait",
            ErrorKind::TokenInvalid { reason } => match reason {
                TokenInvalidReason::Expired => "token expired: reconnect the account",
                TokenInvalidReason::AppNotInstalled => {
                    "the user removed the app: reconnect the account"
                }
                TokenInvalidReason::PasswordChanged => {
                    "the password changed: reconnect the account"
                }
                TokenInvalidReason::Checkpointed => {
                    "the user must log in to Instagram to pass a checkpoint, then reconnect"
                }
                _ => "token invalid: reconnect the account",
            },
            ErrorKind::PermissionDenied => {
                "permission missing: grant the permission (or pass App Review) and reconnect"
            }
            ErrorKind::OutsideMessagingWindow => {
                "outside the 24-hour window: wait for the user to write, or use the HUMAN_AGENT tag within 7 days"
            }
            ErrorKind::RecipientUnavailable => {
                "the recipient cannot receive messages right now: do not retry"
            }
            ErrorKind::InvalidPrivateReply => {
                "the comment cannot get a private reply (older than 7 days, already answered, or not yours): do not retry"
            }
            ErrorKind::ConsentRequired => {
                "the user has not messaged the account yet: read the profile after they write"
            }
            ErrorKind::InvalidParameter => "a parameter was rejected: fix the request",
            ErrorKind::Transient => "temporary failure at Meta: retry with backoff",
            ErrorKind::Api => "the Graph API refused the request: check the code and message",
            ErrorKind::LimitExceeded { .. } => "shorten or split the message; nothing was sent",
            ErrorKind::Validation { .. } => "fix the request; nothing was sent",
            ErrorKind::Decode { .. } => {
                "the response had an unexpected shape: report it with the raw body"
            }
            ErrorKind::Transport { .. } => "network failure: check connectivity and retry",
        }
    }
}

#[cfg(feature = "client")]
impl From<reqwest::Error> for Error {
    /// A transport failure; a timeout or a body error may have reached the server. The query
    /// string of the URL is dropped from the message, as it may carry secrets.
    fn from(mut source: reqwest::Error) -> Self {
        // The query may hold `appsecret_proof` or a `client_secret`: keep only the path.
        if let Some(url) = source.url_mut() {
            url.set_query(None);
        }
        let mut error = Self::new(ErrorKind::Transport {
            before_send: source.is_connect(),
            timeout: source.is_timeout(),
        });
        error.inner.source = Some(Box::new(source));
        error
    }
}

fn classify(graph: &GraphError, wait: Option<Duration>) -> ErrorKind {
    let code = graph.code.unwrap_or(0);
    let sub = graph.error_subcode;
    let lower = graph.message.to_ascii_lowercase();
    match (code, sub) {
        (190, _) => ErrorKind::TokenInvalid {
            reason: TokenInvalidReason::from_subcode(sub),
        },
        (102, _) => ErrorKind::TokenInvalid {
            reason: TokenInvalidReason::Session,
        },
        (10, Some(2534022)) | (10, Some(2018278)) => ErrorKind::OutsideMessagingWindow,
        (551, _) | (200, Some(1545041)) | (10, Some(2018108)) | (200, Some(2534041)) => {
            ErrorKind::RecipientUnavailable
        }
        (100, Some(2534025)) => ErrorKind::InvalidPrivateReply,
        (613, Some(2018338)) => ErrorKind::Api,
        (4 | 17 | 32 | 613, _) | (80001..=80009, _) => ErrorKind::RateLimited { retry_after: wait },
        _ if lower.contains("consent is required") => ErrorKind::ConsentRequired,
        (3 | 10, _) | (200..=299, _) => ErrorKind::PermissionDenied,
        (1 | 2 | 341, _) => ErrorKind::Transient,
        _ if graph.is_transient == Some(true) => ErrorKind::Transient,
        (100, _) => ErrorKind::InvalidParameter,
        _ => ErrorKind::Api,
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("graph", &self.inner.graph)
            .field("status", &self.inner.status)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.inner.kind {
            ErrorKind::RateLimited { retry_after } => match retry_after {
                Some(wait) => format!("rate limited (retry after {}s)", wait.as_secs()),
                None => "rate limited".to_owned(),
            },
            ErrorKind::TokenInvalid { reason } => format!("access token invalid: {reason}"),
            ErrorKind::PermissionDenied => "permission denied".to_owned(),
            ErrorKind::OutsideMessagingWindow => "outside the messaging window".to_owned(),
            ErrorKind::RecipientUnavailable => "recipient unavailable".to_owned(),
            ErrorKind::InvalidPrivateReply => "comment invalid for a private reply".to_owned(),
            ErrorKind::ConsentRequired => "user consent required".to_owned(),
            ErrorKind::InvalidParameter => "invalid parameter".to_owned(),
            ErrorKind::Transient => "temporary Graph API failure".to_owned(),
            ErrorKind::Api => "Graph API error".to_owned(),
            ErrorKind::LimitExceeded { limit, actual } => {
                format!("limit exceeded: {limit}, got {actual}")
            }
            ErrorKind::Validation { reason } => format!("invalid request: {reason}"),
            ErrorKind::Decode { path, .. } => format!("could not decode the JSON at `{path}`"),
            ErrorKind::Transport { timeout: true, .. } => "request timed out".to_owned(),
            ErrorKind::Transport { .. } => "transport failure".to_owned(),
        };
        f.write_str(&what)?;
        if let Some(graph) = &self.inner.graph {
            if let Some(code) = graph.code {
                write!(f, " (code {code}")?;
                if let Some(sub) = graph.error_subcode {
                    write!(f, "/{sub}")?;
                }
                f.write_str(")")?;
            }
            if !graph.message.is_empty() {
                write!(f, ": {}", graph.message)?;
            }
        }
        if let Some(message) = &self.inner.message {
            write!(f, ": {message}")?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// Decodes `body` into `T`, turning a failure into [`ErrorKind::Decode`] with the failing path and
/// the raw body.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        Error::decode(path, body, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(code: i64, sub: Option<i64>) -> GraphError {
        GraphError {
            message: "m".into(),
            code: Some(code),
            error_subcode: sub,
            ..GraphError::default()
        }
    }

    #[test]
    fn classification_table() {
        let cases = [
            (190, Some(463), "token"),
            (102, None, "token"),
            (4, None, "rate"),
            (80002, None, "rate"),
            (613, Some(2534040), "rate"),
            (10, Some(2534022), "window"),
            (10, Some(2018278), "window"),
            (551, None, "recipient"),
            (200, Some(1545041), "recipient"),
            (10, Some(2018108), "recipient"),
            (200, Some(2534041), "recipient"),
            (100, Some(2534025), "private"),
            (10, None, "perm"),
            (200, None, "perm"),
            (100, None, "param"),
            (2, None, "transient"),
            (506, None, "api"),
        ];
        for (code, sub, want) in cases {
            let kind = classify(&graph(code, sub), None);
            let got = match kind {
                ErrorKind::TokenInvalid { .. } => "token",
                ErrorKind::RateLimited { .. } => "rate",
                ErrorKind::OutsideMessagingWindow => "window",
                ErrorKind::RecipientUnavailable => "recipient",
                ErrorKind::InvalidPrivateReply => "private",
                ErrorKind::PermissionDenied => "perm",
                ErrorKind::InvalidParameter => "param",
                ErrorKind::Transient => "transient",
                ErrorKind::Api => "api",
                _ => "other",
            };
            assert_eq!(got, want, "code {code}/{sub:?}");
        }
    }

    #[test]
    fn limit_check_names_the_limit() {
        let err = Limit::TextBytes.check(1001).unwrap_err();
        assert_eq!(
            err.kind(),
            &ErrorKind::LimitExceeded {
                limit: Limit::TextBytes,
                actual: 1001
            }
        );
        assert!(err.to_string().contains("1000"));
        assert!(Limit::TextBytes.check(1000).is_ok());
        assert!(Limit::Images.check(0).is_err());
    }

    #[test]
    fn decode_keeps_path_and_body() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: Vec<u32>,
        }
        let err = decode_json::<T>(r#"{"a":[1,"x"]}"#).unwrap_err();
        match err.kind() {
            ErrorKind::Decode { path, body } => {
                assert_eq!(path, "a[1]");
                assert_eq!(body, r#"{"a":[1,"x"]}"#);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_json_5xx_is_transient() {
        let err = Error::from_response(502, "<html>bad gateway</html>", None, None);
        assert_eq!(err.kind(), &ErrorKind::Transient);
        assert!(err.is_retryable());
        assert_eq!(err.status(), Some(502));
    }
}
