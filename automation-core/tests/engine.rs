//! The engine end to end over the in-memory store: conditions, limits, actions, policy,
//! idempotency, hand-off, flows.
#![allow(clippy::unwrap_used)]

use automation_core::decision::Outcome;
use automation_core::event::{EventKind, MediaKind};
use automation_core::flow::{parse_choice_payload, FlowEventKind, Waiting};
use automation_core::rule::{Message, Seconds};
use automation_core::store::{ContactStore, FlowStore};
use automation_core::{
    Decision, Engine, InboundEvent, MemoryStore, PlannedAction, RuleSet, RulesFile, Sender,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

const ACC: &str = "acc";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn engine(toml_rules: &str) -> Engine {
    let file = RulesFile::from_toml(&format!("account = \"{ACC}\"\n{toml_rules}")).unwrap();
    Engine::new(RuleSet::from_file(file).unwrap())
}

fn sender() -> Sender {
    Sender::new("u1").name("ana costa").username("ana.c")
}

fn comment_from(id: &str, s: Sender, text: &str, at: DateTime<Utc>) -> InboundEvent {
    InboundEvent::new(
        id,
        ACC,
        at,
        s,
        EventKind::Comment {
            comment_id: id.into(),
            media_id: "m1".into(),
            media_kind: MediaKind::Reel,
            text: text.into(),
            parent_comment_id: None,
        },
    )
}

fn comment(id: &str, text: &str) -> InboundEvent {
    comment_from(id, sender(), text, t0())
}

fn dm(id: &str, text: &str, at: DateTime<Utc>) -> InboundEvent {
    InboundEvent::new(
        id,
        ACC,
        at,
        sender(),
        EventKind::Message {
            mid: id.into(),
            text: Some(text.into()),
            attachments: vec![],
        },
    )
}

fn postback(id: &str, payload: &str, at: DateTime<Utc>) -> InboundEvent {
    InboundEvent::new(
        id,
        ACC,
        at,
        sender(),
        EventKind::Postback {
            mid: None,
            title: String::new(),
            payload: payload.into(),
        },
    )
}

async fn decide(e: &Engine, s: &MemoryStore, ev: &InboundEvent, now: DateTime<Utc>) -> Decision {
    e.decide(s, ev, now, 1).await.unwrap()
}

const LINK: &str = r#"
[[rules]]
id = "link"
on = ["comment", "message"]
match = { mode = "contains", keywords = ["link"] }
actions = [{ type = "private_reply", text = "Hi {{first_name|there}}: https://x.test" }]
"#;

#[tokio::test]
async fn private_reply_once_per_comment_within_seven_days() {
    let e = engine(LINK);
    let s = MemoryStore::new();
    let d = decide(&e, &s, &comment("c1", "LINK pls"), t0()).await;
    assert_eq!(d.outcome, Outcome::Fired);
    assert_eq!(d.rule.as_deref(), Some("link"));
    assert_eq!(
        d.actions,
        [PlannedAction::PrivateReply {
            comment_id: "c1".into(),
            text: "Hi ana: https://x.test".into()
        }]
    );
    assert!(d.reason.contains("\"link\""), "{}", d.reason);

    // idempotent: the same event again
    let again = decide(&e, &s, &comment("c1", "LINK pls"), t0()).await;
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert!(again.actions.is_empty());

    // a different delivery key for the same comment: the private reply is not planned twice
    let mut other = comment("c1", "link");
    other.id = "c1-redelivered".into();
    let d = decide(&e, &s, &other, t0()).await;
    assert!(d.actions.is_empty());
    assert!(d.skipped[0].reason.contains("already sent"));

    // exactly 7 days old: expired; just under: allowed
    let old = comment_from("c2", sender(), "link", t0());
    let d = decide(&e, &s, &old, t0() + TimeDelta::days(7)).await;
    assert!(d.actions.is_empty() && d.skipped[0].reason.contains("7 days"));
    let fresh = comment_from("c3", sender(), "link", t0());
    let d = decide(
        &e,
        &s,
        &fresh,
        t0() + TimeDelta::days(7) - TimeDelta::seconds(1),
    )
    .await;
    assert_eq!(d.actions.len(), 1);

    // a DM cannot get a private reply
    let d = decide(&e, &s, &dm("m1", "link", t0()), t0()).await;
    assert!(d.skipped[0].reason.contains("comment event"));
}

#[tokio::test]
async fn ai_reply_is_planned_inside_the_24_hour_window_only() {
    let e = engine(
        r#"
[[rules]]
id = "ai"
on = ["message", "comment"]
actions = [{ type = "ai_reply", instructions = "You help {{first_name}}.", fallback = "Thanks {{first_name|there}}!", context_messages = 6 }]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("m1", "do you ship to Lisbon?", t0()), t0()).await;
    assert_eq!(
        d.actions,
        vec![PlannedAction::AiReply {
            recipient: "u1".into(),
            instructions: "You help ana.".into(),
            fallback: "Thanks ana!".into(),
            context_messages: 6,
        }]
    );
    // round trip through JSON (the service stores planned actions as JSON)
    let json = serde_json::to_string(&d.actions[0]).unwrap();
    assert!(json.contains(r#""type":"ai_reply""#), "{json}");
    assert_eq!(
        serde_json::from_str::<PlannedAction>(&json).unwrap(),
        d.actions[0]
    );
    // a comment 25 hours after the last DM: the window is closed, nothing planned
    let later = t0() + TimeDelta::hours(25);
    let d = decide(&e, &s, &comment_from("c1", sender(), "hi", later), later).await;
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(d.skipped[0].reason.contains("24-hour"), "{:?}", d.skipped);
}

#[test]
fn ai_reply_context_defaults_to_ten_messages() {
    let f = RulesFile::from_toml(
        "account = \"a\"\n[[rules]]\nid = \"r\"\nactions = [{ type = \"ai_reply\", instructions = \"i\", fallback = \"f\" }]\n",
    )
    .unwrap();
    assert_eq!(
        f.rules[0].actions[0],
        automation_core::Action::AiReply {
            instructions: "i".into(),
            fallback: "f".into(),
            context_messages: 10,
        }
    );
    assert!(RuleSet::check(&f).is_empty());
}

#[tokio::test]
async fn public_reply_variants_are_seeded() {
    let e = engine(
        r#"
[[rules]]
id = "thanks"
on = ["comment"]
actions = [{ type = "public_reply", variants = ["A {{username}}", "B {{username}}", "C {{username}}"] }]
"#,
    );
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40u64 {
        let s = MemoryStore::new();
        let d = e.decide(&s, &comment("c", "hi"), t0(), seed).await.unwrap();
        let PlannedAction::PublicReply { text, comment_id } = &d.actions[0] else {
            panic!()
        };
        assert_eq!(comment_id, "c");
        seen.insert(text.clone());
        let s2 = MemoryStore::new();
        assert_eq!(
            e.decide(&s2, &comment("c", "hi"), t0(), seed)
                .await
                .unwrap()
                .actions,
            d.actions
        );
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["A ana.c", "B ana.c", "C ana.c"]
    );
}

#[tokio::test]
async fn send_dm_respects_the_24_hour_window() {
    let e = engine(
        r#"
[[rules]]
id = "price"
on = ["message", "comment"]
match = { mode = "contains", keywords = ["price"] }
actions = [{ type = "send_dm", message = { kind = "buttons", text = "Prices for {{first_name}}", buttons = [{ type = "web_url", title = "Open", url = "https://x.test" }] } }]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("m1", "price?", t0()), t0()).await;
    assert_eq!(d.actions.len(), 1);
    let PlannedAction::SendDm {
        recipient,
        message: Message::Buttons { text, buttons },
    } = &d.actions[0]
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (recipient.as_str(), text.as_str(), buttons.len()),
        ("u1", "Prices for ana", 1)
    );
    // a comment 24 h later: the window (opened by the DM at t0) is closed for standard messages
    let d = decide(
        &e,
        &s,
        &comment_from("c1", sender(), "price", t0() + TimeDelta::hours(24)),
        t0() + TimeDelta::hours(24),
    )
    .await;
    assert!(d.actions.is_empty());
    assert!(d.skipped[0].reason.contains("24-hour"), "{:?}", d.skipped);
    // a comment just under 24 h later: still open
    let d = decide(
        &e,
        &s,
        &comment_from("c2", sender(), "price", t0()),
        t0() + TimeDelta::hours(24) - TimeDelta::seconds(1),
    )
    .await;
    assert_eq!(d.actions.len(), 1);
    // a stranger commenting: closed
    let d = decide(
        &e,
        &s,
        &comment_from("c3", Sender::new("stranger"), "price", t0()),
        t0(),
    )
    .await;
    assert!(d.skipped[0].reason.contains("closed"));
}

#[tokio::test]
async fn conditions_follower_new_tags_fields_window() {
    let e = engine(
        r#"
[[rules]]
id = "followers"
priority = 5
match = { mode = "contains", keywords = ["vip"] }
conditions = [{ kind = "follower", follows = true }]
actions = [{ type = "add_tag", tag = "follower-vip" }]

[[rules]]
id = "newbies"
priority = 4
match = { mode = "contains", keywords = ["vip"] }
conditions = [{ kind = "contact", is = "new" }]
actions = [{ type = "add_tag", tag = "new" }, { type = "set_field", name = "score", value = "10" }]

[[rules]]
id = "scored"
priority = 3
match = { mode = "contains", keywords = ["vip"] }
conditions = [{ kind = "has_tag", tag = "new" }, { kind = "field", name = "score", op = "gte", value = 9.5 }, { kind = "lacks_tag", tag = "done" }]
actions = [{ type = "add_tag", tag = "done" }, { type = "remove_tag", tag = "new" }]

[[rules]]
id = "window"
priority = 2
match = { mode = "contains", keywords = ["vip"] }
conditions = [{ kind = "within_window", window = "human_agent" }, { kind = "field", name = "score", op = "exists" }]
actions = [{ type = "set_field", name = "score", value = "{{field.score}}!" }]
"#,
    );
    let s = MemoryStore::new();
    // unknown follow status: the follower rule does not fire; new contact: newbies fires
    let d = decide(&e, &s, &comment("c1", "vip"), t0()).await;
    assert_eq!(d.rule.as_deref(), Some("newbies"));
    assert!(d.considered[0].reason.contains("follower"));
    // returning, has tag new + score 10 >= 9.5 (numeric)
    let d = decide(&e, &s, &comment("c2", "vip"), t0()).await;
    assert_eq!(d.rule.as_deref(), Some("scored"));
    // now lacks "new": scored fails; the window is closed (only comments so far): no rule
    let d = decide(&e, &s, &comment("c3", "vip"), t0()).await;
    assert_eq!(d.outcome, Outcome::NoMatch, "{d:?}");
    assert_eq!(d.considered.len(), 4);
    // a DM opens the window; 3 days later the human-agent window is still open
    decide(&e, &s, &dm("m1", "hello", t0()), t0()).await;
    let d = decide(&e, &s, &comment("c4", "vip"), t0() + TimeDelta::days(3)).await;
    assert_eq!(d.rule.as_deref(), Some("window"));
    assert_eq!(
        d.actions,
        [PlannedAction::SetField {
            name: "score".into(),
            value: "10!".into()
        }]
    );
    // follows
    let d = decide(
        &e,
        &s,
        &comment_from("c5", sender().follows_account(true), "vip", t0()),
        t0(),
    )
    .await;
    assert_eq!(d.rule.as_deref(), Some("followers"));
    let c = s.contact(ACC, "u1").await.unwrap().unwrap();
    assert!(c.tags.contains("follower-vip") && c.tags.contains("done") && !c.tags.contains("new"));
}

#[tokio::test]
async fn field_comparisons() {
    use automation_core::engine::condition_holds;
    use automation_core::rule::{Condition, FieldOp, FieldValue};
    let mut c = automation_core::Contact::new(ACC, "u", t0());
    c.fields.insert("n".into(), "10".into());
    c.fields.insert("s".into(), "gold plan".into());
    let f = |name: &str, op, v: Option<&str>| Condition::Field {
        name: name.into(),
        op,
        value: v.map(|v| FieldValue(v.into())),
    };
    let yes = [
        f("n", FieldOp::Eq, Some("10.0")),
        f("n", FieldOp::Gt, Some("9")),
        f("n", FieldOp::Lt, Some("100")),
        f("n", FieldOp::Lte, Some("10")),
        f("s", FieldOp::Contains, Some("gold")),
        f("s", FieldOp::Ne, Some("x")),
        f("zz", FieldOp::Ne, Some("x")),
        f("zz", FieldOp::Missing, None),
        f("s", FieldOp::Exists, None),
        f("s", FieldOp::Gt, Some("apple")),
    ];
    for cond in &yes {
        assert!(condition_holds(cond, &c, false, t0()), "{cond:?}");
    }
    let no = [
        f("n", FieldOp::Gt, Some("10")),
        f("zz", FieldOp::Eq, Some("")),
        f("s", FieldOp::Contains, Some("GOLD")),
        f("n", FieldOp::Missing, None),
    ];
    for cond in &no {
        assert!(!condition_holds(cond, &c, false, t0()), "{cond:?}");
    }
}

#[tokio::test]
async fn limits_once_cooldown_hourly_cap() {
    let e = engine(
        r#"
[[rules]]
id = "once"
priority = 3
match = { mode = "contains", keywords = ["once"] }
limits = { once_per_contact = true }
actions = [{ type = "add_tag", tag = "a" }]

[[rules]]
id = "cool"
priority = 2
match = { mode = "contains", keywords = ["cool"] }
limits = { cooldown = "1h" }
actions = [{ type = "add_tag", tag = "b" }]

[[rules]]
id = "capped"
match = { mode = "contains", keywords = ["cap"] }
limits = { max_per_hour = 2 }
actions = [{ type = "add_tag", tag = "c" }]
"#,
    );
    let s = MemoryStore::new();
    assert_eq!(
        decide(&e, &s, &comment("1", "once"), t0()).await.outcome,
        Outcome::Fired
    );
    let d = decide(&e, &s, &comment("2", "once"), t0() + TimeDelta::days(30)).await;
    assert_eq!(d.outcome, Outcome::NoMatch);
    assert!(d.considered[0].reason.contains("once per contact"));

    assert_eq!(
        decide(&e, &s, &comment("3", "cool"), t0()).await.outcome,
        Outcome::Fired
    );
    let d = decide(&e, &s, &comment("4", "cool"), t0() + TimeDelta::minutes(59)).await;
    assert!(d.considered[0].reason.contains("cooldown"));
    assert_eq!(
        decide(&e, &s, &comment("5", "cool"), t0() + TimeDelta::hours(1))
            .await
            .outcome,
        Outcome::Fired
    );

    let someone = |i: u32| {
        comment_from(
            &format!("cap{i}"),
            Sender::new(format!("p{i}")),
            "cap",
            t0(),
        )
    };
    assert_eq!(
        decide(&e, &s, &someone(1), t0()).await.outcome,
        Outcome::Fired
    );
    assert_eq!(
        decide(&e, &s, &someone(2), t0() + TimeDelta::minutes(30))
            .await
            .outcome,
        Outcome::Fired
    );
    let d = decide(&e, &s, &someone(3), t0() + TimeDelta::minutes(59)).await;
    assert!(d.considered[0].reason.contains("hourly cap"));
    assert_eq!(
        decide(&e, &s, &someone(4), t0() + TimeDelta::minutes(60))
            .await
            .outcome,
        Outcome::Fired
    );
}

#[tokio::test]
async fn hand_off_pauses_and_webhook_is_planned() {
    let e = engine(
        r#"
[[rules]]
id = "human"
match = { mode = "contains", keywords = ["human"] }
actions = [{ type = "hand_off", pause = "2h", note = "wants a person" }, { type = "webhook", url = "https://hooks.test/x" }]

[[rules]]
id = "all"
actions = [{ type = "add_tag", tag = "seen" }]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("m1", "HUMAN please", t0()), t0()).await;
    assert_eq!(
        d.actions[0],
        PlannedAction::HandOff {
            until: t0() + TimeDelta::hours(2),
            note: Some("wants a person".into())
        }
    );
    let PlannedAction::Webhook { url, body } = &d.actions[1] else {
        panic!()
    };
    assert_eq!(url, "https://hooks.test/x");
    assert_eq!(body["rule"], "human");
    assert_eq!(body["event"]["kind"]["text"], "HUMAN please");
    let d = decide(
        &e,
        &s,
        &dm("m2", "anything", t0() + TimeDelta::minutes(119)),
        t0() + TimeDelta::minutes(119),
    )
    .await;
    assert_eq!(d.outcome, Outcome::Paused);
    let d = decide(
        &e,
        &s,
        &dm("m3", "anything", t0() + TimeDelta::hours(2)),
        t0() + TimeDelta::hours(2),
    )
    .await;
    assert_eq!(d.rule.as_deref(), Some("all"));
}

#[tokio::test]
async fn human_echo_pauses_and_reads_are_ignored() {
    let e = engine("[[rules]]\nid = \"all\"\nactions = [{ type = \"add_tag\", tag = \"x\" }]\n");
    let s = MemoryStore::new();
    let echo = |from_app| {
        InboundEvent::new(
            format!("echo{from_app}"),
            ACC,
            t0(),
            sender(),
            EventKind::Echo {
                mid: "e".into(),
                text: "hi".into(),
                from_app,
            },
        )
    };
    assert_eq!(
        decide(&e, &s, &echo(true), t0()).await.outcome,
        Outcome::Ignored
    );
    assert_eq!(
        decide(&e, &s, &dm("a", "x", t0()), t0()).await.outcome,
        Outcome::Fired
    );
    assert_eq!(
        decide(&e, &s, &echo(false), t0()).await.outcome,
        Outcome::Ignored
    );
    assert_eq!(
        decide(&e, &s, &dm("b", "x", t0()), t0() + TimeDelta::minutes(29))
            .await
            .outcome,
        Outcome::Paused
    );
    assert_eq!(
        decide(&e, &s, &dm("c", "x", t0()), t0() + TimeDelta::minutes(30))
            .await
            .outcome,
        Outcome::Fired
    );
    let read = InboundEvent::new(
        "r",
        ACC,
        t0(),
        sender(),
        EventKind::Read { mid: "m".into() },
    );
    assert_eq!(decide(&e, &s, &read, t0()).await.outcome, Outcome::Ignored);
    let e2 = Engine::new(RuleSet::new()).with_config({
        let mut c = automation_core::EngineConfig::default();
        c.pause_on_human_reply = None;
        c
    });
    let s2 = MemoryStore::new();
    decide(&e2, &s2, &echo(false), t0()).await;
    assert_eq!(
        decide(&e2, &s2, &dm("z", "x", t0()), t0()).await.outcome,
        Outcome::NoMatch
    );
    let _ = Seconds(1);
}

const FLOW: &str = r#"
[[rules]]
id = "start"
on = ["message"]
match = { mode = "exact", keywords = ["start"] }
actions = [{ type = "start_flow", flow = "welcome" }]

[[rules]]
id = "fallback"
on = ["message"]
actions = [{ type = "add_tag", tag = "fallback" }]

[[flows]]
id = "welcome"
start = "ask"
steps = [
  { id = "ask", type = "message", text = "Hi {{first_name}}, what now?", choices = [{ title = "Email", next = "email" }, { title = "Later", next = "later" }] },
  { id = "email", type = "message", text = "Your email?", next = "wait" },
  { id = "wait", type = "wait_for_reply", save_to = "email", next = "check" },
  { id = "check", type = "condition", if = { kind = "field", name = "email", op = "contains", value = "@" }, then = "thanks", else = "email" },
  { id = "thanks", type = "tag", add = ["subscriber"], next = "bye" },
  { id = "bye", type = "message", text = "Thanks, {{field.email}}!" },
  { id = "later", type = "delay", wait = "1h", next = "ask" },
]
"#;

#[tokio::test]
async fn flow_buttons_replies_conditions_and_analytics() {
    let e = engine(FLOW);
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("1", "START", t0()), t0()).await;
    assert_eq!(d.rule.as_deref(), Some("start"));
    let PlannedAction::SendDm {
        message: Message::Buttons { text, buttons },
        ..
    } = &d.actions[1]
    else {
        panic!("{d:?}")
    };
    assert_eq!(text, "Hi ana, what now?");
    let automation_core::rule::Button::Postback { payload, title } = &buttons[0] else {
        panic!()
    };
    assert_eq!(title, "Email");
    assert_eq!(parse_choice_payload(payload), Some(("welcome", "ask", 0)));
    let state = s.flow_state(ACC, "u1").await.unwrap().unwrap();
    assert_eq!(
        (state.step.as_str(), state.waiting),
        ("ask", Waiting::Choice)
    );

    // tap "Email": message then wait for reply
    let d = decide(&e, &s, &postback("2", payload, t0()), t0()).await;
    assert_eq!(d.outcome, Outcome::Flow);
    assert!(
        matches!(&d.actions[0], PlannedAction::SendDm { message: Message::Text { text, .. }, .. } if text == "Your email?")
    );
    assert_eq!(
        s.flow_state(ACC, "u1").await.unwrap().unwrap().waiting,
        Waiting::Reply
    );

    // a bad reply loops back to asking
    let d = decide(&e, &s, &dm("3", "nope", t0()), t0()).await;
    assert_eq!(d.outcome, Outcome::Flow);
    assert_eq!(s.flow_state(ACC, "u1").await.unwrap().unwrap().step, "wait");
    // a good reply completes the flow
    let d = decide(&e, &s, &dm("4", "ana@x.test", t0()), t0()).await;
    assert!(d.actions.contains(&PlannedAction::AddTag {
        tag: "subscriber".into()
    }));
    assert!(
        matches!(d.actions.last(), Some(PlannedAction::SendDm { message: Message::Text { text, .. }, .. }) if text == "Thanks, ana@x.test!")
    );
    assert!(s.flow_state(ACC, "u1").await.unwrap().is_none());
    assert!(matches!(
        d.analytics.last().map(|a| &a.kind),
        Some(FlowEventKind::Completed)
    ));
    // after the flow, messages go to rules again
    assert_eq!(
        decide(&e, &s, &dm("5", "hello", t0()), t0())
            .await
            .rule
            .as_deref(),
        Some("fallback")
    );

    let kinds: Vec<_> = s.flow_events().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&FlowEventKind::Started));
    assert!(kinds.contains(&FlowEventKind::ChoiceTapped {
        step: "ask".into(),
        choice: 0,
        title: "Email".into()
    }));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, FlowEventKind::ReplyReceived { .. }))
            .count(),
        2
    );
}

