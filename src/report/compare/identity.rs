//! Whether two reports ran the same scenario: their normalized scenarios (every default
//! spelled out) compared key by key, apart from what does not change what was measured.

use serde_json::Value;

/// Top-level scenario keys that do not change what a run measures: the seed (two seeds
/// of one scenario are the usual way to see its noise), where and how the report is
/// written, and the thresholds judged on it.
pub const IGNORED_KEYS: [&str; 3] = ["seed", "report", "thresholds"];

/// How many differences an error message lists before "and N more".
const SHOWN: usize = 6;

/// Every place where the two scenarios differ, as `path: base → new`, ignoring
/// [`IGNORED_KEYS`]; empty when they ran the same scenario.
pub fn differences(base: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match (base, new) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if IGNORED_KEYS.contains(&key.as_str()) {
                    continue;
                }
                walk(key, a.get(key), b.get(key), &mut out);
            }
        }
        _ => walk("scenario", Some(base), Some(new), &mut out),
    }
    out
}

/// Both scenario names as a message says them: base `a`, new `b`; or both `a`.
pub fn names(base: &str, new: &str) -> String {
    if base == new {
        format!("both `{base}`")
    } else {
        format!("base `{base}`, new `{new}`")
    }
}

/// The differences in a sentence: the first few, then how many more.
pub fn summarize(differences: &[String]) -> String {
    let mut text = differences
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if differences.len() > SHOWN {
        text += &format!("; and {} more", differences.len() - SHOWN);
    }
    text
}

fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                walk(&format!("{path}.{key}"), x.get(key), y.get(key), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (Some(x), Some(y)) if x == y => {}
        (Some(x), Some(y)) => out.push(format!("{path}: {} → {}", show(x), show(y))),
        (Some(_), None) => out.push(format!("{path}: only in base")),
        (None, Some(_)) => out.push(format!("{path}: only in new")),
        (None, None) => {}
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => "{…}".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_scenario_with_another_seed_or_report_dir_is_the_same() {
        let a = json!({"name": "x", "seed": 1, "duration": "2s", "report": {"dir": "a"},
                       "thresholds": {"messages_lost": ["count == 0"]}});
        let b = json!({"name": "x", "seed": 2, "duration": "2s", "report": {"dir": "b"}});
        assert!(differences(&a, &b).is_empty());
    }

    #[test]
    fn each_difference_is_named_by_its_path() {
        let a = json!({"name": "x", "duration": "2s", "clients": {"count": 5},
                       "faults": [{"kind": "reset"}]});
        let b = json!({"name": "y", "duration": "2s", "clients": {"count": 10},
                       "faults": [{"kind": "reset"}, {"kind": "partition"}], "extra": 1});
        assert_eq!(
            differences(&a, &b),
            [
                "name: x → y",
                "clients.count: 5 → 10",
                "faults[1]: only in new",
                "extra: only in new"
            ]
        );
    }

    #[test]
    fn names_are_said_once_when_equal() {
        assert_eq!(names("a", "b"), "base `a`, new `b`");
        assert_eq!(names("a", "a"), "both `a`");
    }

    #[test]
    fn a_long_list_is_cut_short() {
        let many: Vec<String> = (0..9).map(|i| format!("k{i}: 1 → 2")).collect();
        let text = summarize(&many);
        assert!(text.ends_with("; and 3 more"), "{text}");
        assert!(text.starts_with("k0: 1 → 2; k1"), "{text}");
    }

    #[test]
    fn odd_scenario_values_still_compare() {
        assert_eq!(
            differences(&json!(null), &json!([1])),
            ["scenario: null → {…}"]
        );
        assert!(differences(&json!({}), &json!({})).is_empty());
    }
}
