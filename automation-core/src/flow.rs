//! Flows: small graphs of steps driven by button taps and replies.
//!
//! A [`Flow`] starts at its `start` step and runs steps until one has to wait: a message with
//! choices waits for a tap (postback or quick reply), `wait_for_reply` waits for the next text
//! message, `delay` waits until a time (the decision carries a
//! [`Wake`](crate::decision::PlannedAction::Wake) so the caller can call
//! [`Engine::wake`](crate::engine::Engine::wake) then). Each contact has at most one flow state
//! ([`FlowState`]); starting a flow replaces it. While a contact waits in a flow, taps and replies
//! for that flow are consumed by it before any rule. Every step entered, choice tapped and flow
//! completed is recorded as a [`FlowEvent`] for analytics.
//!
//! Choice payloads have the form `igdm:flow:<flow>:<step>:<index>`. A run executes at most
//! [`MAX_STEPS_PER_RUN`] steps, so a cycle of steps that never wait ends the flow instead of
//! looping.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::matcher::check_url;
use crate::rule::{Condition, Seconds};
use crate::template::{Template, TextLimit};

/// The most steps one run of a flow executes.
pub const MAX_STEPS_PER_RUN: usize = 64;

/// A flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Flow {
    /// Id, unique per account.
    pub id: String,
    /// The account (may come from the rules file's `account`).
    #[serde(default)]
    pub account: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The first step.
    pub start: String,
    /// The steps.
    pub steps: Vec<Step>,
}

/// One step of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// Id, unique in the flow.
    pub id: String,
    /// What the step does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What a step does. Serialized with a `type` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    /// Send a message. With choices, wait for one to be tapped; without, go to `next` (or end).
    Message {
        /// The text (a template).
        text: String,
        /// Choices: up to 3 as buttons, or up to 13 as quick replies.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        choices: Vec<Choice>,
        /// Show choices as quick replies instead of buttons.
        #[serde(default)]
        quick_replies: bool,
        /// The next step when there are no choices.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Wait for the next text message; optionally save it in a custom field.
    WaitForReply {
        /// The field to save the reply in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        save_to: Option<String>,
        /// The next step.
        next: String,
    },
    /// Branch on a condition.
    Condition {
        /// The condition.
        #[serde(rename = "if")]
        condition: Condition,
        /// The step when it holds.
        then: String,
        /// The step when it does not.
        #[serde(rename = "else")]
        otherwise: String,
    },
    /// Wait for a duration.
    Delay {
        /// How long.
        wait: Seconds,
        /// The next step.
        next: String,
    },
    /// Add and remove tags.
    Tag {
        /// Tags to add.
        #[serde(default)]
        add: Vec<String>,
        /// Tags to remove.
        #[serde(default)]
        remove: Vec<String>,
        /// The next step.
        next: String,
    },
    /// Set a custom field (the value is a template).
    Field {
        /// The field.
        name: String,
        /// The value.
        value: String,
        /// The next step.
        next: String,
    },
    /// Call an outbound webhook.
    Webhook {
        /// The URL.
        url: String,
        /// The next step.
        next: String,
    },
    /// End the flow.
    End,
}

/// A choice of a message step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Choice {
    /// The title (at most 20 characters).
    pub title: String,
    /// The step it leads to.
    pub next: String,
}

/// Where a contact is in a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FlowState {
    /// The flow id.
    pub flow: String,
    /// The step waiting.
    pub step: String,
    /// What it waits for.
    pub waiting: Waiting,
    /// When the flow was started.
    pub started_at: DateTime<Utc>,
}

/// What a flow waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Waiting {
    /// A tap on one of the step's choices.
    Choice,
    /// The next text message.
    Reply,
    /// A time.
    Until {
        /// When.
        at: DateTime<Utc>,
    },
}

/// An analytics record of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FlowEvent {
    /// The account.
    pub account: String,
    /// The contact.
    pub contact: String,
    /// The flow.
    pub flow: String,
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: FlowEventKind,
}

