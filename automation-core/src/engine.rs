//! The engine: decides what to do for an event, using a compiled [`RuleSet`] and a [`Store`].
//!
//! [`Engine::decide`] runs these steps:
//!
//! 1. **Idempotency**: the event id is claimed in the [`DedupStore`](crate::store::DedupStore);
//!    an event seen before yields [`Outcome::Duplicate`] and no actions.
//! 2. **Contact**: loaded or created; username, name and follow status are refreshed from the
//!    event, and messages from the person renew the messaging window.
//! 3. **Echoes and reads** never trigger rules. A human's reply from the Instagram app (an echo
//!    not sent by this app) pauses automation for the contact when
//!    [`EngineConfig::pause_on_human_reply`] is set.
//! 4. **Hand-off**: while the contact is paused, nothing is sent ([`Outcome::Paused`]).
//! 5. **Flows**: a tap on a flow choice, or a reply while a flow waits for one, advances the
//!    flow ([`Outcome::Flow`]).
//! 6. **Rules**: the candidates of the rule set, best first, are tried in order; the first whose
//!    conditions and limits pass fires. Its actions are planned with every text rendered; actions
//!    the messaging policy forbids are listed in [`Decision::skipped`] with the reason.
//!
//! Contact changes (tags, fields, hand-off pause, flow state) are written to the store before
//! `decide` returns; messages and webhooks are returned for the caller to send.
//!
//! The event is claimed first. A service backed by a database should run `decide` and the write
//! of the planned actions (its outbox) in one transaction, so that a failure rolls back the claim
//! and a redelivery decides again; a private reply is claimed per comment as soon as it is
//! planned, and is never planned twice.
//!
//! The engine has no clock: `now` is an argument, and `seed` drives every random choice (public
//! reply variants, spin variants), so a decision can be replayed exactly.

use chrono::{DateTime, Utc};

use crate::decision::{Consideration, Decision, Matched, Outcome, PlannedAction, SkippedAction};
use crate::error::Result;
use crate::event::{EventKind, InboundEvent};
use crate::flow::{
    choice_payload, parse_choice_payload, CompiledFlow, CompiledStep, FlowEvent, FlowEventKind,
    FlowState, Waiting, MAX_STEPS_PER_RUN,
};
use crate::matcher::{CompiledAction, CompiledMessage, CompiledRule, RuleSet};
use crate::policy::{messaging_window, private_reply, PrivateReply, Window};
use crate::rule::{
    Button, Condition, ContactAge, Element, FieldOp, Limits, Message, QuickReply, Seconds,
    WindowKind,
};
use crate::store::{Contact, Store};
use crate::template::{
    SplitMix, Template, Vars, MAX_FIELD_CHARS, MAX_FIRST_NAME_CHARS, MAX_KEYWORD_CHARS,
    MAX_NAME_CHARS, MAX_USERNAME_CHARS,
};

/// Engine settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Pause automation for a contact for this long when a human replies from the Instagram app
    /// (a message echo not sent by this app). Default: 30 minutes. `None` disables it.
    pub pause_on_human_reply: Option<Seconds>,
    /// The most candidate rules tried per event (conditions and limits checked). Default 32.
    pub max_candidates: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pause_on_human_reply: Some(Seconds(30 * 60)),
            max_candidates: 32,
        }
    }
}

/// The rule engine.
#[derive(Debug, Default)]
pub struct Engine {
    rules: RuleSet,
    config: EngineConfig,
}

