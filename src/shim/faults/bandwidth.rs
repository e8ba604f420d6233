//! `bandwidth`: throttle one direction of each chosen connection to `rate` bytes per
//! second (per connection, per direction, like Toxiproxy), or with `shared: true` all the
//! chosen connections together to `rate` per direction: one wire they queue for, first
//! come first served (a saturated uplink; Toxiproxy #190, #613).
//!
//! A virtual wire: each piece of a chunk takes `len / rate` to cross it, starting when
//! both the piece is due and the previous piece has crossed, and is due on the far side
//! when it has crossed. So throughput converges to the rate exactly (dues are computed,
//! not slept, so timer granularity does not lose time), 64 KiB at 128 KiB/s arrives
//! after 0.5 s, and an idle wire saves no credit: there is no burst after a pause (a
//! token bucket of depth zero).
//!
//! Chunks are cut into pieces of about 20 ms of the rate (at least [`MIN_PIECE`] bytes),
//! so a slow link trickles instead of releasing whole reads in bursts; cutting a `Bytes`
//! copies nothing.
//!
//! Backpressure is the deliberate choice here: the link holds at most a quarter second of
//! the rate (within [`MIN_QUEUE`]..[`MAX_QUEUED`]) before it stops reading, so the sender
//! feels the slow link through TCP as it would a real one, instead of the shim absorbing
//! megabytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Acted, Chunk, Stage};
use crate::scenario::Direction;
use crate::shim::link::MAX_QUEUED;

/// Smallest piece a chunk is cut into.
const MIN_PIECE: usize = 16;
/// Pieces per second of the rate: a piece is ~20 ms of it.
const PIECES_PER_SECOND: u64 = 50;
/// Least the link may hold before it stops reading: a few reads.
const MIN_QUEUE: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub bytes_per_second: u64,
    /// The wires every chosen link shares, with `shared: true`.
    pub shared: Option<Arc<SharedWires>>,
}

impl Spec {
    pub fn new(bytes_per_second: u64, shared: bool) -> Self {
        Self {
            bytes_per_second,
            shared: shared.then(Default::default),
        }
    }
}

/// One wire per direction for all the links of a shared bandwidth fault: when each is free
/// again. Locked once per chunk on throttled links only, never across an await.
#[derive(Debug, Default)]
pub(crate) struct SharedWires {
    free: [Mutex<Option<Instant>>; 2],
}

impl PartialEq for SharedWires {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The wire a link's pieces cross.
enum Wire {
    /// This link's own: when it is free again (the last piece has crossed).
    Own(Option<Instant>),
    /// One shared with the fault's other links, for this direction.
    Shared(Arc<SharedWires>, usize),
}

/// The bandwidth stage of one link for one window.
pub(crate) struct Bandwidth {
    rate: u64,
    piece: usize,
    wire: Wire,
}

impl Bandwidth {
    pub fn new(spec: &Spec, dir: Direction) -> Self {
        let rate = spec.bytes_per_second.max(1);
        let piece = usize::try_from(rate / PIECES_PER_SECOND).unwrap_or(usize::MAX);
        let wire = match &spec.shared {
            None => Wire::Own(None),
            Some(wires) => Wire::Shared(wires.clone(), usize::from(dir == Direction::Downstream)),
        };
        Self {
            rate,
            piece: piece.max(MIN_PIECE),
            wire,
        }
    }
}

impl Stage for Bandwidth {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        let n = chunk.data.len();
        let mut guard;
        let free = match &mut self.wire {
            Wire::Own(free) => free,
            Wire::Shared(wires, dir) => {
                // A panic elsewhere while holding it leaves a valid instant behind.
                guard = wires.free[*dir].lock().unwrap_or_else(|e| e.into_inner());
                &mut *guard
            }
        };
        while !chunk.data.is_empty() {
            let data = chunk.data.split_to(self.piece.min(chunk.data.len()));
            let start = free.map_or(chunk.due, |free| free.max(chunk.due));
            let nanos = data.len() as u128 * 1_000_000_000 / u128::from(self.rate);
            let due = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            *free = Some(due);
            out.push(Chunk {
                data,
                arrival: chunk.arrival,
                due,
            });
        }
        Some(n)
    }

