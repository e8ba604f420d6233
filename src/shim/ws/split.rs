//! Following one direction's byte stream: where the HTTP upgrade ends, where each frame
//! starts and ends, which data message it belongs to; and cutting what arrives into
//! [`Piece`]s at those places.
//!
//! Two ways to follow:
//! - [`Splitter::observe`] (passive) only counts: no copy, no allocation. The link's fast
//!   path calls it on every read while no WebSocket fault acts on the link.
//! - [`Splitter::split`] (active) cuts a chunk into pieces. With `hold`, each frame whose
//!   first byte the splitter meets is held whole and handed on as a [`Piece::Frame`] (a
//!   control frame alone, a data message frame by frame), so the message layer can act
//!   on whole messages. A frame or message that began before — partly forwarded already —
//!   goes on raw, cut where it ends. Without `hold` everything goes raw, cut at frame
//!   boundaries, so an injected frame can be placed between two.
//!
//! Bounds: a frame is held up to the shim's `max_held` payload bytes ([`MAX_HELD`] unless
//! the run says less), a message up to that total;
//! past it, what was held is released raw ([`Piece::Release`]) and the rest streams: the
//! faults skip that message and the stream stays followed. Bytes that break the framing
//! (a reserved opcode, a fragmented control frame, a continuation outside a message, …)
//! end the following for good: everything after passes raw, and
//! [`Splitter::take_gave_up`] says why.

use bytes::{Bytes, BytesMut};

use super::frame::{Header, MAX_HEADER, OpCode, header_len, parse_header};
use super::head::{Scan, Scanned};
use crate::scenario::Direction;

/// Most payload bytes held for one frame, or one message's frames together, unless the
/// shim is told less (a run: the largest message its peers accept). A peer's 16 MiB
/// frame (tungstenite's default limit) still fits; the buffer never grows past it plus a
/// header.
pub const MAX_HELD: u64 = 16 << 20;
/// Room reserved for a held frame before its payload comes.
const INITIAL_ROOM: u64 = 64 * 1024;

/// Where a stream stands between two bytes: what may be put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// Inside the HTTP upgrade.
    Head,
    /// Inside a frame: nothing may go here.
    MidFrame,
    /// Between two frames of a fragmented data message: only a control frame may.
    MidMessage,
    /// Between messages: any frame may.
    Clear,
    /// Not WebSocket, or no longer followed.
    Lost,
}

/// What a chunk is cut into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Bytes to pass on as they came, and where the stream stands after them.
    Raw { bytes: Bytes, after: Boundary },
    /// A whole frame held for the message layer.
    Frame(super::frame::Frame),
    /// The frames held so far for the current message are not held any longer (too
    /// large, or no fault holds messages now): pass them on; the rest follows raw.
    Release,
}

enum Phase {
    Head(Scan),
    Frames,
    Lost,
}

enum Keep {
    Held(BytesMut),
    Streamed,
}

/// The frame being read, once its header is whole.
struct Current {
    header: Header,
    /// Payload bytes still to come.
    left: u64,
    keep: Keep,
}

/// An open fragmented data message.
#[derive(Clone, Copy)]
enum Open {
    /// Its frames are held; payload bytes so far.
    Held(u64),
    Streamed,
}

pub(crate) struct Splitter {
    phase: Phase,
    /// Header bytes of the next or current frame.
    head: [u8; MAX_HEADER],
    have: usize,
    /// How many of them were passed on already.
    passed: usize,
    current: Option<Current>,
    open: Option<Open>,
    gave_up: Option<String>,
    /// Messages that passed unheld because they were too large.
    skipped: u64,
    /// Most payload bytes held for one frame or message.
    max_held: u64,
}

impl Splitter {
    /// Follows direction `dir` from its first byte (the HTTP head), holding frames and
    /// messages of at most `max_held` payload bytes.
    pub fn new(dir: Direction, max_held: u64) -> Self {
        Self {
            phase: Phase::Head(Scan::new(dir)),
            head: [0; MAX_HEADER],
            have: 0,
            passed: 0,
            current: None,
            open: None,
            gave_up: None,
            skipped: 0,
            max_held,
        }
    }

    /// Where the stream read so far stands.
    pub fn boundary(&self) -> Boundary {
        match self.phase {
            Phase::Head(_) => Boundary::Head,
            Phase::Lost => Boundary::Lost,
            Phase::Frames if self.have > 0 || self.current.is_some() => Boundary::MidFrame,
            Phase::Frames if self.open.is_some() => Boundary::MidMessage,
            Phase::Frames => Boundary::Clear,
        }
    }