#[tokio::test]
async fn flow_delay_wakes() {
    let e = engine(FLOW);
    let s = MemoryStore::new();
    decide(&e, &s, &dm("1", "start", t0()), t0()).await;
    let d = decide(
        &e,
        &s,
        &postback("2", "igdm:flow:welcome:ask:1", t0()),
        t0(),
    )
    .await;
    assert_eq!(
        d.actions,
        [PlannedAction::Wake {
            at: t0() + TimeDelta::hours(1)
        }]
    );
    let early = e
        .wake(&s, ACC, "u1", t0() + TimeDelta::minutes(59), 0)
        .await
        .unwrap();
    assert_eq!(early.outcome, Outcome::NoMatch);
    let d = e
        .wake(&s, ACC, "u1", t0() + TimeDelta::hours(1), 0)
        .await
        .unwrap();
    assert_eq!(d.outcome, Outcome::Flow);
    assert!(matches!(
        &d.actions[0],
        PlannedAction::SendDm {
            message: Message::Buttons { .. },
            ..
        }
    ));
    assert_eq!(
        s.flow_state(ACC, "u1").await.unwrap().unwrap().waiting,
        Waiting::Choice
    );
    // unknown choice payloads fall through to rules
    let d = decide(
        &e,
        &s,
        &postback("3", "igdm:flow:welcome:ask:9", t0()),
        t0(),
    )
    .await;
    assert_ne!(d.outcome, Outcome::Flow);
}

