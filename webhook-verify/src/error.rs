//! The one error type of this crate, [`Error`], and the [`ErrorKind`] to match on.

use std::fmt;

/// What went wrong, as a closed set you can `match` on.
///
/// Every [`Error`] has exactly one kind. The kind is stable; the message of the error may be
/// reworded between releases.
///
/// ```
/// use webhook_verify::{meta, ErrorKind};
///
/// let err = meta::verify(b"app-secret", b"{}", "md5=abc").unwrap_err();
/// match err.kind() {
///     ErrorKind::MissingPrefix => { /* answer 401 */ }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A required header (or the signature inside it) is absent or blank.
    MissingHeader,
    /// The signature header does not start with the expected scheme prefix (`sha256=`, `sha1=`).
    MissingPrefix,
    /// The signature has the wrong number of hex digits for its hash.
    WrongLength,
    /// The signature contains a character that is not a hex digit.
    NotHex,
    /// A secret is empty, or no secret was given at all.
    EmptySecret,
    /// The signature is well formed but matches none of the secrets: the body was altered, or it
    /// was signed with another secret.
    SignatureMismatch,
    /// A subscription handshake lacks `hub.mode`, `hub.verify_token` or `hub.challenge`.
    HandshakeMissingParameter,
    /// A subscription handshake has a `hub.mode` other than `subscribe`.
    HandshakeWrongMode,
    /// A subscription handshake carries a `hub.verify_token` other than the expected one.
    HandshakeTokenMismatch,
    /// A subscription handshake carries a `hub.challenge` that is not safe to echo.
    HandshakeInvalidChallenge,
    /// A `signed_request` is not `<base64url sig>.<base64url json>` or its payload is not a JSON
    /// object of the documented shape.
    MalformedSignedRequest,
    /// A `signed_request` names an `algorithm` other than `HMAC-SHA256`.
    UnsupportedAlgorithm,
    /// A `signed_request` is older than the allowed age or past its `expires` time.
    Expired,
    /// A Standard Webhooks secret is not `whsec_<base64>` or has an unusable key length.
    InvalidSecret,
    /// A Standard Webhooks `webhook-timestamp` is not an integer number of seconds.
    InvalidTimestamp,
    /// A Standard Webhooks timestamp lies further in the past than the tolerance allows.
    TimestampTooOld,
    /// A Standard Webhooks timestamp lies further in the future than the tolerance allows.
    TimestampTooNew,
    /// A Standard Webhooks `webhook-signature` header holds no `v1,` signature.
    NoSupportedSignature,
    /// A request body is larger than the configured limit.
    BodyTooLarge,
    /// A request body could not be read to the end.
    BodyUnreadable,
}

