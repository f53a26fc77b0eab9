//! The platform rules the simulator enforces, seen through the real client.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{client_for, setup};
use instagram_graph::error::TokenInvalidReason;
use instagram_graph::model::SendRequest;
use instagram_graph::ErrorKind;
use instagram_sim::{RateLimits, SimConfig};

const HOUR: Duration = Duration::from_secs(3600);

fn token_reason(error: &instagram_graph::Error) -> TokenInvalidReason {
    match error.kind() {
        ErrorKind::TokenInvalid { reason } => reason.clone(),
        other => panic!("expected a token error, got {other:?}"),
    }
}

#[tokio::test]
async fn revoked_expired_and_invalidated_tokens_answer_190() {
    let t = setup(SimConfig::for_tests()).await;
    assert!(t.client.me(&[]).await.is_ok());

    t.sim.revoke_app("shop").unwrap();
    let err = t.client.me(&[]).await.unwrap_err();
    assert_eq!((err.code(), err.subcode()), (Some(190), Some(458)));
    assert_eq!(token_reason(&err), TokenInvalidReason::AppNotInstalled);
    assert!(!err.is_retryable());

    let t = setup(SimConfig::for_tests()).await;
    t.sim.advance_clock(Duration::from_secs(59 * 24 * 3600));
    assert!(t.client.me(&[]).await.is_ok(), "valid for 60 days");
    t.sim.advance_clock(Duration::from_secs(2 * 24 * 3600));
    let err = t.client.me(&[]).await.unwrap_err();
    assert_eq!(token_reason(&err), TokenInvalidReason::Expired);

    let t = setup(SimConfig::for_tests()).await;
    t.sim.expire_tokens("shop").unwrap();
    assert_eq!(
        token_reason(&t.client.me(&[]).await.unwrap_err()),
        TokenInvalidReason::Expired
    );

    let t = setup(SimConfig::for_tests()).await;
    t.sim.change_password("shop").unwrap();
    let err = t.client.send_text("1", "x").await.unwrap_err();
    assert_eq!(token_reason(&err), TokenInvalidReason::PasswordChanged);

    let unknown = client_for(&t.sim, "IGAAnot-a-token");
    let err = unknown.me(&[]).await.unwrap_err();
    assert_eq!(err.code(), Some(190));
    let body = &err.graph().unwrap();
    assert!(body.fbtrace_id.is_some());
    assert_eq!(body.error_type.as_deref(), Some("OAuthException"));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn missing_scopes_are_permission_errors() {
    let t = setup(SimConfig::for_tests()).await;
    let token = t
        .sim
        .issue_token("shop", &["instagram_business_basic"])
        .unwrap();
    let limited = client_for(&t.sim, &token);
    assert!(limited.me(&[]).await.is_ok());
    let comment = t.sim.person("alice").comment(&t.reel, "hi").unwrap();
    for err in [
        limited.comments(&t.reel).send().await.unwrap_err(),
        limited
            .private_reply(comment.clone(), "x")
            .await
            .unwrap_err(),
        limited.conversations().send().await.unwrap_err(),
        limited.send_text("1", "x").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied, "{err}");
        assert_eq!(err.code(), Some(10));
    }
    assert!(t.sim.sent_messages().is_empty());
    t.sim.shutdown().await;
}

