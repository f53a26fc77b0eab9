//! The professional account behind the token: `GET /me`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::id::IgUserId;
use crate::model::string_enum;

string_enum! {
    /// The kind of professional account.
    AccountType {
        /// A business account.
        Business => "BUSINESS",
        /// A creator account.
        MediaCreator => "MEDIA_CREATOR",
    }
}

/// The fields of `GET /me` (or `/<IG_ID>`). Only the requested fields are present.
///
/// `id` is the **app-scoped** id; `user_id` is the professional account id (`IG_ID`), the value
/// that appears as `entry.id` in webhook notifications. Store `user_id` to route webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Account {
    /// The app-scoped id of the account.
    pub id: Option<String>,
    /// The professional account id (`IG_ID`, = webhook `entry.id`).
    pub user_id: Option<IgUserId>,
    /// The username.
    pub username: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// Business or creator.
    pub account_type: Option<AccountType>,
    /// The profile picture URL.
    pub profile_picture_url: Option<String>,
    /// Number of followers.
    pub followers_count: Option<u64>,
    /// Number of accounts followed.
    pub follows_count: Option<u64>,
    /// Number of media objects.
    pub media_count: Option<u64>,
    /// The biography text.
    pub biography: Option<String>,
    /// The website.
    pub website: Option<String>,
}

#[derive(Deserialize)]
struct AccountFields {
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    id: Option<String>,
    #[serde(default)]
    user_id: Option<IgUserId>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    account_type: Option<AccountType>,
    #[serde(default)]
    profile_picture_url: Option<String>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    followers_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    follows_count: Option<u64>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    media_count: Option<u64>,
    #[serde(default)]
    biography: Option<String>,
    #[serde(default)]
    website: Option<String>,
}

impl From<AccountFields> for Account {
    fn from(f: AccountFields) -> Self {
        Self {
            id: f.id,
            user_id: f.user_id,
            username: f.username,
            name: f.name,
            account_type: f.account_type,
            profile_picture_url: f.profile_picture_url,
            followers_count: f.followers_count,
            follows_count: f.follows_count,
            media_count: f.media_count,
            biography: f.biography,
            website: f.website,
        }
    }
}

impl<'de> Deserialize<'de> for Account {
    /// Accepts the flat object and the documented `{"data": [{...}]}` wrapper.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let inner = match value.get("data") {
            Some(serde_json::Value::Array(items)) => items.first().cloned().unwrap_or_default(),
            _ => value,
        };
        let inner = if inner.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            inner
        };
        AccountFields::deserialize(inner)
            .map(Account::from)
            .map_err(serde::de::Error::custom)
    }
}
