//! [Standard Webhooks](https://www.standardwebhooks.com/): sign what you send, verify what you
//! receive.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, signed with HMAC-SHA256 under
//! the secret `whsec_<base64 key>`. The `webhook-signature` header holds one or more
//! `v1,<base64 signature>` entries separated by spaces. A receiver rejects a timestamp further
//! than the tolerance (default five minutes) from its own clock, which you pass in as `now`.
//!
//! ```
//! use webhook_verify::standard::{Headers, Secret, Webhook};
//!
//! let webhook = Webhook::new(Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let body = br#"{"test": 2432232314}"#;
//! let signature = webhook.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let headers = Headers::new("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &signature);
//! webhook.verify(&headers, body, 1_614_265_330 + 60)?;
//! # Ok::<(), webhook_verify::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::error::{Detail, Error, ErrorKind};
use crate::meta::hmac_sha256;

/// The header with the message id, unique per message and kept across retries.
pub const ID_HEADER: &str = "webhook-id";
/// The header with the send time in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header with the space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a timestamp may lie from `now` by default: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const SECRET_PREFIX: &str = "whsec_";
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;

/// A Standard Webhooks signing secret. `Debug` never shows the key.
///
/// ```
/// use webhook_verify::standard::Secret;
///
/// let secret = Secret::from_key_bytes(&[7u8; 32])?;
/// let text = secret.to_whsec();
/// assert!(text.starts_with("whsec_"));
/// assert_eq!(Secret::parse(&text)?, secret);
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

/// Equality is constant time for keys of equal length.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.key.as_slice().ct_eq(other.key.as_slice()))
    }
}

impl Eq for Secret {}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix may be left out, as the reference libraries allow).
    ///
    /// Fails with [`ErrorKind::InvalidSecret`] when the text is not base64 or the key is empty.
    ///
    /// ```
    /// use webhook_verify::{standard::Secret, ErrorKind};
    ///
    /// assert!(Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    /// let err = Secret::parse("whsec_not base64!").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidSecret);
    /// ```
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim_ascii();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = STANDARD_PAD_INDIFFERENT.decode(encoded).map_err(|_| {
            Error::with(
                ErrorKind::InvalidSecret,
                Detail::Name("it is not `whsec_` followed by standard base64"),
            )
        })?;
        if key.is_empty() {
            return Err(Error::with(
                ErrorKind::InvalidSecret,
                Detail::Name("the key is empty"),
            ));
        }
        Ok(Self { key })
    }

    /// A secret from raw key bytes, e.g. 32 bytes from a CSPRNG; the spec asks for 24 to 64.
    ///
    /// Fails with [`ErrorKind::InvalidSecret`] for a key shorter than 24 or longer than 64 bytes.
    ///
    /// ```
    /// use webhook_verify::{standard::Secret, ErrorKind};
    ///
    /// assert!(Secret::from_key_bytes(&[1u8; 24]).is_ok());
    /// let err = Secret::from_key_bytes(&[1u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidSecret);
    /// ```
    pub fn from_key_bytes(key: &[u8]) -> Result<Self, Error> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(Error::with(
                ErrorKind::InvalidSecret,
                Detail::Name("the key must be 24 to 64 bytes long"),
            ));
        }
        Ok(Self { key: key.to_vec() })
    }

    /// The secret as `whsec_<base64>`, to hand to the receiver. Treat the result as a secret.
    ///
    /// ```
    /// use webhook_verify::standard::Secret;
    ///
    /// let text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// assert_eq!(Secret::parse(text)?.to_whsec(), text);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The three Standard Webhooks headers of one delivery, as received.
///
/// ```
/// use webhook_verify::standard::Headers;
///
/// let headers = Headers::new("msg_1", "1700000000", "v1,abc=");
/// assert_eq!(headers.id, "msg_1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Headers<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

impl<'a> Headers<'a> {
    /// The headers from their values.
    ///
    /// ```
    /// use webhook_verify::standard::Headers;
    ///
    /// let headers = Headers::new("msg_1", "1700000000", "v1,abc=");
    /// assert_eq!(headers.timestamp, "1700000000");
    /// ```
    pub fn new(id: &'a str, timestamp: &'a str, signature: &'a str) -> Self {
        Self {
            id,
            timestamp,
            signature,
        }
    }
}

/// Signs and verifies Standard Webhooks with one secret.
///
/// ```
/// use std::time::Duration;
/// use webhook_verify::standard::{Headers, Secret, Webhook};
///
/// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?)
///     .with_tolerance(Duration::from_secs(60));
/// let signature = webhook.sign("msg_1", 1_700_000_000, b"{}");
/// webhook.verify(&Headers::new("msg_1", "1700000000", &signature), b"{}", 1_700_000_030)?;
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Webhook {
    secret: Secret,
    tolerance: Duration,
}