#[tokio::test]
async fn the_24_hour_window_and_human_agent() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    // Never wrote: outside the window.
    alice.comment(&t.reel, "hi").unwrap();
    let to = alice.igsid("shop").unwrap();
    let err = t.client.send_text(to.clone(), "hello").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::OutsideMessagingWindow);
    assert_eq!((err.code(), err.subcode()), (Some(10), Some(2534022)));

    alice.dm("shop", "hello?").unwrap();
    t.sim.advance_clock(23 * HOUR);
    assert!(t.client.send_text(to.clone(), "within 24h").await.is_ok());
    t.sim.advance_clock(2 * HOUR);
    let err = t.client.send_text(to.clone(), "late").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::OutsideMessagingWindow);
    let agent = SendRequest::text(to.clone(), "an agent, day 2")
        .unwrap()
        .human_agent()
        .unwrap();
    assert!(t.client.send(&agent).await.is_ok());
    t.sim.advance_clock(6 * 24 * HOUR);
    let err = t.client.send(&agent).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::OutsideMessagingWindow,
        "HUMAN_AGENT ends at 7 days"
    );

    // A postback reopens the window.
    alice.tap_button("shop", "More", "MORE").unwrap();
    assert!(t.client.send_text(to, "thanks for tapping").await.is_ok());
    assert_eq!(t.sim.sent_messages().len(), 3);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn one_private_reply_per_comment_within_7_days() {
    let t = setup(SimConfig::for_tests()).await;
    let first = t.sim.person("alice").comment(&t.reel, "LINK").unwrap();
    assert!(t.client.private_reply(first.clone(), "link").await.is_ok());
    let err = t
        .client
        .private_reply(first.clone(), "again")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidPrivateReply);
    assert_eq!((err.code(), err.subcode()), (Some(100), Some(2534025)));

    let old = t.sim.person("bob").comment(&t.reel, "LINK").unwrap();
    t.sim.advance_clock(7 * 24 * HOUR + Duration::from_secs(1));
    let err = t.client.private_reply(old, "too late").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidPrivateReply);
    assert_eq!(t.sim.private_replies().len(), 1);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn text_limit_is_1000_bytes() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    alice.dm("shop", "hi").unwrap();
    let to = alice.igsid("shop").unwrap();
    assert!(t
        .client
        .send_text(to.clone(), "a".repeat(1000))
        .await
        .is_ok());
    // The client refuses longer text before sending; the simulator refuses it on the wire too.
    let before = t.sim.requests().len();
    assert!(t
        .client
        .send_text(to.clone(), "é".repeat(501))
        .await
        .is_err());
    assert_eq!(t.sim.requests().len(), before, "refused locally");
    let raw = reqwest::Client::new()
        .post(format!("{}/v25.0/me/messages", t.sim.base_url()))
        .bearer_auth(&t.shop.access_token)
        .json(&serde_json::json!({"recipient": {"id": to}, "message": {"text": "é".repeat(501)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert!(body["error"]["message"].as_str().unwrap().contains("1000"));
    assert_eq!(t.sim.sent_messages().len(), 1);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn send_rate_limit_with_usage_headers() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    alice.dm("shop", "hi").unwrap();
    let to = alice.igsid("shop").unwrap();
    // The clock is frozen: all calls fall in the same second.
    let mut last_usage = None;
    for i in 0..100 {
        let sent = t
            .client
            .send_text(to.clone(), format!("m{i}"))
            .await
            .unwrap();
        last_usage = Some(sent.usage);
    }
    let usage = last_usage.unwrap();
    assert_eq!(usage.max_percent(), Some(100));
    assert_eq!(usage.instagram().next().unwrap().0, t.shop.ig_user_id);
    let err = t
        .client
        .send_text(to.clone(), "one too many")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert_eq!((err.code(), err.subcode()), (Some(613), Some(2534040)));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.is_retryable());
    t.sim.advance_clock(Duration::from_secs(1));
    let after = t.client.send_text(to, "next second").await.unwrap();
    assert!(after.usage.max_percent().unwrap() < 100);
    assert_eq!(t.sim.sent_messages().len(), 101);
    assert_eq!(t.sim.sent_count(), 101);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn private_reply_and_conversation_rate_limits() {
    let mut limits = RateLimits::default();
    limits.private_replies_per_hour = 3;
    let t = setup(SimConfig::for_tests().with_limits(limits)).await;
    let mut comments = Vec::new();
    for i in 0..4 {
        comments.push(
            t.sim
                .person(&format!("p{i}"))
                .comment(&t.reel, "LINK")
                .unwrap(),
        );
    }
    for comment in &comments[..3] {
        t.client.private_reply(comment.clone(), "hi").await.unwrap();
    }
    let err = t
        .client
        .private_reply(comments[3].clone(), "hi")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }));
    // The wait is reported in the usage header in minutes (about an hour here).
    assert!(
        err.retry_after().unwrap() >= Duration::from_secs(59 * 60),
        "{:?}",
        err.retry_after()
    );
    assert!(!t.sim.comment(&comments[3]).unwrap().private_replied);
    t.sim.advance_clock(HOUR);
    assert!(t
        .client
        .private_reply(comments[3].clone(), "hi")
        .await
        .is_ok());

    // Conversations API: 2 calls per second.
    assert!(t.client.conversations().send().await.is_ok());
    assert!(t.client.conversations().send().await.is_ok());
    let err = t.client.conversations().send().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }));
    assert_eq!(err.code(), Some(4));
    t.sim.advance_clock(Duration::from_secs(1));
    assert!(t.client.conversations().send().await.is_ok());
    t.sim.shutdown().await;
}

