//! Access tokens and the bodies of the OAuth endpoints.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// An access token. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret value, for sending it or storing it encrypted. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for AccessToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// The short-lived token (1 hour) returned by the code exchange.
///
/// Accepts the flat shape and the documented `{"data": [{...}]}` wrapper, with `user_id` as a
/// string or a number. `user_id` here is the **app-scoped** id, not the `IG_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShortLivedToken {
    /// The token.
    pub access_token: AccessToken,
    /// The app-scoped user id.
    pub user_id: Option<String>,
    /// The granted permissions.
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
struct ShortLivedFields {
    access_token: AccessToken,
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    user_id: Option<String>,
    #[serde(default)]
    permissions: Option<serde_json::Value>,
}

fn permission_list(value: Option<serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl<'de> Deserialize<'de> for ShortLivedToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let inner = match value.get("data") {
            Some(serde_json::Value::Array(items)) => items
                .first()
                .cloned()
                .ok_or_else(|| serde::de::Error::custom("`data` is an empty array"))?,
            _ => value,
        };
        let fields = ShortLivedFields::deserialize(inner).map_err(serde::de::Error::custom)?;
        Ok(Self {
            access_token: fields.access_token,
            user_id: fields.user_id,
            permissions: permission_list(fields.permissions),
        })
    }
}

/// A long-lived token (about 60 days), from the exchange or a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct LongLivedToken {
    /// The token.
    pub access_token: AccessToken,
    /// `bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds until expiry.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub expires_in: Option<u64>,
    /// The granted permissions, when the response lists them.
    #[serde(default, deserialize_with = "permissions_field")]
    pub permissions: Vec<String>,
}

fn permissions_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(permission_list(Option::deserialize(deserializer)?))
}

impl LongLivedToken {
    /// When the token expires, given when it was received. `None` when Meta gave no `expires_in`.
    pub fn expires_at(&self, received_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = i64::try_from(self.expires_in?).ok()?;
        received_at.checked_add_signed(Duration::try_seconds(secs)?)
    }

    /// The lifetime of this token, given when it was received.
    pub fn lifetime(&self, received_at: DateTime<Utc>) -> TokenLifetime {
        TokenLifetime {
            issued_at: received_at,
            expires_at: self
                .expires_at(received_at)
                .unwrap_or(received_at + TokenLifetime::LONG_LIVED),
        }
    }
}

/// When a long-lived Instagram token was issued and when it expires, with the refresh rules:
/// a token can be refreshed once it is at least 24 hours old and while it has not expired; a
/// refresh gives 60 more days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenLifetime {
    /// When the token was issued (or last refreshed).
    pub issued_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Whether a token can be refreshed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshCheck {
    /// It can be refreshed now.
    Ready,
    /// It is younger than 24 hours; try again at the given time.
    TooYoung {
        /// The earliest time a refresh is accepted.
        not_before: DateTime<Utc>,
    },
    /// It has expired; the user must log in again.
    Expired,
}

impl TokenLifetime {
    /// The minimum age of a token before it can be refreshed.
    pub const MIN_REFRESH_AGE: Duration = Duration::hours(24);
    /// The validity of a long-lived token (60 days).
    pub const LONG_LIVED: Duration = Duration::days(60);

    /// A token issued at `issued_at` with the standard 60-day validity.
    pub fn new(issued_at: DateTime<Utc>) -> Self {
        Self {
            issued_at,
            expires_at: issued_at + Self::LONG_LIVED,
        }
    }

    /// Whether the token can be refreshed at `now`.
    pub fn refresh_check(&self, now: DateTime<Utc>) -> RefreshCheck {
        if now >= self.expires_at {
            RefreshCheck::Expired
        } else if now < self.issued_at + Self::MIN_REFRESH_AGE {
            RefreshCheck::TooYoung {
                not_before: self.issued_at + Self::MIN_REFRESH_AGE,
            }
        } else {
            RefreshCheck::Ready
        }
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// What `GET /debug_token?input_token=...` says about a token (Facebook Login). Accepts the
/// response with or without its `data` wrapper.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DebugToken {
    /// The app the token belongs to.
    pub app_id: Option<String>,
    /// `USER`, `PAGE`, `APP`, ...
    pub token_type: Option<String>,
    /// The app name.
    pub application: Option<String>,
    /// When the token expires (`None` when it does not, or Meta did not say).
    pub expires_at: Option<DateTime<Utc>>,
    /// When data access expires.
    pub data_access_expires_at: Option<DateTime<Utc>>,
    /// Whether the token is valid.
    pub is_valid: Option<bool>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The user the token belongs to.
    pub user_id: Option<String>,
}

#[derive(Deserialize)]
struct DebugTokenFields {
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    app_id: Option<String>,
    #[serde(default, rename = "type")]
    token_type: Option<String>,
    #[serde(default)]
    application: Option<String>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_time")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_time")]
    data_access_expires_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    is_valid: Option<bool>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    user_id: Option<String>,
}

impl<'de> Deserialize<'de> for DebugToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let inner = match value.get("data") {
            Some(data @ serde_json::Value::Object(_)) => data.clone(),
            _ => value,
        };
        let f = DebugTokenFields::deserialize(inner).map_err(serde::de::Error::custom)?;
        Ok(Self {
            app_id: f.app_id,
            token_type: f.token_type,
            application: f.application,
            // Meta writes 0 for "never expires".
            expires_at: f.expires_at.filter(|t| t.timestamp() != 0),
            data_access_expires_at: f.data_access_expires_at.filter(|t| t.timestamp() != 0),
            is_valid: f.is_valid,
            scopes: f.scopes,
            user_id: f.user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lived_shapes() {
        let flat: ShortLivedToken =
            serde_json::from_str(r#"{"access_token":"IGQ","user_id":17841405793187218}"#).unwrap();
        assert_eq!(flat.user_id.as_deref(), Some("17841405793187218"));
        let wrapped: ShortLivedToken = serde_json::from_str(
            r#"{"data":[{"access_token":"EAA","user_id":"1020","permissions":"a,b"}]}"#,
        )
        .unwrap();
        assert_eq!(wrapped.access_token.expose_secret(), "EAA");
        assert_eq!(wrapped.permissions, vec!["a", "b"]);
        assert!(serde_json::from_str::<ShortLivedToken>(r#"{"data":[]}"#).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("SECRET123");
        assert!(!format!("{t:?} {t}").contains("SECRET"));
    }

    #[test]
    fn refresh_rules() {
        let issued = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let life = TokenLifetime::new(issued);
        assert!(matches!(
            life.refresh_check(issued + Duration::hours(23)),
            RefreshCheck::TooYoung { .. }
        ));
        assert_eq!(
            life.refresh_check(issued + Duration::hours(24)),
            RefreshCheck::Ready
        );
        assert_eq!(
            life.refresh_check(issued + Duration::days(60)),
            RefreshCheck::Expired
        );
        let token: LongLivedToken = serde_json::from_str(
            r#"{"access_token":"t","token_type":"bearer","expires_in":5183944}"#,
        )
        .unwrap();
        assert_eq!(
            token.expires_at(issued).unwrap(),
            issued + Duration::seconds(5_183_944)
        );
    }
}
