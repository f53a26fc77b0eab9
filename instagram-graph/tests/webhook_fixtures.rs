//! The webhook model against the project's own fixtures (`tests/fixtures/`), one per event kind
//! and envelope form, written from the documented shapes.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use instagram_graph::webhook::{
    self, AttachmentKind, Event, EventKind, HandoverAction, Notification, Object, ReactionAction,
    ReplyTo,
};
use instagram_graph::ErrorKind;

fn load(name: &str) -> Notification {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&path).unwrap();
    webhook::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn complete(name: &str) -> Vec<Event> {
    let n = load(name);
    assert!(n.is_complete(), "{name}: {:?}", n.errors());
    n.into_parts().0
}

fn millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn secs(s: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(s, 0)
}

#[test]
fn text_message_with_quick_reply_and_reply_to() {
    let events = complete("messages_text.json");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.object, Some(Object::Instagram));
    assert_eq!(e.account_id.as_ref().unwrap(), "17841400000000001");
    assert_eq!(e.sender.as_ref().unwrap(), "6000000000000001");
    assert_eq!(e.recipient.as_ref().unwrap(), "17841400000000001");
    assert_eq!(e.time, millis(1700000000123));
    assert!(!e.standby);
    assert_eq!(e.counterpart().unwrap(), "6000000000000001");
    let EventKind::Message(m) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(m.mid.as_ref().unwrap(), "aWdfZAG1faXRlbToxOkFBQQ");
    assert_eq!(
        m.text.as_deref(),
        Some("Is the blue one still available? äöå")
    );
    assert_eq!(m.quick_reply_payload.as_deref(), Some("COLOR_BLUE"));
    assert_eq!(
        m.reply_to,
        Some(ReplyTo::Message {
            mid: "aWdfZAG1faXRlbToxOkJCQg".into()
        })
    );
    assert!(!m.is_echo && !m.is_deleted && !m.is_unsupported);
}

#[test]
fn every_attachment_kind() {
    let events = complete("messages_attachments.json");
    let EventKind::Message(m) = &events[0].kind else {
        panic!()
    };
    let kinds: Vec<&str> = m.attachments.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "image",
            "video",
            "audio",
            "file",
            "share",
            "ig_reel",
            "reel",
            "ig_post",
            "story_mention",
            "ig_story",
            "template",
            "fallback",
            "like_heart",
            "ephemeral",
            "unsupported_type",
            "avatar_future"
        ]
    );
    let a = &m.attachments;
    assert_eq!(a[0].kind, AttachmentKind::Image);
    // Escaped slashes are unescaped.
    assert_eq!(
        a[0].url.as_deref(),
        Some("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=a")
    );
    assert_eq!(a[4].title.as_deref(), Some("A post"));
    // Media ids from numbers and strings, under each payload's own key.
    assert_eq!(a[5].media_id.as_ref().unwrap(), "18000000000000001");
    assert_eq!(a[6].media_id.as_ref().unwrap(), "18000000000000002");
    assert_eq!(a[7].media_id.as_ref().unwrap(), "18000000000000003");
    assert_eq!(a[8].media_id.as_ref().unwrap(), "18000000000000004");
    assert_eq!(a[9].media_id.as_ref().unwrap(), "18000000000000005");
    // Templates and unknown kinds keep their payload raw.
    assert_eq!(a[10].kind, AttachmentKind::Template);
    assert_eq!(
        a[10].payload.as_ref().unwrap()["elements"][0]["title"],
        "Shoes"
    );
    assert_eq!(a[11].kind, AttachmentKind::Fallback);
    assert_eq!(a[11].url.as_deref(), Some("https://example.com/legacy"));
    assert_eq!(a[12].kind, AttachmentKind::LikeHeart);
    assert!(a[12].url.is_none() && a[12].payload.is_none());
    assert_eq!(a[13].kind, AttachmentKind::Ephemeral);
    assert!(a[13].url.is_none());
    assert_eq!(a[14].kind, AttachmentKind::UnsupportedType);
    assert_eq!(a[15].kind, AttachmentKind::Other("avatar_future".into()));
    assert_eq!(
        a[15].payload,
        Some(serde_json::json!({"avatar_id": 7, "pose": "wave"}))
    );
}

