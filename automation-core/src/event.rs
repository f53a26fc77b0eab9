//! The inbound events the engine decides on.
//!
//! [`InboundEvent`] is this crate's own input type, with plain `String` ids, so that the engine does
//! not depend on a wire format. A service converts its webhook payloads into it.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// One thing that happened on an Instagram professional account.
///
/// ```
/// use automation_core::event::{InboundEvent, EventKind};
/// let event: InboundEvent = serde_json::from_str(r#"{
///   "id": "c-1", "account": "17841400000000000", "occurred_at": "2024-05-01T12:00:00Z",
///   "sender": {"id": "5551", "username": "ana.c", "name": "Ana Costa"},
///   "kind": {"type": "comment", "comment_id": "c-1", "media_id": "m-1", "media_kind": "reel",
///            "text": "LINK please!"}
/// }"#).unwrap();
/// assert!(matches!(event.kind, EventKind::Comment { .. }));
/// assert_eq!(event.text(), Some("LINK please!"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InboundEvent {
    /// A key that is the same every time this event is delivered (message id, comment id, or
    /// kind + ids + time). The engine uses it for idempotency.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The id of our Instagram professional account that received the event.
    #[serde(deserialize_with = "string_or_number")]
    pub account: String,
    /// When the event happened (for comments: when the comment was created). RFC 3339 strings,
    /// `2024-01-01T00:00:00+0000`, or Unix seconds / milliseconds are accepted.
    #[serde(deserialize_with = "timestamp")]
    pub occurred_at: DateTime<Utc>,
    /// Who caused the event: the commenter or the person messaging us.
    pub sender: Sender,
    /// What happened.
    pub kind: EventKind,
}

impl InboundEvent {
    /// A new event.
    pub fn new(
        id: impl Into<String>,
        account: impl Into<String>,
        occurred_at: DateTime<Utc>,
        sender: Sender,
        kind: EventKind,
    ) -> Self {
        Self {
            id: id.into(),
            account: account.into(),
            occurred_at,
            sender,
            kind,
        }
    }

    /// The text rules match against: the comment or message text, or for postbacks, quick
    /// replies, ice breakers, opt-ins and referrals the payload (or `ref`). `None` for events
    /// without text.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Comment { text, .. }
            | EventKind::LiveComment { text, .. }
            | EventKind::StoryReply { text, .. }
            | EventKind::Echo { text, .. } => Some(text),
            EventKind::Message { text, .. } => text.as_deref(),
            EventKind::Postback { payload, .. }
            | EventKind::QuickReply { payload, .. }
            | EventKind::IceBreaker { payload, .. } => Some(payload),
            EventKind::OptIn { payload, .. } => payload.as_deref(),
            EventKind::Referral { reference, .. } => reference.as_deref(),
            EventKind::StoryMention { .. }
            | EventKind::Reaction { .. }
            | EventKind::Read { .. } => None,
        }
    }

    /// The trigger kind of this event, or `None` for events that never trigger rules (read
    /// receipts and message echoes).
    pub fn trigger(&self) -> Option<crate::rule::TriggerKind> {
        use crate::rule::TriggerKind as T;
        Some(match &self.kind {
            EventKind::Comment { .. } => T::Comment,
            EventKind::LiveComment { .. } => T::LiveComment,
            EventKind::Message { .. } => T::Message,
            EventKind::StoryReply { .. } => T::StoryReply,
            EventKind::StoryMention { .. } => T::StoryMention,
            EventKind::Postback { .. } => T::Postback,
            EventKind::QuickReply { .. } => T::QuickReply,
            EventKind::IceBreaker { .. } => T::IceBreaker,
            EventKind::Referral { .. } => T::Referral,
            EventKind::OptIn { .. } => T::OptIn,
            EventKind::Reaction { .. } => T::Reaction,
            EventKind::Read { .. } | EventKind::Echo { .. } => return None,
        })
    }

    /// Whether this event is a message from the person that opens (or renews) the standard
    /// 24-hour messaging window: a DM, story reply or mention, postback, quick reply, ice-breaker
    /// click, referral or opt-in. Comments, reactions, reads and echoes do not.
    pub fn opens_window(&self) -> bool {
        matches!(
            self.kind,
            EventKind::Message { .. }
                | EventKind::StoryReply { .. }
                | EventKind::StoryMention { .. }
                | EventKind::Postback { .. }
                | EventKind::QuickReply { .. }
                | EventKind::IceBreaker { .. }
                | EventKind::Referral { .. }
                | EventKind::OptIn { .. }
        )
    }

    /// The comment this event is about, for comment and live-comment events.
    pub fn comment_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Comment { comment_id, .. } | EventKind::LiveComment { comment_id, .. } => {
                Some(comment_id)
            }
            _ => None,
        }
    }
}

