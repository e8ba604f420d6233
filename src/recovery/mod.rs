//! The recovery engine: a WebSocket session that survives its connections.
//!
//! A session reconnects with backoff and jitter, detects a dead or half-open link with
//! heartbeats, keeps every message accepted by `send` until its delivery is confirmed,
//! and sends again what a lost connection left unconfirmed. Every step is reported as a
//! [`SessionEvent`]; errors are classified connection / data / application, each with a
//! disposition from a configurable policy table.
//!
//! Two ways in:
//! - [`Session::open`]: a handle to send on and a stream of events, for any Rust program;
//! - [`drive`] with your own [`Application`]: one task, no channels, which is how every
//!   virtual client of a run uses it.
//!
//! Confirmation is by echo: the engine frames each message with its sequence number and
//! counts it delivered when it comes back, deduplicating repeated echoes (at-least-once
//! out, exactly-once observed).

mod backoff;
mod disconnect;
mod driver;
mod outbox;
mod session;
mod state;

use std::future::Future;

use bytes::Bytes;
use tokio::time::Instant;

pub use backoff::{Backoff, InvalidBackoff};
pub use disconnect::{Disconnect, Disposition, close_code_class};
pub use driver::run as drive;
pub use outbox::{decode_seq, encode};
pub use session::{Session, SessionStreams};
pub use state::{Delivered, End, Outcome, SessionEvent, StateKind};

use crate::rng::Rng;
use crate::scenario::{MessageKind, RecoveryPolicy};

/// Everything a session needs to connect and recover.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `ws://host:port/path`.
    pub url: String,
    /// Extra handshake headers (auth tokens, client ids).
    pub headers: Vec<(String, String)>,
    /// Offered in `Sec-WebSocket-Protocol`.
    pub subprotocols: Vec<String>,
    pub policy: RecoveryPolicy,
    /// Frame type of outgoing messages.
    pub kind: MessageKind,
    /// Drives backoff jitter; derive it from a seed and the client's index.
    pub rng: Rng,
}

/// What the application hands the session next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send this payload. `intended` is when the application meant to send it: latency
    /// is measured from there, so a stall does not hide its own cost.
    Send { payload: Bytes, intended: Instant },
    /// Nothing more to send: finish once everything sent is confirmed.
    Finish,
}

/// The application side of a session driven by [`drive`].
pub trait Application: Send {
    /// The next message to send. Must be cancel-safe: the session may drop the future
    /// when something else happens first and call again later.
    fn next(&mut self) -> impl Future<Output = Next> + Send;
    /// A lifecycle event (state change, disconnect, resume, …).
    fn event(&mut self, event: SessionEvent);
    /// A message was accepted into the outbox under `seq`: from here on the session owes
    /// its delivery.
    fn accepted(&mut self, _seq: u64) {}
    /// A message was written to a connection (first send or retransmit).
    fn sent(&mut self, _seq: u64) {}
    /// A message's delivery was confirmed, exactly once per message.
    fn delivered(&mut self, delivered: Delivered);
    /// A confirmation arrived for a message already confirmed (suppressed duplicate).
    fn duplicate(&mut self, _seq: u64) {}
    /// The outbox was full and the policy is `fail`: the message was not accepted.
    fn refused(&mut self) {}
}
