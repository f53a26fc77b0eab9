//! The service's one error type.

use std::fmt;

/// What went wrong, to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (file, environment or flags).
    Config,
    /// The database failed or could not be reached.
    Database,
    /// The token vault failed (key file, sealing, opening).
    Vault,
    /// A file or socket operation failed.
    Io,
    /// The Instagram Graph API refused or could not be reached.
    Graph,
    /// An automation is invalid.
    Automation,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with the current state (e.g. an account owned by another
    /// organization, the last Owner leaving).
    Conflict,
    /// A privacy operation (deletion, export, retention) failed or its input was invalid.
    Privacy,
}

impl ErrorKind {
    /// A short snake_case name, for logs and API answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Database => "database",
            Self::Vault => "vault",
            Self::Io => "io",
            Self::Graph => "graph",
            Self::Automation => "automation",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Privacy => "privacy",
        }
    }
}

/// An error of the reference service: a kind and a message saying what was wrong and what to do.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::new(ErrorKind::Database, format!("database error: {e}"))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::new(
            ErrorKind::Database,
            format!("database migration failed: {e}; check that the database belongs to igdm"),
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("i/o error: {e}"))
    }
}

impl From<privacy_kit::Error> for Error {
    fn from(e: privacy_kit::Error) -> Self {
        use privacy_kit::ErrorKind as K;
        match e.kind() {
            K::NotFound => Self::new(ErrorKind::NotFound, e.to_string()),
            K::Decrypt | K::UnknownKey | K::Format | K::Random => {
                Self::new(ErrorKind::Vault, format!("token vault: {e}"))
            }
            _ => Self::new(ErrorKind::Privacy, format!("privacy: {e}")),
        }
    }
}

impl From<instagram_graph::Error> for Error {
    fn from(e: instagram_graph::Error) -> Self {
        Self::new(ErrorKind::Graph, format!("Graph API: {e}"))
    }
}

impl From<automation_core::Error> for Error {
    fn from(e: automation_core::Error) -> Self {
        Self::new(ErrorKind::Automation, e.to_string())
    }
}

/// The service's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
