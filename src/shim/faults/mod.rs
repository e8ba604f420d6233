//! The seam every network fault plugs into: how a scenario fault becomes something the
//! shim can apply.
//!
//! A fault takes one of two shapes:
//!
//! - a **stage** ([`Stage`]): while its window is open it sits in one direction of each
//!   chosen connection and transforms the chunks that pass. A stage only computes a
//!   schedule: it may move the instant a chunk is due (latency, bandwidth, slicer), split
//!   it, drop, alter or repeat it, hold back the end of the stream (slow_close,
//!   blackhole), or end the connection after what it let through (limit_data). The link
//!   owns the sockets and the timers, so every stage is a plain synchronous value,
//!   testable without sockets or clocks.
//! - an **action** ([`Action`]): something done to chosen connections at a moment (reset,
//!   close), fired by the timeline.
//!
//! - a **connect-phase** fault ([`Connect`]): while its window is open it acts on chosen
//!   connections between accept and the upstream dial (`accept_stall`, `accept_reset`,
//!   `dial_delay`; see `conn`).
//!
//! `partition` is both: the blackhole stage on the connections it covers, and a refusal of
//! new ones at accept (see `partition`).
//!
//! WebSocket faults (`ws_*`, in `shim::ws`) take the same two shapes one level up: a
//! **message stage** ([`crate::shim::ws::MessageStage`]) transforms whole messages while
//! its window is open; `ws_close` and `ws_oversize` are actions that write a frame.
//!
//! Every random decision of a stage comes from the RNG it is built with
//! ([`Plan::link_rng`]): one per fault, window, direction and connection.
//!
//! Adding a kind: a file here (or in `ws/`), a variant of [`StageSpec`], `ws::Spec` or
//! [`Action`], one arm in [`Plan::new`].

pub(crate) mod accept_reset;
pub(crate) mod accept_stall;
pub(crate) mod bandwidth;
pub(crate) mod blackhole;
pub(crate) mod close;
pub(crate) mod connect;
pub(crate) mod corrupt;
pub(crate) mod dial_delay;
pub(crate) mod drop;
pub(crate) mod duplicate;
pub(crate) mod latency;
pub(crate) mod limit_data;
pub(crate) mod nat_timeout;
pub(crate) mod partition;
pub(crate) mod reset;
pub(crate) mod slicer;
pub(crate) mod slow_close;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::select::{self, Key};
use super::{Shared, ShimError, ledger, ws};
use crate::rng::{self, Rng};
use crate::scenario::{Direction, NetworkFault, NetworkFaultKind, PongAction};

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

impl Chunk {
    /// A chunk read at `at`, due at once.
    pub fn new(data: Bytes, at: Instant) -> Self {
        Self {
            data,
            arrival: at,
            due: at,
        }
    }
}

/// What a stage did to one chunk, for the ledger: `Some(bytes)` when it acted on the
/// chunk (delayed, dropped, corrupted, … that many bytes), `None` when it let the chunk
/// through as it came.
pub(crate) type Acted = Option<usize>;

/// One fault applied to one direction of one connection for one window.
pub(crate) trait Stage: Send {
    /// Takes a chunk that reached this stage and pushes what leaves it onto `out`: the
    /// chunk itself (maybe later or altered), several pieces, or nothing.
    fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) -> Acted;

    /// The source ended at `at` (after every chunk pushed so far): when the end of the
    /// stream (the FIN) may pass on, or `None` to hold it for as long as this stage is in
    /// place. Asked again whenever the link's stages change, so it must give the same
    /// answer for the same `at`. An answer other than `Some(at)` counts as acting.
    fn finish(&mut self, at: Instant) -> Option<Instant> {
        Some(at)
    }

    /// True once the stage has ended the connection: when everything it let through is
    /// written, the shim closes both sides with a FIN. It must pass nothing after that.
    fn closes(&self) -> bool {
        false
    }

    /// True once the stage has ended the connection with a reset: the shim aborts both
    /// sides with an RST at once, whatever is still queued.
    fn resets(&self) -> bool {
        false
    }

    /// The most bytes the link may hold waiting while this stage is in place; beyond it
    /// the link stops reading and TCP backpressure reaches the sender. `None`: the link's
    /// own bound.
    fn queue_limit(&self) -> Option<usize> {
        None
    }

    /// When the stage wants [`Stage::closes`] and [`Stage::resets`] asked again even if no chunk comes (a
    /// blackhole that closes after a while); `None`: only when chunks come. Must not
    /// return an instant already passed (the link would wake at once, again and again).
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// When the stage's acts began, if earlier than the act itself: a NAT mapping found
    /// expired at a chunk died at its last activity plus the timeout. The touch board is
    /// stamped with it, so detection is timed from when the link really broke.
    fn acted_since(&self) -> Option<Instant> {
        None
    }

    /// True when the stage must stay in place after its window closes, until the
    /// connection ends (a forgotten NAT mapping is not remembered again).
    fn outlives_window(&self) -> bool {
        false
    }
}

