//! `ws_pong`: delay (`delay`) or swallow (`swallow: true`) Pong frames, downstream by
//! default: the server's answers to a client's heartbeat pings come late or never, so
//! the client's dead-peer detection is what gets tested. Everything else passes.
//!
//! A delayed pong keeps its place in the stream (what follows it waits too), as on a
//! route that stalls.

use std::time::Duration;

use super::MessageStage;
use super::frame::OpCode;
use super::message::{Item, Unit};
use crate::shim::faults::Acted;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    /// `None`: swallow.
    pub delay: Option<Duration>,
}

impl Spec {
    pub fn action(&self) -> &'static str {
        match self.delay {
            Some(_) => "pong_delayed",
            None => "pong_swallowed",
        }
    }

    /// A swallowed pong makes a heartbeat miss; a delayed one only slows it.
    pub fn breaks(&self) -> bool {
        self.delay.is_none()
    }
}

/// The ws_pong stage of one link for one window.
pub(crate) struct Pong {
    spec: Spec,
}

impl Pong {
    pub fn new(spec: Spec) -> Self {
        Self { spec }
    }
}

impl MessageStage for Pong {
    fn push(&mut self, mut unit: Unit, out: &mut Vec<Unit>) -> Acted {
        let pong = matches!(&unit.item, Item::Control(f) if f.header.opcode == OpCode::Pong);
        if !pong {
            out.push(unit);
            return None;
        }
        let n = unit.wire_len();
        if let Some(delay) = self.spec.delay {
            unit.due += delay;
            out.push(unit);
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{NetworkFaultKind, PongAction};
    use crate::shim::test_util::fault;
    use crate::shim::ws::tests::util::{self, WsProbe, text};
    use tokio::time::Instant;

    fn pong_fault(action: PongAction) -> crate::scenario::NetworkFault {
        let mut f = fault(NetworkFaultKind::WsPong { action }, Duration::ZERO, None);
        f.direction = crate::scenario::Direction::Downstream;
        f
    }

    #[tokio::test]
    async fn a_swallowed_pong_leaves_the_ping_unanswered_and_data_flows() {
        let (h, mut ws) = util::through_shim(vec![pong_fault(PongAction::Swallow)]).await;
        ws.send(tokio_tungstenite::tungstenite::Message::Ping(
            b"hb".to_vec().into(),
        ))
        .await;
        assert_eq!(
            ws.next_for(Duration::from_millis(300)).await,
            WsProbe::Silent
        );
        ws.send(text("still here")).await;
        assert_eq!(ws.next().await, WsProbe::Text("still here".into()));
        assert!(
            h.board.last(0).is_some(),
            "a missing pong breaks the heartbeat"
        );
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["pong_swallowed"], 1);
    }

    #[tokio::test]
    async fn a_delayed_pong_comes_late() {
        let delay = Duration::from_millis(250);
        let (h, mut ws) = util::through_shim(vec![pong_fault(PongAction::Delay(delay))]).await;
        let t0 = Instant::now();
        assert_eq!(ws.ping(b"hb").await, WsProbe::Pong(b"hb".to_vec()));
        let rtt = t0.elapsed();
        assert!(rtt >= delay && rtt < Duration::from_secs(2), "{rtt:?}");
        assert!(h.board.last(0).is_none(), "late is not broken");
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["pong_delayed"], 1);
    }
}
