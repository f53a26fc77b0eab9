//! A Meta webhook endpoint on axum: the subscription handshake (`GET`) and verified deliveries
//! (`POST`, through the `VerifiedBody` extractor), driven in-process so that it runs anywhere.
//!
//! Run: `cargo run -p webhook-verify --features axum --example meta_endpoint`
//!
//! In a real service, serve `app` with `axum::serve` on the URL you give Meta, and pass the
//! verified bytes to your parser (for example `instagram-graph`'s webhook model).

use axum::body::{to_bytes, Body};
use axum::extract::{FromRef, RawQuery, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use webhook_verify::axum::{AppSecrets, VerifiedBody};
use webhook_verify::meta::{self, Subscription};

/// The endpoint's state: the app secret(s) for the extractor, the verify token for the handshake.
#[derive(Clone)]
struct Endpoint {
    secrets: AppSecrets,
    verify_token: VerifyToken,
}

/// The token Meta echoes in the subscription handshake (set in the app dashboard).
#[derive(Clone)]
struct VerifyToken(String);

// `VerifiedBody` finds the secrets in the state (axum's `FromRef` derive does the same).
impl FromRef<Endpoint> for AppSecrets {
    fn from_ref(endpoint: &Endpoint) -> Self {
        endpoint.secrets.clone()
    }
}

impl FromRef<Endpoint> for VerifyToken {
    fn from_ref(endpoint: &Endpoint) -> Self {
        endpoint.verify_token.clone()
    }
}

/// `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`: echo the challenge.
async fn handshake(State(token): State<VerifyToken>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    match Subscription::from_query(&query).verify(&token.0) {
        Ok(challenge) => challenge.to_owned().into_response(),
        Err(e) => (StatusCode::FORBIDDEN, e.to_string()).into_response(),
    }
}

/// `POST`: runs only once the signature matched (401 and 413 are answered before).
async fn receive(body: VerifiedBody) -> StatusCode {
    println!(
        "  verified {} bytes; store them, then answer 200",
        body.bytes().len()
    );
    StatusCode::OK
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new()
        .route("/webhooks/instagram", get(handshake).post(receive))
        .with_state(Endpoint {
            // while rotating the app secret, both are accepted
            secrets: AppSecrets::rotating(["previous-app-secret", "app-secret"]),
            verify_token: VerifyToken("my-verify-token".into()),
        });

    let call = |request: Request<Body>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            let status = response.status();
            let body = to_bytes(response.into_body(), 64 * 1024).await?;
            Ok::<_, Box<dyn std::error::Error>>((
                status,
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
    };

    println!("subscription handshake:");
    let (status, body) = call(
        Request::get("/webhooks/instagram?hub.mode=subscribe&hub.verify_token=my-verify-token&hub.challenge=1158201444")
            .body(Body::empty())?,
    )
    .await?;
    println!("  {status} {body}");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1158201444"));

    let delivery = br#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1700000000,"messaging":[]}]}"#;
    let signature = meta::sign(b"app-secret", delivery)?.to_string();
    let post = |body: &'static [u8], signature: &str| {
        Request::post("/webhooks/instagram")
            .header("content-type", "application/json")
            .header(meta::SIGNATURE_HEADER, signature)
            .body(Body::from(body))
    };

    println!("a delivery signed with the app secret:");
    let (status, _) = call(post(delivery, &signature)?).await?;
    println!("  {status}");
    assert_eq!(status, StatusCode::OK);

    println!("the same signature over a changed body:");
    let tampered = br#"{"object":"instagram","entry":[{"id":"17841400000000002","time":1700000000,"messaging":[]}]}"#;
    let (status, body) = call(post(tampered, &signature)?).await?;
    println!("  {status} {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}
