//! Helpers for the shim's tests: an echo server, a shim on port 0 with its ledger, clients
//! that announce their index, and probes for "still working" versus "reset".

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::faults::Plan;
use super::select::Members;
use super::timeline::Open;
use super::{Shared, Shim, ShimConfig, ShimHandle};
use crate::clock::Clock;
use crate::events::{EventSink, FaultSummary, Record, spawn_log};
use crate::scenario::{Connections, Direction, NetworkFault, NetworkFaultKind, Window};
use crate::touch::TouchBoard;

/// Bounds every wait in a test, so a bug fails the test instead of hanging it.
pub(crate) const LIMIT: Duration = Duration::from_secs(5);

/// A fault on all connections, both directions, from `at` for `length`.
pub(crate) fn fault(
    kind: NetworkFaultKind,
    at: Duration,
    length: Option<Duration>,
) -> NetworkFault {
    NetworkFault {
        id: 0,
        name: format!("{}#0", kind.name()),
        kind,
        direction: Direction::Both,
        connections: Connections::All,
        window: Window {
            at,
            length,
            every: None,
            stagger: Duration::ZERO,
        },
    }
}

/// A TCP echo server on port 0: each connection gets its bytes back, and a FIN for a FIN.
pub(crate) async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Clients the harness's touch board has room for.
pub(crate) const BOARD_CLIENTS: usize = 64;

/// What a [`recording_server`] saw on one of its connections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Saw {
    Data(Vec<u8>),
    /// A normal end of stream (FIN).
    Eof,
    Error(io::ErrorKind),
}

/// A server that never writes and reports every read of every connection, in order:
/// (connection number, when, what).
pub(crate) async fn recording_server() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(usize, Instant, Saw)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = listener.accept().await {
            let (tx, conn) = (tx.clone(), n);
            n += 1;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let saw = match s.read(&mut buf).await {
                        Ok(0) => Saw::Eof,
                        Ok(k) => Saw::Data(buf[..k].to_vec()),
                        Err(e) => Saw::Error(e.kind()),
                    };
                    let last = !matches!(saw, Saw::Data(_));
                    if tx.send((conn, Instant::now(), saw)).is_err() || last {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Collects what a [`recording_server`] saw until the first connection ends (or `LIMIT`
/// passes): the bytes it read, and how it ended with when.
pub(crate) async fn until_end(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, Instant, Saw)>,
) -> (Vec<u8>, Option<(Instant, Saw)>) {
    let mut data = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while let Ok(Some((_, at, saw))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match saw {
            Saw::Data(d) => data.extend_from_slice(&d),
            end => return (data, Some((at, end))),
        }
    }
    (data, None)
}

/// Reads what arrives on `s` within `wait`: the bytes, and whether the stream ended
/// (`Some(Ok)` on FIN, `Some(Err)` on an error).
pub(crate) async fn read_for(
    s: &mut TcpStream,
    wait: Duration,
) -> (Vec<u8>, Option<io::Result<()>>) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0)) => return (got, Some(Ok(()))),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (got, Some(Err(e))),
        }
    }
}

/// A shim started the way `run` starts it, with an event log folding into a ledger and a
/// touch board.
pub(crate) struct Harness {
    pub handle: ShimHandle,
    pub board: Arc<TouchBoard>,
    pub clock: Clock,
    token: CancellationToken,
    tracker: TaskTracker,
    ledger: JoinHandle<Vec<FaultSummary>>,
    log: Option<PathBuf>,
}

impl Harness {
    /// Numbers the faults in order (`id`, `<kind>#<id>`) and starts a shim in front of
    /// `upstream`.
    pub async fn start(
        faults: Vec<NetworkFault>,
        seed: u64,
        upstream: SocketAddr,
        identify: bool,
    ) -> Self {
        Self::start_inner(faults, seed, upstream, identify, None).await
    }

