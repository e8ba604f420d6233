//! `reset`: abort the chosen connections with an RST at each firing.
//!
//! The firing (`Action::fire`) picks exactly the configured share, count or clients among
//! the connections open at that moment (see `select`), tells each one's task to die, and
//! records a `FaultTouched { action: "reset" }` per connection. The task closes its
//! sockets with `SO_LINGER` 0, so the kernel sends RST instead of FIN and the peer reads
//! `ECONNRESET`. Linger is set only at that moment, on the chosen connections: a reset
//! fault never turns the ordinary closes of other connections into resets (Toxiproxy
//! #603).
//!
//! `direction` picks who sees the reset: `both` (default) the client and the server;
//! `downstream` only the client (the server sees a normal close, as if the client left);
//! `upstream` only the server (the client sees a normal close). With `stagger`, the hits of
//! one firing are spread evenly over that span, in random order.

use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;

use crate::scenario::Direction;
use crate::shim::Shared;
use crate::shim::registry::Kill;

/// Resets connection `conn` towards `direction`; false if it already ended.
pub(crate) fn hit(shared: &Shared, conn: u64, direction: Direction) -> bool {
    shared.registry.kill(conn, Kill::Reset(direction))
}

/// Makes the coming close of `stream` an RST.
pub(crate) fn rst(stream: &TcpStream) {
    // Failing means the socket is already dead; there is nothing left to reset.
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Arms the RST on the sides `direction` points at; the caller then drops both sockets.
pub(crate) fn abort(client: &TcpStream, upstream: &TcpStream, direction: Direction) {
    if direction != Direction::Upstream {
        rst(client);
    }
    if direction != Direction::Downstream {
        rst(upstream);
    }
}

#[cfg(test)]
mod tests {
    use crate::events::FaultSummary;
    use crate::scenario::{Connections, Direction, NetworkFaultKind, Share};
    use crate::shim::test_util::{
        Harness, Probe, connect_as, echo_server, fault, probe, roundtrip,
    };
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::Instant;

    /// `n` identified clients, a reset at 200 ms; which clients were reset, and the ledger.
    async fn reset_run(
        seed: u64,
        n: u32,
        connections: Connections,
    ) -> (Vec<u32>, Vec<FaultSummary>) {
        let echo = echo_server().await;
        let mut f = fault(NetworkFaultKind::Reset, Duration::from_millis(200), None);
        f.connections = connections;
        let h = Harness::start(vec![f], seed, echo, true).await;
        let mut conns = Vec::new();
        for i in 0..n {
            let mut s = connect_as(h.addr(), i).await;
            roundtrip(&mut s, b"hi").await;
            conns.push(s);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut reset = Vec::new();
        for (i, s) in conns.iter_mut().enumerate() {
            match probe(s).await {
                Probe::Alive => {}
                Probe::Reset => reset.push(i as u32),
                other => panic!("client {i}: {other:?}"),
            }
        }
        (reset, h.stop().await)
    }

    #[tokio::test]
    async fn a_share_resets_exactly_that_many_and_the_rest_keep_working() {
        let (reset, ledger) = reset_run(7, 8, Connections::Share(Share(0.5))).await;
        assert_eq!(reset.len(), 4, "reset clients {reset:?}");
        assert_eq!(ledger[0].actions["reset"], 4);
        assert_eq!(ledger[0].connections_touched, 4);
        assert_eq!(
            ledger[0].windows.len(),
            1,
            "one firing, one started/stopped pair"
        );
    }

    #[tokio::test]
    async fn a_client_list_resets_those_clients() {
        let (reset, _) = reset_run(1, 5, Connections::Clients(vec![1, 3])).await;
        assert_eq!(reset, vec![1, 3]);
    }

    #[tokio::test]
    async fn the_same_seed_resets_the_same_clients() {
        let share = || Connections::Share(Share(0.5));
        let (a, b) = tokio::join!(reset_run(11, 8, share()), reset_run(11, 8, share()));
        assert_eq!(a.0, b.0);
        let (c, d) = tokio::join!(reset_run(12, 8, share()), reset_run(13, 8, share()));
        assert!(
            c.0 != a.0 || d.0 != a.0,
            "three seeds, one choice: {:?}",
            a.0
        );
    }

    #[tokio::test]
    async fn every_fires_again_within_the_window() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Reset,
            Duration::from_millis(100),
            Some(Duration::from_millis(400)),
        );
        f.window.every = Some(Duration::from_millis(150)); // fires at 100, 250, 400 ms
        let h = Harness::start(vec![f], 3, echo, true).await;
        let deadline = Instant::now() + Duration::from_millis(650);
        let mut resets = 0;
        let mut buf = [0u8; 16];
        while Instant::now() < deadline {
            let mut s = connect_as(h.addr(), 0).await;
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => resets += 1,
                Ok(other) => panic!("unexpected read: {other:?}"),
                Err(_) => break,
            }
        }
        let ledger = h.stop().await;
        assert_eq!(resets, 3);
        assert_eq!(ledger[0].windows.len(), 3);
        assert_eq!(ledger[0].actions["reset"], 3);
    }

    /// A server that reports how its first connection ended: Ok(()) on FIN, the error else.
    async fn watching_server() -> (
        SocketAddr,
        tokio::sync::oneshot::Receiver<std::io::ErrorKind>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let kind = loop {
                match s.read(&mut buf).await {
                    Ok(0) => break std::io::ErrorKind::UnexpectedEof,
                    Ok(_) => continue,
                    Err(e) => break e.kind(),
                }
            };
            let _ = tx.send(kind);
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn direction_picks_which_side_sees_the_reset() {
        use std::io::ErrorKind::{ConnectionReset, UnexpectedEof};
        for (direction, client_sees, server_sees) in [
            (Direction::Both, ConnectionReset, ConnectionReset),
            (Direction::Downstream, ConnectionReset, UnexpectedEof),
            (Direction::Upstream, UnexpectedEof, ConnectionReset),
        ] {
            let (server, seen) = watching_server().await;
            let mut f = fault(NetworkFaultKind::Reset, Duration::from_millis(100), None);
            f.direction = direction;
            let h = Harness::start(vec![f], 1, server, false).await;
            let mut s = TcpStream::connect(h.addr()).await.unwrap();
            let mut buf = [0u8; 8];
            let client = match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .unwrap()
            {
                Ok(0) => UnexpectedEof,
                Ok(_) => panic!("no data expected"),
                Err(e) => e.kind(),
            };
            let server = tokio::time::timeout(Duration::from_secs(3), seen)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (client, server),
                (client_sees, server_sees),
                "{direction:?}"
            );
            h.stop().await;
        }
    }
}
