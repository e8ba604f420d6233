//! The squall wire protocol, `squall.v1`: exactly-once delivery in both directions
//! across reconnects, between the recovery engine and any server that implements
//! `docs/protocol.md` (the specification; this module is its reference implementation).
//!
//! A leaf: pure types and rules, no I/O, nothing else from the crate. The engine and the
//! built-in server own the sockets and the clocks and call in here.
//!
//! - [`frame`]: the binary envelope (header, body, CRC-32C) and its codec.
//! - [`control`]: the JSON bodies of HELLO, WELCOME, CLOSE and ERROR, and close classes.
//! - [`window`]: sequence numbers, cumulative acks, dedup, gaps, the send window.
//! - [`resume`]: the HELLO/WELCOME handshake applied to that state, and the
//!   [`Discontinuity`] reported when the server lost the session.
//!
//! The promise, in one line: every message is delivered to the peer's application once
//! and in order, as long as both ends keep their session state; when the server loses
//! it, the client names exactly which messages are unverified.

pub mod control;
pub mod frame;
pub mod resume;
pub mod window;

#[cfg(test)]
mod tests;

pub use control::{
    AppError, CloseClass, CloseInfo, ControlError, Hello, SessionId, Welcome, close_code,
};
pub use frame::{
    DecodeError, Flags, Frame, FrameType, HEADER_LEN, MAX_CONTROL_BODY, MIN_FRAME_LEN,
    MIN_READ_LIMIT, SUBPROTOCOL, TRAILER_LEN, VERSION, decode, encode, encode_data, read_limit,
};
pub use resume::{Discontinuity, ResumeError, Resumption, ServerGap, apply_hello, apply_welcome};
pub use window::{ACK_AFTER, ACK_EVERY, AckError, Inbound, Outbound, Receipt, Transmit};
