//! From the wire shapes to [`Event`]s.
//!
//! Two walks share the same conversions:
//! - the **fast path** decodes the whole body in one pass into the borrowed wire types of
//!   [`envelope`](super::envelope) and converts them; it is taken for every well-formed
//!   `{object, entry}` notification (or array of them);
//! - the **isolating path** runs only when the fast path fails: it splits the body into raw parts
//!   (notifications, entries, messaging events, changes) and decodes each on its own, so one
//!   malformed part becomes one [`Error`] with its path while every other part still yields its
//!   events. It also accepts the rarer shapes: a bare `{field, value}`, an array of entries, a lone
//!   messaging event.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::Error;
use crate::id::IgUserId;

use super::envelope::{
    Probe, RawList, Timestamp, TopNode, WireAttachment, WireBody, WireChange, WireChangeValue,
    WireEntry, WireEvent, WireMessage, WireMessaging, WireNotification, WirePayload,
    WirePayloadPart, WireReferral,
};
use super::events::{
    AdsContext, Attachment, AttachmentKind, Comment, CommentAuthor, CommentMedia, Event, EventKind,
    Handover, HandoverAction, Mention, Message, MessageEdit, Object, OptIn, Postback, Reaction,
    ReactionAction, Read, Referral, ReplyTo, StoryInsights, UnknownEvent,
};

/// Where in the body a part sits, printed like `[1].entry[0].messaging[2]`.
#[derive(Clone, Copy)]
struct Loc {
    top: Option<usize>,
    entry: Option<usize>,
    part: Part,
}

#[derive(Clone, Copy)]
enum Part {
    Whole,
    Messaging(usize),
    Standby(usize),
    Changes(usize),
    Named(&'static str),
}

impl Loc {
    const ROOT: Loc = Loc {
        top: None,
        entry: None,
        part: Part::Whole,
    };

    fn with(self, part: Part) -> Loc {
        Loc { part, ..self }
    }

    /// This location followed by a path inside it (as printed by `serde_path_to_error`).
    fn join(self, inner: &str) -> String {
        let outer = self.to_string();
        if outer.is_empty() && (inner.is_empty() || inner == ".") {
            ".".to_owned()
        } else if inner.is_empty() || inner == "." {
            outer
        } else if outer.is_empty() || inner.starts_with('[') {
            format!("{outer}{inner}")
        } else {
            format!("{outer}.{inner}")
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut dot = "";
        if let Some(i) = self.top {
            write!(f, "[{i}]")?;
            dot = ".";
        }
        if let Some(i) = self.entry {
            write!(f, "{dot}entry[{i}]")?;
            dot = ".";
        }
        match self.part {
            Part::Whole => Ok(()),
            Part::Messaging(i) => write!(f, "{dot}messaging[{i}]"),
            Part::Standby(i) => write!(f, "{dot}standby[{i}]"),
            Part::Changes(i) => write!(f, "{dot}changes[{i}]"),
            Part::Named(name) => write!(f, "{dot}{name}"),
        }
    }
}

/// Decodes `raw` as `T`; on failure decodes again with path tracking to say where it failed.
/// (Tracking costs an allocation per key, so the first attempt runs without it.)
fn decode<'a, T: Deserialize<'a>>(raw: &'a str, loc: Loc, inner: &str) -> Result<T, Error> {
    match serde_json::from_str(raw) {
        Ok(value) => Ok(value),
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(raw);
            let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Ok(_) => (String::new(), without_position(plain)),
                Err(e) => (e.path().to_string(), without_position(e.into_inner())),
            };
            let inner_path = if path.is_empty() || path == "." {
                inner.to_owned()
            } else if inner.is_empty() || path.starts_with('[') {
                format!("{inner}{path}")
            } else {
                format!("{inner}.{path}")
            };
            let base = loc.join(&inner_path);
            Err(Error::decode(base, raw, message))
        }
    }
}

/// serde_json's message without its " at line L column C" suffix: positions inside a part mean
/// little to a reader, who gets the part's path instead.
fn without_position(error: serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) if error.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

/// The raw text as a JSON value. Raw parts are valid JSON already; this fails only when they nest
/// deeper than serde_json's recursion limit (128).
fn to_value(raw: &RawValue, loc: Loc) -> Result<Value, Error> {
    serde_json::from_str(raw.get()).map_err(|e| {
        Error::decode(
            loc.join(""),
            raw.get(),
            format!("a value this version keeps raw could not be kept ({e})"),
        )
    })
}

