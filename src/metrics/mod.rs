//! Counters, HDR histograms and the per-second timeline.
//!
//! Recording never contends: each worker thread owns a [`Local`] (found through a
//! thread-local slot) and locks only its own, uncontended mutex; [`Metrics::snapshot`]
//! merges the locals at the end. Histograms are per thread and per client group, never
//! per client: one 3-significant-digit histogram over 1 µs–1 h is ~180 KiB.

mod histogram;
mod names;
mod snapshot;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use hdrhistogram::Histogram;

use crate::clock::Clock;

pub use histogram::{DecodeError, MAX_COUNT, MAX_MICROS, Summary, decode, encode};
pub use names::{Counter, Hist, Tick};
pub use snapshot::{GroupTotals, Snapshot, TimelineRow};

/// The metrics of one run. Cheap to clone; every clone records into the same run.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    clock: Clock,
    groups: Vec<String>,
    locals: Mutex<Vec<Arc<Mutex<Local>>>>,
    connected: AtomicI64,
    connected_peak: AtomicI64,
    /// Sampled once a second by [`Metrics::sample_second`]: (connected, active faults).
    samples: Mutex<Vec<(i64, Vec<String>)>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's local recorder for each live `Metrics`, by id.
    static SLOTS: RefCell<Vec<(u64, Weak<Mutex<Local>>)>> = const { RefCell::new(Vec::new()) };
}

/// What one thread recorded, per client group.
pub struct Local {
    groups: Vec<GroupLocal>,
}

pub(crate) struct GroupLocal {
    pub(crate) counters: [u64; Counter::ALL.len()],
    pub(crate) close_codes: BTreeMap<u16, u64>,
    /// Allocated on first record: most threads never see most histograms.
    pub(crate) hists: [Option<Histogram<u64>>; Hist::ALL.len()],
    /// Per-second rows, indexed by whole seconds since the run started.
    pub(crate) ticks: Vec<[u64; Tick::COUNT]>,
}

impl GroupLocal {
    fn new() -> Self {
        GroupLocal {
            counters: [0; Counter::ALL.len()],
            close_codes: BTreeMap::new(),
            hists: Default::default(),
            ticks: Vec::new(),
        }
    }
}

/// Records for one client group; handed to a recording closure by [`Metrics::record`].
pub struct Recorder<'a> {
    group: &'a mut GroupLocal,
    second: usize,
}

impl Recorder<'_> {
    pub fn count(&mut self, c: Counter, n: u64) {
        let slot = &mut self.group.counters[c.index()];
        *slot = slot.saturating_add(n);
    }

    /// Records a sample; values above the histogram's range saturate at its top.
    pub fn record(&mut self, h: Hist, value: u64) {
        self.group.hists[h.index()]
            .get_or_insert_with(|| histogram::new(h.max()))
            .saturating_record(value.max(if h.is_micros() { 1 } else { 0 }));
    }

    pub fn close_code(&mut self, code: u16) {
        *self.group.close_codes.entry(code).or_default() += 1;
    }

    /// Adds to this second's row of the timeline.
    pub fn tick(&mut self, t: Tick, n: u64) {
        // A run is bounded (validated to at most 30 days), so the row index stays sane.
        if self.group.ticks.len() <= self.second {
            self.group.ticks.resize(self.second + 1, [0; Tick::COUNT]);
        }
        self.group.ticks[self.second][t as usize] += n;
    }
}

