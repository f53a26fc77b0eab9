//! Ice breakers and persistent menu against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, graph, query_is, NoBody};
use instagram_graph::error::Limit;
use instagram_graph::model::{Button, IceBreaker, IceBreakers, PersistentMenu};
use instagram_graph::ErrorKind;
use serde_json::json;
use wiremock::matchers::body_json;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn ice_breakers_get_set_delete() {
    let server = MockServer::start().await;
    graph("GET", "me/messenger_profile")
        .and(query_is(&[("fields", "ice_breakers"), ("platform", "instagram")]))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"call_to_actions": [{"question": "Prices?", "payload": "PRICES"}], "locale": "default"},
                {"ice_breakers": [{"call_to_actions": [{"question": "价格?", "payload": "PRICES"}], "locale": "zh_CN"}]}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("POST", "me/messenger_profile")
        .and(query_is(&[]))
        .and(body_json(json!({
            "platform": "instagram",
            "ice_breakers": [
                {"call_to_actions": [{"question": "Prices?", "payload": "PRICES"}, {"question": "Hours?", "payload": "HOURS"}]},
                {"call_to_actions": [{"question": "价格?", "payload": "PRICES"}], "locale": "zh_CN"}
            ]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    graph("DELETE", "me/messenger_profile")
        .and(query_is(&[("platform", "instagram")]))
        .and(body_json(json!({"fields": ["ice_breakers"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let current = c.ice_breakers().await.unwrap().data;
    assert_eq!(current.len(), 2);
    assert_eq!(current[0].call_to_actions[0].payload, "PRICES");
    assert_eq!(current[1].locale.as_deref(), Some("zh_CN"));

    let sets = vec![
        IceBreakers::new(
            vec![
                IceBreaker::new("Prices?", "PRICES"),
                IceBreaker::new("Hours?", "HOURS"),
            ],
            None,
        )
        .unwrap(),
        IceBreakers::new(
            vec![IceBreaker::new("价格?", "PRICES")],
            Some("zh_CN".into()),
        )
        .unwrap(),
    ];
    assert!(c.set_ice_breakers(&sets).await.unwrap().data.is_success());
    assert!(c.delete_ice_breakers().await.unwrap().data.is_success());

    let five = vec![IceBreaker::new("q", "p"); 5];
    let err = IceBreakers::new(five, None).unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::LimitExceeded {
            limit: Limit::IceBreakers,
            actual: 5
        }
    );
    assert!(c.set_ice_breakers(&[]).await.is_err());
}

#[tokio::test]
async fn persistent_menu_get_set_delete() {
    let server = MockServer::start().await;
    graph("GET", "me/messenger_profile")
        .and(query_is(&[
            ("fields", "persistent_menu"),
            ("platform", "instagram"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"persistent_menu": [{"locale": "default", "call_to_actions": [
                {"type": "postback", "title": "Talk to an agent", "payload": "CARE_HELP"},
                {"type": "web_url", "title": "Shop now", "url": "https://shop.example"},
                {"type": "nested", "title": "New kind"}
            ]}]}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("POST", "me/messenger_profile")
        .and(body_json(json!({
            "platform": "instagram",
            "persistent_menu": [{"locale": "default", "call_to_actions": [
                {"type": "postback", "title": "Talk to an agent", "payload": "CARE_HELP"},
                {"type": "web_url", "title": "Shop now", "url": "https://shop.example"}
            ]}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    graph("DELETE", "me/messenger_profile")
        .and(query_is(&[("platform", "instagram")]))
        .and(body_json(json!({"fields": ["persistent_menu"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server);
    let menus = c.persistent_menu().await.unwrap().data;
    assert_eq!(menus[0].locale, "default");
    assert_eq!(menus[0].call_to_actions.len(), 3);
    assert_eq!(menus[0].call_to_actions[2].button_type.as_str(), "nested");

    let menu = PersistentMenu::new(
        "default",
        vec![
            Button::postback("Talk to an agent", "CARE_HELP"),
            Button::web_url("Shop now", "https://shop.example"),
        ],
    )
    .unwrap();
    assert!(c
        .set_persistent_menu(&[menu])
        .await
        .unwrap()
        .data
        .is_success());
    assert!(c.delete_persistent_menu().await.unwrap().data.is_success());
    assert!(PersistentMenu::new("default", vec![]).is_err());
}
