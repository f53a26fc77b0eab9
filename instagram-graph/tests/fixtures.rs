//! The published Graph API payloads under `<workspace>/../shared/fixtures/meta` parse into the
//! models. Skipped (with a message) when the folder is absent.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use instagram_graph::error::ErrorKind;
use instagram_graph::model::{
    Account, AccountType, Comment, Conversation, LongLivedToken, Media, MediaType, Message,
    SendResponse, ShortLivedToken,
};
use instagram_graph::{Error, Page};

fn fixture(name: &str) -> Option<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/meta")
        .join(name);
    match std::fs::read_to_string(&dir) {
        Ok(text) => Some(text),
        Err(_) => {
            eprintln!("skipping: fixture {} is absent", dir.display());
            None
        }
    }
}

#[test]
fn account_and_media() {
    let Some(me) = fixture("graph_me_1.json") else {
        return;
    };
    let me: Account = serde_json::from_str(&me).unwrap();
    assert_eq!(me.account_type, Some(AccountType::Business));
    assert_eq!(me.media_count, Some(10));
    let user: Account = serde_json::from_str(&fixture("graph_ig_user_1.json").unwrap()).unwrap();
    assert_eq!(user.followers_count, Some(64363));

    let media: Media = serde_json::from_str(&fixture("graph_media_1.json").unwrap()).unwrap();
    assert_eq!(media.media_type, Some(MediaType::Image));
    assert_eq!(
        media.timestamp.unwrap().to_rfc3339(),
        "2018-02-22T10:00:29+00:00"
    );
    assert_eq!(media.owner.unwrap().id.as_deref(), Some("987654321"));

    let carousel: Media =
        serde_json::from_str(&fixture("graph_media_carousel_1.json").unwrap()).unwrap();
    let children = carousel.children.unwrap().data;
    assert_eq!(children.len(), 3);
    assert_eq!(children[2].media_type, Some(MediaType::Video));

    let list: Page<Media> =
        serde_json::from_str(&fixture("graph_media_list_1.json").unwrap()).unwrap();
    assert_eq!(list.data.len(), 2);
    assert_eq!(list.next_cursor().as_deref(), Some("after"));
    let children: Page<Media> =
        serde_json::from_str(&fixture("graph_media_children_1.json").unwrap()).unwrap();
    assert!(!children.has_next());
    let stories: Page<Media> =
        serde_json::from_str(&fixture("graph_stories_1.json").unwrap()).unwrap();
    assert_eq!(stories.data[1].media_type, Some(MediaType::Video));
    assert!(!stories.has_next());
}

#[test]
fn comments() {
    let Some(one) = fixture("graph_comment_1.json") else {
        return;
    };
    let one: Comment = serde_json::from_str(&one).unwrap();
    assert_eq!(one.id, "17892250648466172");
    assert_eq!(one.username.as_deref(), Some("ikroskun"));
    let two: Comment = serde_json::from_str(&fixture("graph_comment_2.json").unwrap()).unwrap();
    assert_eq!(two.hidden, Some(false));
    assert_eq!(two.replies.unwrap().data[0].text.as_deref(), Some("yeah"));
    let list: Page<Comment> =
        serde_json::from_str(&fixture("graph_comments_list_1.json").unwrap()).unwrap();
    assert_eq!(list.data.len(), 2);
    assert!(list.has_next());
    let replies: Page<Comment> =
        serde_json::from_str(&fixture("graph_comment_replies_1.json").unwrap()).unwrap();
    assert_eq!(replies.data[0].id, "17847314687296283");
}

#[test]
fn conversations_and_messages() {
    let Some(conv) = fixture("graph_conversation_messages_1.json") else {
        return;
    };
    // The documentation sample carries placeholders instead of times: they read as None.
    let conv: Conversation = serde_json::from_str(&conv).unwrap();
    let messages = conv.messages.unwrap().data;
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].id, "<MESSAGE_1_ID>");
    assert_eq!(messages[0].created_time, None);

    let message: Message = serde_json::from_str(&fixture("graph_message_1.json").unwrap()).unwrap();
    assert_eq!(message.message.as_deref(), Some("Hi Kitty!"));
    assert_eq!(message.from.unwrap().id.as_deref(), Some("<IGSID>"));
    assert_eq!(
        message.to.unwrap().data[0].username.as_deref(),
        Some("<IG_ID_USERNAME>")
    );
    assert_eq!(
        message.created_time.unwrap().to_rfc3339(),
        "2022-07-12T19:11:07+00:00"
    );

    let sent: SendResponse =
        serde_json::from_str(&fixture("graph_send_message_response_2.json").unwrap()).unwrap();
    assert_eq!(sent.message_id.unwrap(), "aWdfZ...");
}

