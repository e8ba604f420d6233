//! The fault-injecting TCP shim: a proxy between the virtual clients and the WebSocket
//! server that applies the scenario's network faults on the run's timeline.
//!
//! # Layout
//!
//! - `mod.rs`: the API ([`Shim::start`], [`ShimHandle`]) and the accept loop.
//! - `control`: faults added, replaced and withdrawn while the shim runs.
//! - `conn`: one proxied connection: identify the client, refuse it during a partition,
//!   apply connect-phase faults, dial, forward, close or abort.
//! - `identify`: the client index from the upgrade head's `x-squall-client` header.
//! - `link`: one direction of a connection: the no-fault fast path and the fault queue.
//! - `chain`: the fault stages active on one link, kept in step with the timeline.
//! - `timeline`: opens and closes fault windows, fires instantaneous faults, publishes
//!   the active set.
//! - `select`: which connections (clients) a fault touches.
//! - `registry`: the open connections, for faults that hit them at a moment.
//! - `faults`: the seam every fault kind plugs into, one file per kind.
//! - `ws`: WebSocket-aware faults (`ws_*`): frames followed after the upgrade, whole
//!   messages dropped, delayed, repeated, reordered or rewritten, frames injected.
//! - `ledger`: `FaultTouched` events (one per connection per window, exact bytes) and
//!   the touch board.
//! - `stats`: live counters.
//!
//! # Promises
//!
//! - The accept loop never waits on the server: each connection dials in its own task.
//! - Faults choose clients, not accept order, when the client is known; every random
//!   choice derives from the run seed, the fault id and the connection or firing, so the
//!   same seed replays the same decisions and no two connections share a stream.
//! - Delays count from each chunk's arrival and never reorder a stream.
//! - A connection no fault acts on forwards with no per-chunk allocation.
//! - Faults the shim cannot apply are refused at [`Shim::start`] (or when added), never
//!   skipped.
//! - Adding or withdrawing a fault while traffic flows never makes a connection wait on
//!   the caller: the change is one swap of the active set the links already watch.

mod chain;
mod conn;
mod control;
mod faults;
mod identify;
mod ledger;
mod link;
mod registry;
mod select;
mod stats;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
mod timeline;
pub(crate) mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use stats::{FaultStats, ShimStats};
pub use ws::split::MAX_HELD;

use crate::clock::Clock;
use crate::events::EventSink;
use crate::exhaustion::AcceptErrors;
use crate::scenario::NetworkFault;
use crate::touch::TouchBoard;
use control::Control;
use faults::Plan;
use registry::Registry;
use stats::Counters;
use timeline::ActiveSet;

/// What the shim proxies and which faults it applies.
#[derive(Debug, Clone)]
pub struct ShimConfig {
    /// Where to listen; `127.0.0.1:0` in `run` and tests.
    pub listen: SocketAddr,
    /// The server every connection is forwarded to.
    pub upstream: SocketAddr,
    pub faults: Vec<NetworkFault>,
    /// The run seed; every fault decision derives from it.
    pub seed: u64,
    /// Read the client's HTTP upgrade head to learn its client index from the
    /// `x-squall-client: <n>` header (so `connections: [3, 7]` and shares pick clients, not
    /// accept order). Off for arbitrary TCP protocols (`squall proxy` without `--identify`).
    pub identify_clients: bool,
    /// Where faults stamp the time they first break an identified client's link (reset,
    /// close, limit_data closing, a blackhole or partition starting, the first chunk
    /// dropped, corrupted or duplicated, the first message dropped, reordered or made
    /// invalid, a close frame sent, a pong swallowed), so clients time their detection
    /// from the fault. Not for faults that only slow a link (latency, bandwidth, slicer,
    /// slow_close, ws_delay, a pong delayed) nor for ws_duplicate (a correct receiver
    /// drops the copy).
    pub touches: Option<Arc<TouchBoard>>,
    /// Most payload bytes of one WebSocket frame or message the shim holds while a `ws_*`
    /// fault acts on whole messages; a larger one passes unheld. [`MAX_HELD`] (16 MiB)
    /// for arbitrary peers; a run gives the largest message its peers accept, so a peer
    /// cannot make the shim hold more than they would.
    pub max_held: u64,
    /// No fault window opens and no instantaneous fault fires at or after this time on
    /// the run clock: a run's end (its drain is not part of the fault timeline, as
    /// `Window::spans` plans it); `None` for the proxy, whose faults run until removed.
    pub until: Option<std::time::Duration>,
}

#[derive(thiserror::Error, Debug)]
pub enum ShimError {
    #[error("shim cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("network fault kind `{kind}` is not supported by the shim yet")]
    Unsupported { kind: String },
    #[error("network fault `{name}`: {reason}")]
    Invalid { name: String, reason: String },
    #[error("a network fault named `{name}` is in place already")]
    Duplicate { name: String },
    #[error("this shim has had {max} faults already; start a new one")]
    TooManyFaults { max: usize },
}

/// Whether a shim could apply `fault` ([`ShimHandle::add_fault`] refuses the same), without
/// starting one: for faults kept while a proxy is disabled.
pub fn check_fault(fault: &NetworkFault) -> Result<(), ShimError> {
    Plan::new(fault, 0).map(|_| ())
}

/// Starts the shim.
pub struct Shim;

