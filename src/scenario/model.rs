//! The checked scenario: the only shape of a scenario the rest of the crate sees.
//!
//! Every value here has been validated (`validate.rs`) and carries its unit in its type:
//! `Duration` for times, `u64` bytes for sizes (named `*_bytes`), [`Rate`] for events per
//! second, [`Share`] for fractions. Defaults are already filled in.

use std::path::PathBuf;
use std::time::Duration;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Every random decision of a run derives from this seed plus a component id.
    pub seed: u64,
    pub duration: Duration,
    pub target: Target,
    /// At least one group. A scenario whose `clients` is a single map has one group named
    /// `default`.
    pub groups: Vec<ClientGroup>,
    /// Network faults applied by the shim, in file order; `NetworkFault::id` is the index.
    pub faults: Vec<NetworkFault>,
    /// Faults of the built-in server, in file order.
    pub server: Vec<ServerFault>,
    /// Grouped by metric in name order; a metric's thresholds in file order.
    pub thresholds: Vec<Threshold>,
    pub report: ReportSettings,
}

/// Where the virtual clients connect to (always through the shim).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The built-in server, started in-process on `127.0.0.1:0`.
    Builtin(BuiltinTarget),
    /// Any WebSocket server.
    External(ExternalTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinTarget {
    pub mode: ServerMode,
    /// How long the server keeps a disconnected session resumable.
    pub session_window: Duration,
    /// Messages kept per session for replay after a resume.
    pub replay_buffer: usize,
    /// Cap on accepted handshakes per second (admission control); `None` is no cap.
    pub max_handshake_rate: Option<Rate>,
    /// The largest message payload the server reads from a client; a larger message or
    /// frame is refused with close 1009 before it is buffered. Not a YAML key: a run sets
    /// it to the largest message its clients send ([`defaults::SERVER_MAX_MESSAGE`] by
    /// default, `squall serve --max-message`).
    ///
    /// [`defaults::SERVER_MAX_MESSAGE`]: super::defaults::SERVER_MAX_MESSAGE
    pub max_message_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServerMode {
    /// Return each message to its sender.
    Echo,
    /// Push sequenced messages to each client at `rate`.
    Stream { rate: Rate, size_bytes: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTarget {
    /// `ws://` or `wss://` URL, checked to have a host and, if given, a port 1-65535.
    pub url: String,
    pub protocol: Protocol,
    /// Extra handshake headers, sorted by name (names are unique, ignoring case).
    pub headers: Vec<(String, String)>,
    pub subprotocols: Vec<String>,
    /// PEM file of extra CA certificates for `wss://`.
    pub ca_file: Option<PathBuf>,
}

/// What the target server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// docs/protocol.md: sequence numbers, acks, resume.
    Squall,
    /// A plain echo server that knows nothing of squall.
    Echo,
}

/// One group of virtual clients sharing a load shape, messages and recovery policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientGroup {
    pub name: String,
    pub load: Load,
    /// New connections per second while ramping up; `None` is as fast as possible.
    pub connect_rate: Option<Rate>,
    pub messages: Messages,
    pub recovery: RecoveryPolicy,
}

impl ClientGroup {
    /// The most clients this group ever has at once.
    pub fn peak_clients(&self) -> u32 {
        match &self.load {
            Load::Count(n) => *n,
            Load::Stages(stages) => stages.iter().map(|s| s.target).max().unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// This many clients for the whole run (ramped at `connect_rate`).
    Count(u32),
    /// Linear ramps: each stage moves the client count to `target` over `duration`.
    Stages(Vec<Stage>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Messages {
    /// Per client. `Rate::ZERO` sends nothing (idle clients).
    pub rate: Rate,
    /// Payload size, uniform in `min_bytes..=max_bytes` (equal for a fixed size).
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub kind: MessageKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

/// How a virtual client recovers; mirrors `recovery:` in the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPolicy {
    pub backoff: BackoffPolicy,
    pub heartbeat: HeartbeatPolicy,
    pub retransmit: RetransmitPolicy,
    pub outbox: OutboxPolicy,
    /// Give up after this many failed attempts in a row; `None` never gives up.
    pub max_attempts: Option<u32>,
    /// Give up after being disconnected this long; `None` never gives up.
    pub max_elapsed: Option<Duration>,
    /// TCP connect deadline for one attempt.
    pub connect_timeout: Duration,
    /// WebSocket (and resume) handshake deadline for one attempt.
    pub handshake_timeout: Duration,
    /// A new connection must stay up this long and make progress before backoff resets.
    pub min_uptime: Duration,
    /// Overrides of the default error policy table, in file order (first match wins).
    pub on_error: Vec<ErrorRule>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub kind: BackoffKind,
    pub initial: Duration,
    /// Cap applied before jitter.
    pub max: Duration,
    /// Growth factor for `exponential` (and the upper factor for `decorrelated`).
    pub multiplier: f64,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffKind {
    Constant,
    Exponential,
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    Full,
    Equal,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeartbeatPolicy {
    /// Ping after this long without traffic.
    pub interval: Duration,
    /// Declare the peer dead when nothing arrives this long after a ping.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitPolicy {
    /// An unacknowledged message older than this on a live connection is a liveness failure.
    pub ack_timeout: Duration,
    /// Messages sent and not yet acknowledged, at most.
    pub max_in_flight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxPolicy {
    pub max_messages: u32,
    pub max_bytes: u64,
    pub overflow: Overflow,
}

/// What `send` does when the outbox is full. Never a silent drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Block,
    Fail,
    DropOldest,
}

/// One line of `recovery.on_error`: which errors it matches and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRule {
    pub matches: ErrorMatch,
    pub action: ErrorAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorMatch {
    /// A WebSocket close code, or an inclusive range of them.
    CloseCode { from: u16, to: u16 },
    /// An HTTP status answered to the handshake, or an inclusive range.
    HttpStatus { from: u16, to: u16 },
    /// Every error of a class.
    Class(ErrorClass),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    Connection,
    Data,
    Application,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorAction {
    /// Reconnect with the backoff policy.
    Retry,
    /// Reconnect no sooner than this (or the server's hint, whichever is later).
    RetryAfter(Duration),
    /// Stop the session.
    Fatal,
}

/// A fraction in `0.0..=1.0`, written `25%` or `0.25`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Share(pub f64);

/// Events per second, written `10/s`, `0.2/s`, `30/m`, `100/h`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate {
    pub per_second: f64,
}

impl Rate {
    pub const ZERO: Rate = Rate { per_second: 0.0 };

    /// Time between two events; `None` for a zero rate.
    pub fn interval(&self) -> Option<Duration> {
        (self.per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / self.per_second))
    }
}

/// Which connections a fault touches.
#[derive(Debug, Clone, PartialEq)]
pub enum Connections {
    All,
    /// This share of connections, picked deterministically from the seed and fault id.
    Share(Share),
    /// This many connections, picked deterministically from the seed and fault id.
    Count(u32),
    /// Exactly these client indices (0-based, across all groups in file order).
    Clients(Vec<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Upstream,
    /// Server to client.
    Downstream,
    Both,
}

/// When a fault is active on the run's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub at: Duration,
    /// `None`: to the end of the run. Instantaneous faults ignore it.
    pub length: Option<Duration>,
    /// Repeat the fault with this period from `at` on (within `length` when set).
    pub every: Option<Duration>,
    /// Spread the starts over the chosen connections across this span (0 = synchronized).
    pub stagger: Duration,
}

/// One network fault the shim applies.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkFault {
    /// Index in `faults:`, for the ledger. RNG seeds derive from `name`, which survives a
    /// fault being left out before it.
    pub id: usize,
    /// Optional name for scoped thresholds; defaults to `<kind>#<id>`.
    pub name: String,
    pub kind: NetworkFaultKind,
    pub direction: Direction,
    pub connections: Connections,
    pub window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Uniform,
    Normal,
    Pareto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropUnit {
    Chunk,
    Byte,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFaultKind {
    Latency {
        latency: Duration,
        jitter: Duration,
        distribution: Distribution,
    },
    Bandwidth {
        bytes_per_second: u64,
        /// One budget for all chosen connections (per direction) instead of one each.
        shared: bool,
    },
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay: Duration,
    },
    Drop {
        probability: f64,
        unit: DropUnit,
        correlation: f64,
    },
    Corrupt {
        probability: f64,
    },
    Duplicate {
        probability: f64,
    },
    Blackhole {
        /// Close each blackholed connection (FIN) this long after the blackhole reached it.
        close_after: Option<Duration>,
        /// Or reset it (RST); at most one of the two is set.
        reset_after: Option<Duration>,
    },
    Reset,
    Close,
    LimitData {
        bytes: u64,
    },
    SlowClose {
        delay: Duration,
    },
    Partition,
    /// Accept new connections, then neither read them nor dial the server.
    AcceptStall,
    /// Accept new connections, then reset them.
    AcceptReset,
    /// Dial the server this much later for new connections.
    DialDelay {
        delay: Duration,
    },
    /// A carrier-grade NAT's idle timeout: a connection with no bytes either way for
    /// `idle` is forgotten, and every byte after that is silently dropped.
    NatTimeout {
        idle: Duration,
    },
    /// Drop whole WebSocket data messages (control frames too with `controls`).
    WsDrop {
        probability: f64,
        controls: bool,
    },
    /// Delay whole WebSocket data messages, order kept.
    WsDelay {
        latency: Duration,
        jitter: Duration,
        distribution: Distribution,
    },
    /// Send a WebSocket data message twice.
    WsDuplicate {
        probability: f64,
    },
    /// Swap a WebSocket data message with the next one.
    WsReorder {
        probability: f64,
    },
    /// Write a Close frame with this code and reason, then close.
    WsClose {
        code: u16,
        reason: String,
    },
    /// Hold back or swallow Pong frames.
    WsPong {
        action: PongAction,
    },
    /// Make text messages invalid UTF-8, framing kept valid.
    WsInvalidUtf8 {
        probability: f64,
    },
    /// Write one binary frame one byte larger than `bytes`.
    WsOversize {
        bytes: u64,
    },
}

/// What `ws_pong` does to each pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongAction {
    Delay(Duration),
    Swallow,
}

impl NetworkFaultKind {
    /// The scenario's name for this kind (`latency`, `limit_data`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::Slicer { .. } => "slicer",
            Self::Drop { .. } => "drop",
            Self::Corrupt { .. } => "corrupt",
            Self::Duplicate { .. } => "duplicate",
            Self::Blackhole { .. } => "blackhole",
            Self::Reset => "reset",
            Self::Close => "close",
            Self::LimitData { .. } => "limit_data",
            Self::SlowClose { .. } => "slow_close",
            Self::Partition => "partition",
            Self::AcceptStall => "accept_stall",
            Self::AcceptReset => "accept_reset",
            Self::DialDelay { .. } => "dial_delay",
            Self::NatTimeout { .. } => "nat_timeout",
            Self::WsDrop { .. } => "ws_drop",
            Self::WsDelay { .. } => "ws_delay",
            Self::WsDuplicate { .. } => "ws_duplicate",
            Self::WsReorder { .. } => "ws_reorder",
            Self::WsClose { .. } => "ws_close",
            Self::WsPong { .. } => "ws_pong",
            Self::WsInvalidUtf8 { .. } => "ws_invalid_utf8",
            Self::WsOversize { .. } => "ws_oversize",
        }
    }

    /// Faults that act once on each chosen connection rather than over a window.
    pub fn is_instantaneous(&self) -> bool {
        matches!(
            self,
            Self::Reset | Self::Close | Self::WsClose { .. } | Self::WsOversize { .. }
        )
    }

    /// Faults that act on WebSocket frames and messages rather than bytes: the shim
    /// follows the frames of a connection only when the run has one.
    pub fn is_websocket(&self) -> bool {
        self.name().starts_with("ws_")
    }
}

/// One fault of the built-in server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFault {
    pub id: usize,
    pub name: String,
    pub kind: ServerFaultKind,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerFaultKind {
    Restart {
        close_code: u16,
        down_for: Duration,
        keep_sessions: bool,
    },
    RejectHandshakes {
        status: u16,
        retry_after: Option<Duration>,
        share: Share,
    },
    Close {
        code: u16,
        reason: String,
        sessions: Connections,
    },
    AppError {
        message: String,
        sessions: Connections,
    },
    Stall,
    /// Complete the WebSocket upgrade, then close at once: a gateway at capacity.
    AcceptClose {
        code: u16,
        reason: String,
        share: Share,
    },
}

impl ServerFaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Restart { .. } => "restart",
            Self::RejectHandshakes { .. } => "reject_handshakes",
            Self::Close { .. } => "close",
            Self::AppError { .. } => "app_error",
            Self::Stall => "stall",
            Self::AcceptClose { .. } => "accept_close",
        }
    }
}

/// A release gate: `p(99) < 3s` on `reconnect_latency`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// A counter or histogram name of the report (`reconnect_latency`, `messages_lost`, …).
    pub metric: String,
    /// Judged over the whole run (`None`) or only during / after a named fault.
    pub scope: Option<Scope>,
    pub stat: Stat,
    pub op: CompareOp,
    /// In the metric's unit: microseconds for latency histograms, plain numbers otherwise.
    pub value: f64,
    /// The expression as written, for messages and reports.
    pub source: String,
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: no early stop before this much run time has passed.
    pub delay_abort_eval: Duration,
}