/// The person behind an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sender {
    /// Their id as seen by our account (IGSID for messages, Instagram user id for comments).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Their username, if the payload carried it.
    #[serde(default)]
    pub username: Option<String>,
    /// Their display name, if known.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether they follow our account, if known (from the User Profile API).
    #[serde(default)]
    pub follows_account: Option<bool>,
}

impl Sender {
    /// A sender known only by id.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// Sets the username.
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets whether they follow our account.
    #[must_use]
    pub fn follows_account(mut self, follows: bool) -> Self {
        self.follows_account = Some(follows);
        self
    }
}

/// What kind of media a comment was left on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaKind {
    /// A feed post (image or carousel).
    Post,
    /// A reel.
    Reel,
    /// A story.
    Story,
    /// An ad.
    Ad,
    /// A live broadcast.
    Live,
    /// Not known or a kind this version does not know.
    #[default]
    #[serde(other)]
    Other,
}

/// An attachment of a direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attachment {
    /// `image`, `video`, `audio`, `file`, `share`, `story_mention`, `reel`, ... (kept as sent).
    #[serde(rename = "type")]
    pub kind: String,
    /// The CDN URL, if any.
    #[serde(default)]
    pub url: Option<String>,
}

/// Where a referral came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReferralSource {
    /// A click-to-message ad.
    Ad,
    /// An `ig.me` link with a `ref` parameter.
    Link,
    /// Anything else.
    #[default]
    #[serde(other)]
    Other,
}

/// What happened. Serialized with a `type` tag in `snake_case`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A comment on a post, reel, story or ad.
    Comment {
        /// The comment id.
        #[serde(deserialize_with = "string_or_number")]
        comment_id: String,
        /// The media it was left on.
        #[serde(deserialize_with = "string_or_number")]
        media_id: String,
        /// The kind of that media.
        #[serde(default)]
        media_kind: MediaKind,
        /// The comment text.
        #[serde(default)]
        text: String,
        /// The comment this one replies to, if it is a reply.
        #[serde(default)]
        parent_comment_id: Option<String>,
    },
    /// A comment during a live broadcast.
    LiveComment {
        /// The comment id.
        #[serde(deserialize_with = "string_or_number")]
        comment_id: String,
        /// The live media id.
        #[serde(deserialize_with = "string_or_number")]
        media_id: String,
        /// The comment text.
        #[serde(default)]
        text: String,
    },
    /// A direct message, with text, attachments or both.
    Message {
        /// The message id.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The text, if any.
        #[serde(default)]
        text: Option<String>,
        /// The attachments, if any.
        #[serde(default)]
        attachments: Vec<Attachment>,
    },
    /// A reply to one of our stories.
    StoryReply {
        /// The message id.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The story id.
        #[serde(default)]
        story_id: Option<String>,
        /// The reply text.
        #[serde(default)]
        text: String,
    },
    /// Someone mentioned our account in their story.
    StoryMention {
        /// The message id.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The story CDN URL, if given.
        #[serde(default)]
        url: Option<String>,
    },
    /// A button (postback) was tapped.
    Postback {
        /// The message id, if any.
        #[serde(default)]
        mid: Option<String>,
        /// The button title.
        #[serde(default)]
        title: String,
        /// The button payload.
        #[serde(default)]
        payload: String,
    },
    /// A quick reply was tapped.
    QuickReply {
        /// The message id.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The text shown (title, phone or email).
        #[serde(default)]
        text: String,
        /// The quick-reply payload.
        #[serde(default)]
        payload: String,
    },
    /// An ice breaker question was tapped.
    IceBreaker {
        /// The question.
        #[serde(default)]
        title: String,
        /// Its payload.
        #[serde(default)]
        payload: String,
    },
    /// The person arrived through an ad, an `ig.me` link or another referral.
    Referral {
        /// Where from.
        #[serde(default)]
        source: ReferralSource,
        /// The `ref` parameter, if any.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// The ad id, for ad referrals.
        #[serde(default)]
        ad_id: Option<String>,
    },
    /// The person opted in (for example to notifications).
    OptIn {
        /// The opt-in payload, if any.
        #[serde(default)]
        payload: Option<String>,
    },
    /// The person reacted to (or un-reacted from) a message.
    Reaction {
        /// The message reacted to.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The reaction (`love`, an emoji), `None` when removed.
        #[serde(default)]
        reaction: Option<String>,
    },
    /// The person read our messages up to `mid`.
    Read {
        /// The last message read.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
    },
    /// A message sent from our account: by this app (`from_app`) or by a human in the Instagram
    /// app. For echoes, `sender` is the person the message was sent to. Echoes never trigger rules; a human's reply can pause automation (see
    /// [`crate::engine::EngineConfig::pause_on_human_reply`]).
    Echo {
        /// The message id.
        #[serde(deserialize_with = "string_or_number")]
        mid: String,
        /// The text, if any.
        #[serde(default)]
        text: String,
        /// Whether this app sent it.
        #[serde(default)]
        from_app: bool,
    },
}

