//! One squall.v1 frame: a 20-byte header, a body and a CRC-32C trailer, carried as one
//! WebSocket binary message. Encoding and decoding only; what the sequence numbers mean
//! lives in [`super::window`], the JSON bodies in [`super::control`].
//!
//! The CRC is there because WebSocket framing cannot see a middlebox (or a chaos shim)
//! flipping payload bits; every single-bit and every burst error up to 32 bits is caught.
//! It is checked before anything else, so corruption is always reported as
//! [`DecodeError::Crc`], whichever byte it hit.

use std::fmt;
use std::io;
use std::ops::BitOr;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::control::{AppError, CloseInfo, ControlError, Hello, Welcome};

/// Offered by the client in `Sec-WebSocket-Protocol`; a server that speaks squall.v1
/// selects it in its 101 response.
pub const SUBPROTOCOL: &str = "squall.v1";
/// The `version` byte of every frame.
pub const VERSION: u8 = 1;
/// version, type, flags, reserved, seq, ack.
pub const HEADER_LEN: usize = 20;
/// The CRC-32C of everything before it, big-endian.
pub const TRAILER_LEN: usize = 4;
/// A frame with an empty body.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + TRAILER_LEN;
/// Largest JSON body a control frame may carry. Bounds what a peer can make us parse;
/// real bodies are a few hundred bytes.
pub const MAX_CONTROL_BODY: usize = 64 * 1024;
/// The smallest read limit of either end: room for the largest control body, so HELLO,
/// WELCOME, CLOSE and ERROR always fit whatever size the application's messages are.
pub const MIN_READ_LIMIT: usize = MAX_CONTROL_BODY;

/// The largest WebSocket message (and frame) an endpoint must accept when the largest
/// application payload it can be sent is `payload` bytes: the payload plus squall's
/// envelope (which also covers the echo framing's 16-byte prefix), never below
/// [`MIN_READ_LIMIT`]. Anything larger is refused before it is buffered, so one hostile
/// peer cannot make a process hold more than this per connection.
pub fn read_limit(payload: u64) -> usize {
    let payload = usize::try_from(payload).unwrap_or(usize::MAX);
    payload
        .max(MIN_READ_LIMIT)
        .saturating_add(HEADER_LEN + TRAILER_LEN)
}

/// The `type` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    Hello = 1,
    Welcome = 2,
    Data = 3,
    Ack = 4,
    Close = 5,
    Error = 6,
}

impl FrameType {
    pub fn from_u8(byte: u8) -> Option<FrameType> {
        Some(match byte {
            1 => FrameType::Hello,
            2 => FrameType::Welcome,
            3 => FrameType::Data,
            4 => FrameType::Ack,
            5 => FrameType::Close,
            6 => FrameType::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FrameType::Hello => "HELLO",
            FrameType::Welcome => "WELCOME",
            FrameType::Data => "DATA",
            FrameType::Ack => "ACK",
            FrameType::Close => "CLOSE",
            FrameType::Error => "ERROR",
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `flags` byte of a DATA frame (other frames carry 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// This DATA was sent before, on this or an earlier connection. Informational: the
    /// receiver deduplicates by seq alone.
    pub const RETRANSMIT: Flags = Flags(0b01);
    /// The payload is UTF-8 meant as text (delivered as a text message).
    pub const TEXT: Flags = Flags(0b10);
    /// Every bit v1 defines; the others must be 0.
    const DEFINED: u8 = 0b11;

    pub fn new(retransmit: bool, text: bool) -> Flags {
        let mut flags = Flags::NONE;
        if retransmit {
            flags = flags | Flags::RETRANSMIT;
        }
        if text {
            flags = flags | Flags::TEXT;
        }
        flags
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// A decoded frame. Every frame carries `ack`, the sender's cumulative acknowledgement of
/// the peer's DATA (for HELLO and WELCOME it is the body's `ack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    Data {
        seq: u64,
        ack: u64,
        retransmit: bool,
        text: bool,
        payload: Bytes,
    },
    Ack {
        ack: u64,
    },
    Close {
        ack: u64,
        info: CloseInfo,
    },
    Error {
        ack: u64,
        error: AppError,
    },
}

impl Frame {
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::Welcome(_) => FrameType::Welcome,
            Frame::Data { .. } => FrameType::Data,
            Frame::Ack { .. } => FrameType::Ack,
            Frame::Close { .. } => FrameType::Close,
            Frame::Error { .. } => FrameType::Error,
        }
    }

    /// The piggy-backed cumulative ack.
    pub fn ack(&self) -> u64 {
        match self {
            Frame::Hello(h) => h.ack,
            Frame::Welcome(w) => w.ack,
            Frame::Data { ack, .. }
            | Frame::Ack { ack }
            | Frame::Close { ack, .. }
            | Frame::Error { ack, .. } => *ack,
        }
    }
}

/// Why a binary message is not a valid frame. Only [`DecodeError::Crc`] means the bytes
/// were damaged in transit; the rest mean the peer wrote something v1 does not allow.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("frame of {len} bytes is shorter than the {MIN_FRAME_LEN}-byte minimum")]
    TooShort { len: usize },
    #[error("CRC-32C mismatch: trailer says {expected:#010x}, content gives {actual:#010x}")]
    Crc { expected: u32, actual: u32 },
    #[error("unsupported protocol version {0} (expected {VERSION})")]
    Version(u8),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("reserved bits set in byte {offset}: {value:#04x}")]
    Reserved { offset: usize, value: u8 },
    #[error("DATA frame with sequence number 0")]
    SeqZero,
    #[error("{frame_type} frame with nonzero sequence number {seq}")]
    UnexpectedSeq { frame_type: FrameType, seq: u64 },
    #[error("ACK frame with a {len}-byte body (must be empty)")]
    UnexpectedBody { len: usize },
    #[error("{frame_type} body of {len} bytes exceeds {MAX_CONTROL_BODY}")]
    BodyTooLarge { frame_type: FrameType, len: usize },
    #[error("{frame_type} body is not the expected JSON: {source}")]
    Json {
        frame_type: FrameType,
        #[source]
        source: serde_json::Error,
    },
    #[error("{frame_type} body: {source}")]
    Control {
        frame_type: FrameType,
        #[source]
        source: ControlError,
    },
    #[error("{frame_type} header ack {header} differs from body ack {body}")]
    AckMismatch {
        frame_type: FrameType,
        header: u64,
        body: u64,
    },
    #[error("DATA frame flagged TEXT carries invalid UTF-8")]
    InvalidText,
}

