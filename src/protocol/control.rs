//! The JSON bodies of the control frames (HELLO, WELCOME, CLOSE, ERROR) and the rules a
//! decoded body must satisfy.
//!
//! The Rust types hold units as types (`Duration`, a checked [`SessionId`]); the wire
//! keeps the names an implementer in another language sees in `docs/protocol.md`
//! (`window_ms`, `retry_after_ms`). Unknown JSON fields are ignored, so a later v1 server
//! may add optional fields without breaking older clients.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Close codes squall itself sends, all in the 4000–4499 "reconnect and resume" range.
pub mod close_code {
    /// The receiver saw a sequence gap (a whole message lost in transit): resume, and
    /// the sender retransmits from the receiver's ack.
    pub const GAP: u16 = 4000;
    /// A frame failed to decode (CRC mismatch, malformed header): resume, and whatever
    /// the frame carried is retransmitted.
    pub const CORRUPT: u16 = 4001;
    /// The server closes an older connection of a session that resumed on a newer one.
    pub const SUPERSEDED: u16 = 4002;
}

/// A client-chosen session id: 1 to 128 visible ASCII characters (`!` to `~`).
///
/// Whitespace and control characters are excluded so an id can sit in a log line, a
/// header or a file name unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Longest id in bytes.
    pub const MAX_LEN: usize = 128;

    pub fn new(id: impl Into<String>) -> Result<SessionId, ControlError> {
        let id = id.into();
        if id.is_empty() {
            return Err(ControlError::SessionEmpty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(ControlError::SessionTooLong { len: id.len() });
        }
        if let Some((index, byte)) = id.bytes().enumerate().find(|(_, b)| !b.is_ascii_graphic()) {
            return Err(ControlError::SessionChar { index, byte });
        }
        Ok(SessionId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = ControlError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        SessionId::new(id)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// HELLO, client → server, the first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub session: SessionId,
    /// False on the session's first connection: the server then discards anything it
    /// holds under this id and starts fresh.
    pub resume: bool,
    /// Every server DATA with seq <= ack reached the client's application.
    pub ack: u64,
    /// The seq the client gives its next new message: it has assigned `next_seq - 1` so far.
    pub next_seq: u64,
}

/// WELCOME, server → client, the answer to HELLO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub session: SessionId,
    /// True when the server still had the session's state.
    pub resumed: bool,
    /// Every client DATA with seq <= ack reached the server's application.
    pub ack: u64,
    /// The seq the server gives its next new message.
    pub next_seq: u64,
    /// How long the server keeps a disconnected session.
    #[serde(rename = "window_ms", with = "millis")]
    pub window: Duration,
    /// The most unacknowledged client DATA the server accepts at once; the client sends
    /// with the smaller of this and its own window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

/// CLOSE, either side, sent just before the WebSocket close frame: why, and what the
/// other side should do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseInfo {
    /// The WebSocket close code that follows.
    pub code: u16,
    pub class: CloseClass,
    /// Do not reconnect before this much time has passed.
    #[serde(rename = "retry_after_ms", with = "opt_millis", default)]
    pub retry_after: Option<Duration>,
    #[serde(default)]
    pub reason: String,
}

impl CloseInfo {
    /// A CLOSE whose class follows from its code (see [`CloseClass::from_close_code`]).
    pub fn from_code(code: u16, reason: impl Into<String>) -> CloseInfo {
        CloseInfo {
            code,
            class: CloseClass::from_close_code(code),
            retry_after: None,
            reason: reason.into(),
        }
    }
}

/// What a close means for reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseClass {
    /// A passing failure: reconnect with backoff and resume.
    Transient,
    /// The server is overloaded: reconnect no sooner than `retry_after`, else with a long
    /// backoff.
    Overload,
    /// The server is restarting or shutting down: reconnect with jitter and resume.
    Restart,
    /// The session lives elsewhere now: resolve the address again, reconnect, resume.
    Moved,
    /// Credentials were refused: refresh them and retry once, else give up.
    Auth,
    /// Retrying cannot help: stop.
    Fatal,
}

impl CloseClass {
    /// The class of a WebSocket close code that came without a CLOSE body (RFC 6455 §7.4
    /// and the IANA registry; `docs/protocol.md` has the table and the reasons).
    pub fn from_close_code(code: u16) -> CloseClass {
        match code {
            // Going away and service restart: a deploy, come back and resume.
            1001 | 1012 => CloseClass::Restart,
            // Try again later: the server's way to shed load.
            1013 => CloseClass::Overload,
            // IANA-registered Unauthorized and Forbidden.
            3000 | 3003 => CloseClass::Auth,
            // Protocol error, unsupported data, policy, too big (resending it would be
            // refused again), missing extension, TLS: the same attempt fails the same way.
            1002 | 1003 | 1008 | 1009 | 1010 | 1015 => CloseClass::Fatal,
            // Normal, no status, abnormal, invalid payload, internal error, bad gateway:
            // a persistent session comes back after these.
            1000 | 1005..=1007 | 1011 | 1014 => CloseClass::Transient,
            // Frameworks' codes: unknown meaning, so retrying (with backoff) is the safe bet.
            3001..=3999 => CloseClass::Transient,
            // Private use, split as Centrifugo does: reconnect / terminal.
            4000..=4499 => CloseClass::Transient,
            4500..=4999 => CloseClass::Fatal,
            // Codes no conforming peer sends (< 1000, 1004, 1016–2999, >= 5000).
            _ => CloseClass::Fatal,
        }
    }

    /// Whether the client should reconnect after a close of this class (`Auth` retries
    /// once, with fresh credentials).
    pub fn is_retryable(self) -> bool {
        !matches!(self, CloseClass::Fatal)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CloseClass::Transient => "transient",
            CloseClass::Overload => "overload",
            CloseClass::Restart => "restart",
            CloseClass::Moved => "moved",
            CloseClass::Auth => "auth",
            CloseClass::Fatal => "fatal",
        }
    }
}

impl fmt::Display for CloseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ERROR, server → client: the application refused or failed something. The session
/// stays up; the client counts it as an application error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: u32,
    #[serde(default)]
    pub message: String,
}

/// A control body that parsed as JSON but breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("session id is empty")]
    SessionEmpty,
    #[error("session id is {len} bytes long, more than {}", SessionId::MAX_LEN)]
    SessionTooLong { len: usize },
    #[error("session id byte {index} is {byte:#04x}, not visible ASCII")]
    SessionChar { index: usize, byte: u8 },
    #[error("next_seq is 0 (sequence numbers start at 1)")]
    NextSeqZero,
}

impl Hello {
    /// Rules serde cannot express.
    pub fn validate(&self) -> Result<(), ControlError> {
        if self.next_seq == 0 {
            return Err(ControlError::NextSeqZero);
        }
        Ok(())
    }
}

impl Welcome {
    /// Rules serde cannot express.
    pub fn validate(&self) -> Result<(), ControlError> {
        if self.next_seq == 0 {
            return Err(ControlError::NextSeqZero);
        }
        Ok(())
    }
}

/// A `Duration` as whole milliseconds (`u64`).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// An optional `Duration` as whole milliseconds or `null`.
mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
