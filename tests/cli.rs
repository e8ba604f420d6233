//! The built binary: every exit code of PRODUCT.md, and messages a user can act on.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{TempDir, only_report_dir, report_json, squall};

/// A tiny, fast scenario on the built-in server; `extra` is appended verbatim.
fn tiny(extra: &str) -> String {
    format!(
        "name: tiny\nseed: 3\nduration: 2s\nclients: {{ count: 5 }}\nmessages: {{ rate: 10/s, size: 32B }}\n{extra}"
    )
}

#[test]
fn help_and_version_exit_0() {
    let out = squall(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        ["run", "validate", "serve", "Exit codes"]
            .iter()
            .all(|w| text.contains(w)),
        "{text}"
    );
    assert_eq!(squall(&["--version"]).status.code(), Some(0));
}

#[test]
fn unknown_command_and_bad_flags_exit_2() {
    assert_eq!(squall(&["fly"]).status.code(), Some(2));
    assert_eq!(squall(&["run"]).status.code(), Some(2));
    let out = squall(&["run", "scenarios/quickstart.yaml", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
}

#[test]
fn validate_accepts_the_quickstart() {
    let out = squall(&["validate", "scenarios/quickstart.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_names_a_misspelled_key_with_line_column_and_suggestion() {
    let dir = TempDir::new("cli-typo");
    let path = dir.write("typo.yaml", "name: typo\nclients:\n  cuont: 10\n");
    let out = squall(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:3", path.display())), "{err}");
    assert!(err.contains("cuont") && err.contains("count"), "{err}");
}

#[test]
fn missing_or_garbage_scenario_exits_2() {
    assert_eq!(
        squall(&["run", "does/not/exist.yaml"]).status.code(),
        Some(2)
    );
    let dir = TempDir::new("cli-garbage");
    let path = dir.0.join("garbage.yaml");
    std::fs::write(&path, [0xffu8, 0xfe, 0x00, 0x12, 0x80]).unwrap();
    let out = squall(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_run_whose_thresholds_hold_exits_0_and_prints_the_report_path() {
    let dir = TempDir::new("cli-pass");
    let path = dir.write(
        "pass.yaml",
        &tiny("thresholds:\n  messages_lost: [\"count == 0\"]\n"),
    );
    let out = squall(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = only_report_dir(dir.path());
    assert!(
        stdout.contains(&report.join("report.json").display().to_string()),
        "{stdout}"
    );
    assert_eq!(report_json(&report)["verdict"], "pass");
}

#[test]
fn a_run_whose_threshold_cannot_hold_exits_1_naming_it() {
    let dir = TempDir::new("cli-fail");
    let path = dir.write(
        "fail.yaml",
        &tiny("thresholds:\n  messages_delivered: [\"count > 1000000\"]\n"),
    );
    let out = squall(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = report_json(&only_report_dir(dir.path()));
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["thresholds"][0]["ok"], false);
    let out = squall(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("messages_delivered"));
}

#[test]
fn an_unreachable_target_exits_3_with_a_report() {
    let dir = TempDir::new("cli-unreachable");
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.write(
        "down.yaml",
        &tiny(&format!(
            "target: {{ url: \"ws://127.0.0.1:{port}/ws\", protocol: echo }}\n"
        )),
    );
    let out = squall(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = report_json(&only_report_dir(dir.path()));
    assert_eq!(report["run"]["status"], "failed");
    assert!(
        report["run"]["error"]
            .as_str()
            .unwrap()
            .contains(&port.to_string())
    );
}

#[test]
fn sigint_mid_run_exits_130_with_an_interrupted_report() {
    let dir = TempDir::new("cli-sigint");
    let text = tiny("").replace("duration: 2s", "duration: 60s");
    let path = dir.write("long.yaml", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "squall did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let report = report_json(&only_report_dir(dir.path()));
    assert_eq!(report["run"]["interrupted"], true);
    assert_eq!(report["verdict"], "fail");
    assert!(report["counters"]["messages_sent"].as_u64().unwrap() > 0);
}

#[test]
fn junit_names_the_failed_threshold_and_squall_report_renders_again_byte_for_byte() {
    let dir = TempDir::new("cli-report");
    let text = tiny(
        "thresholds:\n  messages_lost: [\"count == 0\"]\n  messages_delivered: [\"count > 1000000\"]\nreport: { formats: [json, md, junit] }\n",
    );
    let path = dir.write("gate.yaml", &text);
    let out = squall(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let run_dir = only_report_dir(dir.path());
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"1\""), "{junit}");
    assert!(
        junit.contains("name=\"messages_delivered: count &gt; 1000000\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"count &gt; 1000000 failed: measured"),
        "{junit}"
    );

    let json = run_dir.join("report.json");
    let md = squall(&["report", json.to_str().unwrap(), "--format", "md"]);
    assert_eq!(md.status.code(), Some(0));
    assert_eq!(
        md.stdout,
        std::fs::read(run_dir.join("report.md")).unwrap(),
        "report.md reproduced exactly"
    );
    let again = dir.0.join("again.xml");
    let out = squall(&[
        "report",
        json.to_str().unwrap(),
        "--format",
        "junit",
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(again).unwrap(), junit);

    let bogus = dir.write("bogus.json", "{\"schema\": \"something else\"}");
    let out = squall(&["report", bogus.to_str().unwrap(), "--format", "md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus.json"));
}

#[test]
fn merging_two_reports_sums_counters_and_histogram_counts_exactly() {
    let dir = TempDir::new("cli-merge");
    let path = dir.write("shard.yaml", &tiny("faults:\n  - { kind: reset, connections: 40%, at: 1s }\nthresholds:\n  messages_lost: [\"count == 0\"]\n"));
    let mut reports = vec![];
    for (i, seed) in ["1", "2"].iter().enumerate() {
        let out_dir = dir.0.join(format!("shard{i}"));
        let out = squall(&[
            "run",
            path.to_str().unwrap(),
            "--seed",
            seed,
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(out.status.code(), Some(0));
        reports.push(only_report_dir(&out_dir).join("report.json"));
    }
    let merged = dir.0.join("merged.json");
    let out = squall(&[
        "merge",
        reports[0].to_str().unwrap(),
        reports[1].to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (a, b, m) = (read(&reports[0]), read(&reports[1]), read(&merged));
    for key in [
        "messages_sent",
        "messages_delivered",
        "disconnects",
        "reconnects",
        "sessions",
    ] {
        let sum = a["counters"][key].as_u64().unwrap() + b["counters"][key].as_u64().unwrap();
        assert_eq!(m["counters"][key].as_u64().unwrap(), sum, "{key}");
    }
    for hist in ["message_rtt", "reconnect_latency"] {
        let sum = a["histograms"][hist]["count"].as_u64().unwrap()
            + b["histograms"][hist]["count"].as_u64().unwrap();
        assert_eq!(
            m["histograms"][hist]["count"].as_u64().unwrap(),
            sum,
            "{hist}"
        );
    }
    assert_eq!(m["verdict"], "pass");
    assert_eq!(m["delivery"]["closes"], true);
    // A report of another scenario does not merge.
    let other = dir.write("other.yaml", &tiny("").replace("name: tiny", "name: other"));
    let other_dir = dir.0.join("other");
    squall(&[
        "run",
        other.to_str().unwrap(),
        "--out",
        other_dir.to_str().unwrap(),
        "--quiet",
    ]);
    let other_report = only_report_dir(&other_dir).join("report.json");
    let out = squall(&[
        "merge",
        reports[0].to_str().unwrap(),
        other_report.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn under_github_actions_a_failed_threshold_is_an_error_annotation() {
    let dir = TempDir::new("cli-gha");
    let path = dir.write(
        "gha.yaml",
        &tiny("thresholds:\n  messages_delivered: [\"count > 1000000\"]\n"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error title=squall threshold failed::messages_delivered")),
        "{stdout}"
    );
}
