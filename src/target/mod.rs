//! The built-in target server: a real WebSocket server over TCP, in-process for `run`.
//!
//! Shaped like mini-redis's `server::run`: an accept loop that hands each connection to
//! its own task, every task on the run's tracker and watching its cancellation token.
//! A client offering the `squall.v1` subprotocol gets squall's protocol (sessions
//! resumable within `session_window`, exactly-once both ways); any other WebSocket client
//! gets a plain echo. In `echo` mode each message goes back to its sender.

mod connection;
mod control;
mod faults;
mod ledger;
mod sessions;
mod squall;

pub use control::{AcceptClose, Command, Control, Refusal, Restart};
pub use faults::spawn_faults;
pub use ledger::{DeliveryLedger, ID_DIGITS, LedgerTotals, message_id};
pub use sessions::SessionTable;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exhaustion::AcceptErrors;
use crate::metrics::Metrics;
use crate::protocol;
use crate::scenario::{BuiltinTarget, ServerMode};

/// Why the server could not start. Anything after start is an event, not an error.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the built-in server's `{0}` is not available yet")]
    Unsupported(&'static str),
}

/// Server-side counts the report uses.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub accepted: AtomicU64,
    pub handshakes: AtomicU64,
    pub failed_handshakes: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_received: AtomicU64,
}

/// A running built-in server.
#[derive(Clone)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stats: Arc<ServerStats>,
    sessions: Arc<SessionTable>,
    ledger: Arc<DeliveryLedger>,
    control: Arc<Control>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// What the server's application received, once and more than once.
    pub fn ledger(&self) -> LedgerTotals {
        self.ledger.totals()
    }

    /// The server's control state: where server faults act.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Sessions held now (connected or within their resume window).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }
}

/// What a server holds beyond its connections: sessions and the application's ledger.
/// A server restarted with the same state resumes its clients' sessions.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub sessions: Arc<SessionTable>,
    pub ledger: Arc<DeliveryLedger>,
}

impl ServerState {
    pub fn new(config: &BuiltinTarget) -> Self {
        ServerState {
            sessions: Arc::new(SessionTable::new(config.session_window)),
            ledger: Arc::new(DeliveryLedger::default()),
        }
    }
}

/// Binds `addr` (use port 0 for an OS-chosen port) and serves until `token` is cancelled.
/// With `metrics`, accepted handshakes go into the run's timeline.
pub async fn start(
    addr: SocketAddr,
    config: &BuiltinTarget,
    metrics: Option<Metrics>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<ServerHandle, TargetError> {
    start_with(
        addr,
        config,
        ServerState::new(config),
        metrics,
        token,
        tracker,
    )
    .await
}

/// [`start`] with the given state, as a restarted server that kept its sessions.
pub async fn start_with(
    addr: SocketAddr,
    config: &BuiltinTarget,
    state: ServerState,
    metrics: Option<Metrics>,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<ServerHandle, TargetError> {
    let listener = crate::net::listen(addr).map_err(|source| TargetError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TargetError::Bind { addr, source })?;
    let stats = Arc::new(ServerStats::default());
    let ServerState { sessions, ledger } = state;
    let (control, restarts) = Control::new(config.max_handshake_rate);
    let control = Arc::new(control);
    let handle = ServerHandle {
        local_addr,
        stats: stats.clone(),
        sessions: sessions.clone(),
        ledger: ledger.clone(),
        control: control.clone(),
    };
    // Sessions past their window are forgotten, so memory follows live sessions.
    let sweep = (sessions.clone(), token.clone());
    tracker.spawn(async move {
        let (sessions, token) = sweep;
        let period = sessions.window().max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(period) => { sessions.sweep(tokio::time::Instant::now()); }
            }
        }
    });
    let acceptor = Acceptor {
        stats,
        metrics,
        sessions,
        ledger,
        control,
        replay_buffer: config.replay_buffer,
        read_limit: protocol::read_limit(config.max_message_bytes),
        push: match config.mode {
            ServerMode::Echo => None,
            ServerMode::Stream { rate, size_bytes } => rate
                .interval()
                .map(|every| (every, size_bytes.min(64 << 20) as usize)),
        },
        token,
        tasks: tracker.clone(),
        next_id: 0,
    };
    tracker.spawn(acceptor.run(listener, local_addr, restarts));
    Ok(handle)
}

/// The accept loop, which also carries out restarts: close everything, stop listening
/// for `down_for` (new connections are refused), then listen again on the same address.
struct Acceptor {
    stats: Arc<ServerStats>,
    metrics: Option<Metrics>,
    sessions: Arc<SessionTable>,
    ledger: Arc<DeliveryLedger>,
    control: Arc<Control>,
    replay_buffer: usize,
    /// The largest message or frame read from a client (`protocol::read_limit`).
    read_limit: usize,
    push: Option<(Duration, usize)>,
    token: CancellationToken,
    tasks: TaskTracker,
    next_id: u64,
}

