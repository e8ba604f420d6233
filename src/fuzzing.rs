//! Entry points for the fuzz targets in `fuzz/` and for the tests that replay what they
//! found (`tests/data/fuzz/<target>/`): each takes arbitrary bytes, drives one parser the
//! way squall does, and panics only when an invariant breaks. Not a stable API.
//!
//! See `docs/fuzzing.md`.

use bytes::Bytes;
use tokio::time::Instant;

use crate::protocol::{self, TRAILER_LEN};
use crate::scenario::{self, Direction};
use crate::shim::ws::frame::{Frame, OpCode, parse_header};
use crate::shim::ws::message::{Item, Message, Reassembler, Unit};
use crate::shim::ws::split::{Piece, Splitter};

/// Scenario text, as `squall validate` reads a file: parsed and checked as a scenario,
/// as a faults file (`squall proxy --faults`) and as one fault (the proxy's control API).
/// A scenario that validates must read back equal from its normalized JSON, which is what
/// a report records and `squall replay` runs again.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenario::from_str(text, "fuzz.yaml") {
        Ok(checked) => {
            let json = checked.to_json().to_string();
            let again = scenario::from_str(&json, "fuzz.json")
                .unwrap_or_else(|error| panic!("the normalized scenario is refused: {error}"));
            assert_eq!(
                again, checked,
                "the normalized scenario reads back different"
            );
        }
        Err(error) => assert_placed(&error),
    }
    if let Err(error) = scenario::faults_from_str(text, "fuzz.yaml") {
        assert_placed(&error);
    }
    if let Err(error) = scenario::fault_from_str(text, "fuzz.yaml") {
        assert_placed(&error);
    }
}

/// Every refusal names its origin and says something.
fn assert_placed(error: &scenario::ScenarioError) {
    let shown = error.to_string();
    assert!(shown.starts_with("fuzz.yaml"), "{shown}");
    assert!(!error.message().is_empty(), "{shown}");
}

/// One binary WebSocket message given to the squall.v1 decoder. When the first byte is
/// odd the trailer is replaced with the right CRC-32C, so the fuzzer reaches past the
/// checksum into the header and body. A frame that decodes encodes back to bytes that
/// decode to the same frame.
pub fn protocol(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 && bytes.len() >= TRAILER_LEN {
        let end = bytes.len() - TRAILER_LEN;
        let crc = crc32c::crc32c(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_be_bytes());
    }
    match protocol::decode(&Bytes::from(bytes)) {
        Ok(frame) => {
            let again = protocol::decode(&protocol::encode(&frame))
                .unwrap_or_else(|error| panic!("{frame:?} encodes to bytes it refuses: {error}"));
            assert_eq!(again, frame, "a frame changed through encode and decode");
        }
        Err(error) => {
            let _ = (error.to_string(), error.is_corruption());
        }
    }
}

/// A byte stream followed by the shim's WebSocket layer, cut into chunks and held or not
/// as a fault would. The first byte picks the direction, whether a valid upgrade head
/// comes first (so the fuzzer need not find one), and seeds the cutting.
///
/// The splitter and the passive follower must agree on where the stream stands after
/// every chunk; every byte comes out exactly once, and the units add up to the stream.
pub fn ws_frames(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = if mode & 1 == 0 {
        Direction::Upstream
    } else {
        Direction::Downstream
    };
    let mut stream = Vec::with_capacity(rest.len() + 128);
    if mode & 2 != 0 {
        stream.extend_from_slice(match dir {
            Direction::Downstream => &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
            _ => &b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"[..],
        });
    }
    stream.extend_from_slice(rest);
    let stream = Bytes::from(stream);

    let mut split = Splitter::new(dir, crate::shim::MAX_HELD);
    let mut follow = Splitter::new(dir, crate::shim::MAX_HELD);
    let mut messages = Reassembler::default();
    let mut pieces = Vec::new();
    let mut units = Vec::new();
    let mut written = Vec::with_capacity(stream.len());
    let now = Instant::now();
    let mut cuts = Cuts(u64::from(mode >> 2) | 1);
    let mut at = 0;
    while at < stream.len() {
        let (len, hold) = cuts.next();
        let chunk = stream.slice(at..(at + len).min(stream.len()));
        at += chunk.len();
        split.split(&chunk, hold, &mut pieces);
        follow.observe(&chunk);
        assert_eq!(
            split.boundary(),
            follow.boundary(),
            "split and observe disagree after {at} bytes"
        );
        take(&mut pieces, &mut written, &mut messages, &mut units, now);
    }
    split.release(&mut pieces);
    take(&mut pieces, &mut written, &mut messages, &mut units, now);
    assert!(
        written == stream,
        "the pieces are not the stream: {} bytes in, {} out",
        stream.len(),
        written.len()
    );
    assert!(messages.is_empty(), "frames still held after the release");
    let unit_bytes: usize = units.iter().map(Unit::wire_len).sum();
    assert_eq!(unit_bytes, stream.len(), "the units are not the stream");
    for unit in &units {
        if let Item::Message(message) = &unit.item {
            assert_message(message);
        }
    }
}

/// A text or binary frame, continuations, and FIN on the last only.
fn assert_message(message: &Message) {
    let (last, init) = message.frames.split_last().expect("a message has a frame");
    for (i, frame) in message.frames.iter().enumerate() {
        let opcode = frame.header.opcode;
        match i {
            0 => assert!(
                matches!(opcode, OpCode::Text | OpCode::Binary),
                "{opcode:?} first"
            ),
            _ => assert_eq!(opcode, OpCode::Continuation),
        }
    }
    assert!(last.header.fin, "a message ends without FIN");
    assert!(
        init.iter().all(|f| !f.header.fin),
        "FIN before the last frame"
    );
}

/// A held frame is exactly one frame: its header, then its payload.
fn assert_whole(frame: &Frame) {
    let (header, size) = parse_header(&frame.raw)
        .expect("a held frame has a valid header")
        .expect("a held frame has a whole header");
    assert_eq!(header, frame.header);
    assert_eq!(size as u64 + header.len, frame.raw.len() as u64);
}

/// Checks each piece and passes it on, as the layer does.
fn take(
    pieces: &mut Vec<Piece>,
    written: &mut Vec<u8>,
    messages: &mut Reassembler,
    units: &mut Vec<Unit>,
    now: Instant,
) {
    for piece in pieces.drain(..) {
        match &piece {
            Piece::Raw { bytes, .. } => written.extend_from_slice(bytes),
            Piece::Frame(frame) => {
                assert_whole(frame);
                written.extend_from_slice(&frame.raw);
            }
            Piece::Release => {}
        }
        messages.push(piece, now, units);
    }
}

/// Chunk lengths (1 to 64 bytes, now and then a large one) and hold flags from a
/// xorshift seeded by the input.
struct Cuts(u64);

impl Cuts {
    fn next(&mut self) -> (usize, bool) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let len = match self.0 % 8 {
            0 => 4096,
            _ => 1 + (self.0 >> 8) as usize % 64,
        };
        (len, self.0 & 0x10 != 0)
    }
}