impl Shim {
    /// Binds, starts the fault timeline and the accept loop on `tracker`, and returns at
    /// once. Everything stops when `token` is cancelled: the listener closes, connections
    /// close, windows still open are recorded as stopped.
    pub async fn start(
        cfg: ShimConfig,
        clock: Clock,
        events: EventSink,
        token: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<ShimHandle, ShimError> {
        let plans = cfg
            .faults
            .iter()
            .map(|f| Plan::new(f, cfg.seed))
            .collect::<Result<Vec<_>, _>>()?;
        let listener = crate::net::listen(cfg.listen).map_err(|source| ShimError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ShimError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let shared = Arc::new(
            Shared::new(plans, cfg.upstream, cfg.identify_clients, clock, events)
                .with_touches(cfg.touches)
                .with_seed(cfg.seed)
                .with_max_held(cfg.max_held)
                .with_until(cfg.until),
        );
        let control = Arc::new(Control::new(token.clone(), tracker.clone()));
        control.start_all(&shared);
        tracker.spawn(accept_loop(
            listener,
            shared.clone(),
            token,
            tracker.clone(),
        ));
        Ok(ShimHandle {
            shared,
            local_addr,
            control,
        })
    }
}

/// A running shim. Cheap to clone.
#[derive(Clone)]
pub struct ShimHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    control: Arc<Control>,
}

impl std::fmt::Debug for ShimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShimHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ShimHandle {
    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Names of the faults whose window is open now (a repeating instantaneous fault while
    /// its span is open), in scenario order.
    pub fn active_faults(&self) -> Vec<String> {
        let set = self.shared.active.borrow().clone();
        let mut names: Vec<String> = set
            .open
            .iter()
            .map(|o| self.shared.plans[o.plan].fault.name.clone())
            .collect();
        names.dedup();
        names
    }

    pub fn stats(&self) -> ShimStats {
        self.shared.stats.snapshot()
    }

    /// Puts `fault` in place while the shim runs, on the connections open now and to
    /// come. Its `at` counts from now, not from the shim's start; its `id` is assigned.
    /// Refused, with nothing changed, when the shim cannot apply it or its name is taken.
    /// Returns its name: as given, or `<kind>#<id>` when it had none.
    pub fn add_fault(&self, fault: NetworkFault) -> Result<String, ShimError> {
        self.control.add(&self.shared, fault, false)
    }

    /// Replaces the fault named like `fault` (or adds it) in one step: its old windows
    /// close, the new ones open from now, and no connection sees both or neither.
    pub fn replace_fault(&self, fault: NetworkFault) -> Result<String, ShimError> {
        self.control.add(&self.shared, fault, true)
    }

    /// Withdraws the fault named `name`: its windows close now and the links drop its
    /// stages. False if no such fault is in place.
    pub fn remove_fault(&self, name: &str) -> bool {
        self.control.remove(&self.shared, name)
    }

    /// The faults in place (added and not withdrawn), in the order they were added, as
    /// they were given (an added fault's `at` counts from when it was added).
    pub fn faults(&self) -> Vec<NetworkFault> {
        self.control.faults()
    }
}

/// What every task of one shim shares.
pub(crate) struct Shared {
    /// Every fault the shim has had, indexed by plan number; append-only, so links and
    /// the timeline index it without a lock while faults are added.
    pub plans: boxcar::Vec<Plan>,
    /// The run seed, for faults added later.
    pub seed: u64,
    pub upstream: SocketAddr,
    pub identify_clients: bool,
    pub clock: Clock,
    pub events: EventSink,
    pub touches: Option<Arc<TouchBoard>>,
    /// Most payload bytes of one WebSocket frame or message held ([`ShimConfig::max_held`]).
    pub max_held: u64,
    /// The end of the fault timeline ([`ShimConfig::until`]).
    pub until: Option<std::time::Duration>,
    pub registry: Registry,
    pub stats: Counters,
    /// The open windows; links watch it, the timeline writes it.
    pub active: watch::Sender<Arc<ActiveSet>>,
}

impl Shared {
    pub fn new(
        plans: Vec<Plan>,
        upstream: SocketAddr,
        identify_clients: bool,
        clock: Clock,
        events: EventSink,
    ) -> Self {
        let stats = Counters::new(
            plans
                .iter()
                .map(|p| (p.fault.name.clone(), p.kind().to_string())),
        );
        Self {
            plans: plans.into_iter().collect(),
            seed: 0,
            upstream,
            identify_clients,
            clock,
            events,
            touches: None,
            max_held: MAX_HELD,
            until: None,
            registry: Registry::default(),
            stats,
            active: watch::Sender::new(Arc::new(ActiveSet::default())),
        }
    }

    pub fn with_touches(mut self, touches: Option<Arc<TouchBoard>>) -> Self {
        self.touches = touches;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_max_held(mut self, max_held: u64) -> Self {
        self.max_held = max_held;
        self
    }

    pub fn with_until(mut self, until: Option<std::time::Duration>) -> Self {
        self.until = until;
        self
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let mut next_conn: u64 = 0;
    let mut errors = AcceptErrors::new("shim");
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _peer)) => {
                errors.succeeded();
                let conn = next_conn;
                next_conn += 1;
                shared.stats.accepted.fetch_add(1, Relaxed);
                tracker.spawn(conn::serve(
                    shared.clone(),
                    stream,
                    conn,
                    token.child_token(),
                ));
            }
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning (logged
                // once per streak); the pending clients wait in the backlog.
                let pause = errors.failed(&e);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
