//! Webhook delivery to a receiver that verifies signatures with `webhook-verify`: shapes,
//! subscription, retries, duplicates, reordering, batching and the deauthorize callback.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{receiver, setup, WAIT};
use instagram_graph::webhook::{self, AttachmentKind, EventKind, ReactionAction, ReplyTo};
use instagram_sim::{AccountSpec, DeliveryKind, DeliveryOutcome, Faults, MediaSpec, SimConfig};

const SECRET: &str = "hook-secret";

fn config(url: &str) -> SimConfig {
    SimConfig::for_tests()
        .with_app_secret(SECRET)
        .with_webhook_url(url)
}

fn events(body: &str) -> Vec<webhook::Event> {
    let notification = webhook::parse(body.as_bytes()).unwrap();
    assert!(notification.is_complete(), "{:?}", notification.errors());
    notification.into_parts().0
}

#[tokio::test]
async fn every_action_arrives_signed_and_parses() {
    let hook = receiver(SECRET).await;
    let t = setup(config(&hook.url)).await;
    let story = t.sim.add_media("shop", MediaSpec::story()).unwrap();
    let alice = t.sim.person("alice");
    let comment = alice.comment(&t.reel, "LINK").unwrap();
    alice.mention_in_comment("shop").unwrap();
    let hello = alice.dm("shop", "hello").unwrap();
    alice
        .story_reply("shop", Some(&story), "nice story")
        .unwrap();
    alice.mention_in_story("shop").unwrap();
    alice.tap_button("shop", "More", "MORE").unwrap();
    alice.quick_reply("shop", "Small", "S").unwrap();
    let igsid = alice.igsid("shop").unwrap();
    let answer = t.client.send_text(igsid.clone(), "hi!").await.unwrap().data;
    let answer = answer.message_id.unwrap();
    alice.react("shop", answer.as_str(), None).unwrap();
    alice.unreact("shop", answer.as_str()).unwrap();
    alice.read("shop", None).unwrap();
    alice.unsend("shop", &hello).unwrap();

    let deliveries = t.sim.wait_for_deliveries(12, WAIT).await.unwrap();
    assert_eq!(deliveries.len(), 12);
    assert!(deliveries
        .iter()
        .all(|d| d.outcome == DeliveryOutcome::Delivered));
    assert_eq!(hook.valid().len(), 12);
    assert_eq!(hook.invalid(), 0);

    let all: Vec<webhook::Event> = hook.valid().iter().flat_map(|b| events(b)).collect();
    assert!(all
        .iter()
        .all(|e| e.account_id.as_ref().unwrap().as_str() == t.shop.ig_user_id));
    match &all[0].kind {
        EventKind::Comment(c) => {
            assert_eq!(c.id.as_ref().unwrap().as_str(), comment);
            assert_eq!(c.text.as_deref(), Some("LINK"));
            assert_eq!(
                c.from.as_ref().unwrap().id.as_ref().unwrap().as_str(),
                igsid
            );
            assert_eq!(
                c.media.as_ref().unwrap().id.as_ref().unwrap().as_str(),
                t.reel
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&all[1].kind, EventKind::Mention(m) if m.comment_id.is_some()));
    match &all[2].kind {
        EventKind::Message(m) => {
            assert_eq!(m.text.as_deref(), Some("hello"));
            assert_eq!(all[2].sender.as_ref().unwrap().as_str(), igsid);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&all[3].kind, EventKind::Message(m) if matches!(&m.reply_to, Some(ReplyTo::Story { id: Some(id), .. }) if id.as_str() == story))
    );
    assert!(
        matches!(&all[4].kind, EventKind::Message(m) if m.attachments[0].kind == AttachmentKind::StoryMention)
    );
    assert!(matches!(&all[5].kind, EventKind::Postback(p) if p.payload.as_deref() == Some("MORE")));
    assert!(
        matches!(&all[6].kind, EventKind::Message(m) if m.quick_reply_payload.as_deref() == Some("S"))
    );
    assert!(
        matches!(&all[7].kind, EventKind::Message(m) if m.is_echo && m.text.as_deref() == Some("hi!"))
    );
    assert!(
        matches!(&all[8].kind, EventKind::Reaction(r) if r.action == ReactionAction::React && r.reaction.as_deref() == Some("love"))
    );
    assert!(matches!(&all[9].kind, EventKind::Reaction(r) if r.action == ReactionAction::Unreact));
    assert!(
        matches!(&all[10].kind, EventKind::Read(r) if r.mid.as_ref().unwrap().as_str() == answer.as_str())
    );
    assert!(matches!(&all[11].kind, EventKind::Message(m) if m.is_deleted));
    assert!(all.iter().all(|e| e.time.is_some()));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn only_subscribed_accounts_receive_webhooks() {
    let hook = receiver(SECRET).await;
    let t = setup(config(&hook.url)).await;
    let quiet = t.sim.create_account(AccountSpec::new("quiet")).unwrap();
    t.sim.person("alice").dm("quiet", "anyone?").unwrap();
    t.sim.person("alice").dm("shop", "hello").unwrap();
    let deliveries = t.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    t.sim.wait_for_webhooks_idle(WAIT).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].body.contains(&t.shop.ig_user_id));

    let client = common::client_for(&t.sim, &quiet.access_token);
    client.subscribe_webhooks(&["messages"]).await.unwrap();
    t.sim.person("alice").dm("quiet", "now?").unwrap();
    let deliveries = t.sim.wait_for_deliveries(2, WAIT).await.unwrap();
    assert!(deliveries[1].body.contains(&quiet.ig_user_id));

    // Revoking the app ends the subscription.
    t.sim.revoke_app("quiet").unwrap();
    t.sim.person("alice").dm("quiet", "still there?").unwrap();
    t.sim.wait_for_webhooks_idle(WAIT).await.unwrap();
    assert_eq!(t.sim.deliveries().len(), 2);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn failed_attempts_are_retried_and_recorded() {
    let hook = receiver(SECRET).await;
    let t = setup(config(&hook.url)).await;
    hook.answer_next(&[500, 503]);
    t.sim.person("alice").dm("shop", "hello").unwrap();
    let deliveries = t.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    let statuses: Vec<Option<u16>> = deliveries[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(503), Some(200)]);
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(hook.valid().len(), 1);

    // Four failures (first try + 3 retries): given up.
    hook.answer_next(&[500, 500, 500, 500]);
    t.sim.person("alice").dm("shop", "again").unwrap();
    let deliveries = t.sim.wait_for_deliveries(2, WAIT).await.unwrap();
    assert_eq!(deliveries[1].attempts.len(), 4);
    assert_eq!(deliveries[1].outcome, DeliveryOutcome::Failed);
    assert_eq!(hook.valid().len(), 1);

    // Nobody listening: connection errors are recorded too.
    t.sim
        .set_webhook_url(Some("http://127.0.0.1:9/closed".into()));
    t.sim.person("alice").dm("shop", "anyone?").unwrap();
    let deliveries = t.sim.wait_for_deliveries(3, WAIT).await.unwrap();
    assert!(deliveries[2]
        .attempts
        .iter()
        .all(|a| a.status.is_none() && a.error.is_some()));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_fails_verification() {
    let hook = receiver("another-secret").await;
    let t = setup(config(&hook.url)).await;
    t.sim.person("alice").dm("shop", "hello").unwrap();
    let deliveries = t.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Failed);
    assert_eq!(hook.invalid(), 4, "each attempt refused with 401");
    assert!(webhook_verify::meta::verify(
        SECRET.as_bytes(),
        deliveries[0].body.as_bytes(),
        &deliveries[0].signature
    )
    .is_ok());
    t.sim.shutdown().await;
}