impl Webhook {
    /// A signer and verifier with `secret` and the default five-minute tolerance.
    ///
    /// ```
    /// use webhook_verify::standard::{Secret, Webhook, DEFAULT_TOLERANCE};
    ///
    /// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?);
    /// assert_eq!(webhook.tolerance(), DEFAULT_TOLERANCE);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Replaces the timestamp tolerance.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_verify::standard::{Secret, Webhook};
    ///
    /// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?)
    ///     .with_tolerance(Duration::from_secs(30));
    /// assert_eq!(webhook.tolerance(), Duration::from_secs(30));
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The timestamp tolerance in force.
    ///
    /// ```
    /// use webhook_verify::standard::{Secret, Webhook};
    ///
    /// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?);
    /// assert_eq!(webhook.tolerance().as_secs(), 300);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The `webhook-signature` value (`v1,<base64>`) for a message `id` sent at `timestamp`
    /// (Unix seconds) with `body`.
    ///
    /// ```
    /// use webhook_verify::standard::{Secret, Webhook};
    ///
    /// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?);
    /// assert!(webhook.sign("msg_1", 1_700_000_000, b"{}").starts_with("v1,"));
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let digest = self.digest(id, &timestamp, body);
        format!("v1,{}", STANDARD.encode(digest))
    }

    /// Verifies a delivery against the raw `body` at `now` (Unix seconds).
    ///
    /// Passes if any `v1` signature in the header matches. Errors:
    /// [`ErrorKind::MissingHeader`], [`ErrorKind::InvalidTimestamp`],
    /// [`ErrorKind::TimestampTooOld`], [`ErrorKind::TimestampTooNew`],
    /// [`ErrorKind::NoSupportedSignature`], [`ErrorKind::SignatureMismatch`].
    ///
    /// ```
    /// use webhook_verify::{standard::{Headers, Secret, Webhook}, ErrorKind};
    ///
    /// let webhook = Webhook::new(Secret::from_key_bytes(&[9u8; 32])?);
    /// let signature = webhook.sign("msg_1", 1_700_000_000, b"{}");
    /// let headers = Headers::new("msg_1", "1700000000", &signature);
    /// let err = webhook.verify(&headers, b"{}", 1_700_000_000 + 301).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimestampTooOld);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn verify(&self, headers: &Headers<'_>, body: &[u8], now: i64) -> Result<(), Error> {
        let id = headers.id.trim_ascii();
        let timestamp = headers.timestamp.trim_ascii();
        let signatures = headers.signature.trim_ascii();
        for (value, name) in [
            (id, ID_HEADER),
            (timestamp, TIMESTAMP_HEADER),
            (signatures, SIGNATURE_HEADER),
        ] {
            if value.is_empty() {
                return Err(Error::with(ErrorKind::MissingHeader, Detail::Name(name)));
            }
        }
        let sent_at: i64 = timestamp
            .parse()
            .map_err(|_| Error::new(ErrorKind::InvalidTimestamp))?;
        let limit = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        let age = now.saturating_sub(sent_at);
        if age > limit {
            return Err(Error::with(
                ErrorKind::TimestampTooOld,
                Detail::Seconds { by: age, limit },
            ));
        }
        if age < limit.saturating_neg() {
            return Err(Error::with(
                ErrorKind::TimestampTooNew,
                Detail::Seconds {
                    by: age.saturating_neg(),
                    limit,
                },
            ));
        }
        let expected = self.digest(id, timestamp, body);
        let mut saw_v1 = false;
        for entry in signatures.split_ascii_whitespace() {
            let Some(("v1", encoded)) = entry.split_once(',') else {
                continue;
            };
            saw_v1 = true;
            // 32 bytes are 44 base64 characters; anything longer cannot match.
            if encoded.len() > 44 {
                continue;
            }
            let mut given = [0u8; 48];
            match STANDARD_PAD_INDIFFERENT.decode_slice(encoded, &mut given) {
                Ok(32) if bool::from(expected.ct_eq(&given[..32])) => return Ok(()),
                _ => continue,
            }
        }
        if saw_v1 {
            Err(Error::new(ErrorKind::SignatureMismatch))
        } else {
            Err(Error::new(ErrorKind::NoSupportedSignature))
        }
    }

    fn digest(&self, id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        // The key is never empty (checked when the secret was made), so this cannot fail.
        hmac_sha256(
            &self.secret.key,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        )
        .unwrap_or([0u8; 32])
    }
}
