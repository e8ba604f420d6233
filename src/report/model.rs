//! `report.json`, the source of truth of a run: every other format renders from this
//! model alone, so `squall report` can rebuild them from the JSON file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::FaultSummary;
use crate::metrics::{Counter, GroupTotals, Hist, Peak, Snapshot, Summary, TimelineRow};

pub const SCHEMA: &str = "squall.report/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// The scenario as run, every default filled in (parses back as a scenario).
    pub scenario: serde_json::Value,
    pub run: RunInfo,
    pub counters: Counters,
    pub histograms: BTreeMap<String, Summary>,
    /// The same counters and histograms for each client group.
    pub groups: Vec<GroupReport>,
    /// Does `messages_sent = messages_delivered + messages_lost` hold?
    pub delivery: Delivery,
    pub timeline: Vec<TimelineRow>,
    pub faults: Vec<FaultSummary>,
    /// What happened during and after the faults that scoped thresholds name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<ScopeReport>,
    pub thresholds: Vec<ThresholdResult>,
    /// `pass` when every threshold held and the run completed; `fail` otherwise.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub seed: u64,
    pub version: String,
    /// Stopped by Ctrl-C or SIGTERM before the end.
    pub interrupted: bool,
    /// `completed`, `interrupted`, or `failed` (the harness could not go on).
    pub status: String,
    /// Why the run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `I/N` when this report is one shard of a larger run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub clients_connected_peak: u64,
    pub sessions: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    pub retransmits: u64,
    pub corruption_detected: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub reconnect_failures: u64,
    pub gave_up: u64,
    pub errors: Errors,
    /// Connection attempts, first connects included.
    pub connect_attempts: u64,
    /// Handshakes the built-in server accepted.
    pub server_handshakes: u64,
    /// Server-to-client messages delivered to clients, exactly once each.
    #[serde(default)]
    pub messages_received: u64,
    /// Repeats recognised by a receiver and not delivered twice.
    #[serde(default)]
    pub duplicates_suppressed: u64,
    /// Messages resent after a server lost the session: at-least-once only.
    #[serde(default)]
    pub messages_unverified: u64,
    /// Distinct messages the built-in server's application received, by its own record.
    #[serde(default)]
    pub server_received: u64,
    /// Messages the built-in server's application sent to clients (echoes, pushes).
    #[serde(default)]
    pub server_sent: u64,
    /// Of those, acknowledged by clients (so delivered to their applications).
    #[serde(default)]
    pub server_sent_acked: u64,
    /// Clients whose session was still down when the run ended.
    #[serde(default)]
    pub unrecovered: u64,
    /// Connection attempts in the busiest second (of the run, the group, or the scope).
    #[serde(default)]
    pub connect_attempts_peak: u64,
    /// Handshakes the built-in server accepted in its busiest second; run-wide (and per
    /// scope), 0 in groups.
    #[serde(default)]
    pub server_handshakes_peak: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub connection: u64,
    pub data: u64,
    pub application: u64,
    /// Close codes seen by clients (1006 for a connection that ended without one).
    pub close_codes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    pub counters: Counters,
    pub histograms: BTreeMap<String, Summary>,
    /// The group's connection attempts in each second of the run (index: whole seconds
    /// since the start, as the timeline's `t`), which its `connect_attempts_peak` is the
    /// maximum of; kept so merged shards recompute the peak exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_attempts_per_second: Vec<u64>,
}

/// One scope of the run: while a named fault's windows were open (`during:name`), or
/// from the end of each window to the start of the next (`after:name`). Counters count
/// what happened inside; histogram samples are placed by when they were recorded, and
/// `recovery_time` (in `after:` scopes only) times each client from the window's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeReport {
    /// `during:partition`, `after:partition`.
    pub scope: String,
    /// The stretches of run time the scope covers, µs from the start: the fault's planned
    /// windows (`during:`), or each window's aftermath, from its end until the next window
    /// of any fault starts (`after:`); no end: to the end of the run.
    pub windows: Vec<(u64, Option<u64>)>,
    pub counters: Counters,
    pub histograms: BTreeMap<String, Summary>,
    pub groups: Vec<GroupReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub closes: bool,
}

