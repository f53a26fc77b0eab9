//! Helpers shared by the wiremock tests.
#![allow(dead_code, clippy::unwrap_used)]

use instagram_graph::client::{Client, Flavor};
use instagram_graph::id::PageId;
use wiremock::matchers::{header, method, path};
use wiremock::{Match, MockBuilder, MockServer, Request};

/// The token every test client uses.
pub const TOKEN: &str = "IGAA-test-token-123";

/// Matches when the query string holds exactly these pairs (any order), and nothing else.
pub struct QueryIs(pub Vec<(String, String)>);

/// Builds a [`QueryIs`] from string pairs.
pub fn query_is(pairs: &[(&str, &str)]) -> QueryIs {
    QueryIs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

impl Match for QueryIs {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut want = self.0.clone();
        got.sort();
        want.sort();
        got == want
    }
}

/// Matches when the token appears nowhere in the URL.
pub struct TokenNotInUrl;

impl Match for TokenNotInUrl {
    fn matches(&self, request: &Request) -> bool {
        !request.url.as_str().contains(TOKEN)
            && !request.url.query_pairs().any(|(k, _)| k == "access_token")
    }
}

/// Matches an empty request body.
pub struct NoBody;

impl Match for NoBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

/// A mock for `METHOD /v25.0/<path>` carrying the token in the header and not in the URL.
pub fn graph(verb: &str, p: &str) -> MockBuilder {
    wiremock::Mock::given(method(verb))
        .and(path(format!("/v25.0/{p}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(TokenNotInUrl)
}

/// An Instagram Login client on the mock server.
pub fn client(server: &MockServer) -> Client {
    Client::builder(TOKEN)
        .base_url(server.uri())
        .build()
        .unwrap()
}

/// A Facebook Login client (Page `PAGE1`) on the mock server.
pub fn fb_client(server: &MockServer) -> Client {
    Client::builder(TOKEN)
        .flavor(Flavor::FacebookLogin {
            page_id: PageId::new("PAGE1"),
        })
        .base_url(server.uri())
        .build()
        .unwrap()
}
