//! `squall replay` through the built binary on a real report: the replay passes with equal
//! fault ledgers (in this process, through `--binary`, against a separate `squall serve`
//! with `--target`); two runs of one seed have equal ledgers and another seed does not;
//! a hand-edited report or ledger exits 1 naming the difference; a file that is not a
//! replayable report exits 2 naming it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

use squall::replay::ledger::{self, Ledger, Mode};

use crate::serve::Served;
use crate::support::{TempDir, only_report_dir, report_json, run_in, shared_report, squall};

/// Eight clients, four faults: a latency on a seeded half of the clients, a reset of half
/// the open connections, a probabilistic duplication of messages on another seeded half,
/// and a close of exactly two connections. Each fault acts while every client is
/// connected, so every decision is the seed's alone (docs/replay.md).
const CALM: &str = "name: replay-calm
seed: 42
duration: 4s
clients: { count: 8, connect_rate: 100/s }
messages: { rate: 20/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 50ms, max: 500ms, jitter: full }
faults:
  - { name: slow, kind: latency, latency: 20ms, jitter: 5ms, connections: 50%, at: 500ms, for: 1s }
  - { name: cut, kind: reset, connections: 50%, at: 1800ms }
  - { name: lossy, kind: ws_duplicate, probability: 30%, connections: 50%, at: 2600ms, for: 800ms }
  - { name: pair, kind: close, connections: 2, at: 3500ms }
";

/// The figures of two runs on a machine busy with other tests (the whole suite runs in
/// parallel on two cores) move by more than any gate meant for a quiet machine: message
/// round trips' p90 ten times over, tens of retransmits where there were none. What
/// these tests judge is the replay, not the machine, so they compare with rules loose
/// enough for that; `messages_lost`, `messages_duplicated`, `gave_up` and `unrecovered`
/// still may not rise from zero.
const LOOSE: [&str; 6] = [
    "--latency-floor",
    "1s",
    "--count-floor",
    "50",
    "--max-regression",
    "retransmits_per_message=off",
];

