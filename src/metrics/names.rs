//! The contract names of every counter and histogram (PRODUCT.md), as enums so a typo is a
//! compile error and every metric has exactly one spelling in the report.

use serde::{Deserialize, Serialize};

/// Counters a client, the shim or the server adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    Sessions,
    MessagesSent,
    MessagesDelivered,
    MessagesLost,
    MessagesDuplicated,
    Retransmits,
    CorruptionDetected,
    Disconnects,
    Reconnects,
    ReconnectFailures,
    GaveUp,
    ErrorsConnection,
    ErrorsData,
    ErrorsApplication,
    /// Connection attempts (first connects and reconnect attempts), for the timeline.
    ConnectAttempts,
    /// Handshakes the target server accepted, for the timeline.
    ServerHandshakes,
    /// Server-to-client messages handed to client applications (exactly once each).
    MessagesReceived,
    /// Repeated messages or echoes recognised and not delivered again.
    DuplicatesSuppressed,
    /// Messages sent to a server that then lost the session: resent, but they may have
    /// reached its application twice. Exactly-once cannot be vouched for them.
    MessagesUnverified,
    /// Distinct messages the built-in server's application received (its own ledger).
    ServerReceived,
    /// Messages the built-in server's application sent to clients (echoes, pushes).
    ServerSent,
    /// Of those, acknowledged by clients: delivered to their applications.
    ServerSentAcked,
    /// Clients whose session was down when the run (or their period) ended.
    Unrecovered,
}

impl Counter {
    pub const ALL: [Counter; 23] = [
        Counter::Sessions,
        Counter::MessagesSent,
        Counter::MessagesDelivered,
        Counter::MessagesLost,
        Counter::MessagesDuplicated,
        Counter::Retransmits,
        Counter::CorruptionDetected,
        Counter::Disconnects,
        Counter::Reconnects,
        Counter::ReconnectFailures,
        Counter::GaveUp,
        Counter::ErrorsConnection,
        Counter::ErrorsData,
        Counter::ErrorsApplication,
        Counter::ConnectAttempts,
        Counter::ServerHandshakes,
        Counter::MessagesReceived,
        Counter::DuplicatesSuppressed,
        Counter::MessagesUnverified,
        Counter::ServerReceived,
        Counter::ServerSent,
        Counter::ServerSentAcked,
        Counter::Unrecovered,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The counter's name in the report (`errors.*` live under `errors`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Sessions => "sessions",
            Counter::MessagesSent => "messages_sent",
            Counter::MessagesDelivered => "messages_delivered",
            Counter::MessagesLost => "messages_lost",
            Counter::MessagesDuplicated => "messages_duplicated",
            Counter::Retransmits => "retransmits",
            Counter::CorruptionDetected => "corruption_detected",
            Counter::Disconnects => "disconnects",
            Counter::Reconnects => "reconnects",
            Counter::ReconnectFailures => "reconnect_failures",
            Counter::GaveUp => "gave_up",
            Counter::ErrorsConnection => "errors.connection",
            Counter::ErrorsData => "errors.data",
            Counter::ErrorsApplication => "errors.application",
            Counter::ConnectAttempts => "connect_attempts",
            Counter::ServerHandshakes => "server_handshakes",
            Counter::MessagesReceived => "messages_received",
            Counter::DuplicatesSuppressed => "duplicates_suppressed",
            Counter::MessagesUnverified => "messages_unverified",
            Counter::ServerReceived => "server_received",
            Counter::ServerSent => "server_sent",
            Counter::ServerSentAcked => "server_sent_acked",
            Counter::Unrecovered => "unrecovered",
        }
    }
}

/// Peaks of per-second rates: the busiest second of the run's timeline, not recorded
/// but derived from its per-second rows (and, per client group, from the group's own
/// per-second connect attempts), so merged shards recompute them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peak {
    /// Connection attempts in the busiest second, per group and for the run.
    ConnectAttempts,
    /// Handshakes the built-in server accepted in its busiest second; run-wide only (the
    /// server does not know client groups).
    ServerHandshakes,
}

impl Peak {
    pub const ALL: [Peak; 2] = [Peak::ConnectAttempts, Peak::ServerHandshakes];

    /// The peak's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Peak::ConnectAttempts => "connect_attempts_peak",
            Peak::ServerHandshakes => "server_handshakes_peak",
        }
    }

    /// Whether each client group has its own peak.
    pub fn per_group(self) -> bool {
        self == Peak::ConnectAttempts
    }
}

/// Histograms, each with a fixed unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hist {
    ReconnectLatency,
    DetectionLatency,
    Downtime,
    /// From the message's intended send time to its delivery confirmed.
    MessageRtt,
    /// From the message's actual first send (hides coordinated omission; kept beside).
    MessageRttUncorrected,
    RetransmitsPerMessage,
    AttemptsPerReconnect,
    /// From the end of a fault's window to a client's session resumed, for clients whose
    /// outage began in that window or after it; recorded only in `after:` scopes.
    RecoveryTime,
}

impl Hist {
    pub const ALL: [Hist; 8] = [
        Hist::ReconnectLatency,
        Hist::DetectionLatency,
        Hist::Downtime,
        Hist::MessageRtt,
        Hist::MessageRttUncorrected,
        Hist::RetransmitsPerMessage,
        Hist::AttemptsPerReconnect,
        Hist::RecoveryTime,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Hist::ReconnectLatency => "reconnect_latency",
            Hist::DetectionLatency => "detection_latency",
            Hist::Downtime => "downtime",
            Hist::MessageRtt => "message_rtt",
            Hist::MessageRttUncorrected => "message_rtt_uncorrected",
            Hist::RetransmitsPerMessage => "retransmits_per_message",
            Hist::AttemptsPerReconnect => "attempts_per_reconnect",
            Hist::RecoveryTime => "recovery_time",
        }
    }

    /// The histogram a report name (`reconnect_latency`, or `…{after:fault}`) is about.
    pub fn by_name(name: &str) -> Option<Hist> {
        let bare = name.split('{').next().unwrap_or(name).trim();
        Hist::ALL.into_iter().find(|h| h.name() == bare)
    }

    /// Recorded only inside `after:` scopes, so absent from the run-wide histograms.
    pub fn scoped_only(self) -> bool {
        self == Hist::RecoveryTime
    }

    /// True for histograms in microseconds; false for counts.
    pub fn is_micros(self) -> bool {
        !matches!(
            self,
            Hist::RetransmitsPerMessage | Hist::AttemptsPerReconnect
        )
    }

    pub fn max(self) -> u64 {
        if self.is_micros() {
            super::histogram::MAX_MICROS
        } else {
            super::histogram::MAX_COUNT
        }
    }
}

/// Columns of the per-second timeline that recorders add to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Connects,
    Disconnects,
    ConnectAttempts,
    ServerHandshakes,
    MessagesSent,
    MessagesDelivered,
    Retransmits,
}

impl Tick {
    pub const COUNT: usize = 7;
}
