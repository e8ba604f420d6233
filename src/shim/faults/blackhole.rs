//! `blackhole`: while the window is open nothing passes in the chosen direction(s), and
//! both sockets stay open — the half-open link of a dead route or a crashed middlebox.
//!
//! Data arriving is **read and discarded**, not left unread: the sender's kernel keeps
//! ACKing and its writes keep succeeding, as when packets vanish past the first hop; left
//! unread, the buffers would fill and the sender would see backpressure — a stall, not a
//! blackhole. The FIN is held too: a side that closes during the window is not seen to
//! close until the window ends (a FIN is a packet like any other).
//!
//! When the window ends, forwarding resumes. The stream then misses the bytes discarded,
//! which the WebSocket layer on top detects (a broken frame); a client whose heartbeats
//! went unanswered has usually given up on the connection by then.
//!
//! With `close_after`, each blackholed connection is closed (FIN both ways, as `close`)
//! that long after the blackhole reached it, traffic or not: the "silent, then gone"
//! link, and Toxiproxy's `timeout` toxic (whose timer, unlike this one, restarts with each
//! chunk and so never fires under WebSocket heartbeats). With `reset_after` it is reset
//! (RST both ways, as `reset`) instead: Toxiproxy's `reset_peer`.
//!
//! "Reached it": the window's start for the connections open then (the timeline closes
//! them, idle or not; see [`close_open`]); for a later connection, its first byte in a
//! blackholed direction.
//!
//! The window's start stamps the touch board of every identified client it covers, idle or
//! not (see [`window_opened`]): the link broke then, whether or not a byte was lost yet.
//! The ledger's `FaultTouched { action: "blackholed" }` counts the connections that lost
//! bytes, with how many.

use std::time::Duration;

use tokio::time::Instant;

use super::{Acted, Chunk, Stage};
use crate::scenario::Direction;
use crate::shim::registry::Kill;
use crate::shim::select::{self, Key, Members};
use crate::shim::{Shared, ledger};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    /// End the connection this long after the blackhole reached it.
    pub end_after: Option<Duration>,
    /// End it with a reset rather than a close.
    pub reset: bool,
}

/// The blackhole stage of one link for one window.
pub(crate) struct Blackhole {
    /// When the connection is ended, if ever.
    end_at: Option<Instant>,
    reset: bool,
}

impl Blackhole {
    /// Built when the blackhole reaches the link: `end_after` counts from now.
    pub fn new(spec: &Spec) -> Self {
        Self {
            end_at: spec.end_after.map(|after| Instant::now() + after),
            reset: spec.reset,
        }
    }

    fn ended(&self) -> bool {
        self.end_at.is_some_and(|t| Instant::now() >= t)
    }
}

impl Stage for Blackhole {
    fn push(&mut self, chunk: Chunk, _out: &mut Vec<Chunk>) -> Acted {
        Some(chunk.data.len())
    }

    fn finish(&mut self, _at: Instant) -> Option<Instant> {
        None
    }

    fn closes(&self) -> bool {
        !self.reset && self.ended()
    }

    fn resets(&self) -> bool {
        self.reset && self.ended()
    }

    fn wake_at(&self) -> Option<Instant> {
        // Once passed, the link is ending: waking again would only spin.
        self.end_at.filter(|t| *t > Instant::now())
    }
}

/// A blackhole's `close_after` or `reset_after`, if it has one.
pub(crate) fn end_after(plan: &super::Plan) -> Option<Duration> {
    match &plan.effect {
        super::Effect::Stage(super::StageSpec::Blackhole(spec)) => spec.end_after,
        _ => None,
    }
}

/// `close_after` (or `reset_after`) has passed since a blackhole window of fault `plan`
/// opened at `opened`: ends the connections it covers that were open then, idle or not
/// (later ones are ended by their own stage, that long after it reached them).
pub(crate) fn close_open(shared: &Shared, plan: usize, members: &Members, opened: Instant) {
    let reset = matches!(
        &shared.plans[plan].effect,
        super::Effect::Stage(super::StageSpec::Blackhole(spec)) if spec.reset
    );
    for c in shared.registry.opened_by(opened) {
        if !members.contains(c.key) {
            continue;
        }
        let ended = match reset {
            true => shared.registry.kill(c.conn, Kill::Reset(Direction::Both)),
            false => shared.registry.close(c.conn, Direction::Both),
        };
        if !ended {
            continue;
        }
        let client = match c.key {
            Key::Client(i) => Some(i),
            Key::Conn(_) => None,
        };
        ledger::instant(
            shared,
            plan,
            c.conn,
            client,
            if reset { "reset" } else { "closed" },
        );
    }
}

