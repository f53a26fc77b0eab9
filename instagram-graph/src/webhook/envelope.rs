//! The wire shapes of webhook notifications, as private serde types.
//!
//! These borrow from the request body wherever they can (`Cow<str>` for short texts that decide
//! the shape, `&RawValue` for parts whose shape depends on a sibling key) and hold owned strings
//! only for what ends up in an [`Event`](super::Event).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::id::{CommentId, IgUserId, Igsid, MediaId, Mid};

use super::events::HandoverAction;

/// A map key, borrowed from the body unless it contains escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

/// A timestamp in any Meta format, `null` or absent giving `None`.
#[derive(Default)]
pub(crate) struct Timestamp(pub(crate) Option<DateTime<Utc>>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::time::deserialize_option(d).map(Timestamp)
    }
}

/// `true`/`false`, also written as `"true"`/`"false"`, `1`/`0` or `null` (false).
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct BoolVisitor;
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(BoolVisitor)
}

/// A count written as a number or a numeric string; `null` gives `None`.
pub(crate) fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct CountVisitor;
    impl<'de> Visitor<'de> for CountVisitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative count")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1.8e19 {
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(CountVisitor)
}

/// An id written as a string or a number, into plain text.
fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<crate::id::MediaId>::deserialize(d).map(|id| id.map(crate::id::MediaId::into_string))
}

/// One notification: `{"object": ..., "entry": [...]}`.
#[derive(Deserialize)]
pub(crate) struct WireNotification<'a> {
    #[serde(default, borrow)]
    pub(crate) object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) entry: Vec<WireEntry<'a>>,
}

/// The body of the fast path: one notification or an array of them.
pub(crate) enum WireBody<'a> {
    One(WireNotification<'a>),
    Many(Vec<WireNotification<'a>>),
}

impl<'de> Deserialize<'de> for WireBody<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = WireBody<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a notification object or an array of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                WireNotification::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(WireBody::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(n) = seq.next_element()? {
                    all.push(n);
                }
                Ok(WireBody::Many(all))
            }
        }
        d.deserialize_any(BodyVisitor)
    }
}

/// One `entry[]` element.
#[derive(Deserialize)]
pub(crate) struct WireEntry<'a> {
    #[serde(default)]
    pub(crate) id: Option<IgUserId>,
    #[serde(default)]
    pub(crate) time: Timestamp,
    #[serde(default, borrow)]
    pub(crate) messaging: Option<Vec<WireMessaging<'a>>>,
    #[serde(default, borrow)]
    pub(crate) standby: Option<Vec<WireMessaging<'a>>>,
    #[serde(default, borrow)]
    pub(crate) changes: Option<Vec<WireChange<'a>>>,
    #[serde(default, borrow)]
    pub(crate) field: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) value: Option<&'a RawValue>,
}

/// One `changes[]` element.
pub(crate) struct WireChange<'a> {
    pub(crate) field: Option<Cow<'a, str>>,
    pub(crate) value: Option<WireChangeValue<'a>>,
}

/// A change's `value`: decoded in the same pass when the `field` before it says how, raw
/// otherwise.
pub(crate) enum WireChangeValue<'a> {
    Comment(WireComment),
    Mention(WireMention),
    StoryInsights(WireStoryInsights),
    /// A value of one of the fields above that is not an object.
    Other(serde_json::Value),
    /// A value met before its `field`, or of a field decoded later (messaging fields, unknown).
    Raw(&'a RawValue),
}

