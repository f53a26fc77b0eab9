//! The one error type of this crate.

use std::fmt;

/// What went wrong with a schema when it was built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaProblem {
    /// Two entities were declared with the same name.
    DuplicateEntity {
        /// The repeated name.
        entity: String,
    },
    /// A relation, subject or field list names an entity that was never declared.
    UnknownEntity {
        /// The undeclared name.
        entity: String,
    },
    /// A relation or anonymization names a field the entity does not declare as personal.
    UnknownField {
        /// The entity.
        entity: String,
        /// The undeclared field.
        field: String,
    },
    /// The relations form a cycle; the path lists the entities on it, first repeated last.
    Cycle {
        /// The entities on the cycle.
        path: Vec<String>,
    },
    /// An entity cannot be reached from any declared subject, so no deletion or export would
    /// ever find its records.
    Unreachable {
        /// The unreachable entity.
        entity: String,
    },
    /// The schema declares no subject at all.
    NoSubject,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateEntity { entity } => {
                write!(f, "entity `{entity}` is declared twice; give each entity one declaration")
            }
            Self::UnknownEntity { entity } => {
                write!(f, "entity `{entity}` is used but never declared; declare it with `entity(...)`")
            }
            Self::UnknownField { entity, field } => write!(
                f,
                "field `{field}` of entity `{entity}` is not declared; add it to the entity's fields"
            ),
            Self::Cycle { path } => write!(
                f,
                "the relations form a cycle ({}); deletion order would be undefined, break the cycle",
                path.join(" -> ")
            ),
            Self::Unreachable { entity } => write!(
                f,
                "entity `{entity}` is not reachable from any subject; relate it to a subject or declare it as one"
            ),
            Self::NoSubject => write!(f, "the schema declares no subject; declare at least one with `subject(...)`"),
        }
    }
}

/// The category of an [`Error`], to match on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The schema is not valid; the problem says why.
    Schema(SchemaProblem),
    /// An argument or input value was not acceptable (the message says which).
    InvalidInput,
    /// A ciphertext did not decrypt: wrong key, wrong tenant or account, or tampered bytes.
    Decrypt,
    /// A ciphertext names a key id the keyring does not hold.
    UnknownKey,
    /// A ciphertext is not in a format this version understands.
    Format,
    /// The operating system's random number generator failed.
    Random,
    /// The store reported a failure.
    Store,
    /// A record, receipt or other item was not found.
    NotFound,
    /// An export bundle is malformed or does not match its manifest.
    Bundle,
    /// Reading or writing bytes failed.
    Io,
    /// A deletion cannot proceed because a restriction (for example a legal hold) forbids it.
    Restricted,
}

/// The error type of `privacy-kit`: a [`kind`](Error::kind) to match on and a message that says
/// what was wrong and what to do. Messages never contain secret values.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches an underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The category of this error.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn schema(problem: SchemaProblem) -> Self {
        let message = problem.to_string();
        Self::new(ErrorKind::Schema(problem), message)
    }

    pub(crate) fn bundle(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Bundle, message)
    }

    /// A store failure; for implementors of the store traits.
    pub fn store(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Store, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("i/o failed: {e}")).with_source(e)
    }
}

impl From<zip::result::ZipError> for Error {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(io) => io.into(),
            other => {
                Self::bundle(format!("the zip archive is not valid: {other}")).with_source(other)
            }
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
