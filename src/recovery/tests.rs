//! The engine's timing on tokio's paused clock, over in-memory pipes: backoff delays,
//! heartbeat detection and the acknowledgement deadline, to the millisecond, with no real
//! socket and no sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::scenario::{Jitter, defaults};

/// Hands each attempt one end of an in-memory pipe (after refusing the first few) and
/// the other end to the test's fake server; records when each attempt was made.
#[derive(Debug)]
struct PipeDialer {
    refusals: Mutex<u32>,
    attempts: Mutex<Vec<Instant>>,
    server_ends: mpsc::UnboundedSender<DuplexStream>,
}

impl Dialer for PipeDialer {
    fn dial<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<BoxedIo>> + Send + 'a>>
    {
        Box::pin(async move {
            self.attempts.lock().unwrap().push(Instant::now());
            let mut refusals = self.refusals.lock().unwrap();
            if *refusals > 0 {
                *refusals -= 1;
                return Err(std::io::ErrorKind::ConnectionRefused.into());
            }
            let (client, server) = tokio::io::duplex(64 * 1024);
            let _ = self.server_ends.send(server);
            Ok(Box::new(client) as BoxedIo)
        })
    }
}

/// How the fake server behaves once the WebSocket handshake is done.
#[derive(Clone, Copy)]
enum Server {
    /// Echo every message.
    Echo,
    /// Keep the pipe open, read nothing, send nothing: a half-open link.
    Silent,
    /// Read (so pings are answered) but never echo.
    Deaf,
}

fn start(
    refusals: u32,
    server: Server,
    tweak: impl FnOnce(&mut SessionConfig),
) -> (Arc<PipeDialer>, Session, SessionStreams, CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel::<DuplexStream>();
    tokio::spawn(async move {
        while let Some(end) = rx.recv().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(end).await else {
                    return;
                };
                match server {
                    Server::Silent => std::future::pending::<()>().await,
                    Server::Deaf => while ws.next().await.is_some() {},
                    Server::Echo => {
                        while let Some(Ok(m)) = ws.next().await {
                            if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let dialer = Arc::new(PipeDialer {
        refusals: Mutex::new(refusals),
        attempts: Mutex::new(vec![]),
        server_ends: tx,
    });
    let mut policy = defaults::recovery();
    policy.backoff.initial = Duration::from_millis(100);
    policy.backoff.max = Duration::from_secs(1);
    policy.backoff.jitter = Jitter::None;
    let mut config = SessionConfig {
        url: "ws://pipe.invalid/ws".into(),
        session: "paused".into(),
        protocol: Protocol::Echo,
        headers: vec![],
        subprotocols: vec![],
        policy,
        kind: MessageKind::Text,
        rng: crate::rng::rng(1, "backoff", 0),
        dialer: Some(dialer.clone()),
        tls: None,
        max_message_bytes: crate::recovery::DEFAULT_MAX_MESSAGE_BYTES,
    };
    tweak(&mut config);
    let token = CancellationToken::new();
    let (session, streams) = Session::open(config, token.clone());
    (dialer, session, streams, token)
}

/// The next event that is not a state change, and when it arrived.
async fn next_event(streams: &mut SessionStreams) -> (SessionEvent, Instant) {
    loop {
        let ev = streams.events.recv().await.expect("session ended");
        if !matches!(ev, SessionEvent::StateChanged { .. }) {
            return (ev, Instant::now());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn refused_attempts_follow_the_backoff_schedule_exactly() {
    let (dialer, session, mut streams, token) = start(5, Server::Echo, |_| {});
    session.send("x").await.unwrap();
    loop {
        if let (SessionEvent::Connected { attempt, .. }, _) = next_event(&mut streams).await {
            assert_eq!(attempt, 6);
            break;
        }
    }
    let attempts = dialer.attempts.lock().unwrap().clone();
    let gaps: Vec<u128> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 100 ms doubling, capped at 1 s before (no) jitter.
    assert_eq!(gaps, [100, 200, 400, 800, 1000]);
    let delivered = streams.delivered.recv().await.unwrap();
    assert_eq!(delivered.seq, 1);
    assert_eq!(
        delivered.retransmits, 0,
        "the message waited in the outbox, written once"
    );
    token.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_declared_dead_after_interval_plus_timeout() {
    let (_dialer, _session, mut streams, token) = start(0, Server::Silent, |c| {
        c.policy.heartbeat.interval = Duration::from_secs(2);
        c.policy.heartbeat.timeout = Duration::from_secs(3);
    });
    let (ev, live_at) = next_event(&mut streams).await;
    assert!(matches!(ev, SessionEvent::Connected { .. }), "{ev:?}");
    let (ev, at) = next_event(&mut streams).await;
    let SessionEvent::Disconnected { reason, .. } = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(reason, Disconnect::HeartbeatMissed);
    assert_eq!(
        at - live_at,
        Duration::from_secs(5),
        "interval 2 s + timeout 3 s, to the tick"
    );
    token.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_server_that_answers_pings_but_never_confirms_hits_the_ack_deadline() {
    let (_dialer, session, mut streams, token) = start(0, Server::Deaf, |c| {
        c.policy.heartbeat.interval = Duration::from_millis(500);
        c.policy.heartbeat.timeout = Duration::from_millis(500);
        c.policy.retransmit.ack_timeout = Duration::from_secs(3);
    });
    let (ev, _) = next_event(&mut streams).await;
    assert!(matches!(ev, SessionEvent::Connected { .. }), "{ev:?}");
    let sent_at = Instant::now();
    session.send("are you there").await.unwrap();
    let (ev, at) = next_event(&mut streams).await;
    let SessionEvent::Disconnected { reason, .. } = ev else {
        panic!("{ev:?}")
    };
    // Pings were answered all along, so only the acknowledgement deadline can fire.
    assert_eq!(reason, Disconnect::AckTimeout);
    let waited = at - sent_at;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3010),
        "{waited:?}"
    );
    token.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_retry_limit_gives_up_and_says_so() {
    let (dialer, session, mut streams, _token) =
        start(100, Server::Echo, |c| c.policy.max_attempts = Some(3));
    session.send("never").await.unwrap();
    let outcome = streams.outcome.await.unwrap();
    assert!(
        matches!(outcome.end, End::Failed(ref why) if why.contains("3 attempts")),
        "{outcome:?}"
    );
    assert_eq!(outcome.undelivered, 1, "owed, not silently dropped");
    assert_eq!(dialer.attempts.lock().unwrap().len(), 3);
    let mut gave_up = false;
    while let Ok(ev) = streams.events.try_recv() {
        gave_up |= matches!(ev, SessionEvent::GaveUp { .. });
    }
    assert!(gave_up);
}

#[tokio::test(start_paused = true)]
async fn echoes_confirm_in_order_and_the_session_drains() {
    let (_dialer, session, mut streams, _token) = start(0, Server::Echo, |_| {});
    for i in 0..50 {
        session.send(format!("message {i}")).await.unwrap();
    }
    drop(session);
    let outcome = streams.outcome.await.unwrap();
    assert_eq!(outcome.end, End::Drained);
    assert_eq!(outcome.undelivered, 0);
    let mut seqs = vec![];
    while let Ok(d) = streams.delivered.try_recv() {
        seqs.push(d.seq);
    }
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // The frame really carried the sequence number, as docs/recovery.md says.
    assert_eq!(
        decode_seq(&Message::text(format!("{:016x}tail", 7))),
        Some(7)
    );
}