impl<T> ObjectOr<T> {
    fn into_change(self, typed: fn(T) -> WireChangeValue<'static>) -> WireChangeValue<'static> {
        match self {
            ObjectOr::Object(t) => typed(t),
            ObjectOr::Other(value) => WireChangeValue::Other(value),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireChange<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChangeVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ChangeVisitor<'a> {
            type Value = WireChange<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a change object with `field` and `value`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = WireChange {
                    field: None,
                    value: None,
                };
                while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
                    match key.as_ref() {
                        "field" => out.field = map.next_value::<Option<Key<'a>>>()?.map(|k| k.0),
                        "value" => {
                            out.value = Some(match out.field.as_deref() {
                                Some("comments") | Some("live_comments") => map
                                    .next_value::<ObjectOr<WireComment>>()?
                                    .into_change(WireChangeValue::Comment),
                                Some("mentions") => map
                                    .next_value::<ObjectOr<WireMention>>()?
                                    .into_change(WireChangeValue::Mention),
                                Some("story_insights") => map
                                    .next_value::<ObjectOr<WireStoryInsights>>()?
                                    .into_change(WireChangeValue::StoryInsights),
                                _ => WireChangeValue::Raw(map.next_value()?),
                            })
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(ChangeVisitor(std::marker::PhantomData))
    }
}

/// `sender` / `recipient`.
#[derive(Deserialize)]
pub(crate) struct WireParty {
    #[serde(default)]
    pub(crate) id: Option<Igsid>,
}

/// One messaging event (`messaging[]`, `standby[]`, or a messaging-shaped change value).
pub(crate) struct WireMessaging<'a> {
    pub(crate) sender: Option<WireParty>,
    pub(crate) recipient: Option<WireParty>,
    pub(crate) timestamp: Option<DateTime<Utc>>,
    pub(crate) body: Option<WireEvent<'a>>,
    /// Keys this version does not know, kept raw for `EventKind::Unknown`.
    pub(crate) extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// The event key of a messaging event.
pub(crate) enum WireEvent<'a> {
    Message(WireMessage<'a>),
    MessageEdit(WireMessageEdit),
    Reaction(WireReaction<'a>),
    Postback(WirePostback),
    Read(WireRead),
    Referral(WireReferral),
    OptIn(WireOptIn),
    Handover(HandoverAction, WireHandover),
    AppRoles(&'a RawValue),
}

impl<'de: 'a, 'a> Deserialize<'de> for WireMessaging<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MessagingVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MessagingVisitor<'a> {
            type Value = WireMessaging<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a messaging event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = WireMessaging {
                    sender: None,
                    recipient: None,
                    timestamp: None,
                    body: None,
                    extra: Vec::new(),
                };
                while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
                    let event = match key.as_ref() {
                        "sender" => {
                            out.sender = map.next_value()?;
                            continue;
                        }
                        "recipient" => {
                            out.recipient = map.next_value()?;
                            continue;
                        }
                        "timestamp" => {
                            out.timestamp = map.next_value::<Timestamp>()?.0;
                            continue;
                        }
                        _ if out.body.is_some() => {
                            // One event per messaging object; later keys are metadata we skip.
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                        "message" => WireEvent::Message(map.next_value()?),
                        "message_edit" => WireEvent::MessageEdit(map.next_value()?),
                        "reaction" => WireEvent::Reaction(map.next_value()?),
                        "postback" => WireEvent::Postback(map.next_value()?),
                        "read" => WireEvent::Read(map.next_value()?),
                        "referral" => WireEvent::Referral(map.next_value()?),
                        "optin" => WireEvent::OptIn(map.next_value()?),
                        "pass_thread_control" => WireEvent::Handover(
                            HandoverAction::PassThreadControl,
                            map.next_value()?,
                        ),
                        "take_thread_control" => WireEvent::Handover(
                            HandoverAction::TakeThreadControl,
                            map.next_value()?,
                        ),
                        "request_thread_control" => WireEvent::Handover(
                            HandoverAction::RequestThreadControl,
                            map.next_value()?,
                        ),
                        "pass_thread_metadata" => WireEvent::Handover(
                            HandoverAction::PassThreadMetadata,
                            map.next_value()?,
                        ),
                        "app_roles" => WireEvent::AppRoles(map.next_value()?),
                        _ => {
                            out.extra.push((key, map.next_value()?));
                            continue;
                        }
                    };
                    out.body = Some(event);
                }
                Ok(out)
            }
        }
        d.deserialize_map(MessagingVisitor(std::marker::PhantomData))
    }
}

/// `message`.
#[derive(Deserialize)]
pub(crate) struct WireMessage<'a> {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default, borrow)]
    pub(crate) attachments: Option<Vec<WireAttachment<'a>>>,
    #[serde(default)]
    pub(crate) quick_reply: Option<WireQuickReply>,
    #[serde(default)]
    pub(crate) reply_to: Option<WireReplyTo>,
    #[serde(default)]
    pub(crate) referral: Option<WireReferral>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) is_echo: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) is_self: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) is_deleted: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub(crate) is_unsupported: bool,
}

/// `message.attachments[]`.
pub(crate) struct WireAttachment<'a> {
    pub(crate) kind: Option<Cow<'a, str>>,
    pub(crate) payload: Option<WirePayloadPart<'a>>,
    /// Fallback attachments put these next to the payload.
    pub(crate) url: Option<String>,
    pub(crate) title: Option<String>,
}

/// An attachment payload, decoded in the same pass when the `type` before it says how.
pub(crate) enum WirePayloadPart<'a> {
    /// The object payload of a kind with known fields.
    Fields(WirePayload),
    /// A payload that is not an object (a string, a number, `null`, ...).
    Other(serde_json::Value),
    /// A payload met before its `type`, or of a kind kept raw (template, fallback, unknown).
    Raw(&'a RawValue),
}

