//! `ws_drop`: discard whole data messages with `probability` — a text or binary message
//! with all its continuation frames, so the framing stays valid and the receiver sees a
//! message missing, not a broken stream. Control frames pass, unless `controls: true`
//! (then pings, pongs and closes are dropped with the same chance).
//!
//! One draw per unit the fault may act on, in stream order.

use rand::RngExt;

use super::MessageStage;
use super::message::{Item, Unit};
use crate::rng::Rng;
use crate::shim::faults::Acted;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
    /// Control frames may be dropped too.
    pub controls: bool,
}

/// The ws_drop stage of one link for one window.
pub(crate) struct Loss {
    spec: Spec,
    rng: Rng,
}

impl Loss {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        Self { spec, rng }
    }
}

impl MessageStage for Loss {
    fn push(&mut self, unit: Unit, out: &mut Vec<Unit>) -> Acted {
        let target = match &unit.item {
            Item::Message(_) => true,
            Item::Control(_) => self.spec.controls,
            Item::Raw { .. } => false,
        };
        if target && self.rng.random::<f64>() < self.spec.probability {
            return Some(unit.wire_len());
        }
        out.push(unit);
        None
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

    fn kept(p: f64, seed: u64, controls: bool) -> Vec<bool> {
        let mut s = Loss::new(
            Spec {
                probability: p,
                controls,
            },
            rng::rng(seed, "test", 0),
        );
        let units = util::units(40);
        units
            .into_iter()
            .map(|u| {
                let mut out = Vec::new();
                let acted = s.push(u.clone(), &mut out);
                assert_eq!(acted.is_some(), out.is_empty());
                !out.is_empty()
            })
            .collect()
    }

    #[test]
    fn messages_go_with_the_probability_and_controls_only_when_asked() {
        let units = util::units(40);
        let all = kept(1.0, 1, false);
        for (u, k) in units.iter().zip(&all) {
            assert_eq!(*k, !u.is_message(), "{u:?}");
        }
        let raw = |u: &Unit| matches!(u.item, Item::Raw { .. });
        let with_controls = kept(1.0, 1, true);
        for (u, k) in units.iter().zip(&with_controls) {
            assert_eq!(*k, raw(u), "raw bytes are never a fault's: {u:?}");
        }
        assert!(kept(0.0, 1, true).iter().all(|k| *k));
        assert_eq!(kept(0.5, 3, false), kept(0.5, 3, false), "seeded");
        assert_ne!(kept(0.5, 3, false), kept(0.5, 4, false));
    }

    #[tokio::test]
    async fn every_data_message_is_dropped_and_pings_still_pass() {
        let mut f = fault(
            NetworkFaultKind::WsDrop {
                probability: 1.0,
                controls: false,
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        ws.send(text("lost")).await;
        ws.send(text("lost too")).await;
        assert_eq!(ws.ping(b"alive").await, WsProbe::Pong(b"alive".to_vec()));
        assert_eq!(
            ws.next_for(Duration::from_millis(200)).await,
            WsProbe::Silent
        );
        let touched = h.board.last(0);
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["dropped"], 1);
        assert_eq!(ledger[0].bytes_affected, 2 * 6 + 4 + 8, "two masked frames");
        assert!(touched.is_some(), "a lost message breaks the session");
    }

    /// Which of 30 messages sent through `ws_drop` at 50% come back.
    async fn survivors(seed: u64) -> Vec<String> {
        let f = fault(
            NetworkFaultKind::WsDrop {
                probability: 0.5,
                controls: false,
            },
            Duration::ZERO,
            None,
        );
        let server = util::server().await;
        let (h, mut ws) = util::through_shim_seeded(vec![f], server.addr, seed).await;
        for i in 0..30 {
            ws.send(text(&format!("{i}"))).await;
        }
        ws.send(text("end")).await;
        let mut got = Vec::new();
        while let WsProbe::Text(t) = ws.next_for(Duration::from_millis(300)).await {
            got.push(t);
        }
        h.stop().await;
        got
    }

    #[tokio::test]
    async fn the_same_seed_drops_the_same_messages() {
        let (a, b) = tokio::join!(survivors(7), survivors(7));
        assert_eq!(a, b);
        assert!(a.len() > 2 && a.len() < 25, "{a:?}");
        let (c, d) = tokio::join!(survivors(8), survivors(9));
        assert!(c != a || d != a, "three seeds, one outcome: {a:?}");
    }

    #[tokio::test]
    async fn broken_framing_is_forwarded_raw_and_recorded() {
        use tokio::io::AsyncWriteExt;
        let mut f = fault(
            NetworkFaultKind::WsDrop {
                probability: 1.0,
                controls: false,
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let mut server = util::server().await;
        let h = crate::shim::test_util::Harness::start(vec![f], 1, server.addr, true).await;
        let mut raw = util::raw_upgrade(h.addr(), 0).await;
        // Reserved opcode 3, masked, two payload bytes: not a frame any peer may send.
        raw.write_all(&[0x83, 0x82, 1, 2, 3, 4, 5, 6])
            .await
            .unwrap();
        match util::next_seen(&mut server.seen).await {
            util::Seen::Failed(e) => assert!(e.starts_with("Protocol"), "{e}"),
            other => panic!("the server should read the bad frame, not {other:?}"),
        }
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["gave_up"], 1);
        assert!(!ledger[0].actions.contains_key("dropped"));
    }
}
