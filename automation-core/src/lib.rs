//! A storage-agnostic rule engine for Instagram DM and comment automation.
//!
//! `automation-core` decides; it does not send. It takes an [`InboundEvent`] (a comment, a DM, a
//! story reply, a button tap, ...), the state it needs through the [`store`] traits, and `now`,
//! and returns a [`Decision`]: plain serde data naming the rule that fired, why, and the actions
//! to take with every text rendered. It has no HTTP, no database and no clock.
//!
//! * [`rule`]: the rule model (triggers, scope, match, exclusions, conditions, limits, actions).
//! * [`normalize`]: text folding (case, accents, width, emoji, punctuation).
//! * [`matcher`]: the compiled [`RuleSet`], one Aho-Corasick automaton per account; conflict order.
//! * [`template`]: templates with variables, fallbacks, filters and spin variants.
//! * [`flow`]: flows of steps driven by taps and replies.
//! * [`policy`]: the 24-hour / 7-day messaging windows and the private-reply rule.
//! * [`engine`]: [`Engine::decide`], idempotent per event id.
//! * [`store`]: storage traits and [`MemoryStore`].
//!
//! # Example
//!
//! ```
//! use automation_core::{Engine, InboundEvent, MemoryStore, Outcome, PlannedAction, RuleSet, RulesFile};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let file = RulesFile::from_toml(r#"
//! account = "17841400000000000"
//! [[rules]]
//! id = "link"
//! on = ["comment"]
//! match = { mode = "contains", keywords = ["link", "ссылка"] }
//! [[rules.actions]]
//! type = "private_reply"
//! text = "Hi {{first_name|there}}! Here it is: https://example.com"
//! "#)?;
//! let engine = Engine::new(RuleSet::from_file(file)?);
//! let store = MemoryStore::new();
//! let event: InboundEvent = serde_json::from_str(r#"{
//!   "id": "c1", "account": "17841400000000000", "occurred_at": "2024-05-01T12:00:00Z",
//!   "sender": {"id": "42", "name": "Ana Costa"},
//!   "kind": {"type": "comment", "comment_id": "c1", "media_id": "m1", "text": "LINK pls 🙏"}}"#)?;
//! let now = event.occurred_at;
//! let decision = engine.decide(&store, &event, now, 7).await?;
//! assert_eq!(decision.outcome, Outcome::Fired);
//! assert_eq!(decision.actions, vec![PlannedAction::PrivateReply {
//!     comment_id: "c1".into(),
//!     text: "Hi Ana! Here it is: https://example.com".into(),
//! }]);
//! // the same event again: nothing to do
//! assert_eq!(engine.decide(&store, &event, now, 7).await?.outcome, Outcome::Duplicate);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # The rules file format
//!
//! A rules file is TOML or JSON with the same structure ([`RulesFile`]): an optional default
//! `account`, a list of `rules` and a list of `flows`. Every field of a rule:
//!
//! ```toml
//! account = "17841400000000000"        # default account for rules and flows below
//!
//! [[rules]]
//! id = "price-dm"                      # unique
//! name = "Answer price questions"      # optional
//! enabled = true                       # default true
//! priority = 10                        # higher wins; default 0
//! created_at = "2024-01-01T00:00:00Z"  # optional; older wins ties
//! # comment, live_comment, message (alias dm), story_reply, story_mention, postback,
//! # quick_reply, ice_breaker, referral, opt_in, reaction. Default: comment + message.
//! on = ["message", "comment"]
//! scope = { kind = "any" }             # any | media (ids = [...]) | any_post | any_reel | live
//! # mode: any | exact | contains | starts_with | regex (pattern = "...", on the original text)
//! match = { mode = "contains", keywords = ["price", "how much", "цена", "precio", "价格"] }
//! exclude = ["refund"]                 # vetoes the rule when present
//! active = { from = "2024-01-01T00:00:00Z", until = "2030-01-01T00:00:00Z" }
//! conditions = [
//!   { kind = "follower", follows = true },
//!   { kind = "contact", is = "returning" },        # new | returning
//!   { kind = "has_tag", tag = "customer" },
//!   { kind = "lacks_tag", tag = "blocked" },
//!   { kind = "field", name = "orders", op = "gte", value = 1 },  # eq ne gt gte lt lte contains exists missing
//!   { kind = "within_window", window = "standard" },   # standard (24 h) | human_agent (7 days)
//! ]
//! limits = { once_per_contact = false, cooldown = "1h", max_per_hour = 500 }
//!
//! [[rules.actions]]
//! type = "send_dm"
//! message = { kind = "text", text = "Hi {{first_name|there}}! Prices: https://example.com/p", quick_replies = [
//!   { title = "Talk to us", payload = "HUMAN" } ] }
//! [[rules.actions]]
//! type = "add_tag"
//! tag = "lead"
//! [[rules.actions]]
//! type = "set_field"
//! name = "last_topic"
//! value = "{{keyword}}"
//!
//! [[rules]]
//! id = "reel-link"
//! on = ["comment"]
//! scope = { kind = "any_reel" }
//! match = { mode = "exact", keywords = ["link"] }
//! limits = { once_per_contact = true }
//! actions = [
//!   { type = "private_reply", text = "{Hey|Hi} {{first_name|there}}, the link: https://example.com" },
//!   { type = "public_reply", variants = ["Sent you a DM!", "Check your inbox ✉️"] },
//!   { type = "start_flow", flow = "welcome" },
//! ]
//!
//! [[rules]]
//! id = "human"
//! on = ["quick_reply", "postback"]
//! match = { mode = "exact", keywords = ["HUMAN"] }
//! actions = [
//!   { type = "hand_off", pause = "12h", note = "asked for a human" },
//!   { type = "webhook", url = "https://example.com/hooks/handoff" },
//! ]
//!
//! [[rules]]
//! id = "assistant"                     # a catch-all answered by a language model
//! on = ["message"]
//! priority = -10
//! actions = [
//!   { type = "ai_reply", instructions = "You answer for Example Shop. Be brief; never invent prices.",
//!     fallback = "Thanks {{first_name|there}}! We will get back to you soon.", context_messages = 10 },
//! ]
//!
//! [[flows]]
//! id = "welcome"
//! start = "ask"
//! steps = [
//!   { id = "ask", type = "message", text = "What are you after?", choices = [
//!       { title = "Prices", next = "prices" }, { title = "Newsletter", next = "email" } ] },
//!   { id = "prices", type = "message", text = "Here: https://example.com/p", next = "done" },
//!   { id = "email", type = "message", text = "Your email?", next = "wait" },
//!   { id = "wait", type = "wait_for_reply", save_to = "email", next = "tag" },
//!   { id = "tag", type = "tag", add = ["subscriber"], next = "done" },
//!   { id = "done", type = "end" },
//! ]
//! ```
//!
//! Other actions: `send_dm` with `message = { kind = "buttons", text, buttons = [{ type =
//! "web_url", title, url } | { type = "postback", title, payload }] }`, `{ kind = "generic",
//! elements = [{ title, subtitle, image_url, buttons }] }` or `{ kind = "media", media = "image",
//! url }`; `remove_tag`. Other flow steps: `condition` (`if = { kind = ... }`, `then`, `else`),
//! `delay` (`wait = "1h"`, `next`), `field` (`name`, `value`, `next`), `webhook` (`url`, `next`).
//! `ai_reply` (`instructions`, `fallback`, `context_messages`, default 10, 1 to 50) plans a
//! [`PlannedAction::AiReply`] inside the 24-hour window: the caller gives the model the
//! instructions as its system prompt and only the last `context_messages` messages of this one
//! conversation, sends its answer as a text DM, and sends `fallback` when the model fails, times
//! out or answers nothing (the reference service `examples/igdm` does this with an
//! OpenAI-compatible chat-completions client). Instructions and fallback are templates.
//! Durations are seconds or strings like `"90s"`, `"30m"`, `"2h"`, `"7d"`.
//!
//! The example files `examples/rules.toml` and `examples/rules.json` in this crate contain a
//! complete rule set; `igdm rules check FILE` validates a file and `igdm rules test --rules FILE
//! --event EVENT.json` prints the decision for an event.

//! # Performance
//!
//! `benches/automation.rs` at the workspace root measures, each next to its rival: matching one
//! 200-character mixed-language comment against 10 to 100,000 keyword rules (next to a naive
//! normalized `contains` loop), the whole engine over the in-memory store, compiling 100,000 rules,
//! inserting and removing one rule in a 100,000-rule set, a full rebuild, and rendering a template
//! (next to `minijinja`). Run it with
//! `cargo bench -p igdm-suite --bench automation -- --warm-up-time 1 --measurement-time 3`.

pub mod decision;
pub mod engine;
mod error;
pub mod event;
pub mod flow;
pub mod matcher;
pub mod normalize;
pub mod policy;
pub mod rule;
pub mod store;
pub mod template;

pub use decision::{Decision, Outcome, PlannedAction};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, ErrorKind, Result};
pub use event::{EventKind, InboundEvent, Sender};
pub use matcher::RuleSet;
pub use rule::{Action, Condition, Limits, Match, MatchMode, Rule, RulesFile, Scope, TriggerKind};
pub use store::{Contact, MemoryStore, Store};
pub use template::Template;