/// Attachment kinds whose object payload is reduced to [`WirePayload`]'s fields.
fn is_plain_kind(kind: &str) -> bool {
    matches!(
        kind,
        "image"
            | "video"
            | "audio"
            | "file"
            | "share"
            | "ig_reel"
            | "reel"
            | "ig_post"
            | "story_mention"
            | "ig_story"
            | "like_heart"
            | "ephemeral"
            | "unsupported_type"
    )
}

/// A value decoded as `T` when it is an object, kept as JSON otherwise.
pub(crate) enum ObjectOr<T> {
    Object(T),
    Other(serde_json::Value),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOrVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrVisitor<T> {
            type Value = ObjectOr<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(ObjectOr::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(ObjectOr::Other)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(serde_json::Value::String(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(v.into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOr::Other(serde_json::Value::Null))
            }
        }
        d.deserialize_any(ObjectOrVisitor(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireAttachment<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AttachmentVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for AttachmentVisitor<'a> {
            type Value = WireAttachment<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attachment object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = WireAttachment {
                    kind: None,
                    payload: None,
                    url: None,
                    title: None,
                };
                while let Some(Key(key)) = map.next_key::<Key<'a>>()? {
                    match key.as_ref() {
                        "type" => out.kind = map.next_value::<Option<Key<'a>>>()?.map(|k| k.0),
                        "payload" => {
                            let plain = out.kind.as_deref().is_some_and(is_plain_kind);
                            out.payload = Some(if plain {
                                match map.next_value::<ObjectOr<WirePayload>>()? {
                                    ObjectOr::Object(fields) => WirePayloadPart::Fields(fields),
                                    ObjectOr::Other(value) => WirePayloadPart::Other(value),
                                }
                            } else {
                                WirePayloadPart::Raw(map.next_value()?)
                            });
                        }
                        "url" => out.url = map.next_value()?,
                        "title" => out.title = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(AttachmentVisitor(std::marker::PhantomData))
    }
}

/// The object form of an attachment payload.
#[derive(Deserialize)]
pub(crate) struct WirePayload {
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) reel_video_id: Option<MediaId>,
    #[serde(default)]
    pub(crate) ig_post_media_id: Option<MediaId>,
    #[serde(default)]
    pub(crate) story_media_id: Option<MediaId>,
    #[serde(default)]
    pub(crate) id: Option<MediaId>,
}

/// `message.quick_reply`.
#[derive(Deserialize)]
pub(crate) struct WireQuickReply {
    #[serde(default)]
    pub(crate) payload: Option<String>,
}

/// `message.reply_to`.
#[derive(Deserialize)]
pub(crate) struct WireReplyTo {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default)]
    pub(crate) story: Option<WireStory>,
}

/// `message.reply_to.story`.
#[derive(Deserialize)]
pub(crate) struct WireStory {
    #[serde(default)]
    pub(crate) id: Option<MediaId>,
    #[serde(default)]
    pub(crate) url: Option<String>,
}

/// `referral` (top-level, in a message, or in a postback).
#[derive(Deserialize)]
pub(crate) struct WireReferral {
    #[serde(default, rename = "ref")]
    pub(crate) reference: Option<String>,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) referral_type: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) ad_id: Option<String>,
    #[serde(default)]
    pub(crate) ads_context_data: Option<WireAdsContext>,
    #[serde(default)]
    pub(crate) product: Option<WireProduct>,
}

/// `referral.ads_context_data`.
#[derive(Deserialize)]
pub(crate) struct WireAdsContext {
    #[serde(default)]
    pub(crate) ad_title: Option<String>,
    #[serde(default)]
    pub(crate) photo_url: Option<String>,
    #[serde(default)]
    pub(crate) video_url: Option<String>,
}

/// `referral.product`.
#[derive(Deserialize)]
pub(crate) struct WireProduct {
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) id: Option<String>,
}

/// `message_edit`.
#[derive(Deserialize)]
pub(crate) struct WireMessageEdit {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) num_edit: Option<u64>,
}

/// `reaction`.
#[derive(Deserialize)]
pub(crate) struct WireReaction<'a> {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default, borrow)]
    pub(crate) action: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) reaction: Option<String>,
    #[serde(default)]
    pub(crate) emoji: Option<String>,
}

/// `postback`.
#[derive(Deserialize)]
pub(crate) struct WirePostback {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) payload: Option<String>,
    #[serde(default)]
    pub(crate) referral: Option<WireReferral>,
}

