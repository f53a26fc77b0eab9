//! The Send API against a mock Graph API: every message kind, exact bodies.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, fb_client, graph, query_is};
use instagram_graph::model::{
    AttachmentType, Button, ButtonTemplate, GenericElement, GenericTemplate, QuickReply, Reaction,
    SendRequest, SenderAction,
};
use instagram_graph::ErrorKind;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header};
use wiremock::{MockServer, ResponseTemplate};

async fn expect_send(server: &MockServer, node: &str, body: Value, answer: Value) {
    graph("POST", &format!("{node}/messages"))
        .and(query_is(&[]))
        .and(header("content-type", "application/json"))
        .and(body_json(body))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(server)
        .await;
}

fn sent() -> Value {
    json!({"recipient_id": "526", "message_id": "aWdfZ"})
}

#[tokio::test]
async fn text_message() {
    let server = MockServer::start().await;
    expect_send(
        &server,
        "me",
        json!({"recipient":{"id":"526"},"message":{"text":"hello"}}),
        sent(),
    )
    .await;
    let out = client(&server)
        .send_text("526", "hello")
        .await
        .unwrap()
        .data;
    assert_eq!(out.recipient_id.as_deref(), Some("526"));
    assert_eq!(out.message_id.unwrap(), "aWdfZ");
}

#[tokio::test]
async fn private_reply_has_comment_id_and_no_messaging_type() {
    let server = MockServer::start().await;
    expect_send(
        &server,
        "me",
        json!({"recipient":{"comment_id":"17870913679156914"},"message":{"text":"Sent you the link"}}),
        sent(),
    )
    .await;
    let out = client(&server)
        .private_reply("17870913679156914", "Sent you the link")
        .await
        .unwrap();
    assert_eq!(out.data.message_id.unwrap(), "aWdfZ");
}

#[tokio::test]
async fn facebook_login_sends_through_the_page() {
    let server = MockServer::start().await;
    expect_send(
        &server,
        "PAGE1",
        json!({"recipient":{"id":"526"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"an agent here"}}),
        sent(),
    )
    .await;
    let request = SendRequest::text("526", "an agent here")
        .unwrap()
        .human_agent()
        .unwrap();
    fb_client(&server).send(&request).await.unwrap();
}

#[tokio::test]
async fn attachments() {
    let server = MockServer::start().await;
    let c = client(&server);
    let cases: Vec<(SendRequest, Value)> = vec![
        (
            SendRequest::image("1", "https://x/a.png"),
            json!({"recipient":{"id":"1"},"message":{"attachment":{"type":"image","payload":{"url":"https://x/a.png"}}}}),
        ),
        (
            SendRequest::images("2", ["https://x/a.png", "https://x/b.png"]).unwrap(),
            json!({"recipient":{"id":"2"},"message":{"attachments":[
                {"type":"image","payload":{"url":"https://x/a.png"}},
                {"type":"image","payload":{"url":"https://x/b.png"}}]}}),
        ),
        (
            SendRequest::media("3", AttachmentType::Audio, "https://x/a.m4a"),
            json!({"recipient":{"id":"3"},"message":{"attachment":{"type":"audio","payload":{"url":"https://x/a.m4a"}}}}),
        ),
        (
            SendRequest::media("4", AttachmentType::Video, "https://x/v.mp4"),
            json!({"recipient":{"id":"4"},"message":{"attachment":{"type":"video","payload":{"url":"https://x/v.mp4"}}}}),
        ),
        (
            SendRequest::media("5", AttachmentType::File, "https://x/f.pdf"),
            json!({"recipient":{"id":"5"},"message":{"attachment":{"type":"file","payload":{"url":"https://x/f.pdf"}}}}),
        ),
        (
            SendRequest::uploaded("6", AttachmentType::Image, "att-1"),
            json!({"recipient":{"id":"6"},"message":{"attachment":{"type":"image","payload":{"attachment_id":"att-1"}}}}),
        ),
        (
            SendRequest::like_heart("7"),
            json!({"recipient":{"id":"7"},"message":{"attachment":{"type":"like_heart"}}}),
        ),
        (
            SendRequest::media_share("8", "POST1"),
            json!({"recipient":{"id":"8"},"message":{"attachment":{"type":"MEDIA_SHARE","payload":{"id":"POST1"}}}}),
        ),
    ];
    for (request, body) in cases {
        expect_send(&server, "me", body, sent()).await;
        c.send(&request).await.unwrap();
    }
}

