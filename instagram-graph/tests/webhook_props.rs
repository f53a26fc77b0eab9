//! Property tests: `webhook::parse` never panics, whatever the bytes or JSON.
#![allow(clippy::unwrap_used)]

use instagram_graph::webhook;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        // Strings that look like timestamps and ids.
        "-?[0-9]{1,20}(\\.[0-9]{0,4})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Keys that matter to the parser, plus arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "object",
            "entry",
            "id",
            "time",
            "messaging",
            "standby",
            "changes",
            "field",
            "value",
            "sender",
            "recipient",
            "timestamp",
            "message",
            "mid",
            "text",
            "attachments",
            "type",
            "payload",
            "url",
            "reaction",
            "action",
            "postback",
            "read",
            "referral",
            "optin",
            "message_edit",
            "pass_thread_control",
            "app_roles",
            "reply_to",
            "story",
            "quick_reply",
            "is_echo",
            "comment_id",
            "from",
            "media",
            "media_id",
            "watermark",
            "reel_video_id",
            "exits",
            "ads_context_data",
            "product",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

/// An id: usually well formed (a string or a number), sometimes anything.
fn id_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[0-9]{1,17}".prop_map(Value::String),
        2 => any::<u64>().prop_map(Value::from),
        1 => any_json(),
    ]
}

/// A timestamp: usually well formed (seconds or milliseconds, number or string), sometimes anything.
fn time_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => (1_000_000_000i64..2_000_000_000_000).prop_map(Value::from),
        1 => (1_000_000_000i64..2_000_000_000_000).prop_map(|t| Value::String(t.to_string())),
        1 => any_json(),
    ]
}

/// A body for an event key: usually shaped like a message or reaction, sometimes anything.
fn event_body() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "image",
        "video",
        "ig_reel",
        "story_mention",
        "template",
        "fallback",
        "like_heart",
        "ephemeral",
        "brand_new",
    ]);
    let attachment = (kind, any_json(), ".{0,20}").prop_map(|(kind, payload, url)| {
        json!([{"type": kind, "payload": {"url": url, "reel_video_id": 123}}, {"type": kind, "payload": payload}])
    });
    prop_oneof![
        2 => (id_like(), ".{0,30}", attachment, any::<bool>()).prop_map(|(mid, text, attachments, echo)| {
            json!({"mid": mid, "text": text, "attachments": attachments, "is_echo": echo,
                   "reply_to": {"story": {"id": "1", "url": "u"}}, "quick_reply": {"payload": "P"}})
        }),
        1 => (id_like(), prop::sample::select(vec!["react", "unreact", "other"]))
            .prop_map(|(mid, action)| json!({"mid": mid, "action": action, "reaction": "love"})),
        1 => any_json(),
    ]
}

/// Values placed where the parser expects specific shapes, with random types.
fn envelope() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        prop::sample::select(vec![
            "comments",
            "live_comments",
            "mentions",
            "story_insights",
            "messages",
            "standby",
            "message_reactions",
            "messaging_handover",
            "unknown_field",
        ])
        .prop_map(Value::from),
        any_json(),
    ];
    let event_key = prop::sample::select(vec![
        "message",
        "reaction",
        "postback",
        "read",
        "referral",
        "optin",
        "message_edit",
        "pass_thread_control",
        "app_roles",
        "mystery",
    ]);
    let messaging = (id_like(), id_like(), time_like(), event_key, event_body()).prop_map(
        |(sender, recipient, timestamp, key, body)| {
            let mut m = Map::new();
            m.insert("sender".into(), json!({ "id": sender }));
            m.insert("recipient".into(), json!({ "id": recipient }));
            m.insert("timestamp".into(), timestamp);
            m.insert(key.into(), body);
            Value::Object(m)
        },
    );
    let change =
        (field, any_json()).prop_map(|(field, value)| json!({"field": field, "value": value}));
    let entry = (
        id_like(),
        time_like(),
        prop::collection::vec(messaging, 0..3),
        prop::collection::vec(change, 0..3),
    )
        .prop_map(|(id, time, messaging, changes)| {
            json!({"id": id, "time": time, "messaging": messaging, "changes": changes})
        });
    let object = prop_oneof![Just(json!("instagram")), Just(json!("page")), any_json()];
    (object, prop::collection::vec(entry, 0..3), any::<bool>()).prop_map(
        |(object, entries, wrap)| {
            let n = json!({"object": object, "entry": entries});
            if wrap {
                json!([n])
            } else {
                n
            }
        },
    )
}

fn check(bytes: &[u8]) {
    match webhook::parse(bytes) {
        Ok(n) => {
            // Everything accepted can be printed.
            for event in n.events() {
                serde_json::to_string(event).unwrap();
            }
            for error in n.errors() {
                assert!(!error.to_string().is_empty());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn never_panics_on_arbitrary_json(value in any_json()) {
        check(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn never_panics_on_envelopes_with_random_field_types(value in envelope()) {
        let body = serde_json::to_vec(&value).unwrap();
        check(&body);
        // Cut in half it is no longer JSON: refused with an error, never a panic.
        let cut = &body[..body.len() / 2];
        prop_assert!(webhook::parse(cut).is_err());
    }

    /// The one-pass path and the part-by-part path agree: adding one malformed entry (which forces
    /// the part-by-part path) adds exactly one error and changes no event.
    #[test]
    fn a_bad_entry_changes_nothing_else(value in envelope()) {
        let notification = match value {
            Value::Array(mut wrapped) => wrapped.remove(0),
            other => other,
        };
        let before = webhook::parse(&serde_json::to_vec(&notification).unwrap()).unwrap();
        let mut spoiled = notification.clone();
        spoiled["entry"].as_array_mut().unwrap().push(json!("not an entry"));
        let after = webhook::parse(&serde_json::to_vec(&spoiled).unwrap()).unwrap();
        prop_assert_eq!(before.events(), after.events());
        prop_assert_eq!(before.errors().len() + 1, after.errors().len());
    }

    #[test]
    fn well_formed_messages_always_parse(
        text in ".{0,40}",
        ids_as_numbers in any::<bool>(),
        ts in 1_000_000_000i64..4_000_000_000_000,
        ts_as_string in any::<bool>(),
    ) {
        let id = |n: u64| if ids_as_numbers { json!(n) } else { json!(n.to_string()) };
        let timestamp = if ts_as_string { json!(ts.to_string()) } else { json!(ts) };
        let body = json!({"object":"instagram","entry":[{"id": id(17841400000000001), "messaging":[{
            "sender": {"id": id(6000000000000001)}, "recipient": {"id": id(17841400000000001)},
            "timestamp": timestamp, "message": {"mid": "m", "text": text}}]}]});
        let n = webhook::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        prop_assert!(n.is_complete());
        prop_assert_eq!(n.events().len(), 1);
        let e = &n.events()[0];
        prop_assert_eq!(e.sender.as_ref().unwrap().as_str(), "6000000000000001");
        let expected = instagram_graph::time::from_unix_number(ts);
        prop_assert_eq!(e.time, expected);
        match &e.kind {
            webhook::EventKind::Message(m) => prop_assert_eq!(m.text.as_deref(), Some(text.as_str())),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