/// One threshold as judged at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub metric: String,
    /// The expression as written: `p(99) < 3s`.
    pub expression: String,
    /// The measured value in the metric's unit (µs for latencies); `None` when there was
    /// nothing to measure (an empty histogram), which fails the threshold.
    pub value: Option<f64>,
    pub ok: bool,
    pub abort_on_fail: bool,
    /// Why the threshold failed beyond its value (e.g. clients that never resumed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Counters {
    pub fn from_totals(t: &GroupTotals, clients_connected_peak: u64) -> Self {
        Counters {
            clients_connected_peak,
            sessions: t.counter(Counter::Sessions),
            messages_sent: t.counter(Counter::MessagesSent),
            messages_delivered: t.counter(Counter::MessagesDelivered),
            messages_lost: t.counter(Counter::MessagesLost),
            messages_duplicated: t.counter(Counter::MessagesDuplicated),
            retransmits: t.counter(Counter::Retransmits),
            corruption_detected: t.counter(Counter::CorruptionDetected),
            disconnects: t.counter(Counter::Disconnects),
            reconnects: t.counter(Counter::Reconnects),
            reconnect_failures: t.counter(Counter::ReconnectFailures),
            gave_up: t.counter(Counter::GaveUp),
            errors: Errors {
                connection: t.counter(Counter::ErrorsConnection),
                data: t.counter(Counter::ErrorsData),
                application: t.counter(Counter::ErrorsApplication),
                close_codes: t
                    .close_codes
                    .iter()
                    .map(|(c, n)| (c.to_string(), *n))
                    .collect(),
            },
            connect_attempts: t.counter(Counter::ConnectAttempts),
            server_handshakes: t.counter(Counter::ServerHandshakes),
            messages_received: t.counter(Counter::MessagesReceived),
            duplicates_suppressed: t.counter(Counter::DuplicatesSuppressed),
            messages_unverified: t.counter(Counter::MessagesUnverified),
            server_received: t.counter(Counter::ServerReceived),
            server_sent: t.counter(Counter::ServerSent),
            server_sent_acked: t.counter(Counter::ServerSentAcked),
            unrecovered: t.counter(Counter::Unrecovered),
            // Filled in from the per-second series once the report is built (`peaks`).
            connect_attempts_peak: 0,
            server_handshakes_peak: 0,
        }
    }

    /// Every counter's report name, in the order reports list them: the peaks, then the
    /// totals.
    pub fn names() -> impl Iterator<Item = &'static str> {
        std::iter::once("clients_connected_peak")
            .chain(Peak::ALL.iter().map(|p| p.name()))
            .chain(Counter::ALL.iter().map(|c| c.name()))
    }

    /// Whether each client group has its own value of counter `name`: not the peak of
    /// connected clients (a run-wide gauge) nor the server's peak (it knows no groups).
    pub fn per_group(name: &str) -> bool {
        name != "clients_connected_peak"
            && Peak::ALL.iter().all(|p| p.name() != name || p.per_group())
    }

    /// A counter by its report name (`messages_lost`, `errors.data`).
    pub fn get(&self, name: &str) -> Option<u64> {
        Some(match name {
            "clients_connected_peak" => self.clients_connected_peak,
            "sessions" => self.sessions,
            "messages_sent" => self.messages_sent,
            "messages_delivered" => self.messages_delivered,
            "messages_lost" => self.messages_lost,
            "messages_duplicated" => self.messages_duplicated,
            "retransmits" => self.retransmits,
            "corruption_detected" => self.corruption_detected,
            "disconnects" => self.disconnects,
            "reconnects" => self.reconnects,
            "reconnect_failures" => self.reconnect_failures,
            "gave_up" => self.gave_up,
            "errors.connection" => self.errors.connection,
            "errors.data" => self.errors.data,
            "errors.application" => self.errors.application,
            "connect_attempts" => self.connect_attempts,
            "server_handshakes" => self.server_handshakes,
            "messages_received" => self.messages_received,
            "duplicates_suppressed" => self.duplicates_suppressed,
            "messages_unverified" => self.messages_unverified,
            "server_received" => self.server_received,
            "server_sent" => self.server_sent,
            "server_sent_acked" => self.server_sent_acked,
            "unrecovered" => self.unrecovered,
            "connect_attempts_peak" => self.connect_attempts_peak,
            "server_handshakes_peak" => self.server_handshakes_peak,
            _ => return None,
        })
    }
}

