//! Whole messages out of held frames: the units WebSocket faults act on.
//!
//! A data message is its first frame (text or binary) and its continuations up to the
//! one with FIN; control frames that come between them are units of their own, passed on
//! as they come (RFC 6455 §5.4 lets them interleave), so a message held until its last
//! fragment never holds a ping back.

use bytes::Bytes;
use tokio::time::Instant;

use super::frame::{Frame, OpCode};
use super::split::{Boundary, Piece};

/// A whole data message, as its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The first (text or binary), then its continuations; the last has FIN.
    pub frames: Vec<Frame>,
}

impl Message {
    pub fn opcode(&self) -> OpCode {
        self.frames[0].header.opcode
    }

    /// Compressed by an extension (RSV1, permessage-deflate): its payload is not the
    /// message's text.
    pub fn compressed(&self) -> bool {
        self.frames[0].header.rsv & 0b100 != 0
    }

    pub fn wire_len(&self) -> usize {
        self.frames.iter().map(Frame::wire_len).sum()
    }
}

/// What WebSocket faults see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Message(Message),
    /// A ping, pong or close frame.
    Control(Frame),
    /// Bytes no fault may touch (the HTTP head, the rest of a frame or message that began
    /// before a fault held messages, one too large to hold), and where the stream stands
    /// after them. A stage holding units back lets them go before any raw bytes pass.
    Raw {
        bytes: Bytes,
        after: Boundary,
    },
}

/// An item with its timing, as a chunk has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub item: Item,
    /// When its last byte was read.
    pub arrival: Instant,
    /// When it may be written on; starts at `arrival`.
    pub due: Instant,
}

impl Unit {
    pub fn new(item: Item, at: Instant) -> Self {
        Self {
            item,
            arrival: at,
            due: at,
        }
    }

    pub fn wire_len(&self) -> usize {
        match &self.item {
            Item::Message(m) => m.wire_len(),
            Item::Control(f) => f.wire_len(),
            Item::Raw { bytes, .. } => bytes.len(),
        }
    }

    pub fn is_message(&self) -> bool {
        matches!(self.item, Item::Message(_))
    }

    /// A unit before which held units must go: raw bytes (which may start a frame
    /// mid-message) or a close (nothing may follow it).
    pub fn is_barrier(&self) -> bool {
        match &self.item {
            Item::Raw { .. } => true,
            Item::Control(f) => f.header.opcode == OpCode::Close,
            Item::Message(_) => false,
        }
    }
}

/// Collects the held frames of the message being read.
#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    frames: Vec<Frame>,
}

impl Reassembler {
    /// No frame held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Takes a piece of the stream read at `at`; what is complete goes onto `out`.
    pub fn push(&mut self, piece: Piece, at: Instant, out: &mut Vec<Unit>) {
        match piece {
            Piece::Raw { bytes, after } => out.push(Unit::new(Item::Raw { bytes, after }, at)),
            Piece::Release => {
                for frame in self.frames.drain(..) {
                    let raw = Item::Raw {
                        bytes: frame.raw,
                        after: Boundary::MidMessage,
                    };
                    out.push(Unit::new(raw, at));
                }
            }
            Piece::Frame(frame) if frame.header.opcode.is_control() => {
                out.push(Unit::new(Item::Control(frame), at));
            }
            Piece::Frame(frame) => {
                let fin = frame.header.fin;
                self.frames.push(frame);
                if fin {
                    let message = Message {
                        frames: std::mem::take(&mut self.frames),
                    };
                    out.push(Unit::new(Item::Message(message), at));
                }
            }
        }
    }
}
