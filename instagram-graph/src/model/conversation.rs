//! Conversations and their messages (Conversations API).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{ConversationId, Mid};
use crate::page::Page;

/// A conversation between the account and one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Conversation {
    /// The conversation id.
    pub id: ConversationId,
    /// When the conversation last changed.
    #[serde(
        default,
        deserialize_with = "crate::model::de::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_time: Option<DateTime<Utc>>,
    /// The messages, when requested with `fields=messages`. Only the 20 most recent can be read
    /// in detail.
    #[serde(default)]
    pub messages: Option<Page<Message>>,
    /// The participants, when requested with `fields=participants`.
    #[serde(default)]
    pub participants: Option<Page<Participant>>,
}

/// A message of a conversation. Only the requested fields are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// The message id.
    pub id: Mid,
    /// When the message was sent.
    #[serde(
        default,
        deserialize_with = "crate::model::de::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_time: Option<DateTime<Utc>>,
    /// The sender.
    #[serde(default)]
    pub from: Option<Participant>,
    /// The recipients.
    #[serde(default)]
    pub to: Option<Page<Participant>>,
    /// The text of the message.
    #[serde(default)]
    pub message: Option<String>,
    /// Whether the message has content the API cannot return.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_unsupported: Option<bool>,
}

/// A person or account taking part in a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Participant {
    /// The IGSID of a person, or the `IG_ID` of the account.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The username.
    #[serde(default)]
    pub username: Option<String>,
}

/// How many of the most recent messages of a conversation can be read in detail. Older messages
/// answer with an error as if they were deleted.
pub const READABLE_RECENT_MESSAGES: usize = 20;
