//! The serde mirror of the scenario YAML: exactly what the file may say, nothing checked.
//!
//! Every key is optional here (defaults and requirements are `validate`'s business), and
//! every map denies unknown keys so a typo fails with the list of keys that fit. Values
//! with units stay text (`5s`, `25%`) until `units` parses them, so an error can quote
//! them as written. Keys in the serialized form follow the file's order and names, which
//! is what makes `Scenario::to_json` read like a scenario.

mod forms;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use forms::{
    BandwidthText, ClientsSpec, CodeText, ConnectionsSpec, DurationText, Entries, RateText,
    ShareText, SizeRangeSpec, SizeSpec, SizeText, ThresholdFullSpec, ThresholdRules, ThresholdSpec,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub duration: Option<DurationText>,
    pub target: Option<TargetSpec>,
    pub clients: Option<ClientsSpec>,
    pub messages: Option<MessagesSpec>,
    pub recovery: Option<RecoverySpec>,
    pub faults: Option<Vec<FaultSpec>>,
    pub server: Option<Vec<ServerFaultSpec>>,
    pub thresholds: Option<Entries<ThresholdRules>>,
    pub report: Option<ReportSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub builtin: Option<BuiltinSpec>,
    pub url: Option<String>,
    pub protocol: Option<ProtocolSpec>,
    pub headers: Option<Entries<String>>,
    pub subprotocols: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSpec {
    pub mode: Option<ModeSpec>,
    /// Stream mode only.
    pub rate: Option<RateText>,
    /// Stream mode only.
    pub size: Option<SizeText>,
    pub session_window: Option<DurationText>,
    pub replay_buffer: Option<u64>,
    pub max_handshake_rate: Option<RateText>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    Echo,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolSpec {
    Squall,
    Echo,
}

/// One group of clients; also the shape of `clients:` when it is a single map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: Option<String>,
    pub count: Option<u64>,
    pub stages: Option<Vec<StageSpec>>,
    pub connect_rate: Option<RateText>,
    pub messages: Option<MessagesSpec>,
    pub recovery: Option<RecoverySpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Option<DurationText>,
    pub target: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesSpec {
    pub rate: Option<RateText>,
    pub size: Option<SizeSpec>,
    pub kind: Option<MessageKindSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKindSpec {
    Text,
    Binary,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySpec {
    pub backoff: Option<BackoffSpec>,
    pub heartbeat: Option<HeartbeatSpec>,
    pub retransmit: Option<RetransmitSpec>,
    pub outbox: Option<OutboxSpec>,
    pub max_attempts: Option<u64>,
    pub max_elapsed: Option<DurationText>,
    pub connect_timeout: Option<DurationText>,
    pub handshake_timeout: Option<DurationText>,
    pub min_uptime: Option<DurationText>,
    pub on_error: Option<Vec<ErrorRuleSpec>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    pub kind: Option<BackoffKindSpec>,
    pub initial: Option<DurationText>,
    pub max: Option<DurationText>,
    pub multiplier: Option<f64>,
    pub jitter: Option<JitterSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKindSpec {
    Constant,
    Exponential,
    Decorrelated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitterSpec {
    None,
    Full,
    Equal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    pub interval: Option<DurationText>,
    pub timeout: Option<DurationText>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetransmitSpec {
    pub ack_timeout: Option<DurationText>,
    pub max_in_flight: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSpec {
    pub max_messages: Option<u64>,
    pub max_bytes: Option<SizeText>,
    pub overflow: Option<OverflowSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowSpec {
    Block,
    Fail,
    DropOldest,
}

/// One `on_error` rule: exactly one matcher and an action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRuleSpec {
    pub close_code: Option<CodeText>,
    pub http_status: Option<CodeText>,
    pub class: Option<ErrorClassSpec>,
    /// `retry`, `fatal` or `retry_after 5s`.
    pub action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClassSpec {
    Connection,
    Data,
    Application,
}

/// A network fault as one flat map: the common keys plus the parameters of every kind,
/// so `validate` can say which kind a stray parameter belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: Option<FaultKindSpec>,
    pub name: Option<String>,
    pub direction: Option<DirectionSpec>,
    pub connections: Option<ConnectionsSpec>,
    pub at: Option<DurationText>,
    #[serde(rename = "for")]
    pub length: Option<DurationText>,
    pub every: Option<DurationText>,
    pub stagger: Option<DurationText>,
    pub latency: Option<DurationText>,
    pub jitter: Option<DurationText>,
    pub distribution: Option<DistributionSpec>,
    pub rate: Option<BandwidthText>,
    pub shared: Option<bool>,
    pub average_size: Option<SizeText>,
    pub size_variation: Option<SizeText>,
    pub delay: Option<DurationText>,
    pub probability: Option<ShareText>,
    pub unit: Option<DropUnitSpec>,
    pub correlation: Option<ShareText>,
    pub bytes: Option<SizeText>,
    pub close_after: Option<DurationText>,
    pub reset_after: Option<DurationText>,
    pub controls: Option<bool>,
    pub code: Option<u64>,
    pub reason: Option<String>,
    pub swallow: Option<bool>,
    pub idle: Option<DurationText>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKindSpec {
    Latency,
    Bandwidth,
    Slicer,
    Drop,
    Corrupt,
    Duplicate,
    Blackhole,
    Reset,
    Close,
    LimitData,
    SlowClose,
    Partition,
    AcceptStall,
    AcceptReset,
    DialDelay,
    NatTimeout,
    WsDrop,
    WsDelay,
    WsDuplicate,
    WsReorder,
    WsClose,
    WsPong,
    WsInvalidUtf8,
    WsOversize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionSpec {
    Upstream,
    Downstream,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistributionSpec {
    Uniform,
    Normal,
    Pareto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropUnitSpec {
    Chunk,
    Byte,
}

/// A fault of the built-in server, flat like [`FaultSpec`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFaultSpec {
    pub kind: Option<ServerFaultKindSpec>,
    pub name: Option<String>,
    pub at: Option<DurationText>,
    #[serde(rename = "for")]
    pub length: Option<DurationText>,
    pub every: Option<DurationText>,
    pub close_code: Option<u64>,
    pub down_for: Option<DurationText>,
    pub keep_sessions: Option<bool>,
    pub status: Option<u64>,
    pub retry_after: Option<DurationText>,
    pub share: Option<ShareText>,
    pub code: Option<u64>,
    pub reason: Option<String>,
    pub sessions: Option<ConnectionsSpec>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerFaultKindSpec {
    Restart,
    RejectHandshakes,
    Close,
    AppError,
    Stall,
    AcceptClose,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub dir: Option<PathBuf>,
    pub formats: Option<Vec<FormatSpec>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatSpec {
    Json,
    Md,
    Html,
    Junit,
}
