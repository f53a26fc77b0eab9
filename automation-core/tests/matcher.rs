//! Matching: every mode, normalization through the rule set, conflicts, incremental updates.
#![allow(clippy::unwrap_used)]

use automation_core::event::{EventKind, MediaKind};
use automation_core::matcher::{matches_naive, DELTA_MAX_RULES};
use automation_core::rule::ActiveWindow;
use automation_core::{
    ErrorKind, InboundEvent, Match, MatchMode, Rule, RuleSet, Scope, Sender, TriggerKind,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

const ACC: &str = "acc";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn comment(text: &str) -> InboundEvent {
    comment_on(text, "m1", MediaKind::Reel)
}

fn comment_on(text: &str, media: &str, kind: MediaKind) -> InboundEvent {
    InboundEvent::new(
        "e",
        ACC,
        now(),
        Sender::new("u1"),
        EventKind::Comment {
            comment_id: "c1".into(),
            media_id: media.into(),
            media_kind: kind,
            text: text.into(),
            parent_comment_id: None,
        },
    )
}

fn dm(text: &str) -> InboundEvent {
    InboundEvent::new(
        "e",
        ACC,
        now(),
        Sender::new("u1"),
        EventKind::Message {
            mid: "m".into(),
            text: Some(text.into()),
            attachments: vec![],
        },
    )
}

fn rule(id: &str, m: Match) -> Rule {
    Rule::new(id, ACC)
        .on(TriggerKind::Comment)
        .on(TriggerKind::Message)
        .matching(m)
}

fn ids(set: &RuleSet, e: &InboundEvent) -> Vec<String> {
    set.candidates(e, now())
        .iter()
        .map(|c| c.rule.id.clone())
        .collect()
}

fn one(m: Match, text: &str) -> bool {
    let set = RuleSet::compile([rule("r", m)], []).unwrap();
    !ids(&set, &comment(text)).is_empty()
}

#[test]
fn exact_mode() {
    assert!(one(Match::exact(["link"]), "LINK!!"));
    assert!(one(Match::exact(["link please"]), "  Link,   please. "));
    assert!(!one(Match::exact(["link"]), "link please"));
    assert!(!one(Match::exact(["link"]), "the link"));
}

#[test]
fn contains_mode_on_word_boundaries() {
    let m = || Match::contains(["link", "how much"]);
    assert!(one(m(), "send me the LINK pls"));
    assert!(one(m(), "link"));
    assert!(one(m(), "How... much?"));
    assert!(!one(m(), "linking"));
    assert!(!one(m(), "unlink"));
    assert!(!one(m(), "how muchness"));
}

#[test]
fn starts_with_mode() {
    let m = || Match::starts_with(["price"]);
    assert!(one(m(), "Price? please"));
    assert!(one(m(), "¡price"));
    assert!(!one(m(), "the price"));
    assert!(!one(m(), "pricey"));
}

#[test]
fn any_mode_matches_everything_including_empty() {
    assert!(one(Match::any(), "whatever"));
    assert!(one(Match::any(), ""));
}

#[test]
fn regex_mode_uses_original_text() {
    let m = || Match::regex(r"(?i)order\s*#\d{4,}");
    assert!(one(m(), "where is Order #12345?"));
    assert!(!one(m(), "order 12"));
    let err = RuleSet::compile([rule("r", Match::regex("(unclosed"))], []).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRule);
    assert_eq!(err.field(), Some("match.pattern"));
}

#[test]
fn accents_width_case_and_scripts() {
    assert!(one(Match::contains(["cafe"]), "Un CAFÉ por favor"));
    assert!(one(Match::contains(["café"]), "cafe"));
    assert!(one(Match::contains(["link"]), "ＬＩＮＫ"));
    assert!(one(Match::contains(["strasse"]), "Die Straße"));
    assert!(one(Match::contains(["цена"]), "Какая ЦЕНА?"));
    assert!(!one(Match::contains(["цена"]), "ценами"));
    assert!(one(Match::contains(["سعر"]), "ما هو السِّعر؟ سعر"));
    assert!(one(Match::contains(["مرحبا"]), "مَرْحَبًا!"));
    assert!(one(Match::contains(["가격"]), "가격 알려주세요"));
}

#[test]
fn unspaced_scripts_match_substrings() {
    assert!(one(Match::contains(["链接"]), "请给我链接谢谢"));
    assert!(one(Match::contains(["値段"]), "この値段はいくらですか"));
    assert!(one(Match::contains(["ราคา"]), "ขอราคาหน่อยครับ"));
    assert!(one(Match::contains(["link"]), "请给我link谢谢"));
    assert!(one(Match::starts_with(["价格"]), "价格多少"));
}

