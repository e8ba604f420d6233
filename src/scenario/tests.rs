//! Scenario tests through the public API: defaults, the round trip through JSON, every
//! invalid example under `tests/data/invalid/` and every example under `scenarios/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn parse(text: &str) -> Scenario {
    match from_str(text, "test.yaml") {
        Ok(scenario) => scenario,
        Err(error) => panic!("{error}"),
    }
}

fn refuse(text: &str) -> ScenarioError {
    from_str(text, "test.yaml").expect_err("should be refused")
}

/// PRODUCT.md's example, plus a bit of everything.
const FULL: &str = r#"
name: partition-and-herd
seed: 7
duration: 60s
target:
  builtin: { mode: stream, rate: 10/s, size: 1KiB, max_handshake_rate: 500/s }
clients:
  - name: eager
    count: 2000
    connect_rate: 500/s
    recovery:
      backoff: { kind: constant, initial: 250ms }
      on_error:
        - { close_code: "4000-4499", action: fatal }
        - { http_status: 503, action: retry_after 5s }
        - { class: data, action: retry }
  - name: ramped
    stages:
      - { duration: 10s, target: 100 }
      - { duration: 20s, target: 300 }
      - { duration: 5s, target: 0 }
    messages: { size: { min: 64B, max: 4KiB }, kind: binary }
messages:
  rate: 2/s
  size: 256B
  kind: text
recovery:
  backoff: { kind: exponential, initial: 100ms, max: 10s, jitter: full }
  heartbeat: { interval: 2s, timeout: 4s }
  retransmit: { ack_timeout: 1s, max_in_flight: 256 }
  outbox: { max_messages: 500, max_bytes: 1MiB, overflow: drop_oldest }
  max_attempts: 20
  max_elapsed: 2m
faults:
  - { kind: latency, latency: 80ms, jitter: 40ms, direction: both, at: 5s, for: 20s }
  - { kind: corrupt, probability: 0.0001, at: 10s, for: 5s }
  - { kind: partition, at: 30s, for: 10s }
  - { kind: reset, connections: 25%, at: 45s }
  - { kind: bandwidth, rate: 64KiB/s, direction: downstream, connections: [0, 3, 7] }
  - { kind: slicer, average_size: 128B, connections: 10, at: 1s, for: 2s }
  - { kind: drop, probability: 1%, unit: byte, correlation: 0.5, at: 2s, for: 1s }
  - { kind: duplicate, probability: 0.01, name: dupes, at: 3s, for: 1s }
  - { kind: blackhole, at: 50s, for: 2s, stagger: 1s }
  - { kind: close, at: 20s, every: 5s, for: 20s }
  - { kind: limit_data, bytes: 4KiB, at: 40s }
  - { kind: slow_close, at: 41s }
server:
  - { kind: restart, at: 50s, close_code: 1012, down_for: 2s }
  - { kind: reject_handshakes, at: 52s, for: 3s, status: 429, retry_after: 1s, share: 50% }
  - { kind: close, at: 55s, code: 4001, reason: bye, sessions: 10% }
  - { kind: app_error, at: 56s, sessions: [1, 2] }
  - { kind: stall, at: 57s, for: 1s }
  - { kind: accept_close, at: 58s, for: 1s, code: 1013, reason: at capacity, share: 50% }
thresholds:
  reconnect_latency: ["p(99) < 3s", { threshold: "max <= 10s", abort_on_fail: true }]
  messages_lost: ["count == 0"]
  errors.connection: "rate < 0.5"
report: { dir: out, formats: [md, html, junit] }
"#;