impl Metrics {
    /// Metrics for a run whose clients fall in `groups` (at least one name).
    pub fn new(clock: Clock, groups: Vec<String>) -> Self {
        let groups = if groups.is_empty() {
            vec!["default".to_string()]
        } else {
            groups
        };
        Metrics {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                clock,
                groups,
                locals: Mutex::new(Vec::new()),
                connected: AtomicI64::new(0),
                connected_peak: AtomicI64::new(0),
                samples: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    pub fn group_names(&self) -> &[String] {
        &self.inner.groups
    }

    /// Runs `f` on this thread's recorder for `group` (an index into the group names;
    /// out-of-range indices record into the last group rather than panic).
    pub fn record<R>(&self, group: usize, f: impl FnOnce(&mut Recorder<'_>) -> R) -> R {
        let local = self.local();
        // Only this thread and the final merge ever lock it, so this never waits on
        // another recorder; a poisoned lock still holds valid counts.
        let mut local = local.lock().unwrap_or_else(|e| e.into_inner());
        let idx = group.min(local.groups.len() - 1);
        let second = self.inner.clock.elapsed().as_secs() as usize;
        f(&mut Recorder {
            group: &mut local.groups[idx],
            second,
        })
    }

    fn local(&self) -> Arc<Mutex<Local>> {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some(found) = slots
                .iter()
                .find(|(id, _)| *id == self.inner.id)
                .and_then(|(_, weak)| weak.upgrade())
            {
                return found;
            }
            slots.retain(|(_, weak)| weak.strong_count() > 0);
            let local = Arc::new(Mutex::new(Local {
                groups: self
                    .inner
                    .groups
                    .iter()
                    .map(|_| GroupLocal::new())
                    .collect(),
            }));
            self.inner
                .locals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(local.clone());
            slots.push((self.inner.id, Arc::downgrade(&local)));
            local
        })
    }

    /// A client connected: the gauge of connected clients and its peak.
    pub fn connected(&self) {
        let now = self.inner.connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.connected_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// A client's connection ended.
    pub fn disconnected(&self) {
        self.inner.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// Clients connected right now.
    pub fn connected_now(&self) -> i64 {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Called once a second by the run: samples the gauges into the timeline.
    pub fn sample_second(&self, active_faults: Vec<String>) {
        let connected = self.connected_now();
        self.inner
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((connected, active_faults));
    }

    /// Visits every thread's recordings of every group, one thread's lock at a time.
    fn for_each_group(&self, mut f: impl FnMut(&GroupLocal)) {
        let locals = self
            .inner
            .locals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for l in &locals {
            let l = l.lock().unwrap_or_else(|e| e.into_inner());
            l.groups.iter().for_each(&mut f);
        }
    }

    /// The run-wide counters so far, without merging histograms: cheap enough for a
    /// once-a-second status line.
    pub fn peek(&self, c: Counter) -> u64 {
        let mut sum = 0u64;
        self.for_each_group(|g| sum = sum.saturating_add(g.counters[c.index()]));
        sum
    }

    /// A quantile of one histogram across all threads so far (for the live view);
    /// `None` before the first sample.
    pub fn peek_quantile(&self, h: Hist, q: f64) -> Option<u64> {
        let mut sum = histogram::new(h.max());
        self.for_each_group(|g| {
            if let Some(part) = &g.hists[h.index()] {
                let _ = sum.add(part);
            }
        });
        (!sum.is_empty()).then(|| sum.value_at_quantile(q))
    }

    /// Merges every thread's recordings into one immutable snapshot. Recording may go on
    /// meanwhile; the snapshot holds what was recorded when each local was read.
    pub fn snapshot(&self) -> Snapshot {
        let locals = self
            .inner
            .locals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let samples = self
            .inner
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let peak = self.inner.connected_peak.load(Ordering::Relaxed).max(0) as u64;
        let guards: Vec<_> = locals
            .iter()
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let parts: Vec<&[GroupLocal]> = guards.iter().map(|g| g.groups.as_slice()).collect();
        Snapshot::merge(&self.inner.groups, &parts, &samples, peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_many_threads_merge_exactly() {
        let m = Metrics::new(Clock::start(), vec!["a".into(), "b".into()]);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let m = m.clone();
                s.spawn(move || {
                    for i in 0..1000u64 {
                        m.record((i % 2) as usize, |r| {
                            r.count(Counter::MessagesSent, 1);
                            r.record(Hist::MessageRtt, 100 + t);
                            r.tick(Tick::MessagesSent, 1);
                        });
                    }
                });
            }
        });
        m.connected();
        m.connected();
        m.disconnected();
        let snap = m.snapshot();
        assert_eq!(snap.total.counter(Counter::MessagesSent), 4000);
        assert_eq!(snap.groups[0].counter(Counter::MessagesSent), 2000);
        assert_eq!(snap.total.hist(Hist::MessageRtt).len(), 4000);
        assert_eq!(snap.clients_connected_peak, 2);
        assert_eq!(snap.timeline[0].messages_sent, 4000);
    }

    #[test]
    fn separate_runs_do_not_share_recorders() {
        let a = Metrics::new(Clock::start(), vec![]);
        let b = Metrics::new(Clock::start(), vec![]);
        a.record(0, |r| r.count(Counter::Disconnects, 1));
        b.record(7, |r| r.count(Counter::Disconnects, 2));
        assert_eq!(a.snapshot().total.counter(Counter::Disconnects), 1);
        assert_eq!(b.snapshot().total.counter(Counter::Disconnects), 2);
    }
}
