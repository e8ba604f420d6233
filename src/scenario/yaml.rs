//! The only file that talks to the YAML parser.
//!
//! serde_yaml is archived; keeping every call to it here means swapping the parser
//! touches this file alone. It offers two things: [`parse`] into the serde mirror, which
//! reports the first problem with its path and position, and [`locate`], which finds
//! where a path lives in the text so checks run after parsing can still point at a line.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};

use super::path::{Anchor, Position, Segment, YamlPath};

/// Why the text did not deserialize, in the parser-neutral words the rest uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Empty for syntax errors, which are not inside any value.
    pub path: YamlPath,
    pub position: Option<Position>,
    /// serde's message (`unknown field ...`, `invalid type: ...`) or the parser's own.
    pub message: String,
}

/// Deserializes one YAML document into `T`.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Rejection> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // Broken YAML comes first, whatever the typed pass tripped on; a syntax error is
        // nowhere in the document's tree, so it has no path.
        match serde_yaml::from_str::<IgnoredAny>(text) {
            Err(syntax) => rejection(&syntax, YamlPath::root()),
            Ok(_) => rejection(error.inner(), path_of(error.path())),
        }
    })
}

fn rejection(error: &serde_yaml::Error, path: YamlPath) -> Rejection {
    let position = error.location().map(|location| Position {
        line: location.line(),
        column: location.column(),
    });
    let message = bare_message(&error.to_string(), &path);
    Rejection {
        path,
        position,
        message,
    }
}

fn path_of(path: &serde_path_to_error::Path) -> YamlPath {
    path.iter()
        .map_while(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(Some(Segment::Index(*index))),
            serde_path_to_error::Segment::Map { key } => Some(Some(Segment::Key(key.clone()))),
            serde_path_to_error::Segment::Enum { .. } => Some(None),
            serde_path_to_error::Segment::Unknown => None,
        })
        .flatten()
        .collect()
}

/// serde_yaml decorates its messages with its own path and the position; both are
/// reported separately, so strip them.
fn bare_message(display: &str, path: &YamlPath) -> String {
    let mut message = display;
    if let Some((head, tail)) = message.split_once(" at line ")
        && is_line_column(tail.split(',').next().unwrap_or(tail))
    {
        // Keep any context after the problem's own position (`, while parsing ...`).
        let rest = tail.find(',').map_or("", |i| &tail[i..]);
        return strip_path(head, path).to_owned() + rest;
    }
    if let Some(head) = message.strip_suffix(" at position 0") {
        message = head;
    }
    strip_path(message, path).to_owned()
}

fn is_line_column(text: &str) -> bool {
    let mut parts = text.split(" column ");
    let digits =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// serde_yaml's path may stop short of ours (it names the map for a key error), so try
/// each ancestor, longest first.
fn strip_path<'a>(message: &'a str, path: &YamlPath) -> &'a str {
    let mut path = Some(path.clone());
    while let Some(candidate) = path {
        if let Some(rest) = message.strip_prefix(format!("{candidate}: ").as_str()) {
            return rest;
        }
        path = candidate.parent();
    }
    message
}

/// Where `path` is in `text`, or `None` when the text has no such node.
///
/// serde_yaml keeps no spans, but stamps the current position on any error raised while
/// it deserializes a node. So walk down the path with a seed and raise an error at the
/// target: the error comes back carrying the target's position.
pub fn locate(text: &str, path: &YamlPath, anchor: Anchor) -> Option<Position> {
    let walk = Walk {
        path: path.segments(),
        anchor,
    };
    let error = walk
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    if !error.to_string().contains(FOUND) {
        return None;
    }
    let location = error.location()?;
    Some(Position {
        line: location.line(),
        column: location.column(),
    })
}

/// The marker error the walk raises at its target; anything else means "not found".
const FOUND: &str = "squall-locate: found";

struct Walk<'p> {
    path: &'p [Segment],
    anchor: Anchor,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            // Raise the marker from inside the parser, so it stamps this node's position.
            deserializer.deserialize_any(Found)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(wanted), rest)) = self.path.split_first() else {
            return skip_map(map);
        };
        let fail_on_key = rest.is_empty() && self.anchor == Anchor::Key;
        while let Some(key) = map.next_key_seed(Key {
            wanted,
            fail: fail_on_key,
        })? {
            if key == *wanted {
                return map.next_value_seed(Walk {
                    path: rest,
                    anchor: self.anchor,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(wanted), rest)) = self.path.split_first() else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let mut index = 0;
        while index < *wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
        seq.next_element_seed(Walk {
            path: rest,
            anchor: self.anchor,
        })?;
        Ok(())
    }

    // A scalar where the path goes on: the path is not in this document.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads a map key as text, failing with the marker when it is the wanted key and the
/// key itself is the target.
struct Key<'p> {
    wanted: &'p str,
    fail: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        if self.fail && key == self.wanted {
            return Err(E::custom(FOUND));
        }
        Ok(key.to_owned())
    }
    fn visit_bool<E: de::Error>(self, key: bool) -> Result<String, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_i64<E: de::Error>(self, key: i64) -> Result<String, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_u64<E: de::Error>(self, key: u64) -> Result<String, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_f64<E: de::Error>(self, key: f64) -> Result<String, E> {
        self.visit_str(&key.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.visit_str("null")
    }
}

/// Fails on whatever node it is given: the node the walk was looking for.
struct Found;

impl<'de> de::Visitor<'de> for Found {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FOUND)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: demo
faults:
  - { kind: latency, latency: 80ms }
  - kind: reset
    for: 0s
thresholds:
  errors.connection: [\"count == 0\"]
";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn locates_values_and_keys() {
        let path = YamlPath::root().key("faults").index(1).key("for");
        assert_eq!(locate(TEXT, &path, Anchor::Value), at(5, 10));
        assert_eq!(locate(TEXT, &path, Anchor::Key), at(5, 5));
        let path = YamlPath::root().key("faults").index(0).key("latency");
        assert_eq!(locate(TEXT, &path, Anchor::Value), at(3, 31));
        assert_eq!(
            locate(TEXT, &YamlPath::root().key("name"), Anchor::Value),
            at(1, 7)
        );
    }

    #[test]
    fn locates_containers_and_keys_with_dots() {
        let faults = YamlPath::root().key("faults");
        assert_eq!(locate(TEXT, &faults.index(1), Anchor::Value), at(4, 5));
        let threshold = YamlPath::root().key("thresholds").key("errors.connection");
        assert_eq!(locate(TEXT, &threshold.index(0), Anchor::Value), at(7, 23));
    }

    #[test]
    fn missing_paths_are_none() {
        let path = YamlPath::root().key("faults").index(7);
        assert_eq!(locate(TEXT, &path, Anchor::Value), None);
        let path = YamlPath::root().key("name").key("deeper");
        assert_eq!(locate(TEXT, &path, Anchor::Value), None);
        assert_eq!(locate("{{{", &path, Anchor::Value), None);
    }

    #[test]
    fn strips_parser_decorations() {
        let path = YamlPath::root().key("clients");
        assert_eq!(
            bare_message("clients: unknown field `x` at line 3 column 3", &path),
            "unknown field `x`"
        );
        assert_eq!(
            bare_message(
                "did not find expected key at line 3 column 1, while parsing a block mapping at line 1 column 1",
                &YamlPath::root()
            ),
            "did not find expected key, while parsing a block mapping at line 1 column 1"
        );
    }
}