impl Threshold {
    /// The metric as the report names it: `reconnect_latency` or
    /// `reconnect_latency{after:partition}`.
    pub fn key(&self) -> String {
        match &self.scope {
            None => self.metric.clone(),
            Some(scope) => format!("{}{{{}}}", self.metric, scope.key()),
        }
    }
}

/// Part of a run a scoped threshold looks at, by the windows of one named fault.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// While one of the fault's windows is open.
    During(String),
    /// From the end of each of the fault's windows to the start of its next one (or the
    /// end of the run).
    After(String),
}

impl Scope {
    /// `during:partition`, `after:partition`: the scope's name in reports.
    pub fn key(&self) -> String {
        match self {
            Scope::During(fault) => format!("during:{fault}"),
            Scope::After(fault) => format!("after:{fault}"),
        }
    }

    pub fn fault(&self) -> &str {
        match self {
            Scope::During(fault) | Scope::After(fault) => fault,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// Percentile, 0–100.
    Percentile(f64),
    Max,
    Min,
    Mean,
    Count,
    /// Per second of run time for counters; share of samples for histograms is not defined.
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// Parent directory of the run's report directory.
    pub dir: PathBuf,
    pub formats: Vec<ReportFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Md,
    Html,
    Junit,
}

impl Scenario {
    /// All clients at their peak, across groups.
    pub fn peak_clients(&self) -> u32 {
        self.groups.iter().map(ClientGroup::peak_clients).sum()
    }

    /// The planned windows of the fault named `name` (network or server), within the run.
    pub fn fault_spans(&self, name: &str) -> Option<Vec<Span>> {
        if let Some(f) = self.faults.iter().find(|f| f.name == name) {
            return Some(
                f.window
                    .spans(f.kind.is_instantaneous(), None, self.duration),
            );
        }
        let f = self.server.iter().find(|f| f.name == name)?;
        let (instantaneous, hold) = match f.kind {
            ServerFaultKind::Restart { down_for, .. } => (true, Some(down_for)),
            ServerFaultKind::Close { .. } | ServerFaultKind::AppError { .. } => (true, None),
            ServerFaultKind::RejectHandshakes { .. }
            | ServerFaultKind::Stall
            | ServerFaultKind::AcceptClose { .. } => (false, None),
        };
        Some(f.window.spans(instantaneous, hold, self.duration))
    }
}

/// One planned window of a fault on the run clock: `[start, end)`; `end: None` stays
/// open to the end of the run. An instantaneous fault's firing is a window of length
/// zero, or of the restart's `down_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Duration,
    pub end: Option<Duration>,
}

impl Window {
    /// The windows this timing opens before `run_end`, by the timeline's rules (see
    /// `shim::timeline` and `target::faults`): windowed faults are open over
    /// `[at + k·every, at + k·every + for)` (one window without `every`, open to the end
    /// without `for`, and one window that never closes when `every` is not longer than
    /// `for`); instantaneous faults fire at `at + k·every` while inside `[at, at + for)`,
    /// each firing held for `hold`.
    pub fn spans(
        &self,
        instantaneous: bool,
        hold: Option<Duration>,
        run_end: Duration,
    ) -> Vec<Span> {
        let starts = |until: Option<Duration>| {
            let every = self.every.filter(|e| !e.is_zero());
            let mut out = Vec::new();
            let mut t = self.at;
            while t < run_end && until.is_none_or(|u| t < u || t == self.at) {
                out.push(t);
                match every.and_then(|e| t.checked_add(e)) {
                    Some(next) => t = next,
                    None => break,
                }
            }
            out
        };
        if instantaneous {
            let until = self.length.map(|l| self.at.saturating_add(l));
            return starts(until)
                .into_iter()
                .map(|start| Span {
                    start,
                    end: Some(start.saturating_add(hold.unwrap_or_default())),
                })
                .collect();
        }
        match (self.length, self.every) {
            (Some(length), Some(every)) if every > length => starts(None)
                .into_iter()
                .map(|start| Span {
                    start,
                    end: Some(start.saturating_add(length)),
                })
                .collect(),
            (Some(length), None) => vec![Span {
                start: self.at,
                end: Some(self.at.saturating_add(length)),
            }],
            _ => vec![Span {
                start: self.at,
                end: None,
            }],
        }
    }
}
