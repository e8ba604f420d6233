//! The WebSocket layer of one direction of one connection: follows the stream, turns it
//! into units for the message stages while any is in place, turns the units back into
//! chunks, and places injected frames.
//!
//! It sits first on the link, before the byte-level stages, so it reads the stream as the
//! source sent it. The link drives it through `Chain`:
//! - **passive** ([`Layer::passive`]): nothing held, nothing to place, no stage holding
//!   messages. [`Layer::observe`] only follows the bytes, which pass on unchanged.
//! - **active**: [`Layer::split`] cuts each chunk into units (held frames become whole
//!   messages), the message stages act on them, [`Layer::join`] writes what they let
//!   through back as chunks — a frame forwarded unchanged keeps its own bytes (and mask)
//!   — and places pending injections where the written stream allows.
//!
//! It tracks where the **written** stream stands (`emitted`): raw bytes say it, a whole
//! message leaves it between messages, a control frame leaves it as it was. Once a close
//! is written, nothing more is: the source's further bytes are discarded and the link
//! closes the connection when the close is out.

use std::collections::VecDeque;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::inject::{Fit, GRACE, Injection, Kind};
use super::message::{Item, Reassembler, Unit};
use super::split::{Boundary, Piece, Splitter};
use crate::scenario::Direction;
use crate::shim::conn::ConnInfo;
use crate::shim::faults::Chunk;

pub(crate) struct Layer {
    split: Splitter,
    messages: Reassembler,
    /// Where the stream written on stands.
    emitted: Boundary,
    pending: VecDeque<(Injection, Instant)>,
    inbox: mpsc::UnboundedReceiver<Injection>,
    /// A close was written (or could not be): the directions to close once it is out.
    closing: Option<Direction>,
    /// Scratch between the splitter and the reassembler.
    pieces: Vec<Piece>,
}

impl Layer {
    /// The layer of direction `dir` of `info`, ready to follow its first byte and to take
    /// injections.
    /// Frames and messages of over `max_held` payload bytes pass unheld.
    pub fn new(dir: Direction, info: &ConnInfo, max_held: u64) -> Self {
        let (tx, inbox) = mpsc::unbounded_channel();
        // Each direction's chain is built once per connection.
        let _ = info.inbox(dir).set(tx);
        Self {
            split: Splitter::new(dir, max_held),
            messages: Reassembler::default(),
            emitted: Boundary::Head,
            pending: VecDeque::new(),
            inbox,
            closing: None,
            pieces: Vec::new(),
        }
    }

    /// Nothing to do but follow; `hold`: a stage holds messages now.
    pub fn passive(&self, hold: bool) -> bool {
        !hold
            && self.pending.is_empty()
            && self.closing.is_none()
            && self.messages.is_empty()
            && !self.split.holding()
    }

    /// Follows bytes that pass on unchanged (passive only).
    pub fn observe(&mut self, data: &[u8]) {
        self.split.observe(data);
        self.emitted = self.split.boundary();
    }

    /// Cuts a chunk into units; `hold`: hold messages whole for the stages.
    pub fn split(&mut self, chunk: Chunk, hold: bool, out: &mut Vec<Unit>) {
        if self.closing.is_some() {
            return;
        }
        let mut pieces = std::mem::take(&mut self.pieces);
        self.split.split(&chunk.data, hold, &mut pieces);
        for piece in pieces.drain(..) {
            self.messages.push(piece, chunk.arrival, out);
        }
        self.pieces = pieces;
    }

    /// The source ended, or no stage holds messages any more: everything held goes out
    /// as it is.
    pub fn release(&mut self, at: Instant, out: &mut Vec<Unit>) {
        let mut pieces = std::mem::take(&mut self.pieces);
        self.split.release(&mut pieces);
        for piece in pieces.drain(..) {
            self.messages.push(piece, at, out);
        }
        self.pieces = pieces;
    }

    /// Writes units back as chunks, in order, placing injections as soon as they fit.
    pub fn join(&mut self, units: &mut Vec<Unit>, now: Instant, out: &mut Vec<Chunk>) {
        self.place(now, out);
        for unit in units.drain(..) {
            if self.closing.is_some() {
                continue;
            }
            let chunk = |data| Chunk {
                data,
                arrival: unit.arrival,
                due: unit.due,
            };
            match unit.item {
                Item::Message(m) => {
                    self.emitted = Boundary::Clear;
                    out.extend(m.frames.into_iter().map(|f| chunk(f.raw)));
                }
                Item::Control(f) => out.push(chunk(f.raw)),
                Item::Raw { bytes, after } => {
                    self.emitted = after;
                    out.push(chunk(bytes));
                }
            }
            self.place(now, out);
        }
    }

    /// Queues an injection; it goes out at the next [`Layer::join`] where it fits.
    pub fn inject(&mut self, injection: Injection, now: Instant) {
        if self.closing.is_none() {
            self.pending.push_back((injection, now + GRACE));
        }
    }

    /// Writes the pending injections that fit now, in order.
    fn place(&mut self, now: Instant, out: &mut Vec<Chunk>) {
        while let Some((front, _)) = self.pending.front() {
            let fit = front.fits(self.emitted);
            if fit == Fit::Wait {
                return;
            }
            let Some((injection, _)) = self.pending.pop_front() else {
                return;
            };
            if fit == Fit::Now {
                out.extend(injection.chunks.into_iter().map(|c| Chunk::new(c, now)));
            }
            if let Kind::Close { scope } = injection.kind {
                self.closing = Some(scope);
                self.pending.clear();
            }
        }
    }

    /// When the oldest injection stops waiting for its place.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.front().map(|(_, until)| *until)
    }

    /// Gives up on injections whose place did not come in time.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Chunk>) {
        while let Some((injection, until)) = self.pending.front() {
            if *until > now {
                break;
            }
            if let Kind::Close { scope } = injection.kind {
                self.closing = Some(scope);
                self.pending.clear();
                return;
            }
            self.pending.pop_front();
        }
        self.place(now, out);
    }

    /// Injections fired since the last call, without waiting.
    pub fn try_injection(&mut self) -> Option<Injection> {
        self.inbox.try_recv().ok()
    }

    /// Waits for the next injection; never returns if none can come.
    pub async fn injection(&mut self) -> Injection {
        match self.inbox.recv().await {
            Some(injection) => injection,
            None => std::future::pending().await,
        }
    }

    /// A close went out: the directions to close once it is written.
    pub fn closing(&self) -> Option<Direction> {
        self.closing
    }

    /// Why the stream stopped being followed, once.
    pub fn take_gave_up(&mut self) -> Option<String> {
        self.split.take_gave_up()
    }

    /// Messages too large to hold since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        self.split.take_skipped()
    }
}
