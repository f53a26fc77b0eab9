//! Replies privately to the author of a comment (one reply per comment, within 7 days).
//!
//! ```text
//! IG_TOKEN=IGAA... cargo run -p instagram-graph --example private_reply -- <COMMENT_ID> "Thanks! Here is the link"
//! ```

use instagram_graph::{Client, ErrorKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("IG_TOKEN").map_err(|_| "set IG_TOKEN to an access token")?;
    let mut args = std::env::args().skip(1);
    let comment_id = args
        .next()
        .ok_or("usage: private_reply <COMMENT_ID> <TEXT>")?;
    let text = args
        .next()
        .ok_or("usage: private_reply <COMMENT_ID> <TEXT>")?;

    let mut builder = Client::builder(token);
    if let Ok(base) = std::env::var("IG_API_BASE") {
        builder = builder.base_url(base);
    }
    let client = builder.build()?;

    // Record that you are about to reply BEFORE the call: a private reply is single-shot and
    // must never be retried after an ambiguous failure.
    match client.private_reply(comment_id.as_str(), text).await {
        Ok(sent) => println!("sent {:?}", sent.data.message_id),
        Err(err) if matches!(err.kind(), ErrorKind::InvalidPrivateReply) => {
            eprintln!("cannot reply to this comment: {}", err.advice());
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}
