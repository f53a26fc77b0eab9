//! A typed async client for the Instagram Platform, and the typed model of its webhook events.

pub mod error;
pub mod id;
pub mod time;

pub use error::{Error, ErrorKind};
pub mod webhook;
