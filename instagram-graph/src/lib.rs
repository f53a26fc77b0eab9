//! A typed async client for the Instagram Platform, and the typed model of its webhook events.
//!
//! - [`model`]: the request and response bodies (no HTTP needed).
//! - [`client`] and the endpoint methods of [`client::Client`] (feature `client`, on by default).
//! - [`oauth`]: Instagram Login (authorize URL, code exchange, long-lived tokens, refresh).
//! - [`error`]: one [`Error`] with a [`kind`](Error::kind) to match on.
//! - [`page`], [`usage`], [`retry`]: pagination, rate-limit usage headers, a pure retry policy.
//!
//! The models (and the [`Error`] type) compile without the default `client` feature, so crates
//! that only need the wire types do not pull in an HTTP stack.

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
