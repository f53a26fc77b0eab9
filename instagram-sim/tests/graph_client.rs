//! The real `instagram_graph::Client` against the simulator, one test per endpoint group.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client_for, setup};
use futures_util::StreamExt;
use instagram_graph::model::{
    AttachmentType, Button, ButtonTemplate, GenericElement, GenericTemplate, IceBreaker,
    IceBreakers, PersistentMenu, QuickReply, Reaction, SendRequest, SenderAction,
};
use instagram_graph::oauth::{OAuthClient, OAuthConfig, Scope};
use instagram_graph::ErrorKind;
use instagram_sim::{AccountSpec, MediaSpec, PersonSpec, SentKind, SimConfig};

#[tokio::test]
async fn account_and_media() {
    let t = setup(SimConfig::for_tests()).await;
    let carousel = t
        .sim
        .add_media("shop", MediaSpec::carousel("three", 3))
        .unwrap();

    let me = t.client.me(&[]).await.unwrap();
    assert_eq!(me.data.user_id.unwrap().as_str(), t.shop.ig_user_id);
    assert_eq!(me.data.id.as_deref(), Some(t.shop.app_scoped_id.as_str()));
    assert_eq!(me.data.username.as_deref(), Some("shop"));
    assert_eq!(me.data.media_count, Some(2));
    assert!(me.usage.app.is_some(), "usage headers are sent");
    let only = t.client.me(&["user_id"]).await.unwrap();
    assert!(only.data.username.is_none());

    let list = t.client.media_list("me").send().await.unwrap();
    let ids: Vec<&str> = list.data.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![carousel.as_str(), t.reel.as_str()],
        "newest first"
    );
    let reel = t.client.media(&t.reel, &[]).await.unwrap().data;
    assert_eq!(reel.caption.as_deref(), Some("Comment LINK"));
    assert_eq!(reel.media_type.unwrap().as_str(), "VIDEO");
    assert_eq!(reel.is_comment_enabled, Some(true));

    // Paging: one per page, following `after` to the end.
    let pages: Vec<_> = t.client.media_list("me").limit(1).pages().collect().await;
    assert_eq!(pages.len(), 2);
    assert!(pages
        .iter()
        .all(|p| p.as_ref().unwrap().data.data.len() == 1));

    let children = t.client.media_children(&carousel).send().await.unwrap();
    assert_eq!(children.data.data.len(), 3);
    assert_eq!(
        children.data.data[0].media_type.as_ref().unwrap().as_str(),
        "IMAGE"
    );

    let done = t.client.set_comments_enabled(&t.reel, false).await.unwrap();
    assert!(done.data.is_success());
    let reel = t
        .client
        .media(&t.reel, &["is_comment_enabled"])
        .await
        .unwrap()
        .data;
    assert_eq!(reel.is_comment_enabled, Some(false));
    assert!(t.sim.person("alice").comment(&t.reel, "hi").is_err());

    // Someone else's account is not visible.
    let other = t.sim.create_account(AccountSpec::new("other")).unwrap();
    let err = t.client.account(&other.ig_user_id, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(100));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn comments_replies_hide_delete() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    let first = alice.comment(&t.reel, "LINK").unwrap();
    t.sim.advance_clock(std::time::Duration::from_secs(1));
    let second = t.sim.person("bob").comment(&t.reel, "nice").unwrap();
    let reply = t
        .sim
        .person("bob")
        .reply_to_comment(&t.reel, &first, "me too")
        .unwrap();

    let list = t.client.comments(&t.reel).send().await.unwrap().data.data;
    let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![second.as_str(), first.as_str()],
        "top level, newest first"
    );
    assert_eq!(list[1].text.as_deref(), Some("LINK"));
    assert_eq!(list[1].username.as_deref(), Some("alice"));
    let from = list[1].from.as_ref().unwrap();
    assert_eq!(from.id, alice.igsid("shop"));
    assert!(t.client.comments(&t.reel).limit(51).send().await.is_err());

    let one = t.client.comment(&first, &[]).await.unwrap().data;
    assert_eq!(one.hidden, Some(false));
    let replies = t.client.replies(&first).send().await.unwrap().data.data;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].id.as_str(), reply);
    assert_eq!(replies[0].parent_id.as_ref().unwrap().as_str(), first);

    let created = t
        .client
        .reply_to_comment(&first, "Sent you a DM")
        .await
        .unwrap()
        .data;
    let public = t.sim.public_replies();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].id, created.id);
    assert_eq!(public[0].parent_id, first);
    assert_eq!(public[0].text, "Sent you a DM");
    assert_eq!(
        t.client
            .replies(&first)
            .send()
            .await
            .unwrap()
            .data
            .data
            .len(),
        2
    );

    assert!(t
        .client
        .set_comment_hidden(&second, true)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(t.sim.comment(&second).unwrap().hidden);
    assert_eq!(
        t.client
            .comment(&second, &["hidden"])
            .await
            .unwrap()
            .data
            .hidden,
        Some(true)
    );
    assert!(t
        .client
        .set_comment_hidden(&second, false)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(!t.sim.comment(&second).unwrap().hidden);

    assert!(t
        .client
        .delete_comment(&second)
        .await
        .unwrap()
        .data
        .is_success());
    assert!(t.sim.comment(&second).unwrap().deleted);
    let err = t.client.comment(&second, &[]).await.unwrap_err();
    assert_eq!((err.code(), err.subcode()), (Some(100), Some(33)));
    assert_eq!(
        t.client
            .comments(&t.reel)
            .send()
            .await
            .unwrap()
            .data
            .data
            .len(),
        1
    );
    t.sim.shutdown().await;
}

#[tokio::test]
async fn every_message_kind_and_private_reply() {
    let t = setup(SimConfig::for_tests()).await;
    let alice = t.sim.person("alice");
    let hello = alice.dm("shop", "hello").unwrap();
    let to = alice.igsid("shop").unwrap();

    let requests = vec![
        SendRequest::text(to.clone(), "hi there").unwrap(),
        SendRequest::image(to.clone(), "https://x.example/a.png"),
        SendRequest::images(
            to.clone(),
            ["https://x.example/1.png", "https://x.example/2.png"],
        )
        .unwrap(),
        SendRequest::media(to.clone(), AttachmentType::Audio, "https://x.example/a.mp3"),
        SendRequest::uploaded(to.clone(), AttachmentType::Video, "123456"),
        SendRequest::like_heart(to.clone()),
        SendRequest::media_share(to.clone(), t.reel.clone()),
        SendRequest::quick_replies(
            to.clone(),
            "Pick",
            vec![
                QuickReply::text("A", "A").unwrap(),
                QuickReply::user_email(),
            ],
        )
        .unwrap(),
        SendRequest::button_template(
            to.clone(),
            ButtonTemplate::new(
                "Next?",
                vec![
                    Button::postback("More", "MORE"),
                    Button::web_url("Site", "https://x.example"),
                ],
            )
            .unwrap(),
        ),
        SendRequest::generic_template(
            to.clone(),
            GenericTemplate::new(vec![GenericElement::new("Card")
                .unwrap()
                .subtitle("sub")
                .unwrap()])
            .unwrap(),
        ),
        SendRequest::text(to.clone(), "agent here")
            .unwrap()
            .human_agent()
            .unwrap(),
    ];
    for request in &requests {
        let sent = t.client.send(request).await.unwrap().data;
        assert_eq!(sent.recipient_id.as_deref(), Some(to.as_str()));
        assert!(sent.message_id.is_some());
    }
    let react = t
        .client
        .send(&SendRequest::react(
            to.clone(),
            hello.clone(),
            Reaction::Love,
        ))
        .await
        .unwrap();
    assert!(react.data.message_id.is_none());
    t.client
        .send(&SendRequest::unreact(to.clone(), hello.clone()))
        .await
        .unwrap();
    for action in [
        SenderAction::TypingOn,
        SenderAction::TypingOff,
        SenderAction::MarkSeen,
    ] {
        t.client
            .send(&SendRequest::sender_action(to.clone(), action))
            .await
            .unwrap();
    }
    // A reaction to an unknown message is refused.
    let err = t
        .client
        .send(&SendRequest::react(to.clone(), "nope", Reaction::Love))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidParameter);

    let sent = t.sim.sent_messages();
    assert_eq!(sent.len(), requests.len() + 5);
    assert_eq!(sent[0].text.as_deref(), Some("hi there"));
    assert_eq!(sent[0].body, requests[0].to_json());
    assert_eq!(sent[10].tag.as_deref(), Some("HUMAN_AGENT"));
    assert_eq!(sent[11].kind, SentKind::React);
    assert_eq!(sent[12].kind, SentKind::Unreact);
    assert_eq!(sent[13].kind, SentKind::SenderAction);

    // Private reply to a comment by someone who never wrote: allowed once.
    let comment = t.sim.person("bob").comment(&t.reel, "LINK").unwrap();
    let reply = t
        .client
        .private_reply(comment.clone(), "Here is the link")
        .await
        .unwrap()
        .data;
    assert_eq!(reply.recipient_id, t.sim.igsid("bob", "shop"));
    let replies = t.sim.private_replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].comment_id.as_deref(), Some(comment.as_str()));
    assert_eq!(replies[0].body["recipient"]["comment_id"], comment.as_str());
    assert!(t.sim.comment(&comment).unwrap().private_replied);
    // A private reply does not open the window.
    let err = t
        .client
        .send_text(replies[0].recipient.clone(), "follow-up")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::OutsideMessagingWindow);
    t.sim.shutdown().await;
}

