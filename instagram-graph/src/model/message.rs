//! The Send API: outgoing messages, reactions, sender actions and private replies.
//!
//! Every constructor checks the documented limits before anything is sent and returns
//! [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded) naming the broken limit:
//!
//! ```
//! use instagram_graph::model::{QuickReply, SendRequest};
//! use instagram_graph::{error::Limit, ErrorKind};
//!
//! let ok = SendRequest::quick_replies(
//!     "1234",
//!     "Pick a size",
//!     vec![QuickReply::text("Small", "S")?, QuickReply::text("Large", "L")?],
//! )?;
//! assert_eq!(ok.to_json()["message"]["quick_replies"][1]["payload"], "L");
//!
//! let too_long = SendRequest::text("1234", "é".repeat(501)).unwrap_err();
//! assert_eq!(too_long.kind(), &ErrorKind::LimitExceeded { limit: Limit::TextBytes, actual: 1002 });
//! # Ok::<(), instagram_graph::Error>(())
//! ```

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::error::{Error, Limit};
use crate::id::{CommentId, Igsid, Mid};
use crate::model::string_enum;

/// Who receives a message: a person (by IGSID) or the author of a comment (private reply).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recipient {
    /// A person, by Instagram-scoped id: `{"id": "<IGSID>"}`.
    User(Igsid),
    /// The author of a comment: `{"comment_id": "<COMMENT_ID>"}` (a private reply).
    Comment(CommentId),
}

impl Serialize for Recipient {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::User(id) => map.serialize_entry("id", id.as_str())?,
            Self::Comment(id) => map.serialize_entry("comment_id", id.as_str())?,
        }
        map.end()
    }
}

string_enum! {
    /// The type of a message attachment.
    AttachmentType {
        /// An image (png, jpeg; 8 MB).
        Image => "image",
        /// Audio (aac, m4a, wav, mp4; 25 MB).
        Audio => "audio",
        /// A video (mp4, ogg, avi, mov, webm; 25 MB).
        Video => "video",
        /// A file (pdf; 25 MB).
        File => "file",
        /// The heart sticker.
        LikeHeart => "like_heart",
        /// A share of one of the account's own posts.
        MediaShare => "MEDIA_SHARE",
        /// A template (button or generic).
        Template => "template",
    }
}

string_enum! {
    /// A typing indicator or read receipt. Sent alone: only `recipient` and `sender_action`.
    SenderAction {
        /// Show the typing indicator.
        TypingOn => "typing_on",
        /// Hide the typing indicator.
        TypingOff => "typing_off",
        /// Mark the last message as seen.
        MarkSeen => "mark_seen",
    }
}

string_enum! {
    /// The type of a button.
    ButtonType {
        /// Opens a URL.
        WebUrl => "web_url",
        /// Sends a postback webhook with the payload.
        Postback => "postback",
    }
}

/// A reaction to a message: `love` or any emoji.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reaction {
    /// The heart (`"love"`).
    Love,
    /// Another reaction, such as an emoji.
    Other(String),
}

impl Reaction {
    fn as_str(&self) -> &str {
        match self {
            Self::Love => "love",
            Self::Other(raw) => raw,
        }
    }
}

/// A quick reply button under a text message (at most 13 per message, titles up to 20 chars).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QuickReply {
    /// `text`, `user_phone_number` or `user_email`.
    pub content_type: String,
    /// The button title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The payload returned in the `messages` webhook when tapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl QuickReply {
    /// A text quick reply. The title must be 1 to 20 characters.
    pub fn text(title: impl Into<String>, payload: impl Into<String>) -> Result<Self, Error> {
        let title = title.into();
        if title.is_empty() {
            return Err(Error::validation("a quick reply title must not be empty"));
        }
        Limit::QuickReplyTitle.check(title.chars().count())?;
        Ok(Self {
            content_type: "text".into(),
            title: Some(title),
            payload: Some(payload.into()),
        })
    }

    /// A quick reply offering the person's phone number (hidden when they have none).
    pub fn user_phone_number() -> Self {
        Self {
            content_type: "user_phone_number".into(),
            title: None,
            payload: None,
        }
    }

    /// A quick reply offering the person's email address (hidden when they have none).
    pub fn user_email() -> Self {
        Self {
            content_type: "user_email".into(),
            title: None,
            payload: None,
        }
    }
}

