//! Server-side faults of the built-in server, through whole in-process runs.

use crate::support::{counter as n, run_yaml as run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_keeps_sessions_loses_and_duplicates_nothing_either_way() {
    let r = run(r#"
name: restart
seed: 4
duration: 5s
clients: { count: 20, connect_rate: 200/s }
messages: { rate: 20/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 100ms, max: 1s, jitter: full }
server:
  - { kind: restart, at: 2s, close_code: 1012, down_for: 1s, keep_sessions: true }
"#)
    .await;
    assert_eq!(n(&r, "disconnects"), 20, "{}", r["counters"]);
    assert_eq!(n(&r, "reconnects"), 20);
    assert_eq!(r["counters"]["errors"]["close_codes"]["1012"], 20);
    assert_eq!(n(&r, "messages_lost"), 0);
    assert_eq!(n(&r, "messages_duplicated"), 0);
    assert_eq!(n(&r, "messages_unverified"), 0, "the sessions were kept");
    assert_eq!(n(&r, "server_received"), n(&r, "messages_sent"));
    assert_eq!(n(&r, "messages_received"), n(&r, "messages_delivered"));
    // The typed close said when to come back: nobody returned before the server did.
    let rec = &r["histograms"]["reconnect_latency"];
    assert!(rec["min"].as_u64().unwrap() >= 1_000_000, "{rec}");
    let restart = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "server.restart")
        .unwrap();
    assert_eq!(restart["connections_touched"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_drops_sessions_is_reported_as_unverified_not_hidden() {
    let r = run(r#"
name: restart-fresh
seed: 4
duration: 4s
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 50/s, size: 64B }
server:
  - { kind: restart, at: 1500ms, down_for: 500ms, keep_sessions: false }
"#)
    .await;
    assert_eq!(n(&r, "messages_lost"), 0);
    // Whatever was in flight when the server forgot the sessions is unverified; the
    // server's own ledger shows how many of those it really got twice.
    assert!(
        n(&r, "messages_duplicated") <= n(&r, "messages_unverified"),
        "{}",
        r["counters"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_handshakes_are_application_errors_and_their_retry_hint_is_honoured() {
    let r = run(r#"
name: reject
seed: 9
duration: 5s
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 5/s, size: 64B }
recovery:
  backoff: { kind: constant, initial: 100ms, jitter: none }
server:
  - { kind: close, at: 1s, code: 1001, sessions: 100% }
  - { kind: reject_handshakes, at: 900ms, for: 1500ms, status: 503, retry_after: 1s }
"#)
    .await;
    assert_eq!(n(&r, "disconnects"), 10);
    assert_eq!(n(&r, "reconnects"), 10);
    let e = &r["counters"]["errors"];
    // Each client: one 1001 close (connection class), then 503s until the window ends.
    assert_eq!(e["connection"], 10, "{e}");
    assert!(e["application"].as_u64().unwrap() >= 10, "{e}");
    // With Retry-After: 1 s and a 100 ms backoff, attempts are a second apart: the
    // 1.5 s window costs each client two refusals at most, not fifteen.
    assert!(e["application"].as_u64().unwrap() <= 20, "{e}");
    assert_eq!(n(&r, "messages_lost"), 0);
    let reject = r["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "server.reject_handshakes")
        .unwrap();
    assert!(reject["actions"]["rejected"].as_u64().unwrap() >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_errors_are_counted_and_a_stall_is_survived() {
    let r = run(r#"
name: app-error-stall
seed: 2
duration: 5s
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 10/s, size: 64B }
recovery:
  heartbeat: { interval: 500ms, timeout: 500ms }
  retransmit: { ack_timeout: 1s }
server:
  - { kind: app_error, at: 1s, sessions: 100%, message: "quota exceeded" }
  - { kind: stall, at: 2s, for: 1500ms }
"#)
    .await;
    assert_eq!(
        r["counters"]["errors"]["application"], 10,
        "{}",
        r["counters"]
    );
    // The stall stops the server reading: acks stop, clients give the link up and resume.
    assert!(n(&r, "disconnects") >= 10, "{}", r["counters"]);
    assert_eq!(n(&r, "messages_lost"), 0);
    assert_eq!(n(&r, "messages_duplicated"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_control_caps_the_reconnect_storm_at_the_server() {
    let r = run(r#"
name: admission
seed: 6
duration: 4s
target: { builtin: { mode: echo, max_handshake_rate: 20/s } }
clients: { count: 60 }
messages: { rate: 2/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 100ms, max: 1s, jitter: full }
"#)
    .await;
    // 60 clients arrive at once; the server takes 20 a second (a token bucket holding one
    // second's worth, so no single second sees more than twice that, and by the end of
    // second k no more than the bucket plus k + 1 seconds of refill were let in).
    let per_second: Vec<u64> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["server_handshakes"].as_u64().unwrap())
        .collect();
    assert!(per_second.iter().all(|n| *n <= 40), "{per_second:?}");
    let mut let_in = 0;
    for (k, n) in per_second.iter().enumerate() {
        let_in += n;
        assert!(let_in <= 20 + 20 * (k as u64 + 1), "{per_second:?}");
    }
    assert!(
        per_second.iter().filter(|n| **n > 0).count() >= 3,
        "the storm was spread: {per_second:?}"
    );
    assert_eq!(n(&r, "clients_connected_peak"), 60);
    assert!(
        r["counters"]["errors"]["application"].as_u64().unwrap() >= 30,
        "{}",
        r["counters"]
    );
    assert_eq!(n(&r, "messages_lost"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mode_delivers_server_pushes_exactly_once_through_resets() {
    let r = run(r#"
name: stream
seed: 8
duration: 4s
target: { builtin: { mode: stream, rate: 50/s, size: 64B } }
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 1/s, size: 32B }
recovery:
  backoff: { kind: exponential, initial: 20ms, max: 200ms, jitter: full }
faults:
  - { kind: reset, connections: 50%, at: 1s, every: 500ms, for: 2s }
"#)
    .await;
    assert!(n(&r, "disconnects") >= 10, "{}", r["counters"]);
    // Every push a client acknowledged reached its application; the few received in the
    // last ack interval before the run stopped were never acknowledged.
    let (received, acked) = (n(&r, "messages_received"), n(&r, "server_sent_acked"));
    assert!(
        received >= acked && received - acked <= 10 * 3,
        "{}",
        r["counters"]
    );
    assert!(n(&r, "server_sent") >= 10 * 50 * 3, "{}", r["counters"]);
    // What was still in flight when the run closed is all the difference.
    assert!(
        n(&r, "server_sent") - n(&r, "server_sent_acked") <= 10 * 10,
        "{}",
        r["counters"]
    );
    assert_eq!(n(&r, "messages_lost"), 0);
    assert_eq!(n(&r, "messages_duplicated"), 0);
}
