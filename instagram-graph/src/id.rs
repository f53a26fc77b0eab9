//! Identifier newtypes.
//!
//! Meta documents every id as a string, but real payloads also carry them as JSON numbers
//! (`"id": 12345654332`). Each type here deserializes from a JSON string or an integer without
//! losing a digit, always serializes back as a JSON string, and compares, hashes and orders like
//! the text it holds.
//!
//! ```
//! use instagram_graph::id::Igsid;
//!
//! let from_number: Igsid = serde_json::from_str("987654321432").unwrap();
//! let from_string: Igsid = serde_json::from_str("\"987654321432\"").unwrap();
//! assert_eq!(from_number, from_string);
//! assert_eq!(serde_json::to_string(&from_number).unwrap(), "\"987654321432\"");
//! ```

use std::borrow::Borrow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The largest integer an `f64` holds exactly (2^53). A JSON number beyond the 64-bit integer
/// range reaches us as a float; above this bound its digits are already lost, so we refuse it.
const F64_EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A visitor that reads an id as text from a JSON string or integer.
struct IdVisitor(&'static str);

impl<'de> Visitor<'de> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a string or an integer", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= F64_EXACT_LIMIT {
            // Exact: the value is an integer within the range an f64 holds without rounding.
            Ok(format!("{v:.0}"))
        } else {
            Err(E::custom(format_args!(
                "{} is the number {v}, which is not an integer that can be kept exactly; \
                 ids must be strings or integers",
                self.0
            )))
        }
    }
}

/// Deserializes an id held as a JSON string or integer into its decimal text.
///
/// Useful for `#[serde(deserialize_with = "...")]` on plain `String` fields.
pub fn deserialize_id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(IdVisitor("an id"))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id given as text.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(IdVisitor($what)).map(Self)
            }
        }
    };
}

id_type!(
    /// The id of an Instagram professional account (`IG_ID`), as used by `/<IG_ID>` and as
    /// `entry.id` of webhook notifications.
    IgUserId,
    "an Instagram account id"
);
id_type!(
    /// An Instagram-scoped user id (IGSID): a person as seen by one professional account. It is
    /// not the person's Instagram user id; the Send API and the User Profile API take this one.
    Igsid,
    "an Instagram-scoped user id"
);
id_type!(
    /// The id of a Facebook Page (Facebook Login flavour, `object: "page"` notifications).
    PageId,
    "a Page id"
);
id_type!(
    /// The id of a media object (post, reel, story).
    MediaId,
    "a media id"
);
id_type!(
    /// The id of a comment.
    CommentId,
    "a comment id"
);
id_type!(
    /// The id of a direct message (`mid`).
    Mid,
    "a message id"
);
id_type!(
    /// The id of a conversation (Conversations API).
    ConversationId,
    "a conversation id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strings_and_integers_without_losing_digits() {
        let big: MediaId = serde_json::from_str("17841405726653026").unwrap();
        assert_eq!(big.as_str(), "17841405726653026");
        let max: MediaId = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(max.as_str(), "18446744073709551615");
        let negative: PageId = serde_json::from_str("-42").unwrap();
        assert_eq!(negative, "-42");
        let text: Mid = serde_json::from_str(r#""aWdfZAG1faXRlbToxOklH""#).unwrap();
        assert_eq!(text.to_string(), "aWdfZAG1faXRlbToxOklH");
    }

    #[test]
    fn refuses_numbers_whose_digits_are_lost() {
        assert!(serde_json::from_str::<Igsid>("1.5").is_err());
        assert!(serde_json::from_str::<Igsid>("123456789012345678901234567890").is_err());
        assert!(serde_json::from_str::<Igsid>("true").is_err());
        assert!(serde_json::from_str::<Igsid>("{}").is_err());
        // A float that is an exact integer is fine.
        let exact: Igsid = serde_json::from_str("1e3").unwrap();
        assert_eq!(exact, "1000");
    }

    #[test]
    fn serializes_as_a_string_and_borrows_as_str() {
        let id = CommentId::from("17887498072083520");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""17887498072083520""#
        );
        let mut set = std::collections::HashSet::new();
        set.insert(id.clone());
        assert!(set.contains("17887498072083520"));
        assert_eq!(format!("{id:?}"), r#"CommentId("17887498072083520")"#);
    }
}
