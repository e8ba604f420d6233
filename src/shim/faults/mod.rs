//! The seam every network fault plugs into: how a scenario fault becomes something the
//! shim can apply.
//!
//! A fault takes one of two shapes:
//!
//! - a **stage** ([`Stage`]): while its window is open it sits in one direction of each
//!   chosen connection and transforms the chunks that pass. A stage only computes a
//!   schedule: it may move the instant a chunk is due (latency, bandwidth), split it
//!   (slicer), drop, alter or repeat it, and hold back the end of the stream (slow_close).
//!   The link owns the sockets and the timers, so every stage is a plain synchronous value,
//!   testable without sockets or clocks.
//! - an **action** ([`Action`]): something done to chosen connections at a moment (reset,
//!   later close), fired by the timeline.
//!
//! Adding a kind: a file here, a variant of [`StageSpec`] or [`Action`], one arm in
//! [`Plan::new`]. A kind without a file is refused at construction with
//! [`ShimError::Unsupported`]: a scenario never runs with a fault silently missing.

pub(crate) mod latency;
pub(crate) mod reset;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Shared, ShimError};
use crate::rng::{self, Rng};
use crate::scenario::{Direction, NetworkFault, NetworkFaultKind};

/// A piece of one direction's byte stream, as read from its source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub data: Bytes,
    /// When the shim read it.
    pub arrival: Instant,
    /// When it may be written on; starts at `arrival`, stages push it later. The link
    /// never writes a chunk before an earlier one, whatever the stages say.
    pub due: Instant,
}

/// One fault applied to one direction of one connection for one window.
pub(crate) trait Stage: Send {
    /// Takes a chunk that reached this stage and pushes what leaves it onto `out`: the
    /// chunk itself (maybe later or altered), several pieces, or nothing.
    fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>);

    /// The source ended at `at` (after every chunk pushed so far): when the end of the
    /// stream may pass on. Most stages let it through at once.
    fn finish(&mut self, at: Instant) -> Instant {
        at
    }
}

/// A windowed fault's parameters; [`StageSpec::build`] makes one [`Stage`] per link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StageSpec {
    Latency(latency::Spec),
}

impl StageSpec {
    /// A fresh stage for one link, drawing from `rng`.
    pub fn build(&self, rng: Rng) -> Box<dyn Stage> {
        match self {
            Self::Latency(spec) => Box::new(latency::Latency::new(spec.clone(), rng)),
        }
    }

    /// The `action` of the fault's `FaultTouched` events.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Latency(_) => "delayed",
        }
    }
}

/// An instantaneous fault: done to the chosen connections at each firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Reset,
}

impl Action {
    /// Fires once (firing number `firing` of fault `plan`) on the connections open now.
    pub async fn fire(self, shared: &Shared, plan: usize, firing: u32, token: &CancellationToken) {
        match self {
            Self::Reset => reset::fire(shared, plan, firing, token).await,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    Stage(StageSpec),
    Action(Action),
}

/// A scenario fault checked for the shim, with the seed all its decisions derive from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub fault: NetworkFault,
    pub effect: Effect,
    /// Derived from the run seed and the fault id: no two faults share a stream.
    pub seed: u64,
}

impl Plan {
    /// Checks that the shim can apply `fault`.
    pub fn new(fault: &NetworkFault, run_seed: u64) -> Result<Plan, ShimError> {
        if fault.window.every.is_some_and(|e| e.is_zero()) {
            return Err(ShimError::Invalid {
                name: fault.name.clone(),
                reason: "`every` must be > 0".into(),
            });
        }
        let effect = match &fault.kind {
            NetworkFaultKind::Latency {
                latency,
                jitter,
                distribution,
            } => Effect::Stage(StageSpec::Latency(latency::Spec {
                latency: *latency,
                jitter: *jitter,
                distribution: *distribution,
            })),
            NetworkFaultKind::Reset => Effect::Action(Action::Reset),
            other => {
                return Err(ShimError::Unsupported {
                    kind: other.name().to_string(),
                });
            }
        };
        // Seeded by the fault's (unique) name, not its position, so leaving a fault out
        // (`--duration` cuts the ones past the end) does not change the others' decisions.
        let seed = rng::derive(run_seed, &format!("shim.fault:{}", fault.name), 0);
        Ok(Plan {
            fault: fault.clone(),
            effect,
            seed,
        })
    }

    /// Whether the fault acts on the direction `dir` (upstream or downstream) of a link.
    pub fn applies_to(&self, dir: Direction) -> bool {
        self.fault.direction == Direction::Both || self.fault.direction == dir
    }

    /// The RNG of this fault on one link for one window: independent per fault,
    /// connection, direction and window, so connections never share jitter sequences.
    pub fn link_rng(&self, window: u32, dir: Direction, conn: u64) -> Rng {
        let per_window = rng::derive(self.seed, "window", u64::from(window));
        let component = match dir {
            Direction::Downstream => "down",
            _ => "up",
        };
        rng::rng(per_window, component, conn)
    }

    pub fn kind(&self) -> &'static str {
        self.fault.kind.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::test_util::fault;
    use std::time::Duration;

    #[test]
    fn kinds_not_yet_built_are_refused_by_name() {
        let f = fault(
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 1024,
            },
            Duration::ZERO,
            None,
        );
        match Plan::new(&f, 1) {
            Err(ShimError::Unsupported { kind }) => assert_eq!(kind, "bandwidth"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
        assert!(Plan::new(&fault(NetworkFaultKind::Reset, Duration::ZERO, None), 1).is_ok());
    }

    #[test]
    fn zero_period_is_refused() {
        let mut f = fault(NetworkFaultKind::Reset, Duration::ZERO, None);
        f.window.every = Some(Duration::ZERO);
        assert!(matches!(Plan::new(&f, 1), Err(ShimError::Invalid { .. })));
    }

    #[test]
    fn link_rngs_differ_by_connection_direction_and_window() {
        use rand::RngExt;
        let plan = Plan::new(&fault(NetworkFaultKind::Reset, Duration::ZERO, None), 9).unwrap();
        let draw = |w, d, c| plan.link_rng(w, d, c).random::<u64>();
        let a = draw(0, Direction::Upstream, 1);
        assert_eq!(a, draw(0, Direction::Upstream, 1));
        assert_ne!(a, draw(0, Direction::Upstream, 2));
        assert_ne!(a, draw(0, Direction::Downstream, 1));
        assert_ne!(a, draw(1, Direction::Upstream, 1));
    }
}
