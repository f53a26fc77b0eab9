//! The rule model: plain serde data, as saved by users and read from rules files.
//!
//! A [`Rule`] says *when* (trigger kinds, scope, keyword match, exclusions, active window,
//! conditions, limits) and *what* (actions). Rules are compiled into a
//! [`RuleSet`](crate::matcher::RuleSet), which validates every keyword, regex and template.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::flow::Flow;

/// One automation rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rule {
    /// Unique id of the rule within a rule set.
    pub id: String,
    /// The Instagram account the rule belongs to. In a [`RulesFile`] it may be left out and
    /// taken from the file's `account`.
    #[serde(default)]
    pub account: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disabled rules are kept but never fire.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Higher priority wins conflicts. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// When the rule was created; older rules win ties of priority and specificity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Which events the rule listens to. Empty means comments and messages.
    #[serde(default)]
    pub on: Vec<TriggerKind>,
    /// For comment triggers: which media.
    #[serde(default)]
    pub scope: Scope,
    /// How the text must match.
    #[serde(default, rename = "match")]
    pub matcher: Match,
    /// Keywords or phrases that veto the rule when present (contains, on word boundaries).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The rule only fires inside this time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveWindow>,
    /// Every condition must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Firing limits.
    #[serde(default)]
    pub limits: Limits,
    /// What to do, in order.
    #[serde(default)]
    pub actions: Vec<Action>,
}

fn yes() -> bool {
    true
}

impl Rule {
    /// A new enabled rule for `account` with no triggers, matching any message, and no actions.
    pub fn new(id: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            account: account.into(),
            name: None,
            enabled: true,
            priority: 0,
            created_at: None,
            on: Vec::new(),
            scope: Scope::Any,
            matcher: Match::default(),
            exclude: Vec::new(),
            active: None,
            conditions: Vec::new(),
            limits: Limits::default(),
            actions: Vec::new(),
        }
    }

    /// Adds a trigger kind.
    #[must_use]
    pub fn on(mut self, kind: TriggerKind) -> Self {
        self.on.push(kind);
        self
    }

    /// Sets the match.
    #[must_use]
    pub fn matching(mut self, matcher: Match) -> Self {
        self.matcher = matcher;
        self
    }

    /// Sets the scope.
    #[must_use]
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the creation time.
    #[must_use]
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Adds an exclusion keyword.
    #[must_use]
    pub fn exclude(mut self, keyword: impl Into<String>) -> Self {
        self.exclude.push(keyword.into());
        self
    }

    /// Adds a condition.
    #[must_use]
    pub fn condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Sets the limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the active window.
    #[must_use]
    pub fn active(mut self, window: ActiveWindow) -> Self {
        self.active = Some(window);
        self
    }

    /// Adds an action.
    #[must_use]
    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// Sets the enabled flag.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The trigger kinds in effect (`on`, or comments and messages when `on` is empty).
    pub fn triggers(&self) -> Vec<TriggerKind> {
        if self.on.is_empty() {
            vec![TriggerKind::Comment, TriggerKind::Message]
        } else {
            self.on.clone()
        }
    }
}

/// The kinds of event a rule can listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TriggerKind {
    /// A comment on a post, reel, story or ad.
    Comment,
    /// A comment on a live broadcast.
    LiveComment,
    /// A direct message (text and/or attachments).
    #[serde(alias = "dm")]
    Message,
    /// A reply to our story.
    StoryReply,
    /// A mention of our account in someone's story.
    StoryMention,
    /// A button tap (matched on its payload).
    Postback,
    /// A quick-reply tap (matched on its payload).
    QuickReply,
    /// An ice-breaker tap (matched on its payload).
    IceBreaker,
    /// A referral (matched on its `ref`).
    Referral,
    /// An opt-in (matched on its payload).
    OptIn,
    /// A reaction to a message.
    Reaction,
}

impl TriggerKind {
    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Which media a comment rule applies to. Ignored for non-comment events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// Any media.
    #[default]
    Any,
    /// Only these media ids.
    Media {
        /// The media ids.
        ids: Vec<String>,
    },
    /// Any feed post.
    AnyPost,
    /// Any reel.
    AnyReel,
    /// Live broadcasts.
    Live,
}