#[tokio::test]
async fn duplicates_are_injected() {
    let hook = receiver(SECRET).await;
    let t = setup(config(&hook.url).with_faults(Faults::none().duplicate_rate(1.0))).await;
    t.sim.person("alice").dm("shop", "one").unwrap();
    t.sim.person("alice").dm("shop", "two").unwrap();
    let deliveries = t.sim.wait_for_deliveries(4, WAIT).await.unwrap();
    assert_eq!(deliveries.len(), 4);
    assert_eq!(deliveries[0].body, deliveries[1].body);
    assert!(!deliveries[0].duplicate && deliveries[1].duplicate);
    assert_eq!(hook.valid().len(), 4);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn out_of_order_and_batched_deliveries() {
    let hook = receiver(SECRET).await;
    let mut faults = Faults::none().reorder(6);
    faults.reorder_flush_ms = 10_000;
    let t = setup(config(&hook.url).with_faults(faults).with_seed(11)).await;
    let mut mids = Vec::new();
    for i in 0..6 {
        mids.push(t.sim.person("alice").dm("shop", &format!("m{i}")).unwrap());
    }
    t.sim.wait_for_deliveries(6, WAIT).await.unwrap();
    let order: Vec<String> = hook
        .valid()
        .iter()
        .flat_map(|b| events(b))
        .map(|e| match e.kind {
            EventKind::Message(m) => m.mid.unwrap().into_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    let mut expected = mids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every message arrives once");
    assert_ne!(order, mids, "but shuffled");

    // Batching: several entries in one body.
    let hook = receiver(SECRET).await;
    let mut delivery = instagram_sim::DeliveryConfig::default();
    delivery.max_batch = 10;
    delivery.retry_delays = vec![Duration::from_millis(10)];
    let t = setup(
        config(&hook.url)
            .with_delivery(delivery)
            .with_faults(Faults::none().reorder(4)),
    )
    .await;
    for i in 0..4 {
        t.sim.person("bob").dm("shop", &format!("b{i}")).unwrap();
    }
    t.sim.wait_for_webhooks_idle(WAIT).await.unwrap();
    let bodies = hook.valid();
    assert_eq!(bodies.len(), 1, "one body");
    assert_eq!(events(&bodies[0]).len(), 4);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn deauthorize_callback_is_a_signed_request() {
    let hook = receiver(SECRET).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/deauth",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/deauth", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = setup(config(&hook.url).with_deauthorize_url(url)).await;
    t.sim.revoke_app("shop").unwrap();
    let form = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(pairs[0].0, "signed_request");
    let decoded = webhook_verify::signed_request::decode(&pairs[0].1, SECRET.as_bytes()).unwrap();
    assert_eq!(
        decoded.user_id.as_deref(),
        Some(t.shop.app_scoped_id.as_str())
    );
    let deliveries = t.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(deliveries[0].kind, DeliveryKind::Deauthorize);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_delivery_does_not_hold_back_the_next() {
    let hook = receiver(SECRET).await;
    let mut delivery = instagram_sim::DeliveryConfig::default();
    delivery.retry_delays = vec![Duration::from_secs(600)];
    let t = setup(config(&hook.url).with_delivery(delivery)).await;
    hook.answer_next(&[500]);
    t.sim.person("alice").dm("shop", "first").unwrap();
    t.sim.person("alice").dm("shop", "second").unwrap();
    let deliveries = t.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    assert_eq!(
        deliveries[0].outcome,
        DeliveryOutcome::Pending,
        "waiting 10 minutes to retry"
    );
    assert_eq!(deliveries[0].attempts[0].status, Some(500));
    assert_eq!(deliveries[1].outcome, DeliveryOutcome::Delivered);
    assert!(hook.valid()[0].contains("second"));
    // Shutdown stops the pending retry at once.
    tokio::time::timeout(WAIT, t.sim.shutdown()).await.unwrap();
}