    fn queue_limit(&self) -> Option<usize> {
        let quarter = usize::try_from(self.rate / 4).unwrap_or(usize::MAX);
        Some(quarter.clamp(MIN_QUEUE, MAX_QUEUED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, LIMIT, connect_as, echo_server, fault};
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn push(s: &mut Bandwidth, len: usize, at: Instant) -> Vec<Chunk> {
        let mut out = Vec::new();
        assert_eq!(
            s.push(Chunk::new(Bytes::from(vec![7; len]), at), &mut out),
            Some(len)
        );
        out
    }

    #[test]
    fn pieces_leave_when_they_have_crossed_and_idle_saves_no_credit() {
        let mut s = Bandwidth::new(&Spec::new(1000, false), Direction::Upstream);
        let t0 = Instant::now();
        // 1000 B/s: pieces of 20 bytes (20 ms each).
        let out = push(&mut s, 100, t0);
        let dues: Vec<_> = out.iter().map(|c| c.due - t0).collect();
        assert_eq!(dues, [20, 40, 60, 80, 100].map(Duration::from_millis));
        assert!(out.iter().all(|c| c.data.len() == 20 && c.arrival == t0));
        // A chunk right behind waits for the wire.
        let out = push(&mut s, 10, t0 + Duration::from_millis(1));
        assert_eq!(out[0].due - t0, Duration::from_millis(110));
        // After a pause the wire is free, but no faster than the rate.
        let later = t0 + Duration::from_secs(5);
        let out = push(&mut s, 40, later);
        let dues: Vec<_> = out.iter().map(|c| c.due - later).collect();
        assert_eq!(dues, [20, 40].map(Duration::from_millis));
    }

    #[test]
    fn fast_rates_keep_whole_chunks_and_bound_the_queue() {
        let mut s = Bandwidth::new(&Spec::new(100 * 1024 * 1024, false), Direction::Upstream);
        let t0 = Instant::now();
        assert_eq!(push(&mut s, 8192, t0).len(), 1);
        assert_eq!(s.queue_limit(), Some(MAX_QUEUED));
        let slow = Bandwidth::new(&Spec::new(1, false), Direction::Upstream);
        assert_eq!(
            (slow.piece, slow.queue_limit()),
            (MIN_PIECE, Some(MIN_QUEUE))
        );
    }

    #[tokio::test]
    async fn sixty_four_kib_at_128_kib_per_second_takes_half_a_second() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 128 * 1024,
                shared: false,
            },
            std::time::Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut s = connect_as(h.addr(), 0).await;
        let payload: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        let t0 = Instant::now();
        let (mut r, mut w) = s.split();
        let mut back = vec![0; payload.len()];
        let (sent, got) = tokio::time::timeout(LIMIT, async {
            tokio::join!(w.write_all(&payload), r.read_exact(&mut back))
        })
        .await
        .expect("throttled, not stalled");
        sent.unwrap();
        got.unwrap();
        let elapsed = t0.elapsed();
        assert!(back == payload, "bytes unchanged and in order");
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
        assert_eq!(h.board.last(0), None, "a slow link is not a broken one");
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["throttled"], 1);
        let head = crate::shim::test_util::head(0).len() as u64;
        assert_eq!(ledger[0].bytes_affected, head + payload.len() as u64);
    }

    #[test]
    fn a_shared_wire_queues_every_link_of_a_direction_behind_one_another() {
        let spec = Spec::new(1000, true);
        let (mut a, mut b) = (
            Bandwidth::new(&spec, Direction::Upstream),
            Bandwidth::new(&spec, Direction::Upstream),
        );
        let mut down = Bandwidth::new(&spec, Direction::Downstream);
        let t0 = Instant::now();
        assert_eq!(
            push(&mut a, 100, t0).last().unwrap().due - t0,
            Duration::from_millis(100)
        );
        // The other link waits for the wire the first one filled.
        assert_eq!(
            push(&mut b, 100, t0).last().unwrap().due - t0,
            Duration::from_millis(200)
        );
        // The other direction has its own wire.
        assert_eq!(
            push(&mut down, 100, t0).last().unwrap().due - t0,
            Duration::from_millis(100)
        );
    }

    #[tokio::test]
    async fn a_shared_budget_splits_the_rate_between_connections() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Bandwidth {
                bytes_per_second: 128 * 1024,
                shared: true,
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, echo, true).await;
        // Two connections of 32 KiB each through a 128 KiB/s shared wire: 0.5 s together,
        // where each alone (or per-connection budgets) would take 0.25 s.
        let payload: Vec<u8> = (0..32 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut conns = [connect_as(h.addr(), 0).await, connect_as(h.addr(), 1).await];
        let t0 = Instant::now();
        let runs = conns.iter_mut().map(|s| {
            let payload = payload.clone();
            async move {
                let (mut r, mut w) = s.split();
                let mut back = vec![0; payload.len()];
                let (sent, got) = tokio::join!(w.write_all(&payload), r.read_exact(&mut back));
                sent.unwrap();
                got.unwrap();
                assert!(back == payload);
            }
        });
        tokio::time::timeout(LIMIT, futures_util::future::join_all(runs))
            .await
            .expect("throttled, not stalled");
        let elapsed = t0.elapsed();
        assert!(
            elapsed >= Duration::from_millis(430) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
        let ledger = h.stop().await;
        assert_eq!(ledger[0].connections_touched, 2);
    }
}
