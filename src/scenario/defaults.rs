//! What a scenario gets for every key it leaves out, and the limits past which a value is
//! taken for a mistake. `scenarios/README.md` documents the same numbers; keep them in step.

use std::path::PathBuf;
use std::time::Duration;

use super::model::{
    BackoffKind, BackoffPolicy, BuiltinTarget, HeartbeatPolicy, Jitter, MessageKind, Messages,
    OutboxPolicy, Overflow, Rate, RecoveryPolicy, ReportFormat, ReportSettings, RetransmitPolicy,
    ServerMode,
};

pub const SEED: u64 = 1;
pub const DURATION: Duration = Duration::from_secs(30);
/// The group name of a scenario whose `clients` is not a list.
pub const GROUP_NAME: &str = "default";

pub fn builtin_target() -> BuiltinTarget {
    BuiltinTarget {
        mode: ServerMode::Echo,
        session_window: Duration::from_secs(30),
        replay_buffer: 1024,
        max_handshake_rate: None,
        max_message_bytes: SERVER_MAX_MESSAGE,
    }
}

/// The built-in server's read limit when nothing says more (`squall serve`): 64 KiB of
/// payload, plus the envelope. A run raises it to its largest message.
pub const SERVER_MAX_MESSAGE: u64 = 64 * 1024;

pub const STREAM_RATE: Rate = Rate { per_second: 5.0 };
pub const STREAM_SIZE: u64 = 64;

pub fn messages() -> Messages {
    Messages {
        rate: Rate { per_second: 1.0 },
        min_bytes: 128,
        max_bytes: 128,
        kind: MessageKind::Text,
    }
}

pub fn recovery() -> RecoveryPolicy {
    RecoveryPolicy {
        backoff: BackoffPolicy {
            kind: BackoffKind::Exponential,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: Jitter::Full,
        },
        heartbeat: HeartbeatPolicy {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(4),
        },
        retransmit: RetransmitPolicy {
            ack_timeout: Duration::from_secs(5),
            max_in_flight: 256,
        },
        outbox: OutboxPolicy {
            max_messages: 10_000,
            max_bytes: 16 << 20,
            overflow: Overflow::Block,
        },
        max_attempts: None,
        max_elapsed: None,
        connect_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        min_uptime: Duration::from_secs(1),
        on_error: Vec::new(),
    }
}

pub fn report() -> ReportSettings {
    ReportSettings {
        dir: PathBuf::from("reports"),
        formats: vec![ReportFormat::Json, ReportFormat::Md],
    }
}

// Network fault parameters.
pub const SLICER_AVERAGE_SIZE: u64 = 64;
pub const SLICER_SIZE_VARIATION: u64 = 32;
pub const SLOW_CLOSE_DELAY: Duration = Duration::from_secs(1);
/// `ws_close`: going away, as a proxy or load balancer leaving says.
pub const WS_CLOSE_CODE: u16 = 1001;
/// `ws_oversize`: tungstenite's (and many servers') default frame limit.
pub const WS_OVERSIZE_BYTES: u64 = 16 << 20;
/// `ws_invalid_utf8`: every text message.
pub const WS_INVALID_UTF8_PROBABILITY: f64 = 1.0;

// Server fault parameters.
pub const RESTART_CLOSE_CODE: u16 = 1012;
pub const RESTART_DOWN_FOR: Duration = Duration::from_secs(2);
pub const REJECT_STATUS: u16 = 503;
pub const CLOSE_CODE: u16 = 1001;
/// `accept_close`: try again later, as a gateway at capacity says.
pub const ACCEPT_CLOSE_CODE: u16 = 1013;
pub const APP_ERROR_MESSAGE: &str = "injected application error";

/// Limits: values past these are typos (`30d` for `30s`), not experiments.
pub mod limits {
    use std::time::Duration;

    /// Largest scenario file read.
    pub const FILE_BYTES: u64 = 1 << 20;
    /// Most values (scalars, lists, maps, keys) a scenario may hold once its aliases
    /// (`*name`) are expanded, per byte of its text: written out, a file holds about one
    /// per byte at most. So aliases may repeat what they name, but a few lines of aliases
    /// that repeat aliases are refused before they cost memory or time. serde_yaml bounds
    /// only how often aliases nest, not how much one repeats.
    pub const VALUES_PER_BYTE: usize = 4;
    /// The values allowed however small the file.
    pub const VALUES_MIN: usize = 10_000;
    /// The values allowed however large the file: hundreds of times what the fullest
    /// shipped scenario holds (about 300).
    pub const VALUES: usize = 250_000;
    /// Longest run, and longest any duration in a scenario may be.
    pub const DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Most clients in one group, and in total.
    pub const CLIENTS: u64 = 10_000_000;
    /// Largest message, stream push, or slicer segment.
    pub const MESSAGE_BYTES: u64 = 64 << 20;
    /// Largest outbox, in bytes.
    pub const OUTBOX_BYTES: u64 = 1 << 30;
    /// Largest limit `ws_oversize` sends a frame over (the frame is really sent).
    pub const WS_OVERSIZE_BYTES: u64 = 1 << 30;
    /// Fastest rate of anything counted per second (messages, connects, handshakes).
    pub const RATE_PER_SECOND: f64 = 1_000_000.0;
    /// Largest count of anything else (in-flight messages, outbox messages, attempts,
    /// replay buffer).
    pub const COUNT: u64 = 10_000_000;
}