impl Acceptor {
    async fn run(
        mut self,
        mut listener: TcpListener,
        addr: SocketAddr,
        mut restarts: mpsc::UnboundedReceiver<Restart>,
    ) {
        let mut errors = AcceptErrors::new("built-in server");
        loop {
            let accepted = tokio::select! {
                _ = self.token.cancelled() => return,
                Some(r) = restarts.recv() => {
                    drop(listener);
                    match self.restart(r, addr).await {
                        Some(l) => { listener = l; continue; }
                        None => return,
                    }
                }
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    errors.succeeded();
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    self.next_id += 1;
                    let conn = connection::Connection {
                        id: self.next_id,
                        stats: self.stats.clone(),
                        metrics: self.metrics.clone(),
                        sessions: self.sessions.clone(),
                        ledger: self.ledger.clone(),
                        control: self.control.clone(),
                        replay_buffer: self.replay_buffer,
                        read_limit: self.read_limit,
                        push: self.push,
                        token: self.token.child_token(),
                    };
                    self.tasks.spawn(conn.serve(stream));
                }
                // Out of descriptors or a connection reset before accept: keep serving,
                // but do not spin while the condition lasts (logged once per streak).
                Err(e) => {
                    let pause = errors.failed(&e);
                    tokio::select! {
                        _ = self.token.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// Goes down for `r.down_for` and comes back on `addr`; `None` if cancelled meanwhile.
    async fn restart(&self, r: Restart, addr: SocketAddr) -> Option<TcpListener> {
        self.control.broadcast(&Command::Close {
            code: r.close_code,
            reason: "server restarting".into(),
            retry_after: Some(r.down_for),
        });
        if !r.keep_sessions {
            self.sessions.clear();
        }
        tokio::select! {
            _ = self.token.cancelled() => return None,
            _ = tokio::time::sleep(r.down_for) => {}
        }
        // The port was just ours; a socket in TIME_WAIT must not keep it from us.
        loop {
            match crate::net::listen(addr) {
                Ok(l) => return Some(l),
                Err(_) => tokio::select! {
                    _ = self.token.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::BuiltinTarget;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    fn echo() -> BuiltinTarget {
        BuiltinTarget {
            mode: ServerMode::Echo,
            session_window: Duration::from_secs(30),
            replay_buffer: 16,
            max_handshake_rate: None,
            max_message_bytes: 1024,
        }
    }

    /// The built-in echo server on a free port, with its token and tracker.
    async fn serve_echo() -> (ServerHandle, CancellationToken, TaskTracker) {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let server = start(
            "127.0.0.1:0".parse().unwrap(),
            &echo(),
            None,
            token.clone(),
            &tracker,
        )
        .await
        .unwrap();
        (server, token, tracker)
    }

    #[tokio::test]
    async fn echoes_text_and_binary_and_stops_on_cancel() {
        let (server, token, tracker) = serve_echo().await;
        let url = format!("ws://{}/", server.local_addr());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text("hello")).await.unwrap();
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(vec![1u8, 2, 3])
        );
        assert_eq!(server.stats().handshakes.load(Ordering::Relaxed), 1);
        token.cancel();
        tracker.close();
        // The server says goodbye with 1001 and every task ends.
        let next = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .unwrap();
        assert!(matches!(next, Some(Ok(Message::Close(Some(ref f)))) if u16::from(f.code) == 1001));
        tokio::time::timeout(Duration::from_secs(2), tracker.wait())
            .await
            .unwrap();
    }

    /// `accept_close`: the upgrade succeeds (101), then the connection's first and only
    /// frame is the close, with the fault's code; closed windows serve as usual.
    #[tokio::test]
    async fn accept_close_upgrades_then_closes_at_once() {
        let (server, token, _tracker) = serve_echo().await;
        let close = AcceptClose {
            code: 1013,
            reason: "at capacity".into(),
        };
        let rng = crate::rng::rng(1, "accept_close", 0);
        server
            .control()
            .start_accept_close(0, "full", close, crate::scenario::Share(1.0), rng);
        let url = format!("ws://{}/", server.local_addr());
        let (mut ws, response) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        let first = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .unwrap();
        match first {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(
                    (u16::from(f.code), f.reason.as_str()),
                    (1013, "at capacity")
                )
            }
            other => panic!("expected a close frame first, got {other:?}"),
        }
        assert_eq!(server.stats().handshakes.load(Ordering::Relaxed), 1);
        assert!(server.control().open_connections().is_empty());

        server.control().stop_accept_close("full");
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        ws.send(Message::text("served")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("served"));
        token.cancel();
    }

    #[tokio::test]
    async fn garbage_instead_of_a_handshake_is_counted_not_fatal() {
        use tokio::io::AsyncWriteExt;
        let (server, token, _tracker) = serve_echo().await;
        let mut raw = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        raw.write_all(b"\x00\xffnot http at all\r\n\r\n")
            .await
            .unwrap();
        drop(raw);
        let url = format!("ws://{}/", server.local_addr());
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws.send(Message::text("still here")).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text("still here")
        );
        assert_eq!(server.stats().failed_handshakes.load(Ordering::Relaxed), 1);
        token.cancel();
    }
}