/// What every event of one entry shares.
struct Ctx {
    object: Option<Object>,
    account_id: Option<IgUserId>,
    time: Option<DateTime<Utc>>,
}

/// Events and errors gathered so far.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) events: Vec<Event>,
    pub(crate) errors: Vec<Error>,
}

impl Outcome {
    fn push(&mut self, item: Result<Event, Error>) {
        match item {
            Ok(event) => self.events.push(event),
            Err(error) => self.errors.push(error),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions shared by both walks.

fn referral(w: WireReferral) -> Referral {
    Referral {
        reference: w.reference,
        source: w.source,
        referral_type: w.referral_type,
        ad_id: w.ad_id,
        ads_context: w.ads_context_data.map(|a| AdsContext {
            ad_title: a.ad_title,
            photo_url: a.photo_url,
            video_url: a.video_url,
        }),
        product_id: w.product.and_then(|p| p.id),
    }
}

fn attachment(w: WireAttachment<'_>, loc: Loc, index: usize) -> Result<Attachment, Error> {
    let kind = match w.kind.as_deref() {
        Some(text) => AttachmentKind::from_wire(text),
        None => AttachmentKind::Other(String::new()),
    };
    let mut out = Attachment {
        kind,
        url: w.url,
        title: w.title,
        media_id: None,
        payload: None,
    };
    let keep_raw = matches!(
        out.kind,
        AttachmentKind::Template | AttachmentKind::Fallback | AttachmentKind::Other(_)
    );
    match w.payload {
        None => {}
        Some(WirePayloadPart::Fields(p)) => apply_payload(&mut out, p),
        Some(WirePayloadPart::Other(Value::Null)) => {}
        Some(WirePayloadPart::Other(value)) => out.payload = Some(value),
        Some(WirePayloadPart::Raw(raw)) => {
            let is_object = raw.get().starts_with('{');
            if is_object && !matches!(out.kind, AttachmentKind::Template) {
                let inner = format!("message.attachments[{index}].payload");
                match decode::<WirePayload>(raw.get(), loc, &inner) {
                    Ok(p) => apply_payload(&mut out, p),
                    // Unknown kinds may carry any payload: keep it raw instead of failing.
                    Err(_) if keep_raw => {}
                    Err(e) => return Err(e),
                }
            }
            if (keep_raw || !is_object) && raw.get() != "null" {
                out.payload = Some(to_value(raw, loc)?);
            }
        }
    }
    Ok(out)
}

fn apply_payload(out: &mut Attachment, p: WirePayload) {
    out.url = p.url.or(out.url.take());
    out.title = p.title.or(out.title.take());
    out.media_id = p
        .reel_video_id
        .or(p.ig_post_media_id)
        .or(p.story_media_id)
        .or(p.id);
}

fn message(w: WireMessage<'_>, loc: Loc) -> Result<Message, Error> {
    let attachments = match w.attachments {
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, a)| attachment(a, loc, i))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let reply_to = w.reply_to.and_then(|r| match (r.story, r.mid) {
        (Some(story), _) => Some(ReplyTo::Story {
            id: story.id,
            url: story.url,
        }),
        (None, Some(mid)) => Some(ReplyTo::Message { mid }),
        (None, None) => None,
    });
    Ok(Message {
        mid: w.mid,
        text: w.text,
        attachments,
        quick_reply_payload: w.quick_reply.and_then(|q| q.payload),
        reply_to,
        referral: w.referral.map(referral),
        is_echo: w.is_echo,
        is_self: w.is_self,
        is_deleted: w.is_deleted,
        is_unsupported: w.is_unsupported,
    })
}

/// A messaging event. `change` is the `(field, value)` it came in, for changes-shaped envelopes.
fn messaging_event(
    ctx: &Ctx,
    w: WireMessaging<'_>,
    standby: bool,
    change: Option<(&str, &RawValue)>,
    loc: Loc,
) -> Result<Event, Error> {
    let kind = match w.body {
        Some(WireEvent::Message(m)) => EventKind::Message(message(m, loc)?),
        Some(WireEvent::MessageEdit(m)) => EventKind::MessageEdit(MessageEdit {
            mid: m.mid,
            text: m.text,
            num_edit: m.num_edit,
        }),
        Some(WireEvent::Reaction(r)) => EventKind::Reaction(Reaction {
            mid: r.mid,
            action: match r.action.as_deref() {
                Some(a) => ReactionAction::from_wire(a),
                None if r.reaction.is_some() || r.emoji.is_some() => ReactionAction::React,
                None => ReactionAction::Other(String::new()),
            },
            reaction: r.reaction,
            emoji: r.emoji,
        }),
        Some(WireEvent::Postback(p)) => EventKind::Postback(Postback {
            mid: p.mid,
            title: p.title,
            payload: p.payload,
            referral: p.referral.map(referral),
        }),
        Some(WireEvent::Read(r)) => EventKind::Read(Read {
            mid: r.mid,
            watermark: r.watermark.0,
        }),
        Some(WireEvent::Referral(r)) => EventKind::Referral(referral(r)),
        Some(WireEvent::OptIn(o)) => EventKind::OptIn(OptIn {
            reference: o.reference,
            optin_type: o.optin_type,
            payload: o.payload,
            user_ref: o.user_ref,
            notification_messages_token: o.notification_messages_token,
        }),
        Some(WireEvent::Handover(action, h)) => EventKind::Handover(Handover {
            action,
            previous_owner_app_id: h.previous_owner_app_id,
            new_owner_app_id: h.new_owner_app_id,
            requested_owner_app_id: h.requested_owner_app_id,
            metadata: h.metadata,
            raw: None,
        }),
        Some(WireEvent::AppRoles(raw)) => EventKind::Handover(Handover {
            action: HandoverAction::AppRoles,
            previous_owner_app_id: None,
            new_owner_app_id: None,
            requested_owner_app_id: None,
            metadata: None,
            raw: Some(to_value(raw, loc)?),
        }),
        None => match change {
            Some((field, raw)) => EventKind::Unknown(UnknownEvent {
                field: Some(field.to_owned()),
                value: to_value(raw, loc)?,
            }),
            None => {
                let field = w.extra.first().map(|(k, _)| k.to_string());
                let value = w
                    .extra
                    .into_iter()
                    .map(|(k, raw)| Ok((k.into_owned(), to_value(raw, loc)?)))
                    .collect::<Result<serde_json::Map<_, _>, Error>>()?;
                EventKind::Unknown(UnknownEvent {
                    field,
                    value: Value::Object(value),
                })
            }
        },
    };
    Ok(Event {
        object: ctx.object.clone(),
        account_id: ctx.account_id.clone(),
        sender: w.sender.and_then(|p| p.id),
        recipient: w.recipient.and_then(|p| p.id),
        time: w.timestamp.or(ctx.time),
        standby,
        kind,
    })
}

/// Change fields whose value is a messaging event.
fn is_messaging_field(field: &str) -> bool {
    matches!(
        field,
        "messages"
            | "message_echoes"
            | "message_reactions"
            | "message_edit"
            | "message_edits"
            | "messaging_postbacks"
            | "messaging_seen"
            | "messaging_referral"
            | "messaging_optins"
            | "messaging_handover"
            | "messaging_policy_enforcement"
            | "response_feedback"
            | "standby"
    )
}

/// Decodes a raw change value by its field (when it came before its `field`, or from an
/// entry-level `field`/`value`). Messaging and unknown fields stay raw.
fn resolve_change<'a>(
    field: Option<&str>,
    raw: &'a RawValue,
    loc: Loc,
) -> Result<WireChangeValue<'a>, Error> {
    if !raw.get().starts_with('{') {
        return match field {
            Some("comments" | "live_comments" | "mentions" | "story_insights") => {
                Ok(WireChangeValue::Other(to_value(raw, loc)?))
            }
            _ => Ok(WireChangeValue::Raw(raw)),
        };
    }
    Ok(match field {
        Some("comments" | "live_comments") => {
            WireChangeValue::Comment(decode(raw.get(), loc, "value")?)
        }
        Some("mentions") => WireChangeValue::Mention(decode(raw.get(), loc, "value")?),
        Some("story_insights") => WireChangeValue::StoryInsights(decode(raw.get(), loc, "value")?),
        _ => WireChangeValue::Raw(raw),
    })
}