#[test]
fn story_reply_with_ad_referral() {
    let events = complete("messages_story_reply_with_ad_referral.json");
    let EventKind::Message(m) = &events[0].kind else {
        panic!()
    };
    assert_eq!(
        m.reply_to,
        Some(ReplyTo::Story {
            id: Some("18000000000000009".into()),
            url: Some("https://cdn.example/story".into())
        })
    );
    let r = m.referral.as_ref().unwrap();
    assert_eq!(r.reference.as_deref(), Some("summer_sale"));
    assert_eq!(r.ad_id.as_deref(), Some("120200000000000001"));
    assert_eq!(r.source.as_deref(), Some("ADS"));
    assert_eq!(r.referral_type.as_deref(), Some("OPEN_THREAD"));
    let ads = r.ads_context.as_ref().unwrap();
    assert_eq!(ads.ad_title.as_deref(), Some("Summer sale"));
    assert_eq!(
        ads.video_url.as_deref(),
        Some("https://cdn.example/thumb.jpg")
    );
}

#[test]
fn echo_self_deleted_and_unsupported_flags() {
    let events = complete("messages_echo_deleted_unsupported.json");
    assert_eq!(events.len(), 4);
    let flags: Vec<(bool, bool, bool, bool)> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Message(m) => (m.is_echo, m.is_self, m.is_deleted, m.is_unsupported),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        flags,
        [
            (true, false, false, false),
            (true, true, false, false),
            (false, false, true, false),
            (false, false, false, true)
        ]
    );
    // The counterpart of an echo is its recipient.
    assert_eq!(events[0].counterpart().unwrap(), "6000000000000001");
    assert_eq!(events[2].counterpart().unwrap(), "6000000000000001");
}

#[test]
fn react_and_unreact() {
    let events = complete("reactions.json");
    let EventKind::Reaction(r) = &events[0].kind else {
        panic!()
    };
    assert_eq!(r.action, ReactionAction::React);
    assert_eq!(r.reaction.as_deref(), Some("love"));
    assert_eq!(r.emoji.as_deref(), Some("\u{2764}\u{fe0f}"));
    assert_eq!(r.mid.as_ref().unwrap(), "m-1");
    let EventKind::Reaction(r) = &events[1].kind else {
        panic!()
    };
    assert_eq!(r.action, ReactionAction::Unreact);
    assert!(r.reaction.is_none() && r.emoji.is_none());
}

#[test]
fn postback_seen_referral_optin_edit() {
    let e = complete("postback.json");
    let EventKind::Postback(p) = &e[0].kind else {
        panic!()
    };
    assert_eq!(p.mid.as_ref().unwrap(), "m-postback");
    assert_eq!(p.title.as_deref(), Some("Track my order"));
    assert_eq!(p.payload.as_deref(), Some("TRACK_ORDER"));
    assert_eq!(
        p.referral.as_ref().unwrap().source.as_deref(),
        Some("ICEBREAKER")
    );

    let e = complete("seen.json");
    let EventKind::Read(r) = &e[0].kind else {
        panic!()
    };
    assert_eq!(r.mid.as_ref().unwrap(), "m-read");

    let e = complete("referral.json");
    let EventKind::Referral(r) = &e[0].kind else {
        panic!()
    };
    assert_eq!(r.reference.as_deref(), Some("bio_link"));
    assert_eq!(r.product_id.as_deref(), Some("9876543210"));

    let e = complete("optin_page.json");
    assert_eq!(e[0].object, Some(Object::Page));
    assert_eq!(e[0].account_id.as_ref().unwrap(), "1122334455");
    assert_eq!(e[0].sender.as_ref().unwrap(), "9988776655");
    let EventKind::OptIn(o) = &e[0].kind else {
        panic!()
    };
    assert_eq!(o.optin_type.as_deref(), Some("notification_messages"));
    assert_eq!(o.payload.as_deref(), Some("WEEKLY_DEALS"));
    assert_eq!(o.notification_messages_token.as_deref(), Some("tok-abc"));
    assert_eq!(o.reference.as_deref(), Some("footer"));

    let e = complete("message_edit_page.json");
    let EventKind::MessageEdit(m) = &e[0].kind else {
        panic!()
    };
    assert_eq!(m.mid.as_ref().unwrap(), "m-edited");
    assert_eq!(m.text.as_deref(), Some("fixed typo"));
    assert_eq!(m.num_edit, Some(2));
}

