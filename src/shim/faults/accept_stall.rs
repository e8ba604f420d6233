//! `accept_stall`: while the window is open, the chosen new connections are accepted and
//! then left alone: never read, never dialed. The kernel completes the TCP handshake and
//! buffers what the client sends, so its connect succeeds and its WebSocket handshake (or
//! any first request) times out — a server whose accept loop or event loop hangs, which a
//! refused connection does not reproduce (Toxiproxy #72, #123).
//!
//! A stalled connection is held until the fault's window closes (or is withdrawn, or the
//! shim stops), then reset: the stall never turns into a late, surprising answer. A
//! client that gives up first closes its side; the shim, never reading, learns it only
//! then. Connections already forwarding are untouched.
//!
//! Each stall is a `FaultTouched { action: "stalled" }` and marks the client's touch board
//! slot (the handshake started failing then).

use tokio_util::sync::CancellationToken;

use crate::shim::Shared;

/// Waits while fault `plan` has a window open (or until `token` is cancelled).
pub(crate) async fn hold(shared: &Shared, plan: usize, token: &CancellationToken) {
    let mut rx = shared.active.subscribe();
    loop {
        let open = rx.borrow_and_update().open.iter().any(|o| o.plan == plan);
        if !open {
            return;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::NetworkFaultKind;
    use crate::shim::test_util::{
        Harness, LIMIT, connect_as, echo_server, fault, read_for, roundtrip,
    };
    use std::io::ErrorKind;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn the_handshake_gets_no_answer_until_the_window_ends_then_a_reset() {
        let echo = echo_server().await;
        let f = fault(
            NetworkFaultKind::AcceptStall,
            Duration::from_millis(100),
            Some(Duration::from_millis(500)),
        );
        let h = Harness::start(vec![f], 1, echo, false).await;
        let mut before = TcpStream::connect(h.addr()).await.unwrap();
        roundtrip(&mut before, b"early").await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(150))).await;
        let mut s = TcpStream::connect(h.addr()).await.expect("accepted");
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let (got, end) = read_for(&mut s, Duration::from_millis(300)).await;
        assert!(got.is_empty() && end.is_none(), "silence: {got:?} {end:?}");
        roundtrip(&mut before, b"open ones flow").await;
        // The window closes at 600 ms: the stalled connection is reset then.
        let (got, end) = read_for(&mut s, LIMIT).await;
        let at = h.clock.elapsed();
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(
            end.expect("ended").unwrap_err().kind(),
            ErrorKind::ConnectionReset
        );
        assert!(at >= Duration::from_millis(580), "reset at {at:?}");
        let mut after = TcpStream::connect(h.addr()).await.unwrap();
        roundtrip(&mut after, b"served again").await;
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["stalled"], 1);
    }

    #[tokio::test]
    async fn identified_clients_are_stalled_after_their_head() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::AcceptStall,
            Duration::ZERO,
            Some(Duration::from_secs(5)),
        );
        f.connections = crate::scenario::Connections::Clients(vec![3]);
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut fine = connect_as(h.addr(), 2).await;
        roundtrip(&mut fine, b"ok").await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(&crate::shim::test_util::head(3)).await.unwrap();
        let (got, end) = read_for(&mut s, Duration::from_millis(300)).await;
        assert!(got.is_empty() && end.is_none(), "{got:?} {end:?}");
        assert!(h.board.last(3).is_some());
        h.stop().await;
    }
}