#[tokio::test]
async fn quick_replies_and_templates() {
    let server = MockServer::start().await;
    let c = client(&server);
    let quick = SendRequest::quick_replies(
        "1",
        "Pick one",
        vec![
            QuickReply::text("Red", "RED").unwrap(),
            QuickReply::user_email(),
        ],
    )
    .unwrap();
    expect_send(
        &server,
        "me",
        json!({"recipient":{"id":"1"},"message":{"text":"Pick one","quick_replies":[
            {"content_type":"text","title":"Red","payload":"RED"},
            {"content_type":"user_email"}]}}),
        sent(),
    )
    .await;
    c.send(&quick).await.unwrap();

    let buttons = ButtonTemplate::new(
        "What next?",
        vec![
            Button::web_url("Visit", "https://www.instagram.com"),
            Button::postback("Talk", "TALK"),
        ],
    )
    .unwrap();
    expect_send(
        &server,
        "me",
        json!({"recipient":{"id":"2"},"message":{"attachment":{"type":"template","payload":{
            "template_type":"button","text":"What next?","buttons":[
                {"type":"web_url","title":"Visit","url":"https://www.instagram.com"},
                {"type":"postback","title":"Talk","payload":"TALK"}]}}}}),
        sent(),
    )
    .await;
    c.send(&SendRequest::button_template("2", buttons))
        .await
        .unwrap();

    let card = GenericElement::new("Shoe")
        .unwrap()
        .subtitle("Size 42")
        .unwrap()
        .image_url("https://x/shoe.png")
        .default_action("https://x/shoe")
        .buttons(vec![Button::postback("Buy", "BUY")])
        .unwrap();
    let generic = GenericTemplate::new(vec![card]).unwrap();
    expect_send(
        &server,
        "me",
        json!({"recipient":{"id":"3"},"message":{"attachment":{"type":"template","payload":{
            "template_type":"generic","elements":[{"title":"Shoe","subtitle":"Size 42",
            "image_url":"https://x/shoe.png","default_action":{"type":"web_url","url":"https://x/shoe"},
            "buttons":[{"type":"postback","title":"Buy","payload":"BUY"}]}]}}}}),
        sent(),
    )
    .await;
    c.send(&SendRequest::generic_template("3", generic))
        .await
        .unwrap();
}

#[tokio::test]
async fn reactions_and_sender_actions() {
    let server = MockServer::start().await;
    let c = client(&server);
    let cases: Vec<(SendRequest, Value)> = vec![
        (
            SendRequest::react("1", "mid.1", Reaction::Love),
            json!({"recipient":{"id":"1"},"sender_action":"react","payload":{"message_id":"mid.1","reaction":"love"}}),
        ),
        (
            SendRequest::react("1", "mid.1", Reaction::Other("😊".into())),
            json!({"recipient":{"id":"1"},"sender_action":"react","payload":{"message_id":"mid.1","reaction":"😊"}}),
        ),
        (
            SendRequest::unreact("1", "mid.1"),
            json!({"recipient":{"id":"1"},"sender_action":"unreact","payload":{"message_id":"mid.1"}}),
        ),
        (
            SendRequest::sender_action("1", SenderAction::TypingOn),
            json!({"recipient":{"id":"1"},"sender_action":"typing_on"}),
        ),
        (
            SendRequest::sender_action("1", SenderAction::TypingOff),
            json!({"recipient":{"id":"1"},"sender_action":"typing_off"}),
        ),
        (
            SendRequest::sender_action("1", SenderAction::MarkSeen),
            json!({"recipient":{"id":"1"},"sender_action":"mark_seen"}),
        ),
    ];
    for (request, body) in cases {
        expect_send(&server, "me", body, json!({"recipient_id": "1"})).await;
        let out = c.send(&request).await.unwrap().data;
        assert_eq!(out.message_id, None);
    }
}

#[tokio::test]
async fn limits_are_checked_before_any_request() {
    let server = MockServer::start().await;
    // No mock is mounted: any request would get a 404 and a different error kind.
    let c = client(&server);
    let err = c.send_text("1", "x".repeat(1001)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::LimitExceeded { .. }));
    let err = c.private_reply("1787", "").await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::LimitExceeded { .. }));
    assert!(server.received_requests().await.unwrap().is_empty());
}
