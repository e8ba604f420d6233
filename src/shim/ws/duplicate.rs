//! `ws_duplicate`: send a whole data message twice, back to back, with `probability`.
//! The copy shares the message's bytes. Unlike a repeated TCP chunk (byte-level
//! `duplicate`), the framing stays valid: the receiver gets the same message twice, which
//! a receiver that deduplicates (squall.v1 does, by sequence number) drops.

use rand::RngExt;

use super::MessageStage;
use super::message::Unit;
use crate::rng::Rng;
use crate::shim::faults::Acted;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
}

/// The ws_duplicate stage of one link for one window.
pub(crate) struct Duplicate {
    probability: f64,
    rng: Rng,
}

impl Duplicate {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        Self {
            probability: spec.probability,
            rng,
        }
    }
}

impl MessageStage for Duplicate {
    fn push(&mut self, unit: Unit, out: &mut Vec<Unit>) -> Acted {
        let twice = unit.is_message() && self.rng.random::<f64>() < self.probability;
        let n = unit.wire_len();
        if twice {
            out.push(unit.clone());
        }
        out.push(unit);
        twice.then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::fault;
    use crate::shim::ws::tests::util::{self, WsProbe, text};
    use std::time::Duration;

    #[test]
    fn messages_come_twice_controls_once() {
        let mut s = Duplicate::new(Spec { probability: 1.0 }, rng::rng(1, "test", 0));
        for u in util::units(20) {
            let mut out = Vec::new();
            s.push(u.clone(), &mut out);
            let copies = if u.is_message() { 2 } else { 1 };
            assert_eq!(out, vec![u; copies]);
        }
    }

    #[tokio::test]
    async fn the_other_side_reads_each_message_twice() {
        let mut f = fault(
            NetworkFaultKind::WsDuplicate { probability: 1.0 },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Downstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        ws.send(text("a")).await;
        ws.send(text("b")).await;
        for want in ["a", "a", "b", "b"] {
            assert_eq!(ws.next().await, WsProbe::Text(want.into()));
        }
        assert_eq!(
            ws.ping(b"p").await,
            WsProbe::Pong(b"p".to_vec()),
            "a pong once"
        );
        assert_eq!(
            ws.next_for(Duration::from_millis(100)).await,
            WsProbe::Silent
        );
        assert!(
            h.board.last(0).is_none(),
            "a duplicate does not break a session"
        );
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["duplicated"], 1);
        assert_eq!(ledger[0].bytes_affected, 6, "two 3-byte server frames");
    }

    #[tokio::test]
    async fn a_fragmented_message_with_a_ping_inside_is_repeated_whole() {
        use crate::shim::ws::frame::{Frame, OpCode};
        use tokio::io::AsyncWriteExt;
        let mut f = fault(
            NetworkFaultKind::WsDuplicate { probability: 1.0 },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let mut server = util::server().await;
        let h = crate::shim::test_util::Harness::start(vec![f], 1, server.addr, true).await;
        let mut raw = util::raw_upgrade(h.addr(), 0).await;
        let mask = Some([9, 8, 7, 6]);
        let frames = [
            Frame::new(false, 0, OpCode::Text, b"hel", mask),
            Frame::new(true, 0, OpCode::Ping, b"!", mask),
            Frame::new(false, 0, OpCode::Continuation, b"", mask),
            Frame::new(true, 0, OpCode::Continuation, b"lo", mask),
        ];
        // Byte by byte, so every frame is cut everywhere it can be.
        for byte in frames.iter().flat_map(|f| f.raw.to_vec()) {
            raw.write_all(&[byte]).await.unwrap();
        }
        // The ping passes the message held whole; the message comes twice.
        let hello = || util::Seen::Data(text("hello"));
        for want in [util::Seen::Ping, hello(), hello()] {
            assert_eq!(util::next_seen(&mut server.seen).await, want);
        }
        h.stop().await;
    }
}
