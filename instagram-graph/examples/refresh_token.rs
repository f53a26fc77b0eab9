//! Refreshes a long-lived Instagram token when it is due (at least 24 hours old, not expired).
//!
//! ```text
//! IG_TOKEN=IGAA... IG_TOKEN_ISSUED_AT=2026-01-01T00:00:00Z cargo run -p instagram-graph --example refresh_token
//! ```

use chrono::{DateTime, Utc};
use instagram_graph::model::{AccessToken, RefreshCheck, TokenLifetime};
use instagram_graph::oauth::{OAuthClient, OAuthConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = AccessToken::new(
        std::env::var("IG_TOKEN").map_err(|_| "set IG_TOKEN to a long-lived token")?,
    );
    let issued_at: DateTime<Utc> = match std::env::var("IG_TOKEN_ISSUED_AT") {
        Ok(text) => DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc),
        Err(_) => Utc::now() - chrono::Duration::days(1),
    };
    let lifetime = TokenLifetime::new(issued_at);
    let now = Utc::now();
    match lifetime.refresh_check(now) {
        RefreshCheck::Ready => {}
        RefreshCheck::TooYoung { not_before } => {
            println!("not yet: refresh after {not_before}");
            return Ok(());
        }
        RefreshCheck::Expired => return Err("the token expired: the user must log in again".into()),
        _ => return Err("unknown refresh state".into()),
    }

    // Refresh needs no app secret; the config is only used for the hosts here.
    let mut client = OAuthClient::new(OAuthConfig::new("", "", ""));
    if let Ok(base) = std::env::var("IG_API_BASE") {
        client = client.base_urls(base.clone(), base);
    }
    let refreshed = client.refresh(&token).await?;
    let expires = refreshed.data.expires_at(now);
    // Store refreshed.data.access_token encrypted; never print it.
    println!("refreshed; new token expires at {expires:?}");
    Ok(())
}
