//! WebSocket-aware faults: after the HTTP upgrade the shim follows RFC 6455 frames in each
//! direction and acts on whole **messages**, keeping the framing valid, so what is tested
//! is a peer's recovery (a lost, late, repeated or reordered message; a close with a
//! chosen code; a missing pong) rather than its parser's error path.
//!
//! Opt-in: a link has a WebSocket layer only when the run has a `ws_*` fault for its
//! direction. Until a fault holds messages the layer only follows the stream (no copy, no
//! allocation: the link's fast path stays), so it can act from the first message boundary
//! after a window opens.
//!
//! # Layout
//!
//! - `frame`: one frame: header, masking, decoding and encoding.
//! - `head`: where the HTTP upgrade ends, and whether it succeeded.
//! - `split`: following the stream frame by frame; cutting chunks where frames end.
//! - `message`: whole messages from held frames: the [`Unit`]s stages act on.
//! - `layer`: one direction's layer: passive following, or units out and back to chunks,
//!   with injected frames placed where they fit.
//! - `inject`: how `ws_close` and `ws_oversize` reach a layer.
//! - one file per fault: `drop`, `delay`, `duplicate`, `reorder`, `pong`, `invalid_utf8`
//!   (message stages, [`MessageStage`]); `close`, `oversize` (injected frames).
//!
//! # Promises
//!
//! - Client → server frames the shim writes or rewrites are masked with a fresh key from
//!   the connection's seeded RNG (§5.3); frames passed on unchanged keep their bytes.
//! - Control frames are never dropped or held back with a message unless a fault says
//!   so; they may pass a message held whole, as §5.4 allows.
//! - A held frame or message is at most `ShimConfig::max_held` (16 MiB by default, the
//!   largest message the peers accept in a run; see `split::MAX_HELD`); a larger one
//!   passes untouched. Bytes that break the framing end the following for good: the
//!   connection is then forwarded raw and the ledger records `gave_up`.
//! - Every random decision comes from the stage's RNG: the run seed, the fault, the
//!   window, the direction and the client's connection.

pub(crate) mod close;
pub(crate) mod delay;
pub(crate) mod drop;
pub(crate) mod duplicate;
pub(crate) mod frame;
pub(crate) mod head;
pub(crate) mod inject;
pub(crate) mod invalid_utf8;
pub(crate) mod layer;
pub(crate) mod message;
pub(crate) mod oversize;
pub(crate) mod pong;
pub(crate) mod reorder;
pub(crate) mod split;
#[cfg(test)]
mod tests;

use tokio::time::Instant;

pub(crate) use inject::{Inbox, Injection};
pub(crate) use layer::Layer;
pub(crate) use message::Unit;

use super::faults::Acted;
use crate::rng::Rng;

/// One WebSocket fault applied to one direction of one connection for one window.
pub(crate) trait MessageStage: Send {
    /// Takes a unit and pushes what leaves onto `out`: the unit (maybe later or
    /// altered), two, or none. Units a stage does not act on pass in order; a stage
    /// holding units back lets them go before a barrier (see `Unit::is_barrier`).
    fn push(&mut self, unit: Unit, out: &mut Vec<Unit>) -> Acted;

    /// When something held must go even if nothing else comes.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Lets go what is due by `now`.
    fn expire(&mut self, _now: Instant, _out: &mut Vec<Unit>) {}

    /// The stage goes away or the stream ends: everything held, in order.
    fn flush(&mut self, _out: &mut Vec<Unit>) {}
}

/// A windowed WebSocket fault's parameters; [`Spec::build`] makes one stage per link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Spec {
    Drop(drop::Spec),
    Delay(delay::Spec),
    Duplicate(duplicate::Spec),
    Reorder(reorder::Spec),
    Pong(pong::Spec),
    InvalidUtf8(invalid_utf8::Spec),
}

impl Spec {
    /// A fresh stage for one link, drawing from `rng`.
    pub fn build(&self, rng: Rng) -> Box<dyn MessageStage> {
        match self {
            Self::Drop(spec) => Box::new(drop::Loss::new(spec.clone(), rng)),
            Self::Delay(spec) => Box::new(delay::Delay::new(spec.clone(), rng)),
            Self::Duplicate(spec) => Box::new(duplicate::Duplicate::new(spec.clone(), rng)),
            Self::Reorder(spec) => Box::new(reorder::Reorder::new(spec.clone(), rng)),
            Self::Pong(spec) => Box::new(pong::Pong::new(spec.clone())),
            Self::InvalidUtf8(spec) => Box::new(invalid_utf8::InvalidUtf8::new(spec.clone(), rng)),
        }
    }

    /// The `action` of the fault's `FaultTouched` events.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Drop(_) => "dropped",
            Self::Delay(_) => "delayed",
            Self::Duplicate(_) => "duplicated",
            Self::Reorder(_) => "reordered",
            Self::Pong(spec) => spec.action(),
            Self::InvalidUtf8(_) => "utf8_broken",
        }
    }

    /// Whether acting breaks a session (see `StageSpec::breaks`): a message lost or
    /// swapped leaves a gap, a missing pong a heartbeat unanswered, bad UTF-8 a protocol
    /// error. A duplicate does not: a correct receiver drops it.
    ///
    /// Unlike a byte fault, whose first act breaks the stream for good, a single message
    /// may be lost harmlessly (an acknowledgement the next one covers), so every act of
    /// such a stage stamps the touch board again: a client's detection is timed from the
    /// most recent message the shim took from it.
    pub fn breaks(&self) -> bool {
        match self {
            Self::Drop(_) | Self::Reorder(_) | Self::InvalidUtf8(_) => true,
            Self::Pong(spec) => spec.breaks(),
            Self::Delay(_) | Self::Duplicate(_) => false,
        }
    }
}
