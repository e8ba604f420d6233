//! Scenario files: the shipped ones validate, the broken ones fail where they say.

use crate::support::root;

#[test]
fn every_shipped_scenario_validates() {
    let mut seen = 0;
    for entry in walk(&root().join("scenarios")) {
        if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if let Err(e) = squall::scenario::load(&entry) {
                panic!("{} does not validate:\n{e}", entry.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no scenarios found");
}

/// Each file's first line is `# expect: <key.path> <line>`.
#[test]
fn every_invalid_scenario_fails_at_its_key_and_line() {
    let dir = root().join("tests/data/invalid");
    let mut checked = 0;
    for path in walk(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
        else {
            continue;
        };
        let mut parts = expect.split_whitespace();
        let (key, line) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse::<usize>().unwrap(),
        );
        let err = squall::scenario::load(&path)
            .expect_err(&format!("{} should not validate", path.display()));
        let shown = err.to_string();
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            shown.starts_with(&prefix),
            "{}: expected line {line}, got: {shown}",
            path.display()
        );
        assert!(
            shown.contains(key),
            "{}: expected key {key}, got: {shown}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} invalid scenarios checked");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