/// The directory of one real report, shared by the tests here (a run takes 4 seconds).
fn original() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| shared_report("replay", CALM))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code (showing both outputs if not) and returns standard output.
fn exited(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

/// `squall replay REPORT --out OUT` plus `flags`.
fn replay(report: &Path, out: &TempDir, flags: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        report.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(&LOOSE);
    args.extend_from_slice(flags);
    squall(&args)
}

fn replay_json(out: &TempDir) -> Value {
    let dir = only_report_dir(out.path());
    serde_json::from_str(&std::fs::read_to_string(dir.join("replay.json")).unwrap()).unwrap()
}

/// The checks every passing replay of [`CALM`] meets: exit 0, the comparison's table,
/// ledgers equal with every fault having acted, the replay's own full report.
fn assert_same(out: &Output, dir: &TempDir) -> Value {
    let stdout = exited(out, 0);
    assert!(stdout.contains("replay: PASS — seed 42"), "{stdout}");
    assert!(
        stdout.contains("ledger: SAME — 4 faults, 4 windows"),
        "{stdout}"
    );
    let j = replay_json(dir);
    assert_eq!(j["verdict"], "pass", "{j:#}");
    assert_eq!(j["ledger"]["verdict"], "same", "{:#}", j["ledger"]);
    assert_eq!(j["ledger"]["differences_total"], 0);
    let faults = j["ledger"]["faults"].as_array().unwrap();
    let names: Vec<&str> = faults
        .iter()
        .map(|f| f["fault"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["slow", "cut", "lossy", "pair"]);
    for f in faults {
        // Equal because both sides acted, not because neither did.
        assert_eq!(f["windows"], serde_json::json!([1, 1]), "{f}");
        assert!(f["acts"][0].as_u64().unwrap() > 0, "{f}");
        // A probabilistic fault's acts are shown, not judged (docs/replay.md).
        if f["probabilistic"] == false {
            assert_eq!(f["acts"][0], f["acts"][1], "{f}");
            assert_eq!(f["clients"][0], f["clients"][1], "{f}");
        }
    }
    assert_eq!(faults[2]["probabilistic"], true);
    // Exactly half of the 8 open connections reset, exactly 2 closed.
    assert_eq!(faults[1]["acts"][0], 4);
    assert_eq!(faults[3]["acts"][0], 2);
    let dir = only_report_dir(dir.path());
    for file in [
        "report.json",
        "report.md",
        "events.jsonl",
        "scenario.yaml",
        "replay.md",
    ] {
        assert!(dir.join(file).is_file(), "no {file} in {}", dir.display());
    }
    let r = report_json(&dir);
    assert_eq!(r["run"]["seed"], 42);
    assert_eq!(r["run"]["status"], "completed");
    let md = std::fs::read_to_string(dir.join("replay.md")).unwrap();
    assert!(md.starts_with("# squall replay: replay-calm"), "{md}");
    assert!(
        md.contains("| cut | reset | 1 = 1 | 4 = 4 | 4 = 4 | 0 → 0 |"),
        "{md}"
    );
    j
}

#[test]
fn a_report_replays_with_the_same_figures_and_the_same_fault_ledger() {
    let out_dir = TempDir::new("replay-same");
    let out = replay(&original().join("report.json"), &out_dir, &[]);
    let j = assert_same(&out, &out_dir);
    let stdout = text(&out.stdout);
    // The comparison is `squall compare`'s, table and all.
    assert!(
        stdout.contains("compare: PASS — no metric regressed"),
        "{stdout}"
    );
    assert!(stdout.contains("Whole run\nmetric"), "{stdout}");
    assert!(stdout.contains("disconnects "), "{stdout}");
    assert!(stdout.contains("Fault ledger (exact"), "{stdout}");
    assert_eq!(j["comparison"]["verdict"], "pass");
    assert_eq!(j["seed"], 42);
}

#[test]
fn another_build_replays_through_binary_and_a_directory_names_the_report() {
    let out_dir = TempDir::new("replay-binary");
    // The report's directory, not its report.json: both name a report.
    let out = replay(
        original(),
        &out_dir,
        &["--binary", env!("CARGO_BIN_EXE_squall"), "--quiet"],
    );
    let j = assert_same(&out, &out_dir);
    assert_eq!(j["binary"], env!("CARGO_BIN_EXE_squall"));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("Whole run"), "--quiet: no table\n{stdout}");
}

#[test]
fn target_replays_against_a_separate_squall_serve() {
    // `squall serve` on a port the OS picks, killed when dropped.
    let served = Served::start(&["--listen", "127.0.0.1:0"]);
    let url = format!("ws://{}/ws", served.addr);
    let out_dir = TempDir::new("replay-target");
    let out = replay(original(), &out_dir, &["--target", &url]);
    let j = assert_same(&out, &out_dir);
    assert_eq!(j["target"], serde_json::json!(["the built-in server", url]));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "note: target switched: the built-in server → {}",
            url
        )),
        "{stdout}"
    );
    let r = report_json(&only_report_dir(out_dir.path()));
    assert_eq!(r["scenario"]["target"]["url"], url.as_str());
    assert_eq!(r["scenario"]["target"]["protocol"], "squall");
    // The clients' handshakes went to the separate server, none to a built-in one.
    assert_eq!(r["counters"]["server_handshakes"], 0, "{}", r["counters"]);
}

/// Runs [`CALM`] with `seed` in this process and reads its fault ledger.
async fn ledger_of_run(seed: u64) -> Ledger {
    let dir = TempDir::new("replay-ledger");
    let scenario = squall::scenario::from_str(CALM, "calm.yaml")
        .unwrap()
        .with_seed(seed);
    let outcome = run_in(&dir, scenario).await;
    Ledger::read(&outcome.dir.join("events.jsonl")).unwrap()
}

/// One fault's acts of one action on one client in one window: (fault, window, client,
/// action, count).
type Act = (String, Option<u32>, Option<u32>, String, u64);