/// What happened in a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowEventKind {
    /// The flow was started.
    Started,
    /// A step was entered.
    StepEntered {
        /// The step.
        step: String,
    },
    /// A choice was tapped.
    ChoiceTapped {
        /// The step.
        step: String,
        /// The choice index.
        choice: usize,
        /// Its title.
        title: String,
    },
    /// A reply was received while waiting.
    ReplyReceived {
        /// The step.
        step: String,
    },
    /// The flow ended.
    Completed,
    /// The flow was replaced by another or stopped after too many steps.
    Abandoned,
}

/// The payload of a flow choice.
pub fn choice_payload(flow: &str, step: &str, index: usize) -> String {
    format!("igdm:flow:{flow}:{step}:{index}")
}

/// Parses a choice payload into (flow, step, index).
pub fn parse_choice_payload(payload: &str) -> Option<(&str, &str, usize)> {
    let rest = payload.strip_prefix("igdm:flow:")?;
    let (rest, index) = rest.rsplit_once(':')?;
    let (flow, step) = rest.rsplit_once(':')?;
    Some((flow, step, index.parse().ok()?))
}

/// A compiled step.
#[derive(Debug)]
pub(crate) enum CompiledStep {
    Message {
        text: Template,
        choices: Vec<(Template, usize)>,
        quick_replies: bool,
        next: Option<usize>,
    },
    WaitForReply {
        save_to: Option<String>,
        next: usize,
    },
    Condition {
        condition: Condition,
        then: usize,
        otherwise: usize,
    },
    Delay {
        wait: Seconds,
        next: usize,
    },
    Tag {
        add: Vec<String>,
        remove: Vec<String>,
        next: usize,
    },
    Field {
        name: String,
        value: Template,
        next: usize,
    },
    Webhook {
        url: String,
        next: usize,
    },
    End,
}

/// A validated flow with step references resolved to indices.
#[derive(Debug)]
pub(crate) struct CompiledFlow {
    pub(crate) flow: Flow,
    pub(crate) start: usize,
    pub(crate) steps: Vec<CompiledStep>,
}

impl CompiledFlow {
    pub(crate) fn new(flow: Flow) -> Result<CompiledFlow, Error> {
        let id = flow.id.clone();
        Self::build(flow).map_err(|e| e.in_rule(format!("flow {id}")))
    }

    pub(crate) fn step_index(&self, id: &str) -> Option<usize> {
        self.flow.steps.iter().position(|s| s.id == id)
    }

