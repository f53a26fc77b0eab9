//! Meta's webhook signatures (`X-Hub-Signature-256`) and the subscription handshake.
//!
//! Meta signs every webhook delivery with HMAC-SHA256 of the raw request body, keyed with the
//! app secret, and sends `X-Hub-Signature-256: sha256=<hex>`. Verify the raw bytes exactly as
//! received, before parsing any JSON.
//!
//! ```
//! use webhook_verify::meta;
//!
//! let body = br#"{"object":"instagram","entry":[]}"#;
//! let header = meta::sign(b"app-secret", body)?.to_string();
//! assert!(header.starts_with("sha256="));
//!
//! meta::verify(b"app-secret", body, &header)?;
//! # Ok::<(), webhook_verify::Error>(())
//! ```
//!
//! The verify path allocates nothing: the hex digest is decoded into a stack array and compared
//! in constant time with [`subtle`].

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Detail, Error, ErrorKind};

/// The name of the header that carries the SHA-256 signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The name of the legacy header that carries the SHA-1 signature.
pub const LEGACY_SIGNATURE_HEADER: &str = "x-hub-signature";

const SHA256_PREFIX: &str = "sha256=";

/// A parsed `X-Hub-Signature-256` value: the 32-byte HMAC-SHA256 digest.
///
/// [`Display`](fmt::Display) writes it back as `sha256=<lower-case hex>`, the header value.
///
/// ```
/// use webhook_verify::meta::Signature;
///
/// let sig = Signature::parse(
///     "  SHA256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17 \r\n",
/// )?;
/// assert_eq!(
///     sig.to_string(),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Signature {
    digest: [u8; 32],
}

/// Equality is constant time, like every comparison of digests in this crate.
impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.digest.ct_eq(&other.digest))
    }
}

impl Eq for Signature {}

impl Signature {
    /// Parses a header value `sha256=<64 hex digits>`.
    ///
    /// Upper- and lower-case hex and the prefix in either case are accepted; surrounding ASCII
    /// whitespace is ignored. Errors: [`ErrorKind::MissingHeader`] for a blank value,
    /// [`ErrorKind::MissingPrefix`], [`ErrorKind::WrongLength`], [`ErrorKind::NotHex`].
    ///
    /// ```
    /// use webhook_verify::{meta::Signature, ErrorKind};
    ///
    /// let err = Signature::parse("sha256=zz").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WrongLength);
    /// ```
    pub fn parse(header: impl AsRef<[u8]>) -> Result<Self, Error> {
        parse_prefixed_hex::<32>(header.as_ref(), SHA256_PREFIX).map(|digest| Self { digest })
    }

    /// Computes the signature of `body` with `secret`.
    ///
    /// Fails with [`ErrorKind::EmptySecret`] when the secret is empty.
    ///
    /// ```
    /// use webhook_verify::meta::Signature;
    ///
    /// let sig = Signature::compute(b"key", b"value")?;
    /// assert_eq!(
    ///     sig.to_string(),
    ///     "sha256=90fbfcf15e74a36b89dbdb2a721d9aecffdfdddc5c83e27f7592594f71932481"
    /// );
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn compute(secret: &[u8], body: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            digest: hmac_sha256(secret, &[body])?,
        })
    }

    /// The raw 32-byte digest.
    ///
    /// ```
    /// use webhook_verify::meta::Signature;
    ///
    /// let sig = Signature::compute(b"key", b"value")?;
    /// assert_eq!(sig.as_bytes()[0], 0x90);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Checks in constant time whether `body` signed with `secret` gives this signature.
    ///
    /// ```
    /// use webhook_verify::meta::Signature;
    ///
    /// let sig = Signature::compute(b"key", b"value")?;
    /// assert!(sig.matches(b"key", b"value")?);
    /// assert!(!sig.matches(b"key", b"other value")?);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn matches(&self, secret: &[u8], body: &[u8]) -> Result<bool, Error> {
        let mut mac = keyed_hmac_sha256(secret)?;
        mac.update(body);
        // `verify_slice` finalizes and compares in constant time (`subtle`).
        Ok(mac.verify_slice(&self.digest).is_ok())
    }
}

