//! Why a scenario was refused, worded for the person who wrote it:
//! `scenarios/x.yaml:14:7: faults[1].for: must be > 0 (got 0s)`.

use std::fmt;

use super::path::Position;

/// A scenario that cannot be run as written. Every variant is bad input (exit code 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// The file itself: unreadable, not UTF-8, empty, too large.
    #[error("{origin}: {reason}")]
    File { origin: String, reason: String },
    /// A problem at a place in the scenario: a syntax error, an unknown key, a bad value.
    #[error("{}", Located { origin, position: *position, path, message })]
    Invalid {
        /// The file name, or the command-line flag for overrides (`--clients`).
        origin: String,
        position: Option<Position>,
        /// The YAML path (`faults[1].for`); empty for syntax errors.
        path: String,
        message: String,
    },
}

struct Located<'a> {
    origin: &'a str,
    position: Option<Position>,
    path: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.origin)?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ScenarioError {
    pub(crate) fn file(origin: &str, reason: impl Into<String>) -> Self {
        Self::File {
            origin: origin.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(
        origin: &str,
        position: Option<Position>,
        path: impl fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            origin: origin.to_owned(),
            position,
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The file name (or flag) the error is about.
    pub fn origin(&self) -> &str {
        match self {
            Self::File { origin, .. } | Self::Invalid { origin, .. } => origin,
        }
    }

    /// 1-based line of the offending key or value, when known.
    pub fn line(&self) -> Option<usize> {
        self.position().map(|position| position.line)
    }

    /// 1-based column of the offending key or value, when known.
    pub fn column(&self) -> Option<usize> {
        self.position().map(|position| position.column)
    }

    pub fn position(&self) -> Option<Position> {
        match self {
            Self::Invalid { position, .. } => *position,
            Self::File { .. } => None,
        }
    }

    /// The YAML path of the offending key or value (`faults[1].for`), when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } if !path.is_empty() => Some(path),
            _ => None,
        }
    }

    /// What is wrong, without the place.
    pub fn message(&self) -> &str {
        match self {
            Self::File { reason, .. } => reason,
            Self::Invalid { message, .. } => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_column_path_message() {
        let position = Some(Position {
            line: 14,
            column: 7,
        });
        let error = ScenarioError::invalid(
            "scenarios/x.yaml",
            position,
            "faults[1].for",
            "must be > 0 (got 0s)",
        );
        assert_eq!(
            error.to_string(),
            "scenarios/x.yaml:14:7: faults[1].for: must be > 0 (got 0s)"
        );
        assert_eq!((error.line(), error.column()), (Some(14), Some(7)));
        assert_eq!(error.path(), Some("faults[1].for"));

        let error = ScenarioError::invalid("x.yaml", position, "", "did not find expected key");
        assert_eq!(error.to_string(), "x.yaml:14:7: did not find expected key");
        assert_eq!(error.path(), None);

        let error = ScenarioError::invalid("--clients", None, "", "must be >= 1 (got 0)");
        assert_eq!(error.to_string(), "--clients: must be >= 1 (got 0)");
    }
}
