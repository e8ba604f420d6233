//! `ws_close`: at each firing, write a Close frame with `code` and `reason` towards the
//! client (`downstream`), the server (`upstream`) or both, then close: what a proxy or a
//! load balancer going away does (1001), or a server restarting (1012) or overloaded
//! (1013), without touching the server.
//!
//! The frame goes between two frames (a close may interleave a fragmented message);
//! nothing the source sends after it is written. Once it is out: one way, the whole
//! connection closes with a FIN; both ways, each direction closes after its own frame.
//! The peer answers with its own close, which finds the shim gone — as when the remote
//! end closes first and drops the connection. A connection that is not WebSocket (or no
//! longer followed) is closed without a frame. Picking, stagger and the ledger
//! (`close_sent`) are `Action::fire`'s; placing is the layer's (see `inject`).

use bytes::Bytes;

use super::frame::{Frame, OpCode, close_payload};

/// The close frame, masked with `mask` (client → server) or not.
pub(crate) fn frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Bytes {
    Frame::new(true, 0, OpCode::Close, &close_payload(code, reason), mask).raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{LIMIT, fault};
    use crate::shim::ws::frame::{Parsed, parse};
    use crate::shim::ws::tests::util::{self, Seen, WsProbe, text};
    use std::time::Duration;

    fn close_fault(code: u16, direction: Direction) -> crate::scenario::NetworkFault {
        let kind = NetworkFaultKind::WsClose {
            code,
            reason: "shim says bye".into(),
        };
        let mut f = fault(kind, Duration::from_millis(150), None);
        f.direction = direction;
        f
    }

    #[test]
    fn the_frame_is_a_valid_close() {
        let raw = frame(4001, "bye", Some([5, 6, 7, 8]));
        let Ok(Parsed::Frame(f, n)) = parse(&raw, 125) else {
            panic!("decodes")
        };
        assert_eq!(
            (n, f.header.opcode, f.header.fin),
            (raw.len(), OpCode::Close, true)
        );
        assert_eq!(&f.payload()[..], b"\x0f\xa1bye");
    }

    #[tokio::test]
    async fn the_client_gets_a_close_with_the_code_then_the_end() {
        let (h, mut ws) = util::through_shim(vec![close_fault(1012, Direction::Downstream)]).await;
        ws.send(text("before")).await;
        assert_eq!(ws.next().await, WsProbe::Text("before".into()));
        assert_eq!(
            ws.next().await,
            WsProbe::Close(Some(1012), "shim says bye".into())
        );
        assert_eq!(ws.next().await, WsProbe::Ended);
        assert!(h.board.last(0).is_some());
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["close_sent"], 1);
    }

    #[tokio::test]
    async fn a_connection_that_is_not_websocket_is_closed_without_a_frame() {
        use crate::shim::test_util::{Harness, echo_server, read_for};
        use tokio::io::AsyncWriteExt;
        let echo = echo_server().await;
        let h = Harness::start(vec![close_fault(1001, Direction::Both)], 1, echo, false).await;
        let mut s = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nhello")
            .await
            .unwrap();
        let (got, end) = read_for(&mut s, LIMIT).await;
        assert!(got.ends_with(b"hello"), "only the echo: {got:?}");
        assert!(matches!(end, Some(Ok(()))), "a FIN: {end:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn both_ways_the_server_reads_a_masked_close_too() {
        let server = util::server().await;
        let (h, mut ws) =
            util::through_shim_to(vec![close_fault(4002, Direction::Both)], server.addr).await;
        let mut seen = server.seen;
        assert_eq!(
            ws.next().await,
            WsProbe::Close(Some(4002), "shim says bye".into())
        );
        // tungstenite refuses an unmasked client frame: the server reading the code means
        // the shim masked it.
        let got = tokio::time::timeout(LIMIT, async {
            loop {
                match seen.recv().await {
                    Some(Seen::Close(code)) => return code,
                    Some(_) => continue,
                    None => panic!("server saw no close"),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, Some(4002));
        h.stop().await;
    }
}
