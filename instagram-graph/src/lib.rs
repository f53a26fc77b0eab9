//! A typed async client for the Instagram Platform, and the typed model of its webhook events.
//!
//! The models (and the [`Error`] type) compile without the default `client` feature, so crates
//! that only need the wire types do not pull in an HTTP stack.

pub mod error;
pub mod id;
pub mod model;
pub mod page;
pub mod time;
pub mod usage;
pub mod webhook;

pub use error::{Error, ErrorKind};
pub use page::Page;