#[tokio::test]
async fn conversations_and_messages() {
    let mut config = SimConfig::for_tests();
    config.limits.conversations_per_second = 1000;
    let t = setup(config).await;
    let alice = t.sim.person("alice");
    alice.dm("shop", "first").unwrap();
    t.sim.advance_clock(std::time::Duration::from_secs(1));
    t.client
        .send_text(alice.igsid("shop").unwrap(), "answer")
        .await
        .unwrap();
    t.sim.advance_clock(std::time::Duration::from_secs(1));
    t.sim.person("bob").dm("shop", "other").unwrap();

    let list = t.client.conversations().send().await.unwrap().data.data;
    assert_eq!(list.len(), 2);
    assert!(
        list[0].updated_time.unwrap() > list[1].updated_time.unwrap(),
        "most recent first"
    );
    let found = t
        .client
        .find_conversation(&alice.igsid("shop").unwrap())
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(found.id, list[1].id);
    assert!(t
        .client
        .find_conversation("5800000000000999")
        .await
        .unwrap()
        .data
        .is_none());

    let messages = t
        .client
        .conversation_messages(found.id.as_str())
        .await
        .unwrap()
        .data
        .data;
    assert_eq!(messages.len(), 2);
    let detail = t
        .client
        .message(messages[0].id.as_str(), &[])
        .await
        .unwrap()
        .data;
    assert_eq!(detail.message.as_deref(), Some("answer"));
    assert_eq!(
        detail.from.unwrap().id.as_deref(),
        Some(t.shop.ig_user_id.as_str())
    );
    let recent = t
        .client
        .recent_messages(found.id.as_str(), 2)
        .await
        .unwrap()
        .data;
    assert_eq!(recent[1].message.as_deref(), Some("first"));
    assert_eq!(
        recent[1].from.as_ref().unwrap().username.as_deref(),
        Some("alice")
    );

    // Only the 20 most recent messages can be read in detail.
    for i in 0..20 {
        alice.dm("shop", &format!("m{i}")).unwrap();
    }
    let err = t
        .client
        .message(messages[1].id.as_str(), &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(100));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn user_profile_needs_consent() {
    let t = setup(SimConfig::for_tests()).await;
    t.sim
        .add_person(
            PersonSpec::new("carol")
                .name("Carol C")
                .followers(42)
                .follows_business(),
        )
        .unwrap();
    let carol = t.sim.person("carol");
    carol.comment(&t.reel, "hey").unwrap();
    let igsid = carol.igsid("shop").unwrap();
    let err = t.client.user_profile(&igsid, &[]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::ConsentRequired);
    carol.dm("shop", "hello").unwrap();
    let profile = t.client.user_profile(&igsid, &[]).await.unwrap().data;
    assert_eq!(profile.name.as_deref(), Some("Carol C"));
    assert_eq!(profile.username.as_deref(), Some("carol"));
    assert_eq!(profile.follower_count, Some(42));
    assert_eq!(profile.is_user_follow_business, Some(true));
    assert_eq!(profile.is_business_follow_user, Some(false));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn messenger_profile_and_subscription() {
    let t = setup(SimConfig::for_tests()).await;
    assert!(t.client.ice_breakers().await.unwrap().data.is_empty());
    let set = IceBreakers::new(
        vec![
            IceBreaker::new("Prices?", "PRICES"),
            IceBreaker::new("Hours?", "HOURS"),
        ],
        None,
    )
    .unwrap();
    assert!(t
        .client
        .set_ice_breakers(std::slice::from_ref(&set))
        .await
        .unwrap()
        .data
        .is_success());
    assert_eq!(t.client.ice_breakers().await.unwrap().data, vec![set]);
    assert!(t
        .client
        .delete_ice_breakers()
        .await
        .unwrap()
        .data
        .is_success());
    assert!(t.client.ice_breakers().await.unwrap().data.is_empty());

    let menu = PersistentMenu::new("default", vec![Button::postback("Agent", "AGENT")]).unwrap();
    t.client
        .set_persistent_menu(std::slice::from_ref(&menu))
        .await
        .unwrap();
    assert_eq!(t.client.persistent_menu().await.unwrap().data, vec![menu]);
    t.client.delete_persistent_menu().await.unwrap();
    assert!(t.client.persistent_menu().await.unwrap().data.is_empty());

    assert!(t
        .client
        .unsubscribe_webhooks()
        .await
        .unwrap()
        .data
        .is_success());
    assert!(t
        .client
        .subscribe_webhooks(&["comments", "messages"])
        .await
        .unwrap()
        .data
        .is_success());
    let recorded = t.sim.requests();
    let last = recorded.last().unwrap();
    assert_eq!(last.path, "/v25.0/me/subscribed_apps");
    assert!(last
        .query
        .contains(&("subscribed_fields".into(), "comments,messages".into())));
    assert!(last
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == "<redacted>"));
    assert!(
        !format!("{recorded:?}").contains(&t.shop.access_token),
        "tokens never recorded"
    );
    assert_eq!(last.account.as_deref(), Some(t.shop.ig_user_id.as_str()));
    t.sim.shutdown().await;
}

#[tokio::test]
async fn oauth_flow_end_to_end() {
    let t = setup(SimConfig::for_tests()).await;
    let redirect = "https://app.example/callback";
    let config = OAuthConfig::new(t.shop.app_id.clone(), t.shop.app_secret.clone(), redirect);
    let url = config.authorize_url(
        &[Scope::BusinessBasic, Scope::BusinessManageMessages],
        "xyz",
    );
    // Point the real authorize URL at the simulator's page.
    let url = url.replace(
        "https://www.instagram.com/oauth/authorize",
        &t.sim.authorize_url(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(redirect));
    let parsed = url::Url::parse(&location).unwrap();
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "xyz");
    let code = format!("{}#_", query["code"]);

    let oauth = OAuthClient::new(config).base_urls(t.sim.base_url(), t.sim.base_url());
    let short = oauth.exchange_code(&code).await.unwrap().data;
    assert_eq!(
        short.user_id.as_deref(),
        Some(t.shop.app_scoped_id.as_str())
    );
    assert_eq!(
        short.permissions,
        vec![
            "instagram_business_basic",
            "instagram_business_manage_messages"
        ]
    );
    let again = oauth.exchange_code(&code).await.unwrap_err();
    assert!(again.to_string().contains("already used"), "{again}");

    let long = oauth
        .exchange_long_lived(&short.access_token)
        .await
        .unwrap()
        .data;
    assert_eq!(long.expires_in, Some(60 * 24 * 3600));
    let client = client_for(&t.sim, long.access_token.expose_secret());
    assert_eq!(
        client
            .me(&["username"])
            .await
            .unwrap()
            .data
            .username
            .as_deref(),
        Some("shop")
    );
    // The grant lacks comments: reading them is a permission error.
    let err = client.comments(&t.reel).send().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PermissionDenied);

    // Refresh: refused under 24 hours, accepted after.
    assert!(oauth.refresh(&long.access_token).await.is_err());
    t.sim
        .advance_clock(std::time::Duration::from_secs(25 * 3600));
    let fresh = oauth.refresh(&long.access_token).await.unwrap().data;
    assert_ne!(fresh.access_token, long.access_token);
    assert!(client_for(&t.sim, fresh.access_token.expose_secret())
        .me(&[])
        .await
        .is_ok());

    // Wrong secret, denied consent.
    let bad = OAuthClient::new(OAuthConfig::new(t.shop.app_id.clone(), "wrong", redirect))
        .base_urls(t.sim.base_url(), t.sim.base_url());
    assert!(bad.exchange_long_lived(&short.access_token).await.is_err());
    let denied = http.get(format!("{url}&deny=1")).send().await.unwrap();
    assert!(denied.headers()["location"]
        .to_str()
        .unwrap()
        .contains("error=access_denied"));
    t.sim.shutdown().await;
}
