//! `ws_delay`: hold each whole data message back by `latency` ± `jitter` (drawn as the
//! byte-level `latency` draws it, with its `distribution`), counted from the arrival of
//! the message's last frame. Order is kept: the link never writes a unit before an
//! earlier one, so what follows a delayed message (a ping too) waits for it, as on a slow
//! route. Control frames get no delay of their own.

use std::time::Duration;

use super::MessageStage;
use super::message::Unit;
use crate::rng::Rng;
use crate::scenario::Distribution;
use crate::shim::faults::{Acted, latency};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub latency: Duration,
    pub jitter: Duration,
    pub distribution: Distribution,
}

/// The ws_delay stage of one link for one window.
pub(crate) struct Delay {
    draw: latency::Latency,
}

impl Delay {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        let spec = latency::Spec {
            latency: spec.latency,
            jitter: spec.jitter,
            distribution: spec.distribution,
        };
        Self {
            draw: latency::Latency::new(spec, rng),
        }
    }
}

impl MessageStage for Delay {
    fn push(&mut self, mut unit: Unit, out: &mut Vec<Unit>) -> Acted {
        if !unit.is_message() {
            out.push(unit);
            return None;
        }
        unit.due += self.draw.sample();
        let n = unit.wire_len();
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
    use crate::shim::ws::tests::util::{self, WsProbe, text};
    use tokio::time::Instant;

    #[test]
    fn only_messages_are_delayed() {
        let spec = Spec {
            latency: Duration::from_millis(100),
            jitter: Duration::ZERO,
            distribution: Distribution::Uniform,
        };
        let mut s = Delay::new(spec, rng::rng(1, "test", 0));
        for u in util::units(20) {
            let mut out = Vec::new();
            let acted = s.push(u.clone(), &mut out);
            let late = out[0].due - u.due;
            match u.is_message() {
                true => assert_eq!(
                    (late, acted),
                    (Duration::from_millis(100), Some(u.wire_len()))
                ),
                false => assert_eq!((late, acted), (Duration::ZERO, None)),
            }
        }
    }

    #[tokio::test]
    async fn messages_come_late_and_in_order() {
        let mut f = fault(
            NetworkFaultKind::WsDelay {
                latency: Duration::from_millis(200),
                jitter: Duration::from_millis(50),
                distribution: Distribution::Uniform,
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        let t0 = Instant::now();
        for i in 0..5 {
            ws.send(text(&format!("m{i}"))).await;
        }
        for i in 0..5 {
            assert_eq!(ws.next().await, WsProbe::Text(format!("m{i}")));
            if i == 0 {
                let first = t0.elapsed();
                assert!(first >= Duration::from_millis(150), "{first:?}");
                assert!(first < Duration::from_millis(1500), "{first:?}");
            }
        }
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["delayed"], 1);
    }
}
