//! The only file that talks to the YAML parser.
//!
//! serde_yaml is archived; keeping every call to it here means swapping the parser
//! touches this file alone. It offers two things: [`parse`] into the serde mirror, which
//! reports the first problem with its path and position, and [`locate`], which finds
//! where a path lives in the text so checks run after parsing can still point at a line.
//!
//! The parser's limits are guarded here too, before it is trusted with hostile text:
//! flow collections nested past its recursion limit (`nesting`: libyaml takes time that
//! grows with the square of the depth to find out), and aliases that expand a small file
//! into millions of values ([`value_budget`]). A byte-order mark is not a document.

mod nesting;

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};

use super::defaults::limits;
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
    let text = without_bom(text);
    if let Some(position) = nesting::too_deep(text) {
        return Err(Rejection {
            path: YamlPath::root(),
            position: Some(position),
            message: format!(
                "nests `[` and `{{` more than {} deep; a scenario needs a few levels",
                nesting::MAX_DEPTH
            ),
        });
    }
    count_values(text)?;
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // Broken YAML comes first, whatever the typed pass tripped on; a syntax error is
        // nowhere in the document's tree, so it has no path.
        match serde_yaml::from_str::<IgnoredAny>(text) {
            Err(syntax) => rejection(&syntax, YamlPath::root(), text),
            Ok(_) => {
                let mut rejection = rejection(error.inner(), path_of(error.path()), text);
                if let Some(position) = repeated_key(text, &rejection) {
                    rejection.position = Some(position);
                }
                rejection
            }
        }
    })
}

/// serde_yaml places a duplicate key at its map; point at the key's second appearance.
fn repeated_key(text: &str, rejection: &Rejection) -> Option<Position> {
    let key = rejection.message.strip_prefix("duplicate field `")?;
    let key = key.strip_suffix('`').unwrap_or(key);
    let path = match rejection.path.segments().last() {
        Some(Segment::Key(last)) if last == key => rejection.path.clone(),
        _ => rejection.path.key(key),
    };
    find(text, &path, Anchor::Key, 1)
}

/// A leading byte-order mark, which some editors write: serde_yaml would take what
/// follows it for a second document.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn rejection(error: &serde_yaml::Error, path: YamlPath, text: &str) -> Rejection {
    let shown = error.to_string();
    let mut position = error.location().map(|location| Position {
        line: location.line(),
        column: location.column(),
    });
    // libyaml's reader (a control character, say) gives a byte offset, not a mark.
    if let Some(offset) = reader_offset(&shown) {
        position = Some(position_at(text, offset));
    }
    if shown.contains("more than one document") {
        position = second_document(text);
    }
    let message = bare_message(&shown, &path);
    Rejection {
        path,
        position,
        message,
    }
}

/// The byte offset of `... at position N` (serde_yaml's wording for reader errors).
fn reader_offset(shown: &str) -> Option<usize> {
    let (_, offset) = shown.rsplit_once(" at position ")?;
    offset.parse().ok()
}

/// The line and column (in characters) of byte `offset`.
fn position_at(text: &str, offset: usize) -> Position {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Where a second document starts: the first `---` line after some content.
fn second_document(text: &str) -> Option<Position> {
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        let marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        if marker && content {
            return Some(Position {
                line: i + 1,
                column: 1,
            });
        }
        let trimmed = line.trim();
        let nothing = trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%');
        content |= !(nothing || (marker && line[3..].trim().is_empty()));
    }
    None
}

/// How many values `text` may expand to: the work a document may ask of the parser
/// grows with its length, whatever its aliases say.
fn value_budget(text: &str) -> usize {
    (limits::VALUES_PER_BYTE.saturating_mul(text.len())).clamp(limits::VALUES_MIN, limits::VALUES)
}