impl DecodeError {
    /// True when the bytes were damaged in transit (count it as corruption detected).
    pub fn is_corruption(&self) -> bool {
        matches!(self, DecodeError::Crc { .. })
    }
}

/// Encodes a DATA frame straight from a borrowed payload: one allocation, the hot path.
pub fn encode_data(seq: u64, ack: u64, flags: Flags, payload: &[u8]) -> Bytes {
    debug_assert!(seq > 0, "DATA seq starts at 1");
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    put_header(&mut buf, FrameType::Data, flags, seq, ack);
    buf.extend_from_slice(payload);
    seal(buf)
}

/// Encodes any frame, in one allocation of the exact size.
///
/// Nothing here enforces [`MAX_CONTROL_BODY`]: keep CLOSE reasons and ERROR messages
/// short, or the peer will refuse the frame.
pub fn encode(frame: &Frame) -> Bytes {
    match frame {
        Frame::Data {
            seq,
            ack,
            retransmit,
            text,
            payload,
        } => encode_data(*seq, *ack, Flags::new(*retransmit, *text), payload),
        Frame::Ack { ack } => {
            let mut buf = Vec::with_capacity(MIN_FRAME_LEN);
            put_header(&mut buf, FrameType::Ack, Flags::NONE, 0, *ack);
            seal(buf)
        }
        Frame::Hello(hello) => encode_control(FrameType::Hello, hello.ack, hello),
        Frame::Welcome(welcome) => encode_control(FrameType::Welcome, welcome.ack, welcome),
        Frame::Close { ack, info } => encode_control(FrameType::Close, *ack, info),
        Frame::Error { ack, error } => encode_control(FrameType::Error, *ack, error),
    }
}

fn encode_control<B: Serialize>(frame_type: FrameType, ack: u64, body: &B) -> Bytes {
    // Serializing twice (once to measure) costs less than a second allocation, and
    // control frames are a few hundred bytes at most.
    let mut counter = Counter(0);
    // Plain structs with string keys: serialization cannot fail.
    serde_json::to_writer(&mut counter, body).expect("control bodies always serialize");
    let mut buf = Vec::with_capacity(HEADER_LEN + counter.0 + TRAILER_LEN);
    put_header(&mut buf, frame_type, Flags::NONE, 0, ack);
    serde_json::to_writer(&mut buf, body).expect("control bodies always serialize");
    seal(buf)
}

/// A writer that only counts bytes.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn put_header(buf: &mut Vec<u8>, frame_type: FrameType, flags: Flags, seq: u64, ack: u64) {
    buf.extend_from_slice(&[VERSION, frame_type as u8, flags.bits(), 0]);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
}