impl Signature {
    /// Returns the index of the first of `secrets` under which `body` has this signature.
    ///
    /// Fails with [`ErrorKind::EmptySecret`] if `secrets` is empty or holds an empty secret,
    /// and with [`ErrorKind::SignatureMismatch`] if none matches.
    ///
    /// ```
    /// use webhook_verify::meta::Signature;
    ///
    /// let sig = Signature::compute(b"second", b"body")?;
    /// assert_eq!(sig.matching_secret(&["first", "second"], b"body")?, 1);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn matching_secret<S: AsRef<[u8]>>(
        &self,
        secrets: &[S],
        body: &[u8],
    ) -> Result<usize, Error> {
        check_secrets(secrets)?;
        for (index, secret) in secrets.iter().enumerate() {
            if self.matches(secret.as_ref(), body)? {
                return Ok(index);
            }
        }
        Err(Error::with(
            ErrorKind::SignatureMismatch,
            Detail::Secrets(secrets.len()),
        ))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHA256_PREFIX)?;
        write_hex(f, &self.digest)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// Signs `body` with `secret`; `to_string()` of the result is the `X-Hub-Signature-256` value.
///
/// Fails with [`ErrorKind::EmptySecret`] when the secret is empty.
///
/// ```
/// use webhook_verify::meta;
///
/// let header = meta::sign(b"It's a Secret to Everybody", b"Hello, World!")?.to_string();
/// assert_eq!(
///     header,
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn sign(secret: &[u8], body: &[u8]) -> Result<Signature, Error> {
    Signature::compute(secret, body)
}

/// Verifies an `X-Hub-Signature-256` header value against the raw `body` and the app `secret`.
///
/// Constant-time, allocation-free. See [`Signature::parse`] for the accepted header forms.
///
/// ```
/// use webhook_verify::{meta, ErrorKind};
///
/// let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
/// meta::verify(b"It's a Secret to Everybody", b"Hello, World!", header)?;
///
/// let err = meta::verify(b"It's a Secret to Everybody", b"Hello, World?", header).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn verify(secret: &[u8], body: &[u8], header: impl AsRef<[u8]>) -> Result<(), Error> {
    verify_with_any(&[secret], body, header).map(|_| ())
}

/// Verifies against several secrets at once (secret rotation) and returns the index of the
/// secret that matched.
///
/// Passes if any secret matches. Fails with [`ErrorKind::EmptySecret`] if `secrets` is empty or
/// holds an empty secret, so a misconfiguration never passes silently.
///
/// ```
/// use webhook_verify::meta;
///
/// let body = b"{}";
/// let header = meta::sign(b"new-secret", body)?.to_string();
/// let matched = meta::verify_with_any(&["old-secret", "new-secret"], body, &header)?;
/// assert_eq!(matched, 1);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
pub fn verify_with_any<S: AsRef<[u8]>>(
    secrets: &[S],
    body: &[u8],
    header: impl AsRef<[u8]>,
) -> Result<usize, Error> {
    check_secrets(secrets)?;
    Signature::parse(header)?.matching_secret(secrets, body)
}

/// Legacy `X-Hub-Signature: sha1=<hex>` verification (cargo feature `sha1`).
///
/// Prefer [`verify`]; Meta sends both headers and SHA-1 is kept only for old integrations.
///
/// ```
/// use webhook_verify::meta::sha1;
///
/// let header = "sha1=57443a4c052350a44638835d64fd66822f813319";
/// sha1::verify(b"key", b"value", header)?;
/// assert_eq!(sha1::sign(b"key", b"value")?, header);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[cfg(feature = "sha1")]
pub mod sha1 {
    use ::sha1::Sha1;
    use hmac::{Hmac, KeyInit, Mac};
    use subtle::ConstantTimeEq;

