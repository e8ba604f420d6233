//! The recovery engine through real sockets: the shim breaking connections, servers that
//! misbehave or restart. Every test ends with every accepted message delivered exactly
//! once.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::{TempDir, counter as n, run_yaml as run};
use squall::recovery::{Session, SessionConfig, SessionEvent};
use squall::scenario::{MessageKind, Protocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_every_few_hundred_milliseconds_lose_and_duplicate_nothing() {
    let r = run(r#"
name: reset-hail
seed: 5
duration: 4s
clients: { count: 30, connect_rate: 300/s }
messages: { rate: 20/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 20ms, max: 200ms, jitter: full }
faults:
  - { kind: reset, connections: 50%, at: 500ms, every: 300ms, for: 3s }
"#)
    .await;
    assert!(n(&r, "disconnects") > 50, "{}", r["counters"]);
    assert!(n(&r, "messages_delivered") > 1000);
    assert_eq!(n(&r, "messages_lost"), 0, "{}", r["counters"]);
    assert_eq!(n(&r, "messages_duplicated"), 0);
    assert_eq!(n(&r, "messages_sent"), n(&r, "messages_delivered"));
    // Both directions: every message came back from the server exactly once.
    assert_eq!(n(&r, "messages_received"), n(&r, "messages_delivered"));
    // (Resends happen only when a reset catches a message in flight: on loopback that is
    // rare enough that a run may see none, so it is not asserted here.)
    // Each reset is timed from the shim's action to the client noticing.
    assert!(
        r["histograms"]["detection_latency"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_longer_than_the_heartbeat_timeout_is_detected_within_interval_plus_timeout() {
    let r = run(r#"
name: half-open
seed: 2
duration: 5s
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 5/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 50ms, max: 500ms, jitter: full }
  heartbeat: { interval: 500ms, timeout: 500ms }
  retransmit: { ack_timeout: 3s }
faults:
  - { kind: blackhole, at: 1s, for: 2s }
"#)
    .await;
    assert_eq!(
        n(&r, "disconnects"),
        10,
        "every client noticed: {}",
        r["counters"]
    );
    let detect = &r["histograms"]["detection_latency"];
    assert_eq!(detect["count"], 10);
    // interval + timeout = 1 s, with slack for a busy machine, far below the OS's TCP timeout.
    assert!(detect["max"].as_u64().unwrap() < 1_300_000, "{detect}");
    assert!(
        detect["min"].as_u64().unwrap() >= 400_000,
        "not before the heartbeat could know: {detect}"
    );
    assert_eq!(n(&r, "messages_lost"), 0);
    assert_eq!(n(&r, "messages_duplicated"), 0);
    assert_eq!(n(&r, "messages_received"), n(&r, "messages_delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_messages_dropped_by_the_shim_are_seen_as_gaps_and_resent() {
    // The shim drops whole WebSocket messages (framing intact) both ways: a receiver sees
    // a sequence gap, closes, and the resume sends the missing ones again.
    let r = run(r#"
name: ws-drop
seed: 4
duration: 4s
clients: { count: 20, connect_rate: 200/s }
messages: { rate: 20/s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 20ms, max: 200ms, jitter: full }
  handshake_timeout: 500ms
  retransmit: { ack_timeout: 1s }
faults:
  - { kind: ws_drop, probability: 2%, at: 500ms, for: 2s }
"#)
    .await;
    let drops = &r["faults"][0];
    assert_eq!(drops["kind"], "ws_drop");
    assert!(
        drops["actions"]["dropped"].as_u64().unwrap_or(0) > 5,
        "{drops}"
    );
    assert!(n(&r, "disconnects") > 5, "{}", r["counters"]);
    assert!(n(&r, "messages_delivered") > 1000);
    assert_eq!(n(&r, "messages_lost"), 0, "{}", r["counters"]);
    assert_eq!(n(&r, "messages_duplicated"), 0);
    assert_eq!(n(&r, "messages_sent"), n(&r, "messages_delivered"));
    assert_eq!(n(&r, "messages_received"), n(&r, "messages_delivered"));
    assert!(
        n(&r, "retransmits") > 0,
        "the lost messages were sent again"
    );
    // A drop breaks the session where it happens: detection is timed from it.
    assert!(
        r["histograms"]["detection_latency"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
}

fn session_config(url: String, protocol: Protocol) -> SessionConfig {
    let mut policy = squall::scenario::defaults::recovery();
    policy.backoff.initial = Duration::from_millis(50);
    policy.backoff.max = Duration::from_secs(1);
    policy.backoff.jitter = squall::scenario::Jitter::None;
    SessionConfig {
        url,
        session: "test-session".into(),
        protocol,
        headers: vec![],
        subprotocols: vec![],
        policy,
        kind: MessageKind::Text,
        rng: squall::rng::rng(1, "backoff", 0),
        dialer: None,
        tls: None,
        max_message_bytes: squall::recovery::DEFAULT_MAX_MESSAGE_BYTES,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_then_closes_is_retried_with_growing_delays() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = accepts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    use tokio_tungstenite::tungstenite::protocol::{
                        CloseFrame, frame::coding::CloseCode,
                    };
                    let _ = ws
                        .close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "".into(),
                        }))
                        .await;
                    let _ = ws.next().await;
                }
            });
        }
    });
    let token = CancellationToken::new();
    let (session, mut streams) = Session::open(
        session_config(format!("ws://{addr}/"), Protocol::Echo),
        token.clone(),
    );
    session.send("hello").await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    token.cancel();
    let outcome = streams.outcome.await.unwrap();
    // 50 ms doubling to a 1 s cap: about 7 attempts in 3 s. A loop that reset its backoff
    // on every accepted connection would make hundreds.
    let n = accepts.load(std::sync::atomic::Ordering::Relaxed);
    assert!((4..=10).contains(&n), "{n} connections in 3 s");
    assert_eq!(
        outcome.undelivered, 1,
        "the message stays owed, never silently dropped"
    );
    let mut disconnects = 0;
    while let Ok(ev) = streams.events.try_recv() {
        if let SessionEvent::Disconnected { reason, .. }
        | SessionEvent::AttemptFailed { reason, .. } = ev
        {
            assert_eq!(reason.close_code(), Some(1000), "{reason}");
            disconnects += 1;
        }
    }
    assert!(disconnects >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_that_keeps_sessions_loses_and_duplicates_nothing() {
    let cfg = squall::scenario::defaults::builtin_target();
    let state = squall::target::ServerState::new(&cfg);
    let tracker = TaskTracker::new();
    let first = CancellationToken::new();
    let server = squall::target::start_with(
        "127.0.0.1:0".parse().unwrap(),
        &cfg,
        state.clone(),
        None,
        first.clone(),
        &tracker,
    )
    .await
    .unwrap();
    let addr = server.local_addr();

    let client_token = CancellationToken::new();
    let (session, mut streams) = Session::open(
        session_config(format!("ws://{addr}/ws"), Protocol::Squall),
        client_token.clone(),
    );
    let sender = tokio::spawn(async move {
        for i in 1..=200u64 {
            session.send(format!("{i:016x} message")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // Restart mid-stream: every connection closed with 1001, then the server comes back on
    // the same port with the sessions it held.
    tokio::time::sleep(Duration::from_millis(400)).await;
    first.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = CancellationToken::new();
    squall::target::start_with(addr, &cfg, state.clone(), None, second.clone(), &tracker)
        .await
        .unwrap();

    sender.await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), streams.outcome)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.end, squall::recovery::End::Drained, "{outcome:?}");
    assert_eq!(outcome.undelivered, 0);
    let ledger = state.ledger.totals();
    assert_eq!(ledger.unique, 200, "{ledger:?}");
    assert_eq!(ledger.duplicates, 0);
    let mut resumed = 0;
    while let Ok(ev) = streams.events.try_recv() {
        match ev {
            SessionEvent::Resumed { .. } => resumed += 1,
            SessionEvent::Discontinuity { .. } => panic!("the server kept the session"),
            _ => {}
        }
    }
    assert!(resumed >= 1);
    second.cancel();
    client_token.cancel();
}

/// A `wss://` echo server on 127.0.0.1 with a self-signed certificate for `localhost`;
/// returns its port and the certificate as PEM.
async fn tls_echo_server() -> (u16, String) {
    use std::sync::Arc;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                use futures_util::SinkExt;
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_given_ca_file_delivers_and_an_untrusted_certificate_is_a_tls_error() {
    let (port, pem) = tls_echo_server().await;
    let dir = TempDir::new("wss");
    let ca = dir.write("ca.pem", &pem);

    let mut config = session_config(format!("wss://localhost:{port}/ws"), Protocol::Echo);
    config.tls = Some(squall::recovery::tls_client_config(Some(&ca)).unwrap());
    let (session, streams) = Session::open(config, CancellationToken::new());
    for i in 0..20 {
        session.send(format!("secure {i}")).await.unwrap();
    }
    drop(session);
    let outcome = tokio::time::timeout(Duration::from_secs(10), streams.outcome)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.end, squall::recovery::End::Drained, "{outcome:?}");
    assert_eq!(outcome.undelivered, 0);

    // Without the CA the certificate is not trusted: a TLS error, classified as data.
    let mut config = session_config(format!("wss://localhost:{port}/ws"), Protocol::Echo);
    config.policy.max_attempts = Some(1);
    let (_session, mut streams) = Session::open(config, CancellationToken::new());
    let outcome = tokio::time::timeout(Duration::from_secs(10), streams.outcome)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome.end, squall::recovery::End::Failed(_)));
    let mut saw_tls = false;
    while let Ok(ev) = streams.events.try_recv() {
        if let SessionEvent::AttemptFailed { reason, class, .. } = ev {
            assert!(
                matches!(reason, squall::recovery::Disconnect::Tls(_)),
                "{reason}"
            );
            assert_eq!(class, squall::scenario::ErrorClass::Data);
            saw_tls = true;
        }
    }
    assert!(saw_tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_a_nat_forgot_are_found_by_heartbeats_and_nothing_is_lost() {
    // Messages every 2 s, a NAT that forgets a flow after 1 s of silence: each link dies
    // between two messages, and nothing tells either end. The heartbeat (1.5 s, then
    // 500 ms for the pong) finds it about 1 s after it died.
    let r = run(r#"
name: nat
seed: 3
duration: 6s
clients: { count: 10, connect_rate: 100/s }
messages: { rate: 1/2s, size: 64B }
recovery:
  backoff: { kind: exponential, initial: 50ms, max: 500ms, jitter: full }
  heartbeat: { interval: 1500ms, timeout: 500ms }
faults:
  - { kind: nat_timeout, idle: 1s }
"#)
    .await;
    let nat = &r["faults"][0];
    assert_eq!(nat["kind"], "nat_timeout");
    assert!(
        nat["actions"]["forgotten"].as_u64().unwrap_or(0) >= 10,
        "{nat}"
    );
    assert!(n(&r, "disconnects") >= 10, "{}", r["counters"]);
    let detect = &r["histograms"]["detection_latency"];
    assert!(detect["count"].as_u64().unwrap() >= 10, "{detect}");
    // Timed from the mapping's death (last byte + 1 s), not from the dropped ping that
    // found it (which would say 500 ms): interval + timeout - idle = 1 s, less the
    // client's delayed ack after the last echo; under interval + timeout at most.
    assert!(detect["max"].as_u64().unwrap() < 2_000_000, "{detect}");
    assert!(detect["min"].as_u64().unwrap() >= 700_000, "{detect}");
    assert_eq!(n(&r, "messages_lost"), 0, "{}", r["counters"]);
    assert_eq!(n(&r, "messages_duplicated"), 0);
    assert_eq!(n(&r, "messages_sent"), n(&r, "messages_delivered"));
    assert_eq!(n(&r, "messages_received"), n(&r, "messages_delivered"));
}