/// A windowed fault's parameters; [`StageSpec::build`] makes one [`Stage`] per link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StageSpec {
    Latency(latency::Spec),
    Bandwidth(bandwidth::Spec),
    Slicer(slicer::Spec),
    Drop(drop::Spec),
    Corrupt(corrupt::Spec),
    Duplicate(duplicate::Spec),
    /// `blackhole`, and `partition` on the connections open during its window.
    Blackhole(blackhole::Spec),
    LimitData(limit_data::Spec),
    SlowClose(slow_close::Spec),
    NatTimeout(nat_timeout::Spec),
}

impl StageSpec {
    /// A fresh stage for the link of direction `dir`, drawing from `rng`; `mapping` gives
    /// the link's NAT mapping for this window, shared with its other direction.
    pub fn build(
        &self,
        rng: Rng,
        dir: Direction,
        mapping: impl FnOnce() -> std::sync::Arc<nat_timeout::Mapping>,
    ) -> Box<dyn Stage> {
        match self {
            Self::Latency(spec) => Box::new(latency::Latency::new(spec.clone(), rng)),
            Self::Bandwidth(spec) => Box::new(bandwidth::Bandwidth::new(spec, dir)),
            Self::Slicer(spec) => Box::new(slicer::Slicer::new(spec, rng)),
            Self::Drop(spec) => Box::new(drop::Loss::new(spec, rng)),
            Self::Corrupt(spec) => Box::new(corrupt::Corrupt::new(spec, rng)),
            Self::Duplicate(spec) => Box::new(duplicate::Duplicate::new(spec, rng)),
            Self::Blackhole(spec) => Box::new(blackhole::Blackhole::new(spec)),
            Self::LimitData(spec) => Box::new(limit_data::LimitData::new(spec)),
            Self::SlowClose(spec) => Box::new(slow_close::SlowClose::new(spec)),
            Self::NatTimeout(spec) => Box::new(nat_timeout::NatTimeout::new(spec, mapping())),
        }
    }

    /// The `action` of the fault's `FaultTouched` events.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Latency(_) => "delayed",
            Self::Bandwidth(_) => "throttled",
            Self::Slicer(_) => "sliced",
            Self::Drop(_) => "dropped",
            Self::Corrupt(_) => "corrupted",
            Self::Duplicate(_) => "duplicated",
            Self::Blackhole(_) => "blackholed",
            Self::LimitData(_) => "limited",
            Self::SlowClose(_) => "close_delayed",
            Self::NatTimeout(_) => "forgotten",
        }
    }

    /// Whether acting can break the connection (the client's protocol sees an error, a
    /// loss or an end), rather than only slow it: such a fault's first act on a client
    /// marks the touch board, so the client can time its detection from it.
    pub fn breaks(&self) -> bool {
        match self {
            Self::Drop(_)
            | Self::Corrupt(_)
            | Self::Duplicate(_)
            | Self::Blackhole(_)
            | Self::LimitData(_)
            | Self::NatTimeout(_) => true,
            Self::Latency(_) | Self::Bandwidth(_) | Self::Slicer(_) | Self::SlowClose(_) => false,
        }
    }
}

/// An instantaneous fault: done to the chosen connections at each firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Reset,
    Close,
    /// `ws_close`: a Close frame, then close.
    WsClose,
    /// `ws_oversize`: one frame over the peer's limit.
    WsOversize,
}