/// Appends the CRC trailer. The buffer was sized for it, so `Bytes::from` takes it over
/// without another allocation.
fn seal(mut buf: Vec<u8>) -> Bytes {
    debug_assert!(
        buf.len() + TRAILER_LEN <= buf.capacity(),
        "sized for the trailer"
    );
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(buf)
}

/// Decodes one binary WebSocket message. A DATA payload is a zero-copy slice of `frame`;
/// only control bodies are parsed (and allocate).
pub fn decode(frame: &Bytes) -> Result<Frame, DecodeError> {
    let len = frame.len();
    if len < MIN_FRAME_LEN {
        return Err(DecodeError::TooShort { len });
    }
    let body_end = len - TRAILER_LEN;
    let expected = u32::from_be_bytes(array(&frame[body_end..]));
    let actual = crc32c::crc32c(&frame[..body_end]);
    if expected != actual {
        return Err(DecodeError::Crc { expected, actual });
    }

    if frame[0] != VERSION {
        return Err(DecodeError::Version(frame[0]));
    }
    let frame_type = FrameType::from_u8(frame[1]).ok_or(DecodeError::UnknownType(frame[1]))?;
    let flags = frame[2];
    let defined = if frame_type == FrameType::Data {
        Flags::DEFINED
    } else {
        0
    };
    if flags & !defined != 0 {
        return Err(DecodeError::Reserved {
            offset: 2,
            value: flags,
        });
    }
    if frame[3] != 0 {
        return Err(DecodeError::Reserved {
            offset: 3,
            value: frame[3],
        });
    }
    let seq = u64::from_be_bytes(array(&frame[4..12]));
    let ack = u64::from_be_bytes(array(&frame[12..20]));
    let body = &frame[HEADER_LEN..body_end];

    if frame_type == FrameType::Data {
        if seq == 0 {
            return Err(DecodeError::SeqZero);
        }
        let flags = Flags(flags);
        let text = flags.contains(Flags::TEXT);
        // Checked here so a text payload can be handed on as a string without a second
        // look, and so a lying TEXT flag is the sender's fault, not the application's.
        if text && std::str::from_utf8(body).is_err() {
            return Err(DecodeError::InvalidText);
        }
        return Ok(Frame::Data {
            seq,
            ack,
            retransmit: flags.contains(Flags::RETRANSMIT),
            text,
            payload: frame.slice(HEADER_LEN..body_end),
        });
    }
    if seq != 0 {
        return Err(DecodeError::UnexpectedSeq { frame_type, seq });
    }
    match frame_type {
        FrameType::Ack if !body.is_empty() => Err(DecodeError::UnexpectedBody { len: body.len() }),
        FrameType::Ack => Ok(Frame::Ack { ack }),
        FrameType::Hello => {
            let hello: Hello = json(frame_type, body)?;
            checked(frame_type, ack, hello.ack, hello.validate())?;
            Ok(Frame::Hello(hello))
        }
        FrameType::Welcome => {
            let welcome: Welcome = json(frame_type, body)?;
            checked(frame_type, ack, welcome.ack, welcome.validate())?;
            Ok(Frame::Welcome(welcome))
        }
        FrameType::Close => Ok(Frame::Close {
            ack,
            info: json(frame_type, body)?,
        }),
        FrameType::Error => Ok(Frame::Error {
            ack,
            error: json(frame_type, body)?,
        }),
        FrameType::Data => unreachable!("handled above"),
    }
}

fn json<T: DeserializeOwned>(frame_type: FrameType, body: &[u8]) -> Result<T, DecodeError> {
    if body.len() > MAX_CONTROL_BODY {
        return Err(DecodeError::BodyTooLarge {
            frame_type,
            len: body.len(),
        });
    }
    serde_json::from_slice(body).map_err(|source| DecodeError::Json { frame_type, source })
}

/// HELLO and WELCOME say their ack twice (header and body); a disagreement means a
/// broken encoder, and trusting either copy could release unacknowledged messages.
fn checked(
    frame_type: FrameType,
    header: u64,
    body: u64,
    valid: Result<(), ControlError>,
) -> Result<(), DecodeError> {
    valid.map_err(|source| DecodeError::Control { frame_type, source })?;
    if header != body {
        return Err(DecodeError::AckMismatch {
            frame_type,
            header,
            body,
        });
    }
    Ok(())
}

/// A fixed-size copy of a slice whose length the caller has already checked.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}
