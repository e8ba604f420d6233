//! `ws_reorder`: swap a data message with the next one, with `probability`.
//!
//! A message chosen is held until the next data message has passed, then follows it. It
//! is let go alone (merely late) when no message follows within [`HOLD`], before a close
//! frame or raw bytes (a close must be last; raw bytes may continue a frame), when the
//! window closes, and at the end of the stream. Control frames pass it, as they may.
//! One message is held at a time; the message that follows it is drawn afresh after.

use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::MessageStage;
use super::message::Unit;
use crate::rng::Rng;
use crate::shim::faults::Acted;

/// Longest a message waits for one to swap with.
pub(crate) const HOLD: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
}

/// The ws_reorder stage of one link for one window.
pub(crate) struct Reorder {
    probability: f64,
    rng: Rng,
    held: Option<Unit>,
}

impl Reorder {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        Self {
            probability: spec.probability,
            rng,
            held: None,
        }
    }
}

impl MessageStage for Reorder {
    fn push(&mut self, unit: Unit, out: &mut Vec<Unit>) -> Acted {
        if unit.is_barrier() {
            out.extend(self.held.take());
            out.push(unit);
            return None;
        }
        if !unit.is_message() {
            out.push(unit);
            return None;
        }
        if let Some(held) = self.held.take() {
            out.push(unit);
            out.push(held);
            return None;
        }
        if self.rng.random::<f64>() < self.probability {
            let n = unit.wire_len();
            self.held = Some(unit);
            return Some(n);
        }
        out.push(unit);
        None
    }

    fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|u| u.arrival + HOLD)
    }

    fn expire(&mut self, now: Instant, out: &mut Vec<Unit>) {
        if self.deadline().is_some_and(|d| d <= now) {
            out.extend(self.held.take());
        }
    }

    fn flush(&mut self, out: &mut Vec<Unit>) {
        out.extend(self.held.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::fault;
    use crate::shim::ws::message::Item;
    use crate::shim::ws::tests::util::{self, WsProbe, close_unit, text, text_unit};

    fn payloads(units: &[Unit]) -> Vec<String> {
        units
            .iter()
            .map(|u| match &u.item {
                Item::Message(m) => String::from_utf8_lossy(&m.frames[0].payload()).into(),
                Item::Control(f) => format!("{:?}", f.header.opcode),
                Item::Raw { .. } => "raw".into(),
            })
            .collect()
    }

    #[test]
    fn each_chosen_message_follows_the_next() {
        let mut s = Reorder::new(Spec { probability: 1.0 }, rng::rng(1, "test", 0));
        let t0 = Instant::now();
        let mut out = Vec::new();
        for m in ["1", "2", "3", "4", "5"] {
            s.push(text_unit(m, t0), &mut out);
        }
        assert_eq!(payloads(&out), ["2", "1", "4", "3"]);
        assert_eq!(s.deadline(), Some(t0 + HOLD));
        s.push(close_unit(t0), &mut out);
        assert_eq!(payloads(&out)[4..], ["5", "Close"], "a close goes last");
        out.clear();
        s.push(text_unit("6", t0), &mut out);
        s.expire(t0 + HOLD / 2, &mut out);
        assert!(out.is_empty(), "still waiting");
        s.expire(t0 + HOLD, &mut out);
        assert_eq!(payloads(&out), ["6"], "alone once the wait is over");
    }

    #[tokio::test]
    async fn the_server_reads_pairs_swapped() {
        let mut f = fault(
            NetworkFaultKind::WsReorder { probability: 1.0 },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        for m in ["1", "2", "3", "4", "5"] {
            ws.send(text(m)).await;
        }
        for want in ["2", "1", "4", "3"] {
            assert_eq!(ws.next().await, WsProbe::Text(want.into()));
        }
        // The fifth waits for a partner, then goes alone.
        assert_eq!(ws.next_for(HOLD / 2).await, WsProbe::Silent);
        assert_eq!(ws.next().await, WsProbe::Text("5".into()));
        assert!(h.board.last(0).is_some());
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["reordered"], 1);
    }

    #[tokio::test]
    async fn a_held_message_goes_when_the_window_closes() {
        let mut f = fault(
            NetworkFaultKind::WsReorder { probability: 1.0 },
            Duration::ZERO,
            Some(Duration::from_millis(300)),
        );
        f.direction = Direction::Upstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        let t0 = Instant::now();
        ws.send(text("alone")).await;
        assert_eq!(ws.next().await, WsProbe::Text("alone".into()));
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < HOLD,
            "{waited:?}"
        );
        ws.send(text("after")).await;
        assert_eq!(
            ws.next().await,
            WsProbe::Text("after".into()),
            "the window is over"
        );
        h.stop().await;
    }
}
