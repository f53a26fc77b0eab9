//! Every published webhook payload under `<workspace>/../shared/fixtures/meta/` parses.
//!
//! The folder sits beside the repository and is absent in most checkouts: the tests then print
//! a message and pass without checking anything.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use instagram_graph::webhook::{self, AttachmentKind, EventKind, Object};
use instagram_graph::ErrorKind;

fn shared_dir() -> Option<PathBuf> {
    // Workspace root = two levels above this crate's manifest dir; the folder sits beside it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/meta");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: {} is absent", dir.display());
        None
    }
}

fn webhook_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("webhook_"))
        })
        .collect();
    files.sort();
    files
}

/// The kind tag an event serializes with (`message`, `comment`, ...).
fn kind_tag(kind: &EventKind) -> String {
    let event_json = serde_json::to_value(kind).unwrap();
    event_json["kind"].as_str().unwrap().to_owned()
}

#[test]
fn every_webhook_payload_parses_or_fails_cleanly() {
    let Some(dir) = shared_dir() else { return };
    let files = webhook_files(&dir);
    assert!(files.len() >= 20, "expected the published webhook payloads");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let parsed = webhook::parse(&body);
        if name.contains("invalid_json") {
            let err = parsed.unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{name}");
            assert!(err.to_string().contains("not valid JSON"), "{name}: {err}");
            continue;
        }
        let notification = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            notification.is_complete(),
            "{name}: {:?}",
            notification.errors()
        );
        let is_edge_without_events = name.contains("no_entries") || name.contains("no_messaging");
        assert_eq!(
            notification.events().is_empty(),
            is_edge_without_events,
            "{name}"
        );
        for event in notification.events() {
            // Every event prints as one JSON object whose ids are strings.
            let printed = serde_json::to_value(event).unwrap();
            for key in ["account_id", "sender", "recipient"] {
                if let Some(v) = printed.get(key) {
                    assert!(v.is_string(), "{name}: {key} = {v}");
                }
            }
            // Only the Dashboard's bare test payloads have no time.
            if !name.contains("field_value") {
                assert!(event.time.is_some(), "{name}");
            }
        }
    }
}

fn parse_shared(dir: &Path, name: &str) -> webhook::Notification {
    let body = std::fs::read(dir.join(name)).unwrap();
    let n = webhook::parse(&body).unwrap();
    assert!(n.is_complete(), "{name}: {:?}", n.errors());
    n
}

#[test]
fn published_payloads_normalize_to_the_expected_kinds() {
    let Some(dir) = shared_dir() else { return };
    let expectations = [
        ("webhook_comments_1.json", "comment"),
        ("webhook_comments_2.json", "comment"),
        ("webhook_deleted_message_1.json", "message"),
        ("webhook_edge_unknown_messaging_event_1.json", "unknown"),
        ("webhook_entries_is_unsupported_1.json", "message"),
        ("webhook_live_comments_1.json", "live_comment"),
        ("webhook_live_comments_field_value_2.json", "live_comment"),
        ("webhook_mentions_1.json", "mention"),
        (
            "webhook_messages_attachment_fallback_messenger_1.json",
            "message",
        ),
        (
            "webhook_messages_attachment_ig_reel_page_object_1.json",
            "message",
        ),
        ("webhook_messages_attachment_image_1.json", "message"),
        ("webhook_messages_attachment_like_heart_1.json", "message"),
        ("webhook_messages_echo_1.json", "message"),
        ("webhook_messages_quick_reply_messenger_1.json", "message"),
        ("webhook_messages_story_mention_1.json", "message"),
        ("webhook_messages_text_1.json", "message"),
        ("webhook_messaging_event_story_mention_2.json", "message"),
        ("webhook_optin_messenger_1.json", "opt_in"),
        ("webhook_postback_1.json", "postback"),
        ("webhook_reaction_messenger_1.json", "reaction"),
        ("webhook_referral_messenger_1.json", "referral"),
        ("webhook_seen_1.json", "read"),
        ("webhook_story_insights_1.json", "story_insights"),
    ];
    for (name, kind) in expectations {
        if !dir.join(name).exists() {
            println!("skipping {name}: absent");
            continue;
        }
        let n = parse_shared(&dir, name);
        assert_eq!(n.events().len(), 1, "{name}");
        assert_eq!(kind_tag(&n.events()[0].kind), kind, "{name}");
    }
}

#[test]
fn published_payloads_keep_their_details() {
    let Some(dir) = shared_dir() else { return };

    // Numeric ids (Messenger fallback attachment), payload given as a string, escaped slashes.
    let n = parse_shared(
        &dir,
        "webhook_messages_attachment_fallback_messenger_1.json",
    );
    let e = &n.events()[0];
    assert_eq!(e.object, Some(Object::Page));
    assert_eq!(e.account_id.as_ref().unwrap(), "12345654332");
    assert_eq!(e.sender.as_ref().unwrap(), "987654321432");
    let EventKind::Message(m) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(m.attachments[0].kind, AttachmentKind::Fallback);
    assert_eq!(
        m.attachments[0].url.as_deref(),
        Some("https://www.messenger.com/")
    );
    assert_eq!(
        m.attachments[0].payload,
        Some(serde_json::json!("BLOB_BLOB_BLOB"))
    );

    // A reel id given as a JSON number keeps all its digits.
    let n = parse_shared(
        &dir,
        "webhook_messages_attachment_ig_reel_page_object_1.json",
    );
    let EventKind::Message(m) = &n.events()[0].kind else {
        panic!()
    };
    assert_eq!(m.attachments[0].kind, AttachmentKind::IgReel);
    assert_eq!(
        m.attachments[0].media_id.as_ref().unwrap(),
        "123451234512345"
    );

    // The entry array without an envelope, and the bare Dashboard test change.
    let n = parse_shared(&dir, "webhook_entries_is_unsupported_1.json");
    assert_eq!(
        n.events()[0].account_id.as_ref().unwrap(),
        "17841449543715721"
    );
    let EventKind::Message(m) = &n.events()[0].kind else {
        panic!()
    };
    assert!(m.is_unsupported);
    let n = parse_shared(&dir, "webhook_live_comments_field_value_2.json");
    let EventKind::LiveComment(c) = &n.events()[0].kind else {
        panic!()
    };
    assert_eq!(c.id.as_ref().unwrap(), "17865799348089039");
    assert_eq!(
        c.media.as_ref().unwrap().media_product_type.as_deref(),
        Some("LIVE")
    );

    // Seconds (changes) and milliseconds (messaging).
    let n = parse_shared(&dir, "webhook_mentions_1.json");
    assert_eq!(n.events()[0].time.unwrap().timestamp(), 1519399310);
    let n = parse_shared(&dir, "webhook_seen_1.json");
    assert_eq!(
        n.events()[0].time.unwrap().timestamp_millis(),
        1668022333735
    );

    // Surrogate-pair emoji.
    let n = parse_shared(&dir, "webhook_reaction_messenger_1.json");
    let EventKind::Reaction(r) = &n.events()[0].kind else {
        panic!()
    };
    assert_eq!(r.emoji.as_deref(), Some("\u{1F622}"));
}
