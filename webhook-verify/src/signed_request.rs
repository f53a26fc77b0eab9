//! Meta's `signed_request`, sent to the deauthorize and data-deletion callbacks.
//!
//! The value is `<base64url(signature)>.<base64url(payload JSON)>`, where the signature is
//! HMAC-SHA256 of the payload part *as transmitted* (still base64url-encoded), keyed with the app
//! secret. Padding is optional on both parts. The payload's `algorithm` must be `HMAC-SHA256`.
//!
//! ```
//! use webhook_verify::signed_request;
//!
//! // Meta's documented example of a signed_request, signed with the secret "secret".
//! let value = "vlXgu64BQGFSQrY0ZcJBZASMvYvTHu9GQ0YM9rjPSso.\
//!              eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsIjAiOiJwYXlsb2FkIn0";
//! let request = signed_request::decode(value, b"secret")?;
//! assert_eq!(request.algorithm, "HMAC-SHA256");
//! assert_eq!(request.extra["0"], "payload");
//! # Ok::<(), webhook_verify::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use base64::Engine as _;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::error::{Detail, Error, ErrorKind};
use crate::meta::{check_secrets, hmac_sha256};

/// The only algorithm Meta uses, compared case-insensitively.
pub const ALGORITHM: &str = "HMAC-SHA256";

/// The decoded, verified payload of a `signed_request`.
///
/// Known fields are typed; everything else is kept in [`extra`](Self::extra). `Debug` redacts
/// the `oauth_token`.
///
/// ```
/// use webhook_verify::signed_request::SignedRequest;
///
/// let request = SignedRequest::new("218471", 1_291_836_800);
/// let value = request.encode(b"app-secret")?;
/// let decoded = webhook_verify::signed_request::decode(&value, b"app-secret")?;
/// assert_eq!(decoded.user_id.as_deref(), Some("218471"));
/// assert_eq!(decoded.issued_at, Some(1_291_836_800));
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct SignedRequest {
    /// The app-scoped id of the user (sent as a string or a number; always a string here).
    pub user_id: Option<String>,
    /// The signing algorithm as sent; equal to `HMAC-SHA256` ignoring case.
    pub algorithm: String,
    /// When Meta issued the request, in seconds since the Unix epoch.
    pub issued_at: Option<i64>,
    /// When the request expires, in seconds since the Unix epoch (`0` means it does not).
    pub expires: Option<i64>,
    /// The user's access token, when Meta includes one. Redacted from `Debug`.
    pub oauth_token: Option<String>,
    /// Every other field of the payload, untouched.
    pub extra: Map<String, Value>,
}

impl SignedRequest {
    /// A payload for `user_id` issued at `issued_at` (Unix seconds), with algorithm
    /// `HMAC-SHA256`; mainly for tests and for simulating Meta's callbacks.
    ///
    /// ```
    /// use webhook_verify::signed_request::SignedRequest;
    ///
    /// let request = SignedRequest::new("42", 1_700_000_000);
    /// assert_eq!(request.algorithm, "HMAC-SHA256");
    /// assert_eq!(request.expires, None);
    /// ```
    pub fn new(user_id: impl Into<String>, issued_at: i64) -> Self {
        Self {
            user_id: Some(user_id.into()),
            algorithm: ALGORITHM.to_owned(),
            issued_at: Some(issued_at),
            expires: None,
            oauth_token: None,
            extra: Map::new(),
        }
    }

    /// The payload as a JSON object, known fields first.
    ///
    /// ```
    /// use webhook_verify::signed_request::SignedRequest;
    ///
    /// let json = SignedRequest::new("42", 7).to_json();
    /// assert_eq!(json["user_id"], "42");
    /// assert_eq!(json["issued_at"], 7);
    /// ```
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("algorithm".into(), Value::from(self.algorithm.as_str()));
        if let Some(user_id) = &self.user_id {
            map.insert("user_id".into(), Value::from(user_id.as_str()));
        }
        if let Some(issued_at) = self.issued_at {
            map.insert("issued_at".into(), Value::from(issued_at));
        }
        if let Some(expires) = self.expires {
            map.insert("expires".into(), Value::from(expires));
        }
        if let Some(token) = &self.oauth_token {
            map.insert("oauth_token".into(), Value::from(token.as_str()));
        }
        for (key, value) in &self.extra {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(map)
    }

