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
pub use names::{Counter, Hist, Peak, Tick};
pub use snapshot::{GroupTotals, ScopeTotals, Snapshot, TimelineRow, add_series};

/// The metrics of one run. Cheap to clone; every clone records into the same run.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    clock: Clock,
    groups: Vec<String>,
    scopes: Vec<ScopeDef>,
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

/// What one thread recorded, per client group, and per scope and client group.
pub struct Local {
    groups: Vec<GroupLocal>,
    scopes: Vec<Vec<GroupLocal>>,
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
/// Counters and histograms also go to every scope open at the moment of recording.
pub struct Recorder<'a> {
    local: &'a mut Local,
    group: usize,
    second: usize,
    /// Bit `i`: scope `i` covers this moment.
    active: u64,
}

impl Recorder<'_> {
    /// Runs `f` on the group's recordings and on those of each scope open now.
    fn each(&mut self, mut f: impl FnMut(&mut GroupLocal)) {
        f(&mut self.local.groups[self.group]);
        let mut bits = self.active;
        while bits != 0 {
            let scope = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            f(&mut self.local.scopes[scope][self.group]);
        }
    }

    pub fn count(&mut self, c: Counter, n: u64) {
        self.each(|g| {
            let slot = &mut g.counters[c.index()];
            *slot = slot.saturating_add(n);
        });
    }

    /// Records a sample; values above the histogram's range saturate at its top.
    pub fn record(&mut self, h: Hist, value: u64) {
        let value = value.max(if h.is_micros() { 1 } else { 0 });
        self.each(|g| {
            g.hists[h.index()]
                .get_or_insert_with(|| histogram::new(h.max()))
                .saturating_record(value)
        });
    }

    pub fn close_code(&mut self, code: u16) {
        self.each(|g| *g.close_codes.entry(code).or_default() += 1);
    }

    /// Adds to this second's row of the timeline (run-wide, not per scope).
    pub fn tick(&mut self, t: Tick, n: u64) {
        let group = &mut self.local.groups[self.group];
        // A run is bounded (validated to at most 30 days), so the row index stays sane.
        if group.ticks.len() <= self.second {
            group.ticks.resize(self.second + 1, [0; Tick::COUNT]);
        }
        group.ticks[self.second][t as usize] += n;
    }
}

/// A part of the run that scoped thresholds look at: while one fault's windows are open
/// (`during:`), or from the end of each window until the next window of any fault starts
/// (`after:`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeDef {
    /// `during:partition`, `after:partition`.
    pub key: String,
    pub after: bool,
    /// The fault's windows in µs on the run clock, `[start, end)`, sorted and disjoint;
    /// an end of `u64::MAX` stays open to the end of the run.
    pub windows: Vec<(u64, u64)>,
    /// For each window, where its aftermath stops: the next start of a window of this
    /// fault or any other (`u64::MAX`: the end of the run). Unused by `during:` scopes.
    pub aftermath_until: Vec<u64>,
}

impl ScopeDef {
    /// At most this many scopes per run (one bit each in a recorder).
    pub const MAX: usize = 64;

    /// A scope over `windows`; `starts` are the starts of every fault's windows in the run
    /// (this one's included), which end each window's aftermath.
    pub fn new(key: String, after: bool, windows: Vec<(u64, u64)>, starts: &[u64]) -> Self {
        let aftermath_until = windows
            .iter()
            .map(|(_, end)| {
                starts
                    .iter()
                    .copied()
                    .filter(|s| s > end)
                    .min()
                    .unwrap_or(u64::MAX)
            })
            .collect();
        ScopeDef {
            key,
            after,
            windows,
            aftermath_until,
        }
    }

    /// The stretches of run time the scope covers, `[from, to)`, µs.
    pub fn stretches(&self) -> Vec<(u64, u64)> {
        if !self.after {
            return self.windows.clone();
        }
        self.windows
            .iter()
            .zip(&self.aftermath_until)
            .filter(|((_, end), _)| *end != u64::MAX)
            .map(|((_, end), until)| (*end, *until))
            .collect()
    }

