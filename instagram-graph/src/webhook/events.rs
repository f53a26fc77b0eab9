//! The normalized webhook events: one [`Event`] per thing that happened, whatever envelope it
//! arrived in.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::id::{CommentId, IgUserId, Igsid, MediaId, Mid};

/// Declares a string-valued enum whose unknown values are kept in an `Other(String)` variant.
macro_rules! open_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $text:literal, )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// Reads the wire value; unknown values become `Other`.
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(other) => other,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

open_enum! {
    /// The `object` of a notification: which product the events belong to.
    Object {
        /// `instagram`: Instagram events (both login flavours).
        Instagram = "instagram",
        /// `page`: Messenger-platform events of a Facebook Page.
        Page = "page",
    }
}

open_enum! {
    /// The `type` of a message attachment.
    AttachmentKind {
        /// `image` (also stickers).
        Image = "image",
        /// `video`.
        Video = "video",
        /// `audio`.
        Audio = "audio",
        /// `file`.
        File = "file",
        /// `share`: a shared post or link.
        Share = "share",
        /// `ig_reel`: a shared reel.
        IgReel = "ig_reel",
        /// `reel`: a shared reel (older name).
        Reel = "reel",
        /// `ig_post`: a shared post.
        IgPost = "ig_post",
        /// `story_mention`: the user mentioned the account in a story.
        StoryMention = "story_mention",
        /// `ig_story`: a shared story.
        IgStory = "ig_story",
        /// `template`: a structured message (echo of a template the business sent).
        Template = "template",
        /// `fallback`: a legacy attachment the platform cannot render.
        Fallback = "fallback",
        /// `like_heart`: the heart sent with the like button.
        LikeHeart = "like_heart",
        /// `ephemeral`: disappearing media; never carries a URL.
        Ephemeral = "ephemeral",
        /// `unsupported_type`: content the API does not deliver.
        UnsupportedType = "unsupported_type",
    }
}

open_enum! {
    /// What a reaction event did.
    ReactionAction {
        /// A reaction was added.
        React = "react",
        /// A reaction was removed (no `reaction`/`emoji` then).
        Unreact = "unreact",
    }
}

open_enum! {
    /// Which thread-control (handover protocol) event happened.
    HandoverAction {
        /// `pass_thread_control`: another app passed the conversation to this one.
        PassThreadControl = "pass_thread_control",
        /// `take_thread_control`: the primary app took the conversation back.
        TakeThreadControl = "take_thread_control",
        /// `request_thread_control`: another app asks for the conversation.
        RequestThreadControl = "request_thread_control",
        /// `pass_thread_metadata`: metadata passed between apps without changing the owner.
        PassThreadMetadata = "pass_thread_metadata",
        /// `app_roles`: the apps' roles on the account changed.
        AppRoles = "app_roles",
    }
}

/// One normalized webhook event.
///
/// Every envelope (`entry[].messaging[]`, `entry[].standby[]`, `entry[].changes[]`, an entry-level
/// or bare `{field, value}`) produces the same shape: who and when, plus the [`EventKind`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// The notification's `object` (`instagram` or `page`), when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Object>,
    /// `entry.id`: the professional account the event belongs to (the Page id for `page`
    /// notifications). `None` for bare `{field, value}` payloads and lone messaging events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<IgUserId>,
    /// `sender.id`. For an incoming message the person (IGSID); for an echo of your own message,
    /// your account's id. `None` for comment-style events (see the kind's `from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<Igsid>,
    /// `recipient.id`: your account for incoming messages, the person for echoes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Igsid>,
    /// When it happened: the event's `timestamp`, else the entry's `time`. `None` only when the
    /// payload carried neither (the App Dashboard's bare test payloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// `true` when the event arrived in `standby[]` (or a `standby` change): your app is not the
    /// conversation's owner and must not answer it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub standby: bool,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event of the given kind with no ids and no time: a starting point for tests and
    /// simulators outside this crate, which set the public fields they need.
    ///
    /// ```
    /// use instagram_graph::webhook::{Event, EventKind, Message};
    ///
    /// let mut message = Message::default();
    /// message.text = Some("price?".into());
    /// let mut event = Event::new(EventKind::Message(message));
    /// event.sender = Some("6000000000000001".into());
    /// assert_eq!(event.counterpart().unwrap(), "6000000000000001");
    /// ```
    pub fn new(kind: EventKind) -> Self {
        Event {
            object: None,
            account_id: None,
            sender: None,
            recipient: None,
            time: None,
            standby: false,
            kind,
        }
    }

    /// The person the event is about, as seen by your account: the sender of an incoming event,
    /// the recipient of an echo, the author of a comment.
    pub fn counterpart(&self) -> Option<&Igsid> {
        match &self.kind {
            EventKind::Message(m) if m.is_echo => self.recipient.as_ref(),
            EventKind::Comment(c) | EventKind::LiveComment(c) => {
                c.from.as_ref().and_then(|from| from.id.as_ref())
            }
            _ => self.sender.as_ref(),
        }
    }
}

