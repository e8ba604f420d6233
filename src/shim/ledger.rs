//! What the shim reports about faults acting on connections: the `FaultTouched` events of
//! the fault ledger, and the touch board clients time their detection from.
//!
//! Ledger rule: **one `FaultTouched` per connection per window**, carrying the exact
//! bytes the fault acted on in that window over both directions. It is emitted when the
//! last of the connection's stages for that window goes away — the window closed, the
//! connection ended, or the run was cancelled — so the total is known. A window in which
//! the fault never acted on the connection (no chunk delayed, nothing dropped, …) emits
//! nothing. Instantaneous acts (reset, close, a partition refusing a connection) are
//! emitted as they happen, one per connection per firing, with 0 bytes.
//!
//! Touch board rule: the first act that can break a connection (see
//! `StageSpec::breaks`; reset, close and refusals always can) stamps the client's slot
//! with the time, once per connection per window. WebSocket message faults that can
//! break a session stamp it again at every act (see `ws::Spec::breaks`).
//!
//! Bookkeeping is per connection ([`Touches`]): a small list under a lock taken when a
//! stage is put in place, first acts, and goes away — never per chunk.

use std::sync::Mutex;

use super::Shared;
use crate::events::Event;

/// The fault windows acting on one connection, shared by its two directions.
#[derive(Debug, Default)]
pub(crate) struct Touches {
    records: Mutex<Vec<Record>>,
}

#[derive(Debug)]
struct Record {
    plan: usize,
    window: u32,
    /// Stages of this window in place on the connection's directions (0, 1 or 2).
    holders: u32,
    acted: bool,
    bytes: u64,
}

impl Touches {
    /// A stage of window `window` of fault `plan` was put on one direction.
    pub fn hold(&self, plan: usize, window: u32) {
        let mut records = self.lock();
        match records
            .iter_mut()
            .find(|r| r.plan == plan && r.window == window)
        {
            Some(r) => r.holders += 1,
            None => records.push(Record {
                plan,
                window,
                holders: 1,
                acted: false,
                bytes: 0,
            }),
        }
    }

    /// A stage acted for the first time on its direction; true if it is the window's
    /// first act on the connection.
    pub fn first_act(&self, plan: usize, window: u32) -> bool {
        let mut records = self.lock();
        match records
            .iter_mut()
            .find(|r| r.plan == plan && r.window == window)
        {
            Some(r) => !std::mem::replace(&mut r.acted, true),
            None => false,
        }
    }