/// Every WebSocket fault kind, with and without its optional parameters.
const WEBSOCKET: &str = r#"
name: websocket-faults
duration: 60s
clients: 10
faults:
  - { kind: ws_drop, probability: 1%, at: 1s, for: 5s }
  - { kind: ws_drop, probability: 0.5, controls: true, direction: upstream, at: 2s, for: 1s }
  - { kind: ws_delay, latency: 200ms, jitter: 50ms, distribution: pareto, at: 3s, for: 5s }
  - { kind: ws_duplicate, probability: 0.01, connections: 25% }
  - { kind: ws_reorder, probability: 5%, at: 10s, for: 10s, every: 20s }
  - { kind: ws_close, code: 1012, reason: restarting, at: 20s, connections: [0, 3] }
  - { kind: ws_close, at: 25s, every: 5s, for: 20s, stagger: 1s }
  - { kind: ws_pong, swallow: true, at: 30s, for: 10s }
  - { kind: ws_pong, delay: 3s, direction: upstream, at: 40s, for: 5s }
  - { kind: ws_invalid_utf8, at: 45s, for: 1s, connections: 1 }
  - { kind: ws_oversize, bytes: 1MiB, at: 50s }
  - { kind: ws_oversize, at: 55s, direction: downstream }
"#;

#[test]
fn websocket_faults_get_their_defaults() {
    let scenario = parse(WEBSOCKET);
    let kinds: Vec<&str> = scenario.faults.iter().map(|f| f.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "ws_drop",
            "ws_drop",
            "ws_delay",
            "ws_duplicate",
            "ws_reorder",
            "ws_close",
            "ws_close",
            "ws_pong",
            "ws_pong",
            "ws_invalid_utf8",
            "ws_oversize",
            "ws_oversize"
        ]
    );
    let f = &scenario.faults;
    assert_eq!(
        f[0].kind,
        NetworkFaultKind::WsDrop {
            probability: 0.01,
            controls: false
        }
    );
    assert_eq!(
        f[6].kind,
        NetworkFaultKind::WsClose {
            code: 1001,
            reason: String::new()
        }
    );
    assert!(f[6].kind.is_instantaneous() && f[10].kind.is_instantaneous());
    assert_eq!(
        f[7].kind,
        NetworkFaultKind::WsPong {
            action: PongAction::Swallow
        }
    );
    assert_eq!(
        f[7].direction,
        Direction::Downstream,
        "pongs: downstream by default"
    );
    assert_eq!(f[8].direction, Direction::Upstream);
    assert_eq!(f[0].direction, Direction::Both);
    assert_eq!(
        f[9].kind,
        NetworkFaultKind::WsInvalidUtf8 { probability: 1.0 }
    );
    assert_eq!(f[11].kind, NetworkFaultKind::WsOversize { bytes: 16 << 20 });
    assert!(f.iter().all(|f| f.kind.is_websocket()));
}

#[test]
fn websocket_faults_are_refused_precisely() {
    let fault =
        |line: &str| refuse(&format!("name: x\nclients: 5\nfaults:\n  - {line}\n")).to_string();
    assert_eq!(
        fault("{ kind: ws_close, code: 1006 }"),
        "test.yaml:4:29: faults[0].code: expected a close code a close frame may carry: 1000-1003, 1007-1014 or 3000-4999 (got 1006)"
    );
    assert!(
        fault("{ kind: ws_pong }")
            .contains("faults[0].delay: is required for `ws_pong` unless `swallow: true`"),
    );
    assert!(fault("{ kind: ws_pong, swallow: true, delay: 1s }").contains("not both"));
    assert!(fault("{ kind: ws_pong, swallow: false }").contains("faults[0].delay"));
    assert!(
        fault("{ kind: ws_drop }").contains("faults[0].probability: is required for `ws_drop`")
    );
    assert!(
        fault("{ kind: ws_drop, probability: 1, code: 1001 }").contains(
            "faults[0].code: not a parameter of `ws_drop` (parameters: probability, controls)"
        )
    );
    assert!(
        fault("{ kind: ws_oversize, bytes: 2GiB }")
            .contains("faults[0].bytes: must be at most 1GiB")
    );
    assert!(fault("{ kind: ws_oversize, at: 1s, for: 2s }").contains("faults[0].for"));
    assert!(fault("{ kind: ws_delay, latency: 0s }").contains("faults[0].latency: must be > 0"));
    let long = "x".repeat(124);
    assert!(fault(&format!("{{ kind: ws_close, reason: {long} }}")).contains("at most 123 bytes"));
}