/// How a rule matches text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MatchMode {
    /// Any event of the trigger kinds matches (catch-all / default reply).
    #[default]
    Any,
    /// The whole normalized text equals a keyword.
    Exact,
    /// The normalized text contains a keyword or phrase on word boundaries.
    Contains,
    /// The normalized text starts with a keyword or phrase (ending on a word boundary).
    StartsWith,
    /// The original (not normalized) text matches a regular expression (`regex` crate syntax).
    Regex,
}

/// The text match of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Match {
    /// The mode.
    #[serde(default)]
    pub mode: MatchMode,
    /// Keywords or phrases (for `exact`, `contains`, `starts_with`); any one matching is enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// The pattern (for `regex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Match {
    /// Matches everything.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches when the whole text is one of `keywords`.
    pub fn exact<S: Into<String>>(keywords: impl IntoIterator<Item = S>) -> Self {
        Self::new(MatchMode::Exact, keywords)
    }

    /// Matches when the text contains one of `keywords` on word boundaries.
    pub fn contains<S: Into<String>>(keywords: impl IntoIterator<Item = S>) -> Self {
        Self::new(MatchMode::Contains, keywords)
    }

    /// Matches when the text starts with one of `keywords`.
    pub fn starts_with<S: Into<String>>(keywords: impl IntoIterator<Item = S>) -> Self {
        Self::new(MatchMode::StartsWith, keywords)
    }

    /// Matches the original text against a regular expression.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self {
            mode: MatchMode::Regex,
            keywords: Vec::new(),
            pattern: Some(pattern.into()),
        }
    }

    /// A match of `mode` over `keywords`.
    pub fn new<S: Into<String>>(mode: MatchMode, keywords: impl IntoIterator<Item = S>) -> Self {
        Self {
            mode,
            keywords: keywords.into_iter().map(Into::into).collect(),
            pattern: None,
        }
    }
}

/// A time window in which a rule is active: `from <= now < until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActiveWindow {
    /// Start (inclusive); open if absent.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive); open if absent.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl ActiveWindow {
    /// A window.
    pub fn new(from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Self {
        Self { from, until }
    }

    /// Whether `now` is inside.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| now >= f) && self.until.is_none_or(|u| now < u)
    }
}

/// A condition on the contact or the conversation. All conditions of a rule must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// The sender follows (or does not follow) our account. Unknown follow status fails both.
    Follower {
        /// `true`: must follow; `false`: must not follow.
        follows: bool,
    },
    /// A new contact (first event ever seen from them) or a returning one.
    Contact {
        /// Which.
        is: ContactAge,
    },
    /// The contact has this tag.
    HasTag {
        /// The tag.
        tag: String,
    },
    /// The contact lacks this tag.
    LacksTag {
        /// The tag.
        tag: String,
    },
    /// A custom field comparison.
    Field {
        /// The field name.
        name: String,
        /// The comparison.
        op: FieldOp,
        /// The value to compare with (not needed for `exists` / `missing`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<FieldValue>,
    },
    /// The messaging window with this contact is open at `now` (`standard`: 24 h since their last
    /// message; `human_agent`: 7 days).
    WithinWindow {
        /// Which window.
        #[serde(default)]
        window: WindowKind,
    },
}

/// New or returning contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContactAge {
    /// First event from them.
    New,
    /// Seen before.
    Returning,
}

/// The messaging windows of the platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WindowKind {
    /// 24 hours after the person's last message.
    #[default]
    Standard,
    /// 7 days after the person's last message (`HUMAN_AGENT` tag).
    HumanAgent,
}

/// A comparison of a custom field. Values are compared as numbers when both sides parse as
/// numbers, otherwise as strings (`contains` is a case-sensitive substring test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldOp {
    /// Equal.
    Eq,
    /// Not equal (also true when the field is missing).
    Ne,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less or equal.
    Lte,
    /// Contains as a substring.
    Contains,
    /// The field is set.
    Exists,
    /// The field is not set.
    Missing,
}

