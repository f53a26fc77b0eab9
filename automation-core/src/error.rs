//! The one error type of this crate.

use std::fmt;

/// What kind of failure an [`Error`] is; match on this rather than on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A rules or flows file could not be parsed (JSON or TOML syntax, unknown field type, ...).
    Parse,
    /// A rule is invalid (empty keyword, bad regex, missing account, duplicate id, ...).
    InvalidRule,
    /// A template is invalid (bad syntax, unknown variable, too long after worst-case expansion).
    InvalidTemplate,
    /// A flow is invalid (unknown step reference, too many buttons, ...).
    InvalidFlow,
    /// A storage backend failed.
    Store,
}

/// An error of `automation-core`: a kind, a message saying what was wrong and what to do, and
/// where it was found (rule, field, line and column) when that is known.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    rule: Option<String>,
    field: Option<String>,
    position: Option<(usize, usize)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            rule: None,
            field: None,
            position: None,
            source: None,
        }
    }

    /// A storage error wrapping the backend's own error.
    pub fn store(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut e = Self::new(
            ErrorKind::Store,
            format!("storage backend failed: {source}"),
        );
        e.source = Some(Box::new(source));
        e
    }

    /// Attaches the id of the rule (or flow) the error was found in.
    #[must_use]
    pub fn in_rule(mut self, rule: impl Into<String>) -> Self {
        if self.rule.is_none() {
            self.rule = Some(rule.into());
        }
        self
    }

    /// Attaches the path of the field the error was found in (prefixing any path already set).
    #[must_use]
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = Some(match self.field.take() {
            Some(inner) if inner.starts_with('[') => format!("{field}{inner}"),
            Some(inner) => format!("{field}.{inner}"),
            None => field,
        });
        self
    }

    /// Attaches a 1-based line and column.
    #[must_use]
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.position = Some((line, column));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id of the rule or flow the error was found in, if known.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// The path of the field the error was found in (for example `actions[0].text`), if known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The 1-based line and column (inside the file or template), if known.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(rule) = &self.rule {
            parts.push(format!("`{rule}`"));
        }
        if let Some(field) = &self.field {
            parts.push(field.clone());
        }
        if let Some((line, column)) = self.position {
            // inside a rule, a template position is relative to the template text
            let what = if self.kind == ErrorKind::InvalidTemplate && self.field.is_some() {
                "template line"
            } else {
                "line"
            };
            parts.push(format!("{what} {line}, column {column}"));
        }
        if parts.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