#[test]
fn the_smallest_scenario_gets_every_default() {
    let scenario = parse("name: tiny\nclients: 50\n");
    assert_eq!(scenario.name, "tiny");
    assert_eq!(scenario.seed, 1);
    assert_eq!(scenario.duration, secs(30));
    assert_eq!(scenario.target, Target::Builtin(defaults::builtin_target()));
    assert_eq!(scenario.groups.len(), 1);
    let group = &scenario.groups[0];
    assert_eq!(group.name, "default");
    assert_eq!(group.load, Load::Count(50));
    assert_eq!(group.connect_rate, None);
    assert_eq!(group.messages, defaults::messages());
    assert_eq!(group.recovery, defaults::recovery());
    assert!(scenario.faults.is_empty() && scenario.server.is_empty());
    assert!(scenario.thresholds.is_empty());
    assert_eq!(scenario.report, defaults::report());
}

#[test]
fn the_full_example_validates() {
    let scenario = parse(FULL);
    assert_eq!(scenario.duration, secs(60));
    assert_eq!(scenario.peak_clients(), 2300);
    let [eager, ramped] = scenario.groups.as_slice() else {
        panic!("two groups");
    };
    // Top-level keys fill in what a group leaves out, key by key.
    assert_eq!(eager.messages.rate.per_second, 2.0);
    assert_eq!(eager.recovery.backoff.kind, BackoffKind::Constant);
    assert_eq!(eager.recovery.backoff.initial, Duration::from_millis(250));
    assert_eq!(eager.recovery.backoff.max, secs(10));
    assert_eq!(eager.recovery.heartbeat.interval, secs(2));
    assert_eq!(eager.recovery.on_error.len(), 3);
    assert_eq!(eager.recovery.max_attempts, Some(20));
    assert_eq!(
        (ramped.messages.min_bytes, ramped.messages.max_bytes),
        (64, 4096)
    );
    assert_eq!(ramped.messages.kind, MessageKind::Binary);
    assert_eq!(ramped.messages.rate.per_second, 2.0);
    assert!(ramped.recovery.on_error.is_empty());

    assert_eq!(scenario.faults.len(), 12);
    assert_eq!(scenario.faults[0].name, "latency#0");
    assert_eq!(scenario.faults[7].name, "dupes");
    assert_eq!(
        scenario.faults[3].connections,
        Connections::Share(Share(0.25))
    );
    assert_eq!(
        scenario.faults[4].kind,
        NetworkFaultKind::Bandwidth {
            bytes_per_second: 65536,
            shared: false
        }
    );
    assert_eq!(
        scenario.faults[5].kind,
        NetworkFaultKind::Slicer {
            average_size: 128,
            size_variation: 32,
            delay: Duration::ZERO
        }
    );
    assert_eq!(
        scenario.faults[11].kind,
        NetworkFaultKind::SlowClose { delay: secs(1) }
    );
    assert_eq!(
        scenario.server[0].kind,
        ServerFaultKind::Restart {
            close_code: 1012,
            down_for: secs(2),
            keep_sessions: true
        }
    );
    assert_eq!(
        scenario.server[5].kind,
        ServerFaultKind::AcceptClose {
            code: 1013,
            reason: "at capacity".into(),
            share: Share(0.5)
        }
    );

    let metrics: Vec<&str> = scenario
        .thresholds
        .iter()
        .map(|t| t.metric.as_str())
        .collect();
    assert_eq!(
        metrics,
        [
            "errors.connection",
            "messages_lost",
            "reconnect_latency",
            "reconnect_latency"
        ]
    );
    let max = &scenario.thresholds[3];
    assert_eq!(
        (max.stat, max.op, max.value, max.abort_on_fail),
        (Stat::Max, CompareOp::Le, 10e6, true)
    );

    let formats = &scenario.report.formats;
    assert_eq!(
        formats,
        &[
            ReportFormat::Json,
            ReportFormat::Md,
            ReportFormat::Html,
            ReportFormat::Junit
        ]
    );
}