impl Action {
    /// Fires once (firing number `firing` of fault `plan`) on the connections open now:
    /// picks them (see `select::pick`), spreads the hits over `stagger` in random order,
    /// and records a `FaultTouched` for each connection hit.
    pub async fn fire(self, shared: &Shared, plan: usize, firing: u32, token: &CancellationToken) {
        let p = &shared.plans[plan];
        let chosen = select::pick(
            &p.fault.connections,
            p.seed,
            firing,
            shared.registry.snapshot(),
        );
        let (start, n, stagger) = (Instant::now(), chosen.len(), p.fault.window.stagger);
        for (i, c) in chosen.into_iter().enumerate() {
            if !stagger.is_zero() {
                let at = start + stagger.mul_f64(i as f64 / n as f64);
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            let hit = match self {
                Self::Reset => reset::hit(shared, c.conn, p.fault.direction),
                Self::Close => close::hit(shared, c.conn, p.fault.direction),
                Self::WsClose | Self::WsOversize => ws::inject::hit(shared, plan, c.conn, firing),
            };
            if !hit {
                continue; // it closed on its own in the meantime
            }
            let client = match c.key {
                Key::Client(i) => Some(i),
                Key::Conn(_) => None,
            };
            ledger::instant(shared, plan, c.conn, client, self.action());
        }
    }

    /// The `action` of the fault's `FaultTouched` events.
    pub fn action(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Close => "closed",
            Self::WsClose => "close_sent",
            Self::WsOversize => "oversize_sent",
        }
    }
}

/// A connect-phase fault: what happens to a chosen new connection before its upstream
/// side is dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connect {
    /// Hold it, unread and undialed (see `accept_stall`).
    Stall,
    /// Reset it at once (see `accept_reset`).
    Reset,
    /// Dial this much later (see `dial_delay`).
    DialDelay(std::time::Duration),
}