/// A button of a template or of the persistent menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Button {
    /// `web_url` or `postback`.
    #[serde(rename = "type")]
    pub button_type: ButtonType,
    /// The label.
    #[serde(default)]
    pub title: String,
    /// The URL of a `web_url` button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The payload of a `postback` button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl Button {
    /// A button that opens `url`.
    pub fn web_url(title: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            button_type: ButtonType::WebUrl,
            title: title.into(),
            url: Some(url.into()),
            payload: None,
        }
    }

    /// A button that sends a postback with `payload`.
    pub fn postback(title: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            button_type: ButtonType::Postback,
            title: title.into(),
            url: None,
            payload: Some(payload.into()),
        }
    }
}

/// A button template: a text (at most 640 characters) and 1 to 3 buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ButtonTemplate {
    /// The text above the buttons.
    pub text: String,
    /// The buttons.
    pub buttons: Vec<Button>,
}

impl ButtonTemplate {
    /// Checks the limits and builds the template.
    pub fn new(text: impl Into<String>, buttons: Vec<Button>) -> Result<Self, Error> {
        let text = text.into();
        Limit::TextEmpty.check(text.len())?;
        Limit::ButtonTemplateText.check(text.chars().count())?;
        Limit::ButtonTemplateButtons.check(buttons.len())?;
        Ok(Self { text, buttons })
    }
}

/// One element (card) of a generic template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GenericElement {
    /// The title (at most 80 characters).
    pub title: String,
    /// The subtitle (at most 80 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// The image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The URL opened when the card is tapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Value>,
    /// Up to 3 buttons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

impl GenericElement {
    /// A card with a title of 1 to 80 characters. Add at least one other property.
    pub fn new(title: impl Into<String>) -> Result<Self, Error> {
        let title = title.into();
        Limit::TextEmpty.check(title.len())?;
        Limit::GenericTitle.check(title.chars().count())?;
        Ok(Self {
            title,
            subtitle: None,
            image_url: None,
            default_action: None,
            buttons: Vec::new(),
        })
    }

    /// Sets the subtitle (at most 80 characters).
    pub fn subtitle(mut self, subtitle: impl Into<String>) -> Result<Self, Error> {
        let subtitle = subtitle.into();
        Limit::GenericSubtitle.check(subtitle.chars().count())?;
        self.subtitle = Some(subtitle);
        Ok(self)
    }

    /// Sets the image.
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.image_url = Some(url.into());
        self
    }

    /// Sets the URL opened when the card is tapped.
    pub fn default_action(mut self, url: impl Into<String>) -> Self {
        self.default_action = Some(json!({ "type": "web_url", "url": url.into() }));
        self
    }

    /// Sets the buttons (at most 3, `web_url` or `postback`).
    pub fn buttons(mut self, buttons: Vec<Button>) -> Result<Self, Error> {
        Limit::GenericButtons.check(buttons.len())?;
        self.buttons = buttons;
        Ok(self)
    }

    fn has_content(&self) -> bool {
        self.subtitle.is_some()
            || self.image_url.is_some()
            || self.default_action.is_some()
            || !self.buttons.is_empty()
    }
}

/// A generic template: a carousel of 1 to 10 cards.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenericTemplate {
    /// The cards.
    pub elements: Vec<GenericElement>,
}

impl GenericTemplate {
    /// Checks the limits and builds the template. Every card needs a title and at least one other
    /// property.
    pub fn new(elements: Vec<GenericElement>) -> Result<Self, Error> {
        Limit::GenericElements.check(elements.len())?;
        if let Some(bare) = elements.iter().find(|e| !e.has_content()) {
            return Err(Error::validation(format!(
                "generic template card `{}` needs a subtitle, image_url, default_action or buttons besides its title",
                bare.title
            )));
        }
        Ok(Self { elements })
    }
}