    /// A stage went away having acted on `bytes`; when it was the last one of its window
    /// and the window acted, the window's total.
    pub fn release(&self, plan: usize, window: u32, bytes: u64) -> Option<u64> {
        let mut records = self.lock();
        let i = records
            .iter()
            .position(|r| r.plan == plan && r.window == window)?;
        let r = &mut records[i];
        r.bytes += bytes;
        r.holders = r.holders.saturating_sub(1);
        if r.holders > 0 {
            return None;
        }
        let r = records.swap_remove(i);
        r.acted.then_some(r.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        // A panic elsewhere while holding the lock leaves the list itself consistent.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fault `plan` acted on a connection for the first time in a window: count it, and
/// stamp the client's board slot when asked (the act can break the link and nothing
/// stamped it for this window yet), with the moment the act began (`at`, µs on the run
/// clock: a NAT mapping found expired died earlier; see `Stage::acted_since`) or now.
pub(crate) fn first_act(
    shared: &Shared,
    plan: usize,
    client: Option<u32>,
    stamp: bool,
    at: Option<u64>,
) {
    shared.stats.touched(plan);
    if stamp {
        let now = shared.clock.now_us();
        board(shared, client, at.map_or(now, |t| t.min(now)));
    }
}

/// An instantaneous fault hit connection `conn`: counted, on the board, in the ledger.
pub(crate) fn instant(
    shared: &Shared,
    plan: usize,
    conn: u64,
    client: Option<u32>,
    action: &'static str,
) {
    first_act(shared, plan, client, true, None);
    emit(shared, plan, conn, client, action, 0);
}

/// Stamps `client`'s slot of the touch board with `at_us` (µs on the run clock).
pub(crate) fn board(shared: &Shared, client: Option<u32>, at_us: u64) {
    if let (Some(board), Some(client)) = (&shared.touches, client) {
        board.touch(client, at_us);
    }
}

/// Writes one `FaultTouched` event.
pub(crate) fn emit(
    shared: &Shared,
    plan: usize,
    conn: u64,
    client: Option<u32>,
    action: &str,
    bytes: u64,
) {
    let p = &shared.plans[plan];
    shared.events.emit(Event::FaultTouched {
        fault: p.fault.id,
        name: p.fault.name.clone(),
        kind: p.kind().to_string(),
        conn,
        client,
        action: action.to_string(),
        bytes,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reports_once_with_both_directions_bytes_after_its_last_stage_leaves() {
        let t = Touches::default();
        t.hold(0, 0); // upstream
        t.hold(0, 0); // downstream
        assert!(t.first_act(0, 0));
        assert!(
            !t.first_act(0, 0),
            "the other direction's first act is not the first"
        );
        assert_eq!(t.release(0, 0, 100), None, "one direction still holds it");
        assert_eq!(t.release(0, 0, 23), Some(123));
        // A later window of the same fault is a new record.
        t.hold(0, 1);
        assert!(t.first_act(0, 1));
        assert_eq!(
            t.release(0, 1, 0),
            Some(0),
            "acted with no bytes (slow_close)"
        );
    }

    #[test]
    fn a_window_that_never_acted_reports_nothing() {
        let t = Touches::default();
        t.hold(2, 0);
        assert_eq!(t.release(2, 0, 0), None);
        assert_eq!(t.release(2, 0, 0), None, "unknown record: nothing");
        assert!(!t.first_act(5, 0), "no stage held: no act to count");
    }

    #[tokio::test]
    async fn one_event_per_connection_window_at_its_end_with_every_byte() {
        use crate::events::{Event, Record};
        use crate::scenario::{Direction, Distribution, NetworkFaultKind};
        use crate::shim::test_util::{Harness, echo_server, fault, roundtrip};
        use std::time::Duration;
        use tokio::net::TcpStream;

        let latency = NetworkFaultKind::Latency {
            latency: Duration::from_millis(5),
            jitter: Duration::ZERO,
            distribution: Distribution::Uniform,
        };
        let mut upstream = fault(
            latency.clone(),
            Duration::ZERO,
            Some(Duration::from_millis(300)),
        );
        upstream.direction = Direction::Upstream;
        let mut downstream = fault(latency, Duration::ZERO, None);
        downstream.direction = Direction::Downstream;
        let echo = echo_server().await;
        let h = Harness::start_logged(vec![upstream, downstream], 1, echo, false).await;
        let mut first = TcpStream::connect(h.addr()).await.unwrap();
        for _ in 0..3 {
            roundtrip(&mut first, &[7; 100]).await;
        }
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(350))).await;
        let mut second = TcpStream::connect(h.addr()).await.unwrap();
        roundtrip(&mut second, &[8; 50]).await;
        drop(second);
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(600))).await;
        let stopping = h.clock.now_us();
        let (ledger, events) = h.stop_with_events().await;
        let touched: Vec<(u64, usize, u64, u64)> = events
            .iter()
            .filter_map(|Record { t_us, event }| match event {
                Event::FaultTouched {
                    fault, conn, bytes, ..
                } => Some((*t_us, *fault, *conn, *bytes)),
                _ => None,
            })
            .collect();
        assert_eq!(touched.len(), 3, "{touched:?}");
        let find = |fault, conn| {
            touched
                .iter()
                .find(|t| t.1 == fault && t.2 == conn)
                .copied()
                .unwrap_or_else(|| panic!("no event for fault {fault} conn {conn}: {touched:?}"))
        };
        // The upstream window closed at 300 ms: reported then, with all three messages.
        let (t, _, _, bytes) = find(0, 0);
        assert_eq!(bytes, 300);
        assert!((290_000..500_000).contains(&t), "at {t}");
        // The second connection ended inside the downstream window: reported then.
        let (t, _, _, bytes) = find(1, 1);
        assert_eq!(bytes, 50);
        assert!((350_000..stopping).contains(&t), "at {t}");
        // The first is still open when the run ends: reported at shutdown.
        let (t, _, _, bytes) = find(1, 0);
        assert_eq!(bytes, 300);
        assert!(t >= stopping, "at {t}");
        assert_eq!(
            (ledger[0].bytes_affected, ledger[1].bytes_affected),
            (300, 350)
        );
        assert_eq!(ledger[1].actions["delayed"], 2);
    }
}