#[test]
fn stages_set_the_duration_when_it_is_left_out() {
    let scenario = parse(
        "name: ramp\nclients:\n  stages: [{ duration: 10s, target: 5 }, { duration: 5s, target: 0 }]\n",
    );
    assert_eq!(scenario.duration, secs(15));
    let error =
        refuse("name: ramp\nduration: 10s\nclients:\n  stages: [{ duration: 20s, target: 5 }]\n");
    assert_eq!(error.path(), Some("clients.stages"));
}

const CONNECT_PHASE: &str = "\
name: connect-phase
clients: 5
faults:
  - { kind: accept_stall, at: 1s, for: 2s, connections: 50% }
  - { kind: accept_reset, at: 4s, for: 1s }
  - { kind: dial_delay, delay: 500ms, at: 6s, for: 2s }
  - { kind: bandwidth, rate: 1MiB/s, shared: true }
  - { kind: blackhole, close_after: 5s, at: 10s }
  - { kind: blackhole, reset_after: 1s, at: 20s, for: 2s }
";

#[test]
fn connect_phase_kinds_shared_bandwidth_and_close_after_validate() {
    let faults = parse(CONNECT_PHASE).faults;
    let kinds: Vec<_> = faults.iter().map(|f| f.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            NetworkFaultKind::AcceptStall,
            NetworkFaultKind::AcceptReset,
            NetworkFaultKind::DialDelay {
                delay: Duration::from_millis(500)
            },
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 1024 * 1024,
                shared: true
            },
            NetworkFaultKind::Blackhole {
                close_after: Some(secs(5)),
                reset_after: None
            },
            faults[5].kind.clone(),
        ]
    );
    assert_eq!(
        faults[5].kind,
        NetworkFaultKind::Blackhole {
            close_after: None,
            reset_after: Some(secs(1))
        }
    );
    assert_eq!(faults[0].connections, Connections::Share(Share(0.5)));
    let missing = refuse("name: x\nclients: 1\nfaults:\n  - { kind: dial_delay }\n");
    assert_eq!(missing.path(), Some("faults[0].delay"));
    let foreign =
        refuse("name: x\nclients: 1\nfaults:\n  - { kind: latency, latency: 1ms, shared: true }\n");
    assert_eq!(foreign.path(), Some("faults[0].shared"));
}

#[test]
fn nat_timeout_takes_a_positive_idle_and_nothing_else() {
    let faults =
        parse("name: x\nclients: 1\nfaults:\n  - { kind: nat_timeout, idle: 30s, at: 1s }\n")
            .faults;
    assert_eq!(
        faults[0].kind,
        NetworkFaultKind::NatTimeout { idle: secs(30) }
    );
    assert_eq!(faults[0].name, "nat_timeout#0");
    for (fault, path, says) in [
        ("{ kind: nat_timeout }", "faults[0].idle", "is required"),
        (
            "{ kind: nat_timeout, idle: 0s }",
            "faults[0].idle",
            "must be > 0",
        ),
        ("{ kind: nat_timeout, idle: 5 }", "faults[0].idle", "5"),
        (
            "{ kind: nat_timeout, idle: 5s, delay: 1s }",
            "faults[0].delay",
            "not a parameter of `nat_timeout` (parameters: idle)",
        ),
        (
            "{ kind: nat_timeout, idle: 5s, direction: upstream }",
            "faults[0].direction",
            "takes only `both`",
        ),
        (
            "{ kind: latency, latency: 1ms, idle: 5s }",
            "faults[0].idle",
            "not a parameter of `latency`",
        ),
    ] {
        let error = refuse(&format!("name: x\nclients: 1\nfaults:\n  - {fault}\n"));
        assert_eq!(error.path(), Some(path), "{fault}: {error}");
        assert!(error.to_string().contains(says), "{fault}: {error}");
    }
}