    use super::{check_secrets, parse_prefixed_hex, HexDigest};
    use crate::error::{Detail, Error, ErrorKind};

    const SHA1_PREFIX: &str = "sha1=";

    fn digest(secret: &[u8], body: &[u8]) -> Result<[u8; 20], Error> {
        if secret.is_empty() {
            return Err(Error::new(ErrorKind::EmptySecret));
        }
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret)
            .map_err(|_| Error::new(ErrorKind::EmptySecret))?;
        mac.update(body);
        let mut out = [0u8; 20];
        out.copy_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }

    /// Computes the `X-Hub-Signature` header value `sha1=<hex>` of `body`.
    ///
    /// ```
    /// use webhook_verify::meta::sha1;
    ///
    /// assert!(sha1::sign(b"key", b"value")?.starts_with("sha1="));
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn sign(secret: &[u8], body: &[u8]) -> Result<String, Error> {
        Ok(format!(
            "{SHA1_PREFIX}{}",
            HexDigest(&digest(secret, body)?)
        ))
    }

    /// Verifies an `X-Hub-Signature` value against the raw body and the app secret.
    ///
    /// ```
    /// use webhook_verify::{meta::sha1, ErrorKind};
    ///
    /// let err = sha1::verify(b"key", b"value", "sha256=00").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::MissingPrefix);
    /// ```
    pub fn verify(secret: &[u8], body: &[u8], header: impl AsRef<[u8]>) -> Result<(), Error> {
        verify_with_any(&[secret], body, header).map(|_| ())
    }

    /// Verifies against several secrets and returns the index of the one that matched.
    ///
    /// ```
    /// use webhook_verify::meta::sha1;
    ///
    /// let header = sha1::sign(b"b", b"body")?;
    /// assert_eq!(sha1::verify_with_any(&["a", "b"], b"body", &header)?, 1);
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn verify_with_any<S: AsRef<[u8]>>(
        secrets: &[S],
        body: &[u8],
        header: impl AsRef<[u8]>,
    ) -> Result<usize, Error> {
        check_secrets(secrets)?;
        let given = parse_prefixed_hex::<20>(header.as_ref(), SHA1_PREFIX)?;
        for (index, secret) in secrets.iter().enumerate() {
            if bool::from(digest(secret.as_ref(), body)?.ct_eq(&given)) {
                return Ok(index);
            }
        }
        Err(Error::with(
            ErrorKind::SignatureMismatch,
            Detail::Secrets(secrets.len()),
        ))
    }
}

/// HMAC-SHA256 of the concatenated `parts`, keyed with `secret`.
pub(crate) fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], Error> {
    let mut mac = keyed_hmac_sha256(secret)?;
    for part in parts {
        mac.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// An HMAC-SHA256 keyed with `secret`; refuses an empty secret.
#[inline]
fn keyed_hmac_sha256(secret: &[u8]) -> Result<Hmac<Sha256>, Error> {
    if secret.is_empty() {
        return Err(Error::new(ErrorKind::EmptySecret));
    }
    // HMAC accepts keys of any length; the error branch is unreachable in practice.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|_| Error::new(ErrorKind::EmptySecret))
}

pub(crate) fn check_secrets<S: AsRef<[u8]>>(secrets: &[S]) -> Result<(), Error> {
    if secrets.is_empty() || secrets.iter().any(|s| s.as_ref().is_empty()) {
        return Err(Error::new(ErrorKind::EmptySecret));
    }
    Ok(())
}

/// Parses `<prefix><2N hex digits>` (prefix case-insensitive, outer whitespace ignored) into a
/// stack array.
pub(crate) fn parse_prefixed_hex<const N: usize>(
    header: &[u8],
    prefix: &'static str,
) -> Result<[u8; N], Error> {
    let value = header.trim_ascii();
    if value.is_empty() {
        return Err(Error::new(ErrorKind::MissingHeader));
    }
    let prefix_bytes = prefix.as_bytes();
    let hex = match value.get(..prefix_bytes.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix_bytes) => &value[prefix_bytes.len()..],
        _ => return Err(Error::with(ErrorKind::MissingPrefix, Detail::Name(prefix))),
    };
    if hex.len() != 2 * N {
        return Err(Error::with(
            ErrorKind::WrongLength,
            Detail::Length {
                expected: 2 * N,
                found: hex.len(),
            },
        ));
    }
    // Branch-free, so the compiler can vectorise it: each character becomes its nibble, and
    // `invalid` collects whether any was not a hex digit.
    let mut out = [0u8; N];
    let mut invalid = false;
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, hi_ok) = nibble(pair[0]);
        let (lo, lo_ok) = nibble(pair[1]);
        invalid |= !(hi_ok & lo_ok);
        *byte = (hi << 4) | lo;
    }
    if invalid {
        let at = hex
            .iter()
            .position(|&c| hex_value(c).is_none())
            .unwrap_or(0);
        return Err(Error::with(ErrorKind::NotHex, Detail::Position(at)));
    }
    Ok(out)
}