/// The acts of deterministic faults.
fn deterministic(l: &Ledger) -> Vec<Act> {
    l.acts
        .iter()
        .filter(|(k, _)| !ledger::is_probabilistic(&k.fault.kind))
        .map(|(k, a)| {
            (
                k.fault.name.clone(),
                k.window,
                k.client,
                k.action.clone(),
                a.count,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seed_makes_equal_fault_ledgers_and_another_seed_does_not() {
    let a = ledger_of_run(42).await;
    let b = ledger_of_run(42).await;
    let c = ledger_of_run(43).await;

    // Full equality, fault by fault, window by window, client by client.
    assert_eq!(a.windows, b.windows);
    assert_eq!(a.windows.values().sum::<u32>(), 4, "{:?}", a.windows);
    assert_eq!(deterministic(&a), deterministic(&b));
    let reset: Vec<_> = deterministic(&a)
        .into_iter()
        .filter(|t| t.0 == "cut")
        .collect();
    assert_eq!(reset.len(), 4, "half of 8 clients reset: {reset:?}");
    assert!(reset.iter().all(|t| t.1 == Some(0) && t.2.is_some()));
    // The probabilistic fault's acts may differ (on a starved machine a chosen client's
    // link can see too few frames in the window to be hit); they are listed, not judged.
    let same = ledger::compare(&a, &b, Mode::Exact);
    assert_eq!(same.verdict, "same", "{:?}", same.differences);
    assert!(
        same.unjudged.iter().all(|d| d.fault == "lossy"),
        "{:?}",
        same.unjudged
    );

    // Another seed picks other clients, and the comparison says where.
    assert_eq!(a.windows.len(), c.windows.len());
    assert_ne!(deterministic(&a), deterministic(&c));
    let other = ledger::compare(&a, &c, Mode::Exact);
    assert_eq!(other.verdict, "different");
    assert!(other.differences_total > 0);
    let first = &other.differences[0].text;
    assert!(
        first.starts_with("fault `") && first.contains(", window 0, client "),
        "{first}"
    );
}

/// A copy of the original's report directory with `edit` applied to its report.json and
/// `events` to its events.jsonl.
fn edited(
    tag: &str,
    edit: impl FnOnce(&mut Value),
    events: impl FnOnce(String) -> String,
) -> TempDir {
    let dir = TempDir::new(tag);
    let mut report = report_json(original());
    edit(&mut report);
    dir.write(
        "report.json",
        &serde_json::to_string_pretty(&report).unwrap(),
    );
    let log = std::fs::read_to_string(original().join("events.jsonl")).unwrap();
    dir.write("events.jsonl", &events(log));
    dir
}

#[test]
fn a_report_with_another_seed_written_in_exits_1_naming_the_first_difference() {
    let copy = edited(
        "replay-seed",
        |r| {
            r["run"]["seed"] = 43.into();
            r["scenario"]["seed"] = 43.into();
        },
        |log| log,
    );
    let out_dir = TempDir::new("replay-seed-out");
    let out = replay(copy.path(), &out_dir, &[]);
    let stdout = exited(&out, 1);
    assert!(stdout.contains("replay: FAIL — seed 43"), "{stdout}");
    assert!(stdout.contains("ledger: DIFFERENT — "), "{stdout}");
    assert!(stdout.contains("; first: fault `"), "{stdout}");
    assert!(stdout.contains("\ndifferences: "), "{stdout}");
    let j = replay_json(&out_dir);
    assert_eq!(j["ledger"]["verdict"], "different");
    assert!(
        j["ledger"]["differences"][0]["client"].is_u64(),
        "{:#}",
        j["ledger"]
    );
}

#[test]
fn a_tampered_ledger_exits_1_naming_fault_window_and_client() {
    // The first client the reset hit, recorded as client 99 instead.
    let copy = edited(
        "replay-tamper",
        |_| {},
        |log| {
            let mut done = false;
            log.lines()
                .map(|l| {
                    let mut e: Value = serde_json::from_str(l).unwrap();
                    if !done && e["event"] == "fault_touched" && e["name"] == "cut" {
                        e["client"] = 99.into();
                        done = true;
                    }
                    e.to_string() + "\n"
                })
                .collect()
        },
    );
    let out_dir = TempDir::new("replay-tamper-out");
    let out = replay(copy.path(), &out_dir, &[]);
    let stdout = exited(&out, 1);
    assert!(
        stdout.contains(
            "fault `cut` (reset), window 0, client 99: reset ×1 in the original, none in the replay"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("differences: 2"), "{stdout}");
    // The figures themselves still compare equal: the ledger alone failed it.
    assert!(stdout.contains("compare: PASS"), "{stdout}");
}

#[test]
fn a_file_that_is_not_a_replayable_report_exits_2_naming_it() {
    let dir = TempDir::new("replay-bad");
    let good = report_json(original());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = good.clone();
        f(&mut r);
        serde_json::to_string(&r).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "text.json",
            "not json at all".into(),
            "is not a squall report",
        ),
        ("other.json", r#"{"a": 1}"#.into(), "missing field `schema`"),
        (
            "list.json",
            "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]".into(),
            "is not a squall report",
        ),
        (
            "v2.json",
            with(&|r| r["schema"] = "squall.report/v2".into()),
            "schema is \"squall.report/v2\", expected \"squall.report/v1\"",
        ),
        (
            "null.json",
            with(&|r| r["scenario"] = Value::Null),
            "has no embedded scenario (`scenario` is null)",
        ),
        (
            "string.json",
            with(&|r| r["scenario"] = "name: x".into()),
            "has no embedded scenario (`scenario` is a string)",
        ),
        (
            "clients.json",
            with(&|r| r["scenario"]["clients"] = "many".into()),
            "clients.json (its scenario):",
        ),
        (
            "unknown.json",
            with(&|r| r["scenario"]["surprise"] = 1.into()),
            "surprise",
        ),
        (
            "shard.json",
            with(&|r| r["run"]["shard"] = "5/2".into()),
            "run.shard",
        ),
        (
            "seed.json",
            with(&|r| r["run"]["seed"] = (-1).into()),
            "is not a squall report",
        ),
    ];
    let ran = dir.path().join("out");
    for (name, body, says) in &cases {
        let path = dir.write(name, body);
        let out = squall(&[
            "replay",
            path.to_str().unwrap(),
            "--ledger",
            "off",
            "--out",
            ran.to_str().unwrap(),
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!ran.exists(), "{name}: nothing ran, no report directory");
    }
    // A report without its events.jsonl cannot have its fault decisions compared.
    let lone = dir.write("report.json", &with(&|_| {}));
    let out = squall(&["replay", lone.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("events.jsonl: no such file"), "{err}");
    // A broken ledger names its line.
    dir.write("events.jsonl", "{\"event\":\"fault_started\"}\n");
    let out = squall(&["replay", dir.path().to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("events.jsonl:1: not a squall event"), "{err}");
    // Bad flags are bad input before anything runs.
    let out = squall(&[
        "replay",
        original().to_str().unwrap(),
        "--max-regression",
        "reconect_latency=5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `reconnect_latency`?"));
    let out = squall(&[
        "replay",
        original().to_str().unwrap(),
        "--target",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("target.url"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unreachable_target_exits_3_and_compares_no_ledger() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let out_dir = TempDir::new("replay-unreachable");
    let out = replay(original(), &out_dir, &["--target", &url, "--quiet"]);
    let stdout = exited(&out, 3);
    let err = text(&out.stderr);
    assert!(err.contains("error: the replay failed: target"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert!(
        stdout.contains("ledger: not compared (the replay could not run)"),
        "{stdout}"
    );
    // Its report and the comparison are still written.
    let j = replay_json(&out_dir);
    assert_eq!(j["comparison"]["new"]["status"], "failed");
    assert_eq!(j["ledger"]["verdict"], "not compared");
}