/// A field value in a condition: a string, number or boolean (all compared via their text).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValue(pub String);

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        Ok(FieldValue(match V::deserialize(d)? {
            V::S(s) => s,
            V::I(n) => n.to_string(),
            V::F(f) => f.to_string(),
            V::B(b) => b.to_string(),
        }))
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Firing limits of a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Fire at most once per contact, ever.
    #[serde(default)]
    pub once_per_contact: bool,
    /// Minimum time between two firings for the same contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Seconds>,
    /// At most this many firings per clock hour (UTC, fixed window) for the whole rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
}

impl Limits {
    /// Once per contact.
    #[must_use]
    pub fn once_per_contact(mut self) -> Self {
        self.once_per_contact = true;
        self
    }

    /// A cooldown per contact.
    #[must_use]
    pub fn cooldown(mut self, seconds: u64) -> Self {
        self.cooldown = Some(Seconds(seconds));
        self
    }

    /// A global cap per hour.
    #[must_use]
    pub fn max_per_hour(mut self, n: u32) -> Self {
        self.max_per_hour = Some(n);
        self
    }
}

/// A duration in whole seconds. Deserializes from a number of seconds or a string such as
/// `"90s"`, `"30m"`, `"2h"`, `"7d"`; serializes as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub u64);

impl Seconds {
    /// As a chrono duration (saturating).
    pub fn duration(self) -> chrono::TimeDelta {
        chrono::TimeDelta::try_seconds(i64::try_from(self.0).unwrap_or(i64::MAX / 1000))
            .unwrap_or(chrono::TimeDelta::MAX)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            N(u64),
            S(String),
        }
        match V::deserialize(d)? {
            V::N(n) => Ok(Seconds(n)),
            V::S(s) => parse_duration(&s).map(Seconds).ok_or_else(|| {
                D::Error::custom(format!(
                    "`{s}` is not a duration; use seconds or a number with s, m, h or d (`30m`)"
                ))
            }),
        }
    }
}

fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mul = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Something a rule does. Every text is a [template](crate::template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Reply privately (in DM) to the comment. Instagram allows one per comment, within 7 days.
    PrivateReply {
        /// The text.
        text: String,
    },
    /// Reply publicly under the comment with one of the variants, chosen at random.
    PublicReply {
        /// The variants (at least one).
        variants: Vec<String>,
    },
    /// Send a direct message (only inside the 24-hour window).
    SendDm {
        /// The message.
        message: Message,
    },
    /// Add a tag to the contact.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Remove a tag from the contact.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// Set a custom field of the contact (the value is a template).
    SetField {
        /// The field name.
        name: String,
        /// The value.
        value: String,
    },
    /// Start a flow for the contact.
    StartFlow {
        /// The flow id.
        flow: String,
    },
    /// Hand the conversation to a human: pause automation for this contact.
    HandOff {
        /// For how long.
        pause: Seconds,
        /// A note for the human, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Call an outbound webhook with the event and rule.
    Webhook {
        /// The URL.
        url: String,
    },
    /// Answer the contact in DM with a reply written by a language model (only inside the
    /// 24-hour window). The engine only plans it ([`PlannedAction::AiReply`]); the caller
    /// gathers the last `context_messages` messages of this conversation, asks its model with
    /// `instructions` as the system prompt, and sends the answer, or `fallback` when the model
    /// fails, times out or answers nothing.
    ///
    /// [`PlannedAction::AiReply`]: crate::decision::PlannedAction::AiReply
    AiReply {
        /// The system prompt (a template, at most 4,000 characters).
        instructions: String,
        /// The text sent when no answer comes (a template; a message text, at most 1000 bytes).
        fallback: String,
        /// How many of the conversation's latest messages (both directions) the model sees:
        /// 1 to 50. Default 10.
        #[serde(default = "default_context_messages")]
        context_messages: u32,
    },
}

/// The default number of conversation messages an AI reply sees.
pub const DEFAULT_CONTEXT_MESSAGES: u32 = 10;

/// The most conversation messages an AI reply may see.
pub const MAX_CONTEXT_MESSAGES: u32 = 50;

fn default_context_messages() -> u32 {
    DEFAULT_CONTEXT_MESSAGES
}

/// A direct message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
    /// Text, optionally with quick replies (at most 13, titles at most 20 characters).
    Text {
        /// The text (at most 1000 bytes after rendering).
        text: String,
        /// Quick replies.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        quick_replies: Vec<QuickReply>,
    },
    /// A button template: text (at most 640 characters) and 1 to 3 buttons.
    Buttons {
        /// The text.
        text: String,
        /// The buttons.
        buttons: Vec<Button>,
    },
    /// A generic template (carousel) of 1 to 10 elements.
    Generic {
        /// The elements.
        elements: Vec<Element>,
    },
    /// An attachment by URL.
    Media {
        /// `image`, `video`, `audio` or `file`.
        media: MediaType,
        /// The URL.
        url: String,
    },
}

