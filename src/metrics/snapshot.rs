//! The merged, immutable view of a run's metrics that the gate and the report read.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{Counter, GroupLocal, Hist, Tick, histogram};

/// Everything one client group (or the whole run) recorded.
#[derive(Debug, Clone)]
pub struct GroupTotals {
    pub name: String,
    counters: [u64; Counter::ALL.len()],
    pub close_codes: BTreeMap<u16, u64>,
    hists: Vec<Histogram<u64>>,
    /// Connection attempts in each second of the run (index: whole seconds since the
    /// start), kept per group so the group's peak rate survives a merge of shards.
    pub connect_attempts_per_second: Vec<u64>,
}

impl GroupTotals {
    fn empty(name: &str) -> Self {
        GroupTotals {
            name: name.to_string(),
            counters: [0; Counter::ALL.len()],
            close_codes: BTreeMap::new(),
            hists: Hist::ALL.iter().map(|h| histogram::new(h.max())).collect(),
            connect_attempts_per_second: Vec::new(),
        }
    }

    fn add(&mut self, part: &GroupLocal) {
        for (sum, n) in self.counters.iter_mut().zip(part.counters) {
            *sum = sum.saturating_add(n);
        }
        for (code, n) in &part.close_codes {
            *self.close_codes.entry(*code).or_default() += n;
        }
        for (sum, h) in self.hists.iter_mut().zip(&part.hists) {
            if let Some(h) = h {
                // Same bounds on both sides by construction, so adding cannot fail.
                let _ = sum.add(h);
            }
        }
        let attempts = part.ticks.iter().map(|t| t[Tick::ConnectAttempts as usize]);
        add_series(&mut self.connect_attempts_per_second, attempts);
    }

    fn add_totals(&mut self, other: &GroupTotals) {
        for (sum, n) in self.counters.iter_mut().zip(other.counters) {
            *sum = sum.saturating_add(n);
        }
        for (code, n) in &other.close_codes {
            *self.close_codes.entry(*code).or_default() += n;
        }
        for (sum, h) in self.hists.iter_mut().zip(&other.hists) {
            let _ = sum.add(h);
        }
        let attempts = other.connect_attempts_per_second.iter().copied();
        add_series(&mut self.connect_attempts_per_second, attempts);
    }

    pub fn counter(&self, c: Counter) -> u64 {
        self.counters[c.index()]
    }

    pub fn hist(&self, h: Hist) -> &Histogram<u64> {
        &self.hists[h.index()]
    }

    /// Sets a counter decided outside the recorders (e.g. losses counted at drain).
    pub fn set_counter(&mut self, c: Counter, n: u64) {
        self.counters[c.index()] = n;
    }
}

/// Adds `part` to `sum` second by second, growing `sum` to the longer of the two.
pub fn add_series(sum: &mut Vec<u64>, part: impl ExactSizeIterator<Item = u64>) {
    if sum.len() < part.len() {
        sum.resize(part.len(), 0);
    }
    for (a, b) in sum.iter_mut().zip(part) {
        *a = a.saturating_add(b);
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Whole seconds since the run started.
    pub t: u64,
    /// Clients connected when the second was sampled.
    pub connected: i64,
    pub connects: u64,
    pub disconnects: u64,
    pub connect_attempts: u64,
    pub server_handshakes: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub retransmits: u64,
    pub active_faults: Vec<String>,
}

/// The merged metrics of a run.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub groups: Vec<GroupTotals>,
    pub total: GroupTotals,
    pub timeline: Vec<TimelineRow>,
    pub clients_connected_peak: u64,
    /// What happened inside each scope of the run, in the order of its definitions.
    pub scopes: Vec<ScopeTotals>,
}

/// Everything recorded inside one scope, per client group and in total.
#[derive(Debug, Clone)]
pub struct ScopeTotals {
    pub def: super::ScopeDef,
    pub groups: Vec<GroupTotals>,
    pub total: GroupTotals,
}

impl Snapshot {
    pub(crate) fn merge(
        names: &[String],
        parts: &[&[GroupLocal]],
        samples: &[(i64, Vec<String>)],
        clients_connected_peak: u64,
    ) -> Snapshot {
        let mut groups: Vec<GroupTotals> = names.iter().map(|n| GroupTotals::empty(n)).collect();
        let mut ticks: Vec<[u64; Tick::COUNT]> = Vec::new();
        for part in parts {
            for (sum, g) in groups.iter_mut().zip(part.iter()) {
                sum.add(g);
                if ticks.len() < g.ticks.len() {
                    ticks.resize(g.ticks.len(), [0; Tick::COUNT]);
                }
                for (row, add) in ticks.iter_mut().zip(&g.ticks) {
                    for (a, b) in row.iter_mut().zip(add) {
                        *a += b;
                    }
                }
            }
        }
        let mut total = GroupTotals::empty("total");
        for g in &groups {
            total.add_totals(g);
        }
        let seconds = ticks.len().max(samples.len());
        let timeline = (0..seconds)
            .map(|i| {
                let t = ticks.get(i).copied().unwrap_or([0; Tick::COUNT]);
                let (connected, faults) = samples.get(i).cloned().unwrap_or_default();
                TimelineRow {
                    t: i as u64,
                    connected,
                    connects: t[Tick::Connects as usize],
                    disconnects: t[Tick::Disconnects as usize],
                    connect_attempts: t[Tick::ConnectAttempts as usize],
                    server_handshakes: t[Tick::ServerHandshakes as usize],
                    messages_sent: t[Tick::MessagesSent as usize],
                    messages_delivered: t[Tick::MessagesDelivered as usize],
                    retransmits: t[Tick::Retransmits as usize],
                    active_faults: faults,
                }
            })
            .collect();
        Snapshot {
            groups,
            total,
            timeline,
            clients_connected_peak,
            scopes: Vec::new(),
        }
    }
}
