//! Conversions between the wire and the engine: webhook [`Event`]s into automation-core
//! [`InboundEvent`]s (with the event's idempotency key), and [`PlannedAction`]s into Graph API
//! send requests.

use automation_core::event::{EventKind as Core, InboundEvent, MediaKind, ReferralSource, Sender};
use automation_core::rule::{Button as RuleButton, MediaType, Message as RuleMessage};
use automation_core::PlannedAction;
use chrono::{DateTime, Utc};
use instagram_graph::model::{
    AttachmentType, Button, ButtonTemplate, GenericElement, GenericTemplate, QuickReply,
    SendRequest,
};
use instagram_graph::webhook::{AttachmentKind, Event, EventKind as Wire, ReactionAction, ReplyTo};

/// What the pipeline does with a webhook event.
#[derive(Debug, Clone, PartialEq)]
pub enum Converted {
    /// An event the engine decides on.
    Decide(InboundEvent),
    /// An event the service records but does not decide on, with the reason.
    Skip {
        /// The account, when known.
        account: Option<String>,
        /// The idempotency key.
        key: String,
        /// The event kind's name.
        kind: &'static str,
        /// Why it is skipped.
        reason: &'static str,
    },
}

fn wire_kind(kind: &Wire) -> &'static str {
    match kind {
        Wire::Comment(_) => "comment",
        Wire::LiveComment(_) => "live_comment",
        Wire::Mention(_) => "mention",
        Wire::Message(_) => "message",
        Wire::MessageEdit(_) => "message_edit",
        Wire::Postback(_) => "postback",
        Wire::Reaction(_) => "reaction",
        Wire::Read(_) => "read",
        Wire::Referral(_) => "referral",
        Wire::OptIn(_) => "opt_in",
        Wire::StoryInsights(_) => "story_insights",
        Wire::Handover(_) => "handover",
        _ => "unknown",
    }
}

fn media_kind(product_type: Option<&str>, ad: bool) -> MediaKind {
    if ad {
        return MediaKind::Ad;
    }
    match product_type.map(str::to_ascii_uppercase).as_deref() {
        Some("REELS") | Some("CLIPS") => MediaKind::Reel,
        Some("FEED") | Some("CAROUSEL_ALBUM") | Some("POST") => MediaKind::Post,
        Some("STORY") => MediaKind::Story,
        Some("AD") => MediaKind::Ad,
        Some("LIVE") => MediaKind::Live,
        _ => MediaKind::Other,
    }
}