#[test]
fn a_faults_file_is_a_list_checked_like_a_scenarios_faults() {
    let text = "# proxy faults\n- { kind: latency, latency: 80ms, at: 5s, for: 10s }\n- kind: blackhole\n  for: 0s\n";
    let error = crate::scenario::faults_from_str(text, "faults.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "faults.yaml:4:8: [1].for: must be > 0 (got 0s)"
    );
    let ok = "- { kind: latency, latency: 80ms, at: 2h }\n- { kind: reset, name: kick, at: 1s }\n";
    let faults = crate::scenario::faults_from_str(ok, "f.yaml").unwrap();
    assert_eq!(
        faults[0].window.at,
        secs(7200),
        "no end of run to be within"
    );
    assert_eq!(faults[1].name, "kick");
    assert!(
        crate::scenario::faults_from_str("\n# none\n", "f.yaml")
            .unwrap()
            .is_empty()
    );
    let typo = crate::scenario::faults_from_str("- { kind: latency, latncy: 1s }\n", "f.yaml");
    assert!(typo.unwrap_err().to_string().starts_with("f.yaml:1:"));
    // One fault alone, as the control API takes it: JSON, with or without a name.
    let one = crate::scenario::fault_from_str(r#"{"kind": "latency", "latency": "50ms"}"#, "body")
        .unwrap();
    assert_eq!(one.name, "", "the proxy names it");
    let again = crate::scenario::fault_from_str(&faults[1].to_json().to_string(), "body").unwrap();
    assert_eq!(again.kind, faults[1].kind);
    assert_eq!(
        (again.name.as_str(), again.window),
        ("kick", faults[1].window)
    );
    let bad = crate::scenario::fault_from_str(r#"{"kind": "latency"}"#, "body").unwrap_err();
    assert_eq!(bad.path(), Some("latency"));
}

#[test]
fn normalized_json_reads_back_equal() {
    let minimal = "name: tiny\nclients: 5\n";
    let external = "name: ext\nclients: 5\ntarget:\n  url: wss://example.com/ws\n  protocol: echo\n  headers: { X-Tenant: acme, Authorization: Bearer x }\n  subprotocols: [chat]\n  ca_file: ca.pem\n";
    for text in [
        FULL,
        WEBSOCKET,
        minimal,
        external,
        CONNECT_PHASE,
        include_str!("../../scenarios/quickstart.yaml"),
        include_str!("../../scenarios/outages/nat-idle-timeout.yaml"),
        include_str!("../../scenarios/outages/partition-and-herd.yaml"),
    ] {
        let scenario = parse(text);
        let json = scenario.to_json();
        let again = from_str(&json.to_string(), "normalized.json")
            .unwrap_or_else(|error| panic!("{error}\n{json:#}"));
        assert_eq!(again, scenario, "{json:#}");
        // Pretty JSON is YAML too.
        assert_eq!(
            parse(&serde_json::to_string_pretty(&json).unwrap()),
            scenario
        );
    }
}

#[test]
fn normalized_json_is_humane() {
    let json = parse(FULL).to_json();
    assert_eq!(json["duration"], "1m");
    assert_eq!(
        json["clients"][0]["recovery"]["backoff"]["initial"],
        "250ms"
    );
    assert_eq!(json["clients"][1]["messages"]["size"]["max"], "4KiB");
    assert_eq!(json["faults"][3]["connections"], "25%");
    assert_eq!(json["faults"][0]["connections"], "all");
    assert_eq!(json["faults"][4]["rate"], "64KiB/s");
    assert_eq!(json["thresholds"]["reconnect_latency"][0], "p(99) < 3s");
    assert!(
        json.get("messages").is_none(),
        "groups carry their own messages"
    );
}

#[test]
fn overrides() {
    let scenario = parse(FULL);
    assert_eq!(scenario.clone().with_seed(99).seed, 99);
    let shorter = scenario.clone().with_duration(secs(10)).unwrap();
    assert_eq!(shorter.duration, secs(10));
    // What a shortened run records must validate again (replay reads it back).
    let back = from_str(&shorter.to_json().to_string(), "shorter.json").unwrap();
    // Fault ids are positions and are renumbered; names (and so RNG seeds) are kept.
    let names = |s: &Scenario| s.faults.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), names(&shorter));
    assert_eq!(back.groups, shorter.groups);
    assert_eq!(back.duration, shorter.duration);
    assert!(shorter.faults.iter().all(|f| f.window.at < secs(10)));
    assert!(scenario.clone().with_duration(Duration::ZERO).is_err());
    assert!(
        scenario
            .clone()
            .with_duration(secs(31 * 24 * 3600))
            .is_err()
    );

    let fewer = scenario.clone().with_clients(230).unwrap();
    assert_eq!(fewer.peak_clients(), 230);
    assert_eq!(fewer.groups[0].load, Load::Count(200));
    let Load::Stages(stages) = &fewer.groups[1].load else {
        panic!("stages")
    };
    let targets: Vec<u32> = stages.iter().map(|s| s.target).collect();
    assert_eq!(targets, [10, 30, 0]);
    assert_eq!(scenario.clone().with_clients(1).unwrap().peak_clients(), 1);
    let error = scenario.clone().with_clients(0).unwrap_err();
    assert_eq!(error.to_string(), "--clients: must be at least 1 (got 0)");

    let one = parse(
        "name: one\nclients:\n  stages: [{ duration: 10s, target: 50 }, { duration: 10s, target: 20 }]\n",
    );
    let Load::Stages(stages) = &one.with_clients(500).unwrap().groups[0].load else {
        panic!("stages")
    };
    assert_eq!(
        stages.iter().map(|s| s.target).collect::<Vec<_>>(),
        [500, 200]
    );
    // Cut at 15 s: the second stage ends halfway down, at 35.
    let parsed = parse(
        "name: one\nclients:\n  stages: [{ duration: 10s, target: 50 }, { duration: 10s, target: 20 }]\n",
    );
    let cut = parsed.with_duration(secs(15)).unwrap();
    let Load::Stages(stages) = &cut.groups[0].load else {
        panic!("stages")
    };
    assert_eq!(
        stages
            .iter()
            .map(|s| (s.duration, s.target))
            .collect::<Vec<_>>(),
        [(secs(10), 50), (secs(5), 35)]
    );
    assert_eq!(
        from_str(&cut.to_json().to_string(), "cut.json").unwrap(),
        cut
    );
}

