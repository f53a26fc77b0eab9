//! The axum extractor, driven through a router with tower's `oneshot`.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use tower::ServiceExt;
use webhook_verify::axum::{AppSecrets, VerifiedBody};
use webhook_verify::meta;

async fn echo(body: VerifiedBody) -> String {
    format!(
        "secret {}: {}",
        body.secret_index(),
        String::from_utf8_lossy(body.bytes())
    )
}

fn app(secrets: AppSecrets) -> Router {
    Router::new().route("/hook", post(echo)).with_state(secrets)
}

async fn send(app: Router, body: &'static [u8], header: Option<String>) -> (StatusCode, String) {
    let mut request = Request::post("/hook");
    if let Some(header) = header {
        request = request.header("X-Hub-Signature-256", header);
    }
    let response = app
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

const BODY: &[u8] = br#"{"object":"instagram","entry":[]}"#;

#[tokio::test]
async fn a_signed_body_reaches_the_handler() {
    let header = meta::sign(b"new", BODY).unwrap().to_string();
    let (status, text) = send(
        app(AppSecrets::rotating(["old", "new"])),
        BODY,
        Some(header),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, format!("secret 1: {}", String::from_utf8_lossy(BODY)));
}

#[tokio::test]
async fn a_wrong_signature_is_401() {
    let header = meta::sign(b"someone else", BODY).unwrap().to_string();
    let (status, text) = send(app(AppSecrets::new("app-secret")), BODY, Some(header)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("does not match"), "{text}");
    assert!(!text.contains("app-secret"));
}

#[tokio::test]
async fn a_missing_or_malformed_signature_is_401() {
    let (status, text) = send(app(AppSecrets::new("app-secret")), BODY, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("X-Hub-Signature-256"), "{text}");
    let (status, _) = send(
        app(AppSecrets::new("app-secret")),
        BODY,
        Some("sha256=xyz".into()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_oversize_body_is_413_with_or_without_content_length() {
    let header = meta::sign(b"app-secret", BODY).unwrap().to_string();
    let small = AppSecrets::new("app-secret").with_body_limit(BODY.len() - 1);
    // `Body::from` sets no Content-Length, so this exercises the streaming limit.
    let (status, _) = send(app(small.clone()), BODY, Some(header.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let request = Request::post("/hook")
        .header("X-Hub-Signature-256", &header)
        .header("Content-Length", BODY.len())
        .body(Body::from(BODY))
        .unwrap();
    let response = app(small).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let exact = AppSecrets::new("app-secret").with_body_limit(BODY.len());
    let (status, _) = send(app(exact), BODY, Some(header)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn no_usable_secret_is_a_500_that_reveals_nothing() {
    let header = meta::sign(b"x", BODY).unwrap().to_string();
    let (status, text) = send(app(AppSecrets::new("")), BODY, Some(header)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(text, "webhook verification is not configured");
}

#[tokio::test]
async fn a_body_that_fails_midway_is_400() {
    let header = meta::sign(b"app-secret", BODY).unwrap().to_string();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"{\"object\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "peer went away",
        )),
    ];
    let request = Request::post("/hook")
        .header("X-Hub-Signature-256", header)
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let response = app(AppSecrets::new("app-secret"))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(&text[..], b"the request body could not be read");
}