/// A request to the Send API (`POST /<node>/messages`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SendRequest {
    recipient: Recipient,
    human_agent: bool,
    message: Option<Value>,
    sender_action: Option<String>,
    payload: Option<Value>,
}

fn check_text(text: &str) -> Result<(), Error> {
    Limit::TextEmpty.check(text.len())?;
    Limit::TextBytes.check(text.len())
}

fn attachment(kind: &AttachmentType, payload: Option<Value>) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::String(kind.as_str().to_owned()));
    if let Some(payload) = payload {
        map.insert("payload".into(), payload);
    }
    Value::Object(map)
}

impl SendRequest {
    fn message(recipient: Recipient, message: Value) -> Self {
        Self {
            recipient,
            human_agent: false,
            message: Some(message),
            sender_action: None,
            payload: None,
        }
    }

    /// A text message of 1 to 1,000 UTF-8 bytes.
    pub fn text(to: impl Into<Igsid>, text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        check_text(&text)?;
        Ok(Self::message(
            Recipient::User(to.into()),
            json!({ "text": text }),
        ))
    }

    /// A private reply to the author of a comment (`recipient.comment_id`).
    ///
    /// Only one private reply per comment is allowed, within 7 days of the comment (during the
    /// broadcast for Live). No `messaging_type` is sent: Meta rejects it with `comment_id`.
    pub fn private_reply(
        comment: impl Into<CommentId>,
        text: impl Into<String>,
    ) -> Result<Self, Error> {
        let text = text.into();
        check_text(&text)?;
        Ok(Self::message(
            Recipient::Comment(comment.into()),
            json!({ "text": text }),
        ))
    }

    /// One image by URL.
    pub fn image(to: impl Into<Igsid>, url: impl Into<String>) -> Self {
        Self::media(to, AttachmentType::Image, url)
    }

    /// 1 to 10 images by URL, sent as one message (`attachments`).
    pub fn images<I, U>(to: impl Into<Igsid>, urls: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        let items: Vec<Value> = urls
            .into_iter()
            .map(|url| attachment(&AttachmentType::Image, Some(json!({ "url": url.into() }))))
            .collect();
        Limit::Images.check(items.len())?;
        let mut items = items;
        let message = if items.len() == 1 {
            json!({ "attachment": items.remove(0) })
        } else {
            json!({ "attachments": items })
        };
        Ok(Self::message(Recipient::User(to.into()), message))
    }

