//! The crate's error type.
//!
//! Stand-in with the minimal contract the webhook model relies on; the full error taxonomy of the
//! HTTP client replaces this file.

use std::fmt;

/// An error of this crate. Match on [`Error::kind`].
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A body could not be decoded into the expected shape.
    Decode {
        /// Where in the body decoding failed (e.g. `entry[0].messaging[1].timestamp`).
        path: String,
        /// The body (or the part of it) that failed to decode.
        body: String,
    },
}

impl Error {
    /// A decode error at `path` of `body`, with a message saying what was wrong.
    pub fn decode(
        path: impl Into<String>,
        body: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            kind: ErrorKind::Decode {
                path: path.into(),
                body: body.into(),
            },
            message: message.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Decode { path, .. } if !path.is_empty() && path != "." => {
                write!(
                    f,
                    "could not decode the response at `{path}`: {}",
                    self.message
                )
            }
            ErrorKind::Decode { .. } => {
                write!(f, "could not decode the response: {}", self.message)
            }
        }
    }
}

impl std::error::Error for Error {}