/// A quick reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuickReply {
    /// The title (template, at most 20 characters).
    pub title: String,
    /// The payload returned when tapped.
    pub payload: String,
}

/// A button of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Button {
    /// Opens a URL.
    WebUrl {
        /// The title.
        title: String,
        /// The URL.
        url: String,
    },
    /// Sends a postback with the payload.
    Postback {
        /// The title.
        title: String,
        /// The payload.
        payload: String,
    },
}

/// An element of a generic template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Element {
    /// Title (template, at most 80 characters).
    pub title: String,
    /// Subtitle (template, at most 80 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Up to 3 buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

/// The media type of an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaType {
    /// An image.
    Image,
    /// A video.
    Video,
    /// Audio.
    Audio,
    /// A file (PDF).
    File,
}

/// A rules file: rules and flows, for one account or several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RulesFile {
    /// Default account for rules and flows that do not name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The flows.
    #[serde(default)]
    pub flows: Vec<Flow>,
}

impl RulesFile {
    /// Parses a rules file in JSON. Errors carry line and column.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: Self = serde::Deserialize::deserialize(de).map_err(|e| {
            crate::Error::new(crate::ErrorKind::Parse, strip_position(&e.to_string()))
                .at(e.line(), e.column())
        })?;
        Ok(file.with_default_account())
    }

    /// Parses a rules file in TOML. Errors carry line and column.
    pub fn from_toml(text: &str) -> crate::Result<Self> {
        let file: Self = toml::from_str(text).map_err(|e| {
            let mut err =
                crate::Error::new(crate::ErrorKind::Parse, e.message().trim().to_string());
            if let Some(span) = e.span() {
                let (line, column) = line_column(text, span.start);
                err = err.at(line, column);
            }
            err
        })?;
        Ok(file.with_default_account())
    }

    /// Parses JSON if the text starts with `{`, TOML otherwise.
    pub fn parse(text: &str) -> crate::Result<Self> {
        if text.trim_start().starts_with('{') {
            Self::from_json(text)
        } else {
            Self::from_toml(text)
        }
    }

    fn with_default_account(mut self) -> Self {
        if let Some(account) = &self.account {
            for rule in &mut self.rules {
                if rule.account.is_empty() {
                    rule.account.clone_from(account);
                }
            }
            for flow in &mut self.flows {
                if flow.account.is_empty() {
                    flow.account.clone_from(account);
                }
            }
        }
        self
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub(crate) fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in text.bytes().enumerate().take(at) {
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let column = text
        .get(line_start..at)
        .map_or(at - line_start, |s| s.chars().count())
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("15"), Some(15));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn json_parse_errors_have_positions() {
        let err = RulesFile::from_json("{\"rules\": [\n {\"id\": 1}]}").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Parse);
        assert_eq!(err.position().map(|p| p.0), Some(2));
    }

    #[test]
    fn toml_parse_errors_have_positions() {
        let err =
            RulesFile::from_toml("account = \"a\"\n[[rules]]\nid = \"x\"\non = [\"tweet\"]\n")
                .unwrap_err();
        assert_eq!(err.position().map(|p| p.0), Some(4), "{err}");
        assert!(err.message().contains("tweet"), "{err}");
    }

    #[test]
    fn default_account_applies() {
        let f = RulesFile::from_toml("account = \"a\"\n[[rules]]\nid = \"x\"\n").unwrap();
        assert_eq!(f.rules[0].account, "a");
        assert!(f.rules[0].enabled);
        assert_eq!(
            f.rules[0].triggers(),
            vec![TriggerKind::Comment, TriggerKind::Message]
        );
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncdé\nx", 7), (2, 4));
        assert_eq!(line_column("", 5), (1, 1));
    }
}
