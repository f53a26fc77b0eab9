//! Sends a text with quick replies; the builder checks the limits (13 replies, 20-char titles).
//!
//! ```text
//! IG_TOKEN=IGAA... cargo run -p instagram-graph --example quick_replies -- <IGSID>
//! ```

use instagram_graph::model::{QuickReply, SendRequest};
use instagram_graph::Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("IG_TOKEN").map_err(|_| "set IG_TOKEN to an access token")?;
    let igsid = std::env::args()
        .nth(1)
        .ok_or("usage: quick_replies <IGSID>")?;
    let mut builder = Client::builder(token);
    if let Ok(base) = std::env::var("IG_API_BASE") {
        builder = builder.base_url(base);
    }
    let client = builder.build()?;

    let request = SendRequest::quick_replies(
        igsid.as_str(),
        "What can we help you with?",
        vec![
            QuickReply::text("Order status", "ORDER_STATUS")?,
            QuickReply::text("Returns", "RETURNS")?,
            QuickReply::text("Talk to a person", "HUMAN")?,
            QuickReply::user_email(),
        ],
    )?;
    let sent = client.send(&request).await?;
    println!(
        "sent {:?} to {:?}",
        sent.data.message_id, sent.data.recipient_id
    );
    Ok(())
}
