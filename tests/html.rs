//! `report.html` in a real browser: headless Chromium loads the page a real run wrote,
//! runs its script, and dumps the DOM it leaves. Every chart must have drawn its marks
//! (lines, fault bands, bars) and the page must have logged no error — neither through
//! its own guard (`data-errors` on `<html>`) nor on Chromium's console.
//!
//! Chromium is installed by `.ci/run`; without it the test fails under CI (`CI` set) and
//! is skipped with a note elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TempDir, squall};

/// Two groups (so curves compare), a latency window (a shaded band) and a reset (a line).
const SCENARIO: &str = r#"
name: html-browser
seed: 5
duration: 3s
clients:
  - { name: eager, count: 4, recovery: { backoff: { kind: constant, initial: 50ms } } }
  - { name: patient, count: 4, recovery: { backoff: { kind: exponential, initial: 200ms, max: 1s } } }
messages: { rate: 20/s, size: 64B }
faults:
  - { kind: latency, latency: 20ms, at: 500ms, for: 1s }
  - { kind: reset, connections: 50%, at: 2s }
report: { formats: [json, html] }
"#;

const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_real_runs_report_html_draws_every_chart_without_errors() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = TempDir::new("html");
    let run_dir = run(&dir, SCENARIO);
    let page = run_dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();

    // `squall report` renders the very same page from the JSON alone.
    let json = run_dir.join("report.json");
    let again = squall(&["report", json.to_str().unwrap(), "--format", "html"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        again.stdout,
        html.as_bytes(),
        "report.html reproduced exactly"
    );

    let boxes = chart_ids(&html);
    for id in [
        "timeline",
        "pct-reconnect_latency",
        "pct-message_rtt",
        "bars-retransmits_per_message",
        "errors-class",
        "errors-close",
    ] {
        assert!(boxes.iter().any(|b| b == id), "no {id} chart in {boxes:?}");
    }
    let dom = browse(&chromium, &page, &dir);

    let timeline = svg_of(&dom, "timeline");
    let lines = series(timeline);
    assert_eq!(lines.len(), 8, "one line per timeline series");
    assert!(
        lines.iter().all(|d| d.matches('L').count() >= 2),
        "{lines:?}"
    );
    assert!(
        timeline.contains("class=\"fault-band\""),
        "the latency window is shaded"
    );
    assert!(
        timeline.contains("class=\"fault-band instant\""),
        "the reset is marked"
    );
    assert!(timeline.contains(">latency#0</text>"));

    // Two groups: each percentile chart has the whole run's curve and one per group.
    for id in ["pct-reconnect_latency", "pct-message_rtt"] {
        let curves = series(svg_of(&dom, id));
        assert_eq!(curves.len(), 3, "{id}: {curves:?}");
        assert!(
            curves.iter().all(|d| d.starts_with('M')),
            "{id}: {curves:?}"
        );
    }
    for id in [
        "bars-retransmits_per_message",
        "errors-class",
        "errors-close",
    ] {
        let bars = bars(svg_of(&dom, id));
        assert!(
            bars.iter().any(|h| *h > 0.0),
            "{id}: no bar drawn: {bars:?}"
        );
    }
}

