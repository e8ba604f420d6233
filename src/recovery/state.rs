//! The session lifecycle as seen from outside: state names and the events a session
//! reports to its application.

use std::time::Duration;

use tokio::time::Instant;

use super::Disconnect;
use crate::scenario::ErrorClass;

/// Where a session is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// Opening the TCP connection.
    Connecting,
    /// Upgrading to WebSocket.
    Handshaking,
    /// Sending what the last connection left unconfirmed.
    Resuming,
    /// Connected; messages flow.
    Live,
    /// Waiting before the next attempt.
    BackingOff,
    /// Ended on purpose (drained, or the application went away).
    Closed,
    /// Ended by a fatal error or by giving up.
    Failed,
}

/// Something a session tells its application. Every disconnect and recovery step is one.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The state machine moved.
    StateChanged {
        /// The state left.
        from: StateKind,
        /// The state entered.
        to: StateKind,
        /// Connection attempts since the session was last live (0 once live).
        attempt: u32,
    },
    /// A connection is live.
    Connected {
        /// Attempts it took since the session was last live.
        attempt: u32,
        /// Not the session's first connection.
        reconnect: bool,
    },
    /// A live connection ended.
    Disconnected {
        /// Why it ended.
        reason: Disconnect,
        /// The reason's error class.
        class: ErrorClass,
        /// How long the connection had been up.
        up_for: Duration,
    },
    /// An attempt failed; the next comes after `next_delay` (`None`: no next attempt).
    AttemptFailed {
        /// Which attempt since the session was last live (1-based).
        attempt: u32,
        /// Why it failed.
        reason: Disconnect,
        /// The reason's error class.
        class: ErrorClass,
        /// The wait before the next attempt.
        next_delay: Option<Duration>,
    },
    /// The session is live again after a disconnect: `downtime` from detecting the loss to
    /// resumed, backoff included; `replayed` messages were sent again.
    Resumed {
        /// From detecting the loss to live again.
        downtime: Duration,
        /// Attempts it took.
        attempts: u32,
        /// Unconfirmed messages written again.
        replayed: usize,
    },
    /// The session stopped trying.
    GaveUp {
        /// What ended it: a fatal error or the retry limits.
        reason: String,
    },
    /// `send` overflowed the outbox and the policy dropped the oldest message.
    Dropped {
        /// The sequence number the dropped message had.
        seq: u64,
    },
    /// The server no longer had this session (it restarted, or the resume window
    /// expired). `unvouched` are the messages sent and not acknowledged before: they are
    /// sent again, but may have reached the server's application already, so for them
    /// only at-least-once holds. Messages the server had queued for this client after
    /// `inbound_after` are gone with its state.
    Discontinuity {
        /// Sequence numbers (in the lost session) of messages that may arrive twice.
        unvouched: Vec<u64>,
        /// Server messages up to this one were received; later ones may be lost.
        inbound_after: u64,
    },
    /// The server reported an application error; the session stays up.
    AppError {
        /// The server's error code.
        code: u32,
        /// The server's description.
        message: String,
    },
    /// A message failed its checksum or did not decode; the connection is given up so
    /// the resume repairs the stream.
    CorruptionDetected,
}

/// A message whose delivery was confirmed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivered {
    /// The message's sequence number in its session.
    pub seq: u64,
    /// When the application meant to send it (its schedule); latency is measured from here.
    pub intended: Instant,
    /// When it was first written to a connection.
    pub first_sent: Instant,
    /// When the confirmation arrived.
    pub confirmed: Instant,
    /// Writes beyond the first.
    pub retransmits: u32,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Why the session ended.
    pub end: End,
    /// Messages accepted by `send` whose delivery was never confirmed.
    pub undelivered: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The application finished and everything it sent was confirmed.
    Drained,
    /// Cancelled from outside (run over, Ctrl-C).
    Cancelled,
    /// A fatal error or the retry limits.
    Failed(String),
}