#[test]
fn tokens() {
    let Some(short) = fixture("oauth_token_response_1.json") else {
        return;
    };
    let short: ShortLivedToken = serde_json::from_str(&short).unwrap();
    assert_eq!(short.access_token.expose_secret(), "token");
    assert_eq!(short.user_id.as_deref(), Some("user_id"));
    let long: LongLivedToken =
        serde_json::from_str(&fixture("long_lived_token_1.json").unwrap()).unwrap();
    assert_eq!(long.expires_in, Some(5_184_000));
    assert_eq!(long.token_type.as_deref(), Some("bearer"));
}

#[test]
fn error_bodies() {
    let Some(e100) = fixture("graph_error_100_1.json") else {
        return;
    };
    let err = Error::from_response(400, &e100, None, None);
    assert_eq!(err.kind(), &ErrorKind::InvalidParameter);
    assert_eq!(
        err.graph().unwrap().fbtrace_id.as_deref(),
        Some("AQt_hJ68vFybS4TnupatNtX")
    );
    let err = Error::from_response(400, &fixture("graph_error_100_2.json").unwrap(), None, None);
    assert_eq!(err.code(), Some(100));
    let err = Error::from_response(400, &fixture("graph_error_190_1.json").unwrap(), None, None);
    assert!(matches!(err.kind(), ErrorKind::TokenInvalid { .. }));
    assert_eq!(err.subcode(), Some(460));
    assert!(!err.is_retryable());
    let err = Error::from_response(
        400,
        &fixture("graph_error_rate_limit_1.json").unwrap(),
        None,
        None,
    );
    assert_eq!(err.kind(), &ErrorKind::RateLimited { retry_after: None });
    assert!(err.is_retryable());
}

#[test]
fn publishing_insights_mentions_and_debug_token() {
    use instagram_graph::model::{
        ContainerStatus, ContainerStatusCode, Created, DebugToken, Insight, MentionedComment,
        MentionedMedia, PublishingLimit,
    };
    let Some(created) = fixture("graph_container_create_1.json") else {
        return;
    };
    let created: Created = serde_json::from_str(&created).unwrap();
    assert_eq!(created.id, "17889455560051444");
    let reply: Created =
        serde_json::from_str(&fixture("graph_mentions_reply_response_1.json").unwrap()).unwrap();
    assert_eq!(reply.id, "17911496353086895");

    let s1: ContainerStatus =
        serde_json::from_str(&fixture("graph_container_status_1.json").unwrap()).unwrap();
    assert_eq!(s1.status_code, Some(ContainerStatusCode::Finished));
    let s2: ContainerStatus =
        serde_json::from_str(&fixture("graph_container_status_2.json").unwrap()).unwrap();
    assert_eq!(s2.copyright_check_status.unwrap().matches_found, Some(true));
    let s3: ContainerStatus =
        serde_json::from_str(&fixture("graph_container_status_3.json").unwrap()).unwrap();
    assert_eq!(s3.status_code, Some(ContainerStatusCode::InProgress));

    let limit: Page<PublishingLimit> =
        serde_json::from_str(&fixture("graph_content_publishing_limit_1.json").unwrap()).unwrap();
    assert_eq!(limit.data[0].config.as_ref().unwrap().quota_total, Some(25));

    let media_insights: Page<Insight> =
        serde_json::from_str(&fixture("graph_media_insights_1.json").unwrap()).unwrap();
    assert_eq!(media_insights.data[1].name, "reach");
    assert_eq!(media_insights.data[1].values[0].as_i64(), Some(5));
    let user_insights: Page<Insight> =
        serde_json::from_str(&fixture("graph_user_insights_1.json").unwrap()).unwrap();
    assert_eq!(
        user_insights.data[0].values[1]
            .end_time
            .unwrap()
            .to_rfc3339(),
        "2017-05-05T07:00:00+00:00"
    );

    for name in [
        "graph_mentioned_comment_1.json",
        "graph_mentioned_comment_2.json",
    ] {
        let m: MentionedComment = serde_json::from_str(&fixture(name).unwrap()).unwrap();
        assert!(m.mentioned_comment.unwrap().text.unwrap().starts_with('@'));
    }
    for name in [
        "graph_mentioned_media_1.json",
        "graph_mentioned_media_2.json",
    ] {
        let m: MentionedMedia = serde_json::from_str(&fixture(name).unwrap()).unwrap();
        assert!(m.mentioned_media.unwrap().media_type.is_some());
    }

    let debug: DebugToken =
        serde_json::from_str(&fixture("graph_debug_token_1.json").unwrap()).unwrap();
    assert_eq!(debug.is_valid, Some(true));
    assert_eq!(debug.token_type.as_deref(), Some("USER"));
    assert_eq!(debug.expires_at.unwrap().timestamp(), 1_577_347_200);
    assert_eq!(debug.scopes.len(), 5);
}

#[test]
fn every_graph_fixture_is_covered() {
    // Guards against new graph_*.json files landing without a test that parses them.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/meta");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: fixture folder {} is absent", dir.display());
        return;
    };
    let source = include_str!("fixtures.rs");
    for entry in entries {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("graph_") && name.ends_with(".json") {
            assert!(source.contains(&name), "{name} is not parsed by any test");
        }
    }
}