/// What an [`Event`] is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A comment on a post or reel (field `comments`).
    Comment(Comment),
    /// A comment on a live broadcast (field `live_comments`).
    LiveComment(Comment),
    /// The account was @mentioned in a comment or caption (field `mentions`).
    Mention(Mention),
    /// A direct message, its echo, an unsend, or an unsupported message.
    Message(Message),
    /// An edited message (Messenger).
    MessageEdit(MessageEdit),
    /// A button, ice breaker or persistent-menu tap.
    Postback(Postback),
    /// A reaction added to or removed from a message.
    Reaction(Reaction),
    /// The person read (saw) messages.
    Read(Read),
    /// The person entered the conversation through a link or an ad.
    Referral(Referral),
    /// The person opted in (Messenger plugins, notification requests).
    OptIn(OptIn),
    /// A story's insights, sent when it expires (field `story_insights`).
    StoryInsights(StoryInsights),
    /// A thread-control (handover protocol) event.
    Handover(Handover),
    /// Anything this version does not model, kept as sent.
    Unknown(UnknownEvent),
}

/// The author of a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct CommentAuthor {
    /// The author's Instagram-scoped id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Igsid>,
    /// The author's username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The media a comment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct CommentMedia {
    /// The media id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MediaId>,
    /// `FEED`, `REELS`, `STORY`, `AD`, `LIVE`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_product_type: Option<String>,
    /// The ad id, for comments on ads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// The ad title, for comments on ads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_title: Option<String>,
    /// The organic media an ad was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_media_id: Option<MediaId>,
}

/// A comment or live comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct Comment {
    /// The comment id (`comment_id`, or `id` in the Instagram Login form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<CommentId>,
    /// The comment text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<CommentAuthor>,
    /// Where it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<CommentMedia>,
    /// The comment this one replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<CommentId>,
}

/// An @mention of the account. A caption mention has only `media_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct Mention {
    /// The comment that mentions the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// The media the mention is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<MediaId>,
}

/// One attachment of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Attachment {
    /// The attachment `type`.
    #[serde(rename = "type")]
    pub kind: AttachmentKind,
    /// The content URL (CDN URL, story URL, shared link). Absent for `like_heart`, `ephemeral`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A title, when the payload has one (shares, fallbacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The media the attachment points to (`reel_video_id`, `ig_post_media_id`, the story id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<MediaId>,
    /// The raw payload for the kinds whose payload is not reduced to the fields above
    /// (`template`, `fallback`, and unknown kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl Attachment {
    /// An attachment of the given kind with no URL, title, media or payload.
    pub fn new(kind: AttachmentKind) -> Self {
        Attachment {
            kind,
            url: None,
            title: None,
            media_id: None,
            payload: None,
        }
    }
}

/// What a message replies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplyTo {
    /// A reply to an earlier message.
    Message {
        /// The message replied to.
        mid: Mid,
    },
    /// A reply to one of the account's stories.
    Story {
        /// The story's media id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<MediaId>,
        /// The story's CDN URL.
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

/// The context of an ad a referral came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct AdsContext {
    /// The ad's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_title: Option<String>,
    /// The ad's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    /// The ad's video thumbnail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
}

