//! Instagram Login OAuth against a mock server.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration};
use instagram_graph::model::{AccessToken, TokenLifetime};
use instagram_graph::oauth::{OAuthClient, OAuthConfig};
use instagram_graph::ErrorKind;
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

struct QueryIs(&'static [(&'static str, &'static str)]);

impl Match for QueryIs {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut want: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        got.sort();
        want.sort();
        got == want
    }
}

fn oauth(server: &MockServer) -> OAuthClient {
    OAuthClient::new(OAuthConfig::new(
        "APPID",
        "APPSECRET",
        "https://example.com/cb",
    ))
    .base_urls(server.uri(), server.uri())
}

#[tokio::test]
async fn code_exchange_strips_suffix_and_reads_both_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "client_id=APPID&client_secret=APPSECRET&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&code=AQDcode",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"access_token": "EAAshort", "user_id": "1020", "permissions": "instagram_business_basic,instagram_business_manage_messages"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .and(body_string(
            "client_id=APPID&client_secret=APPSECRET&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&code=FLAT",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "IGQVJshort", "user_id": 17841405793187218u64}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = oauth(&server);
    let wrapped = client.exchange_code("AQDcode#_").await.unwrap().data;
    assert_eq!(wrapped.access_token.expose_secret(), "EAAshort");
    assert_eq!(wrapped.user_id.as_deref(), Some("1020"));
    assert_eq!(wrapped.permissions.len(), 2);
    let flat = client.exchange_code("FLAT").await.unwrap().data;
    assert_eq!(flat.user_id.as_deref(), Some("17841405793187218"));
    assert!(client.exchange_code("#_").await.is_err());
}

#[tokio::test]
async fn code_exchange_flat_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error_type": "OAuthException", "code": 400,
            "error_message": "Matching code was not found or was already used"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = oauth(&server).exchange_code("used").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidParameter);
    let graph = err.graph().unwrap();
    assert_eq!(graph.code, Some(400));
    assert_eq!(graph.error_type.as_deref(), Some("OAuthException"));
    assert!(graph.message.contains("already used"));
    assert!(!err.to_string().contains("APPSECRET"));
}

#[tokio::test]
async fn long_lived_exchange_and_refresh_use_the_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/access_token"))
        .and(QueryIs(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", "APPSECRET"),
        ]))
        .and(header("authorization", "Bearer SHORT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "LONG1", "token_type": "bearer", "expires_in": 5183944}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .and(QueryIs(&[("grant_type", "ig_refresh_token")]))
        .and(header("authorization", "Bearer LONG1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "LONG2", "token_type": "bearer", "expires_in": 5184000,
            "permissions": "instagram_business_basic"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = oauth(&server);
    let long = client
        .exchange_long_lived(&AccessToken::new("SHORT"))
        .await
        .unwrap()
        .data;
    assert_eq!(long.access_token.expose_secret(), "LONG1");
    let received = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    assert_eq!(
        long.expires_at(received).unwrap(),
        received + Duration::seconds(5_183_944)
    );

    let lifetime = long.lifetime(received);
    // Too young: refused without a request (the refresh mock expects exactly one call).
    let err = client
        .refresh_if_due(&long.access_token, &lifetime, received + Duration::hours(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("24 hours"));
    // Expired: refused without a request.
    assert!(client
        .refresh_if_due(&long.access_token, &lifetime, received + Duration::days(61))
        .await
        .is_err());
    let refreshed = client
        .refresh_if_due(&long.access_token, &lifetime, received + Duration::days(2))
        .await
        .unwrap()
        .data;
    assert_eq!(refreshed.access_token.expose_secret(), "LONG2");
    assert_eq!(refreshed.permissions, vec!["instagram_business_basic"]);
    assert_eq!(
        TokenLifetime::new(received).expires_at,
        received + Duration::days(60)
    );
}

#[tokio::test]
async fn refresh_of_an_expired_token_is_token_invalid() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "Session has expired", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "T"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = oauth(&server)
        .refresh(&AccessToken::new("OLD"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TokenInvalid { .. }));
}

#[tokio::test]
async fn transport_errors_do_not_echo_the_app_secret() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = OAuthClient::new(OAuthConfig::new(
        "APPID",
        "APPSECRET",
        "https://example.com/cb",
    ))
    .base_urls(base.clone(), base);
    let err = client
        .exchange_long_lived(&AccessToken::new("SHORT"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Transport { .. }));
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("APPSECRET"), "{shown}");
    assert!(!shown.contains("SHORT"), "{shown}");
}

#[tokio::test]
async fn undecodable_token_response_keeps_the_body_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/refresh_access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "NEW-SECRET", "token_type": {"unexpected": true}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = oauth(&server)
        .refresh(&AccessToken::new("OLD"))
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::Decode { path, body } => {
            assert_eq!(path, "token_type");
            assert!(body.contains("unexpected"));
            assert!(!body.contains("NEW-SECRET"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains("NEW-SECRET"));
}