#[test]
fn emoji_are_keywords() {
    assert!(one(Match::contains(["🔥"]), "so good🔥🔥"));
    assert!(one(Match::contains(["👍"]), "ok 👍🏽"));
    assert!(one(Match::exact(["❤"]), "❤️"));
    assert!(!one(Match::contains(["🔥"]), "so good"));
}

#[test]
fn exclusions_veto() {
    let set = RuleSet::compile(
        [
            rule("r", Match::contains(["link"])).exclude("spam"),
            rule("s", Match::any()),
        ],
        [],
    )
    .unwrap();
    assert_eq!(ids(&set, &comment("link")), ["r", "s"]);
    assert_eq!(ids(&set, &comment("link SPAM")), ["s"]);
    assert_eq!(ids(&set, &comment("link spammer")), ["r", "s"]);
}

#[test]
fn triggers_scope_enabled_and_active_window() {
    let set = RuleSet::compile(
        [
            Rule::new("dm-only", ACC)
                .on(TriggerKind::Message)
                .matching(Match::contains(["hi"])),
            rule("reel", Match::contains(["hi"])).scope(Scope::AnyReel),
            rule("post", Match::contains(["hi"])).scope(Scope::AnyPost),
            rule("media", Match::contains(["hi"])).scope(Scope::Media {
                ids: vec!["m9".into()],
            }),
            rule("off", Match::contains(["hi"])).enabled(false),
            rule("future", Match::contains(["hi"]))
                .active(ActiveWindow::new(Some(now() + TimeDelta::hours(1)), None)),
            rule("past", Match::contains(["hi"])).active(ActiveWindow::new(None, Some(now()))),
            Rule::new("other-account", "zzz").matching(Match::contains(["hi"])),
        ],
        [],
    )
    .unwrap();
    let mut got = ids(&set, &comment_on("hi", "m1", MediaKind::Reel));
    got.sort();
    assert_eq!(got, ["reel"]);
    let mut got = ids(&set, &comment_on("hi", "m9", MediaKind::Post));
    got.sort();
    assert_eq!(got, ["media", "post"]);
    // scopes do not apply to DMs: every enabled, active rule listening to messages matches
    let mut got = ids(&set, &dm("hi"));
    got.sort();
    assert_eq!(got, ["dm-only", "media", "post", "reel"]);
}

#[test]
fn conflict_order_priority_specificity_age() {
    let t = now() - TimeDelta::days(10);
    let set = RuleSet::compile(
        [
            rule("any", Match::any()),
            rule("contains-short", Match::contains(["link"])),
            rule("contains-long", Match::contains(["link please"])),
            rule("exact", Match::exact(["link please"])),
            rule("starts", Match::starts_with(["link"])),
            rule("regex", Match::regex("link")),
            rule("young", Match::contains(["please"])).created_at(t + TimeDelta::days(1)),
            rule("old", Match::contains(["please"])).created_at(t),
            rule("urgent", Match::any()).priority(5),
        ],
        [],
    )
    .unwrap();
    assert_eq!(
        ids(&set, &comment("link please")),
        [
            "urgent",
            "exact",
            "starts",
            "contains-long",
            "old",
            "young",
            "contains-short",
            "regex",
            "any"
        ]
    );
}

#[test]
fn payload_triggers_match_payload() {
    let set = RuleSet::compile(
        [Rule::new("p", ACC)
            .on(TriggerKind::Postback)
            .matching(Match::exact(["GET_PRICES"]))],
        [],
    )
    .unwrap();
    let e = InboundEvent::new(
        "e",
        ACC,
        now(),
        Sender::new("u"),
        EventKind::Postback {
            mid: None,
            title: "Prices".into(),
            payload: "GET_PRICES".into(),
        },
    );
    assert_eq!(ids(&set, &e), ["p"]);
    let read = InboundEvent::new(
        "e",
        ACC,
        now(),
        Sender::new("u"),
        EventKind::Read { mid: "m".into() },
    );
    assert!(ids(&set, &read).is_empty());
}

#[test]
fn invalid_rules_are_reported_with_location() {
    let e = RuleSet::compile([rule("r", Match::contains(["ok", "!!!"]))], []).unwrap_err();
    assert_eq!(
        (e.rule(), e.field()),
        (Some("r"), Some("match.keywords[1]"))
    );
    let e = RuleSet::compile(
        [rule(
            "r",
            Match::new(MatchMode::Contains, Vec::<String>::new()),
        )],
        [],
    )
    .unwrap_err();
    assert!(e.message().contains("at least one keyword"));
    let e = RuleSet::compile([Rule::new("r", "")], []).unwrap_err();
    assert!(e.message().contains("account"));
    let e = RuleSet::compile([rule("r", Match::any()), rule("r", Match::any())], []).unwrap_err();
    assert!(e.message().contains("unique"));
}