/// A `{field, value}` change.
fn change_event(
    ctx: &Ctx,
    field: Option<&str>,
    value: Option<WireChangeValue<'_>>,
    loc: Loc,
) -> Result<Event, Error> {
    let value = match value {
        Some(WireChangeValue::Raw(raw)) => Some(resolve_change(field, raw, loc)?),
        Some(other) => Some(other),
        // A missing value of a known field reads as an empty object.
        None => match field {
            Some("comments" | "live_comments") => {
                Some(WireChangeValue::Comment(decode("{}", loc, "value")?))
            }
            Some("mentions") => Some(WireChangeValue::Mention(decode("{}", loc, "value")?)),
            Some("story_insights") => {
                Some(WireChangeValue::StoryInsights(decode("{}", loc, "value")?))
            }
            _ => None,
        },
    };
    let kind = match value {
        Some(WireChangeValue::Comment(w)) => {
            let comment = Comment {
                id: w.comment_id.or(w.id),
                text: w.text,
                from: w.from.map(|a| CommentAuthor {
                    id: a.id,
                    username: a.username,
                }),
                media: w.media.map(|m| CommentMedia {
                    id: m.id,
                    media_product_type: m.media_product_type,
                    ad_id: m.ad_id,
                    ad_title: m.ad_title,
                    original_media_id: m.original_media_id,
                }),
                parent_id: w.parent_id,
            };
            if field == Some("live_comments") {
                EventKind::LiveComment(comment)
            } else {
                EventKind::Comment(comment)
            }
        }
        Some(WireChangeValue::Mention(w)) => EventKind::Mention(Mention {
            comment_id: w.comment_id,
            media_id: w.media_id,
        }),
        Some(WireChangeValue::StoryInsights(w)) => EventKind::StoryInsights(StoryInsights {
            media_id: w.media_id,
            exits: w.exits,
            replies: w.replies,
            reach: w.reach,
            taps_forward: w.taps_forward,
            taps_back: w.taps_back,
            impressions: w.impressions,
        }),
        Some(WireChangeValue::Raw(raw)) => match field {
            Some(name) if is_messaging_field(name) && raw.get().starts_with('{') => {
                let w: WireMessaging<'_> = decode(raw.get(), loc, "value")?;
                return messaging_event(ctx, w, name == "standby", Some((name, raw)), loc);
            }
            _ => unknown(field, Some(raw), loc)?,
        },
        Some(WireChangeValue::Other(value)) => EventKind::Unknown(UnknownEvent {
            field: field.map(str::to_owned),
            value,
        }),
        None => unknown(field, None, loc)?,
    };
    Ok(Event {
        object: ctx.object.clone(),
        account_id: ctx.account_id.clone(),
        sender: None,
        recipient: None,
        time: ctx.time,
        standby: field == Some("standby"),
        kind,
    })
}