    /// As [`Harness::start`], also writing `events.jsonl` to a temporary file that
    /// [`Harness::stop_with_events`] reads back.
    pub async fn start_logged(
        faults: Vec<NetworkFault>,
        seed: u64,
        upstream: SocketAddr,
        identify: bool,
    ) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "squall-shim-{}-{}.jsonl",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Self::start_inner(faults, seed, upstream, identify, Some(path)).await
    }

    async fn start_inner(
        mut faults: Vec<NetworkFault>,
        seed: u64,
        upstream: SocketAddr,
        identify: bool,
        log: Option<PathBuf>,
    ) -> Self {
        for (i, f) in faults.iter_mut().enumerate() {
            f.id = i;
            f.name = format!("{}#{i}", f.kind.name());
        }
        let clock = Clock::start();
        let (events, ledger) = spawn_log(clock, log.clone()).unwrap();
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let board = Arc::new(TouchBoard::new(BOARD_CLIENTS));
        let cfg = ShimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream,
            faults,
            seed,
            identify_clients: identify,
            touches: Some(board.clone()),
            max_held: crate::shim::MAX_HELD,
            until: None,
        };
        let handle = Shim::start(cfg, clock, events, token.clone(), tracker.clone())
            .await
            .unwrap();
        Self {
            handle,
            board,
            clock,
            token,
            tracker,
            ledger,
            log,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Cancels the shim and checks every task ends.
    pub async fn shutdown(&self) {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(LIMIT, self.tracker.wait())
            .await
            .expect("shim tasks end on cancel");
    }

    /// Shuts down and returns the fault ledger.
    pub async fn stop(self) -> Vec<FaultSummary> {
        self.stop_with_events().await.0
    }

    /// Shuts down; the fault ledger and, when started logged, every event recorded.
    pub async fn stop_with_events(self) -> (Vec<FaultSummary>, Vec<Record>) {
        self.shutdown().await;
        drop(self.handle);
        let ledger = tokio::time::timeout(LIMIT, self.ledger)
            .await
            .expect("event log ends")
            .unwrap();
        let events = match &self.log {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap();
                let _ = std::fs::remove_file(path);
                text.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect()
            }
            None => Vec::new(),
        };
        (ledger, events)
    }
}

/// An upgrade head announcing client `index`.
pub(crate) fn head(index: u32) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: squall\r\nUpgrade: websocket\r\nx-squall-client: {index}\r\n\r\n"
    )
    .into_bytes()
}

/// Connects through a shim in front of an echo server as client `index`, and reads the
/// echoed head back so the stream is ready for payload.
pub(crate) async fn connect_as(addr: SocketAddr, index: u32) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let h = head(index);
    s.write_all(&h).await.unwrap();
    let mut back = vec![0; h.len()];
    tokio::time::timeout(LIMIT, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, h);
    s
}

/// Sends `msg` and reads it back from an echo; the round-trip time.
pub(crate) async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t0 = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    tokio::time::timeout(LIMIT, s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(back, msg);
    t0.elapsed()
}

#[derive(Debug, PartialEq)]
pub(crate) enum Probe {
    /// The echo came back.
    Alive,
    /// ECONNRESET (or EPIPE on the write).
    Reset,
    /// A normal end of stream.
    Closed,
    Other(io::ErrorKind),
}

/// Whether an echo connection still works.
pub(crate) async fn probe(s: &mut TcpStream) -> Probe {
    let classify = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Probe::Reset,
        k => Probe::Other(k),
    };
    if let Err(e) = s.write_all(b"ping").await {
        return classify(e);
    }
    let mut back = [0u8; 4];
    match tokio::time::timeout(LIMIT, s.read_exact(&mut back))
        .await
        .expect("probe in time")
    {
        Ok(_) if &back == b"ping" => Probe::Alive,
        Ok(_) => Probe::Other(io::ErrorKind::InvalidData),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Probe::Closed,
        Err(e) => classify(e),
    }
}

/// A `Shared` without sockets or timeline, for tests of links over in-memory pipes.
pub(crate) fn shared_for_test(faults: Vec<NetworkFault>, events: EventSink) -> Shared {
    let plans = faults.iter().map(|f| Plan::new(f, 1).unwrap()).collect();
    Shared::new(
        plans,
        "127.0.0.1:9".parse().unwrap(),
        false,
        events.clock(),
        events,
    )
}

/// Opens window 0 of every fault for every connection, as the timeline would at `at`.
pub(crate) fn open_all(shared: &Arc<Shared>) {
    shared.active.send_modify(|set| {
        let mut next = super::timeline::ActiveSet::clone(set);
        for plan in 0..shared.plans.count() {
            next.open.push(Open {
                plan,
                window: 0,
                opened: Instant::now(),
                members: Arc::new(Members::All),
            });
        }
        *set = Arc::new(next);
    });
}
