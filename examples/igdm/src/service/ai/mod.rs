//! AI replies: the [`Responder`] trait, its chat-completions implementation
//! ([`ChatCompletions`]), and how the sender turns automation-core's
//! [`PlannedAction::AiReply`] into a text DM.
//!
//! The trait lives here, in the service, rather than in `automation-core`: answering needs a
//! clock (the timeout) and a network call, and `automation-core` only decides. The engine plans
//! the reply (instructions, fallback, how many messages of context); the sender, when it takes
//! the outbox row, reads the last messages of **this contact's** conversation from the service
//! database (their messages as `user`, ours as `assistant`, nothing of any other contact, no
//! profile data), asks the responder with a timeout, and sends the answer, or the fallback when
//! the model fails, times out, answers with an error status or answers nothing. The text that
//! was sent is stored back in the outbox row, so a retried send repeats it instead of asking
//! again, and the delivery log records `ai_answered` or `ai_fallback` with the reason.
//!
//! ```
//! use igdm::service::ai::{ChatCompletions, ReplyRequest, Role, Turn};
//! let client = ChatCompletions::new("https://api.openai.com/v1", "gpt-4o-mini");
//! let request = ReplyRequest::new("You answer for Example Shop.")
//!     .turn(Turn::new(Role::User, "do you ship to Lisbon?"));
//! let body = client.body(&request);
//! assert_eq!(body["messages"][0]["role"], "system");
//! assert_eq!(body["messages"][1]["content"], "do you ship to Lisbon?");
//! ```

mod openai;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use automation_core::rule::Message;
use automation_core::PlannedAction;
use serde::Serialize;
use sqlx::Row;

pub use openai::ChatCompletions;

use super::db::{self, delivery_log, outbox, Db};
use super::error::Result;
use super::pipeline::Shared;

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// The contact.
    User,
    /// Our account (automation or a person of ours).
    Assistant,
}

/// One message of the conversation given to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Turn {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub text: String,
}

impl Turn {
    /// A message.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
        }
    }
}

/// What a [`Responder`] is asked: the instructions (system prompt) and the conversation's latest
/// messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplyRequest {
    /// The system prompt.
    pub instructions: String,
    /// The latest messages of the one conversation, oldest first.
    pub context: Vec<Turn>,
}

impl ReplyRequest {
    /// A request with no context yet.
    pub fn new(instructions: impl Into<String>) -> Self {
        Self {
            instructions: instructions.into(),
            context: Vec::new(),
        }
    }

    /// Adds a message at the end of the context.
    #[must_use]
    pub fn turn(mut self, turn: Turn) -> Self {
        self.context.push(turn);
        self
    }
}

/// Why a responder gave no answer. The sender sends the fallback text for every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyErrorKind {
    /// No answer in time.
    Timeout,
    /// The endpoint answered with this non-success HTTP status.
    Status(u16),
    /// The endpoint could not be reached.
    Unreachable,
    /// The answer could not be read.
    BadAnswer,
    /// The answer was empty.
    EmptyAnswer,
    /// No model is configured (`[ai]`).
    NotConfigured,
}

impl ReplyErrorKind {
    /// A short name for logs and the delivery log (`ai_timeout`, `ai_http_503`, ...).
    pub fn name(self) -> String {
        match self {
            Self::Timeout => "ai_timeout".into(),
            Self::Status(code) => format!("ai_http_{code}"),
            Self::Unreachable => "ai_unreachable".into(),
            Self::BadAnswer => "ai_bad_answer".into(),
            Self::EmptyAnswer => "ai_empty_answer".into(),
            Self::NotConfigured => "ai_not_configured".into(),
        }
    }
}

/// A failure of a [`Responder`]: a kind to match on and a message (never containing the API
/// key or the conversation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    kind: ReplyErrorKind,
    message: String,
}

