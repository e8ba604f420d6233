//! Echo mode: against a plain echo server that knows nothing of squall's protocol, each
//! message carries its sequence number in a small prefix, so echoes can be matched to
//! messages and deduplicated (at-least-once out, exactly-once observed).

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

use crate::scenario::MessageKind;

/// Hex digits of the sequence prefix of a text message.
const TEXT_PREFIX: usize = 16;
/// Bytes of the sequence prefix of a binary message.
const BINARY_PREFIX: usize = 8;

/// Frames `payload` with its sequence number: 16 hex digits before a text payload, 8
/// big-endian bytes before a binary one.
pub fn encode(seq: u64, payload: &[u8], kind: MessageKind) -> Message {
    match kind {
        MessageKind::Text => {
            let mut s = String::with_capacity(TEXT_PREFIX + payload.len());
            s.push_str(&format!("{seq:016x}"));
            s.push_str(&String::from_utf8_lossy(payload));
            Message::text(s)
        }
        MessageKind::Binary => {
            let mut v = Vec::with_capacity(BINARY_PREFIX + payload.len());
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(payload);
            Message::binary(Bytes::from(v))
        }
    }
}

/// Reads the sequence number back from an echo; `None` if it is not one of ours.
pub fn decode_seq(msg: &Message) -> Option<u64> {
    match msg {
        Message::Text(t) => {
            let head = t.as_str().get(..TEXT_PREFIX)?;
            u64::from_str_radix(head, 16).ok()
        }
        Message::Binary(b) => Some(u64::from_be_bytes(b.get(..BINARY_PREFIX)?.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_both_kinds() {
        for kind in [MessageKind::Text, MessageKind::Binary] {
            let m = encode(0xdead_beef, b"payload", kind);
            assert_eq!(decode_seq(&m), Some(0xdead_beef));
        }
        assert_eq!(decode_seq(&Message::text("short")), None);
        assert_eq!(decode_seq(&Message::text("zzzzzzzzzzzzzzzzzz")), None);
        assert_eq!(decode_seq(&Message::binary(vec![1u8, 2])), None);
    }
}
