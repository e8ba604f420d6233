//! Where something is in the scenario file: a path into the document (`faults[1].for`),
//! as errors name it and the locator walks it, and a line/column position.

use std::fmt;

/// One step down the document: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value lives in the scenario file, from the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn parent(&self) -> Option<Self> {
        let (_, parent) = self.0.split_last()?;
        Some(Self(parent.to_vec()))
    }
}

impl FromIterator<Segment> for YamlPath {
    fn from_iter<I: IntoIterator<Item = Segment>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based line and column in the scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Which part of a map entry a position should point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The value (`0s` in `for: 0s`): for values that parsed but are wrong.
    Value,
    /// The key (`for`): for keys that should not be there, or are missing.
    Key,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_the_yaml_reads() {
        let path = YamlPath::root().key("faults").index(1).key("for");
        assert_eq!(path.to_string(), "faults[1].for");
        assert_eq!(path.parent().unwrap().to_string(), "faults[1]");
        assert_eq!(YamlPath::root().to_string(), "");
    }
}