#[test]
fn unknown_keys_are_placed_and_suggested() {
    let error = refuse("name: x\nclients:\n  cuont: 5\n");
    assert_eq!(error.path(), Some("clients.cuont"));
    assert_eq!((error.line(), error.column()), (Some(3), Some(3)));
    assert!(
        error.to_string().starts_with(
            "test.yaml:3:3: clients.cuont: unknown key; did you mean `count`? (expected one of: name, count, stages, connect_rate"
        ),
        "{error}"
    );
}

#[test]
fn validation_errors_point_at_the_value() {
    let error = refuse("name: x\nclients: 5\nfaults:\n  - kind: blackhole\n    for: 0s\n");
    assert_eq!(
        error.to_string(),
        "test.yaml:5:10: faults[0].for: must be > 0 (got 0s)"
    );
    let error = refuse("name: x\nclients: 5\nduration: 60s\nfaults: [{ kind: reset, at: 70s }]\n");
    assert_eq!(
        error.to_string(),
        "test.yaml:4:29: faults[0].at: 70s is after the end of the run (duration 60s)"
    );
    let error = refuse(
        "name: x\nclients: 5\nfaults: [{ kind: latency, latency: 5ms, probability: 0.1 }]\n",
    );
    assert_eq!(
        error.to_string(),
        "test.yaml:3:41: faults[0].probability: not a parameter of `latency` (parameters: latency, jitter, distribution)"
    );
}