    /// Encodes and signs this payload as a `signed_request` value, the way Meta does.
    ///
    /// ```
    /// use webhook_verify::signed_request::{self, SignedRequest};
    ///
    /// let value = SignedRequest::new("42", 7).encode(b"app-secret")?;
    /// assert_eq!(value.split('.').count(), 2);
    /// assert!(signed_request::decode(&value, b"app-secret").is_ok());
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn encode(&self, secret: &[u8]) -> Result<String, Error> {
        sign_json(self.to_json().to_string().as_bytes(), secret)
    }

    /// Checks that the request is at most `max_age` old at `now` (Unix seconds) and not past
    /// its `expires` time.
    ///
    /// Fails with [`ErrorKind::Expired`] when it is too old, issued more than `max_age` in the
    /// future, or expired; with [`ErrorKind::MalformedSignedRequest`] when it has no
    /// `issued_at` to check.
    ///
    /// ```
    /// use std::time::Duration;
    /// use webhook_verify::{signed_request::SignedRequest, ErrorKind};
    ///
    /// let request = SignedRequest::new("42", 1_000);
    /// request.ensure_fresh(Duration::from_secs(60), 1_030)?;
    /// let err = request.ensure_fresh(Duration::from_secs(60), 2_000).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Expired);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn ensure_fresh(&self, max_age: Duration, now: i64) -> Result<(), Error> {
        let limit = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        let issued_at = self.issued_at.ok_or_else(|| {
            Error::with(
                ErrorKind::MalformedSignedRequest,
                Detail::Text("it has no `issued_at`, so its age cannot be checked".into()),
            )
        })?;
        let age = now.saturating_sub(issued_at);
        if age > limit {
            return Err(Error::with(
                ErrorKind::Expired,
                Detail::Seconds { by: age, limit },
            ));
        }
        if age < limit.saturating_neg() {
            return Err(Error::with(
                ErrorKind::Expired,
                Detail::Name("was issued in the future; check the clock"),
            ));
        }
        match self.expires {
            Some(expires) if expires > 0 && now >= expires => Err(Error::with(
                ErrorKind::Expired,
                Detail::Name("is past its `expires` time"),
            )),
            _ => Ok(()),
        }
    }

    fn from_json(map: Map<String, Value>) -> Result<Self, Error> {
        let mut extra = map;
        let algorithm = match extra.remove("algorithm") {
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(malformed("`algorithm` is not a string")),
            None => return Err(malformed("the payload has no `algorithm`")),
        };
        if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
            let shown: String = algorithm.chars().take(40).collect();
            return Err(Error::with(
                ErrorKind::UnsupportedAlgorithm,
                Detail::Text(shown),
            ));
        }
        let user_id = match extra.remove("user_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(malformed("`user_id` is neither a string nor a number")),
        };
        let issued_at = timestamp(extra.remove("issued_at"), "issued_at")?;
        let expires = timestamp(extra.remove("expires"), "expires")?;
        let oauth_token = match extra.remove("oauth_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(token),
            Some(_) => return Err(malformed("`oauth_token` is not a string")),
        };
        Ok(Self {
            user_id,
            algorithm,
            issued_at,
            expires,
            oauth_token,
            extra,
        })
    }
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("user_id", &self.user_id)
            .field("algorithm", &self.algorithm)
            .field("issued_at", &self.issued_at)
            .field("expires", &self.expires)
            .field(
                "oauth_token",
                &self.oauth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("extra", &self.extra)
            .finish()
    }
}

/// Verifies a `signed_request` with the app secret and returns its payload.
///
/// The signature is checked (in constant time) before the payload is parsed. Errors:
/// [`ErrorKind::EmptySecret`], [`ErrorKind::MalformedSignedRequest`],
/// [`ErrorKind::SignatureMismatch`], [`ErrorKind::UnsupportedAlgorithm`]. Check the age with
/// [`SignedRequest::ensure_fresh`].
///
/// ```
/// use webhook_verify::{signed_request, ErrorKind};
///
/// let value = "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.\
///              eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ";
/// let request = signed_request::decode(value, b"key")?;
/// assert_eq!(request.user_id.as_deref(), Some("0"));
/// assert_eq!(request.issued_at, Some(1_624_244_156));
///
/// let err = signed_request::decode(value, b"other key").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn decode(signed_request: &str, secret: &[u8]) -> Result<SignedRequest, Error> {
    decode_with_any(signed_request, &[secret]).map(|(request, _)| request)
}