/// A blackhole (or partition) window of fault `plan` opened with `members`: stamps the
/// touch board of each identified client it covers, at its (staggered) start.
pub(crate) fn window_opened(shared: &Shared, plan: usize, members: &Members) {
    let p = &shared.plans[plan];
    let now = shared.clock.now_us();
    for c in shared.registry.snapshot() {
        let Key::Client(client) = c.key else {
            continue;
        };
        if !members.contains(c.key) {
            continue;
        }
        let offset = select::stagger_offset(p.fault.window.stagger, p.seed, c.key);
        let at = now.saturating_add(u64::try_from(offset.as_micros()).unwrap_or(u64::MAX));
        ledger::board(shared, Some(client), at);
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::NetworkFaultKind;
    use crate::shim::test_util::{
        Harness, LIMIT, Saw, connect_as, echo_server, fault, head, read_for, recording_server,
        roundtrip, until_end,
    };
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn blackhole(at_ms: u64, for_ms: u64) -> crate::scenario::NetworkFault {
        fault(
            NetworkFaultKind::Blackhole {
                close_after: None,
                reset_after: None,
            },
            Duration::from_millis(at_ms),
            Some(Duration::from_millis(for_ms)),
        )
    }

    #[tokio::test]
    async fn nothing_passes_the_sockets_stay_open_and_forwarding_resumes() {
        let echo = echo_server().await;
        let h = Harness::start(vec![blackhole(200, 500)], 1, echo, true).await;
        let mut s = connect_as(h.addr(), 2).await;
        roundtrip(&mut s, b"before").await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(260))).await;
        // Idle so far in the window, yet the client is marked from its start.
        let touched = h.board.last(2).expect("window start marks covered clients");
        assert!((200_000..260_000).contains(&touched), "{touched}");
        s.write_all(b"gone").await.unwrap();
        let (got, end) = read_for(&mut s, Duration::from_millis(150)).await;
        assert!(got.is_empty(), "{got:?}");
        assert!(end.is_none(), "no FIN, no reset: {end:?}");
        // A client connecting during the window is cut from its first byte.
        let mut late = TcpStream::connect(h.addr()).await.unwrap();
        late.write_all(&head(7)).await.unwrap();
        let (got, _) = read_for(&mut late, Duration::from_millis(100)).await;
        assert!(got.is_empty(), "{got:?}");
        let late_cut = h.board.last(7).expect("a late connection is marked too");
        assert!(late_cut >= 400_000, "{late_cut}");
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(750))).await;
        roundtrip(&mut s, b"back").await;
        let ledger = h.stop().await;
        let head_len = head(7).len() as u64;
        assert_eq!(
            (ledger[0].actions["blackholed"], ledger[0].bytes_affected),
            (2, 4 + head_len)
        );
    }

    #[tokio::test]
    async fn a_close_during_the_window_is_seen_when_it_ends() {
        let (server, mut seen) = recording_server().await;
        let h = Harness::start(vec![blackhole(100, 300)], 1, server, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(b"hi").await.unwrap();
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(150))).await;
        s.shutdown().await.unwrap();
        let (data, end) = until_end(&mut seen).await;
        let (at, how) = end.expect("the FIN comes after the window");
        assert_eq!((data.as_slice(), how), (&b"hi"[..], Saw::Eof));
        let after = at - h.clock.origin();
        assert!(after >= Duration::from_millis(380), "FIN seen at {after:?}");
        assert!(after < Duration::from_millis(1500), "FIN seen at {after:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn close_after_closes_idle_and_busy_connections_that_long_after() {
        let echo = echo_server().await;
        let f = fault(
            NetworkFaultKind::Blackhole {
                close_after: Some(Duration::from_millis(300)),
                reset_after: None,
            },
            Duration::from_millis(100),
            None,
        );
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut idle = connect_as(h.addr(), 1).await;
        let mut busy = connect_as(h.addr(), 2).await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(150))).await;
        busy.write_all(b"lost").await.unwrap();
        for s in [&mut idle, &mut busy] {
            let (got, end) = read_for(s, LIMIT).await;
            let at = h.clock.elapsed();
            assert!(got.is_empty(), "{got:?}");
            assert!(matches!(end, Some(Ok(()))), "a FIN: {end:?}");
            assert!(at >= Duration::from_millis(390), "closed at {at:?}");
        }
        // A connection arriving later is closed 300 ms after the blackhole reached it.
        let mut late = TcpStream::connect(h.addr()).await.unwrap();
        let t0 = tokio::time::Instant::now();
        late.write_all(&head(3)).await.unwrap();
        let (got, end) = read_for(&mut late, LIMIT).await;
        assert!(
            got.is_empty() && matches!(end, Some(Ok(()))),
            "{got:?} {end:?}"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(280),
            "{:?}",
            t0.elapsed()
        );
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["closed"], 2);
    }

    #[tokio::test]
    async fn reset_after_resets_open_and_later_connections() {
        let echo = echo_server().await;
        let f = fault(
            NetworkFaultKind::Blackhole {
                close_after: None,
                reset_after: Some(Duration::from_millis(200)),
            },
            Duration::from_millis(50),
            None,
        );
        let h = Harness::start(vec![f], 1, echo, false).await;
        let mut idle = TcpStream::connect(h.addr()).await.unwrap();
        roundtrip(&mut idle, b"hi").await;
        let (got, end) = read_for(&mut idle, LIMIT).await;
        assert!(got.is_empty(), "{got:?}");
        let kind = end.expect("ended").unwrap_err().kind();
        assert_eq!(kind, std::io::ErrorKind::ConnectionReset);
        assert!(h.clock.elapsed() >= Duration::from_millis(240));
        // Later: reset 200 ms after its first byte met the blackhole.
        let mut late = TcpStream::connect(h.addr()).await.unwrap();
        late.write_all(b"x").await.unwrap();
        let (_, end) = read_for(&mut late, LIMIT).await;
        let kind = end.expect("ended").unwrap_err().kind();
        assert_eq!(kind, std::io::ErrorKind::ConnectionReset);
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["reset"], 1);
    }
}
