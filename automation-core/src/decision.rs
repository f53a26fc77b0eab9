//! The decision: plain serde data saying what to do and why.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flow::FlowEvent;
use crate::rule::{MatchMode, Message};

/// What the engine decided for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// The event id.
    pub event: String,
    /// The account.
    pub account: String,
    /// The contact (sender).
    pub contact: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The rule that fired, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in words (for logs and "why did this fire").
    pub reason: String,
    /// How the winning rule matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<Matched>,
    /// What to do, in order. Tag, field, flow and hand-off changes are already applied to the
    /// contact in the store; they are listed for the record.
    pub actions: Vec<PlannedAction>,
    /// Actions of the rule that were not planned, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedAction>,
    /// Candidate rules passed over before the winner (or all, if none won), and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub considered: Vec<Consideration>,
    /// Flow analytics records produced by this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analytics: Vec<FlowEvent>,
}

impl Decision {
    pub(crate) fn new(
        event: &crate::event::InboundEvent,
        outcome: Outcome,
        reason: impl Into<String>,
    ) -> Self {
        Decision {
            event: event.id.clone(),
            account: event.account.clone(),
            contact: event.sender.id.clone(),
            outcome,
            rule: None,
            reason: reason.into(),
            matched: None,
            actions: Vec::new(),
            skipped: Vec::new(),
            considered: Vec::new(),
            analytics: Vec::new(),
        }
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// A rule fired.
    Fired,
    /// A flow consumed the event (tap, reply) or woke up.
    Flow,
    /// No rule matched, or every match failed its conditions or limits.
    NoMatch,
    /// The event was already processed; nothing to do.
    Duplicate,
    /// Automation is paused for this contact (hand-off).
    Paused,
    /// The event never triggers rules (read receipt, echo).
    Ignored,
}

/// How the winning rule matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Matched {
    /// The mode.
    pub mode: MatchMode,
    /// The keyword, as written in the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
}

/// A candidate rule that did not fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Consideration {
    /// The rule.
    pub rule: String,
    /// Why it did not fire.
    pub reason: String,
}

/// An action that was not planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SkippedAction {
    /// The index in the rule's actions.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// The `HUMAN_AGENT` message tag (never used by automation; present for completeness of the
/// planned-message model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum MessageTag {
    /// Sent by a human within 7 days.
    HumanAgent,
}

/// Something to do, with every text rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlannedAction {
    /// Send a private reply to a comment (record the attempt before sending; never retry an
    /// ambiguous failure).
    PrivateReply {
        /// The comment.
        comment_id: String,
        /// The text.
        text: String,
    },
    /// Reply publicly under a comment.
    PublicReply {
        /// The comment.
        comment_id: String,
        /// The text.
        text: String,
    },
    /// Send a direct message.
    SendDm {
        /// The recipient (IGSID).
        recipient: String,
        /// The message.
        message: Message,
    },
    /// A tag was added to the contact.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// A tag was removed from the contact.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// A custom field was set.
    SetField {
        /// The field.
        name: String,
        /// The value.
        value: String,
    },
    /// A flow was started.
    StartFlow {
        /// The flow.
        flow: String,
    },
    /// Automation is paused for the contact until `until`; notify a human.
    HandOff {
        /// Until when.
        until: DateTime<Utc>,
        /// The note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Call an outbound webhook with a JSON body.
    Webhook {
        /// The URL.
        url: String,
        /// The body.
        body: serde_json::Value,
    },
    /// Answer the contact in DM with a language model's reply: the caller takes the last
    /// `context_messages` messages of the conversation with `recipient` (and no one else's),
    /// asks its model with `instructions` as the system prompt, and sends the answer as a text
    /// DM, or `fallback` when there is no usable answer. The 24-hour window was open at `now`.
    AiReply {
        /// The recipient (IGSID).
        recipient: String,
        /// The system prompt, rendered.
        instructions: String,
        /// The text to send when the model gives no usable answer, rendered.
        fallback: String,
        /// How many of the conversation's latest messages the model may see (1 to 50).
        context_messages: u32,
    },
    /// Call [`Engine::wake`](crate::engine::Engine::wake) for this contact at `at` (a flow delay).
    Wake {
        /// When.
        at: DateTime<Utc>,
    },
}