/// How the person arrived: an ig.me / m.me link with `ref`, an ad, a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct Referral {
    /// The `ref` parameter of the link or ad.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// `ADS`, `SHORTLINK`, the ig.me link, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `OPEN_THREAD`, ...
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub referral_type: Option<String>,
    /// The ad id, for ad referrals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// The ad's context, for ad referrals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ads_context: Option<AdsContext>,
    /// The product id, for product referrals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// A direct message (or its echo, unsend, or unsupported placeholder).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[non_exhaustive]
pub struct Message {
    /// The message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<Mid>,
    /// The text, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The attachments, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The payload of the quick reply the person tapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quick_reply_payload: Option<String>,
    /// What this message replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    /// The ad or link that started the conversation, when sent with the first message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// The message was sent by the account itself (an echo).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_echo: bool,
    /// The account messaged itself (set together with `is_echo`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_self: bool,
    /// The person unsent the message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_deleted: bool,
    /// The message has content the API does not deliver.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_unsupported: bool,
}

/// An edited message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct MessageEdit {
    /// The edited message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<Mid>,
    /// The new text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// How many times it has been edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_edit: Option<u64>,
}

/// A postback: an ice breaker, a template button or a persistent-menu item was tapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct Postback {
    /// The postback's message id (v11.0+; ice breakers may omit it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<Mid>,
    /// The button's or question's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The payload the business set on the button.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The referral that came with the postback, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
}

/// A reaction added to or removed from a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Reaction {
    /// The message reacted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<Mid>,
    /// `react` or `unreact`.
    pub action: ReactionAction,
    /// `love`, `like`, `laugh`, `wow`, `sad`, `angry`, `other` (absent on `unreact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction: Option<String>,
    /// The emoji (absent on `unreact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

impl Reaction {
    /// A reaction event with the given action and nothing else set.
    pub fn new(action: ReactionAction) -> Self {
        Reaction {
            mid: None,
            action,
            reaction: None,
            emoji: None,
        }
    }
}

/// The person read (saw) the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct Read {
    /// The last message read (Instagram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<Mid>,
    /// Everything sent before this time was read (Messenger).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<DateTime<Utc>>,
}

/// An opt-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct OptIn {
    /// The `ref` passed through the plugin or link.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The opt-in type (e.g. `notification_messages`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub optin_type: Option<String>,
    /// The payload of the opt-in request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// A user reference (checkbox plugin) standing in for a sender id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ref: Option<String>,
    /// The token for recurring notification messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_messages_token: Option<String>,
}

/// A story's insights (first 24 hours), sent when the story expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct StoryInsights {
    /// The story.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<MediaId>,
    /// Exits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exits: Option<u64>,
    /// Replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<u64>,
    /// Reach.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<u64>,
    /// Taps forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taps_forward: Option<u64>,
    /// Taps back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taps_back: Option<u64>,
    /// Impressions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impressions: Option<u64>,
}

/// A thread-control (handover protocol) event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Handover {
    /// Which event.
    pub action: HandoverAction,
    /// The app that owned the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_owner_app_id: Option<String>,
    /// The app that owns it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_owner_app_id: Option<String>,
    /// The app asking for control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_owner_app_id: Option<String>,
    /// Free text passed along.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// The raw body of events reduced to nothing above (`app_roles`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

impl Handover {
    /// A thread-control event with the given action and nothing else set.
    pub fn new(action: HandoverAction) -> Self {
        Handover {
            action,
            previous_owner_app_id: None,
            new_owner_app_id: None,
            requested_owner_app_id: None,
            metadata: None,
            raw: None,
        }
    }
}

/// An event this version does not model, kept as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnknownEvent {
    /// The change's `field`, or the first unrecognised key of a messaging event. `None` for a
    /// messaging event with no event key at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The change's `value`, or an object of the messaging event's unrecognised keys.
    pub value: serde_json::Value,
}

impl UnknownEvent {
    /// An unknown event with the given field name and raw value.
    pub fn new(field: Option<String>, value: serde_json::Value) -> Self {
        UnknownEvent { field, value }
    }
}
