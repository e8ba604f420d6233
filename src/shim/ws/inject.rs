//! Frames the shim writes itself (`ws_close`, `ws_oversize`): handed from the fault's
//! firing to each chosen direction's WebSocket layer, which puts them where the stream
//! can take them.
//!
//! A firing builds one [`Injection`] per direction of the connection, with the masking
//! key (upstream, client → server frames are masked, §5.3) drawn from an RNG of the run
//! seed, the fault, the firing and the client, and sends it to the layer's inbox. The
//! layer places it at the first place the written stream allows: a close between any two
//! frames, an oversized data frame only between messages. If the stream is not
//! WebSocket (never upgraded, or no longer followed) or no such place comes within
//! [`GRACE`], a close still closes, without its frame, and an oversized frame is not sent.

use std::time::Duration;

use bytes::Bytes;
use rand::RngExt;
use tokio::sync::mpsc;

use super::split::Boundary;
use super::{close, oversize};
use crate::scenario::{Direction, NetworkFaultKind};
use crate::shim::Shared;

/// How long an injection waits for a place in the stream.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// Where a firing reaches one direction's layer; set when the layer starts.
pub(crate) type Inbox = std::sync::OnceLock<mpsc::UnboundedSender<Injection>>;

/// A frame to write into one direction.
#[derive(Debug)]
pub(crate) struct Injection {
    /// The frame's bytes, in pieces (an oversized frame is mostly a shared filler).
    pub chunks: Vec<Bytes>,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A close frame; once written, the directions `scope` close with a FIN.
    Close { scope: Direction },
    /// A data frame.
    Oversize,
}

/// What may be done with an injection where the written stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    Now,
    Wait,
    /// It can never be placed: give up on the frame.
    Never,
}

impl Injection {
    pub fn fits(&self, at: Boundary) -> Fit {
        match (self.kind, at) {
            (_, Boundary::Lost) => Fit::Never,
            (_, Boundary::Clear) | (Kind::Close { .. }, Boundary::MidMessage) => Fit::Now,
            _ => Fit::Wait,
        }
    }
}

/// Fires fault `plan` (`ws_close`, `ws_oversize`), firing number `firing`, at connection
/// `conn`; false if it already ended.
pub(crate) fn hit(shared: &Shared, plan: usize, conn: u64, firing: u32) -> bool {
    let Some(info) = shared.registry.info(conn) else {
        return false;
    };
    let p = &shared.plans[plan];
    for dir in [Direction::Upstream, Direction::Downstream] {
        if !p.applies_to(dir) {
            continue;
        }
        let mut rng = p.link_rng(firing, dir, info.key, info.ordinal);
        let mask = (dir == Direction::Upstream).then(|| rng.random::<[u8; 4]>());
        let (chunks, kind) = match &p.fault.kind {
            NetworkFaultKind::WsClose { code, reason } => {
                // Both ways, each direction ends itself once its frame is out; one way,
                // the whole connection closes after it.
                let scope = match p.fault.direction {
                    Direction::Both => dir,
                    _ => Direction::Both,
                };
                (
                    vec![close::frame(*code, reason, mask)],
                    Kind::Close { scope },
                )
            }
            NetworkFaultKind::WsOversize { bytes } => {
                (oversize::frame(*bytes, mask), Kind::Oversize)
            }
            _ => continue,
        };
        let injection = Injection { chunks, kind };
        let sent = info
            .inbox(dir)
            .get()
            .is_some_and(|tx| tx.send(injection).is_ok());
        if let (false, Kind::Close { scope }) = (sent, kind) {
            info.close(scope);
        }
    }
    true
}
