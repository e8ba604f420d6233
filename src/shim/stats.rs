//! The shim's live counters: connections, bytes each way, and what each fault did.
//!
//! Plain relaxed atomics: readers (the status line, the report) want a recent value, not a
//! consistent snapshot across counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::scenario::Direction;

/// A snapshot of the shim's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShimStats {
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Connections accepted and not yet closed.
    pub open: u64,
    /// Bytes written to the server (client → server).
    pub bytes_up: u64,
    /// Bytes written to the clients (server → client).
    pub bytes_down: u64,
    /// One entry per fault the shim has had, in the order they came (scenario order,
    /// then faults added while it runs, withdrawn ones included).
    pub faults: Vec<FaultStats>,
}

/// What one fault did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub name: String,
    pub kind: String,
    /// Connection-windows touched: a connection counts once per window (once per firing
    /// for instantaneous faults), as its `FaultTouched` events do.
    pub touches: u64,
    /// Bytes the fault acted on so far (delayed, throttled, dropped, corrupted, …), live.
    /// The ledger reaches the same total once every window has reported.
    pub bytes_affected: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    /// Indexed by plan; grows when a fault is added while the shim runs.
    faults: boxcar::Vec<(String, String, FaultCounters)>,
}

#[derive(Debug, Default)]
struct FaultCounters {
    touches: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    /// Counters for faults named and of the kinds given, in plan order.
    pub fn new(faults: impl IntoIterator<Item = (String, String)>) -> Self {
        let faults = faults
            .into_iter()
            .map(|(n, k)| (n, k, FaultCounters::default()))
            .collect();
        Self {
            faults,
            ..Self::default()
        }
    }

    /// Counters for a fault added while the shim runs; its index is the plan's.
    pub fn push_fault(&self, name: String, kind: String) -> usize {
        self.faults.push((name, kind, FaultCounters::default()))
    }

    pub fn add_bytes(&self, dir: Direction, n: usize) {
        let counter = match dir {
            Direction::Downstream => &self.bytes_down,
            _ => &self.bytes_up,
        };
        counter.fetch_add(n as u64, Relaxed);
    }

    pub fn touched(&self, plan: usize) {
        self.faults[plan].2.touches.fetch_add(1, Relaxed);
    }

    pub fn affected(&self, plan: usize, bytes: usize) {
        self.faults[plan].2.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a connection open until the guard drops.
    pub fn open_guard(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Relaxed);
        OpenGuard(self)
    }

    pub fn snapshot(&self) -> ShimStats {
        ShimStats {
            accepted: self.accepted.load(Relaxed),
            open: self.open.load(Relaxed),
            bytes_up: self.bytes_up.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            faults: self
                .faults
                .iter()
                .map(|(_, (name, kind, c))| FaultStats {
                    name: name.clone(),
                    kind: kind.clone(),
                    touches: c.touches.load(Relaxed),
                    bytes_affected: c.bytes.load(Relaxed),
                })
                .collect(),
        }
    }
}

pub(crate) struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}