/// Every run-wide histogram of `t` by report name.
pub fn histograms(t: &GroupTotals) -> BTreeMap<String, Summary> {
    Hist::ALL
        .iter()
        .filter(|h| !h.scoped_only())
        .map(|h| (h.name().to_string(), Summary::of(t.hist(*h))))
        .collect()
}

/// The histograms a scope keeps: the run-wide ones, and `recovery_time` after a fault.
fn scope_histograms(t: &GroupTotals, after: bool) -> BTreeMap<String, Summary> {
    Hist::ALL
        .iter()
        .filter(|h| after || !h.scoped_only())
        .map(|h| (h.name().to_string(), Summary::of(t.hist(*h))))
        .collect()
}

/// Groups of the run keep their per-second connect attempts; groups of a scope do not
/// (the run's series, cut to the scope's seconds, give their peaks).
fn group_reports(
    groups: &[GroupTotals],
    hists: impl Fn(&GroupTotals) -> BTreeMap<String, Summary>,
    series: bool,
) -> Vec<GroupReport> {
    groups
        .iter()
        .map(|g| GroupReport {
            name: g.name.clone(),
            // The peak gauge is run-wide; per group it is not measured.
            counters: Counters::from_totals(g, 0),
            histograms: hists(g),
            connect_attempts_per_second: match series {
                true => g.connect_attempts_per_second.clone(),
                false => Vec::new(),
            },
        })
        .collect()
}

impl Report {
    /// Builds the report body from the merged metrics; thresholds and verdict are added
    /// by the gate.
    pub fn build(
        scenario: serde_json::Value,
        run: RunInfo,
        snap: &Snapshot,
        faults: Vec<FaultSummary>,
    ) -> Self {
        let counters = Counters::from_totals(&snap.total, snap.clients_connected_peak);
        let delivery = Delivery {
            sent: counters.messages_sent,
            delivered: counters.messages_delivered,
            lost: counters.messages_lost,
            closes: counters.messages_sent == counters.messages_delivered + counters.messages_lost,
        };
        let groups = group_reports(&snap.groups, histograms, true);
        let scopes = snap
            .scopes
            .iter()
            .map(|s| {
                let after = s.def.after;
                ScopeReport {
                    scope: s.def.key.clone(),
                    windows: s
                        .def
                        .stretches()
                        .iter()
                        .map(|(start, end)| (*start, Some(*end).filter(|e| *e != u64::MAX)))
                        .collect(),
                    counters: Counters::from_totals(&s.total, 0),
                    histograms: scope_histograms(&s.total, after),
                    groups: group_reports(&s.groups, |g| scope_histograms(g, after), false),
                }
            })
            .collect();
        let mut report = Report {
            schema: SCHEMA.to_string(),
            scenario,
            run,
            histograms: histograms(&snap.total),
            counters,
            groups,
            delivery,
            timeline: snap.timeline.clone(),
            faults,
            scopes,
            thresholds: Vec::new(),
            verdict: "pass".to_string(),
        };
        super::peaks::fill(&mut report);
        report
    }

    /// The scenario's name, as recorded.
    pub fn name(&self) -> &str {
        self.scenario
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("run")
    }
}
