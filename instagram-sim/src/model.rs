//! What tests create (accounts, media, people) and what the simulator records (requests,
//! accepted messages and replies, webhook deliveries).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The permissions an account grants by default: all of Instagram Login's business scopes.
pub const ALL_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_content_publish",
    "instagram_business_manage_insights",
];

/// A professional account to create with [`crate::RunningSimulator::create_account`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountSpec {
    /// The account's username.
    pub username: String,
    /// The display name (default: the username).
    #[serde(default)]
    pub name: Option<String>,
    /// The scopes of the token handed back (default: [`ALL_SCOPES`]).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Whether the account starts subscribed to webhooks (default `false`: the app must call
    /// `POST /me/subscribed_apps`, as with Meta).
    #[serde(default)]
    pub subscribed: bool,
}

impl AccountSpec {
    /// An account named `username` with every scope, not yet subscribed to webhooks.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            name: None,
            scopes: None,
            subscribed: false,
        }
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Grants only these scopes to the returned token.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Starts subscribed to webhooks.
    pub fn subscribed(mut self) -> Self {
        self.subscribed = true;
        self
    }
}

/// A created account and the credentials to call the simulator as it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountInfo {
    /// The Instagram professional account id (`IG_ID`, `user_id` of `/me`, `entry.id` of webhooks).
    pub ig_user_id: String,
    /// The app-scoped id (`id` of `/me`, `user_id` of the code exchange and `signed_request`).
    pub app_scoped_id: String,
    /// The username.
    pub username: String,
    /// A long-lived access token (60 days) with the account's scopes.
    pub access_token: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// The app id.
    pub app_id: String,
    /// The app secret.
    pub app_secret: String,
}

/// The kind of a media object (`media_type` and `media_product_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaKind {
    /// A feed image post.
    #[default]
    Post,
    /// A reel (video).
    Reel,
    /// A story (image).
    Story,
    /// A carousel of images.
    Carousel,
}

impl MediaKind {
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Self::Post | Self::Story => "IMAGE",
            Self::Reel => "VIDEO",
            Self::Carousel => "CAROUSEL_ALBUM",
        }
    }

    pub(crate) fn product_type(self) -> &'static str {
        match self {
            Self::Post | Self::Carousel => "FEED",
            Self::Reel => "REELS",
            Self::Story => "STORY",
        }
    }
}

/// A media object to add with [`crate::RunningSimulator::add_media`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct MediaSpec {
    /// Post, reel, story or carousel.
    #[serde(default)]
    pub kind: MediaKind,
    /// The caption.
    #[serde(default)]
    pub caption: Option<String>,
    /// For a carousel: how many children (default 2).
    #[serde(default)]
    pub children: Option<usize>,
}

impl MediaSpec {
    /// A feed post.
    pub fn post(caption: impl Into<String>) -> Self {
        Self {
            kind: MediaKind::Post,
            caption: Some(caption.into()),
            children: None,
        }
    }

    /// A reel.
    pub fn reel(caption: impl Into<String>) -> Self {
        Self {
            kind: MediaKind::Reel,
            ..Self::post(caption)
        }
    }

    /// A story.
    pub fn story() -> Self {
        Self {
            kind: MediaKind::Story,
            caption: None,
            children: None,
        }
    }

    /// A carousel with `children` images.
    pub fn carousel(caption: impl Into<String>, children: usize) -> Self {
        Self {
            kind: MediaKind::Carousel,
            caption: Some(caption.into()),
            children: Some(children),
        }
    }
}

/// A simulated person (an Instagram user who is not the account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersonSpec {
    /// The username (unique in the simulator).
    pub username: String,
    /// The display name (`name` in the User Profile API; may be absent).
    #[serde(default)]
    pub name: Option<String>,
    /// Follower count.
    #[serde(default)]
    pub follower_count: u64,
    /// Whether the person follows the accounts they talk to (`is_user_follow_business`).
    #[serde(default)]
    pub follows_business: bool,
    /// Whether the accounts follow the person (`is_business_follow_user`).
    #[serde(default)]
    pub followed_by_business: bool,
    /// Verified badge.
    #[serde(default)]
    pub verified: bool,
}