    /// An image, audio, video or file attachment by URL.
    pub fn media(to: impl Into<Igsid>, kind: AttachmentType, url: impl Into<String>) -> Self {
        let payload = json!({ "url": url.into() });
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&kind, Some(payload)) }),
        )
    }

    /// An attachment uploaded earlier with the Attachment Upload API, by `attachment_id`.
    pub fn uploaded(
        to: impl Into<Igsid>,
        kind: AttachmentType,
        attachment_id: impl Into<String>,
    ) -> Self {
        let payload = json!({ "attachment_id": attachment_id.into() });
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&kind, Some(payload)) }),
        )
    }

    /// The heart sticker.
    pub fn like_heart(to: impl Into<Igsid>) -> Self {
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&AttachmentType::LikeHeart, None) }),
        )
    }

    /// A share of one of the account's own posts.
    pub fn media_share(to: impl Into<Igsid>, post_id: impl Into<String>) -> Self {
        let payload = json!({ "id": post_id.into() });
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&AttachmentType::MediaShare, Some(payload)) }),
        )
    }

    /// A text with 1 to 13 quick replies.
    pub fn quick_replies(
        to: impl Into<Igsid>,
        text: impl Into<String>,
        replies: Vec<QuickReply>,
    ) -> Result<Self, Error> {
        let text = text.into();
        check_text(&text)?;
        Limit::QuickReplies.check(replies.len())?;
        Ok(Self::message(
            Recipient::User(to.into()),
            json!({ "text": text, "quick_replies": replies }),
        ))
    }

    /// A button template.
    pub fn button_template(to: impl Into<Igsid>, template: ButtonTemplate) -> Self {
        let payload = json!({
            "template_type": "button",
            "text": template.text,
            "buttons": template.buttons,
        });
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&AttachmentType::Template, Some(payload)) }),
        )
    }

    /// A generic template (carousel).
    pub fn generic_template(to: impl Into<Igsid>, template: GenericTemplate) -> Self {
        let payload = json!({
            "template_type": "generic",
            "elements": template.elements,
        });
        Self::message(
            Recipient::User(to.into()),
            json!({ "attachment": attachment(&AttachmentType::Template, Some(payload)) }),
        )
    }

    /// A reaction to a message.
    pub fn react(to: impl Into<Igsid>, message: impl Into<Mid>, reaction: Reaction) -> Self {
        let mid: Mid = message.into();
        Self {
            recipient: Recipient::User(to.into()),
            human_agent: false,
            message: None,
            sender_action: Some("react".into()),
            payload: Some(json!({ "message_id": mid.as_str(), "reaction": reaction.as_str() })),
        }
    }

    /// Removes the account's reaction from a message.
    pub fn unreact(to: impl Into<Igsid>, message: impl Into<Mid>) -> Self {
        let mid: Mid = message.into();
        Self {
            recipient: Recipient::User(to.into()),
            human_agent: false,
            message: None,
            sender_action: Some("unreact".into()),
            payload: Some(json!({ "message_id": mid.as_str() })),
        }
    }

    /// A typing indicator or read receipt, sent alone.
    pub fn sender_action(to: impl Into<Igsid>, action: SenderAction) -> Self {
        Self {
            recipient: Recipient::User(to.into()),
            human_agent: false,
            message: None,
            sender_action: Some(action.as_str().to_owned()),
            payload: None,
        }
    }

    /// Tags the message `HUMAN_AGENT` (`messaging_type: MESSAGE_TAG`): a person answers within 7
    /// days of the user's last message. Needs the Human Agent feature. Refused for private replies
    /// and sender actions.
    pub fn human_agent(mut self) -> Result<Self, Error> {
        if matches!(self.recipient, Recipient::Comment(_)) {
            return Err(Error::validation(
                "a private reply cannot carry the HUMAN_AGENT tag (no messaging_type with comment_id)",
            ));
        }
        if self.message.is_none() {
            return Err(Error::validation(
                "the HUMAN_AGENT tag applies to messages, not to reactions or sender actions",
            ));
        }
        self.human_agent = true;
        Ok(self)
    }

    /// The recipient.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// Whether this is a private reply (recipient by `comment_id`).
    pub fn is_private_reply(&self) -> bool {
        matches!(self.recipient, Recipient::Comment(_))
    }

    /// Whether this request delivers something the person sees (a message or a reaction), as
    /// opposed to a typing indicator or read receipt.
    pub fn is_message(&self) -> bool {
        self.message.is_some() || self.payload.is_some()
    }

    /// The JSON body sent to the Send API.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for SendRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("recipient", &self.recipient)?;
        if self.human_agent {
            map.serialize_entry("messaging_type", "MESSAGE_TAG")?;
            map.serialize_entry("tag", "HUMAN_AGENT")?;
        }
        if let Some(message) = &self.message {
            map.serialize_entry("message", message)?;
        }
        if let Some(action) = &self.sender_action {
            map.serialize_entry("sender_action", action)?;
        }
        if let Some(payload) = &self.payload {
            map.serialize_entry("payload", payload)?;
        }
        map.end()
    }
}

