//! serde's messages, rewritten in the scenario's words: unknown keys and values get a
//! "did you mean", type mismatches say what was expected and what was got.
//!
//! serde's wording is stable and parser-independent (it comes from `serde::de::Error`),
//! so matching on it here does not tie this file to the YAML parser.

use super::path::{Segment, YamlPath};

/// Longest word a suggestion is looked for: the string metrics cost the product of the
/// lengths, and nothing this long is a typo of a key.
const MAX_SUGGESTED: usize = 64;

/// The closest candidate to a misspelling, when close enough to be worth suggesting.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    if word.len() > MAX_SUGGESTED {
        return None;
    }
    let word = word.to_lowercase();
    candidates
        .iter()
        .map(|candidate| {
            let score = strsim::normalized_damerau_levenshtein(&word, candidate)
                .max(strsim::jaro_winkler(&word, candidate) - 0.2);
            (score, *candidate)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// `unknown key; did you mean `count`? (expected one of: count, stages, ...)`
pub fn unknown(what: &str, word: &str, candidates: &[&str]) -> String {
    let mut message = format!("unknown {what}");
    if let Some(best) = suggest(word, candidates) {
        message += &format!("; did you mean `{best}`?");
    }
    match candidates {
        [] => message + " (this map takes no keys)",
        _ => message + &format!(" (expected one of: {})", candidates.join(", ")),
    }
}

/// Rewrites a deserialization message; the path ends at the key a key error is about.
pub fn rewrite(path: YamlPath, message: &str) -> (YamlPath, String) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (word, candidates) = word_and_candidates(rest);
        let message = match word.as_str() {
            // YAML 1.1's merge key, which many CI files use; serde_yaml does not merge.
            "<<" => "merge keys (`<<: *anchor`) are not supported; write the keys out".into(),
            _ => unknown("key", &word, &refs(&candidates)),
        };
        return (ending_with(path, &word), message);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (word, candidates) = word_and_candidates(rest);
        let message = unknown(&format!("value `{word}`"), &word, &refs(&candidates));
        return (path, message);
    }
    if let Some(word) = quoted(message, "duplicate field `") {
        return (ending_with(path, &word), "appears twice in this map".into());
    }
    if let Some(word) = quoted(message, "missing field `") {
        return (ending_with(path, &word), "is required".into());
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((got, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            return (path, mismatch(got, expected));
        }
    }
    if message.contains("more than one document") {
        return (
            path,
            "holds more than one YAML document (`---`); a scenario is one".into(),
        );
    }
    (path, message.to_owned())
}

/// Whether the parser's path already went into the key depends on when the error was
/// raised; make sure it ends there once.
fn ending_with(path: YamlPath, key: &str) -> YamlPath {
    match path.segments().last() {
        Some(Segment::Key(last)) if last == key => path,
        _ => path.key(key),
    }
}

fn refs(words: &[String]) -> Vec<&str> {
    words.iter().map(String::as_str).collect()
}

/// From "x`, expected one of `a`, `b`" (what follows "unknown field `"): x and [a, b].
fn word_and_candidates(rest: &str) -> (String, Vec<String>) {
    let (word, expected) = match rest.rfind("`, expected ") {
        Some(end) => (&rest[..end], &rest[end + 2..]),
        None => match rest.rfind("`, there are no") {
            Some(end) => (&rest[..end], ""),
            None => (rest.trim_end_matches('`'), ""),
        },
    };
    let candidates = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (word.to_owned(), candidates)
}

fn quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest.strip_suffix('`').unwrap_or(rest).to_owned())
}

/// `expected a whole number (got "ten")`, `must not be negative (got -5)`, or
/// `is too large (got 99999999999999999999)`.
fn mismatch(got: &str, expected: &str) -> String {
    let got = describe_got(got);
    if is_integer_type(expected) {
        if got.starts_with('-') {
            return format!("must not be negative (got {got})");
        }
        // Past u64 the parser hands over a u128 or, past that, a float, which serde
        // writes out in full (`1e44` as 1000…0.0).
        match got.parse::<f64>() {
            Ok(n) if n >= u64::MAX as f64 && got.contains('.') => {
                return format!("is too large (got {n:e})");
            }
            Ok(n) if n >= u64::MAX as f64 => return format!("is too large (got {got})"),
            _ => {}
        }
    }
    format!("expected {} (got {got})", describe_expected(expected))
}

fn is_integer_type(expected: &str) -> bool {
    matches!(expected, "u8" | "u16" | "u32" | "u64" | "usize")
}

fn describe_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a string" => "text".into(),
        "field identifier" => "a key name".into(),
        _ if expected.starts_with("struct ") => "a map".into(),
        _ if expected.starts_with("enum ") || expected.starts_with("unit variant") => {
            "one of the listed words".into()
        }
        _ => expected.into(),
    }
}

