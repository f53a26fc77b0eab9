//! [`Secret`]: a value that never shows itself.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// What a [`Secret`] prints and serializes as, in place of its value.
pub const REDACTED: &str = "[redacted]";

/// A secret value (an access token, a key). `Debug`, `Display` and `Serialize` show
/// [`REDACTED`], never the value; the memory is zeroed when the secret is dropped. Read the value
/// only where it is needed, with [`expose`](Secret::expose). It has no `==`: compare secrets
/// in constant time where that matters, after exposing them.
///
/// ```
/// use privacy_kit::Secret;
///
/// let token = Secret::new(String::from("IGQVJ-very-secret"));
/// assert_eq!(format!("{token:?}"), "Secret([redacted])");
/// assert_eq!(token.to_string(), "[redacted]");
/// assert_eq!(serde_json::to_string(&token).unwrap(), "\"[redacted]\"");
/// assert_eq!(token.expose(), "IGQVJ-very-secret");
/// ```
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize> {
    value: T,
}

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self { value }
    }

    /// The plain value. Every call site is a place where the secret leaves its wrapper: keep them
    /// few.
    pub fn expose(&self) -> &T {
        &self.value
    }

    pub(crate) fn expose_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Secrets can be read from configuration; they still never serialize back.
impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let s = Secret::new(String::from("tok-123456"));
        for shown in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{s}"),
            serde_json::to_string(&s).unwrap(),
            serde_json::to_string(&vec![s.clone()]).unwrap(),
        ] {
            assert!(!shown.contains("tok-123456"), "{shown}");
            assert!(shown.contains(REDACTED));
        }
        assert_eq!(s.expose(), "tok-123456");
    }

    #[test]
    fn deserializes_from_plain_value() {
        let s: Secret<String> = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(s.expose(), "abc");
        let k: Secret<[u8; 2]> = serde_json::from_str("[1,2]").unwrap();
        assert_eq!(k.expose(), &[1, 2]);
    }
}
