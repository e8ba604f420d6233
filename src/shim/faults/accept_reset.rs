//! `accept_reset`: while the window is open, the chosen new connections are accepted and
//! reset at once (RST): the client's connect succeeds, then its first read or write fails
//! with "connection reset" — a crashing or overloaded server's accept queue, a load
//! balancer with no healthy backend. The server is never dialed. Connections already
//! forwarding are untouched (`partition` cuts those too).
//!
//! Each reset is a `FaultTouched { action: "reset" }` and marks the client's touch board
//! slot. With `identify_clients` the client's head is read first to know who it is (unless
//! the fault covers every connection); see `connect`.

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

    #[tokio::test]
    async fn new_connections_of_chosen_clients_are_reset_the_open_ones_flow() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::AcceptReset,
            Duration::from_millis(150),
            Some(Duration::from_millis(400)),
        );
        f.connections = Connections::Clients(vec![1]);
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut before = connect_as(h.addr(), 1).await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(200))).await;
        // Client 1's new connection: accepted, then reset, answered by nothing.
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(&head(1)).await.unwrap();
        let (got, end) = read_for(&mut s, LIMIT).await;
        let kind = end.expect("ended").unwrap_err().kind();
        assert!(
            got.is_empty() && kind == ErrorKind::ConnectionReset,
            "{got:?} {kind:?}"
        );
        assert!(h.board.last(1).is_some(), "a reset marks the client");
        // Another client, and client 1's open connection, are untouched.
        let mut other = connect_as(h.addr(), 2).await;
        roundtrip(&mut other, b"fine").await;
        roundtrip(&mut before, b"still").await;
        // After the window client 1 connects again.
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(600))).await;
        let mut after = connect_as(h.addr(), 1).await;
        roundtrip(&mut after, b"back").await;
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["reset"], 1);
    }

    #[tokio::test]
    async fn over_every_connection_it_resets_before_reading() {
        let echo = echo_server().await;
        let f = fault(NetworkFaultKind::AcceptReset, Duration::ZERO, None);
        let h = Harness::start(vec![f], 1, echo, true).await;
        // The reset may beat `connect` (which then fails) or come on the first read.
        let kind = match TcpStream::connect(h.addr()).await {
            Err(e) => e.kind(),
            Ok(mut s) => read_for(&mut s, LIMIT)
                .await
                .1
                .expect("reset")
                .unwrap_err()
                .kind(),
        };
        assert_eq!(kind, ErrorKind::ConnectionReset);
        h.stop().await;
    }
}