/// The value of a hex digit and whether `c` is one (the value is garbage when it is not).
#[inline(always)]
fn nibble(c: u8) -> (u8, bool) {
    let digit = c.wrapping_sub(b'0');
    let letter = (c | 0x20).wrapping_sub(b'a');
    let is_digit = digit < 10;
    let is_letter = letter < 6;
    let value = if is_digit {
        digit
    } else {
        letter.wrapping_add(10)
    };
    (value & 0x0f, is_digit | is_letter)
}

const fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for byte in bytes {
        write!(f, "{byte:02x}")?;
    }
    Ok(())
}

/// Lower-case hex display of a digest.
#[cfg(feature = "sha1")]
pub(crate) struct HexDigest<'a>(pub(crate) &'a [u8]);

#[cfg(feature = "sha1")]
impl fmt::Display for HexDigest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.0)
    }
}

/// A subscription handshake: the `GET` Meta sends when you register a webhook callback URL.
///
/// Meta calls `GET <callback>?hub.mode=subscribe&hub.challenge=<int>&hub.verify_token=<token>`;
/// answer `200` with the challenge as the body if the token is yours, `403` otherwise.
///
/// ```
/// use webhook_verify::{meta::Subscription, ErrorKind};
///
/// let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my%20token";
/// let handshake = Subscription::from_query(query);
/// assert_eq!(handshake.verify("my token")?, "1158201444");
///
/// let err = handshake.verify("another token").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::HandshakeTokenMismatch);
/// # Ok::<(), webhook_verify::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription<'a> {
    /// `hub.mode`; Meta always sends `subscribe`.
    pub mode: Option<Cow<'a, str>>,
    /// `hub.verify_token`: the token you entered in the App Dashboard.
    pub verify_token: Option<Cow<'a, str>>,
    /// `hub.challenge`: the value to echo back.
    pub challenge: Option<Cow<'a, str>>,
}

/// The longest `hub.challenge` echoed back (Meta sends a short integer).
const MAX_CHALLENGE_LEN: usize = 256;

impl<'a> Subscription<'a> {
    /// A handshake from already-decoded query parameters.
    ///
    /// ```
    /// use webhook_verify::meta::Subscription;
    ///
    /// let handshake = Subscription::new(Some("subscribe"), Some("token"), Some("42"));
    /// assert_eq!(handshake.verify("token")?, "42");
    /// # Ok::<(), webhook_verify::Error>(())
    /// ```
    pub fn new(
        mode: Option<&'a str>,
        verify_token: Option<&'a str>,
        challenge: Option<&'a str>,
    ) -> Self {
        Self {
            mode: mode.map(Cow::Borrowed),
            verify_token: verify_token.map(Cow::Borrowed),
            challenge: challenge.map(Cow::Borrowed),
        }
    }

