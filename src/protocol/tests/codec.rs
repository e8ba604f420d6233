//! The codec frame by frame: a round trip for each type, each decode error, and the
//! test vectors `docs/protocol.md` quotes.

use std::time::Duration;

use bytes::Bytes;

use crate::protocol::{
    AppError, CloseClass, CloseInfo, ControlError, DecodeError, Flags, Frame, FrameType,
    HEADER_LEN, Hello, MAX_CONTROL_BODY, SessionId, TRAILER_LEN, Welcome, decode, encode,
    encode_data,
};

/// A frame with the given header and body and a correct CRC, so decode gets past it.
fn raw(version: u8, ty: u8, flags: u8, reserved: u8, seq: u64, ack: u64, body: &[u8]) -> Bytes {
    let mut buf = vec![version, ty, flags, reserved];
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(body);
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn session() -> SessionId {
    SessionId::new("client-0007").unwrap()
}

fn every_frame_type() -> Vec<Frame> {
    vec![
        Frame::Hello(Hello {
            session: session(),
            resume: true,
            ack: 41,
            next_seq: 100,
        }),
        Frame::Welcome(Welcome {
            session: session(),
            resumed: true,
            ack: 99,
            next_seq: 42,
            window: Duration::from_secs(30),
            max_in_flight: Some(128),
        }),
        Frame::Data {
            seq: 7,
            ack: 3,
            retransmit: true,
            text: true,
            payload: Bytes::from_static("héllo".as_bytes()),
        },
        Frame::Data {
            seq: u64::MAX,
            ack: u64::MAX,
            retransmit: false,
            text: false,
            payload: Bytes::new(),
        },
        Frame::Ack { ack: 12 },
        Frame::Close {
            ack: 5,
            info: CloseInfo {
                code: 1013,
                class: CloseClass::Overload,
                retry_after: Some(Duration::from_millis(2500)),
                reason: "shedding \"load\"\n".into(),
            },
        },
        Frame::Error {
            ack: 0,
            error: AppError {
                code: 404,
                message: "no such topic".into(),
            },
        },
    ]
}

#[test]
fn round_trip_every_frame_type() {
    for frame in every_frame_type() {
        let bytes = encode(&frame);
        assert_eq!(bytes[0], 1, "version");
        assert_eq!(bytes[1], frame.frame_type() as u8);
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{frame:?}: {e}"));
        assert_eq!(back, frame);
        assert_eq!(back.ack(), frame.ack());
    }
}

#[test]
fn encode_data_is_the_data_frame() {
    let payload = b"abc";
    let fast = encode_data(9, 4, Flags::RETRANSMIT, payload);
    let slow = encode(&Frame::Data {
        seq: 9,
        ack: 4,
        retransmit: true,
        text: false,
        payload: Bytes::from_static(payload),
    });
    assert_eq!(fast, slow);
    assert_eq!(fast.len(), HEADER_LEN + payload.len() + TRAILER_LEN);
}

#[test]
fn data_payload_is_zero_copy() {
    let bytes = encode_data(1, 0, Flags::NONE, b"payload");
    let Frame::Data { payload, .. } = decode(&bytes).unwrap() else {
        panic!("not DATA")
    };
    assert_eq!(
        payload.as_ptr(),
        bytes[HEADER_LEN..].as_ptr(),
        "a slice of the frame"
    );
}

#[test]
fn flags() {
    assert_eq!(Flags::new(false, false), Flags::NONE);
    assert_eq!(Flags::new(true, true).bits(), 0b11);
    assert!(Flags::new(true, false).contains(Flags::RETRANSMIT));
    assert!(!Flags::new(true, false).contains(Flags::TEXT));
    let f = decode(&encode_data(1, 0, Flags::TEXT, b"t")).unwrap();
    assert!(matches!(
        f,
        Frame::Data {
            text: true,
            retransmit: false,
            ..
        }
    ));
}

#[test]
fn frame_type_bytes() {
    for b in 1..=6 {
        assert_eq!(FrameType::from_u8(b).unwrap() as u8, b);
    }
    assert_eq!(FrameType::from_u8(0), None);
    assert_eq!(FrameType::from_u8(7), None);
    assert_eq!(FrameType::Welcome.to_string(), "WELCOME");
}

/// The vector every CRC-32C implementation quotes; the spec points to it.
#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

/// The worked example in docs/protocol.md: DATA, seq 1, ack 0, TEXT, "hello".
#[test]
fn spec_data_example() {
    let bytes = encode_data(1, 0, Flags::TEXT, b"hello");
    assert_eq!(
        hex(&bytes),
        "01 03 02 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 68 65 6c 6c 6f 98 1a 3d 31"
    );
}

/// The ACK example in docs/protocol.md: ack 5.
#[test]
fn spec_ack_example() {
    let bytes = encode(&Frame::Ack { ack: 5 });
    assert_eq!(
        hex(&bytes),
        "01 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 05 51 42 6b e1"
    );
}

#[test]
fn decode_rejects_short_frames() {
    for len in [0, 1, 23] {
        let e = decode(&Bytes::from(vec![0u8; len])).unwrap_err();
        assert!(
            matches!(e, DecodeError::TooShort { len: l } if l == len),
            "{e}"
        );
    }
}

#[test]
fn decode_detects_crc_mismatch() {
    let mut bytes = encode_data(1, 0, Flags::NONE, b"payload").to_vec();
    bytes[22] ^= 0x10;
    let e = decode(&Bytes::from(bytes)).unwrap_err();
    assert!(matches!(e, DecodeError::Crc { .. }));
    assert!(e.is_corruption());
}

#[test]
fn decode_rejects_bad_headers() {
    let e = decode(&raw(2, 4, 0, 0, 0, 0, b"")).unwrap_err();
    assert!(matches!(e, DecodeError::Version(2)), "{e}");
    assert!(!e.is_corruption());
    for ty in [0, 7, 255] {
        let e = decode(&raw(1, ty, 0, 0, 0, 0, b"")).unwrap_err();
        assert!(matches!(e, DecodeError::UnknownType(t) if t == ty), "{e}");
    }
    // Undefined DATA flag bits; any flag on a non-DATA frame; the reserved byte.
    let e = decode(&raw(1, 3, 0b100, 0, 1, 0, b"")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Reserved {
                offset: 2,
                value: 4
            }
        ),
        "{e}"
    );
    let e = decode(&raw(1, 4, 0b01, 0, 0, 0, b"")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Reserved {
                offset: 2,
                value: 1
            }
        ),
        "{e}"
    );
    let e = decode(&raw(1, 3, 0, 0x80, 1, 0, b"")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Reserved {
                offset: 3,
                value: 0x80
            }
        ),
        "{e}"
    );
}