#[tokio::test]
async fn injected_5xx_and_dropped_connections() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    alice.dm("shop", "hi").unwrap();
    let to = alice.igsid("shop").unwrap();

    t.sim
        .set_faults(instagram_sim::Faults::none().error_rate(1.0));
    let err = t.client.send_text(to.clone(), "x").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transient);
    assert_eq!(err.status(), Some(500));
    assert!(
        t.sim.sent_messages().is_empty(),
        "a 5xx fault happens before anything is done"
    );

    // A dropped connection: the message was accepted, the caller cannot tell.
    t.sim
        .set_faults(instagram_sim::Faults::none().drop_rate(1.0));
    let err = t
        .client
        .send_text(to.clone(), "ambiguous")
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport { .. }), "{err:?}");
    assert_eq!(t.sim.sent_messages().len(), 1);
    assert_eq!(t.sim.requests().last().unwrap().status, 0);

    t.sim
        .set_faults(instagram_sim::Faults::none().latency(Duration::from_millis(30)));
    let started = std::time::Instant::now();
    t.client.send_text(to, "slow").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn private_replies_take_no_messaging_type() {
    let t = setup(SimConfig::for_tests()).await;
    let comment = t.sim.person("alice").comment(&t.reel, "LINK").unwrap();
    let raw = reqwest::Client::new()
        .post(format!("{}/v25.0/me/messages", t.sim.base_url()))
        .bearer_auth(&t.shop.access_token)
        .json(&serde_json::json!({
            "recipient": {"comment_id": comment},
            "messaging_type": "RESPONSE",
            "message": {"text": "hi"}
        }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["error_subcode"], 1_893_060);
    assert!(t.sim.private_replies().is_empty());
    assert!(
        t.client.private_reply(comment, "hi").await.is_ok(),
        "the one reply is still available"
    );
    t.sim.shutdown().await;
}

#[tokio::test]
async fn appsecret_proof_is_checked_when_sent() {
    use instagram_graph::client::ProofMode;
    let t = setup(SimConfig::for_tests()).await;
    for mode in [ProofMode::Legacy, ProofMode::Timestamped] {
        let signed = instagram_graph::Client::builder(t.shop.access_token.clone())
            .base_url(t.sim.base_url())
            .app_secret(t.shop.app_secret.clone(), mode)
            .build()
            .unwrap();
        assert!(signed.me(&[]).await.is_ok(), "{mode:?}");
    }
    let wrong = instagram_graph::Client::builder(t.shop.access_token.clone())
        .base_url(t.sim.base_url())
        .app_secret("not-the-secret", ProofMode::Legacy)
        .build()
        .unwrap();
    let err = wrong.me(&[]).await.unwrap_err();
    assert_eq!(err.code(), Some(100));
    assert!(err.to_string().contains("appsecret_proof"));
    t.sim.shutdown().await;
}