    /// Bytes read and not passed on yet.
    pub fn holding(&self) -> bool {
        self.have > self.passed
            || matches!(self.open, Some(Open::Held(_)))
            || matches!(
                self.current,
                Some(Current {
                    keep: Keep::Held(_),
                    ..
                })
            )
    }

    /// Why the stream stopped being followed, once.
    pub fn take_gave_up(&mut self) -> Option<String> {
        self.gave_up.take()
    }

    /// Messages passed unheld since the last call because they were too large to hold.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Follows `data`, which passes on as it is.
    pub fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let used = match &mut self.phase {
                Phase::Lost => return,
                Phase::Head(scan) => match scan.feed(data) {
                    Scanned::More => return,
                    Scanned::Done { used, upgraded } => {
                        self.phase = if upgraded { Phase::Frames } else { Phase::Lost };
                        used
                    }
                },
                Phase::Frames => self.observe_frames(data),
            };
            data = &data[used..];
        }
    }

    fn observe_frames(&mut self, data: &[u8]) -> usize {
        if let Some(cur) = &mut self.current {
            let n = cur.left.min(data.len() as u64) as usize;
            cur.left -= n as u64;
            if cur.left == 0 {
                self.end_frame();
            }
            return n;
        }
        let n = self.take_header(data);
        self.passed = self.have;
        if let Some(header) = self.header(&mut Vec::new()) {
            if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                self.open = Some(Open::Streamed);
            }
            self.begin(header, Keep::Streamed);
            if header.len == 0 {
                self.end_frame();
            }
        }
        n
    }

    /// Cuts `chunk` into pieces; `hold`: hold the frames that start in it.
    pub fn split(&mut self, chunk: &Bytes, hold: bool, out: &mut Vec<Piece>) {
        if !hold {
            self.release(out);
        }
        let mut at = 0;
        while at < chunk.len() {
            at += match &mut self.phase {
                Phase::Lost => {
                    out.push(Piece::Raw {
                        bytes: chunk.slice(at..),
                        after: Boundary::Lost,
                    });
                    return;
                }
                Phase::Head(scan) => {
                    let used = match scan.feed(&chunk[at..]) {
                        Scanned::More => chunk.len() - at,
                        Scanned::Done { used, upgraded } => {
                            self.phase = if upgraded { Phase::Frames } else { Phase::Lost };
                            used
                        }
                    };
                    out.push(Piece::Raw {
                        bytes: chunk.slice(at..at + used),
                        after: self.boundary(),
                    });
                    used
                }
                Phase::Frames => self.split_frames(chunk, at, hold, out),
            };
        }
    }

    fn split_frames(
        &mut self,
        chunk: &Bytes,
        at: usize,
        hold: bool,
        out: &mut Vec<Piece>,
    ) -> usize {
        let data = &chunk[at..];
        if let Some(cur) = &mut self.current {
            let n = cur.left.min(data.len() as u64) as usize;
            cur.left -= n as u64;
            let done = cur.left == 0;
            match &mut cur.keep {
                Keep::Held(buf) => {
                    buf.extend_from_slice(&data[..n]);
                    if done {
                        self.end_frame_into(out);
                    }
                }
                Keep::Streamed => {
                    if done {
                        self.end_frame();
                    }
                    out.push(Piece::Raw {
                        bytes: chunk.slice(at..at + n),
                        after: self.boundary(),
                    });
                }
            }
            return n;
        }
        let n = self.take_header(data);
        let Some(header) = self.header(out) else {
            if self.passed > 0 || !hold {
                self.pass_head(Boundary::MidFrame, out);
            }
            return n;
        };
        let keep = self.decide(&header, hold, out);
        let streamed = matches!(keep, Keep::Streamed);
        self.begin(header, keep);
        if streamed {
            let after = match header.len {
                0 => self.after_end(&header),
                _ => Boundary::MidFrame,
            };
            self.pass_head(after, out);
            if header.len == 0 {
                self.end_frame();
            }
        } else if header.len == 0 {
            self.end_frame_into(out);
        }
        n
    }

    /// Passes on whatever is held (no fault holds messages now, or the stream ended):
    /// the frames of the current message, then the current frame's bytes so far.
    pub fn release(&mut self, out: &mut Vec<Piece>) {
        if let Some(Open::Held(_)) = self.open {
            out.push(Piece::Release);
            self.open = Some(Open::Streamed);
        }
        match &mut self.current {
            Some(cur) => {
                if let Keep::Held(buf) = std::mem::replace(&mut cur.keep, Keep::Streamed) {
                    out.push(Piece::Raw {
                        bytes: buf.freeze(),
                        after: Boundary::MidFrame,
                    });
                }
                self.passed = self.have;
            }
            None => self.pass_head(Boundary::MidFrame, out),
        }
    }

    /// Copies header bytes from `data` until the header is whole; how many it took.
    fn take_header(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        loop {
            let need = match self.have {
                0 | 1 => 2,
                _ => header_len(self.head[1]),
            };
            if self.have >= need || used == data.len() {
                return used;
            }
            let n = (need - self.have).min(data.len() - used);
            self.head[self.have..self.have + n].copy_from_slice(&data[used..used + n]);
            self.have += n;
            used += n;
        }
    }

    /// The header once whole and valid here; a bad one ends the following.
    fn header(&mut self, out: &mut Vec<Piece>) -> Option<Header> {
        let header = match parse_header(&self.head[..self.have]) {
            Ok(Some((header, _))) => header,
            Ok(None) => return None,
            Err(e) => {
                self.give_up(e, out);
                return None;
            }
        };
        let misplaced = match header.opcode {
            OpCode::Continuation => self.open.is_none(),
            OpCode::Text | OpCode::Binary => self.open.is_some(),
            _ => false,
        };
        if misplaced {
            let why = match header.opcode {
                OpCode::Continuation => "a continuation frame outside a message",
                _ => "a new message inside a fragmented one",
            };
            self.give_up(why, out);
            return None;
        }
        Some(header)
    }

    /// Whether a frame starting now is held, and what that makes of its message.
    fn decide(&mut self, header: &Header, hold: bool, out: &mut Vec<Piece>) -> Keep {
        let fresh = hold && self.passed == 0;
        let held = match header.opcode {
            OpCode::Text | OpCode::Binary => {
                let held = fresh && header.len <= self.max_held;
                self.skipped += u64::from(fresh && !held);
                self.open = Some(if held {
                    Open::Held(header.len)
                } else {
                    Open::Streamed
                });
                held
            }
            OpCode::Continuation => match self.open {
                Some(Open::Held(n)) if fresh && n + header.len <= self.max_held => {
                    self.open = Some(Open::Held(n + header.len));
                    true
                }
                Some(Open::Held(_)) => {
                    self.skipped += u64::from(fresh);
                    out.push(Piece::Release);
                    self.open = Some(Open::Streamed);
                    false
                }
                _ => false,
            },
            _ => fresh,
        };
        match held {
            true => {
                // Grown as the payload comes, not sized by what the header claims.
                let room = header.len.min(INITIAL_ROOM) as usize;
                let mut buf = BytesMut::with_capacity(self.have + room);
                buf.extend_from_slice(&self.head[..self.have]);
                Keep::Held(buf)
            }
            false => Keep::Streamed,
        }
    }

    fn begin(&mut self, header: Header, keep: Keep) {
        self.current = Some(Current {
            header,
            left: header.len,
            keep,
        });
    }

    /// Where the stream stands once `header`'s frame has ended.
    fn after_end(&self, header: &Header) -> Boundary {
        match (header.opcode.is_control(), header.fin, self.open.is_some()) {
            (false, true, _) | (true, _, false) => Boundary::Clear,
            _ => Boundary::MidMessage,
        }
    }

    /// The current frame is complete; its bytes if it was held.
    fn end_frame(&mut self) -> Option<super::frame::Frame> {
        let cur = self.current.take()?;
        self.have = 0;
        self.passed = 0;
        if !cur.header.opcode.is_control() && cur.header.fin {
            self.open = None;
        }
        match cur.keep {
            Keep::Held(buf) => Some(super::frame::Frame {
                header: cur.header,
                raw: buf.freeze(),
            }),
            Keep::Streamed => None,
        }
    }

    fn end_frame_into(&mut self, out: &mut Vec<Piece>) {
        if let Some(frame) = self.end_frame() {
            out.push(Piece::Frame(frame));
        }
    }

    /// Passes on the header bytes not passed yet.
    fn pass_head(&mut self, after: Boundary, out: &mut Vec<Piece>) {
        if self.have > self.passed {
            out.push(Piece::Raw {
                bytes: Bytes::copy_from_slice(&self.head[self.passed..self.have]),
                after,
            });
            self.passed = self.have;
        }
    }

    fn give_up(&mut self, why: impl ToString, out: &mut Vec<Piece>) {
        if let Some(Open::Held(_)) = self.open {
            out.push(Piece::Release);
        }
        self.pass_head(Boundary::Lost, out);
        self.phase = Phase::Lost;
        self.open = None;
        self.current = None;
        self.have = 0;
        self.passed = 0;
        self.gave_up = Some(why.to_string());
    }
}
