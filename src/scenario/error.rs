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
            path: shorten(&path.to_string()),
            message: shorten(&message.into()),
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

/// Longest run of non-blank characters quoted in full. A message quotes what the file
/// says, and a file may say 300,000 nines; the position tells where, the ends tell which.
const MAX_WORD: usize = 80;

/// `text` with each overlong word cut in its middle.
fn shorten(text: &str) -> String {
    if text.len() <= MAX_WORD {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(4 * MAX_WORD));
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let chars = word.chars().count();
        if chars > MAX_WORD {
            let head: String = word.chars().take(MAX_WORD / 2).collect();
            let tail: String = word.chars().skip(chars - MAX_WORD / 4).collect();
            let left_out = chars - MAX_WORD / 2 - MAX_WORD / 4;
            out.push_str(&format!("{head}…[{left_out} characters]…{tail}"));
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_words_are_cut_in_the_middle() {
        let nines = "9".repeat(300_000);
        let error = ScenarioError::invalid(
            "x.yaml",
            None,
            "duration",
            format!("is too large (got {nines}s)"),
        );
        let shown = error.to_string();
        assert!(shown.len() < 200, "{shown}");
        assert!(
            shown.starts_with("x.yaml: duration: is too large (got 9999"),
            "{shown}"
        );
        assert!(shown.contains("…[299942 characters]…"), "{shown}");
        assert!(shown.ends_with("99999s)"), "{shown}");
        let kinds = "unknown value `x` (expected one of: latency, bandwidth, slicer)";
        assert_eq!(shorten(kinds), kinds);
        assert_eq!(
            shorten(&format!("  a {} b", "é".repeat(100))),
            format!(
                "  a {}…[40 characters]…{} b",
                "é".repeat(40),
                "é".repeat(20)
            )
        );
    }

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
