//! Whole runs in-process: the built-in server, the shim with faults, clients with the
//! recovery engine, and the report they produce.

use tokio_util::sync::CancellationToken;

use crate::support::{TempDir, report_json};
use squall::run::{RunOptions, RunStatus};

const RESETS: &str = r#"
name: e2e-resets
seed: 11
duration: 5s
clients: { count: 20, connect_rate: 200/s }
messages: { rate: 10/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 50ms, max: 500ms, jitter: full }
faults:
  - { kind: latency, latency: 20ms, jitter: 5ms, at: 1s, for: 1s }
  - { kind: reset, connections: 50%, at: 2500ms }
thresholds:
  messages_lost: ["count == 0"]
  reconnect_latency: ["p(99) < 3s"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_midway_are_recovered_and_reported() {
    let dir = TempDir::new("e2e");
    let scenario = squall::scenario::from_str(RESETS, "e2e.yaml").unwrap();
    let opts = RunOptions {
        out: Some(dir.path().to_path_buf()),
        live: squall::run::Live::Off,
        ..Default::default()
    };
    let outcome = squall::run::run(scenario, opts, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);

    let r = report_json(&outcome.dir);
    assert_eq!(r["schema"], "squall.report/v1");
    let c = &r["counters"];
    let n = |k: &str| c[k].as_u64().unwrap();
    // 20 clients × ~10 msg/s × ~5 s, minus ramp and phase.
    assert!(n("messages_delivered") > 500, "{c}");
    assert_eq!(n("messages_lost"), 0, "{c}");
    assert_eq!(
        n("messages_sent"),
        n("messages_delivered") + n("messages_lost")
    );
    assert_eq!(r["delivery"]["closes"], true);
    // Exactly half of the 20 connections are reset, and each comes back.
    assert_eq!(n("disconnects"), 10, "{c}");
    assert_eq!(n("reconnects"), 10, "{c}");
    assert_eq!(n("clients_connected_peak"), 20);
    assert_eq!(c["errors"]["connection"].as_u64().unwrap(), 10);
    assert_eq!(r["histograms"]["reconnect_latency"]["count"], 10);
    assert!(r["histograms"]["message_rtt"]["count"].as_u64().unwrap() > 500);
    // The latency fault shows in the round trips: p99 well above loopback's.
    assert!(r["histograms"]["message_rtt"]["p99"].as_u64().unwrap() > 15_000);
    assert_eq!(r["verdict"], "pass", "{}", r["thresholds"]);

    // The ledger names both faults; the reset touched exactly 10 connections.
    let faults = r["faults"].as_array().unwrap();
    let reset = faults.iter().find(|f| f["kind"] == "reset").unwrap();
    assert_eq!(reset["connections_touched"], 10);
    assert!(faults.iter().any(|f| f["kind"] == "latency"));

    let events = std::fs::read_to_string(outcome.dir.join("events.jsonl")).unwrap();
    let reconnected = events
        .lines()
        .filter(|l| l.contains("\"event\":\"reconnected\""))
        .count();
    assert_eq!(reconnected, 10);
    let md = std::fs::read_to_string(outcome.dir.join("report.md")).unwrap();
    assert!(md.starts_with("# squall report: e2e-resets"), "{md}");
    assert!(md.contains("**Verdict: PASS**"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupting_a_run_still_writes_a_report_marked_interrupted() {
    let dir = TempDir::new("e2e-interrupt");
    let text = RESETS.replace("duration: 5s", "duration: 30s");
    let scenario = squall::scenario::from_str(&text, "e2e.yaml").unwrap();
    let opts = RunOptions {
        out: Some(dir.path().to_path_buf()),
        live: squall::run::Live::Off,
        ..Default::default()
    };
    let interrupt = CancellationToken::new();
    let stopper = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        stopper.cancel();
    });
    let started = std::time::Instant::now();
    let outcome = squall::run::run(scenario, opts, interrupt).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(outcome.status, RunStatus::Interrupted);
    let r = report_json(&outcome.dir);
    assert_eq!(r["run"]["interrupted"], true);
    assert_eq!(r["verdict"], "fail");
    assert!(r["counters"]["messages_sent"].as_u64().unwrap() > 0);
    // Counters still close: what was not confirmed when stopped is counted lost.
    assert_eq!(r["delivery"]["closes"], true);
}

/// Which clients each fault touched, from a run's events.jsonl.
fn touched(dir: &std::path::Path) -> std::collections::BTreeSet<(String, u64)> {
    let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "fault_touched")
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["client"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

const CHOOSY: &str = r#"
name: same-seed
seed: 21
duration: 3s
clients: { count: 30, connect_rate: 300/s }
messages: { rate: 5/s, size: 64B }
faults:
  - { name: half, kind: reset, connections: 50%, at: 1s }
  - { name: three, kind: close, connections: 3, at: 1500ms }
  - { name: listed, kind: blackhole, connections: [2, 5, 7], at: 2s, for: 500ms }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_makes_the_same_fault_decisions() {
    let mut ledgers = vec![];
    for seed in [21, 21, 22] {
        let dir = TempDir::new("same-seed");
        let text = CHOOSY.replace("seed: 21", &format!("seed: {seed}"));
        let scenario = squall::scenario::from_str(&text, "same-seed.yaml").unwrap();
        let opts = RunOptions {
            out: Some(dir.path().to_path_buf()),
            live: squall::run::Live::Off,
            ..Default::default()
        };
        let outcome = squall::run::run(scenario, opts, CancellationToken::new())
            .await
            .unwrap();
        let r = report_json(&outcome.dir);
        let faults: Vec<(String, u64)> = r["faults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["connections_touched"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            faults,
            [
                ("half".into(), 15),
                ("three".into(), 3),
                ("listed".into(), 3)
            ],
            "{}",
            r["faults"]
        );
        ledgers.push(touched(&outcome.dir));
    }
    assert_eq!(ledgers[0], ledgers[1], "same seed, same clients chosen");
    assert_ne!(ledgers[0], ledgers[2], "another seed chooses others");
}

/// A repeating fault whose next period falls exactly on the run's end neither fires nor
/// opens in the drain: the report's fault windows are the ones `Window::spans` plans
/// (and scoped thresholds judge), not one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_fires_or_opens_at_the_end_of_the_run() {
    let report = crate::support::run_yaml(
        r#"
name: e2e-timeline-end
duration: 3s
clients: 4
messages: { rate: 5/s }
faults:
  - { name: flaps, kind: reset, at: 1s, every: 1s }
  - { name: slow, kind: latency, latency: 5ms, at: 500ms, for: 200ms, every: 1250ms }
"#,
    )
    .await;
    let windows = |name: &str| {
        report["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no fault {name}: {}", report["faults"]))["windows"]
            .as_array()
            .unwrap()
            .len()
    };
    // Resets at 1 s and 2 s; the one due at 3 s is the drain's, not the run's.
    assert_eq!(windows("flaps"), 2, "{}", report["faults"]);
    // Latency windows at 0.5 s, 1.75 s; the next would open at 3 s.
    assert_eq!(windows("slow"), 2, "{}", report["faults"]);
}