impl Connect {
    /// The `action` of the fault's `FaultTouched` events.
    pub fn action(self) -> &'static str {
        match self {
            Self::Stall => "stalled",
            Self::Reset => "reset",
            Self::DialDelay(_) => "dial_delayed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    Stage(StageSpec),
    /// A WebSocket message stage.
    Messages(ws::Spec),
    Action(Action),
    Connect(Connect),
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
    /// Checks that the shim can apply `fault`. The scenario validator already refuses
    /// what is checked here; the shim checks again because it may be configured by other
    /// means (the standalone proxy).
    pub fn new(fault: &NetworkFault, run_seed: u64) -> Result<Plan, ShimError> {
        let invalid = |reason: &str| ShimError::Invalid {
            name: fault.name.clone(),
            reason: reason.to_string(),
        };
        if fault.window.every.is_some_and(|e| e.is_zero()) {
            return Err(invalid("`every` must be > 0"));
        }
        let probability = |p: f64, what: &str| match (0.0..=1.0).contains(&p) {
            true => Ok(p),
            false => Err(invalid(&format!("`{what}` must be from 0 to 1 (got {p})"))),
        };
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
            NetworkFaultKind::Bandwidth {
                bytes_per_second,
                shared,
            } => {
                if *bytes_per_second == 0 {
                    return Err(invalid("`rate` must be at least 1B/s"));
                }
                Effect::Stage(StageSpec::Bandwidth(bandwidth::Spec::new(
                    *bytes_per_second,
                    *shared,
                )))
            }
            NetworkFaultKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                if *average_size == 0 || size_variation >= average_size {
                    return Err(invalid(
                        "`average_size` must be > 0 and `size_variation` less than it",
                    ));
                }
                Effect::Stage(StageSpec::Slicer(slicer::Spec {
                    average_size: *average_size,
                    size_variation: *size_variation,
                    delay: *delay,
                }))
            }
            NetworkFaultKind::Drop {
                probability: p,
                unit,
                correlation,
            } => Effect::Stage(StageSpec::Drop(drop::Spec {
                probability: probability(*p, "probability")?,
                unit: *unit,
                correlation: probability(*correlation, "correlation")?,
            })),
            NetworkFaultKind::Corrupt { probability: p } => {
                Effect::Stage(StageSpec::Corrupt(corrupt::Spec {
                    probability: probability(*p, "probability")?,
                }))
            }
            NetworkFaultKind::Duplicate { probability: p } => {
                Effect::Stage(StageSpec::Duplicate(duplicate::Spec {
                    probability: probability(*p, "probability")?,
                }))
            }
            NetworkFaultKind::Blackhole {
                close_after,
                reset_after,
            } => {
                if close_after.is_some() && reset_after.is_some() {
                    return Err(invalid(
                        "`close_after` and `reset_after` exclude each other",
                    ));
                }
                Effect::Stage(StageSpec::Blackhole(blackhole::Spec {
                    end_after: close_after.or(*reset_after),
                    reset: reset_after.is_some(),
                }))
            }
            NetworkFaultKind::Partition => Effect::Stage(StageSpec::Blackhole(blackhole::Spec {
                end_after: None,
                reset: false,
            })),
            NetworkFaultKind::LimitData { bytes } => {
                if *bytes == 0 {
                    return Err(invalid("`bytes` must be > 0"));
                }
                Effect::Stage(StageSpec::LimitData(limit_data::Spec { bytes: *bytes }))
            }
            NetworkFaultKind::SlowClose { delay } => {
                Effect::Stage(StageSpec::SlowClose(slow_close::Spec { delay: *delay }))
            }
            NetworkFaultKind::Reset => Effect::Action(Action::Reset),
            NetworkFaultKind::Close => Effect::Action(Action::Close),
            NetworkFaultKind::AcceptStall => Effect::Connect(Connect::Stall),
            NetworkFaultKind::AcceptReset => Effect::Connect(Connect::Reset),
            NetworkFaultKind::DialDelay { delay } => Effect::Connect(Connect::DialDelay(*delay)),
            NetworkFaultKind::NatTimeout { idle } => {
                if idle.is_zero() {
                    return Err(invalid("`idle` must be > 0"));
                }
                if fault.direction != Direction::Both {
                    return Err(invalid("`nat_timeout` acts on both directions at once"));
                }
                Effect::Stage(StageSpec::NatTimeout(nat_timeout::Spec { idle: *idle }))
            }
            NetworkFaultKind::WsDrop {
                probability: p,
                controls,
            } => Effect::Messages(ws::Spec::Drop(ws::drop::Spec {
                probability: probability(*p, "probability")?,
                controls: *controls,
            })),
            NetworkFaultKind::WsDelay {
                latency,
                jitter,
                distribution,
            } => Effect::Messages(ws::Spec::Delay(ws::delay::Spec {
                latency: *latency,
                jitter: *jitter,
                distribution: *distribution,
            })),
            NetworkFaultKind::WsDuplicate { probability: p } => {
                Effect::Messages(ws::Spec::Duplicate(ws::duplicate::Spec {
                    probability: probability(*p, "probability")?,
                }))
            }
            NetworkFaultKind::WsReorder { probability: p } => {
                Effect::Messages(ws::Spec::Reorder(ws::reorder::Spec {
                    probability: probability(*p, "probability")?,
                }))
            }
            NetworkFaultKind::WsPong { action } => {
                Effect::Messages(ws::Spec::Pong(ws::pong::Spec {
                    delay: match action {
                        PongAction::Delay(d) => Some(*d),
                        PongAction::Swallow => None,
                    },
                }))
            }
            NetworkFaultKind::WsInvalidUtf8 { probability: p } => {
                Effect::Messages(ws::Spec::InvalidUtf8(ws::invalid_utf8::Spec {
                    probability: probability(*p, "probability")?,
                }))
            }
            NetworkFaultKind::WsClose { code, reason } => {
                if reason.len() > 123 {
                    return Err(invalid(
                        "`reason` must fit a close frame: at most 123 bytes",
                    ));
                }
                if !crate::scenario::is_sendable_close_code(u64::from(*code)) {
                    return Err(invalid(&format!(
                        "`code` {code} cannot be sent in a close frame"
                    )));
                }
                Effect::Action(Action::WsClose)
            }
            NetworkFaultKind::WsOversize { bytes } => {
                if *bytes == 0 {
                    return Err(invalid("`bytes` must be > 0"));
                }
                Effect::Action(Action::WsOversize)
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

    /// Whether the fault also turns new connections away during its window.
    pub fn refuses_new(&self) -> bool {
        matches!(self.fault.kind, NetworkFaultKind::Partition)
    }

    /// The RNG of this fault on one link for one window: independent per fault, window,
    /// direction and connection, so connections never share a stream. A connection is
    /// known by its client and how many connections that client made before (`ordinal`),
    /// not by accept order, so a client's n-th connection draws the same decisions in
    /// every run with the seed however the clients' connects interleave.
    pub fn link_rng(&self, window: u32, dir: Direction, key: Key, ordinal: u32) -> Rng {
        let per_window = rng::derive(self.seed, "window", u64::from(window));
        let down = dir == Direction::Downstream;
        let (component, id) = match key {
            Key::Client(i) => (
                if down { "down.client" } else { "up.client" },
                (u64::from(i) << 32) | u64::from(ordinal),
            ),
            Key::Conn(c) => (if down { "down.conn" } else { "up.conn" }, c),
        };
        rng::rng(per_window, component, id)
    }

    pub fn kind(&self) -> &'static str {
        self.fault.kind.name()
    }

    /// A `ws_*` fault: links in its direction follow WebSocket frames.
    pub fn is_websocket(&self) -> bool {
        self.fault.kind.is_websocket()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::DropUnit;
    use crate::shim::test_util::fault;
    use std::time::Duration;

    #[test]
    fn every_kind_is_built() {
        let kinds = [
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 1024,
                shared: true,
            },
            NetworkFaultKind::Slicer {
                average_size: 8,
                size_variation: 2,
                delay: Duration::ZERO,
            },
            NetworkFaultKind::Drop {
                probability: 0.1,
                unit: DropUnit::Byte,
                correlation: 0.5,
            },
            NetworkFaultKind::Corrupt { probability: 0.1 },
            NetworkFaultKind::Duplicate { probability: 0.1 },
            NetworkFaultKind::Blackhole {
                close_after: None,
                reset_after: Some(Duration::from_secs(1)),
            },
            NetworkFaultKind::Reset,
            NetworkFaultKind::Close,
            NetworkFaultKind::LimitData { bytes: 10 },
            NetworkFaultKind::SlowClose {
                delay: Duration::from_secs(1),
            },
            NetworkFaultKind::Partition,
            NetworkFaultKind::AcceptStall,
            NetworkFaultKind::AcceptReset,
            NetworkFaultKind::DialDelay {
                delay: Duration::from_secs(1),
            },
            NetworkFaultKind::NatTimeout {
                idle: Duration::from_secs(30),
            },
            NetworkFaultKind::WsDrop {
                probability: 0.5,
                controls: true,
            },
            NetworkFaultKind::WsDelay {
                latency: Duration::from_millis(5),
                jitter: Duration::ZERO,
                distribution: crate::scenario::Distribution::Normal,
            },
            NetworkFaultKind::WsDuplicate { probability: 0.1 },
            NetworkFaultKind::WsReorder { probability: 0.1 },
            NetworkFaultKind::WsClose {
                code: 4000,
                reason: "bye".into(),
            },
            NetworkFaultKind::WsPong {
                action: PongAction::Swallow,
            },
            NetworkFaultKind::WsInvalidUtf8 { probability: 1.0 },
            NetworkFaultKind::WsOversize { bytes: 1 << 20 },
        ];
        for kind in kinds {
            let name = kind.name();
            let plan = Plan::new(&fault(kind, Duration::ZERO, None), 1);
            assert!(plan.is_ok(), "{name}: {plan:?}");
        }
    }

    #[test]
    fn out_of_range_parameters_are_refused() {
        let bad = [
            NetworkFaultKind::Drop {
                probability: 1.5,
                unit: DropUnit::Chunk,
                correlation: 0.0,
            },
            NetworkFaultKind::Corrupt { probability: -0.1 },
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 0,
                shared: false,
            },
            NetworkFaultKind::Slicer {
                average_size: 4,
                size_variation: 4,
                delay: Duration::ZERO,
            },
            NetworkFaultKind::LimitData { bytes: 0 },
            NetworkFaultKind::WsReorder { probability: 2.0 },
            NetworkFaultKind::WsClose {
                code: 1006,
                reason: String::new(),
            },
            NetworkFaultKind::WsOversize { bytes: 0 },
            NetworkFaultKind::NatTimeout {
                idle: Duration::ZERO,
            },
        ];
        for kind in bad {
            let f = fault(kind, Duration::ZERO, None);
            assert!(
                matches!(Plan::new(&f, 1), Err(ShimError::Invalid { .. })),
                "{f:?}"
            );
        }
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
        let draw = |w, d, k, o| plan.link_rng(w, d, k, o).random::<u64>();
        let (up, c1) = (Direction::Upstream, Key::Client(1));
        let a = draw(0, up, c1, 0);
        assert_eq!(a, draw(0, up, c1, 0));
        assert_ne!(a, draw(0, up, Key::Client(2), 0));
        assert_ne!(a, draw(0, up, c1, 1), "a reconnection draws afresh");
        assert_ne!(a, draw(0, up, Key::Conn(1), 0));
        assert_ne!(a, draw(0, Direction::Downstream, c1, 0));
        assert_ne!(a, draw(1, up, c1, 0));
    }
}