/// Extra facts an error carries for its message; never the secret, never the body.
#[derive(Debug)]
pub(crate) enum Detail {
    None,
    Length { expected: usize, found: usize },
    Position(usize),
    Name(&'static str),
    Secrets(usize),
    Seconds { by: i64, limit: i64 },
    Text(String),
    Json(serde_json::Error),
}

/// The error of every fallible operation in this crate.
///
/// Match on [`Error::kind`]; show the error with `Display`. The message says what was wrong and,
/// where it helps, what to do. It never contains a secret.
///
/// ```
/// use webhook_verify::{meta, ErrorKind};
///
/// let err = meta::verify(b"app-secret", b"{}", "sha256=00").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::WrongLength);
/// assert!(err.to_string().contains("64 hex digits"));
/// ```
pub struct Error {
    kind: ErrorKind,
    detail: Detail,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            detail: Detail::None,
        }
    }

    pub(crate) const fn with(kind: ErrorKind, detail: Detail) -> Self {
        Self { kind, detail }
    }

    /// The kind of failure, to match on.
    ///
    /// ```
    /// use webhook_verify::{meta, ErrorKind};
    ///
    /// let err = meta::verify(b"", b"{}", "sha256=00").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::EmptySecret);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &format_args!("{self}"))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Detail as D;
        use ErrorKind as K;
        match (self.kind, &self.detail) {
            (K::MissingHeader, D::Name(name)) => {
                write!(f, "the `{name}` header is missing or empty; the request is not signed")
            }
            (K::MissingHeader, _) => f.write_str("the signature header is missing or empty"),
            (K::MissingPrefix, D::Name(prefix)) => write!(
                f,
                "the signature header must start with `{prefix}` followed by the hex digest"
            ),
            (K::MissingPrefix, _) => f.write_str("the signature header lacks its scheme prefix"),
            (K::WrongLength, D::Length { expected, found }) => write!(
                f,
                "the signature must have {expected} hex digits after the prefix, found {found}"
            ),
            (K::WrongLength, _) => f.write_str("the signature has the wrong length"),
            (K::NotHex, D::Position(at)) => write!(
                f,
                "the signature has a character that is not a hex digit at position {at} after the prefix"
            ),
            (K::NotHex, _) => f.write_str("the signature has a character that is not a hex digit"),
            (K::EmptySecret, _) => f.write_str(
                "no secret to verify with (empty or none given); configure the app secret (App settings > Basic) or the verify token",
            ),
            (K::SignatureMismatch, D::Secrets(n)) if *n > 1 => write!(
                f,
                "the signature matches none of the {n} secrets; the body was altered or signed with another secret (verify the raw body, before any parsing)"
            ),
            (K::SignatureMismatch, _) => f.write_str(
                "the signature does not match; the body was altered or signed with another secret (verify the raw body, before any parsing)",
            ),
            (K::HandshakeMissingParameter, D::Name(name)) => {
                write!(f, "the subscription handshake lacks `{name}`")
            }
            (K::HandshakeMissingParameter, _) => {
                f.write_str("the subscription handshake lacks a parameter")
            }
            (K::HandshakeWrongMode, _) => {
                f.write_str("the subscription handshake has a `hub.mode` other than `subscribe`")
            }
            (K::HandshakeTokenMismatch, _) => f.write_str(
                "the subscription handshake's `hub.verify_token` is not the configured verify token",
            ),
            (K::HandshakeInvalidChallenge, _) => f.write_str(
                "the subscription handshake's `hub.challenge` is empty, too long, or has characters that are unsafe to echo",
            ),
            (K::MalformedSignedRequest, D::Text(what)) => {
                write!(f, "the signed_request is malformed: {what}")
            }
            (K::MalformedSignedRequest, D::Json(err)) => {
                write!(f, "the signed_request payload is not the expected JSON object: {err}")
            }
            (K::MalformedSignedRequest, _) => f.write_str("the signed_request is malformed"),
            (K::UnsupportedAlgorithm, D::Text(alg)) => write!(
                f,
                "the signed_request algorithm is `{alg}`, only `HMAC-SHA256` is accepted"
            ),
            (K::UnsupportedAlgorithm, _) => {
                f.write_str("the signed_request algorithm is not `HMAC-SHA256`")
            }
            (K::Expired, D::Seconds { by, limit }) => write!(
                f,
                "the signed_request is {by} s old, more than the allowed {limit} s"
            ),
            (K::Expired, D::Name(why)) => write!(f, "the signed_request {why}"),
            (K::Expired, _) => f.write_str("the signed_request has expired"),
            (K::InvalidSecret, D::Name(why)) => {
                write!(f, "the Standard Webhooks secret is unusable: {why}")
            }
            (K::InvalidSecret, _) => f.write_str("the Standard Webhooks secret is unusable"),
            (K::InvalidTimestamp, _) => f.write_str(
                "the `webhook-timestamp` header is not an integer number of seconds since the Unix epoch",
            ),
            (K::TimestampTooOld, D::Seconds { by, limit }) => write!(
                f,
                "the webhook timestamp is {by} s in the past, beyond the {limit} s tolerance; reject it as a possible replay"
            ),
            (K::TimestampTooOld, _) => {
                f.write_str("the webhook timestamp is too far in the past")
            }
            (K::TimestampTooNew, D::Seconds { by, limit }) => write!(
                f,
                "the webhook timestamp is {by} s in the future, beyond the {limit} s tolerance; check the clocks"
            ),
            (K::TimestampTooNew, _) => {
                f.write_str("the webhook timestamp is too far in the future")
            }
            (K::NoSupportedSignature, _) => f.write_str(
                "the `webhook-signature` header holds no `v1,<base64>` signature",
            ),
            (K::BodyTooLarge, D::Length { expected, .. }) => {
                write!(f, "the request body is larger than the limit of {expected} bytes")
            }
            (K::BodyTooLarge, _) => f.write_str("the request body is larger than the limit"),
            (K::BodyUnreadable, _) => f.write_str("the request body could not be read"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.detail {
            Detail::Json(err) => Some(err),
            _ => None,
        }
    }
}
