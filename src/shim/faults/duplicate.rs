//! `duplicate`: each chunk is sent twice, back to back, with `probability`.
//!
//! The copy shares the chunk's buffer (no byte is copied) and is due with it. A repeated
//! chunk of a TCP stream is not a retransmission the kernel would drop: the receiver reads
//! the bytes twice, and a WebSocket peer sees a stray or repeated frame.

use rand::RngExt;

use super::{Acted, Chunk, Stage};
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
}

/// The duplicate stage of one link for one window.
pub(crate) struct Duplicate {
    probability: f64,
    rng: Rng,
}

impl Duplicate {
    pub fn new(spec: &Spec, rng: Rng) -> Self {
        Self {
            probability: spec.probability,
            rng,
        }
    }
}

impl Stage for Duplicate {
    fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        let twice = self.rng.random::<f64>() < self.probability;
        let n = chunk.data.len();
        if twice {
            out.push(chunk.clone());
        }
        out.push(chunk);
        twice.then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, echo_server, fault, read_for};
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    fn copies(p: f64, seed: u64, n: usize) -> Vec<usize> {
        let mut d = Duplicate::new(&Spec { probability: p }, rng::rng(seed, "test", 0));
        (0..n)
            .map(|i| {
                let mut out = Vec::new();
                let chunk = Chunk::new(Bytes::from(vec![i as u8; 3]), Instant::now());
                let acted = d.push(chunk.clone(), &mut out);
                assert!(out.iter().all(|c| *c == chunk));
                assert_eq!(acted.is_some(), out.len() == 2);
                out.len()
            })
            .collect()
    }

    #[test]
    fn chunks_come_out_once_or_twice_with_the_probability() {
        assert!(copies(1.0, 1, 50).iter().all(|n| *n == 2));
        assert!(copies(0.0, 1, 50).iter().all(|n| *n == 1));
        let twice = copies(0.25, 2, 10_000).iter().filter(|n| **n == 2).count();
        assert!((2_300..2_700).contains(&twice), "{twice}");
        assert_eq!(copies(0.5, 3, 64), copies(0.5, 3, 64));
    }

    #[tokio::test]
    async fn a_duplicated_chunk_is_read_twice() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Duplicate { probability: 1.0 },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, echo, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(b"abc").await.unwrap();
        let (got, end) = read_for(&mut s, Duration::from_millis(300)).await;
        assert_eq!((got.as_slice(), end.is_none()), (&b"abcabc"[..], true));
        let ledger = h.stop().await;
        assert_eq!(
            (ledger[0].actions["duplicated"], ledger[0].bytes_affected),
            (1, 3)
        );
    }
}