/// Counts the values of the document, aliases expanded, and refuses it past its
/// [`value_budget`], or when serde_yaml's own guard against aliases within aliases trips.
/// Any other problem is left to the typed pass to report.
fn count_values(text: &str) -> Result<(), Rejection> {
    let budget = value_budget(text);
    let mut left = budget;
    let Err(error) =
        (Count { left: &mut left }).deserialize(serde_yaml::Deserializer::from_str(text))
    else {
        return Ok(());
    };
    let shown = error.to_string();
    let message = if shown.contains(TOO_MANY) {
        format!(
            "expands to more than {budget} values through its aliases (`*name`); a \
             scenario holds far fewer"
        )
    } else if shown.contains("repetition limit exceeded") {
        "nests aliases (`*name`) within aliases too often to expand them".to_owned()
    } else {
        return Ok(());
    };
    Err(Rejection {
        path: YamlPath::root(),
        position: error.location().map(|location| Position {
            line: location.line(),
            column: location.column(),
        }),
        message,
    })
}

const TOO_MANY: &str = "squall-count: too many values";

/// Visits every value, following aliases, until the budget runs out.
struct Count<'c> {
    left: &'c mut usize,
}

impl Count<'_> {
    fn one<E: de::Error>(&mut self) -> Result<(), E> {
        match self.left.checked_sub(1) {
            Some(left) => {
                *self.left = left;
                Ok(())
            }
            None => Err(E::custom(TOO_MANY)),
        }
    }

    fn again(&mut self) -> Count<'_> {
        Count { left: self.left }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.one()
    }
    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.one()
    }
    fn visit_i128<E: de::Error>(mut self, _: i128) -> Result<(), E> {
        self.one()
    }
    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.one()
    }
    fn visit_u128<E: de::Error>(mut self, _: u128) -> Result<(), E> {
        self.one()
    }
    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.one()
    }
    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.one()
    }
    fn visit_bytes<E: de::Error>(mut self, _: &[u8]) -> Result<(), E> {
        self.one()
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.one()
    }
    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.one()
    }
    fn visit_some<D: de::Deserializer<'de>>(mut self, value: D) -> Result<(), D::Error> {
        self.one()?;
        value.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(mut self, value: D) -> Result<(), D::Error> {
        self.one()?;
        value.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.one()?;
        while seq.next_element_seed(self.again())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.one()?;
        while map.next_key_seed(self.again())?.is_some() {
            map.next_value_seed(self.again())?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag is the variant, the value its content.
        self.one()?;
        let (_, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
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
    if let Some((head, offset)) = message.rsplit_once(" at position ")
        && offset.parse::<usize>().is_ok()
    {
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
    find(text, path, anchor, 0)
}

/// [`locate`], passing over the first `repeats` appearances of the path's last key.
fn find(text: &str, path: &YamlPath, anchor: Anchor, repeats: usize) -> Option<Position> {
    let text = without_bom(text);
    let walk = Walk {
        path: path.segments(),
        anchor,
        repeats,
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
    /// Appearances of the last key to pass over (a key written twice).
    repeats: usize,
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
        let last = rest.is_empty();
        let mut repeats = if last { self.repeats } else { 0 };
        while let Some(key) = map.next_key_seed(Key {
            wanted,
            fail: last && self.anchor == Anchor::Key && repeats == 0,
        })? {
            if key == *wanted && repeats == 0 {
                return map.next_value_seed(Walk {
                    path: rest,
                    anchor: self.anchor,
                    repeats: self.repeats,
                });
            }
            repeats -= usize::from(key == *wanted);
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
            repeats: self.repeats,
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
    fn a_repeated_key_is_placed_where_it_repeats() {
        let text = "name: x\nfaults:\n  - kind: reset\n    at: 1s\n    at: 2s\n";
        let rejection = parse::<crate::scenario::spec::ScenarioSpec>(text).unwrap_err();
        assert_eq!(rejection.position, at(5, 5), "{rejection:?}");
        let text = "name: x\nname: y\n";
        let rejection = parse::<crate::scenario::spec::ScenarioSpec>(text).unwrap_err();
        assert_eq!(rejection.position, at(2, 1), "{rejection:?}");
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
