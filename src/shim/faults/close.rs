//! `close`: end the chosen connections with a FIN at each firing, like a server or a
//! load balancer hanging up cleanly (where `reset` is the crash).
//!
//! `direction` picks which streams end: `both` (default) — the client and the server each
//! read end of stream; `downstream` — only the client does (server → client ends), while
//! what the client still sends reaches the server; `upstream` — only the server does. It
//! is a half-close: the side told reads EOF, the other stream flows until its own side
//! closes it.
//!
//! Bytes the shim still holds for a closed stream (delayed, throttled) are dropped: the
//! cut is at the firing. What the closed stream's source sends afterwards is read and
//! discarded until it closes too (see `link`), so neither peer is answered with a reset.
//! Picking, stagger and the ledger are `Action::fire`'s; the FIN is the link's.

use crate::scenario::Direction;
use crate::shim::Shared;

/// Closes the direction(s) `direction` of connection `conn`; false if it already ended
/// or was closed already.
pub(crate) fn hit(shared: &Shared, conn: u64, direction: Direction) -> bool {
    shared.registry.close(conn, direction)
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{
        Harness, LIMIT, Saw, fault, head, read_for, recording_server, until_end,
    };
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn closed_at_100ms(direction: Direction) -> (Harness, tokio::net::TcpStream, Recv) {
        let (server, seen) = recording_server().await;
        let mut f = fault(NetworkFaultKind::Close, Duration::from_millis(100), None);
        f.direction = direction;
        let h = Harness::start(vec![f], 1, server, true).await;
        let s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        (h, s, seen)
    }

    type Recv = tokio::sync::mpsc::UnboundedReceiver<(usize, tokio::time::Instant, Saw)>;

    #[tokio::test]
    async fn both_sides_read_end_of_stream() {
        let (h, mut s, mut seen) = closed_at_100ms(Direction::Both).await;
        s.write_all(&head(5)).await.unwrap();
        let (got, end) = read_for(&mut s, LIMIT).await;
        assert!(got.is_empty(), "{got:?}");
        assert!(matches!(end, Some(Ok(()))), "client: FIN, not {end:?}");
        let (data, end) = until_end(&mut seen).await;
        assert_eq!(data, head(5));
        assert_eq!(end.map(|e| e.1), Some(Saw::Eof), "server: FIN");
        let touched = h.board.last(5).expect("a close breaks the link");
        assert!(touched >= 100_000, "{touched}");
        let ledger = h.stop().await;
        assert_eq!(
            (ledger[0].actions["closed"], ledger[0].connections_touched),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn downstream_ends_the_clients_stream_and_the_server_still_hears_it() {
        let (h, mut s, mut seen) = closed_at_100ms(Direction::Downstream).await;
        s.write_all(&head(1)).await.unwrap();
        let (_, end) = read_for(&mut s, LIMIT).await;
        assert!(matches!(end, Some(Ok(()))), "client: FIN, not {end:?}");
        s.write_all(b"still here").await.unwrap();
        s.shutdown().await.unwrap();
        let (data, end) = until_end(&mut seen).await;
        assert_eq!(data, [head(1), b"still here".to_vec()].concat());
        assert_eq!(end.map(|e| e.1), Some(Saw::Eof));
        h.stop().await;
    }

    #[tokio::test]
    async fn upstream_ends_the_servers_stream_and_its_answer_still_flows() {
        // The server answers only once it reads end of stream, then hangs up.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got).await;
            let _ = c
                .write_all(format!("bye after {}", got.len()).as_bytes())
                .await;
        });
        let mut f = fault(NetworkFaultKind::Close, Duration::from_millis(100), None);
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, server, false).await;
        let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let (got, end) = read_for(&mut s, LIMIT).await;
        assert_eq!(got, b"bye after 5");
        assert!(matches!(end, Some(Ok(()))), "{end:?}");
        h.stop().await;
    }
}