    /// The window that started last at or before `t`, with where its aftermath stops.
    fn window_at(&self, t: u64) -> Option<(u64, u64)> {
        let i = self.windows.partition_point(|w| w.0 <= t).checked_sub(1)?;
        Some((
            self.windows[i].1,
            self.aftermath_until.get(i).copied().unwrap_or(u64::MAX),
        ))
    }

    /// Whether a moment `t` (µs) falls inside the scope.
    pub fn covers(&self, t: u64) -> bool {
        match self.window_at(t) {
            None => false,
            Some((end, until)) if self.after => t >= end && t < until,
            Some((end, _)) => t < end,
        }
    }

    /// For an `after:` scope: the end of the window an outage starting at `t` belongs to
    /// (it began while the window was open or in its aftermath), if the window closed.
    pub fn recovers_from(&self, t: u64) -> Option<u64> {
        if !self.after {
            return None;
        }
        let (end, until) = self.window_at(t)?;
        (t < until && end != u64::MAX).then_some(end)
    }
}

impl Metrics {
    /// Metrics for a run whose clients fall in `groups` (at least one name).
    pub fn new(clock: Clock, groups: Vec<String>) -> Self {
        Self::scoped(clock, groups, Vec::new())
    }

    /// Metrics that also keep what happens inside each of `scopes` (at most
    /// [`ScopeDef::MAX`]; validation keeps scenarios within it, extra ones are ignored).
    pub fn scoped(clock: Clock, groups: Vec<String>, mut scopes: Vec<ScopeDef>) -> Self {
        scopes.truncate(ScopeDef::MAX);
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
                scopes,
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
        let group = group.min(local.groups.len() - 1);
        let now = self.inner.clock.now_us();
        let active = self.active_scopes(now);
        f(&mut Recorder {
            local: &mut local,
            group,
            second: (now / 1_000_000) as usize,
            active,
        })
    }

    fn active_scopes(&self, now: u64) -> u64 {
        self.inner
            .scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.covers(now))
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    pub fn scopes(&self) -> &[ScopeDef] {
        &self.inner.scopes
    }

    /// A client's session, down since `outage_us` (the fault that broke it, or its own
    /// noticing), resumed now: its recovery time after each fault window it belongs to.
    pub fn recovered(&self, group: usize, outage_us: u64) {
        let now = self.inner.clock.now_us();
        self.each_recovery(group, outage_us, |g, end| {
            g.hists[Hist::RecoveryTime.index()]
                .get_or_insert_with(|| histogram::new(Hist::RecoveryTime.max()))
                .saturating_record(now.saturating_sub(end).max(1));
        });
    }

    /// A client's session, down since `outage_us`, was still down when it stopped.
    pub fn unrecovered(&self, group: usize, outage_us: u64) {
        self.record(group, |r| {
            let g = &mut r.local.groups[r.group];
            g.counters[Counter::Unrecovered.index()] += 1;
        });
        self.each_recovery(group, outage_us, |g, _| {
            g.counters[Counter::Unrecovered.index()] += 1;
        });
    }