#[test]
fn handover_and_standby() {
    let e = complete("handover.json");
    let actions: Vec<&HandoverAction> = e
        .iter()
        .map(|e| match &e.kind {
            EventKind::Handover(h) => &h.action,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        actions,
        [
            &HandoverAction::PassThreadControl,
            &HandoverAction::TakeThreadControl,
            &HandoverAction::RequestThreadControl,
            &HandoverAction::AppRoles
        ]
    );
    let EventKind::Handover(pass) = &e[0].kind else {
        panic!()
    };
    assert_eq!(pass.previous_owner_app_id.as_deref(), Some("111"));
    assert_eq!(pass.new_owner_app_id.as_deref(), Some("222"));
    assert_eq!(pass.metadata.as_deref(), Some("escalated to a human"));
    let EventKind::Handover(roles) = &e[3].kind else {
        panic!()
    };
    assert_eq!(
        roles.raw.as_ref().unwrap()["111"][0],
        serde_json::json!("primary_receiver")
    );
    assert!(e[3].sender.is_none());

    let e = complete("standby.json");
    assert_eq!(e.len(), 1);
    assert!(e[0].standby);
    assert!(
        matches!(&e[0].kind, EventKind::Message(m) if m.text.as_deref() == Some("hello human"))
    );
}

#[test]
fn comments_in_both_login_forms() {
    // Facebook Login: changes[] with comment_id, inside a top-level array.
    let e = complete("comments_facebook_login.json");
    assert_eq!(e[0].time, secs(1700000012));
    assert!(e[0].sender.is_none());
    assert_eq!(e[0].counterpart().unwrap(), "6000000000000003");
    let EventKind::Comment(c) = &e[0].kind else {
        panic!()
    };
    assert_eq!(c.id.as_ref().unwrap(), "17900000000000001");
    assert_eq!(c.parent_id.as_ref().unwrap(), "17900000000000000");
    assert_eq!(c.text.as_deref(), Some("How much?"));
    let from = c.from.as_ref().unwrap();
    assert_eq!(from.id.as_ref().unwrap(), "6000000000000003");
    assert_eq!(from.username.as_deref(), Some("shopper"));
    let media = c.media.as_ref().unwrap();
    assert_eq!(media.id.as_ref().unwrap(), "18000000000000010");
    assert_eq!(media.ad_id.as_deref(), Some("120200000000000002"));
    assert_eq!(media.ad_title.as_deref(), Some("Boots"));
    assert_eq!(
        media.original_media_id.as_ref().unwrap(),
        "18000000000000011"
    );
    assert_eq!(media.media_product_type.as_deref(), Some("AD"));

    // Instagram Login as printed: entry-level field/value, id instead of comment_id, and the
    // entry time as a string.
    let e = complete("comments_instagram_login_entry_field.json");
    assert_eq!(e[0].time, secs(1700000013));
    let EventKind::Comment(c) = &e[0].kind else {
        panic!()
    };
    assert_eq!(c.id.as_ref().unwrap(), "17900000000000002");
    assert_eq!(c.text.as_deref(), Some("PRICE"));
    assert!(c.parent_id.is_none());

    let e = complete("live_comments.json");
    let EventKind::LiveComment(c) = &e[0].kind else {
        panic!()
    };
    assert_eq!(c.text.as_deref(), Some("hi from the live"));

    // The Dashboard's bare {field, value}: no account, no time.
    let e = complete("bare_field_value.json");
    assert!(e[0].account_id.is_none() && e[0].time.is_none() && e[0].object.is_none());
    assert!(
        matches!(&e[0].kind, EventKind::Comment(c) if c.id.as_ref().unwrap() == "17865799348089039")
    );
}

#[test]
fn mentions_and_story_insights() {
    let e = complete("mentions.json");
    assert_eq!(e.len(), 2);
    let EventKind::Mention(m) = &e[0].kind else {
        panic!()
    };
    assert_eq!(m.comment_id.as_ref().unwrap(), "17900000000000004");
    assert_eq!(m.media_id.as_ref().unwrap(), "18000000000000014");
    let EventKind::Mention(caption) = &e[1].kind else {
        panic!()
    };
    assert!(caption.comment_id.is_none());

    let e = complete("story_insights.json");
    let EventKind::StoryInsights(s) = &e[0].kind else {
        panic!()
    };
    assert_eq!(s.media_id.as_ref().unwrap(), "18000000000000016");
    assert_eq!(
        (
            s.exits,
            s.replies,
            s.reach,
            s.taps_forward,
            s.taps_back,
            s.impressions
        ),
        (Some(1), Some(0), Some(17), Some(12), Some(0), Some(28))
    );
}

#[test]
fn messages_under_changes_as_the_dashboard_sends_them() {
    let e = complete("changes_messages_dashboard_test.json");
    assert_eq!(e[0].account_id.as_ref().unwrap(), "0");
    assert_eq!(e[0].sender.as_ref().unwrap(), "12334");
    assert_eq!(e[0].recipient.as_ref().unwrap(), "23245");
    // The string timestamp (seconds) wins over the entry time.
    assert_eq!(e[0].time, secs(1527459824));
    assert!(
        matches!(&e[0].kind, EventKind::Message(m) if m.text.as_deref() == Some("random_text"))
    );
}

#[test]
fn messaging_events_under_changes_fields() {
    let e = complete("changes_messaging_fields.json");
    let kinds: Vec<String> = e
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["reaction", "postback", "read", "message", "handover", "unknown"]
    );
    assert!(e
        .iter()
        .all(|e| e.sender.as_ref().unwrap() == "6000000000000001"));
    assert_eq!(e[0].time, millis(1700000022001));
    let EventKind::Reaction(r) = &e[0].kind else {
        panic!()
    };
    assert_eq!(r.emoji.as_deref(), Some("\u{1F44D}"));
    // Only the `standby` field marks its event as standby.
    let standby: Vec<bool> = e.iter().map(|e| e.standby).collect();
    assert_eq!(standby, [false, false, false, true, false, false]);
    // A messaging-shaped value without an event key is kept whole, under its field.
    let EventKind::Unknown(u) = &e[5].kind else {
        panic!()
    };
    assert_eq!(u.field.as_deref(), Some("messages"));
    assert_eq!(u.value["timestamp"], 1700000022006_i64);
}