/// `read`.
#[derive(Deserialize)]
pub(crate) struct WireRead {
    #[serde(default)]
    pub(crate) mid: Option<Mid>,
    #[serde(default)]
    pub(crate) watermark: Timestamp,
}

/// `optin`.
#[derive(Deserialize)]
pub(crate) struct WireOptIn {
    #[serde(default, rename = "ref")]
    pub(crate) reference: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) optin_type: Option<String>,
    #[serde(default)]
    pub(crate) payload: Option<String>,
    #[serde(default)]
    pub(crate) user_ref: Option<String>,
    #[serde(default)]
    pub(crate) notification_messages_token: Option<String>,
}

/// `pass_thread_control`, `take_thread_control`, `request_thread_control`,
/// `pass_thread_metadata`.
#[derive(Deserialize)]
pub(crate) struct WireHandover {
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) previous_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) new_owner_app_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) requested_owner_app_id: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Option<String>,
}

/// A comment or live comment value.
#[derive(Deserialize)]
pub(crate) struct WireComment {
    #[serde(default)]
    pub(crate) id: Option<CommentId>,
    #[serde(default)]
    pub(crate) comment_id: Option<CommentId>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) from: Option<WireAuthor>,
    #[serde(default)]
    pub(crate) media: Option<WireMedia>,
    #[serde(default)]
    pub(crate) parent_id: Option<CommentId>,
}

/// `value.from` of a comment.
#[derive(Deserialize)]
pub(crate) struct WireAuthor {
    #[serde(default)]
    pub(crate) id: Option<Igsid>,
    #[serde(default)]
    pub(crate) username: Option<String>,
}

/// `value.media` of a comment.
#[derive(Deserialize)]
pub(crate) struct WireMedia {
    #[serde(default)]
    pub(crate) id: Option<MediaId>,
    #[serde(default)]
    pub(crate) media_product_type: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub(crate) ad_id: Option<String>,
    #[serde(default)]
    pub(crate) ad_title: Option<String>,
    #[serde(default)]
    pub(crate) original_media_id: Option<MediaId>,
}

/// A `mentions` value.
#[derive(Deserialize)]
pub(crate) struct WireMention {
    #[serde(default)]
    pub(crate) comment_id: Option<CommentId>,
    #[serde(default)]
    pub(crate) media_id: Option<MediaId>,
}

/// A `story_insights` value.
#[derive(Deserialize)]
pub(crate) struct WireStoryInsights {
    #[serde(default)]
    pub(crate) media_id: Option<MediaId>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) exits: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) replies: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) reach: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) taps_forward: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) taps_back: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub(crate) impressions: Option<u64>,
}

/// The items of an array, each kept raw; or what stood where an array was expected.
pub(crate) enum RawList<'a> {
    Items(Vec<&'a RawValue>),
    NotAList(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ListVisitor<'a> {
            type Value = RawList<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(item) = seq.next_element::<&'a RawValue>()? {
                    items.push(item);
                }
                Ok(RawList::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(RawList::NotAList("an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawList::NotAList("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawList::NotAList("a boolean"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawList::NotAList("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawList::NotAList("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawList::NotAList("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(RawList::Items(Vec::new()))
            }
        }
        d.deserialize_any(ListVisitor(std::marker::PhantomData))
    }
}

/// The slow path's view of any object: which of the keys that decide the shape it has.
#[derive(Deserialize)]
pub(crate) struct Probe<'a> {
    #[serde(default, borrow)]
    pub(crate) object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) entry: Option<RawList<'a>>,
    #[serde(default, borrow)]
    pub(crate) id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) time: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) messaging: Option<RawList<'a>>,
    #[serde(default, borrow)]
    pub(crate) standby: Option<RawList<'a>>,
    #[serde(default, borrow)]
    pub(crate) changes: Option<RawList<'a>>,
    #[serde(default, borrow)]
    pub(crate) field: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) sender: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) recipient: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) timestamp: Option<&'a RawValue>,
}

/// The whole body, as the isolating path first sees it.
pub(crate) enum TopNode<'a> {
    Array(Vec<&'a RawValue>),
    Object(Probe<'a>),
    /// What the body was instead (`a string`, `a number`, ...).
    Scalar(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for TopNode<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TopVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TopVisitor<'a> {
            type Value = TopNode<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object or array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(item) = seq.next_element::<&'a RawValue>()? {
                    items.push(item);
                }
                Ok(TopNode::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Probe::deserialize(de::value::MapAccessDeserializer::new(map)).map(TopNode::Object)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("a boolean"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TopNode::Scalar("null"))
            }
        }
        d.deserialize_any(TopVisitor(std::marker::PhantomData))
    }
}