impl PersonSpec {
    /// A person named `username`, no followers, no follow relation.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            name: None,
            follower_count: 0,
            follows_business: false,
            followed_by_business: false,
            verified: false,
        }
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The person follows the business accounts.
    pub fn follows_business(mut self) -> Self {
        self.follows_business = true;
        self
    }

    /// Sets the follower count.
    pub fn followers(mut self, count: u64) -> Self {
        self.follower_count = count;
        self
    }
}

/// One HTTP request the simulator received (Graph and OAuth, not the `/_sim` API).
/// Secrets are redacted: the `Authorization` value and the `access_token` / `client_secret`
/// parameters read `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// Sequence number (from 1).
    pub seq: u64,
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// The path, with the version prefix (e.g. `/v25.0/me/messages`).
    pub path: String,
    /// The query string (decoded pairs).
    pub query: Vec<(String, String)>,
    /// The headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The account the token belongs to, when the token is known.
    pub account: Option<String>,
    /// The status answered (`0` when the connection was cut).
    pub status: u16,
}

/// What kind of Send API call was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SentKind {
    /// A message (text, attachment, template, quick replies) to a person.
    Message,
    /// A private reply to a comment (`recipient.comment_id`).
    PrivateReply,
    /// A reaction (`sender_action: react`).
    React,
    /// A reaction removed (`sender_action: unreact`).
    Unreact,
    /// `typing_on`, `typing_off` or `mark_seen`.
    SenderAction,
}

/// A Send API call the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SentMessage {
    /// The message id returned (`None` for reactions and sender actions).
    pub mid: Option<String>,
    /// The sending account (`IG_ID`).
    pub account: String,
    /// The recipient's IGSID.
    pub recipient: String,
    /// The recipient's username.
    pub recipient_username: String,
    /// The comment a private reply answered.
    pub comment_id: Option<String>,
    /// What was sent.
    pub kind: SentKind,
    /// The text, when the message had one.
    pub text: Option<String>,
    /// The `tag` (e.g. `HUMAN_AGENT`).
    pub tag: Option<String>,
    /// The request body as received.
    pub body: Value,
    /// When it was accepted (simulated clock).
    pub at: DateTime<Utc>,
}

/// A public reply the account posted under a comment (`POST /<COMMENT_ID>/replies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PublicReply {
    /// The new comment's id.
    pub id: String,
    /// The comment replied to.
    pub parent_id: String,
    /// The account.
    pub account: String,
    /// The text.
    pub text: String,
    /// When (simulated clock).
    pub at: DateTime<Utc>,
}

/// The state of a comment, for assertions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommentInfo {
    /// The id.
    pub id: String,
    /// The media it is on.
    pub media_id: String,
    /// The author's username.
    pub username: String,
    /// The text.
    pub text: String,
    /// Hidden by the account.
    pub hidden: bool,
    /// Deleted by the account.
    pub deleted: bool,
    /// Whether the one private reply was sent.
    pub private_replied: bool,
}

/// What a webhook delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryKind {
    /// A notification (`object: instagram`) to the webhook URL.
    Notification,
    /// A deauthorize callback (`signed_request` form) to the deauthorize URL.
    Deauthorize,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Still being attempted.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; given up.
    Failed,
    /// No callback URL was configured: recorded, not sent.
    NoCallbackUrl,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// The transport error (timeout, refused, ...), when no answer came.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// When it started (system clock).
    pub at: DateTime<Utc>,
}

/// A webhook delivery: one body, signed, with every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// Sequence number (from 1), in the order of sending.
    pub id: u64,
    /// Notification or deauthorize callback.
    pub kind: DeliveryKind,
    /// The URL.
    pub url: Option<String>,
    /// The exact body sent.
    pub body: String,
    /// The `X-Hub-Signature-256` value (notifications).
    pub signature: String,
    /// `true` for the extra copy of an injected duplicate.
    pub duplicate: bool,
    /// Every attempt.
    pub attempts: Vec<DeliveryAttempt>,
    /// The outcome.
    pub outcome: DeliveryOutcome,
}

impl Delivery {
    /// The body parsed as JSON (`Value::Null` if it is not JSON, e.g. a deauthorize form).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}