/// Converts one webhook event. `received_at` stands in for a missing timestamp.
pub fn inbound(event: &Event, received_at: DateTime<Utc>) -> Converted {
    let kind_name = wire_kind(&event.kind);
    let at = event.time.unwrap_or(received_at);
    let ms = at.timestamp_millis();
    let counterpart = event.counterpart().map(|s| s.as_str().to_string());
    let is_echo = matches!(&event.kind, Wire::Message(m) if m.is_echo);
    let account = event
        .account_id
        .as_ref()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            let ours = if is_echo {
                &event.sender
            } else {
                &event.recipient
            };
            ours.as_ref().map(|s| s.as_str().to_string())
        });
    let sender_id = counterpart.clone().unwrap_or_default();
    let skip = |key: String, reason: &'static str| Converted::Skip {
        account: account.clone(),
        key,
        kind: kind_name,
        reason,
    };
    let fallback_key = format!("{kind_name}:{sender_id}:{ms}");
    if event.standby {
        return skip(
            format!("standby:{fallback_key}"),
            "standby event: another app owns the conversation",
        );
    }
    let Some(account) = account.clone() else {
        return skip(fallback_key, "the event names no account");
    };
    if counterpart.is_none() {
        return skip(fallback_key, "the event names no person");
    }
    let mut sender = Sender::new(sender_id.clone());
    let (key, kind) = match &event.kind {
        Wire::Comment(c) | Wire::LiveComment(c) => {
            let Some(id) = c.id.as_ref().map(|i| i.as_str().to_string()) else {
                return skip(fallback_key, "the comment has no id");
            };
            if let Some(username) = c.from.as_ref().and_then(|f| f.username.clone()) {
                sender = sender.username(username);
            }
            let media = c.media.as_ref();
            let media_id = media
                .and_then(|m| m.id.as_ref())
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            let text = c.text.clone().unwrap_or_default();
            let kind = if matches!(event.kind, Wire::LiveComment(_)) {
                Core::LiveComment {
                    comment_id: id.clone(),
                    media_id,
                    text,
                }
            } else {
                Core::Comment {
                    comment_id: id.clone(),
                    media_id,
                    media_kind: media_kind(
                        media.and_then(|m| m.media_product_type.as_deref()),
                        media.is_some_and(|m| m.ad_id.is_some()),
                    ),
                    text,
                    parent_comment_id: c.parent_id.as_ref().map(|p| p.as_str().to_string()),
                }
            };
            (format!("comment:{id}"), kind)
        }
        Wire::Message(m) => {
            let Some(mid) = m.mid.as_ref().map(|m| m.as_str().to_string()) else {
                return skip(fallback_key, "the message has no id");
            };
            let key = format!("mid:{mid}");
            if m.is_deleted {
                return skip(format!("deleted:{mid}"), "the person unsent the message");
            }
            let kind = if m.is_echo {
                Core::Echo {
                    mid,
                    text: m.text.clone().unwrap_or_default(),
                    from_app: false,
                }
            } else if let Some(payload) = &m.quick_reply_payload {
                Core::QuickReply {
                    mid,
                    text: m.text.clone().unwrap_or_default(),
                    payload: payload.clone(),
                }
            } else if let Some(ReplyTo::Story { id, .. }) = &m.reply_to {
                Core::StoryReply {
                    mid,
                    story_id: id.as_ref().map(|i| i.as_str().to_string()),
                    text: m.text.clone().unwrap_or_default(),
                }
            } else if let Some(a) = m
                .attachments
                .iter()
                .find(|a| a.kind == AttachmentKind::StoryMention)
            {
                Core::StoryMention {
                    mid,
                    url: a.url.clone(),
                }
            } else {
                let attachments = m
                    .attachments
                    .iter()
                    .filter_map(|a| {
                        serde_json::from_value(serde_json::json!({
                            "type": a.kind.as_str(),
                            "url": a.url,
                        }))
                        .ok()
                    })
                    .collect();
                Core::Message {
                    mid,
                    text: m.text.clone(),
                    attachments,
                }
            };
            (key, kind)
        }
        Wire::Postback(p) => {
            let payload = p.payload.clone().unwrap_or_default();
            let key = match &p.mid {
                Some(mid) => format!("postback:{}", mid.as_str()),
                None => format!("postback:{sender_id}:{payload}:{ms}"),
            };
            (
                key,
                Core::Postback {
                    mid: p.mid.as_ref().map(|m| m.as_str().to_string()),
                    title: p.title.clone().unwrap_or_default(),
                    payload,
                },
            )
        }
        Wire::Reaction(r) => {
            let Some(mid) = r.mid.as_ref().map(|m| m.as_str().to_string()) else {
                return skip(fallback_key, "the reaction names no message");
            };
            let removed = r.action == ReactionAction::Unreact;
            let reaction = if removed {
                None
            } else {
                r.emoji.clone().or_else(|| r.reaction.clone())
            };
            (
                format!(
                    "reaction:{mid}:{sender_id}:{}:{ms}",
                    if removed { "unreact" } else { "react" }
                ),
                Core::Reaction { mid, reaction },
            )
        }
        Wire::Read(r) => {
            let mid = r
                .mid
                .as_ref()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            (format!("read:{sender_id}:{mid}:{ms}"), Core::Read { mid })
        }
        Wire::Referral(r) => {
            let source = match r.source.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("ADS") => ReferralSource::Ad,
                Some("SHORTLINK") | Some("IGME") | Some("IG_ME") => ReferralSource::Link,
                _ => ReferralSource::Other,
            };
            (
                format!("referral:{sender_id}:{ms}"),
                Core::Referral {
                    source,
                    reference: r.reference.clone(),
                    ad_id: r.ad_id.clone(),
                },
            )
        }
        Wire::OptIn(o) => (
            format!("optin:{sender_id}:{ms}"),
            Core::OptIn {
                payload: o.payload.clone().or_else(|| o.reference.clone()),
            },
        ),
        _ => {
            return skip(
                format!("{fallback_key}:{}", event_digest(event)),
                "automation-core does not decide on this kind of event",
            )
        }
    };
    Converted::Decide(InboundEvent::new(key, account, at, sender, kind))
}

/// A short digest of an event's JSON, to key events that carry no id.
fn event_digest(event: &Event) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(event).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// What the sender must do for a planned action.
#[derive(Debug, Clone)]
pub enum Call {
    /// `POST /me/messages` (a DM or a private reply).
    Send(SendRequest),
    /// `POST /<comment>/replies`.
    PublicReply {
        /// The comment.
        comment_id: String,
        /// The reply text.
        text: String,
    },
    /// `POST url` with a JSON body (an automation's outgoing webhook).
    Webhook {
        /// Where.
        url: String,
        /// What.
        body: serde_json::Value,
    },
}