/// The answer of the Send API: `{"recipient_id": "...", "message_id": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendResponse {
    /// The IGSID of the recipient.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub recipient_id: Option<String>,
    /// The id of the sent message (absent for sender actions).
    #[serde(default)]
    pub message_id: Option<Mid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn limit_of(err: Error) -> Limit {
        match err.kind() {
            ErrorKind::LimitExceeded { limit, .. } => *limit,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn text_limit_is_in_bytes() {
        assert!(SendRequest::text("1", "a".repeat(1000)).is_ok());
        assert_eq!(
            limit_of(SendRequest::text("1", "a".repeat(1001)).unwrap_err()),
            Limit::TextBytes
        );
        // 334 three-byte characters = 1002 bytes, under 1000 characters.
        assert_eq!(
            limit_of(SendRequest::text("1", "€".repeat(334)).unwrap_err()),
            Limit::TextBytes
        );
        assert_eq!(
            limit_of(SendRequest::text("1", "").unwrap_err()),
            Limit::TextEmpty
        );
    }

    #[test]
    fn template_and_reply_limits() {
        let eleven = (0..11).map(|i| format!("https://x/{i}.png"));
        assert_eq!(
            limit_of(SendRequest::images("1", eleven).unwrap_err()),
            Limit::Images
        );
        let qr = QuickReply::text("ok", "OK").unwrap();
        assert_eq!(
            limit_of(SendRequest::quick_replies("1", "t", vec![qr.clone(); 14]).unwrap_err()),
            Limit::QuickReplies
        );
        assert!(SendRequest::quick_replies("1", "t", vec![qr; 13]).is_ok());
        assert_eq!(
            limit_of(QuickReply::text("x".repeat(21), "p").unwrap_err()),
            Limit::QuickReplyTitle
        );
        let b = Button::postback("a", "b");
        assert_eq!(
            limit_of(ButtonTemplate::new("t", vec![]).unwrap_err()),
            Limit::ButtonTemplateButtons
        );
        assert_eq!(
            limit_of(ButtonTemplate::new("t", vec![b.clone(); 4]).unwrap_err()),
            Limit::ButtonTemplateButtons
        );
        assert_eq!(
            limit_of(ButtonTemplate::new("é".repeat(641), vec![b.clone()]).unwrap_err()),
            Limit::ButtonTemplateText
        );
        assert!(ButtonTemplate::new("é".repeat(640), vec![b.clone()]).is_ok());
        assert_eq!(
            limit_of(GenericElement::new("x".repeat(81)).unwrap_err()),
            Limit::GenericTitle
        );
        let card = GenericElement::new("t").unwrap();
        assert_eq!(
            limit_of(card.clone().subtitle("s".repeat(81)).unwrap_err()),
            Limit::GenericSubtitle
        );
        assert_eq!(
            limit_of(card.clone().buttons(vec![b; 4]).unwrap_err()),
            Limit::GenericButtons
        );
        let full = card.clone().image_url("https://x/i.png");
        assert_eq!(
            limit_of(GenericTemplate::new(vec![full; 11]).unwrap_err()),
            Limit::GenericElements
        );
        assert!(matches!(
            GenericTemplate::new(vec![card]).unwrap_err().kind(),
            ErrorKind::Validation { .. }
        ));
    }

    #[test]
    fn private_reply_has_no_messaging_type_and_refuses_tags() {
        let reply = SendRequest::private_reply("178", "thanks").unwrap();
        assert_eq!(
            reply.to_json(),
            json!({"recipient":{"comment_id":"178"},"message":{"text":"thanks"}})
        );
        assert!(reply.human_agent().is_err());
        let tagged = SendRequest::text("1", "hi").unwrap().human_agent().unwrap();
        assert_eq!(
            tagged.to_json(),
            json!({"recipient":{"id":"1"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"hi"}})
        );
    }

    #[test]
    fn sender_action_is_alone() {
        let action = SendRequest::sender_action("1", SenderAction::TypingOn);
        assert_eq!(
            action.to_json(),
            json!({"recipient":{"id":"1"},"sender_action":"typing_on"})
        );
        assert!(action.human_agent().is_err());
    }
}