#[test]
fn syntax_errors_carry_a_position() {
    let error = refuse("name: x\nclients: 5\n  oops: [\n");
    assert!(error.line().is_some(), "{error}");
    let error = refuse("name: x\nclients: {count: 5\n");
    assert!(error.line().is_some(), "{error}");
}

#[test]
fn hostile_input_is_refused_without_panic() {
    let deep = "[".repeat(10_000);
    let deep_maps = "a: ".repeat(5_000) + "1";
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    let huge = "name: x\nclients: 99999999999999999999999999999\nseed: 1e400\n";
    let garbage = "\u{0}\u{1}\u{7f}\u{feff}name: \u{fffd}\u{1b}[31m\n\t- : : :\n";
    let documents = "name: x\nclients: 1\n---\nname: y\n";
    let tagged = "name: !!binary aGVsbG8=\nclients: !custom 5\n";
    let scalar = "just a string";
    let list = "- 1\n- 2\n";
    let nan = "name: x\nclients: 5\nrecovery: { backoff: { multiplier: .nan } }\nmessages: { rate: .inf/s }\n";
    for text in [
        deep.as_str(),
        &deep_maps,
        bomb,
        huge,
        garbage,
        documents,
        tagged,
        scalar,
        list,
        nan,
    ] {
        let error = refuse(text);
        assert!(!error.to_string().is_empty());
    }
    // Anchors are fine when they stay small.
    parse("name: x\nclients: &n 5\nfaults: [{ kind: reset, connections: *n }]\n");
}

#[test]
fn load_refuses_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("squall-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cases: [(PathBuf, &str); 5] = [
        (dir.join("missing.yaml"), "cannot read the file"),
        (
            write("binary.yaml", b"name: \xff\xfe\n"),
            "is not UTF-8 text (invalid byte at offset 6)",
        ),
        (write("empty.yaml", b""), "is empty"),
        (
            write("comments.yaml", b"# nothing yet\n\n---\n"),
            "is empty",
        ),
        (
            write("huge.yaml", &vec![b'#'; (1 << 20) + 1]),
            "a scenario is at most 1 MiB",
        ),
    ];
    for (path, expected) in cases {
        let error = load(&path).unwrap_err();
        assert!(error.message().contains(expected), "{error}");
        assert!(error.to_string().starts_with(&path.display().to_string()));
    }
    assert_eq!(
        load(&write("ok.yaml", b"name: ok\nclients: 1\n"))
            .unwrap()
            .name,
        "ok"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|path| {
        path.extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
    });
    files.sort();
    files
}

/// Each file's first line is `# expect: <yaml.path> <line>`.
#[test]
fn every_invalid_example_fails_where_it_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid");
    let files = yaml_files(&dir);
    assert!(files.len() >= 12, "only {} invalid examples", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line must be `# expect: <path> <line>`",
                    file.display()
                )
            });
        let (path, line) = expect.rsplit_once(' ').unwrap();
        let line: usize = line.parse().unwrap();
        let error = load(&file).expect_err(&file.display().to_string());
        assert_eq!(
            (error.path(), error.line()),
            (Some(path), Some(line)),
            "{}: got {error}",
            file.display()
        );
    }
}

#[test]
fn every_example_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for file in yaml_files(&dir) {
        if let Err(error) = load(&file) {
            panic!("{error}");
        }
    }
}