/// The outbox kind and recipient of an action that calls out, or `None` for actions the engine
/// already applied to its stores (tags, fields, flows, hand-offs) and wakes.
pub fn outbox_kind(action: &PlannedAction, contact: &str) -> Option<(&'static str, String)> {
    match action {
        PlannedAction::PrivateReply { .. } => Some(("private_reply", contact.to_string())),
        PlannedAction::PublicReply { .. } => Some(("public_reply", contact.to_string())),
        PlannedAction::SendDm { recipient, .. } => Some(("send_dm", recipient.clone())),
        PlannedAction::AiReply { recipient, .. } => Some(("ai_reply", recipient.clone())),
        PlannedAction::Webhook { .. } => Some(("webhook", contact.to_string())),
        _ => None,
    }
}

/// The Graph API call of a planned action. Errors are instagram-graph's validation errors
/// (a text too long, too many buttons): nothing is sent for those.
pub fn call(action: &PlannedAction) -> Result<Option<Call>, instagram_graph::Error> {
    Ok(Some(match action {
        PlannedAction::PrivateReply { comment_id, text } => Call::Send(SendRequest::private_reply(
            comment_id.clone(),
            text.clone(),
        )?),
        PlannedAction::PublicReply { comment_id, text } => Call::PublicReply {
            comment_id: comment_id.clone(),
            text: text.clone(),
        },
        PlannedAction::SendDm { recipient, message } => {
            Call::Send(send_request(recipient, message)?)
        }
        PlannedAction::Webhook { url, body } => Call::Webhook {
            url: url.clone(),
            body: body.clone(),
        },
        _ => return Ok(None),
    }))
}

/// The Graph API call of an outbox row's stored action (JSON of a [`PlannedAction`]). A
/// `"tag": "HUMAN_AGENT"` beside the action (an agent's reply from 24 hours to 7 days after the
/// contact's last message) tags the message. Errors say why nothing can be sent.
pub fn call_stored(stored: &str) -> Result<Option<Call>, String> {
    let value: serde_json::Value = serde_json::from_str(stored)
        .map_err(|e| format!("the stored action is unreadable: {e}"))?;
    let human = value.get("tag").and_then(serde_json::Value::as_str) == Some("HUMAN_AGENT");
    let action: PlannedAction = serde_json::from_value(value)
        .map_err(|e| format!("the stored action is unreadable: {e}"))?;
    match call(&action).map_err(|e| e.to_string())? {
        Some(Call::Send(request)) if human => Ok(Some(Call::Send(
            request.human_agent().map_err(|e| e.to_string())?,
        ))),
        other => Ok(other),
    }
}

fn buttons(list: &[RuleButton]) -> Vec<Button> {
    list.iter()
        .filter_map(|b| match b {
            RuleButton::WebUrl { title, url } => Some(Button::web_url(title.clone(), url.clone())),
            RuleButton::Postback { title, payload } => {
                Some(Button::postback(title.clone(), payload.clone()))
            }
            _ => None,
        })
        .collect()
}