#[test]
fn ten_thousand_keywords_in_one_rule() {
    let kws: Vec<String> = (0..10_000).map(|i| format!("kw{i}")).collect();
    let set = RuleSet::compile([rule("big", Match::contains(kws))], []).unwrap();
    assert_eq!(ids(&set, &comment("hello kw9999 there")), ["big"]);
    assert!(ids(&set, &comment("kw10000")).is_empty());
}

#[test]
fn one_megabyte_comment() {
    let set = RuleSet::compile(
        [
            rule("r", Match::contains(["needle"])),
            rule("a", Match::contains(["a"])),
        ],
        [],
    )
    .unwrap();
    let mut text = "a ".repeat(500_000);
    assert!(ids(&set, &comment(&text)) == ["a"]);
    text.push_str("NEEDLE");
    let got = ids(&set, &comment(&text));
    assert_eq!(got, ["r", "a"]);
}

#[test]
fn incremental_insert_remove_and_compaction() {
    let mut set = RuleSet::compile(
        (0..100).map(|i| rule(&format!("r{i}"), Match::contains([format!("word{i}")]))),
        [],
    )
    .unwrap();
    assert_eq!(ids(&set, &comment("word7")), ["r7"]);
    set.insert(rule("new", Match::contains(["fresh"]))).unwrap();
    assert_eq!(ids(&set, &comment("fresh word7")).len(), 2);
    assert!(set.remove("r7").is_some());
    assert!(ids(&set, &comment("word7")).is_empty());
    assert!(set.remove("r7").is_none());
    // replace by id
    set.insert(rule("r8", Match::contains(["other"]))).unwrap();
    assert!(ids(&set, &comment("word8")).is_empty());
    assert_eq!(ids(&set, &comment("other")), ["r8"]);
    // overflow the delta: compaction keeps everything findable
    for i in 0..(DELTA_MAX_RULES + 10) {
        set.insert(rule(
            &format!("d{i}"),
            Match::contains([format!("delta{i}")]),
        ))
        .unwrap();
    }
    assert_eq!(ids(&set, &comment("delta3")), ["d3"]);
    assert_eq!(
        ids(&set, &comment(&format!("delta{}", DELTA_MAX_RULES + 9))),
        [format!("d{}", DELTA_MAX_RULES + 9)]
    );
    assert_eq!(ids(&set, &comment("word9")), ["r9"]);
    for i in 0..90 {
        set.remove(&format!("r{i}"));
    }
    assert_eq!(ids(&set, &comment("word95 delta1")).len(), 2);
    set.compact();
    assert_eq!(ids(&set, &comment("word95 delta1")).len(), 2);
    assert_eq!(set.len(), 100 - 90 + 1 + DELTA_MAX_RULES + 10);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The compiled automaton agrees with the naive loop for every keyword mode.
    #[test]
    fn automaton_agrees_with_naive(
        words in proptest::collection::vec("(link|price|цена|猫|🔥|a|ab|ba|x y|a猫|猫 x|ราคา)", 1..4),
        text in "(link|price|цена|猫|🔥|a|ab|ba|x|y| |!|,|L|Ц|ราคา|ครับ){0,20}",
        mode in prop_oneof![Just(MatchMode::Exact), Just(MatchMode::Contains), Just(MatchMode::StartsWith)],
    ) {
        let m = Match::new(mode, words.clone());
        let set = RuleSet::compile([rule("r", m)], []).unwrap();
        let fast = !ids(&set, &comment(&text)).is_empty();
        prop_assert_eq!(fast, matches_naive(mode, &words, &text), "text={:?}", text);
    }

    /// Several rules sharing keywords in one index: each rule's verdict equals the naive one.
    #[test]
    fn shared_index_agrees_with_naive_per_rule(
        rules in proptest::collection::vec(
            (proptest::collection::vec("(link|price|a|ab|x y|猫|a猫|🔥)", 1..3),
             prop_oneof![Just(MatchMode::Exact), Just(MatchMode::Contains), Just(MatchMode::StartsWith)]),
            1..6),
        text in "(link|price|猫|🔥|a|ab|x|y| |!){0,16}",
    ) {
        let set = RuleSet::compile(
            rules.iter().enumerate().map(|(i, (kw, mode))| rule(&format!("r{i}"), Match::new(*mode, kw.clone()))),
            [],
        ).unwrap();
        let mut got = ids(&set, &comment(&text));
        got.sort();
        let mut want: Vec<String> = rules
            .iter()
            .enumerate()
            .filter(|(_, (kw, mode))| matches_naive(*mode, kw, &text))
            .map(|(i, _)| format!("r{i}"))
            .collect();
        want.sort();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,200}") {
        let set = RuleSet::compile([rule("r", Match::contains(["a", "🔥", "猫"])), rule("s", Match::starts_with(["é"]))], []).unwrap();
        let _ = ids(&set, &comment(&text));
    }
}