impl Engine {
    /// An engine over `rules` with the default configuration.
    pub fn new(rules: RuleSet) -> Self {
        Engine {
            rules,
            config: EngineConfig::default(),
        }
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The rule set, to insert or remove rules.
    pub fn rules_mut(&mut self) -> &mut RuleSet {
        &mut self.rules
    }

    /// Decides what to do for `event` at `now`; `seed` drives random choices.
    pub async fn decide<S: Store + ?Sized>(
        &self,
        store: &S,
        event: &InboundEvent,
        now: DateTime<Utc>,
        seed: u64,
    ) -> Result<Decision> {
        let key = if event.id.is_empty() {
            format!(
                "event:{:?}:{}:{}",
                event.trigger(),
                event.sender.id,
                event.occurred_at.timestamp_micros()
            )
        } else {
            format!("event:{}", event.id)
        };
        if !store.claim(&event.account, &key, now).await? {
            return Ok(Decision::new(
                event,
                Outcome::Duplicate,
                "this event was already processed",
            ));
        }
        if matches!(event.kind, EventKind::Read { .. }) {
            return Ok(Decision::new(
                event,
                Outcome::Ignored,
                "read receipts never trigger rules",
            ));
        }
        let existing = store.contact(&event.account, &event.sender.id).await?;
        let is_new = existing.is_none();
        let mut contact =
            existing.unwrap_or_else(|| Contact::new(&event.account, &event.sender.id, now));
        refresh_contact(&mut contact, event, now);

        if let EventKind::Echo { from_app, .. } = &event.kind {
            let mut reason = "message echoes never trigger rules".to_string();
            if let (false, Some(pause)) = (*from_app, self.config.pause_on_human_reply) {
                let until = later(now, pause);
                contact.paused_until = Some(contact.paused_until.map_or(until, |p| p.max(until)));
                reason = format!(
                    "a human replied from the Instagram app; automation paused until {until}"
                );
            }
            store.put_contact(contact).await?;
            return Ok(Decision::new(event, Outcome::Ignored, reason));
        }

        if let Some(until) = contact.paused_until.filter(|&u| u > now) {
            store.put_contact(contact).await?;
            return Ok(Decision::new(
                event,
                Outcome::Paused,
                format!("automation is paused for this contact until {until} (hand-off)"),
            ));
        }

        let mut run = Run {
            store,
            rules: &self.rules,
            event: Some(event),
            contact,
            is_new,
            now,
            rng: SplitMix(seed),
            keyword: None,
            decision: Decision::new(event, Outcome::NoMatch, String::new()),
        };

        if run.flow_input().await? {
            return run.finish().await;
        }

        let mut buf = String::new();
        let candidates = self.rules.candidates_with(event, now, &mut buf);
        if candidates.is_empty() {
            run.decision.reason = "no rule matched".into();
            return run.finish().await;
        }
        for cand in candidates.iter().take(self.config.max_candidates) {
            let Some(compiled) = self.rules.compiled_slot(cand.slot) else {
                continue;
            };
            if let Some(why) = run.blocked(compiled).await? {
                run.decision.considered.push(Consideration {
                    rule: compiled.rule.id.clone(),
                    reason: why,
                });
                continue;
            }
            run.keyword = cand.keyword.map(str::to_string);
            run.decision.outcome = Outcome::Fired;
            run.decision.rule = Some(compiled.rule.id.clone());
            run.decision.matched = Some(Matched {
                mode: cand.mode,
                keyword: cand.keyword.map(str::to_string),
            });
            run.decision.reason = describe(compiled, cand.keyword, event);
            run.fire(compiled).await?;
            return run.finish().await;
        }
        run.decision.reason = if candidates.len() > self.config.max_candidates {
            format!(
                "{} rules matched; the first {} failed their conditions or limits",
                candidates.len(),
                self.config.max_candidates
            )
        } else {
            "rules matched but none passed its conditions and limits".into()
        };
        run.finish().await
    }

    /// Resumes a flow waiting on a delay for `contact`, if it is due at `now`.
    pub async fn wake<S: Store + ?Sized>(
        &self,
        store: &S,
        account: &str,
        contact: &str,
        now: DateTime<Utc>,
        seed: u64,
    ) -> Result<Decision> {
        let mut decision = Decision {
            event: format!("wake:{contact}:{}", now.timestamp()),
            account: account.to_string(),
            contact: contact.to_string(),
            outcome: Outcome::NoMatch,
            rule: None,
            reason: "no flow delay is due for this contact".into(),
            matched: None,
            actions: Vec::new(),
            skipped: Vec::new(),
            considered: Vec::new(),
            analytics: Vec::new(),
        };
        let Some(state) = store.flow_state(account, contact).await? else {
            return Ok(decision);
        };
        let Waiting::Until { at } = state.waiting else {
            return Ok(decision);
        };
        if at > now {
            decision.reason = format!("the flow delay is due at {at}");
            return Ok(decision);
        }
        let Some(c) = store.contact(account, contact).await? else {
            return Ok(decision);
        };
        if c.paused_until.is_some_and(|u| u > now) {
            decision.outcome = Outcome::Paused;
            decision.reason = "automation is paused for this contact (hand-off)".into();
            return Ok(decision);
        }
        let mut run = Run {
            store,
            rules: &self.rules,
            event: None,
            contact: c,
            is_new: false,
            now,
            rng: SplitMix(seed),
            keyword: None,
            decision,
        };
        let flow = self.rules.compiled_flow(account, &state.flow);
        let step = flow.and_then(|f| f.step_index(&state.step));
        match (flow, step) {
            (Some(flow), Some(i)) => {
                let next = match &flow.steps[i] {
                    CompiledStep::Delay { next, .. } => *next,
                    _ => i,
                };
                run.decision.outcome = Outcome::Flow;
                run.decision.reason = format!("flow `{}` resumed after its delay", state.flow);
                let new = run.run_flow(flow, next, state.started_at);
                store.put_flow_state(account, contact, new).await?;
            }
            _ => {
                store.put_flow_state(account, contact, None).await?;
                run.decision.reason = format!(
                    "flow `{}` no longer exists; its state was cleared",
                    state.flow
                );
            }
        }
        run.finish().await
    }
}

fn describe(c: &CompiledRule, keyword: Option<&str>, event: &InboundEvent) -> String {
    let what = match event.trigger() {
        Some(t) => format!("{t:?}").to_lowercase(),
        None => "event".into(),
    };
    match keyword {
        Some(k) => format!(
            "{what} matched keyword \"{k}\" ({:?}) of rule `{}` (priority {})",
            c.rule.matcher.mode, c.rule.id, c.rule.priority
        )
        .replace("(Exact)", "(exact)")
        .replace("(Contains)", "(contains)")
        .replace("(StartsWith)", "(starts_with)"),
        None => format!(
            "{what} matched rule `{}` ({:?}, priority {})",
            c.rule.id, c.rule.matcher.mode, c.rule.priority
        )
        .replace("(Any,", "(any,")
        .replace("(Regex,", "(regex,"),
    }
}

fn refresh_contact(contact: &mut Contact, event: &InboundEvent, now: DateTime<Utc>) {
    if let Some(u) = &event.sender.username {
        contact.username = Some(u.chars().take(MAX_USERNAME_CHARS).collect());
    }
    if let Some(n) = &event.sender.name {
        contact.name = Some(n.chars().take(MAX_NAME_CHARS).collect());
    }
    if event.sender.follows_account.is_some() {
        contact.follows_account = event.sender.follows_account;
    }
    contact.last_interaction = contact.last_interaction.max(now);
    if event.opens_window() {
        let at = event.occurred_at.min(now);
        contact.last_inbound = Some(contact.last_inbound.map_or(at, |l| l.max(at)));
    }
}

/// Whether `condition` holds for `contact` at `now`.
pub fn condition_holds(
    condition: &Condition,
    contact: &Contact,
    is_new: bool,
    now: DateTime<Utc>,
) -> bool {
    match condition {
        Condition::Follower { follows } => contact.follows_account == Some(*follows),
        Condition::Contact { is } => match is {
            ContactAge::New => is_new,
            ContactAge::Returning => !is_new,
        },
        Condition::HasTag { tag } => contact.tags.contains(tag),
        Condition::LacksTag { tag } => !contact.tags.contains(tag),
        Condition::Field { name, op, value } => {
            let v = contact.fields.get(name).map(String::as_str);
            let want = value.as_ref().map(|v| v.0.as_str());
            match op {
                FieldOp::Exists => v.is_some(),
                FieldOp::Missing => v.is_none(),
                FieldOp::Ne => v != want,
                FieldOp::Contains => matches!((v, want), (Some(v), Some(w)) if v.contains(w)),
                _ => {
                    let (Some(v), Some(w)) = (v, want) else {
                        return false;
                    };
                    let ord = match (v.trim().parse::<f64>(), w.trim().parse::<f64>()) {
                        (Ok(a), Ok(b)) => a.partial_cmp(&b),
                        _ => Some(v.cmp(w)),
                    };
                    let Some(ord) = ord else { return false };
                    match op {
                        FieldOp::Eq => ord.is_eq(),
                        FieldOp::Gt => ord.is_gt(),
                        FieldOp::Gte => ord.is_ge(),
                        FieldOp::Lt => ord.is_lt(),
                        FieldOp::Lte => ord.is_le(),
                        _ => false,
                    }
                }
            }
        }
        Condition::WithinWindow { window } => match messaging_window(contact.last_inbound, now) {
            Window::Standard => true,
            Window::HumanAgentOnly => *window == WindowKind::HumanAgent,
            Window::Closed => false,
        },
    }
}

/// `at + d`, saturating at the latest representable time instead of overflowing.
fn later(at: DateTime<Utc>, d: Seconds) -> DateTime<Utc> {
    at.checked_add_signed(d.duration())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn hour_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let ts = now.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(3600), 0).unwrap_or(now)
}