impl ReplyError {
    /// A failure of `kind`.
    pub fn new(kind: ReplyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ReplyErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReplyError {}

/// Writes a reply to a conversation. Implement it to plug another model or provider in (set
/// [`Config::ai_responder`](crate::service::Config::ai_responder)); the service ships
/// [`ChatCompletions`], used when `[ai]` is configured.
#[async_trait]
pub trait Responder: Send + Sync + fmt::Debug {
    /// The reply text for `request`.
    async fn reply(&self, request: &ReplyRequest) -> std::result::Result<String, ReplyError>;
}

/// The most bytes of a DM text (the Send API's limit).
const MAX_TEXT_BYTES: usize = 1000;

/// The last `limit` messages of the conversation between `account` and `contact`, oldest
/// first: the contact's messages (`user`) and ours that were sent (`assistant`). Nothing of any
/// other contact is read.
pub async fn conversation(db: &Db, account: &str, contact: &str, limit: u32) -> Result<Vec<Turn>> {
    let limit = i64::from(limit.clamp(1, automation_core::rule::MAX_CONTEXT_MESSAGES));
    // The contact's messages in the DM thread, and ours that were sent. Both are ordered on
    // the service's clock (when a message was recorded, when ours was sent): the platform's
    // event times come from another clock.
    let inbound = sqlx::query(
        "SELECT text, processed_at, occurred_at FROM events WHERE account = $1 AND contact = $2 \
         AND kind IN ('message', 'story_reply', 'quick_reply', 'postback', 'ice_breaker') \
         AND text IS NOT NULL AND text <> '' \
         ORDER BY processed_at DESC, occurred_at DESC LIMIT $3",
    )
    .bind(account)
    .bind(contact)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let outbound = sqlx::query(
        "SELECT action, sent_at FROM outbox WHERE account = $1 AND recipient = $2 \
         AND kind IN ('send_dm', 'ai_reply', 'private_reply') \
         AND status IN ('sent', 'delivered', 'read') AND sent_at IS NOT NULL \
         ORDER BY sent_at DESC LIMIT $3",
    )
    .bind(account)
    .bind(contact)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    // (service time, platform time or 0, turn): a stable order for messages recorded together
    let mut turns: Vec<(i64, i64, Turn)> = Vec::new();
    for row in &inbound {
        let text: String = row.try_get("text")?;
        turns.push((
            row.try_get("processed_at")?,
            row.try_get("occurred_at")?,
            Turn::new(Role::User, text),
        ));
    }
    for row in &outbound {
        let action: String = row.try_get("action")?;
        let Ok(action) = serde_json::from_str::<PlannedAction>(&action) else {
            continue;
        };
        let text = match action {
            PlannedAction::SendDm {
                message: Message::Text { text, .. } | Message::Buttons { text, .. },
                ..
            }
            | PlannedAction::PrivateReply { text, .. } => text,
            _ => continue,
        };
        turns.push((row.try_get("sent_at")?, 0, Turn::new(Role::Assistant, text)));
    }
    turns.sort_by_key(|(at, platform_at, _)| (*at, *platform_at));
    let skip = turns
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(10));
    Ok(turns.into_iter().skip(skip).map(|(_, _, t)| t).collect())
}

/// The responder of the configuration: `ai_responder` if set, else a [`ChatCompletions`] client
/// if `[ai]` is set.
pub fn from_config(config: &super::Config) -> Option<std::sync::Arc<dyn Responder>> {
    if let Some(own) = &config.ai_responder {
        return Some(own.clone());
    }
    config
        .ai
        .as_ref()
        .map(|ai| std::sync::Arc::new(ChatCompletions::from_config(ai)) as _)
}

/// What an AI reply became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The text to send.
    pub text: String,
    /// Why the fallback is sent instead of an answer, if it is.
    pub fallback: Option<ReplyError>,
}