fn unknown(field: Option<&str>, value: Option<&RawValue>, loc: Loc) -> Result<EventKind, Error> {
    Ok(EventKind::Unknown(UnknownEvent {
        field: field.map(str::to_owned),
        value: match value {
            Some(raw) => to_value(raw, loc)?,
            None => Value::Null,
        },
    }))
}

// ---------------------------------------------------------------------------------------------
// The fast path.

/// Decodes the body in one pass; `None` when it is not a well-formed `{object, entry}`
/// notification or array of them (the isolating path then takes over).
pub(crate) fn fast(body: &[u8]) -> Option<Outcome> {
    // One UTF-8 check of the whole body is cheaper than serde_json's check of every string.
    let text = std::str::from_utf8(body).ok()?;
    let wire: WireBody<'_> = serde_json::from_str(text).ok()?;
    let mut out = Outcome::default();
    match wire {
        WireBody::One(n) => fast_notification(n, None, &mut out),
        WireBody::Many(all) => {
            for (i, n) in all.into_iter().enumerate() {
                fast_notification(n, Some(i), &mut out);
            }
        }
    }
    Some(out)
}

fn fast_notification(n: WireNotification<'_>, top: Option<usize>, out: &mut Outcome) {
    let object = n.object.as_deref().map(Object::from_wire);
    for (i, entry) in n.entry.into_iter().enumerate() {
        let loc = Loc {
            top,
            entry: Some(i),
            part: Part::Whole,
        };
        fast_entry(object.clone(), entry, loc, out);
    }
}

