//! An [`axum`] extractor for Meta webhook deliveries (cargo feature `axum`).
//!
//! [`VerifiedBody`] reads the request body up to a limit, verifies its `X-Hub-Signature-256`
//! against the [`AppSecrets`] in your router state, and hands the handler the verified bytes.
//! A missing or wrong signature is answered `401 Unauthorized`, a body over the limit
//! `413 Payload Too Large`, before your handler runs.
//!
//! ```
//! use axum::{routing::post, Router};
//! use webhook_verify::axum::{AppSecrets, VerifiedBody};
//!
//! async fn receive(body: VerifiedBody) -> &'static str {
//!     // `body.bytes()` is exactly what Meta signed: parse it now.
//!     let _json = body.bytes();
//!     "ok"
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhooks/instagram", post(receive))
//!     .with_state(AppSecrets::new("app-secret").with_body_limit(1024 * 1024));
//! ```
//!
//! For a larger state, implement `FromRef<YourState> for AppSecrets` (or derive it with axum's
//! `FromRef` macro) and the extractor finds the secrets there.

use std::fmt;
use std::sync::Arc;

use ::axum::body::Body;
use ::axum::extract::{FromRef, FromRequest, Request};
use ::axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, StatusCode};

use crate::error::{Detail, Error, ErrorKind};
use crate::meta::{check_secrets, Signature, SIGNATURE_HEADER};

/// The app secrets (one, or several while rotating) and the body limit for [`VerifiedBody`].
///
/// `Debug` never shows the secrets.
///
/// ```
/// use webhook_verify::axum::AppSecrets;
///
/// let secrets = AppSecrets::rotating(["previous-secret", "current-secret"]);
/// assert_eq!(secrets.len(), 2);
/// assert_eq!(secrets.body_limit(), AppSecrets::DEFAULT_BODY_LIMIT);
/// assert!(!format!("{secrets:?}").contains("current-secret"));
/// ```
#[derive(Clone)]
pub struct AppSecrets {
    secrets: Arc<[Box<[u8]>]>,
    body_limit: usize,
}

impl AppSecrets {
    /// The default body limit: 4 MiB, room for a full batch of 1000 updates.
    pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

    /// One app secret.
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert_eq!(AppSecrets::new("app-secret").len(), 1);
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self::rotating([secret])
    }

    /// Several app secrets, tried in order; [`VerifiedBody::secret_index`] says which matched.
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert_eq!(AppSecrets::rotating(["old", "new"]).len(), 2);
    /// ```
    pub fn rotating<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        Self {
            secrets: secrets.into_iter().map(|s| Box::from(s.as_ref())).collect(),
            body_limit: Self::DEFAULT_BODY_LIMIT,
        }
    }

    /// Replaces the body limit, in bytes.
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert_eq!(AppSecrets::new("s").with_body_limit(10).body_limit(), 10);
    /// ```
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The body limit in bytes.
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert_eq!(AppSecrets::new("s").body_limit(), 4 * 1024 * 1024);
    /// ```
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// How many secrets there are.
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert!(!AppSecrets::new("s").is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there is no secret at all (every request would then be refused).
    ///
    /// ```
    /// use webhook_verify::axum::AppSecrets;
    ///
    /// assert!(AppSecrets::rotating(Vec::<String>::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

impl fmt::Debug for AppSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSecrets")
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// A request body whose `X-Hub-Signature-256` has been verified.
///
/// Extract it in a handler whose state provides [`AppSecrets`] through [`FromRef`]. Rejections
/// are [`Error`]s answered as `401` (missing or wrong signature), `413` (body over the limit),
/// `400` (unreadable body) or `500` (no usable secret configured).
///
/// ```
/// use axum::extract::FromRef;
/// use webhook_verify::axum::{AppSecrets, VerifiedBody};
///
/// #[derive(Clone)]
/// struct State {
///     secrets: AppSecrets,
/// }
///
/// impl FromRef<State> for AppSecrets {
///     fn from_ref(state: &State) -> Self {
///         state.secrets.clone()
///     }
/// }
///
/// async fn receive(body: VerifiedBody) -> String {
///     format!("{} verified bytes", body.bytes().len())
/// }
///
/// let app: axum::Router = axum::Router::new()
///     .route("/webhooks", axum::routing::post(receive))
///     .with_state(State { secrets: AppSecrets::new("app-secret") });
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedBody {
    bytes: Bytes,
    secret_index: usize,
}

impl VerifiedBody {
    /// The verified body, exactly as received.
    ///
    /// ```no_run
    /// # fn f(body: webhook_verify::axum::VerifiedBody) {
    /// let json: &[u8] = body.bytes();
    /// # }
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Which of the [`AppSecrets`] matched (0 for the first).
    ///
    /// ```no_run
    /// # fn f(body: webhook_verify::axum::VerifiedBody) {
    /// if body.secret_index() > 0 {
    ///     // Meta still signs with an older secret.
    /// }
    /// # }
    /// ```
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }

    /// The verified body, taken out.
    ///
    /// ```no_run
    /// # fn f(body: webhook_verify::axum::VerifiedBody) {
    /// let bytes: bytes::Bytes = body.into_bytes();
    /// # }
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl<S> FromRequest<S> for VerifiedBody
where
    AppSecrets: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let secrets = AppSecrets::from_ref(state);
        check_secrets(&secrets.secrets)?;
        let limit = secrets.body_limit;
        let too_large = || {
            Error::with(
                ErrorKind::BodyTooLarge,
                Detail::Length {
                    expected: limit,
                    found: 0,
                },
            )
        };

        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let signature = match parts.headers.get(SIGNATURE_HEADER) {
            Some(value) => Signature::parse(value)?,
            None => {
                return Err(Error::with(
                    ErrorKind::MissingHeader,
                    Detail::Name("X-Hub-Signature-256"),
                ))
            }
        };
        let bytes = read_limited(body, limit).await.map_err(|kind| match kind {
            ErrorKind::BodyTooLarge => too_large(),
            other => Error::new(other),
        })?;
        let secret_index = signature.matching_secret(&secrets.secrets, &bytes)?;
        Ok(Self {
            bytes,
            secret_index,
        })
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ErrorKind> {
    ::axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            if current.is::<http_body_util::LengthLimitError>() {
                return ErrorKind::BodyTooLarge;
            }
            source = current.source();
        }
        ErrorKind::BodyUnreadable
    })
}

impl Error {
    /// The HTTP status to answer this error with: `413` for an oversize body, `400` for an
    /// unreadable one, `500` when no usable secret is configured, `401` otherwise.
    ///
    /// ```
    /// use webhook_verify::meta;
    ///
    /// let err = meta::verify(b"secret", b"{}", "nonsense").unwrap_err();
    /// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self.kind() {
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BodyUnreadable => StatusCode::BAD_REQUEST,
            ErrorKind::EmptySecret => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Do not tell the caller about our configuration.
            "webhook verification is not configured".to_owned()
        } else {
            self.to_string()
        };
        (status, message).into_response()
    }
}