    fn build(flow: Flow) -> Result<CompiledFlow, Error> {
        let invalid = |m: String| Error::new(ErrorKind::InvalidFlow, m);
        if flow.id.trim().is_empty() || flow.id.contains(':') {
            return Err(invalid("a flow needs a non-empty `id` without `:`".into()));
        }
        if flow.account.trim().is_empty() {
            return Err(invalid(
                "the flow has no account; set `account` on the flow or at the top of the file"
                    .into(),
            ));
        }
        let mut seen = HashSet::new();
        for (i, s) in flow.steps.iter().enumerate() {
            if s.id.is_empty() || s.id.contains(':') {
                return Err(invalid("a step needs a non-empty `id` without `:`".into())
                    .in_field(format!("steps[{i}].id")));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(invalid(format!("two steps have the id `{}`", s.id))
                    .in_field(format!("steps[{i}].id")));
            }
        }
        let find = |id: &str, field: String| -> Result<usize, Error> {
            flow.steps
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| invalid(format!("unknown step `{id}`")).in_field(field))
        };
        let start = find(&flow.start, "start".into())?;
        let mut steps = Vec::with_capacity(flow.steps.len());
        for (i, s) in flow.steps.iter().enumerate() {
            let f = |name: &str| format!("steps[{i}].{name}");
            let tpl = |src: &str, limit, field: String| {
                Template::parse_with_limit(src, limit).map_err(|e| e.in_field(field))
            };
            steps.push(match &s.kind {
                StepKind::Message {
                    text,
                    choices,
                    quick_replies,
                    next,
                } => {
                    let max = if *quick_replies { 13 } else { 3 };
                    if choices.len() > max {
                        return Err(invalid(format!(
                            "{} choices; at most {max} as {}",
                            choices.len(),
                            if *quick_replies {
                                "quick replies"
                            } else {
                                "buttons"
                            }
                        ))
                        .in_field(f("choices")));
                    }
                    let limit = if choices.is_empty() || *quick_replies {
                        TextLimit::MESSAGE
                    } else {
                        TextLimit::Chars(640)
                    };
                    let text = tpl(text, limit, f("text"))?;
                    let mut cs = Vec::new();
                    for (j, c) in choices.iter().enumerate() {
                        cs.push((
                            tpl(
                                &c.title,
                                TextLimit::Chars(20),
                                f(&format!("choices[{j}].title")),
                            )?,
                            find(&c.next, f(&format!("choices[{j}].next")))?,
                        ));
                    }
                    let next = next.as_deref().map(|n| find(n, f("next"))).transpose()?;
                    CompiledStep::Message {
                        text,
                        choices: cs,
                        quick_replies: *quick_replies,
                        next,
                    }
                }
                StepKind::WaitForReply { save_to, next } => CompiledStep::WaitForReply {
                    save_to: save_to.clone(),
                    next: find(next, f("next"))?,
                },
                StepKind::Condition {
                    condition,
                    then,
                    otherwise,
                } => {
                    crate::matcher::check_condition(condition).map_err(|e| e.in_field(f("if")))?;
                    CompiledStep::Condition {
                        condition: condition.clone(),
                        then: find(then, f("then"))?,
                        otherwise: find(otherwise, f("else"))?,
                    }
                }
                StepKind::Delay { wait, next } => CompiledStep::Delay {
                    wait: *wait,
                    next: find(next, f("next"))?,
                },
                StepKind::Tag { add, remove, next } => CompiledStep::Tag {
                    add: add.clone(),
                    remove: remove.clone(),
                    next: find(next, f("next"))?,
                },
                StepKind::Field { name, value, next } => CompiledStep::Field {
                    name: name.clone(),
                    value: tpl(value, TextLimit::None, f("value"))?,
                    next: find(next, f("next"))?,
                },
                StepKind::Webhook { url, next } => {
                    check_url(url).map_err(|e| e.in_field(f("url")))?;
                    CompiledStep::Webhook {
                        url: url.clone(),
                        next: find(next, f("next"))?,
                    }
                }
                StepKind::End => CompiledStep::End,
            });
        }
        Ok(CompiledFlow { flow, start, steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(steps: &str) -> Result<CompiledFlow, Error> {
        let f: Flow = toml::from_str(&format!(
            "id = \"f\"\naccount = \"a\"\nstart = \"s1\"\n{steps}"
        ))
        .unwrap();
        CompiledFlow::new(f)
    }

    #[test]
    fn valid_flow_compiles() {
        let f = flow(
            r#"
[[steps]]
id = "s1"
type = "message"
text = "Pick one"
choices = [{title = "A", next = "end"}, {title = "B", next = "wait"}]
[[steps]]
id = "wait"
type = "wait_for_reply"
save_to = "email"
next = "end"
[[steps]]
id = "end"
type = "end"
"#,
        )
        .unwrap();
        assert_eq!(f.start, 0);
        assert_eq!(f.steps.len(), 3);
    }

    #[test]
    fn bad_references_are_reported() {
        let e =
            flow("[[steps]]\nid = \"s1\"\ntype = \"delay\"\nwait = \"1h\"\nnext = \"nowhere\"\n")
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidFlow);
        assert_eq!(e.field(), Some("steps[0].next"));
        assert!(e.to_string().contains("nowhere"));
        let e = flow("[[steps]]\nid = \"x\"\ntype = \"end\"\n").unwrap_err();
        assert_eq!(e.field(), Some("start"));
        let four = "choices = [{title=\"1\",next=\"s1\"},{title=\"2\",next=\"s1\"},{title=\"3\",next=\"s1\"},{title=\"4\",next=\"s1\"}]";
        let e = flow(&format!(
            "[[steps]]\nid = \"s1\"\ntype = \"message\"\ntext = \"t\"\n{four}\n"
        ))
        .unwrap_err();
        assert!(e.message().contains("at most 3"));
    }

    #[test]
    fn payloads_round_trip() {
        let p = choice_payload("welcome", "ask", 2);
        assert_eq!(parse_choice_payload(&p), Some(("welcome", "ask", 2)));
        assert_eq!(parse_choice_payload("PRICE"), None);
        assert_eq!(parse_choice_payload("igdm:flow:x:y:z"), None);
    }
}
