//! The typed request and response bodies of the Graph API endpoints, one file per resource.
//!
//! Every model ignores unknown fields, treats missing optional fields as `None`, accepts ids as
//! strings or numbers and every Meta timestamp format, and turns unknown enum values into an
//! `Unknown` variant that keeps the raw value.

pub mod account;
pub mod comment;
pub mod common;
pub mod conversation;
pub mod insights;
pub mod media;
pub mod mention;
pub mod message;
pub mod messenger_profile;
pub mod oauth;
pub mod profile;
pub mod publishing;

pub use account::{Account, AccountType};
pub use comment::{Comment, CommentAuthor, CommentMedia};
pub use common::{Created, Owner, Success};
pub use conversation::{Conversation, Message, Participant};
pub use insights::{Insight, InsightValue};
pub use media::{Media, MediaProductType, MediaType};
pub use mention::{MentionedComment, MentionedMedia};
pub use message::{
    AttachmentType, Button, ButtonTemplate, ButtonType, GenericElement, GenericTemplate,
    QuickReply, Reaction, Recipient, SendRequest, SendResponse, SenderAction,
};
pub use messenger_profile::{IceBreaker, IceBreakers, MenuItem, PersistentMenu};
pub use oauth::{
    AccessToken, DebugToken, LongLivedToken, RefreshCheck, ShortLivedToken, TokenLifetime,
};
pub use profile::UserProfile;
pub use publishing::{ContainerStatus, ContainerStatusCode, PublishingLimit};

/// Declares a string enum whose unknown values land in `Unknown(String)`. Matching is
/// case-insensitive; serialization writes the documented spelling.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version of the crate does not know, kept as received.
            Unknown(String),
        }

        impl $name {
            /// The wire spelling of the value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(raw) => raw,
                }
            }

            /// Reads a wire value; unknown values become `Unknown`.
            pub fn parse(text: &str) -> Self {
                $(if text.eq_ignore_ascii_case($text) {
                    return Self::$variant;
                })*
                Self::Unknown(text.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}
pub(crate) use string_enum;

/// Serde helpers shared by the models.
pub(crate) mod de {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    /// An optional timestamp in any Meta format; a value that is not a timestamp (such as a
    /// documentation placeholder) reads as `None` rather than failing the whole response.
    pub(crate) fn lenient_time<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(crate::time::parse_timestamp(&value))
    }

    /// A count that may arrive as a number or a numeric string; anything else reads as `None`.
    pub(crate) fn lenient_count<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// A boolean that may arrive as `true`/`false`, `"true"`/`"false"` or `1`/`0`.
    pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<bool>, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::Bool(b) => Some(b),
            serde_json::Value::String(s) => match s.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            serde_json::Value::Number(n) => n.as_u64().map(|n| n != 0),
            _ => None,
        })
    }

    /// An optional id held as a string or a number.
    pub(crate) fn opt_id_text<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }
}