/// serde's `integer `5``, `string "x"`, `map` as a reader would say them.
fn describe_got(got: &str) -> String {
    // A number too large for 64 bits comes as `integer `N` as u128` (or i128).
    let got = got
        .strip_suffix(" as u128")
        .or_else(|| got.strip_suffix(" as i128"))
        .unwrap_or(got);
    let backticked = |prefix: &str| {
        got.strip_prefix(prefix)
            .map(|rest| rest.trim_matches('`').to_owned())
    };
    if let Some(value) = backticked("integer ")
        .or_else(|| backticked("floating point "))
        .or_else(|| backticked("boolean "))
        .or_else(|| backticked("char "))
    {
        return value;
    }
    if let Some(text) = got.strip_prefix("string ") {
        return text.to_owned();
    }
    match got {
        "map" => "a map".into(),
        "sequence" => "a list".into(),
        "unit value" | "unit" => "nothing".into(),
        // serde_yaml reads a tagged value (`!custom 5`) as an enum.
        "enum" => "a value with a `!tag`".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP_KEYS: &[&str] = &[
        "name",
        "count",
        "stages",
        "connect_rate",
        "messages",
        "recovery",
    ];

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(suggest("cuont", GROUP_KEYS), Some("count"));
        assert_eq!(suggest("conect_rate", GROUP_KEYS), Some("connect_rate"));
        assert_eq!(suggest("Count", GROUP_KEYS), Some("count"));
        assert_eq!(suggest("xyz", GROUP_KEYS), None);
        assert_eq!(suggest("banana", GROUP_KEYS), None);
        let long = format!("count{}", "x".repeat(300_000));
        assert_eq!(suggest(&long, GROUP_KEYS), None, "and at once");
        assert_eq!(
            suggest("latncy", &["latency", "bandwidth", "slicer"]),
            Some("latency")
        );
    }

    #[test]
    fn unknown_keys_move_into_the_path() {
        let (path, message) = rewrite(
            YamlPath::root().key("clients"),
            "unknown field `cuont`, expected one of `name`, `count`, `stages`",
        );
        assert_eq!(path.to_string(), "clients.cuont");
        assert_eq!(
            message,
            "unknown key; did you mean `count`? (expected one of: name, count, stages)"
        );
        let (_, message) = rewrite(YamlPath::root(), "unknown field `zzz`, expected `a` or `b`");
        assert_eq!(message, "unknown key (expected one of: a, b)");
        let (_, message) = rewrite(YamlPath::root(), "unknown field `a`, there are no fields");
        assert_eq!(message, "unknown key (this map takes no keys)");
        let (path, message) = rewrite(
            YamlPath::root().key("clients"),
            "unknown field `<<`, expected one of `name`, `count`",
        );
        assert_eq!(path.to_string(), "clients.<<");
        assert!(message.starts_with("merge keys"), "{message}");
    }

    #[test]
    fn unknown_values_suggest() {
        let (path, message) = rewrite(
            YamlPath::root().key("kind"),
            "unknown variant `strem`, expected `echo` or `stream`",
        );
        assert_eq!(path.to_string(), "kind");
        assert_eq!(
            message,
            "unknown value `strem`; did you mean `stream`? (expected one of: echo, stream)"
        );
    }

    #[test]
    fn mismatches_say_expected_and_got() {
        let rewritten = |message| rewrite(YamlPath::root(), message).1;
        assert_eq!(
            rewritten("invalid value: integer `-5`, expected u64"),
            "must not be negative (got -5)"
        );
        assert_eq!(
            rewritten("invalid type: string \"ten\", expected u64"),
            "expected a whole number (got \"ten\")"
        );
        assert_eq!(
            rewritten("invalid type: sequence, expected struct GroupSpec"),
            "expected a map (got a list)"
        );
        assert_eq!(
            rewritten("invalid type: map, expected a duration like 5s"),
            "expected a duration like 5s (got a map)"
        );
    }

    #[test]
    fn numbers_past_64_bits_are_too_large_not_a_type_error() {
        let rewritten = |message| rewrite(YamlPath::root(), message).1;
        assert_eq!(
            rewritten("invalid type: integer `18446744073709551616` as u128, expected u64"),
            "is too large (got 18446744073709551616)"
        );
        assert_eq!(
            rewritten("invalid type: integer `-99999999999999999999` as i128, expected u64"),
            "must not be negative (got -99999999999999999999)"
        );
        assert_eq!(
            rewritten(
                "invalid type: floating point `100000000000000000000000000000000000000000000.0`, expected u64"
            ),
            "is too large (got 1e44)"
        );
        assert_eq!(
            rewritten("invalid type: floating point `5.5`, expected u64"),
            "expected a whole number (got 5.5)"
        );
        assert_eq!(
            rewritten("invalid type: integer `18446744073709551616` as u128, expected a count"),
            "expected a count (got 18446744073709551616)"
        );
    }

    #[test]
    fn tags_and_non_text_keys_are_named() {
        let rewritten = |message| rewrite(YamlPath::root(), message).1;
        assert_eq!(
            rewritten("invalid type: enum, expected u64"),
            "expected a whole number (got a value with a `!tag`)"
        );
        assert_eq!(
            rewritten("invalid type: sequence, expected field identifier"),
            "expected a key name (got a list)"
        );
    }
}
