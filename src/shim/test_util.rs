//! Helpers for the shim's tests: an echo server, a shim on port 0 with its ledger, clients
//! that announce their index, and probes for "still working" versus "reset".

use std::io;
use std::net::SocketAddr;
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
use crate::events::{EventSink, FaultSummary, spawn_log};
use crate::scenario::{Connections, Direction, NetworkFault, NetworkFaultKind, Window};

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

/// A shim started the way `run` starts it, with an event log folding into a ledger.
pub(crate) struct Harness {
    pub handle: ShimHandle,
    token: CancellationToken,
    tracker: TaskTracker,
    ledger: JoinHandle<Vec<FaultSummary>>,
}

impl Harness {
    /// Numbers the faults in order (`id`, `<kind>#<id>`) and starts a shim in front of
    /// `upstream`.
    pub async fn start(
        mut faults: Vec<NetworkFault>,
        seed: u64,
        upstream: SocketAddr,
        identify: bool,
    ) -> Self {
        for (i, f) in faults.iter_mut().enumerate() {
            f.id = i;
            f.name = format!("{}#{i}", f.kind.name());
        }
        let clock = Clock::start();
        let (events, ledger) = spawn_log(clock, None).unwrap();
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let cfg = ShimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream,
            faults,
            seed,
            identify_clients: identify,
        };
        let handle = Shim::start(cfg, clock, events, token.clone(), tracker.clone())
            .await
            .unwrap();
        Self {
            handle,
            token,
            tracker,
            ledger,
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
        self.shutdown().await;
        drop(self.handle);
        tokio::time::timeout(LIMIT, self.ledger)
            .await
            .expect("event log ends")
            .unwrap()
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
        for plan in 0..shared.plans.len() {
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