/// Accepts ids as strings or numbers.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        U(u64),
        I(i64),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::U(n) => n.to_string(),
        Id::I(n) => n.to_string(),
    })
}

/// Accepts RFC 3339, `2024-01-01T00:00:00+0000`, and Unix seconds or milliseconds.
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    use serde::de::Error as _;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ts {
        N(i64),
        F(f64),
        S(String),
    }
    let from_number = |n: i64| {
        let parsed = if n.abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        };
        parsed.ok_or_else(|| D::Error::custom(format!("timestamp {n} is out of range")))
    };
    match Ts::deserialize(d)? {
        Ts::N(n) => from_number(n),
        Ts::F(f) if f.is_finite() && f.abs() < 9.0e15 => from_number(f as i64),
        Ts::F(f) => Err(D::Error::custom(format!("timestamp {f} is out of range"))),
        Ts::S(s) => {
            if let Ok(n) = s.trim().parse::<i64>() {
                return from_number(n);
            }
            DateTime::parse_from_rfc3339(&s)
                .or_else(|_| DateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%z"))
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    D::Error::custom(format!(
                        "`{s}` is not a timestamp; use RFC 3339, `2024-01-01T00:00:00+0000` or Unix seconds"
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_timestamps_in_every_format() {
        for ts in [
            "1714564800",
            "1714564800000",
            "\"2024-05-01T12:00:00Z\"",
            "\"2024-05-01T12:00:00+0000\"",
            "\"1714564800\"",
        ] {
            let json = format!(
                r#"{{"id":1,"account":17841400000000000,"occurred_at":{ts},"sender":{{"id":42}},
                "kind":{{"type":"read","mid":"m"}}}}"#
            );
            let e: InboundEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(e.occurred_at.timestamp(), 1_714_564_800, "{ts}");
            assert_eq!(e.id, "1");
            assert_eq!(e.sender.id, "42");
            assert_eq!(e.trigger(), None);
        }
    }

    #[test]
    fn unknown_media_kind_and_fields_are_tolerated() {
        let e: InboundEvent = serde_json::from_str(
            r#"{"id":"x","account":"a","occurred_at":0,"sender":{"id":"s","extra":1},
            "kind":{"type":"comment","comment_id":"c","media_id":"m","media_kind":"igtv","text":"hi","new_field":true}}"#,
        )
        .unwrap();
        assert!(matches!(
            e.kind,
            EventKind::Comment {
                media_kind: MediaKind::Other,
                ..
            }
        ));
        assert!(!e.opens_window());
        assert_eq!(e.comment_id(), Some("c"));
    }

    #[test]
    fn bad_timestamp_is_an_error_not_a_panic() {
        let r: Result<InboundEvent, _> = serde_json::from_str(
            r#"{"id":"x","account":"a","occurred_at":"yesterday","sender":{"id":"s"},"kind":{"type":"read","mid":"m"}}"#,
        );
        assert!(r.unwrap_err().to_string().contains("not a timestamp"));
    }
}
