//! `ws_invalid_utf8`: turn text messages into invalid UTF-8, with `probability` (every
//! one by default), keeping the framing valid: one payload byte, at a random place in a
//! random non-empty frame of the message, becomes `0xFF`, which UTF-8 never uses. The
//! receiver must fail the connection (RFC 6455 §8.1, close code 1007).
//!
//! A rewritten client frame is masked again with a fresh key from the stage's RNG. An
//! empty text message gets a one-byte payload. Compressed messages (RSV1) are left
//! alone: their payload is not the text.

use rand::RngExt;

use super::MessageStage;
use super::frame::OpCode;
use super::message::{Item, Message, Unit};
use crate::rng::Rng;
use crate::shim::faults::Acted;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
}

/// The ws_invalid_utf8 stage of one link for one window.
pub(crate) struct InvalidUtf8 {
    probability: f64,
    rng: Rng,
}

impl InvalidUtf8 {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        Self {
            probability: spec.probability,
            rng,
        }
    }

    fn spoil(&mut self, message: &mut Message) {
        let non_empty: Vec<usize> = (0..message.frames.len())
            .filter(|&i| message.frames[i].header.len > 0)
            .collect();
        let (index, mut payload) = match non_empty.as_slice() {
            [] => (0, Vec::new()),
            some => {
                let i = some[self.rng.random_range(0..some.len())];
                (i, message.frames[i].payload().to_vec())
            }
        };
        match payload.is_empty() {
            true => payload.push(0xFF),
            false => {
                let at = self.rng.random_range(0..payload.len());
                payload[at] = 0xFF;
            }
        }
        let frame = &message.frames[index];
        let mask = frame.header.mask.map(|_| self.rng.random::<[u8; 4]>());
        message.frames[index] = frame.with_payload(&payload, mask);
    }
}

impl MessageStage for InvalidUtf8 {
    fn push(&mut self, mut unit: Unit, out: &mut Vec<Unit>) -> Acted {
        let text =
            matches!(&unit.item, Item::Message(m) if m.opcode() == OpCode::Text && !m.compressed());
        if !text || self.rng.random::<f64>() >= self.probability {
            out.push(unit);
            return None;
        }
        let n = unit.wire_len();
        if let Item::Message(m) = &mut unit.item {
            self.spoil(m);
        }
        out.push(unit);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::fault;
    use crate::shim::ws::frame::{Frame, Parsed, parse};
    use crate::shim::ws::tests::util::{self, WsProbe, text};
    use std::time::Duration;
    use tokio::time::Instant;

    fn payload(m: &Message) -> Vec<u8> {
        m.frames.iter().flat_map(|f| f.payload().to_vec()).collect()
    }

    fn spoiled(frames: Vec<Frame>, seed: u64) -> (Message, Message) {
        let original = Message { frames };
        let mut s = InvalidUtf8::new(Spec { probability: 1.0 }, rng::rng(seed, "test", 0));
        let mut out = Vec::new();
        let acted = s.push(
            Unit::new(Item::Message(original.clone()), Instant::now()),
            &mut out,
        );
        assert_eq!(acted, Some(original.wire_len()));
        let Item::Message(m) = out.remove(0).item else {
            panic!("a message")
        };
        (original, m)
    }

    #[test]
    fn one_byte_turns_ff_and_a_client_frame_is_masked_afresh() {
        let key = Some([1, 2, 3, 4]);
        let frames = vec![
            Frame::new(false, 0, OpCode::Text, b"hello ", key),
            Frame::new(false, 0, OpCode::Continuation, b"", key),
            Frame::new(true, 0, OpCode::Continuation, b"world", key),
        ];
        for seed in 0..20 {
            let (before, after) = spoiled(frames.clone(), seed);
            let (a, b) = (payload(&before), payload(&after));
            assert_eq!(a.len(), b.len());
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            assert_eq!(diff.len(), 1, "seed {seed}");
            assert_eq!(b[diff[0]], 0xFF);
            assert!(std::str::from_utf8(&b).is_err());
            let changed: Vec<&Frame> = after
                .frames
                .iter()
                .filter(|f| !before.frames.contains(f))
                .collect();
            assert_eq!(changed.len(), 1);
            let mask = changed[0].header.mask.expect("still masked");
            assert_ne!(Some(mask), key, "a fresh key");
            // It is a valid frame that decodes to the spoiled payload.
            let Ok(Parsed::Frame(back, _)) = parse(&changed[0].raw, 1 << 20) else {
                panic!("decodes")
            };
            assert_eq!(back, *changed[0]);
        }
    }

    #[test]
    fn empty_text_gets_a_bad_byte_and_binary_is_left_alone() {
        let (_, after) = spoiled(vec![Frame::new(true, 0, OpCode::Text, b"", None)], 1);
        assert_eq!(&payload(&after)[..], &[0xFF]);
        let mut s = InvalidUtf8::new(Spec { probability: 1.0 }, rng::rng(1, "test", 0));
        let binary = Message {
            frames: vec![Frame::new(true, 0, OpCode::Binary, b"hi", None)],
        };
        let mut out = Vec::new();
        let unit = Unit::new(Item::Message(binary), Instant::now());
        assert_eq!(s.push(unit.clone(), &mut out), None);
        assert_eq!(out, vec![unit]);
    }

    #[tokio::test]
    async fn tungstenite_reports_a_utf8_error() {
        let mut f = fault(
            NetworkFaultKind::WsInvalidUtf8 { probability: 1.0 },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Downstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        ws.send(text("héllo")).await;
        match ws.next().await {
            WsProbe::Failed(e) => assert!(e.starts_with("Utf8"), "{e}"),
            other => panic!("expected a UTF-8 error, got {other:?}"),
        }
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["utf8_broken"], 1);
    }
}
