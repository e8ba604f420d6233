//! `squall compare` through the built binary, on a real report and hand-edited copies of
//! it: a report against itself passes, a clearly worse one fails naming what regressed,
//! and every kind of bad input exits 2.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::{TempDir, shared_report, squall};

/// One real report.json, shared by every test here (a run takes two seconds).
fn base_report() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        shared_report(
            "compare",
            "name: cmp\nseed: 5\nduration: 2s\nclients: { count: 5 }\n\
             messages: { rate: 20/s, size: 32B }\n\
             faults:\n  - { kind: reset, connections: 40%, at: 1s }\n",
        )
        .join("report.json")
    })
}

fn base_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(base_report()).unwrap()).unwrap()
}

/// `report` with `samples` more message round trips of `micros` each, its summary
/// recomputed from the re-encoded histogram as a run would write it.
fn with_slow_messages(mut report: Value, samples: u64, micros: u64) -> Value {
    let hist = &mut report["histograms"]["message_rtt"];
    let mut h = squall::metrics::decode(hist["hdr"].as_str().unwrap()).unwrap();
    h.record_n(micros, samples).unwrap();
    *hist = serde_json::to_value(squall::metrics::Summary::of(&h)).unwrap();
    report
}

fn compare(dir: &TempDir, new: &Value, flags: &[&str]) -> Output {
    let new = dir.write("new.json", &serde_json::to_string_pretty(new).unwrap());
    let mut args = vec![
        "compare",
        base_report().to_str().unwrap(),
        new.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    squall(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_report_against_itself_exits_0() {
    let base = base_report().to_str().unwrap();
    let out = squall(&["compare", base, base]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("compare: PASS"), "{stdout}");
    assert!(stdout.contains("messages_lost"), "{stdout}");
    assert!(stdout.contains("message_rtt.p99"), "{stdout}");
    assert!(!stdout.contains("REGRESSED"), "{stdout}");
}

#[test]
fn a_clearly_worse_report_exits_1_naming_the_regressed_metrics() {
    let dir = TempDir::new("compare-worse");
    let mut worse = with_slow_messages(base_json(), 100, 900_000);
    worse["counters"]["messages_lost"] = 12.into();
    let out = compare(&dir, &worse, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let verdict = stdout.lines().next().unwrap();
    assert!(verdict.starts_with("compare: FAIL — "), "{verdict}");
    assert!(verdict.contains("messages_lost 0 → 12"), "{verdict}");
    assert!(verdict.contains("message_rtt.mean +"), "{verdict}");
    assert!(verdict.contains("message_rtt.p90 +"), "{verdict}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("messages_lost "))
        .unwrap();
    assert!(row.ends_with("REGRESSED"), "{row}");
    let sent = stdout
        .lines()
        .find(|l| l.starts_with("messages_sent "))
        .unwrap();
    assert!(sent.ends_with("info"), "{sent}");

    // Loosened for message_rtt, only the lost messages remain.
    let out = compare(&dir, &worse, &["--max-regression", "message_rtt=off"]);
    assert_eq!(out.status.code(), Some(1));
    let verdict = text(&out.stdout).lines().next().unwrap().to_string();
    assert_eq!(
        verdict,
        "compare: FAIL — 1 metric regressed: messages_lost 0 → 12"
    );

    // For machines: JSON with every row and the regressions.
    let out = compare(&dir, &worse, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "fail");
    let names: Vec<&str> = json["regressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"messages_lost"), "{names:?}");
    assert!(names.contains(&"message_rtt.p90"), "{names:?}");
}

#[test]
fn under_github_actions_each_regression_is_an_error_annotation() {
    let dir = TempDir::new("compare-gha");
    let mut worse = base_json();
    worse["counters"]["messages_duplicated"] = 3.into();
    let new = dir.write("new.json", &worse.to_string());
    let md = dir.0.join("compare.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "compare",
            base_report().to_str().unwrap(),
            new.to_str().unwrap(),
            "--format",
            "md",
            "-o",
            md.to_str().unwrap(),
        ])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "::error title=squall compare::cmp regressed: messages_duplicated 0 → 3"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&md).unwrap();
    assert!(
        written.contains("| `messages_duplicated` | 0 | 3 | +3 | – | **REGRESSED** |"),
        "{written}"
    );
}

#[test]
fn reports_of_different_scenarios_exit_2_unless_allowed() {
    let dir = TempDir::new("compare-other");
    let mut other = base_json();
    other["scenario"]["name"] = "other".into();
    other["scenario"]["duration"] = "3s".into();
    let out = compare(&dir, &other, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`cmp`")
            && stderr.contains("`other`")
            && stderr.contains("duration: 2s → 3s"),
        "{stderr}"
    );
    let out = compare(&dir, &other, &["--allow-different-scenarios"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("warning: the reports ran different scenarios"));
    // Another seed is the same scenario.
    let mut reseeded = base_json();
    reseeded["scenario"]["seed"] = 6.into();
    reseeded["run"]["seed"] = 6.into();
    let out = compare(&dir, &reseeded, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("note: seeds differ (base 5, new 6)"));
}

#[test]
fn bad_flags_and_bad_reports_exit_2_with_a_clear_message() {
    let dir = TempDir::new("compare-bad");
    let same = base_json();
    for (flags, expected) in [
        (
            &["--max-regression", "reconect_latency=25"][..],
            "did you mean `reconnect_latency`",
        ),
        (&["--max-regression", "ten"], "`ten` is not a percentage"),
        (&["--max-regression", "-5"], "must be a number ≥ 0"),
        (&["--max-regression", "5", "--max-regression", "7"], "twice"),
    ] {
        let out = compare(&dir, &same, flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    let base = base_report().to_str().unwrap();
    let out = squall(&["compare", base, "does/not/exist.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does/not/exist.json"));
    let garbage = dir.write(
        "garbage.json",
        "{\"schema\": \"squall.report/v1\", \"counters\": 7}",
    );
    let out = squall(&["compare", garbage.to_str().unwrap(), base]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("garbage.json"));
}

#[test]
fn odd_hand_edited_histograms_are_no_data_not_a_crash() {
    let dir = TempDir::new("compare-odd");
    let mut odd = base_json();
    odd["histograms"]["message_rtt"]["hdr"] = "not base64 !!".into();
    odd["histograms"]["downtime"]["count"] = 0.into();
    odd["histograms"]["reconnect_latency"]["p99"] = u64::MAX.into();
    odd["histograms"]
        .as_object_mut()
        .unwrap()
        .remove("detection_latency");
    let out = compare(&dir, &odd, &["--min-samples", "0"]);
    let stdout = text(&out.stdout);
    // The absurd p99 regresses; the rest is shown as it is.
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let line = |metric: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(metric))
            .unwrap_or_else(|| panic!("{metric} in {stdout}"))
            .to_string()
    };
    assert!(line("reconnect_latency.p99 ").ends_with("REGRESSED"));
    assert!(line("downtime.p50 ").ends_with("n/a"));
    assert!(line("detection_latency.p50 ").ends_with("n/a"));
}
