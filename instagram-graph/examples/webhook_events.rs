//! Turn a webhook delivery into events and route them by kind.
//!
//! `cargo run -p instagram-graph --example webhook_events -- tests/fixtures/messages_text.json`
//! (without an argument, a built-in sample is used). In a server, verify the
//! `X-Hub-Signature-256` header on the same raw bytes first (crate `webhook-verify`).

use instagram_graph::webhook::{self, EventKind};

const SAMPLE: &str = r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1700000000,
 "messaging":[{"sender":{"id":"6000000000000001"},"recipient":{"id":"17841400000000001"},
  "timestamp":1700000000123,"message":{"mid":"m-1","text":"price?"}}],
 "changes":[{"field":"comments","value":{"id":"17900000000000001","text":"PRICE",
  "from":{"id":"6000000000000002","username":"fan"},"media":{"id":"18000000000000001"}}}]}]}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = match std::env::args().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => SAMPLE.as_bytes().to_vec(),
    };
    let notification = webhook::parse(&body)?;
    for event in notification.events() {
        let who = event.counterpart().map_or("someone", |id| id.as_str());
        match &event.kind {
            EventKind::Message(m) if m.is_echo => println!("echo of our message {:?}", m.mid),
            EventKind::Message(m) => println!("{who} wrote {:?}", m.text.as_deref().unwrap_or("")),
            EventKind::Comment(c) => println!(
                "{who} commented {:?} (comment {:?}): a private reply is possible for 7 days",
                c.text.as_deref().unwrap_or(""),
                c.id
            ),
            EventKind::Postback(p) => println!("{who} tapped {:?}", p.payload),
            other => println!("{who}: {}", serde_json::to_string(other)?),
        }
    }
    // Malformed parts do not stop the others; log them and keep the raw body for replay.
    for error in notification.errors() {
        eprintln!("skipped part: {error}");
    }
    Ok(())
}