/// Mangled scenarios never panic, and any that still validates reads back equal.
#[test]
fn mutations_never_panic_and_survivors_round_trip() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    let pieces = [
        ":",
        " ",
        "\n",
        "-",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a",
        "*a",
        "0",
        "-1",
        "1e400",
        "%",
        "/s",
        "ms",
        "\t",
        "'",
        "\"",
        "#",
        "!!str",
        "~",
        ".nan",
        "p(",
        ")",
        "<",
        "==",
        "for: ",
        "every: ",
        "99999999999999999999",
    ];
    for _ in 0..300 {
        let mut text = FULL.as_bytes().to_vec();
        for _ in 0..1 + next() % 4 {
            let at = next() % text.len();
            match next() % 3 {
                0 => drop(text.drain(at..(at + next() % 8).min(text.len()))),
                1 => drop(text.splice(at..at, pieces[next() % pieces.len()].bytes())),
                _ => text[at] = (next() % 128) as u8,
            }
        }
        let text = String::from_utf8_lossy(&text);
        if let Ok(scenario) = from_str(&text, "mangled.yaml") {
            let json = scenario.to_json().to_string();
            assert_eq!(parse(&json), scenario, "{text}");
        }
    }
}

#[test]
fn fault_windows_follow_the_timeline_rules() {
    let ms = Duration::from_millis;
    let window = |at: u64, length: Option<u64>, every: Option<u64>| Window {
        at: ms(at),
        length: length.map(ms),
        every: every.map(ms),
        stagger: Duration::ZERO,
    };
    let spans = |w: Window, instant: bool, hold: Option<u64>| -> Vec<(u64, Option<u64>)> {
        w.spans(instant, hold.map(ms), ms(10_000))
            .iter()
            .map(|s| {
                (
                    s.start.as_millis() as u64,
                    s.end.map(|e| e.as_millis() as u64),
                )
            })
            .collect()
    };
    // One window; open to the end without `for`; repeated with `every` until the end.
    assert_eq!(
        spans(window(1000, Some(500), None), false, None),
        [(1000, Some(1500))]
    );
    assert_eq!(spans(window(1000, None, None), false, None), [(1000, None)]);
    assert_eq!(
        spans(window(1000, Some(500), Some(4000)), false, None),
        [(1000, Some(1500)), (5000, Some(5500)), (9000, Some(9500))]
    );
    // A period not longer than the window: one window that never closes.
    assert_eq!(
        spans(window(1000, Some(500), Some(500)), false, None),
        [(1000, None)]
    );
    // Instantaneous: firings inside `[at, at + for)`, held for `hold` (a restart's
    // `down_for`); without `for` they go on to the end.
    assert_eq!(
        spans(window(1000, Some(2500), Some(1000)), true, Some(200)),
        [(1000, Some(1200)), (2000, Some(2200)), (3000, Some(3200))]
    );
    assert_eq!(
        spans(window(8000, None, Some(1500)), true, None),
        [(8000, Some(8000)), (9500, Some(9500))]
    );
}

#[test]
fn scoped_thresholds_name_their_fault_and_read_back() {
    let s = parse(
        "name: scoped
clients: 10
duration: 20s
faults:
  - { name: cut, kind: partition, at: 5s, for: 3s }
server:
  - { kind: restart, at: 12s, down_for: 1s }
thresholds:
  \"recovery_time{after: cut}\": { threshold: \"max < 5s\", abort_on_fail: true, delay_abort_eval: 10s }
  reconnect_latency{during:restart#0}: [\"p(99) < 2s\"]
  reconnect_latency: [\"p(99) < 3s\"]
",
    );
    let keys: Vec<String> = s.thresholds.iter().map(Threshold::key).collect();
    assert_eq!(
        keys,
        [
            "reconnect_latency",
            "reconnect_latency{during:restart#0}",
            "recovery_time{after:cut}"
        ]
    );
    let deadline = &s.thresholds[2];
    assert_eq!(deadline.scope, Some(Scope::After("cut".into())));
    assert_eq!(deadline.delay_abort_eval, secs(10));
    assert_eq!(
        s.fault_spans("restart#0").unwrap(),
        [Span {
            start: secs(12),
            end: Some(secs(13))
        }]
    );
    // The normalized scenario reads back the same.
    let again = crate::scenario::from_str(&s.to_json().to_string(), "again.json").unwrap();
    assert_eq!(again.thresholds, s.thresholds);
}