    /// Runs `f` on this thread's recordings of `group` in every `after:` scope that an
    /// outage starting at `outage_us` belongs to, with the end of its window.
    fn each_recovery(&self, group: usize, outage_us: u64, mut f: impl FnMut(&mut GroupLocal, u64)) {
        if self.inner.scopes.iter().all(|s| !s.after) {
            return;
        }
        let local = self.local();
        let mut local = local.lock().unwrap_or_else(|e| e.into_inner());
        let group = group.min(local.groups.len() - 1);
        for (i, scope) in self.inner.scopes.iter().enumerate() {
            if let Some(end) = scope.recovers_from(outage_us) {
                f(&mut local.scopes[i][group], end);
            }
        }
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
            let groups = || {
                self.inner
                    .groups
                    .iter()
                    .map(|_| GroupLocal::new())
                    .collect()
            };
            let local = Arc::new(Mutex::new(Local {
                groups: groups(),
                scopes: self.inner.scopes.iter().map(|_| groups()).collect(),
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
        let mut snap = Snapshot::merge(&self.inner.groups, &parts, &samples, peak);
        snap.scopes = self
            .inner
            .scopes
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let parts: Vec<&[GroupLocal]> =
                    guards.iter().map(|g| g.scopes[i].as_slice()).collect();
                let merged = Snapshot::merge(&self.inner.groups, &parts, &[], 0);
                ScopeTotals {
                    def: def.clone(),
                    groups: merged.groups,
                    total: merged.total,
                }
            })
            .collect();
        snap
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
    fn scopes_cover_their_windows_or_what_follows_them() {
        let windows = vec![(1_000, 2_000), (5_000, 6_000), (9_000, u64::MAX)];
        // Another fault starts at 7_000: the second window's aftermath stops there.
        let starts = [1_000, 5_000, 7_000, 9_000];
        let during = ScopeDef::new("during:f".into(), false, windows.clone(), &starts);
        let after = ScopeDef::new("after:f".into(), true, windows, &starts);
        assert_eq!(after.stretches(), [(2_000, 5_000), (6_000, 7_000)]);
        assert_eq!(during.stretches()[0], (1_000, 2_000));
        for (t, inside_during, inside_after, recovers_from) in [
            (0, false, false, None),
            (1_000, true, false, Some(2_000)),
            (1_999, true, false, Some(2_000)),
            (2_000, false, true, Some(2_000)),
            (4_999, false, true, Some(2_000)),
            (5_500, true, false, Some(6_000)),
            (6_500, false, true, Some(6_000)),
            // Another fault began: what happens now is no longer this one's aftermath.
            (7_000, false, false, None),
            // The last window never closes: nothing comes after it.
            (9_500, true, false, None),
        ] {
            assert_eq!(during.covers(t), inside_during, "during at {t}");
            assert_eq!(after.covers(t), inside_after, "after at {t}");
            assert_eq!(after.recovers_from(t), recovers_from, "recovery at {t}");
            assert_eq!(during.recovers_from(t), None);
        }
    }

    #[test]
    fn samples_and_recoveries_land_in_the_scopes_open_at_the_time() {
        let clock = Clock::start();
        let now = clock.now_us();
        let starts = [0, 0];
        let scopes = vec![
            ScopeDef::new(
                "during:f".into(),
                false,
                vec![(0, now + 60_000_000)],
                &starts,
            ),
            ScopeDef::new("after:g".into(), true, vec![(0, 1)], &starts),
        ];
        let m = Metrics::scoped(clock, vec!["a".into(), "b".into()], scopes);
        m.record(1, |r| {
            r.count(Counter::Disconnects, 2);
            r.record(Hist::ReconnectLatency, 500);
            r.tick(Tick::Disconnects, 2);
        });
        m.recovered(1, 0);
        m.unrecovered(0, 0);
        let snap = m.snapshot();
        assert_eq!(snap.total.counter(Counter::Disconnects), 2);
        assert_eq!(snap.total.counter(Counter::Unrecovered), 1);
        let (during, after) = (&snap.scopes[0], &snap.scopes[1]);
        // Both scopes are open now: `f` for a minute, and the aftermath of `g`.
        for scope in [during, after] {
            assert_eq!(scope.total.counter(Counter::Disconnects), 2);
            assert_eq!(scope.groups[1].counter(Counter::Disconnects), 2);
            assert_eq!(scope.total.hist(Hist::ReconnectLatency).len(), 1);
        }
        assert_eq!(after.total.hist(Hist::RecoveryTime).len(), 1);
        assert_eq!(after.groups[0].counter(Counter::Unrecovered), 1);
        assert_eq!(during.total.hist(Hist::RecoveryTime).len(), 0);
        assert_eq!(during.total.counter(Counter::Unrecovered), 0);
        // The timeline is run-wide only.
        assert_eq!(snap.timeline[0].disconnects, 2);
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
