//! RFC 6455 frames (§5.2): the header, masking (§5.3), decoding a frame from bytes and
//! encoding one.
//!
//! Decoding never trusts a length: a header is at most [`MAX_HEADER`] bytes, and a
//! payload's length is only compared with limits, never allocated for, so bytes from
//! anywhere give a header, "need more", or an error — never a panic or an allocation
//! sized by the peer. Lengths are accepted in any of the three encodings,
//! minimal or not (a forwarded frame keeps its own bytes); encoding always uses the
//! shortest.

use bytes::{BufMut, Bytes, BytesMut};

/// The longest header: 2 bytes, an 8-byte length, a 4-byte masking key.
pub(crate) const MAX_HEADER: usize = 14;
/// Largest payload of a control frame (§5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: u64 = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<Self, FrameError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(FrameError::ReservedOpcode(other)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes, allowed between the
    /// fragments of a message.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub fin: bool,
    /// RSV1–3 as the low three bits (an extension's: permessage-deflate sets RSV1).
    pub rsv: u8,
    pub opcode: OpCode,
    /// The masking key; every client-to-server frame has one (§5.3).
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
}

impl Header {
    /// The size of this header encoded with the shortest length.
    pub fn size(&self) -> usize {
        let ext = match self.len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// Bytes that are not a frame a peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("a control frame that is fragmented or over 125 bytes")]
    BadControl,
    #[error("a 64-bit payload length with its most significant bit set")]
    LengthOverflow,
    /// Only [`parse`] checks a limit; the shim holds frames by its `max_held`.
    #[cfg(test)]
    #[error("a payload of {len} bytes, over the limit of {max}")]
    TooLarge { len: u64, max: u64 },
}

/// How many bytes the header takes, from its second byte: 2 to 14.
pub(crate) fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if second & 0x80 != 0 { 4 } else { 0 }
}

/// Decodes the header at the start of `buf`: `None` until all of it is there, else the
/// header and how many bytes it took.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    let size = header_len(second);
    if buf.len() < size {
        return Ok(None);
    }
    let opcode = OpCode::from_bits(first & 0x0F)?;
    let fin = first & 0x80 != 0;
    let (len, at) = match second & 0x7F {
        126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(be);
            if len >> 63 != 0 {
                return Err(FrameError::LengthOverflow);
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    let mask = (second & 0x80 != 0).then(|| [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    if opcode.is_control() && (!fin || len > MAX_CONTROL_PAYLOAD) {
        return Err(FrameError::BadControl);
    }
    let header = Header {
        fin,
        rsv: (first >> 4) & 0x07,
        opcode,
        mask,
        len,
    };
    Ok(Some((header, size)))
}

/// One whole frame, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub header: Header,
    /// The frame's bytes: the header, then the payload (masked when the header says so).
    pub raw: Bytes,
}

impl Frame {
    /// A frame of `payload`, masked with `mask` if given.
    pub fn new(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Self {
        let header = Header {
            fin,
            rsv: rsv & 0x07,
            opcode,
            mask,
            len: payload.len() as u64,
        };
        let mut buf = BytesMut::with_capacity(header.size() + payload.len());
        put_header(&header, &mut buf);
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut buf[start..], key, 0);
        }
        Self {
            header,
            raw: buf.freeze(),
        }
    }

    /// The payload, unmasked.
    pub fn payload(&self) -> Bytes {
        let body = self.raw.slice(self.raw.len() - self.header.len as usize..);
        match self.header.mask {
            None => body,
            Some(key) => {
                let mut plain = body.to_vec();
                apply_mask(&mut plain, key, 0);
                Bytes::from(plain)
            }
        }
    }

    /// The same frame with another payload, masked with `mask` (a fresh key when the
    /// original was masked; §5.3 wants one per frame).
    pub fn with_payload(&self, payload: &[u8], mask: Option<[u8; 4]>) -> Self {
        let h = &self.header;
        Self::new(h.fin, h.rsv, h.opcode, payload, mask)
    }

    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        self.raw.len()
    }
}

