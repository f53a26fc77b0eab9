//! A person's profile as seen by the account (User Profile API, `GET /<IGSID>`).

use serde::{Deserialize, Serialize};

/// The profile fields of a person who messaged the account. Readable only after the person
/// messaged the account or clicked an ice breaker or menu item (else
/// [`ErrorKind::ConsentRequired`](crate::ErrorKind::ConsentRequired)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserProfile {
    /// The IGSID, when returned.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The name (may be null).
    #[serde(default)]
    pub name: Option<String>,
    /// The username.
    #[serde(default)]
    pub username: Option<String>,
    /// The profile picture URL (may be null; expires within days).
    #[serde(default)]
    pub profile_pic: Option<String>,
    /// Number of followers.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub follower_count: Option<u64>,
    /// Whether the person follows the account.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_user_follow_business: Option<bool>,
    /// Whether the account follows the person.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_business_follow_user: Option<bool>,
    /// Whether the person is verified.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_verified_user: Option<bool>,
}

/// The fields requested by default from the User Profile API.
pub const DEFAULT_PROFILE_FIELDS: &[&str] = &[
    "name",
    "username",
    "profile_pic",
    "follower_count",
    "is_user_follow_business",
    "is_business_follow_user",
];