#[test]
fn odd_and_empty_reports_render_notes_without_script_errors() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = TempDir::new("html-odd");
    let tiny = "name: html-odd\nseed: 1\nduration: 1s\nclients: { count: 2 }\n\
                messages: { rate: 5/s, size: 32B }\n";
    let json = run(&dir, tiny).join("report.json");
    let real: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    // Hand-edited: a histogram that does not decode, a gauge below zero, rows out of
    // order, a window that stops before it starts and one left open, an unknown code.
    let mut odd = real.clone();
    odd["histograms"]["message_rtt"]["hdr"] = "not base64 !!".into();
    odd["timeline"] = serde_json::json!([
        { "t": 3, "connected": -2, "connects": 0, "disconnects": 9, "connect_attempts": 0,
          "server_handshakes": 0, "messages_sent": 0, "messages_delivered": 0,
          "retransmits": 0, "active_faults": ["</script>x"] },
        { "t": 0, "connected": 1, "connects": 1, "disconnects": 0, "connect_attempts": 1,
          "server_handshakes": 1, "messages_sent": 5, "messages_delivered": 5,
          "retransmits": 0, "active_faults": [] }
    ]);
    odd["faults"] = serde_json::json!([
        { "fault": 0, "name": "<b>odd</b>", "kind": "blackhole",
          "windows": [[2000000, 1000000], [500000, null]],
          "connections_touched": 1, "actions": {}, "bytes_affected": 0 }
    ]);
    odd["counters"]["errors"]["close_codes"] = serde_json::json!({ "4000": 2, "x": 1 });

    // Empty: nothing measured at all.
    let mut empty = real;
    empty["timeline"] = serde_json::json!([]);
    empty["faults"] = serde_json::json!([]);
    for (_, h) in empty["histograms"].as_object_mut().unwrap() {
        h["count"] = 0.into();
    }

    for (name, report, notes) in [
        ("odd", odd, &["cannot be drawn"][..]),
        ("empty", empty, &["No samples: the timeline is empty"][..]),
    ] {
        let path = dir.write(&format!("{name}.json"), &report.to_string());
        let page = dir.0.join(format!("{name}.html"));
        let out = squall(&[
            "report",
            path.to_str().unwrap(),
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let html = std::fs::read_to_string(&page).unwrap();
        for note in notes {
            assert!(html.contains(note), "{name}: no note {note:?}");
        }
        // `browse` fails on any script error; every box the page has must be drawn.
        let dom = browse(&chromium, &page, &dir);
        for id in chart_ids(&html) {
            svg_of(&dom, &id);
        }
    }
}

/// Runs `scenario` with the built binary; returns its report directory.
fn run(dir: &TempDir, scenario: &str) -> PathBuf {
    crate::support::run_report(dir.path(), scenario)
}

/// Chromium, if installed. Under CI its absence fails the test; elsewhere it is a note.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is not installed, and the report.html test needs it: \
                 `apt-get install -y chromium` (.ci/run does)"
            );
        }
        eprintln!("note: chromium is not installed; skipping the report.html browser test");
    }
    found
}

/// Loads `page` in headless Chromium and returns the DOM once its scripts have run.
/// Fails on a hang, on any console message or uncaught error, and on errors the page's
/// own guard collected.
fn browse(chromium: &Path, page: &Path, scratch: &TempDir) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = scratch.0.join(format!("chromium-profile-{n}"));
    let stdout_path = scratch.0.join(format!("chromium-{n}.out"));
    let stderr_path = scratch.0.join(format!("chromium-{n}.err"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&stdout_path).unwrap();
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "chromium failed ({status}): {log}");
    // The page writes nothing to the console unless something went wrong.
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "the page logged: {console:#?}");
    let head = &dom[..dom.find("<body").expect("a dumped document")];
    assert!(
        !head.contains("data-errors="),
        "the page caught script errors: {head}"
    );
    let drawn = format!("data-charts-drawn=\"{}\"", chart_ids(&dom).len());
    assert!(head.contains(&drawn), "expected {drawn}: {head}");
    dom
}

/// The ids of the chart boxes in a page.
fn chart_ids(html: &str) -> Vec<String> {
    html.split("data-chart=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// The SVG a chart box holds once drawn; fails if the box is empty.
fn svg_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"chart-{id}\"");
    let start = dom.find(&open).unwrap_or_else(|| panic!("no box for {id}"));
    let rest = &dom[start..];
    let end = rest.find("</svg>").unwrap_or(0);
    let svg = &rest[..end];
    assert!(
        svg.contains("<svg") && rest[..rest.find("</div>").unwrap()].contains("<svg"),
        "chart {id} was not drawn: {}",
        &rest[..rest.len().min(300)]
    );
    svg
}

/// Each tag `<name …>` in `svg`, as its text up to `>`.
fn tags<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
    svg.split(&format!("<{name} "))
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = format!(" {tag}").find(&key)? + key.len() - 1;
    let rest = &tag[start..];
    Some(&rest[..rest.find('"')?])
}

/// The `d` of every plotted line (`class="series…"`).
fn series(svg: &str) -> Vec<&str> {
    tags(svg, "path")
        .into_iter()
        .filter(|t| attr(t, "class").is_some_and(|c| c.starts_with("series")))
        .map(|t| attr(t, "d").unwrap_or(""))
        .collect()
}

/// The height of every bar (`class="bar"`).
fn bars(svg: &str) -> Vec<f64> {
    tags(svg, "rect")
        .into_iter()
        .filter(|t| attr(t, "class") == Some("bar"))
        .map(|t| {
            attr(t, "height")
                .and_then(|h| h.parse().ok())
                .unwrap_or(0.0)
        })
        .collect()
}