/// What [`parse`] found at the start of a buffer.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Not a whole frame yet.
    NeedMore,
    /// A frame, and how many bytes it took.
    Frame(Frame, usize),
}

/// Decodes the frame at the start of `buf`, refusing a payload over `max_payload`. The
/// shim itself follows frames piece by piece (`split`); tests check what it writes with
/// this whole-frame decoder.
#[cfg(test)]
pub(crate) fn parse(buf: &Bytes, max_payload: u64) -> Result<Parsed, FrameError> {
    let Some((header, size)) = parse_header(buf)? else {
        return Ok(Parsed::NeedMore);
    };
    if header.len > max_payload {
        return Err(FrameError::TooLarge {
            len: header.len,
            max: max_payload,
        });
    }
    // Fits a usize: it is at most `max_payload`, which the caller holds in memory.
    let total = size + header.len as usize;
    if buf.len() < total {
        return Ok(Parsed::NeedMore);
    }
    let raw = buf.slice(..total);
    Ok(Parsed::Frame(Frame { header, raw }, total))
}

/// Writes `header` with the shortest length encoding.
pub(crate) fn put_header(header: &Header, out: &mut BytesMut) {
    let first = (u8::from(header.fin) << 7) | ((header.rsv & 0x07) << 4) | header.opcode.bits();
    let masked = if header.mask.is_some() { 0x80 } else { 0 };
    out.put_u8(first);
    match header.len {
        len @ 0..=125 => out.put_u8(masked | len as u8),
        len @ 126..=0xFFFF => {
            out.put_u8(masked | 126);
            out.put_u16(len as u16);
        }
        len => {
            out.put_u8(masked | 127);
            out.put_u64(len);
        }
    }
    if let Some(key) = header.mask {
        out.put_slice(&key);
    }
}

