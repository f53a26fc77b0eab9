//! The crate's error type ([`Error`], matched with [`Error::kind`]) and the Graph error
//! envelope the simulator answers with.

use serde_json::{json, Value};

/// What went wrong in a scripting call or at start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The listen address could not be bound.
    Bind,
    /// No such account, person, media, comment or message.
    NotFound,
    /// The action is not possible in the current state (comments disabled, bad input, ...).
    Invalid,
    /// A wait ran out before its condition held.
    Timeout,
}

/// An error of the simulator's Rust API. The message says what was wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("no {what} `{id}` in the simulator; create it first"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// The kind of error, to match on.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A Graph API error answer, rendered in Meta's envelope
/// (`{"error":{"message","type","code","error_subcode","is_transient","fbtrace_id"}}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphFailure {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub error_type: &'static str,
    pub transient: bool,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl GraphFailure {
    pub fn new(code: i64, subcode: Option<i64>, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            subcode,
            message: message.into(),
            error_type: "OAuthException",
            transient: false,
            retry_after: None,
        }
    }

    /// `100`: a bad parameter.
    pub fn param(message: impl Into<String>) -> Self {
        let mut failure = Self::new(100, None, format!("(#100) {}", message.into()));
        failure.error_type = "IGApiException";
        failure
    }

    /// `100/33`: the object does not exist or cannot be seen with this token.
    pub fn no_object(id: &str, method: &str) -> Self {
        let mut failure = Self::new(
            100,
            Some(33),
            format!(
                "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation",
                method.to_ascii_lowercase()
            ),
        );
        failure.error_type = "GraphMethodException";
        failure
    }

    /// `10`: a permission the token lacks.
    pub fn missing_scope(scope: &str) -> Self {
        let mut failure = Self::new(
            10,
            None,
            format!(
                "(#10) Application does not have permission for this action: the token lacks `{scope}`; ask for it at login"
            ),
        );
        failure.status = 403;
        failure
    }

    /// `2`: the injected transient failure.
    pub fn transient() -> Self {
        let mut failure = Self::new(
            2,
            None,
            "An unexpected error has occurred. Please retry your request later.",
        );
        failure.status = 500;
        failure.transient = true;
        failure
    }

    pub fn body(&self, trace: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "is_transient": self.transient,
            "fbtrace_id": trace,
        });
        if let (Some(sub), Some(map)) = (self.subcode, error.as_object_mut()) {
            map.insert("error_subcode".into(), json!(sub));
        }
        json!({ "error": error })
    }
}

/// The flat error shape of the code exchange (`POST /oauth/access_token`).
pub(crate) fn oauth_error(message: &str) -> Value {
    json!({ "error_type": "OAuthException", "code": 400, "error_message": message })
}