#[test]
fn decode_rejects_bad_sequence_fields() {
    let e = decode(&raw(1, 3, 0, 0, 0, 0, b"x")).unwrap_err();
    assert!(matches!(e, DecodeError::SeqZero), "{e}");
    let e = decode(&raw(1, 4, 0, 0, 9, 0, b"")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::UnexpectedSeq {
                frame_type: FrameType::Ack,
                seq: 9
            }
        ),
        "{e}"
    );
}

#[test]
fn decode_rejects_ack_with_body() {
    let e = decode(&raw(1, 4, 0, 0, 0, 0, b"{}")).unwrap_err();
    assert!(matches!(e, DecodeError::UnexpectedBody { len: 2 }), "{e}");
}

#[test]
fn decode_rejects_bad_control_bodies() {
    for (ty, body) in [
        (1, &b"not json"[..]),
        (2, b"{}"),
        (5, br#"{"code":1000,"class":"sideways"}"#),
        (6, br#"{"code":-1}"#),
        (
            1,
            br#"{"session":"has space","resume":false,"ack":0,"next_seq":1}"#,
        ),
        (1, b""),
    ] {
        let e = decode(&raw(1, ty, 0, 0, 0, 0, body)).unwrap_err();
        assert!(
            matches!(e, DecodeError::Json { .. }),
            "{}: {e}",
            String::from_utf8_lossy(body)
        );
    }
    let big = vec![b' '; MAX_CONTROL_BODY + 1];
    let e = decode(&raw(1, 5, 0, 0, 0, 0, &big)).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::BodyTooLarge {
                frame_type: FrameType::Close,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn decode_rejects_invalid_control_values() {
    let body = br#"{"session":"s","resume":false,"ack":0,"next_seq":0}"#;
    let e = decode(&raw(1, 1, 0, 0, 0, 0, body)).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::Control {
                source: ControlError::NextSeqZero,
                ..
            }
        ),
        "{e}"
    );
    let body = br#"{"session":"s","resumed":true,"ack":3,"next_seq":1,"window_ms":0}"#;
    let e = decode(&raw(1, 2, 0, 0, 0, 4, body)).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::AckMismatch {
                header: 4,
                body: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn decode_rejects_text_that_is_not_utf8() {
    let e = decode(&raw(1, 3, 0b10, 0, 1, 0, &[0xff, 0xfe])).unwrap_err();
    assert!(matches!(e, DecodeError::InvalidText), "{e}");
    // The same bytes as binary are fine.
    assert!(decode(&raw(1, 3, 0, 0, 1, 0, &[0xff, 0xfe])).is_ok());
}
