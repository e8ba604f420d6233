//! `ws_oversize`: at each firing, write one binary frame whose payload is one byte over
//! `bytes` — a peer's frame or message limit — towards the client, the server or both, to
//! test that the peer refuses it cleanly (tungstenite: a capacity error; a server: close
//! 1009) rather than buffering it or crashing.
//!
//! The payload is really sent (zeros; the mask pattern upstream, as zeros masked), from
//! one shared 64 KiB filler, so a peer with a higher limit reads a whole, valid frame
//! and the stream goes on. It goes between two messages. The ledger's action is
//! `oversize_sent`.

use bytes::{Bytes, BytesMut};

use super::frame::{Header, OpCode, apply_mask, put_header};

/// The filler's size: a multiple of 4, so every piece starts at mask offset 0.
const FILL: usize = 64 * 1024;
static ZEROS: [u8; FILL] = [0; FILL];

/// The frame's bytes: the header, then the payload in filler-sized pieces.
pub(crate) fn frame(limit: u64, mask: Option<[u8; 4]>) -> Vec<Bytes> {
    let len = limit.saturating_add(1);
    let header = Header {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask,
        len,
    };
    let mut head = BytesMut::with_capacity(header.size());
    put_header(&header, &mut head);
    let fill = match mask {
        None => Bytes::from_static(&ZEROS),
        Some(key) => {
            let mut pattern = vec![0u8; FILL];
            apply_mask(&mut pattern, key, 0);
            Bytes::from(pattern)
        }
    };
    let mut chunks = vec![head.freeze()];
    let mut left = len;
    while left > 0 {
        let n = left.min(FILL as u64) as usize;
        chunks.push(fill.slice(..n));
        left -= n as u64;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::fault;
    use crate::shim::ws::frame::{Parsed, parse};
    use crate::shim::ws::tests::util::{self, MAX_FRAME, WsProbe, text};
    use std::time::Duration;

    #[test]
    fn the_frame_is_one_byte_over_and_masked_zeros_upstream() {
        let key = [1, 2, 3, 4];
        let chunks = frame(200_000, Some(key));
        let raw: Bytes = chunks.concat().into();
        let Ok(Parsed::Frame(f, n)) = parse(&raw, u64::MAX) else {
            panic!("decodes")
        };
        assert_eq!(
            (n, f.header.len, f.header.mask),
            (raw.len(), 200_001, Some(key))
        );
        assert!(f.payload().iter().all(|b| *b == 0));
        let plain: Bytes = frame(3, None).concat().into();
        assert_eq!(&plain[..], &[0x82, 4, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn the_client_reports_a_capacity_error() {
        let mut f = fault(
            NetworkFaultKind::WsOversize { bytes: MAX_FRAME },
            Duration::from_millis(100),
            None,
        );
        f.direction = Direction::Downstream;
        let (h, mut ws) = util::through_shim(vec![f]).await;
        ws.send(text("before")).await;
        assert_eq!(ws.next().await, WsProbe::Text("before".into()));
        match ws.next().await {
            WsProbe::Failed(e) => assert!(e.starts_with("Capacity"), "{e}"),
            other => panic!("expected a capacity error, got {other:?}"),
        }
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["oversize_sent"], 1);
    }
}