#[test]
fn batches_entry_arrays_and_lone_events() {
    let e = complete("batch_instagram_and_page.json");
    let seen: Vec<(Option<&str>, &str)> = e
        .iter()
        .map(|e| {
            (
                e.object.as_ref().map(Object::as_str),
                e.account_id.as_ref().unwrap().as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("instagram"), "17841400000000001"),
            (Some("instagram"), "17841400000000002"),
            (Some("page"), "1122334455")
        ]
    );

    let e = complete("entries_array_without_envelope.json");
    assert_eq!(e[0].object, None);
    assert_eq!(e[0].account_id.as_ref().unwrap(), "17841400000000001");
    assert_eq!(e[0].sender.as_ref().unwrap(), "6000000000000001");
    assert_eq!(e[0].time, millis(1700000020001));

    let e = complete("lone_messaging_event.json");
    assert!(e[0].account_id.is_none());
    assert_eq!(e[0].time, secs(1700000022));
    assert!(
        matches!(&e[0].kind, EventKind::Message(m) if m.attachments[0].kind == AttachmentKind::StoryMention)
    );
}

#[test]
fn unknown_fields_and_event_keys_are_kept_raw() {
    let e = complete("unknown_events.json");
    assert_eq!(e.len(), 2);
    // messaging first, then changes.
    let EventKind::Unknown(u) = &e[0].kind else {
        panic!("{:?}", e[0])
    };
    assert_eq!(u.field.as_deref(), Some("hologram"));
    assert_eq!(
        u.value,
        serde_json::json!({"hologram": {"mid": "m-holo", "depth": 3}})
    );
    assert_eq!(e[0].sender.as_ref().unwrap(), "6000000000000001");
    let EventKind::Unknown(u) = &e[1].kind else {
        panic!()
    };
    assert_eq!(u.field.as_deref(), Some("messaging_future_feature"));
    assert_eq!(
        u.value,
        serde_json::json!({"anything": [1, 2, {"x": null}]})
    );
}

