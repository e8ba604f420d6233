//! `nat_timeout`: the idle timeout of a carrier-grade NAT or a stateful firewall. While
//! the window is open, a connection with no bytes in either direction for `idle` is
//! forgotten, as a NAT forgets an idle mapping: from then on every byte, both ways, is
//! read and silently discarded (as `blackhole` does), the sockets stay open, and neither
//! side is told — a half-open link that only the peers' own heartbeats can find.
//!
//! The mapping is one per connection and window, shared by its two directions: a byte
//! either way keeps it alive. The NAT's timer is not a task: the expiry is seen lazily,
//! at the next chunk either way, by comparing its arrival with the mapping's last
//! activity. The act is dated when the mapping expired (last activity + `idle`), not when
//! a chunk found it gone, so a client's `detection_latency` counts from the moment the
//! link really died. Idle time counts from the window reaching the connection (its
//! start, or the connection's opening during it), not from before it.
//!
//! A forgotten mapping stays forgotten after the window closes: the NAT does not learn
//! the flow back, so the link stays dead until one side gives up on it. The end of the
//! stream (a FIN) still passes, so a connection both peers abandoned is freed rather than
//! held open to the end of the run; a real NAT would drop the FIN too, and the far peer
//! would learn of the end only from its own timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Acted, Chunk, Stage};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    /// Silence after which the mapping is forgotten.
    pub idle: Duration,
}

/// One connection's NAT mapping for one window, shared by its two directions.
#[derive(Debug)]
pub(crate) struct Mapping {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// The latest arrival of a byte either way (or the window reaching the link).
    last: Instant,
    /// When the mapping expired, once it has.
    expired: Option<Instant>,
}

impl Mapping {
    pub fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                last: now,
                expired: None,
            }),
        }
    }

    /// A chunk arrived at `at`: `Some(when the mapping expired)` if it had (the chunk is
    /// to be dropped), `None` if it is alive (and `at` keeps it so).
    fn pass(&self, at: Instant, idle: Duration) -> Option<Instant> {
        // Only this link's two directions take the lock; it never waits on another link.
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.expired.is_none() && at.saturating_duration_since(s.last) >= idle {
            s.expired = Some(s.last + idle);
        }
        if s.expired.is_none() {
            // The other direction may have handed in a later chunk already.
            s.last = s.last.max(at);
        }
        s.expired
    }

    fn expired(&self) -> Option<Instant> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).expired
    }
}

/// A connection's mappings, one per (fault, window), so both directions find the same.
#[derive(Debug, Default)]
pub(crate) struct Mappings {
    list: Mutex<Vec<(usize, u32, Arc<Mapping>)>>,
}

impl Mappings {
    /// The mapping of window `window` of fault `plan`, made at `now` by the first
    /// direction that asks.
    pub fn get(&self, plan: usize, window: u32, now: Instant) -> Arc<Mapping> {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, m)) = list.iter().find(|(p, w, _)| *p == plan && *w == window) {
            return m.clone();
        }
        let m = Arc::new(Mapping::new(now));
        list.push((plan, window, m.clone()));
        m
    }
}

/// The `nat_timeout` stage of one direction of one link for one window.
pub(crate) struct NatTimeout {
    idle: Duration,
    mapping: Arc<Mapping>,
}

impl NatTimeout {
    pub fn new(spec: &Spec, mapping: Arc<Mapping>) -> Self {
        Self {
            idle: spec.idle,
            mapping,
        }
    }
}

impl Stage for NatTimeout {
    fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        match self.mapping.pass(chunk.arrival, self.idle) {
            Some(_) => Some(chunk.data.len()),
            None => {
                out.push(chunk);
                None
            }
        }
    }

    fn acted_since(&self) -> Option<Instant> {
        self.mapping.expired()
    }

    fn outlives_window(&self) -> bool {
        self.mapping.expired().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const IDLE: Duration = Duration::from_secs(30);

    fn chunk(at: Instant, data: &'static [u8]) -> Chunk {
        Chunk::new(Bytes::from_static(data), at)
    }

    /// The two directions of one link, sharing one mapping made at `t0`.
    fn link(t0: Instant) -> (NatTimeout, NatTimeout) {
        let mappings = Mappings::default();
        let spec = Spec { idle: IDLE };
        let up = NatTimeout::new(&spec, mappings.get(0, 0, t0));
        let down = NatTimeout::new(&spec, mappings.get(0, 0, t0 + Duration::from_secs(5)));
        (up, down)
    }

    #[test]
    fn an_active_link_is_untouched_whichever_way_the_bytes_go() {
        let t0 = Instant::now();
        let (mut up, mut down) = link(t0);
        let mut out = Vec::new();
        // Upstream alone at 20 s steps, then downstream alone: each keeps it alive for
        // the other, although neither direction alone moved for 30 s.
        for (i, upstream) in [true, true, false, false, true].into_iter().enumerate() {
            let at = t0 + Duration::from_secs(20 * (i as u64 + 1));
            let stage = if upstream { &mut up } else { &mut down };
            assert_eq!(stage.push(chunk(at, b"hi"), &mut out), None, "chunk {i}");
        }
        assert_eq!(out.len(), 5);
        assert_eq!(up.acted_since(), None);
        assert!(!down.outlives_window());
    }

    #[test]
    fn a_link_idle_past_the_timeout_drops_both_ways_from_then_on() {
        let t0 = Instant::now();
        let (mut up, mut down) = link(t0);
        let mut out = Vec::new();
        let last = t0 + Duration::from_secs(10);
        assert_eq!(down.push(chunk(last, b"push"), &mut out), None);
        // Found at the next chunk, 45 s later: the mapping died 30 s after the last byte.
        let ping = last + Duration::from_secs(45);
        assert_eq!(up.push(chunk(ping, b"ping"), &mut out), Some(4));
        assert_eq!(up.acted_since(), Some(last + IDLE));
        assert_eq!(down.acted_since(), Some(last + IDLE));
        // Both ways, however busy the link is now.
        for s in 1..5 {
            let at = ping + Duration::from_millis(s);
            assert_eq!(down.push(chunk(at, b"pong"), &mut out), Some(4));
            assert_eq!(up.push(chunk(at, b"data!"), &mut out), Some(5));
        }
        assert_eq!(out.len(), 1, "only the chunk before the expiry passed");
        assert!(up.outlives_window() && down.outlives_window());
        // The end of the stream still passes.
        assert_eq!(up.finish(ping), Some(ping));
    }

    #[test]
    fn idle_time_counts_from_the_window_and_a_late_chunk_does_not_rewind_it() {
        let t0 = Instant::now();
        let (mut up, mut down) = link(t0);
        let mut out = Vec::new();
        // Just under the timeout since the window reached the link: alive.
        let at = t0 + IDLE - Duration::from_millis(1);
        assert_eq!(up.push(chunk(at, b"a"), &mut out), None);
        // A downstream chunk that arrived earlier but is handled later keeps `last`.
        assert_eq!(down.push(chunk(t0, b"b"), &mut out), None);
        let at = at + IDLE - Duration::from_millis(1);
        assert_eq!(down.push(chunk(at, b"c"), &mut out), None);
        let late = at + IDLE;
        assert_eq!(up.push(chunk(late, b"d"), &mut out), Some(1));
        assert_eq!(up.acted_since(), Some(at + IDLE));
    }
}