/// Like [`decode`], trying several app secrets (rotation); also returns the index of the secret
/// that matched.
///
/// ```
/// use webhook_verify::signed_request::{self, SignedRequest};
///
/// let value = SignedRequest::new("42", 7).encode(b"new")?;
/// let (request, index) = signed_request::decode_with_any(&value, &["old", "new"])?;
/// assert_eq!((request.user_id.as_deref(), index), (Some("42"), 1));
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn decode_with_any<S: AsRef<[u8]>>(
    signed_request: &str,
    secrets: &[S],
) -> Result<(SignedRequest, usize), Error> {
    check_secrets(secrets)?;
    let value = signed_request.trim_ascii();
    let (sig_part, payload_part) = value
        .split_once('.')
        .ok_or_else(|| malformed("it has no `.` between the signature and the payload"))?;
    if sig_part.is_empty() || payload_part.is_empty() {
        return Err(malformed("the signature or the payload part is empty"));
    }
    // 32 bytes are 43 base64 characters, 44 with padding.
    if sig_part.len() > 44 {
        return Err(malformed("the signature part is longer than 32 bytes"));
    }
    let mut sig = [0u8; 64];
    let sig_len = URL_SAFE_NO_PAD_INDIFFERENT
        .decode_slice(sig_part, &mut sig)
        .map_err(|_| malformed("the signature part is not base64url"))?;
    if sig_len != 32 {
        return Err(malformed("the signature part is not 32 bytes"));
    }
    let mut matched = None;
    for (index, secret) in secrets.iter().enumerate() {
        let expected = hmac_sha256(secret.as_ref(), &[payload_part.as_bytes()])?;
        if bool::from(expected.ct_eq(&sig[..32])) {
            matched = Some(index);
            break;
        }
    }
    let index = matched
        .ok_or_else(|| Error::with(ErrorKind::SignatureMismatch, Detail::Secrets(secrets.len())))?;
    let json = URL_SAFE_NO_PAD_INDIFFERENT
        .decode(payload_part)
        .map_err(|_| malformed("the payload part is not base64url"))?;
    let map: Map<String, Value> = serde_json::from_slice(&json)
        .map_err(|err| Error::with(ErrorKind::MalformedSignedRequest, Detail::Json(err)))?;
    Ok((SignedRequest::from_json(map)?, index))
}

/// Signs raw payload JSON as a `signed_request` value (no padding), the way Meta does.
///
/// No check is made that `json` is valid; use it to simulate callbacks in tests.
///
/// ```
/// use webhook_verify::{signed_request, ErrorKind};
///
/// let value = signed_request::sign_json(br#"{"algorithm":"HMAC-SHA1"}"#, b"s")?;
/// let err = signed_request::decode(&value, b"s").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::UnsupportedAlgorithm);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn sign_json(json: &[u8], secret: &[u8]) -> Result<String, Error> {
    let payload = URL_SAFE_NO_PAD.encode(json);
    let sig = hmac_sha256(secret, &[payload.as_bytes()])?;
    Ok(format!("{}.{payload}", URL_SAFE_NO_PAD.encode(sig)))
}

fn malformed(what: &str) -> Error {
    Error::with(ErrorKind::MalformedSignedRequest, Detail::Text(what.into()))
}

/// A Meta timestamp: a number or a numeric string, seconds or milliseconds.
fn timestamp(value: Option<Value>, name: &str) -> Result<Option<i64>, Error> {
    let raw = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    let raw = raw.ok_or_else(|| {
        malformed(&format!(
            "`{name}` is not a number of seconds since the epoch"
        ))
    })?;
    // Seconds past the year 5138 are taken as milliseconds; the range keeps the conversion
    // idempotent (a converted value is never converted again).
    Ok(Some(
        if (100_000_000_000..100_000_000_000_000).contains(&raw.unsigned_abs()) {
            raw / 1000
        } else {
            raw
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_numbers_strings_and_milliseconds() {
        assert_eq!(timestamp(Some(Value::from(5)), "t").unwrap(), Some(5));
        assert_eq!(timestamp(Some(Value::from(" 17 ")), "t").unwrap(), Some(17));
        assert_eq!(
            timestamp(Some(Value::from(1_624_244_156_123_i64)), "t").unwrap(),
            Some(1_624_244_156)
        );
        assert_eq!(timestamp(Some(Value::Null), "t").unwrap(), None);
        assert_eq!(
            timestamp(Some(Value::from(i64::MIN)), "t").unwrap(),
            Some(i64::MIN)
        );
        assert_eq!(
            timestamp(Some(Value::from(1e300)), "t").unwrap(),
            Some(i64::MAX)
        );
        let err = timestamp(Some(Value::from("soon")), "t").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedSignedRequest);
    }
}