#[test]
fn one_malformed_part_loses_nothing_else() {
    let n = load("partially_malformed.json");
    let mids: Vec<String> = n
        .events()
        .iter()
        .map(|e| match &e.kind {
            EventKind::Message(m) => m.mid.as_ref().unwrap().to_string(),
            EventKind::Mention(m) => m.media_id.as_ref().unwrap().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(mids, ["m-good-1", "m-good-2", "18000000000000017"]);
    let paths: Vec<String> = n
        .errors()
        .iter()
        .map(|e| match e.kind() {
            ErrorKind::Decode { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "entry[1].messaging[0].timestamp",
            "entry[2]",
            "entry[3].id",
            "entry[4].changes[0].value.text"
        ]
    );
    // Each error carries the raw part it refers to and says what was wrong.
    let ErrorKind::Decode { body, .. } = n.errors()[0].kind() else {
        panic!()
    };
    assert!(body.contains("next tuesday") && body.contains("m-bad"));
    assert!(n.errors()[0].to_string().contains("not a timestamp"));
    assert!(!n.is_complete());
}

#[test]
fn events_print_as_flat_json_with_string_ids_and_rfc3339_times() {
    let e = complete("optin_page.json");
    let printed = serde_json::to_value(&e[0]).unwrap();
    assert_eq!(
        printed,
        serde_json::json!({
            "object": "page",
            "account_id": "1122334455",
            "sender": "9988776655",
            "recipient": "1122334455",
            "time": "2023-11-14T22:13:27.001Z",
            "kind": "opt_in",
            "type": "notification_messages",
            "payload": "WEEKLY_DEALS",
            "notification_messages_token": "tok-abc",
            "ref": "footer"
        })
    );
}

#[test]
fn key_order_does_not_matter() {
    // `value` before `field`, `payload` before `type`: decoded once the deciding key is known.
    let body = br#"{"entry":[{"changes":[{"value":{"text":"hi","comment_id":"7"},"field":"comments"}],"time":1700000000,"id":"1"}],"object":"instagram"}"#;
    let n = webhook::parse(body).unwrap();
    assert!(n.is_complete());
    assert!(
        matches!(&n.events()[0].kind, EventKind::Comment(c) if c.id.as_ref().unwrap() == "7" && c.text.as_deref() == Some("hi"))
    );
    let body = br#"{"object":"instagram","entry":[{"id":"1","messaging":[{"message":{"attachments":[{"payload":{"reel_video_id":42,"url":"u"},"type":"ig_reel"}],"mid":"m"},"timestamp":1700000000000,"sender":{"id":"2"}}]}]}"#;
    let n = webhook::parse(body).unwrap();
    assert!(n.is_complete());
    let EventKind::Message(m) = &n.events()[0].kind else {
        panic!()
    };
    assert_eq!(m.attachments[0].kind, AttachmentKind::IgReel);
    assert_eq!(m.attachments[0].media_id.as_ref().unwrap(), "42");
    assert_eq!(m.attachments[0].url.as_deref(), Some("u"));
}
