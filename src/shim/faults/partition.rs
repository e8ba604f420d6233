//! `partition`: the chosen clients are cut off from the server for the window. Their open
//! connections are blackholed (the `blackhole` stage, in the fault's `direction`, both by
//! default), and their new connections are refused.
//!
//! "Refused" is observable as **accept, then an immediate RST**: the shim's listener stays
//! bound for everyone else, so the kernel completes the handshake before the shim can
//! tell who is connecting. With `identify_clients` the shim must read the upgrade head to
//! know the client, so a chosen client sees its handshake answered by a reset; a
//! partition over every connection refuses before the head. Either way the server is
//! never dialed. Each refusal is a `FaultTouched { action: "refused" }` and marks the
//! client's touch board slot; the window's start marks the covered clients already
//! connected (see `blackhole::window_opened`).

use tokio::time::Instant;

use crate::shim::Shared;
use crate::shim::select::{self, Key, Members};

/// The partition (plan index) that refuses a connection of `key` now, if any. With `key`
/// unknown (the head not read yet) only a partition covering every connection from its
/// start refuses.
pub(crate) fn refusing(shared: &Shared, key: Option<Key>) -> Option<usize> {
    let set = shared.active.borrow().clone();
    let now = Instant::now();
    set.open.iter().find_map(|open| {
        let p = &shared.plans[open.plan];
        if !p.refuses_new() {
            return None;
        }
        let stagger = p.fault.window.stagger;
        let covered = match key {
            None => matches!(*open.members, Members::All) && stagger.is_zero(),
            Some(key) => {
                open.members.contains(key)
                    && open.opened + select::stagger_offset(stagger, p.seed, key) <= now
            }
        };
        covered.then_some(open.plan)
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Connections, NetworkFaultKind};
    use crate::shim::test_util::{
        Harness, LIMIT, connect_as, echo_server, fault, head, read_for, roundtrip,
    };
    use std::io::ErrorKind;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn partition(at_ms: u64, for_ms: u64) -> crate::scenario::NetworkFault {
        fault(
            NetworkFaultKind::Partition,
            Duration::from_millis(at_ms),
            Some(Duration::from_millis(for_ms)),
        )
    }

    /// Connects as `client` during a partition: the handshake is answered by a reset.
    async fn refused(h: &Harness, client: u32) -> bool {
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(&head(client)).await.unwrap();
        let (got, end) = read_for(&mut s, LIMIT).await;
        match end {
            Some(Err(e)) => got.is_empty() && e.kind() == ErrorKind::ConnectionReset,
            _ => false,
        }
    }

    #[tokio::test]
    async fn chosen_clients_are_cut_off_and_refused_then_recover() {
        let echo = echo_server().await;
        let mut f = partition(200, 400);
        f.connections = Connections::Clients(vec![1, 2]);
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut one = connect_as(h.addr(), 1).await;
        let mut other = connect_as(h.addr(), 4).await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(250))).await;
        // The open connection: nothing passes, nothing closes.
        one.write_all(b"ping").await.unwrap();
        let (got, end) = read_for(&mut one, Duration::from_millis(150)).await;
        assert!(got.is_empty() && end.is_none(), "{got:?} {end:?}");
        let cut = h.board.last(1).expect("covered at the window's start");
        assert!((200_000..250_000).contains(&cut), "{cut}");
        // A new connection of a chosen client is refused; other clients are not.
        assert!(refused(&h, 2).await, "client 2 refused");
        let refused_at = h.board.last(2).expect("a refusal marks the client");
        assert!(refused_at >= 250_000, "{refused_at}");
        roundtrip(&mut other, b"fine").await;
        let mut late = connect_as(h.addr(), 5).await;
        roundtrip(&mut late, b"fine too").await;
        assert_eq!(h.board.last(4), None);
        // After the window: the old connection flows again, new ones are served.
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(650))).await;
        roundtrip(&mut one, b"pong").await;
        let mut again = connect_as(h.addr(), 2).await;
        roundtrip(&mut again, b"back").await;
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["refused"], 1);
        assert_eq!(ledger[0].actions["blackholed"], 1);
        assert_eq!(ledger[0].connections_touched, 2);
    }

    #[tokio::test]
    async fn a_partition_over_everyone_refuses_before_the_head() {
        let echo = echo_server().await;
        let h = Harness::start(vec![partition(0, 5_000)], 1, echo, true).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        // Nothing sent: the reset does not wait for a head.
        let (_, end) = read_for(&mut s, Duration::from_secs(1)).await;
        let kind = end.expect("refused at once").unwrap_err().kind();
        assert_eq!(kind, ErrorKind::ConnectionReset);
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["refused"], 1);
    }
}
