//! Pagination across three pages with the stream, against a mock Graph API.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, graph, query_is};
use futures_util::StreamExt;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

const FIELDS: &str = "id,text";

#[tokio::test]
async fn stream_follows_after_cursor_until_next_is_gone() {
    let server = MockServer::start().await;
    let base = server.uri();
    graph("GET", "1791/comments")
        .and(query_is(&[("fields", FIELDS), ("limit", "2")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "c1"}, {"id": "c2"}],
            "paging": {"cursors": {"before": "B1", "after": "A1"},
                       "next": format!("{base}/v25.0/1791/comments?access_token=leak&after=A1")}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // An empty page that still announces a next page: paging must go on.
    graph("GET", "1791/comments")
        .and(query_is(&[("fields", FIELDS), ("limit", "2"), ("after", "A1")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [],
            "paging": {"cursors": {"before": "B2", "after": "A2"}, "next": "https://graph.instagram.com/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The last page has cursors but no `next`: paging stops.
    graph("GET", "1791/comments")
        .and(query_is(&[
            ("fields", FIELDS),
            ("limit", "2"),
            ("after", "A2"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "c3"}],
            "paging": {"cursors": {"before": "B3", "after": "A3"}}
        })))
        .expect(1)
        .mount(&server)
        .await;

    let pages: Vec<_> = client(&server)
        .comments("1791")
        .fields(&["id", "text"])
        .limit(2)
        .pages()
        .collect()
        .await;
    assert_eq!(pages.len(), 3);
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().data.data)
        .map(|c| c.id.into_string())
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
}

#[tokio::test]
async fn stream_stops_after_an_error() {
    let server = MockServer::start().await;
    graph("GET", "me/media")
        .and(query_is(&[("fields", "id")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "m1"}],
            "paging": {"cursors": {"after": "A1"}, "next": "https://x/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "me/media")
        .and(query_is(&[("fields", "id"), ("after", "A1")]))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "error": {"message": "An unexpected error has occurred.", "code": 2, "is_transient": true}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let pages: Vec<_> = client(&server)
        .media_list("me")
        .fields(&["id"])
        .pages()
        .collect()
        .await;
    assert_eq!(pages.len(), 2);
    assert!(pages[0].is_ok());
    let err = pages[1].as_ref().unwrap_err();
    assert!(err.is_retryable());
}

#[tokio::test]
async fn stream_stops_when_the_cursor_does_not_move() {
    let server = MockServer::start().await;
    graph("GET", "me/media")
        .and(query_is(&[("fields", "id")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "m1"}],
            "paging": {"cursors": {"after": "SAME"}, "next": "https://x/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "me/media")
        .and(query_is(&[("fields", "id"), ("after", "SAME")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "m2"}],
            "paging": {"cursors": {"after": "SAME"}, "next": "https://x/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let pages: Vec<_> = client(&server)
        .media_list("me")
        .fields(&["id"])
        .pages()
        .collect()
        .await;
    assert_eq!(pages.len(), 2);
}

#[tokio::test]
async fn items_flattens_every_page() {
    let server = MockServer::start().await;
    graph("GET", "me/conversations")
        .and(query_is(&[("platform", "instagram")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "c1"}, {"id": "c2"}],
            "paging": {"cursors": {"after": "A"}, "next": "https://x/next"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "me/conversations")
        .and(query_is(&[("platform", "instagram"), ("after", "A")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "c3"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let ids: Vec<String> = client(&server)
        .conversations()
        .items()
        .map(|c| c.unwrap().id.into_string())
        .collect()
        .await;
    assert_eq!(ids, ["c1", "c2", "c3"]);
}