#[tokio::test]
async fn flow_cycles_are_cut() {
    let e = engine(
        r#"
[[rules]]
id = "go"
actions = [{ type = "start_flow", flow = "loop" }]
[[flows]]
id = "loop"
start = "a"
steps = [{ id = "a", type = "tag", add = ["x"], next = "b" }, { id = "b", type = "tag", remove = ["x"], next = "a" }]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("1", "hi", t0()), t0()).await;
    assert!(matches!(
        d.analytics.last().map(|a| &a.kind),
        Some(FlowEventKind::Abandoned)
    ));
    assert!(s.flow_state(ACC, "u1").await.unwrap().is_none());
}

#[test]
fn unknown_flow_reference_is_an_error() {
    let f = RulesFile::from_toml("account = \"a\"\n[[rules]]\nid = \"r\"\nactions = [{ type = \"start_flow\", flow = \"nope\" }]\n").unwrap();
    let errs = RuleSet::check(&f);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field(), Some("actions[0].flow"));
}

#[tokio::test]
async fn generic_media_and_quick_reply_messages_are_rendered() {
    let e = engine(
        r#"
[[rules]]
id = "catalog"
on = ["message"]
actions = [
  { type = "send_dm", message = { kind = "text", text = "Pick {{first_name|title}}", quick_replies = [{ title = "{{username|upper|truncate(20)}}", payload = "ME" }] } },
  { type = "send_dm", message = { kind = "generic", elements = [{ title = "Shoe for {{first_name}}", subtitle = "{{field.size|42|truncate(10)}}", image_url = "https://x.test/i.png", buttons = [{ type = "postback", title = "Buy", payload = "BUY" }] }] } },
  { type = "send_dm", message = { kind = "media", media = "image", url = "https://x.test/a.png" } },
]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("1", "hi", t0()), t0()).await;
    assert_eq!(d.actions.len(), 3, "{d:?}");
    let PlannedAction::SendDm {
        message: Message::Text {
            text,
            quick_replies,
        },
        ..
    } = &d.actions[0]
    else {
        panic!()
    };
    assert_eq!(text, "Pick Ana");
    assert_eq!(
        (
            quick_replies[0].title.as_str(),
            quick_replies[0].payload.as_str()
        ),
        ("ANA.C", "ME")
    );
    let PlannedAction::SendDm {
        message: Message::Generic { elements },
        ..
    } = &d.actions[1]
    else {
        panic!()
    };
    assert_eq!(elements[0].title, "Shoe for ana");
    assert_eq!(elements[0].subtitle.as_deref(), Some("42"));
    assert_eq!(
        elements[0].image_url.as_deref(),
        Some("https://x.test/i.png")
    );
    assert!(
        matches!(&d.actions[2], PlannedAction::SendDm { message: Message::Media { url, .. }, .. } if url == "https://x.test/a.png")
    );
}