    /// A handshake from a raw query string (with or without the leading `?`).
    ///
    /// Percent-escapes and `+` are decoded; unknown parameters are ignored; the first occurrence
    /// of a repeated parameter wins.
    ///
    /// ```
    /// use webhook_verify::meta::Subscription;
    ///
    /// let handshake = Subscription::from_query("?hub.verify_token=a+b&hub.mode=subscribe&hub.challenge=7");
    /// assert_eq!(handshake.verify_token.as_deref(), Some("a b"));
    /// ```
    pub fn from_query(query: &'a str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut out = Self::default();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match percent_decode(name).as_ref() {
                "hub.mode" => &mut out.mode,
                "hub.verify_token" => &mut out.verify_token,
                "hub.challenge" => &mut out.challenge,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode(value));
            }
        }
        out
    }

    /// Checks the handshake against your verify token and returns the challenge to echo.
    ///
    /// The token is compared in constant time. Refusals: [`ErrorKind::HandshakeMissingParameter`],
    /// [`ErrorKind::HandshakeWrongMode`], [`ErrorKind::HandshakeTokenMismatch`],
    /// [`ErrorKind::HandshakeInvalidChallenge`] (empty, over 256 bytes, or characters other than
    /// ASCII letters, digits, `-`, `_`, `.`, `~`), and [`ErrorKind::EmptySecret`] when
    /// `expected_token` is empty.
    ///
    /// ```
    /// use webhook_verify::{meta::Subscription, ErrorKind};
    ///
    /// let handshake = Subscription::new(Some("unsubscribe"), Some("t"), Some("1"));
    /// assert_eq!(handshake.verify("t").unwrap_err().kind(), ErrorKind::HandshakeWrongMode);
    /// ```
    pub fn verify(&self, expected_token: &str) -> Result<&str, Error> {
        if expected_token.is_empty() {
            return Err(Error::new(ErrorKind::EmptySecret));
        }
        let missing = |name| Error::with(ErrorKind::HandshakeMissingParameter, Detail::Name(name));
        let mode = self.mode.as_deref().ok_or(missing("hub.mode"))?;
        let token = self
            .verify_token
            .as_deref()
            .ok_or(missing("hub.verify_token"))?;
        let challenge = self.challenge.as_deref().ok_or(missing("hub.challenge"))?;
        if mode != "subscribe" {
            return Err(Error::new(ErrorKind::HandshakeWrongMode));
        }
        if !bool::from(token.as_bytes().ct_eq(expected_token.as_bytes())) {
            return Err(Error::new(ErrorKind::HandshakeTokenMismatch));
        }
        let safe = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        if challenge.is_empty()
            || challenge.len() > MAX_CHALLENGE_LEN
            || !challenge.bytes().all(safe)
        {
            return Err(Error::new(ErrorKind::HandshakeInvalidChallenge));
        }
        Ok(challenge)
    }
}

impl fmt::Debug for Subscription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("mode", &self.mode)
            .field(
                "verify_token",
                &self.verify_token.as_ref().map(|_| "<redacted>"),
            )
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte; invalid
/// escapes are kept as written and invalid UTF-8 is replaced.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|pair| Some((hex_value(pair[0])? << 4) | hex_value(pair[1])?));
                match decoded {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_plus_and_broken_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A4"), "ä");
        assert!(matches!(percent_decode("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn hex_parser_reports_the_position_of_the_bad_digit() {
        let err = parse_prefixed_hex::<2>(b"sha256=0g00", SHA256_PREFIX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotHex);
        assert!(err.to_string().contains("position 1"), "{err}");
    }

    #[test]
    fn hex_parser_rejects_non_ascii_without_panicking() {
        let err = parse_prefixed_hex::<2>("sha256=ää".as_bytes(), SHA256_PREFIX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotHex);
        let err = parse_prefixed_hex::<2>("shä".as_bytes(), SHA256_PREFIX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingPrefix);
    }
}
