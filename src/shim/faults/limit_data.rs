//! `limit_data`: let `bytes` bytes through in a direction, then close the connection with
//! a FIN on both sides — a deterministic cut, for example in the middle of a frame.
//!
//! Counted per connection and per direction (as Toxiproxy) from the moment the window
//! opens on that link; with `direction: both`, whichever direction reaches the limit first
//! closes the connection. The chunk that crosses the limit is cut at it. Once the bytes
//! let through are written (after any delay other faults add) both directions end as with
//! `close` (see `link`); nothing more passes meanwhile.
//!
//! The ledger's `FaultTouched { action: "limited" }` carries the bytes cut off; the cut
//! marks the touch board.

use super::{Acted, Chunk, Stage};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub bytes: u64,
}

/// The limit_data stage of one link for one window.
pub(crate) struct LimitData {
    left: u64,
    reached: bool,
}

impl LimitData {
    pub fn new(spec: &Spec) -> Self {
        Self {
            left: spec.bytes,
            reached: false,
        }
    }
}

impl Stage for LimitData {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        let n = chunk.data.len();
        if self.reached {
            return Some(n);
        }
        if (n as u64) < self.left {
            self.left -= n as u64;
            out.push(chunk);
            return None;
        }
        // `left` ≤ n here, so it fits a usize.
        let keep = self.left as usize;
        chunk.data.truncate(keep);
        self.left = 0;
        self.reached = true;
        if keep > 0 {
            out.push(chunk);
        }
        Some(n - keep)
    }

    fn closes(&self) -> bool {
        self.reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{
        Harness, LIMIT, Saw, fault, head, read_for, recording_server, until_end,
    };
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    fn feed(s: &mut LimitData, sizes: &[usize]) -> Vec<(usize, Acted, bool)> {
        sizes
            .iter()
            .map(|&n| {
                let mut out = Vec::new();
                let acted = s.push(
                    Chunk::new(Bytes::from(vec![1; n]), Instant::now()),
                    &mut out,
                );
                let passed = out.iter().map(|c| c.data.len()).sum();
                (passed, acted, s.closes())
            })
            .collect()
    }

    #[test]
    fn the_crossing_chunk_is_cut_and_nothing_passes_after() {
        let mut s = LimitData::new(&Spec { bytes: 10 });
        let got = feed(&mut s, &[4, 4, 4, 3]);
        assert_eq!(
            got,
            vec![
                (4, None, false),
                (4, None, false),
                (2, Some(2), true),
                (0, Some(3), true)
            ]
        );
        let mut exact = LimitData::new(&Spec { bytes: 8 });
        assert_eq!(
            feed(&mut exact, &[5, 3]),
            vec![(5, None, false), (3, Some(0), true)],
            "reaching the limit exactly closes too"
        );
    }

    #[tokio::test]
    async fn the_server_gets_exactly_the_limit_then_both_sides_are_closed() {
        let (server, mut seen) = recording_server().await;
        let mut f = fault(
            NetworkFaultKind::LimitData { bytes: 10 },
            Duration::from_millis(100),
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, server, true).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(&head(6)).await.unwrap();
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(150))).await;
        s.write_all(b"0123456789abcdefghijklmno").await.unwrap();
        let (data, end) = until_end(&mut seen).await;
        assert_eq!(data, [head(6), b"0123456789".to_vec()].concat());
        assert_eq!(end.map(|e| e.1), Some(Saw::Eof), "server: FIN");
        let (got, end) = read_for(&mut s, LIMIT).await;
        assert!(
            got.is_empty() && matches!(end, Some(Ok(()))),
            "client: {end:?}"
        );
        assert!(h.board.last(6).is_some(), "the cut marks the client");
        let ledger = h.stop().await;
        assert_eq!(
            (ledger[0].actions["limited"], ledger[0].bytes_affected),
            (1, 15)
        );
    }
}