/// Asks `responder` (bounded by `timeout`) for the reply to `request`; the fallback text and the
/// reason when there is no usable answer. Texts are cut to the Send API's 1000 bytes.
pub async fn answer(
    responder: Option<&dyn Responder>,
    request: &ReplyRequest,
    fallback: &str,
    timeout: Duration,
) -> Resolved {
    let outcome = match responder {
        None => Err(ReplyError::new(
            ReplyErrorKind::NotConfigured,
            "no model is configured ([ai] base_url, model, api_key); the fallback was sent",
        )),
        Some(r) => match tokio::time::timeout(timeout, r.reply(request)).await {
            Ok(Ok(text)) if !text.trim().is_empty() => Ok(text),
            Ok(Ok(_)) => Err(ReplyError::new(
                ReplyErrorKind::EmptyAnswer,
                "the model answered nothing",
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ReplyError::new(
                ReplyErrorKind::Timeout,
                format!("the model did not answer within {} ms", timeout.as_millis()),
            )),
        },
    };
    match outcome {
        Ok(text) => Resolved {
            text: clip(text.trim(), MAX_TEXT_BYTES),
            fallback: None,
        },
        Err(e) => Resolved {
            text: clip(fallback, MAX_TEXT_BYTES),
            fallback: Some(e),
        },
    }
}

/// The sender's step for a claimed batch: every `ai_reply` row is resolved (concurrently, up
/// to `sender_concurrency` at once, each bounded by `[ai] timeout_ms`) into the text DM it
/// sends, which replaces the row's action; other rows pass unchanged, in order.
pub(crate) async fn resolve_batch(
    shared: &Shared,
    rows: Vec<outbox::Claimed>,
) -> Vec<outbox::Claimed> {
    use futures_util::StreamExt;
    if !rows.iter().any(|r| r.kind == "ai_reply") {
        return rows;
    }
    futures_util::stream::iter(rows)
        .map(|mut row| async move {
            if row.kind == "ai_reply" {
                if let Ok(action) = serde_json::from_str::<PlannedAction>(&row.action) {
                    let resolved = resolve(shared, &row, action).await;
                    if let Ok(json) = serde_json::to_string(&resolved) {
                        row.action = json;
                    }
                }
            }
            row
        })
        .buffered(shared.config.sender_concurrency.max(1))
        .collect()
        .await
}

/// The sender's step for an AI reply: asks the model and returns the text DM to send in its
/// place, stored back in the outbox row (so a retry repeats the same text) with a delivery-log
/// entry saying whether the model answered or the fallback is sent and why. Any other action is
/// returned unchanged.
pub(crate) async fn resolve(
    shared: &Shared,
    row: &outbox::Claimed,
    action: PlannedAction,
) -> PlannedAction {
    let PlannedAction::AiReply {
        recipient,
        instructions,
        fallback,
        context_messages,
    } = action
    else {
        return action;
    };
    let context = match conversation(&shared.db, &row.account, &recipient, context_messages).await {
        Ok(turns) => turns,
        Err(e) => {
            tracing::warn!(outbox = %row.key, error = %e, "AI reply: the conversation could not be read");
            Vec::new()
        }
    };
    let request = ReplyRequest {
        instructions,
        context,
    };
    let timeout = Duration::from_millis(shared.config.ai.as_ref().map_or(10_000, |a| a.timeout_ms));
    let resolved = answer(shared.ai.as_deref(), &request, &fallback, timeout).await;
    let (status, kind, message) = match &resolved.fallback {
        None => ("ai_answered", None, None),
        Some(e) => {
            tracing::warn!(outbox = %row.key, reason = %e, "AI reply: sending the fallback");
            (
                "ai_fallback",
                Some(e.kind().name()),
                Some(e.message().to_string()),
            )
        }
    };
    let planned = PlannedAction::SendDm {
        recipient,
        message: Message::Text {
            text: resolved.text,
            quick_replies: Vec::new(),
        },
    };
    if let Err(e) = remember(
        shared,
        row,
        &planned,
        status,
        kind.as_deref(),
        message.as_deref(),
    )
    .await
    {
        tracing::warn!(outbox = %row.key, error = %e, "AI reply: the answer could not be stored");
    }
    planned
}

async fn remember(
    shared: &Shared,
    row: &outbox::Claimed,
    planned: &PlannedAction,
    status: &str,
    error_kind: Option<&str>,
    error_message: Option<&str>,
) -> Result<()> {
    let now = db::now_ms();
    let json = serde_json::to_string(planned).unwrap_or_default();
    let mut tx = shared.db.begin().await?;
    sqlx::query("UPDATE outbox SET action = $1, updated_at = $2 WHERE key = $3")
        .bind(&json)
        .bind(now)
        .bind(&row.key)
        .execute(&mut *tx)
        .await?;
    delivery_log::append(
        &mut tx,
        &delivery_log::Entry {
            outbox_key: &row.key,
            account: &row.account,
            rule: row.rule.as_deref(),
            kind: &row.kind,
            attempt: row.attempts,
            status,
            error_kind,
            error_message,
            ..Default::default()
        },
        now,
    )
    .await?;
    tx.commit().await
}

/// `text` cut to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("abc", 10), "abc");
    }

    #[derive(Debug)]
    struct Slow;

    #[async_trait]
    impl Responder for Slow {
        async fn reply(&self, _: &ReplyRequest) -> std::result::Result<String, ReplyError> {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok("late".into())
        }
    }

    #[derive(Debug)]
    struct Blank;

    #[async_trait]
    impl Responder for Blank {
        async fn reply(&self, _: &ReplyRequest) -> std::result::Result<String, ReplyError> {
            Ok("  \n".into())
        }
    }

    #[tokio::test]
    async fn any_responder_is_bounded_by_the_timeout_and_blank_answers_fall_back() {
        let request = ReplyRequest::new("i");
        let r = answer(Some(&Slow), &request, "sorry", Duration::from_millis(50)).await;
        assert_eq!(r.text, "sorry");
        assert_eq!(r.fallback.unwrap().kind(), ReplyErrorKind::Timeout);
        let r = answer(Some(&Blank), &request, "sorry", Duration::from_secs(1)).await;
        assert_eq!(r.fallback.unwrap().kind(), ReplyErrorKind::EmptyAnswer);
        let r = answer(None, &request, "sorry", Duration::from_secs(1)).await;
        assert_eq!(r.fallback.unwrap().kind(), ReplyErrorKind::NotConfigured);
    }
}
