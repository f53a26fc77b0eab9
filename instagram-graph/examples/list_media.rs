//! Lists every media object of the account, page by page.
//!
//! ```text
//! IG_TOKEN=IGAA... cargo run -p instagram-graph --example list_media
//! IG_API_BASE=http://127.0.0.1:8080 IG_TOKEN=test cargo run -p instagram-graph --example list_media
//! ```

use futures_util::StreamExt;
use instagram_graph::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("IG_TOKEN").map_err(|_| "set IG_TOKEN to an access token")?;
    let mut builder = Client::builder(token);
    if let Ok(base) = std::env::var("IG_API_BASE") {
        builder = builder.base_url(base);
    }
    let client = builder.build()?;

    let mut pages = Box::pin(
        client
            .media_list("me")
            .fields(&["id", "caption", "media_type", "permalink", "timestamp"])
            .limit(25)
            .pages(),
    );
    while let Some(page) = pages.next().await {
        let page = page?;
        for media in &page.data.data {
            println!(
                "{} {:?} {}",
                media.id,
                media.media_type,
                media.caption.as_deref().unwrap_or("")
            );
        }
        if let Some(percent) = page.usage.max_percent() {
            eprintln!("rate-limit usage: {percent}%");
        }
    }
    Ok(())
}