fn fast_entry(object: Option<Object>, e: WireEntry<'_>, loc: Loc, out: &mut Outcome) {
    let ctx = Ctx {
        object,
        account_id: e.id,
        time: e.time.0,
    };
    let events = e.messaging.as_ref().map_or(0, Vec::len)
        + e.standby.as_ref().map_or(0, Vec::len)
        + e.changes.as_ref().map_or(0, Vec::len);
    out.events.reserve(events);
    for (i, m) in e.messaging.into_iter().flatten().enumerate() {
        out.push(messaging_event(
            &ctx,
            m,
            false,
            None,
            loc.with(Part::Messaging(i)),
        ));
    }
    for (i, c) in e.changes.into_iter().flatten().enumerate() {
        out.push(change_event(
            &ctx,
            c.field.as_deref(),
            c.value,
            loc.with(Part::Changes(i)),
        ));
    }
    for (i, m) in e.standby.into_iter().flatten().enumerate() {
        out.push(messaging_event(
            &ctx,
            m,
            true,
            None,
            loc.with(Part::Standby(i)),
        ));
    }
    if e.field.is_some() || e.value.is_some() {
        out.push(change_event(
            &ctx,
            e.field.as_deref(),
            e.value.map(WireChangeValue::Raw),
            loc,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// The isolating path.

/// What a JSON text starts with, for messages.
fn describe(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}

const NOT_A_NOTIFICATION: &str = "not a webhook notification: expected an object with `object` \
     and `entry`, an array of them, a bare `{field, value}` change or a messaging event";

/// Splits the body into parts and decodes each on its own. `Err` when the body is not JSON or
/// holds nothing shaped like a notification.
pub(crate) fn isolating(body: &[u8]) -> Result<Outcome, Error> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Error::decode(
            ".",
            String::from_utf8_lossy(body),
            format!("the body is not UTF-8 ({e}); a webhook notification is JSON text"),
        )
    })?;
    let top = match serde_json::from_str::<TopNode<'_>>(text) {
        Ok(top) => top,
        Err(shape) => {
            // Either the text is not JSON, or a top-level object repeats a deciding key.
            if let Err(e) = serde_json::from_str::<&RawValue>(text) {
                return Err(Error::decode(
                    ".",
                    text,
                    format!(
                        "the body is not valid JSON ({e}); a webhook notification is a JSON object"
                    ),
                ));
            }
            return Err(Error::decode(
                ".",
                text,
                format!("{NOT_A_NOTIFICATION} ({})", without_position(shape)),
            ));
        }
    };
    let mut out = Outcome::default();
    match top {
        TopNode::Array(items) => {
            let mut recognised = items.is_empty();
            let mut first_refusal = None;
            for (i, item) in items.into_iter().enumerate() {
                let loc = Loc {
                    top: Some(i),
                    ..Loc::ROOT
                };
                match element(item.get(), loc, &mut out) {
                    Ok(()) => recognised = true,
                    Err(e) => {
                        if first_refusal.is_none() {
                            first_refusal = Some(e.to_string());
                        }
                        out.errors.push(e);
                    }
                }
            }
            if !recognised {
                let reason = first_refusal.unwrap_or_default();
                return Err(Error::decode(
                    ".",
                    text,
                    format!("{NOT_A_NOTIFICATION} (no element of the array is one: {reason})"),
                ));
            }
        }
        TopNode::Object(probe) => classify(text.trim(), probe, Loc::ROOT, &mut out)?,
        TopNode::Scalar(found) => {
            return Err(Error::decode(
                ".",
                text,
                format!("{NOT_A_NOTIFICATION}; found {found}"),
            ))
        }
    }
    Ok(out)
}

/// One top-level object (or element of a top-level array). `Err` when it is not recognised.
fn element(raw: &str, loc: Loc, out: &mut Outcome) -> Result<(), Error> {
    if !raw.starts_with('{') {
        return Err(Error::decode(
            loc.join(""),
            raw,
            format!("{NOT_A_NOTIFICATION}; found {}", describe(raw)),
        ));
    }
    let probe: Probe<'_> = decode(raw, loc, "")?;
    classify(raw, probe, loc, out)
}

