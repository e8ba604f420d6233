//! Shards and local workers: slices of one run, each with its own report, merged exactly.

use crate::support::{TempDir, only_report_dir, report_json, squall, squall_run};

const SCENARIO: &str = "name: sharded
seed: 9
duration: 3s
clients: { count: 30, connect_rate: 100/s }
messages: { rate: 10/s, size: 32B }
faults:
  - { kind: reset, connections: 30%, at: 1500ms }
thresholds:
  messages_lost: [\"count == 0\"]
";

fn counter(r: &serde_json::Value, key: &str) -> u64 {
    r["counters"][key].as_u64().unwrap()
}

#[test]
fn three_workers_merged_count_what_one_process_counts() {
    let dir = TempDir::new("shards");
    let path = dir.write("sharded.yaml", SCENARIO);
    let one = TempDir::new("shards-one");
    let out = squall_run(&path, &one, &["--quiet", "--workers", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let single = report_json(&only_report_dir(one.path()));

    let three = TempDir::new("shards-three");
    let out = squall_run(&path, &three, &["--quiet", "--workers", "3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = only_report_dir(three.path());
    let merged = report_json(&run_dir);
    assert_eq!(merged["verdict"], "pass");
    assert!(merged["run"].get("shard").is_none());

    // Every client ran exactly once, in one shard or another.
    assert_eq!(counter(&merged, "sessions"), 30);
    assert_eq!(counter(&merged, "clients_connected_peak"), 30);
    // 30 % of each shard's 10 connections is what 30 % of 30 is.
    assert_eq!(
        counter(&merged, "disconnects"),
        counter(&single, "disconnects")
    );
    assert_eq!(
        counter(&merged, "reconnects"),
        counter(&single, "reconnects")
    );
    // Sends follow each client's seeded schedule; only timer jitter around the end of the
    // run separates the two (a message or so per client at most).
    let (a, b) = (
        counter(&single, "messages_sent"),
        counter(&merged, "messages_sent"),
    );
    assert!(a.abs_diff(b) <= 30, "one process sent {a}, three sent {b}");
    assert_eq!(merged["delivery"]["closes"], true);
    assert_eq!(counter(&merged, "messages_lost"), 0);
    assert_eq!(
        merged["histograms"]["reconnect_latency"]["count"].as_u64(),
        Some(counter(&merged, "reconnects"))
    );

    // The merged report is exactly `squall merge` of the three shard reports.
    let shards: Vec<String> = (0..3)
        .map(|i| {
            let shard = run_dir
                .join("shards")
                .join(i.to_string())
                .join("report.json");
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&shard).unwrap()).unwrap();
            assert_eq!(r["run"]["shard"], format!("{i}/3"));
            assert_eq!(counter(&r, "sessions"), 10);
            shard.display().to_string()
        })
        .collect();
    let again = three.path().join("again.json");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["-o", again.to_str().unwrap()]);
    assert_eq!(squall(&args).status.code(), Some(0));
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(again["counters"], merged["counters"]);
    assert_eq!(again["histograms"], merged["histograms"]);
    // Every shard's events, each marked with its shard.
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    for i in 0..3 {
        assert!(
            events.contains(&format!("\"shard\":\"{i}/3\"")),
            "shard {i}"
        );
    }
}

#[test]
fn a_shard_runs_its_slice_and_exits_0_whatever_its_thresholds() {
    let dir = TempDir::new("shard-one");
    let path = dir.write(
        "slice.yaml",
        &SCENARIO.replace("count == 0", "count == 12345").replace(
            "messages_lost:",
            "messages_lost: [\"count == 0\"]\n  messages_delivered:",
        ),
    );
    let out = squall_run(&path, &dir, &["--quiet", "--shard", "2/3"]);
    assert_eq!(out.status.code(), Some(0));
    let r = report_json(&only_report_dir(dir.path()));
    assert_eq!(r["run"]["shard"], "2/3");
    assert_eq!(counter(&r, "sessions"), 10);
    // The slice's own verdict is kept, for the record; the merge is the gate.
    assert_eq!(r["verdict"], "fail");

    for bad in ["3/3", "1", "a/b", "0/0"] {
        let out = squall_run(&path, &dir, &["--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
    }
    let out = squall_run(&path, &dir, &["--shard", "0/2", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let out = squall_run(&path, &dir, &["--workers", "31"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than the scenario's 30 clients"));
}

#[test]
fn a_worker_that_aborts_stops_the_others_and_the_run_is_aborted() {
    let dir = TempDir::new("shards-abort");
    let path = dir.write(
        "abort.yaml",
        "name: abort-workers
duration: 60s
clients: { count: 6 }
messages: { rate: 10/s, size: 32B }
faults:
  - { kind: reset, at: 1s }
thresholds:
  reconnect_latency: { threshold: \"max < 1ms\", abort_on_fail: true }
",
    );
    let started = std::time::Instant::now();
    let out = squall_run(&path, &dir, &["--quiet", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let r = report_json(&only_report_dir(dir.path()));
    assert_eq!(r["run"]["status"], "aborted");
    assert_eq!(r["verdict"], "fail");
    assert!(
        r["run"]["error"]
            .as_str()
            .unwrap()
            .contains("reconnect_latency"),
        "{}",
        r["run"]
    );
    assert_eq!(r["delivery"]["closes"], true);
}