fn send_request(to: &str, message: &RuleMessage) -> Result<SendRequest, instagram_graph::Error> {
    let to = to.to_string();
    Ok(match message {
        RuleMessage::Text {
            text,
            quick_replies,
        } if quick_replies.is_empty() => SendRequest::text(to, text.clone())?,
        RuleMessage::Text {
            text,
            quick_replies,
        } => {
            let replies = quick_replies
                .iter()
                .map(|q| QuickReply::text(q.title.clone(), q.payload.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            SendRequest::quick_replies(to, text.clone(), replies)?
        }
        RuleMessage::Buttons { text, buttons: b } => {
            SendRequest::button_template(to, ButtonTemplate::new(text.clone(), buttons(b))?)
        }
        RuleMessage::Generic { elements } => {
            let mut out = Vec::new();
            for e in elements {
                let mut element = GenericElement::new(e.title.clone())?;
                if let Some(subtitle) = &e.subtitle {
                    element = element.subtitle(subtitle.clone())?;
                }
                if let Some(url) = &e.image_url {
                    element = element.image_url(url.clone());
                }
                if !e.buttons.is_empty() {
                    element = element.buttons(buttons(&e.buttons))?;
                }
                out.push(element);
            }
            SendRequest::generic_template(to, GenericTemplate::new(out)?)
        }
        RuleMessage::Media { media, url } => {
            let kind = match media {
                MediaType::Video => AttachmentType::Video,
                MediaType::Audio => AttachmentType::Audio,
                MediaType::File => AttachmentType::File,
                _ => AttachmentType::Image,
            };
            SendRequest::media(to, kind, url.clone())
        }
        _ => {
            return Err(instagram_graph::Error::validation(
                "this message kind is not supported by the service yet",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Converted {
        let n = instagram_graph::webhook::parse(body.as_bytes()).unwrap();
        assert_eq!(n.events().len(), 1, "{:?}", n.events());
        inbound(&n.events()[0], Utc::now())
    }

    #[test]
    fn comment_becomes_a_comment_event_keyed_by_its_id() {
        let c = one(
            r#"{"object":"instagram","entry":[{"id":"A","time":1700000000,"changes":[{"field":"comments",
            "value":{"id":"C1","text":"LINK","from":{"id":"P","username":"ana"},"media":{"id":"M","media_product_type":"REELS"}}}]}]}"#,
        );
        let Converted::Decide(e) = c else {
            panic!("{c:?}")
        };
        assert_eq!(e.id, "comment:C1");
        assert_eq!(e.account, "A");
        assert_eq!(e.sender.id, "P");
        assert_eq!(e.sender.username.as_deref(), Some("ana"));
        assert!(
            matches!(e.kind, Core::Comment { ref media_kind, .. } if *media_kind == MediaKind::Reel)
        );
    }

    #[test]
    fn messages_echoes_story_replies_and_quick_replies() {
        let msg = |m: &str| {
            format!(
                r#"{{"object":"instagram","entry":[{{"id":"A","time":1,"messaging":[{{"sender":{{"id":"P"}},"recipient":{{"id":"A"}},"timestamp":1700000000000,"message":{m}}}]}}]}}"#
            )
        };
        let Converted::Decide(e) = one(&msg(r#"{"mid":"m1","text":"hi"}"#)) else {
            panic!()
        };
        assert_eq!(e.id, "mid:m1");
        assert!(matches!(e.kind, Core::Message { .. }));
        let Converted::Decide(e) = one(&msg(
            r#"{"mid":"m2","text":"x","quick_reply":{"payload":"Q"}}"#,
        )) else {
            panic!()
        };
        assert!(matches!(e.kind, Core::QuickReply { ref payload, .. } if payload == "Q"));
        let Converted::Decide(e) = one(&msg(
            r#"{"mid":"m3","text":"wow","reply_to":{"story":{"id":"S","url":"u"}}}"#,
        )) else {
            panic!()
        };
        assert!(matches!(e.kind, Core::StoryReply { .. }));
        let echo = r#"{"object":"instagram","entry":[{"id":"A","time":1,"messaging":[{"sender":{"id":"A"},"recipient":{"id":"P"},"timestamp":1700000000000,"message":{"mid":"m4","text":"sent","is_echo":true}}]}]}"#;
        let Converted::Decide(e) = one(echo) else {
            panic!()
        };
        assert_eq!(e.sender.id, "P");
        assert!(matches!(e.kind, Core::Echo { .. }));
    }

    #[test]
    fn actions_become_graph_requests() {
        let a = PlannedAction::PrivateReply {
            comment_id: "C1".into(),
            text: "hi".into(),
        };
        let Some(Call::Send(req)) = call(&a).unwrap() else {
            panic!()
        };
        assert!(req.is_private_reply());
        assert_eq!(outbox_kind(&a, "P").unwrap().0, "private_reply");
        let tag = PlannedAction::AddTag { tag: "x".into() };
        assert!(call(&tag).unwrap().is_none());
        assert!(outbox_kind(&tag, "P").is_none());
        let too_long = PlannedAction::PrivateReply {
            comment_id: "C1".into(),
            text: "x".repeat(5000),
        };
        assert!(call(&too_long).is_err());
    }

    #[test]
    fn a_stored_human_agent_tag_tags_the_message() {
        let dm = r#"{"type":"send_dm","recipient":"P","message":{"kind":"text","text":"hi"}}"#;
        let Some(Call::Send(plain)) = call_stored(dm).unwrap() else {
            panic!()
        };
        assert!(plain.to_json().get("tag").is_none(), "{}", plain.to_json());
        let tagged = dm.replace(
            "{\"type\":\"send_dm\"",
            "{\"tag\":\"HUMAN_AGENT\",\"type\":\"send_dm\"",
        );
        let Some(Call::Send(req)) = call_stored(&tagged).unwrap() else {
            panic!()
        };
        assert_eq!(req.to_json()["tag"], "HUMAN_AGENT");
        assert_eq!(req.to_json()["messaging_type"], "MESSAGE_TAG");
        assert!(call_stored("not json").is_err());
    }
}
