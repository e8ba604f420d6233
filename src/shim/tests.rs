//! End-to-end tests of the shim with no fault or across faults: real sockets on
//! `127.0.0.1:0`, real time, every wait bounded. Tests of one fault live beside it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::test_util::{Harness, LIMIT, Probe, connect_as, echo_server, fault, probe, roundtrip};
use super::{Shim, ShimConfig, ShimError};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::scenario::NetworkFaultKind;

#[tokio::test]
async fn bytes_pass_both_ways_unchanged() {
    let echo = echo_server().await;
    let h = Harness::start(Vec::new(), 1, echo, false).await;
    let mut s = TcpStream::connect(h.addr()).await.unwrap();
    let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = r.read_to_end(&mut back);
    let (_, got) = tokio::time::timeout(LIMIT, async { tokio::join!(send, recv) })
        .await
        .unwrap();
    got.unwrap();
    assert!(back == payload, "echo differs");
    let stats = h.handle.stats();
    assert_eq!(
        (stats.accepted, stats.bytes_up, stats.bytes_down),
        (1, payload.len() as u64, payload.len() as u64)
    );
    h.stop().await;
}

#[tokio::test]
async fn identified_and_unidentified_clients_both_pass() {
    let echo = echo_server().await;
    let h = Harness::start(Vec::new(), 1, echo, true).await;
    let mut a = connect_as(h.addr(), 3).await;
    roundtrip(&mut a, b"hello").await;
    // Not HTTP: the shim gives up on the head at once and forwards the bytes.
    let mut b = TcpStream::connect(h.addr()).await.unwrap();
    let rtt = roundtrip(&mut b, &[0x16, 0x03, 0x01]).await;
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_half_close_passes_on_and_the_other_direction_keeps_flowing() {
    // The server reads to end of stream, then answers: only works if the client's FIN
    // reaches it while the reply direction stays open.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .await
            .unwrap();
    });
    let h = Harness::start(Vec::new(), 1, server, false).await;
    let mut s = TcpStream::connect(h.addr()).await.unwrap();
    s.write_all(&[7; 1000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(LIMIT, s.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, "got 1000 bytes");
    h.stop().await;
}

#[tokio::test]
async fn cancelling_the_token_stops_every_task_and_closes_connections() {
    let echo = echo_server().await;
    let latency = NetworkFaultKind::Latency {
        latency: Duration::from_millis(5),
        jitter: Duration::ZERO,
        distribution: crate::scenario::Distribution::Uniform,
    };
    let faults = vec![
        fault(latency, Duration::ZERO, None),
        fault(NetworkFaultKind::Reset, Duration::from_secs(60), None),
    ];
    let h = Harness::start(faults, 1, echo, true).await;
    let mut conns = Vec::new();
    for i in 0..5 {
        conns.push(connect_as(h.addr(), i).await);
    }
    assert_eq!(h.handle.stats().open, 5);
    h.shutdown().await; // asserts tracker.wait() returns
    for mut c in conns {
        assert_ne!(probe(&mut c).await, Probe::Alive);
    }
    assert_eq!(h.handle.stats().open, 0);
    assert!(
        TcpStream::connect(h.addr()).await.is_err(),
        "listener closed"
    );
    h.stop().await;
}

#[tokio::test]
async fn invalid_faults_are_refused_before_listening() {
    let token = CancellationToken::new();
    let cfg = ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: "127.0.0.1:9".parse().unwrap(),
        faults: vec![fault(
            NetworkFaultKind::Corrupt { probability: 1.5 },
            Duration::ZERO,
            None,
        )],
        seed: 1,
        identify_clients: true,
        touches: None,
        max_held: crate::shim::MAX_HELD,
        until: None,
    };
    let clock = Clock::start();
    let err = Shim::start(
        cfg,
        clock,
        EventSink::disabled(clock),
        token,
        TaskTracker::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, ShimError::Invalid { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "network fault `corrupt#0`: `probability` must be from 0 to 1 (got 1.5)"
    );
}

#[tokio::test]
async fn an_unreachable_server_resets_the_client() {
    // Bind then drop: a port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let h = Harness::start(Vec::new(), 1, dead, false).await;
    let mut s = TcpStream::connect(h.addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
    h.stop().await;
}

#[tokio::test]
async fn accepting_does_not_wait_for_a_slow_head() {
    // A client that never sends its head must not hold up the next one.
    let echo = echo_server().await;
    let h = Harness::start(Vec::new(), 1, echo, true).await;
    let _silent = TcpStream::connect(h.addr()).await.unwrap();
    let mut s = tokio::time::timeout(Duration::from_secs(1), connect_as(h.addr(), 1))
        .await
        .unwrap();
    roundtrip(&mut s, b"x").await;
    h.stop().await;
}