struct Run<'a, S: Store + ?Sized> {
    store: &'a S,
    rules: &'a RuleSet,
    event: Option<&'a InboundEvent>,
    contact: Contact,
    is_new: bool,
    now: DateTime<Utc>,
    rng: SplitMix,
    keyword: Option<String>,
    decision: Decision,
}

struct OwnedVars {
    first_name: Option<String>,
    name: Option<String>,
    username: Option<String>,
    keyword: Option<String>,
}

impl<S: Store + ?Sized> Run<'_, S> {
    async fn finish(mut self) -> Result<Decision> {
        if !self.decision.analytics.is_empty() {
            self.store
                .record_flow_events(&self.decision.analytics)
                .await?;
        }
        self.store.put_contact(self.contact).await?;
        Ok(std::mem::replace(
            &mut self.decision,
            Decision {
                event: String::new(),
                account: String::new(),
                contact: String::new(),
                outcome: Outcome::NoMatch,
                rule: None,
                reason: String::new(),
                matched: None,
                actions: Vec::new(),
                skipped: Vec::new(),
                considered: Vec::new(),
                analytics: Vec::new(),
            },
        ))
    }

    fn vars(&self) -> OwnedVars {
        OwnedVars {
            first_name: self
                .contact
                .name
                .as_deref()
                .and_then(|n| n.split_whitespace().next())
                .map(|f| f.chars().take(MAX_FIRST_NAME_CHARS).collect()),
            name: self.contact.name.clone(),
            username: self.contact.username.clone(),
            keyword: self
                .keyword
                .as_ref()
                .map(|k| k.chars().take(MAX_KEYWORD_CHARS).collect()),
        }
    }

    fn render(&mut self, t: &Template) -> String {
        let v = self.vars();
        let vars = Vars {
            first_name: v.first_name.as_deref(),
            name: v.name.as_deref(),
            username: v.username.as_deref(),
            keyword: v.keyword.as_deref(),
            fields: Some(&self.contact.fields),
        };
        let seed = self.rng.next();
        t.render(&vars, seed)
    }

    /// Why the rule cannot fire now, or `None`.
    async fn blocked(&self, c: &CompiledRule) -> Result<Option<String>> {
        for (i, cond) in c.rule.conditions.iter().enumerate() {
            if !condition_holds(cond, &self.contact, self.is_new, self.now) {
                return Ok(Some(format!(
                    "condition {i} ({}) does not hold",
                    condition_name(cond)
                )));
            }
        }
        let Limits {
            once_per_contact,
            cooldown,
            max_per_hour,
        } = c.rule.limits;
        let (account, id) = (&self.contact.account, &c.rule.id);
        if once_per_contact || cooldown.is_some() {
            if let Some(last) = self
                .store
                .last_firing(account, id, &self.contact.id)
                .await?
            {
                if once_per_contact {
                    return Ok(Some(format!(
                        "already fired for this contact at {last} (once per contact)"
                    )));
                }
                if let Some(cd) = cooldown {
                    let until = later(last, cd);
                    if until > self.now {
                        return Ok(Some(format!("cooldown for this contact until {until}")));
                    }
                }
            }
        }
        if let Some(max) = max_per_hour {
            let n = self
                .store
                .count(account, &format!("rule:{id}"), hour_start(self.now))
                .await?;
            if n >= u64::from(max) {
                return Ok(Some(format!("hourly cap of {max} firings reached")));
            }
        }
        Ok(None)
    }

    async fn fire(&mut self, c: &CompiledRule) -> Result<()> {
        let (account, id) = (self.contact.account.clone(), c.rule.id.clone());
        self.store
            .record_firing(&account, &id, &self.contact.id, self.now)
            .await?;
        if c.rule.limits.max_per_hour.is_some() {
            self.store
                .increment(&account, &format!("rule:{id}"), hour_start(self.now))
                .await?;
        }
        for (index, action) in c.actions.iter().enumerate() {
            if let Err(reason) = self.plan(action, &id).await? {
                self.decision.skipped.push(SkippedAction { index, reason });
            }
        }
        Ok(())
    }

    /// Plans one action: `Ok(Err(reason))` when policy skips it.
    async fn plan(
        &mut self,
        action: &CompiledAction,
        rule_id: &str,
    ) -> Result<std::result::Result<(), String>> {
        let event = self.event;
        match action {
            CompiledAction::PrivateReply(t) => {
                let Some(ev) = event else {
                    return Ok(Err("no comment to reply to".into()));
                };
                let Some(comment_id) = ev.comment_id() else {
                    return Ok(Err("a private reply needs a comment event".into()));
                };
                let key = format!("private_reply:{comment_id}");
                let sent = self.store.is_claimed(&ev.account, &key).await?;
                match private_reply(ev.occurred_at, sent, self.now) {
                    PrivateReply::Allowed => {}
                    PrivateReply::AlreadySent => {
                        return Ok(Err(
                            "a private reply was already sent for this comment (one allowed)"
                                .into(),
                        ))
                    }
                    PrivateReply::Expired => return Ok(Err(
                        "the comment is 7 days old or older; private replies are no longer allowed"
                            .into(),
                    )),
                }
                if !self.store.claim(&ev.account, &key, self.now).await? {
                    return Ok(Err(
                        "a private reply was already sent for this comment (one allowed)".into(),
                    ));
                }
                let text = self.render(t);
                self.decision.actions.push(PlannedAction::PrivateReply {
                    comment_id: comment_id.to_string(),
                    text,
                });
            }
            CompiledAction::PublicReply(variants) => {
                let Some(comment_id) = event.and_then(InboundEvent::comment_id) else {
                    return Ok(Err("a public reply needs a comment event".into()));
                };
                let i = self.rng.below(variants.len());
                let Some(t) = variants.get(i) else {
                    return Ok(Err("no variant".into()));
                };
                let text = self.render(t);
                self.decision.actions.push(PlannedAction::PublicReply {
                    comment_id: comment_id.to_string(),
                    text,
                });
            }
            CompiledAction::SendDm(m) => return Ok(self.send_dm(m)),
            CompiledAction::AddTag(tag) => {
                self.contact.tags.insert(tag.clone());
                self.decision
                    .actions
                    .push(PlannedAction::AddTag { tag: tag.clone() });
            }
            CompiledAction::RemoveTag(tag) => {
                self.contact.tags.remove(tag);
                self.decision
                    .actions
                    .push(PlannedAction::RemoveTag { tag: tag.clone() });
            }
            CompiledAction::SetField(name, t) => {
                let value: String = self.render(t).chars().take(MAX_FIELD_CHARS).collect();
                self.contact.fields.insert(name.clone(), value.clone());
                self.decision.actions.push(PlannedAction::SetField {
                    name: name.clone(),
                    value,
                });
            }
            CompiledAction::StartFlow(flow_id) => {
                let Some(flow) = self.rules.compiled_flow(&self.contact.account, flow_id) else {
                    return Ok(Err(format!("flow `{flow_id}` does not exist")));
                };
                self.decision.actions.push(PlannedAction::StartFlow {
                    flow: flow_id.clone(),
                });
                self.start_flow(flow).await?;
            }
            CompiledAction::HandOff(pause, note) => {
                let until = later(self.now, *pause);
                self.contact.paused_until = Some(until);
                self.decision.actions.push(PlannedAction::HandOff {
                    until,
                    note: note.clone(),
                });
            }
            CompiledAction::Webhook(url) => {
                let body = serde_json::json!({
                    "rule": rule_id,
                    "account": self.contact.account,
                    "contact": self.contact.id,
                    "event": event,
                });
                self.decision.actions.push(PlannedAction::Webhook {
                    url: url.clone(),
                    body,
                });
            }
            CompiledAction::AiReply {
                instructions,
                fallback,
                context_messages,
            } => {
                if let Err(reason) = self.dm_window() {
                    return Ok(Err(reason));
                }
                let instructions = self.render(instructions);
                let fallback = self.render(fallback);
                self.decision.actions.push(PlannedAction::AiReply {
                    recipient: self.contact.id.clone(),
                    instructions,
                    fallback,
                    context_messages: *context_messages,
                });
            }
        }
        Ok(Ok(()))
    }

    /// Whether a DM may be sent to the contact now (the 24-hour window is open).
    fn dm_window(&self) -> std::result::Result<(), String> {
        match messaging_window(self.contact.last_inbound, self.now) {
            Window::Standard => Ok(()),
            Window::HumanAgentOnly => Err("outside the 24-hour messaging window (only a human may reply, with the HUMAN_AGENT tag)".into()),
            _ => Err("the messaging window is closed: the person has not messaged in the last 7 days (or ever)".into()),
        }
    }

    fn send_dm(&mut self, m: &CompiledMessage) -> std::result::Result<(), String> {
        self.dm_window()?;
        let message = match m {
            CompiledMessage::Text(text, qrs) => {
                let text = self.render(text);
                let quick_replies = qrs
                    .iter()
                    .map(|(t, payload)| QuickReply {
                        title: self.render(t),
                        payload: payload.clone(),
                    })
                    .collect();
                Message::Text {
                    text,
                    quick_replies,
                }
            }
            CompiledMessage::Buttons(text, buttons) => {
                let text = self.render(text);
                let buttons = buttons
                    .iter()
                    .map(|(t, b)| self.render_button(t, b))
                    .collect();
                Message::Buttons { text, buttons }
            }
            CompiledMessage::Generic(elements) => {
                let mut out = Vec::new();
                for (title, subtitle, el) in elements {
                    let title = self.render(title);
                    let subtitle = subtitle.as_ref().map(|s| self.render(s));
                    let buttons =
                        el.buttons
                            .iter()
                            .map(|b| {
                                let t = match b {
                                    Button::WebUrl { title, .. }
                                    | Button::Postback { title, .. } => title,
                                };
                                match Template::parse(t) {
                                    Ok(t) => self.render_button(&t, b),
                                    Err(_) => b.clone(),
                                }
                            })
                            .collect();
                    out.push(Element {
                        title,
                        subtitle,
                        image_url: el.image_url.clone(),
                        buttons,
                    });
                }
                Message::Generic { elements: out }
            }
            CompiledMessage::Media(m) => m.clone(),
        };
        self.decision.actions.push(PlannedAction::SendDm {
            recipient: self.contact.id.clone(),
            message,
        });
        Ok(())
    }

    fn render_button(&mut self, t: &Template, b: &Button) -> Button {
        let title = self.render(t);
        match b {
            Button::WebUrl { url, .. } => Button::WebUrl {
                title,
                url: url.clone(),
            },
            Button::Postback { payload, .. } => Button::Postback {
                title,
                payload: payload.clone(),
            },
        }
    }

    fn flow_event(&mut self, flow: &str, kind: FlowEventKind) {
        self.decision.analytics.push(FlowEvent {
            account: self.contact.account.clone(),
            contact: self.contact.id.clone(),
            flow: flow.to_string(),
            at: self.now,
            kind,
        });
    }

    async fn start_flow(&mut self, flow: &CompiledFlow) -> Result<()> {
        let (account, contact) = (self.contact.account.clone(), self.contact.id.clone());
        if let Some(old) = self.store.flow_state(&account, &contact).await? {
            self.flow_event(&old.flow, FlowEventKind::Abandoned);
        }
        self.flow_event(&flow.flow.id, FlowEventKind::Started);
        let state = self.run_flow(flow, flow.start, self.now);
        self.store.put_flow_state(&account, &contact, state).await
    }

    /// Consumes a flow choice tap or a reply awaited by a flow. Returns whether it did.
    async fn flow_input(&mut self) -> Result<bool> {
        let Some(event) = self.event else {
            return Ok(false);
        };
        let (account, contact) = (self.contact.account.clone(), self.contact.id.clone());
        let payload = match &event.kind {
            EventKind::Postback { payload, .. } | EventKind::QuickReply { payload, .. } => {
                Some(payload.as_str())
            }
            _ => None,
        };
        if let Some((flow_id, step_id, choice)) = payload.and_then(parse_choice_payload) {
            let Some(flow) = self.rules.compiled_flow(&account, flow_id) else {
                return Ok(false);
            };
            let Some(i) = flow.step_index(step_id) else {
                return Ok(false);
            };
            let CompiledStep::Message { choices, .. } = &flow.steps[i] else {
                return Ok(false);
            };
            let Some(&(_, target)) = choices.get(choice) else {
                return Ok(false);
            };
            let started = match self.store.flow_state(&account, &contact).await? {
                Some(s) if s.flow == flow_id => s.started_at,
                _ => self.now,
            };
            let title = flow
                .flow
                .steps
                .get(i)
                .and_then(|s| match &s.kind {
                    crate::flow::StepKind::Message { choices, .. } => {
                        choices.get(choice).map(|c| c.title.clone())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            self.flow_event(
                flow_id,
                FlowEventKind::ChoiceTapped {
                    step: step_id.to_string(),
                    choice,
                    title,
                },
            );
            self.decision.outcome = Outcome::Flow;
            self.decision.reason =
                format!("choice {choice} of step `{step_id}` in flow `{flow_id}` was tapped");
            let state = self.run_flow(flow, target, started);
            self.store.put_flow_state(&account, &contact, state).await?;
            return Ok(true);
        }
        if let EventKind::Message {
            text: Some(text), ..
        } = &event.kind
        {
            let Some(state) = self.store.flow_state(&account, &contact).await? else {
                return Ok(false);
            };
            if state.waiting != Waiting::Reply {
                return Ok(false);
            }
            let Some(flow) = self.rules.compiled_flow(&account, &state.flow) else {
                return Ok(false);
            };
            let Some(i) = flow.step_index(&state.step) else {
                return Ok(false);
            };
            let CompiledStep::WaitForReply { save_to, next } = &flow.steps[i] else {
                return Ok(false);
            };
            if let Some(field) = save_to {
                self.contact
                    .fields
                    .insert(field.clone(), text.chars().take(MAX_FIELD_CHARS).collect());
            }
            self.flow_event(
                &state.flow,
                FlowEventKind::ReplyReceived {
                    step: state.step.clone(),
                },
            );
            self.decision.outcome = Outcome::Flow;
            self.decision.reason = format!(
                "reply received at step `{}` of flow `{}`",
                state.step, state.flow
            );
            let new = self.run_flow(flow, *next, state.started_at);
            self.store.put_flow_state(&account, &contact, new).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs a flow from step `from` until it waits (returns the state) or ends (`None`).
    fn run_flow(
        &mut self,
        flow: &CompiledFlow,
        from: usize,
        started_at: DateTime<Utc>,
    ) -> Option<FlowState> {
        let flow_id = flow.flow.id.clone();
        let mut step = from;
        let mut completed = false;
        for _ in 0..MAX_STEPS_PER_RUN {
            let step_id = flow.flow.steps.get(step).map(|s| s.id.clone())?;
            self.flow_event(
                &flow_id,
                FlowEventKind::StepEntered {
                    step: step_id.clone(),
                },
            );
            let state = |waiting| {
                Some(FlowState {
                    flow: flow_id.clone(),
                    step: step_id.clone(),
                    waiting,
                    started_at,
                })
            };
            match flow.steps.get(step)? {
                CompiledStep::Message {
                    text,
                    choices,
                    quick_replies,
                    next,
                } => {
                    let message = if choices.is_empty() {
                        CompiledMessageRef::Text(text, Vec::new())
                    } else if *quick_replies {
                        CompiledMessageRef::Text(
                            text,
                            choices
                                .iter()
                                .enumerate()
                                .map(|(i, (t, _))| (t, choice_payload(&flow_id, &step_id, i)))
                                .collect(),
                        )
                    } else {
                        CompiledMessageRef::Buttons(
                            text,
                            choices
                                .iter()
                                .enumerate()
                                .map(|(i, (t, _))| (t, choice_payload(&flow_id, &step_id, i)))
                                .collect(),
                        )
                    };
                    if let Err(reason) = self.send_flow_message(message) {
                        self.decision.skipped.push(SkippedAction {
                            index: step,
                            reason: format!("flow `{flow_id}` step `{step_id}`: {reason}"),
                        });
                    }
                    if !choices.is_empty() {
                        return state(Waiting::Choice);
                    }
                    match next {
                        Some(n) => step = *n,
                        None => {
                            completed = true;
                            break;
                        }
                    }
                }
                CompiledStep::WaitForReply { .. } => return state(Waiting::Reply),
                CompiledStep::Condition {
                    condition,
                    then,
                    otherwise,
                } => {
                    step = if condition_holds(condition, &self.contact, self.is_new, self.now) {
                        *then
                    } else {
                        *otherwise
                    };
                }
                CompiledStep::Delay { wait, .. } => {
                    let at = later(self.now, *wait);
                    self.decision.actions.push(PlannedAction::Wake { at });
                    return state(Waiting::Until { at });
                }
                CompiledStep::Tag { add, remove, next } => {
                    for t in add {
                        self.contact.tags.insert(t.clone());
                        self.decision
                            .actions
                            .push(PlannedAction::AddTag { tag: t.clone() });
                    }
                    for t in remove {
                        self.contact.tags.remove(t);
                        self.decision
                            .actions
                            .push(PlannedAction::RemoveTag { tag: t.clone() });
                    }
                    step = *next;
                }
                CompiledStep::Field { name, value, next } => {
                    let v: String = self.render(value).chars().take(MAX_FIELD_CHARS).collect();
                    self.contact.fields.insert(name.clone(), v.clone());
                    self.decision.actions.push(PlannedAction::SetField {
                        name: name.clone(),
                        value: v,
                    });
                    step = *next;
                }
                CompiledStep::Webhook { url, next } => {
                    let body = serde_json::json!({
                        "flow": flow_id, "step": step_id,
                        "account": self.contact.account, "contact": self.contact.id,
                    });
                    self.decision.actions.push(PlannedAction::Webhook {
                        url: url.clone(),
                        body,
                    });
                    step = *next;
                }
                CompiledStep::End => {
                    completed = true;
                    break;
                }
            }
        }
        let kind = if completed {
            FlowEventKind::Completed
        } else {
            FlowEventKind::Abandoned
        };
        self.flow_event(&flow_id, kind);
        None
    }

    fn send_flow_message(&mut self, m: CompiledMessageRef<'_>) -> std::result::Result<(), String> {
        match messaging_window(self.contact.last_inbound, self.now) {
            Window::Standard => {}
            _ => return Err("outside the 24-hour messaging window".into()),
        }
        let message = match m {
            CompiledMessageRef::Text(text, qrs) => {
                let text = self.render(text);
                let quick_replies = qrs
                    .into_iter()
                    .map(|(t, payload)| QuickReply {
                        title: self.render(t),
                        payload,
                    })
                    .collect();
                Message::Text {
                    text,
                    quick_replies,
                }
            }
            CompiledMessageRef::Buttons(text, buttons) => {
                let text = self.render(text);
                let buttons = buttons
                    .into_iter()
                    .map(|(t, payload)| Button::Postback {
                        title: self.render(t),
                        payload,
                    })
                    .collect();
                Message::Buttons { text, buttons }
            }
        };
        self.decision.actions.push(PlannedAction::SendDm {
            recipient: self.contact.id.clone(),
            message,
        });
        Ok(())
    }
}

enum CompiledMessageRef<'t> {
    Text(&'t Template, Vec<(&'t Template, String)>),
    Buttons(&'t Template, Vec<(&'t Template, String)>),
}

fn condition_name(c: &Condition) -> &'static str {
    match c {
        Condition::Follower { .. } => "follower",
        Condition::Contact { .. } => "contact",
        Condition::HasTag { .. } => "has_tag",
        Condition::LacksTag { .. } => "lacks_tag",
        Condition::Field { .. } => "field",
        Condition::WithinWindow { .. } => "within_window",
    }
}
