//! A typed async client for the Instagram Platform, and the typed model of its webhook events.
//!
//! - [`model`]: the request and response bodies (no HTTP needed).
//! - [`client`] and the endpoint methods of [`client::Client`] (feature `client`, on by default).
//! - [`oauth`]: Instagram Login (authorize URL, code exchange, long-lived tokens, refresh).
//! - [`error`]: one [`Error`] with a [`kind`](Error::kind) to match on.
//! - [`page`], [`usage`], [`retry`]: pagination, rate-limit usage headers, a pure retry policy.
//!
//! The models (and the [`Error`] type) compile without the default `client` feature, so crates
//! that only need the wire types do not pull in an HTTP stack. The `native-tls` feature swaps
//! rustls for the platform's TLS.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # async fn run() -> Result<(), instagram_graph::Error> {
//! use instagram_graph::model::{QuickReply, SendRequest};
//! use instagram_graph::{Client, ErrorKind};
//!
//! let client = Client::builder(std::env::var("IG_TOKEN").unwrap_or_default()).build()?;
//!
//! // Read: the account and the comments of its latest post.
//! let me = client.me(&["user_id", "username"]).await?;
//! let media = client.media_list("me").limit(1).send().await?;
//! if let Some(post) = media.data.data.first() {
//!     let comments = client.comments(post.id.as_str()).limit(50).send().await?;
//!     for comment in comments.data.data {
//!         // Reply privately, once, to each comment.
//!         match client.private_reply(comment.id.clone(), "Thanks! Check your DMs").await {
//!             Ok(_) => {}
//!             Err(e) if matches!(e.kind(), ErrorKind::InvalidPrivateReply) => continue,
//!             Err(e) => return Err(e),
//!         }
//!     }
//! }
//!
//! // Write: builders check Meta's limits before anything is sent.
//! let ask = SendRequest::quick_replies(
//!     "IGSID",
//!     "How can we help?",
//!     vec![QuickReply::text("Orders", "ORDERS")?, QuickReply::text("Returns", "RETURNS")?],
//! )?;
//! let sent = client.send(&ask).await?;
//! println!("{:?} (usage {:?}%)", sent.data.message_id, sent.usage.max_percent());
//! # let _ = me;
//! # Ok(()) }
//! ```

#[cfg(feature = "client")]
pub mod api;
#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod id;
pub mod model;
#[cfg(feature = "client")]
pub mod oauth;
pub mod page;
pub mod retry;
pub mod time;
pub mod usage;
pub mod webhook;

#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder, Flavor, Response, DEFAULT_GRAPH_VERSION};
pub use error::{Error, ErrorKind};
pub use page::Page;