/// XORs `data` with `key` (§5.3), as if `data` started `offset` bytes into a payload.
/// Masking and unmasking are the same operation.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// The payload of a Close frame: the code, big-endian, then the reason (§5.5.1).
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(mut buf: Bytes) -> Result<Vec<Frame>, FrameError> {
        let mut frames = Vec::new();
        while !buf.is_empty() {
            match parse(&buf, u64::MAX)? {
                Parsed::Frame(f, used) => {
                    frames.push(f);
                    let _ = buf.split_to(used);
                }
                Parsed::NeedMore => panic!("a truncated stream: {} bytes left", buf.len()),
            }
        }
        Ok(frames)
    }

    #[test]
    fn every_length_encoding_round_trips_masked_and_not() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x10000, 70_000] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let f = Frame::new(true, 0, OpCode::Binary, &payload, mask);
                let want = match len {
                    0..=125 => 2,
                    126..=0xFFFF => 4,
                    _ => 10,
                } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(f.raw.len(), want + len, "len {len}");
                let back = parse_all(f.raw.clone()).unwrap();
                assert_eq!(back, vec![f.clone()]);
                assert_eq!(back[0].payload(), payload, "len {len} mask {mask:?}");
            }
        }
    }

    #[test]
    fn masking_matches_the_rfc_example() {
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let Parsed::Frame(f, 11) = parse(&Bytes::copy_from_slice(&wire), 125).unwrap() else {
            panic!("one frame");
        };
        assert_eq!(f.header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(&f.payload()[..], b"Hello");
        let again = Frame::new(true, 0, OpCode::Text, b"Hello", f.header.mask);
        assert_eq!(&again.raw[..], &wire);
        // Unmasked, as a server sends it.
        let server = Frame::new(true, 0, OpCode::Text, b"Hello", None);
        assert_eq!(&server.raw[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn a_frame_arrives_byte_by_byte() {
        let f = Frame::new(false, 1, OpCode::Text, &[7; 300], Some([9, 8, 7, 6]));
        for cut in 0..f.raw.len() {
            assert_eq!(parse(&f.raw.slice(..cut), u64::MAX), Ok(Parsed::NeedMore));
        }
        assert_eq!(
            parse(&f.raw, u64::MAX),
            Ok(Parsed::Frame(f.clone(), f.raw.len()))
        );
        assert_eq!(f.header.rsv, 1);
        assert!(!f.header.fin);
    }

    #[test]
    fn non_minimal_lengths_are_read_and_kept() {
        // A 5-byte payload declared with a 16-bit length.
        let wire = Bytes::from_static(&[0x82, 126, 0, 5, 1, 2, 3, 4, 5]);
        let Parsed::Frame(f, 9) = parse(&wire, 100).unwrap() else {
            panic!()
        };
        assert_eq!((f.header.len, &f.payload()[..]), (5, &[1, 2, 3, 4, 5][..]));
        assert_eq!(f.raw, wire, "forwarded as it came");
    }

    #[test]
    fn bad_frames_are_refused() {
        let bad = |bytes: &[u8], max| parse(&Bytes::copy_from_slice(bytes), max).unwrap_err();
        assert_eq!(bad(&[0x83, 0], 10), FrameError::ReservedOpcode(3));
        assert_eq!(bad(&[0x8F, 0], 10), FrameError::ReservedOpcode(0xF));
        assert_eq!(
            bad(&[0x09, 0], 10),
            FrameError::BadControl,
            "fragmented ping"
        );
        assert_eq!(bad(&[0x89, 126, 0, 126], 1000), FrameError::BadControl);
        assert_eq!(
            bad(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], u64::MAX),
            FrameError::LengthOverflow
        );
        assert_eq!(
            bad(&[0x82, 127, 0, 0, 0, 0, 2, 0, 0, 0], 16 << 20),
            FrameError::TooLarge {
                len: 32 << 20,
                max: 16 << 20
            },
            "refused from the header, before any payload"
        );
    }

    #[test]
    fn close_payload_is_code_then_reason() {
        assert_eq!(close_payload(1012, "restart"), b"\x03\xf4restart");
    }

    fn opcode() -> impl Strategy<Value = OpCode> {
        prop_oneof![
            Just(OpCode::Continuation),
            Just(OpCode::Text),
            Just(OpCode::Binary),
            Just(OpCode::Close),
            Just(OpCode::Ping),
            Just(OpCode::Pong),
        ]
    }

    /// Payload lengths around every encoding's edges, and small ones most often.
    fn payload_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            6 => 0usize..140,
            1 => 0xFFF0usize..0x10010,
        ]
    }

    fn frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            0u8..8,
            opcode(),
            proptest::option::of(any::<[u8; 4]>()),
            payload_len(),
            any::<u8>(),
        )
            .prop_map(|(fin, rsv, opcode, mask, len, fill)| {
                let (fin, len) = match opcode.is_control() {
                    true => (true, len.min(125)),
                    false => (fin, len),
                };
                let payload: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                Frame::new(fin, rsv, opcode, &payload, mask)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn parse_of_encode_is_identity(frames in proptest::collection::vec(frame(), 0..6)) {
            let mut wire = BytesMut::new();
            for f in &frames {
                wire.put_slice(&f.raw);
            }
            let back = parse_all(wire.freeze()).unwrap();
            prop_assert_eq!(back.len(), frames.len());
            for (b, f) in back.iter().zip(&frames) {
                prop_assert_eq!(b.header, f.header);
                prop_assert_eq!(b.payload(), f.payload());
                prop_assert_eq!(&b.raw, &f.raw);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0u64..1024) {
            let buf = Bytes::from(bytes);
            match parse(&buf, max) {
                Ok(Parsed::Frame(f, used)) => {
                    prop_assert!(used <= buf.len());
                    prop_assert!(f.header.len <= max);
                    prop_assert_eq!(f.payload().len() as u64, f.header.len);
                }
                Ok(Parsed::NeedMore) | Err(_) => {}
            }
            let _ = parse_header(&buf);
        }
    }
}