/// Sorts an object by the keys it has: a notification, an entry, or a lone messaging event.
/// `Err` when it is none of them.
fn classify(raw: &str, probe: Probe<'_>, loc: Loc, out: &mut Outcome) -> Result<(), Error> {
    if probe.entry.is_some() || probe.object.is_some() {
        let object = match probe.object {
            Some(o) => {
                match decode::<Option<Cow<'_, str>>>(o.get(), loc.with(Part::Named("object")), "") {
                    Ok(o) => o.as_deref().map(Object::from_wire),
                    Err(e) => {
                        out.errors.push(e);
                        None
                    }
                }
            }
            None => None,
        };
        match probe.entry {
            Some(RawList::Items(entries)) => {
                for (i, e) in entries.into_iter().enumerate() {
                    let loc = Loc {
                        entry: Some(i),
                        ..loc
                    };
                    isolated_entry(object.clone(), e.get(), loc, out);
                }
            }
            Some(RawList::NotAList(found)) => out.errors.push(not_a_list(raw, loc, "entry", found)),
            None => {}
        }
        Ok(())
    } else if probe.messaging.is_some()
        || probe.standby.is_some()
        || probe.changes.is_some()
        || probe.field.is_some()
        || probe.value.is_some()
    {
        isolated_entry(None, raw, loc, out);
        Ok(())
    } else if probe.sender.is_some() || probe.recipient.is_some() || probe.timestamp.is_some() {
        let ctx = Ctx {
            object: None,
            account_id: None,
            time: None,
        };
        out.push(decode(raw, loc, "").and_then(|w| messaging_event(&ctx, w, false, None, loc)));
        Ok(())
    } else {
        Err(Error::decode(
            loc.join(""),
            raw,
            format!("{NOT_A_NOTIFICATION}; found an object with none of these keys"),
        ))
    }
}

/// The error for a key of `raw` at `loc` that should hold an array.
fn not_a_list(raw: &str, loc: Loc, name: &'static str, found: &str) -> Error {
    Error::decode(
        loc.with(Part::Named(name)).join(""),
        raw,
        format!("`{name}` must be an array; found {found}"),
    )
}

/// One entry, each messaging event and change decoded on its own.
fn isolated_entry(object: Option<Object>, raw: &str, loc: Loc, out: &mut Outcome) {
    if !raw.starts_with('{') {
        out.errors.push(Error::decode(
            loc.join(""),
            raw,
            format!("an entry must be an object; found {}", describe(raw)),
        ));
        return;
    }
    let probe: Probe<'_> = match decode(raw, loc, "") {
        Ok(p) => p,
        Err(e) => return out.errors.push(e),
    };
    let id = match probe.id {
        Some(id) => match decode::<Option<IgUserId>>(id.get(), loc.with(Part::Named("id")), "") {
            Ok(id) => id,
            Err(e) => return out.errors.push(e),
        },
        None => None,
    };
    let time = match probe.time {
        Some(t) => match decode::<Timestamp>(t.get(), loc.with(Part::Named("time")), "") {
            Ok(t) => t.0,
            Err(e) => return out.errors.push(e),
        },
        None => None,
    };
    let ctx = Ctx {
        object,
        account_id: id,
        time,
    };
    let lists = [
        (probe.messaging, "messaging"),
        (probe.changes, "changes"),
        (probe.standby, "standby"),
    ];
    for (list, name) in lists {
        let items = match list {
            Some(RawList::Items(items)) => items,
            Some(RawList::NotAList(found)) => {
                out.errors.push(not_a_list(raw, loc, name, found));
                continue;
            }
            None => continue,
        };
        for (i, item) in items.into_iter().enumerate() {
            let item = item.get();
            let result = match name {
                "changes" => {
                    let loc = loc.with(Part::Changes(i));
                    decode::<WireChange<'_>>(item, loc, "")
                        .and_then(|c| change_event(&ctx, c.field.as_deref(), c.value, loc))
                }
                _ => {
                    let standby = name == "standby";
                    let loc = loc.with(if standby {
                        Part::Standby(i)
                    } else {
                        Part::Messaging(i)
                    });
                    decode::<WireMessaging<'_>>(item, loc, "")
                        .and_then(|w| messaging_event(&ctx, w, standby, None, loc))
                }
            };
            out.push(result);
        }
    }
    if probe.field.is_some() || probe.value.is_some() {
        let field = match probe.field {
            Some(f) => {
                match decode::<Option<Cow<'_, str>>>(f.get(), loc.with(Part::Named("field")), "") {
                    Ok(f) => f,
                    Err(e) => return out.errors.push(e),
                }
            }
            None => None,
        };
        out.push(change_event(
            &ctx,
            field.as_deref(),
            probe.value.map(WireChangeValue::Raw),
            loc,
        ));
    }
}
