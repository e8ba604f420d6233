//! The recovery engine as a library: a session to squall's built-in server that survives
//! a server restart without losing or duplicating a message.
//!
//!     cargo run --example session
//!
//! It starts the built-in server on 127.0.0.1, opens a session, sends 50 messages, stops
//! the server halfway (every connection closed with 1001) and starts it again on the same
//! port with the sessions it held. The session backs off, reconnects, resumes, resends
//! what was unacknowledged, and finishes with every message delivered exactly once.

use std::time::Duration;

use squall::recovery::{Session, SessionConfig, SessionEvent};
use squall::scenario::{MessageKind, Protocol, defaults};
use squall::target::{self, ServerState};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_cfg = defaults::builtin_target();
    let state = ServerState::new(&server_cfg);
    let tracker = TaskTracker::new();
    let first = CancellationToken::new();
    let server = target::start_with(
        "127.0.0.1:0".parse()?,
        &server_cfg,
        state.clone(),
        None,
        first.clone(),
        &tracker,
    )
    .await?;
    let addr = server.local_addr();
    println!("built-in server on {addr}");

    let config = SessionConfig {
        url: format!("ws://{addr}/ws"),
        session: "example-session".into(),
        protocol: Protocol::Squall,
        headers: vec![],
        subprotocols: vec![],
        policy: defaults::recovery(),
        kind: MessageKind::Text,
        rng: squall::rng::rng(7, "backoff", 0),
        dialer: None,
        tls: None,
        max_message_bytes: squall::recovery::DEFAULT_MAX_MESSAGE_BYTES,
    };
    let stop = CancellationToken::new();
    let (session, mut streams) = Session::open(config, stop.clone());

    let printer = tokio::spawn(async move {
        while let Some(event) = streams.events.recv().await {
            match event {
                SessionEvent::StateChanged { .. } => {}
                other => println!("event: {other:?}"),
            }
        }
    });

    for i in 1..=50u64 {
        // Payloads that start with a 16-hex-digit number let the server's ledger prove
        // each one arrived once.
        session.send(format!("{i:016x} hello number {i}")).await?;
        if i == 25 {
            println!("restarting the server…");
            first.cancel();
            tokio::time::sleep(Duration::from_millis(300)).await;
            target::start_with(
                addr,
                &server_cfg,
                state.clone(),
                None,
                CancellationToken::new(),
                &tracker,
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(session); // no more messages: the session finishes once all are acknowledged

    let outcome = tokio::time::timeout(Duration::from_secs(15), streams.outcome).await??;
    let _ = printer.await;
    let ledger = state.ledger.totals();
    println!(
        "outcome: {:?}, undelivered {}",
        outcome.end, outcome.undelivered
    );
    println!(
        "server received {} distinct messages, {} duplicates",
        ledger.unique, ledger.duplicates
    );
    assert_eq!(
        (ledger.unique, ledger.duplicates, outcome.undelivered),
        (50, 0, 0)
    );
    stop.cancel();
    Ok(())
}