#[tokio::test]
async fn decisions_round_trip_through_json() {
    let e = engine(FLOW);
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("1", "start", t0()), t0()).await;
    let json = serde_json::to_string(&d).unwrap();
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    assert!(json.contains("\"outcome\":\"fired\""));
}

#[tokio::test]
async fn huge_durations_saturate_instead_of_overflowing() {
    let e = engine(
        r#"
[[rules]]
id = "forever"
limits = { cooldown = 18446744073709551615 }
actions = [{ type = "hand_off", pause = 18446744073709551615 }]
"#,
    );
    let s = MemoryStore::new();
    let d = decide(&e, &s, &dm("1", "x", t0()), t0()).await;
    assert!(
        matches!(d.actions[0], PlannedAction::HandOff { until, .. } if until == DateTime::<Utc>::MAX_UTC)
    );
    assert_eq!(
        decide(&e, &s, &dm("2", "x", t0()), t0()).await.outcome,
        Outcome::Paused
    );
}

#[test]
fn invalid_messages_are_rejected_at_compile_time() {
    let bad = [
        (
            r#"{ type = "send_dm", message = { kind = "buttons", text = "t", buttons = [] } }"#,
            "1 to 3",
        ),
        (
            r#"{ type = "send_dm", message = { kind = "generic", elements = [] } }"#,
            "1 to 10",
        ),
        (
            r#"{ type = "send_dm", message = { kind = "media", media = "image", url = "ftp://x" } }"#,
            "http",
        ),
        (
            r#"{ type = "public_reply", variants = [] }"#,
            "at least one",
        ),
        (r#"{ type = "webhook", url = "nope" }"#, "http"),
        (r#"{ type = "hand_off", pause = 0 }"#, "longer than zero"),
        (
            r#"{ type = "ai_reply", instructions = " ", fallback = "x" }"#,
            "instructions are empty",
        ),
        (
            r#"{ type = "ai_reply", instructions = "x", fallback = "" }"#,
            "fallback is empty",
        ),
        (
            r#"{ type = "ai_reply", instructions = "x", fallback = "y", context_messages = 0 }"#,
            "1 to 50",
        ),
        (
            r#"{ type = "ai_reply", instructions = "x", fallback = "y", context_messages = 51 }"#,
            "1 to 50",
        ),
        (
            r#"{ type = "ai_reply", instructions = "x", fallback = "{{nope}}" }"#,
            "fallback",
        ),
        (
            r#"{ type = "private_reply", text = "{{field.a}}{{field.b}}" }"#,
            "worst case",
        ),
        (
            r#"{ type = "send_dm", message = { kind = "text", text = "x", quick_replies = [{ title = "{{name}}", payload = "P" }] } }"#,
            "limit of 20",
        ),
    ];
    for (action, want) in bad {
        let f = RulesFile::from_toml(&format!(
            "account = \"a\"\n[[rules]]\nid = \"r\"\nactions = [{action}]\n"
        ))
        .unwrap();
        let errs = RuleSet::check(&f);
        assert_eq!(errs.len(), 1, "{action}");
        assert!(errs[0].to_string().contains(want), "{action}: {}", errs[0]);
        assert!(
            errs[0].field().unwrap().starts_with("actions[0]"),
            "{action}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any comment or DM text through the example rule set: no panic, and a redelivery yields
    /// no actions.
    #[test]
    fn example_rules_never_panic_and_are_idempotent(text in "\\PC{0,300}", is_dm in proptest::bool::ANY, hours in 0i64..400) {
        let file = RulesFile::from_toml(include_str!("../examples/rules.toml")).unwrap();
        let engine = Engine::new(RuleSet::from_file(file).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let s = MemoryStore::new();
        let at = t0();
        let now = t0() + TimeDelta::hours(hours);
        let mut ev = if is_dm { dm("x", &text, at) } else { comment("x", &text) };
        ev.account = "17841400000000000".into();
        let first = rt.block_on(engine.decide(&s, &ev, now, 3)).unwrap();
        let again = rt.block_on(engine.decide(&s, &ev, now, 3)).unwrap();
        proptest::prop_assert_eq!(again.outcome, Outcome::Duplicate);
        proptest::prop_assert!(again.actions.is_empty());
        for a in &first.actions {
            if let PlannedAction::PrivateReply { text, .. } | PlannedAction::PublicReply { text, .. } = a {
                proptest::prop_assert!(text.len() <= 2200 * 4);
            }
            if let PlannedAction::SendDm { message: Message::Text { text, .. }, .. } = a {
                proptest::prop_assert!(text.len() <= 1000);
            }
        }
    }
}
