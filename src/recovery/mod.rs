#![warn(missing_docs)]
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
//! With a server that speaks squall's protocol (`docs/protocol.md`), both directions are
//! exactly-once while the server keeps the session: per-direction sequence numbers that
//! survive reconnects, cumulative acks, a resume handshake, retransmit of what is
//! unacknowledged, receiver-side dedup and a CRC32C per message. When the server has lost
//! the session the engine says what it cannot vouch for ([`SessionEvent::Discontinuity`]).
//! With a plain echo server it frames each message with its sequence number and counts it
//! delivered when the echo comes back (at-least-once out, exactly-once observed).

mod backoff;
mod connect;
mod disconnect;
mod driver;
mod echo;
mod live;
mod outbox;
mod session;
mod state;
#[cfg(test)]
mod tests;
mod tls;
mod upgrade;

use std::future::Future;

use bytes::Bytes;
use tokio::time::Instant;

pub use backoff::{Backoff, InvalidBackoff};
pub use connect::{BoxedIo, Dialer, Io, TcpDialer};
pub use disconnect::{Disconnect, Disposition, close_code_class};
pub use driver::run as drive;
pub use echo::{decode_seq, encode};
pub use session::{Session, SessionStreams};
pub use state::{Delivered, End, Outcome, SessionEvent, StateKind};
pub use tls::{TlsError, client_config as tls_client_config};

use crate::rng::Rng;
use crate::scenario::{MessageKind, Protocol, RecoveryPolicy};

/// Everything a session needs to connect and recover.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `ws://host:port/path` or `wss://…`.
    pub url: String,
    /// This session's id, unique per logical session: the server keys resume on it.
    pub session: String,
    /// `Squall` offers the `squall.v1` subprotocol and requires the server to select it;
    /// `Echo` treats the server as a plain echo server.
    pub protocol: Protocol,
    /// Extra handshake headers (auth tokens, client ids).
    pub headers: Vec<(String, String)>,
    /// Offered in `Sec-WebSocket-Protocol`.
    pub subprotocols: Vec<String>,
    /// Backoff, heartbeat, outbox bounds, timeouts, retry limits and the error policy.
    pub policy: RecoveryPolicy,
    /// Frame type of outgoing messages.
    pub kind: MessageKind,
    /// Drives backoff jitter; derive it from a seed and the client's index.
    pub rng: Rng,
    /// How each attempt opens its byte stream; `None` dials TCP ([`TcpDialer`]).
    pub dialer: Option<std::sync::Arc<dyn Dialer>>,
    /// TLS for `wss://` URLs ([`tls_client_config`]); `None` trusts the system's roots.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The largest message payload the server may send this session. The read limit, per
    /// message and per frame, is this plus squall's envelope and never below 64 KiB
    /// ([`crate::protocol::read_limit`]); a larger frame or message ends the connection
    /// as a data error before it is buffered, so a hostile server cannot make a client
    /// hold more than that. [`DEFAULT_MAX_MESSAGE_BYTES`] suits small messages.
    pub max_message_bytes: u64,
}

/// [`SessionConfig::max_message_bytes`] for sessions whose messages stay small: with it a
/// client reads at most 64 KiB plus the envelope per message.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = crate::protocol::MIN_READ_LIMIT as u64;

/// What the application hands the session next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send this payload. `intended` is when the application meant to send it: latency
    /// is measured from there, so a stall does not hide its own cost.
    Send {
        /// The message.
        payload: Bytes,
        /// Its slot in the application's schedule.
        intended: Instant,
    },
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
    /// Whether the application has everything it waits for, so a finishing session may
    /// close (e.g. every echo of what it sent has come back).
    fn settled(&self) -> bool {
        true
    }
    /// A message from the server, exactly once, in order (squall protocol).
    fn received(&mut self, _payload: Bytes) {}
    /// A message or confirmation arrived that was already had: suppressed, not delivered.
    fn duplicate(&mut self, _seq: u64) {}
    /// The outbox was full and the policy is `fail`: the message was not accepted.
    fn refused(&mut self) {}
}
