//! `corrupt`: each byte is chosen with `probability`, and one random bit of each chosen
//! byte is flipped.
//!
//! The gap to the next chosen byte is drawn from the geometric distribution (one draw per
//! corrupted byte, not one per byte), carried across chunks, so the same seed corrupts the
//! same bytes of the stream however it was cut into reads. A chunk is copied only when a
//! byte in it is corrupted.

use bytes::BytesMut;
use rand::RngExt;

use super::{Acted, Chunk, Stage};
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
}

/// The corrupt stage of one link for one window.
pub(crate) struct Corrupt {
    probability: f64,
    rng: Rng,
    /// Bytes to let through before the next corrupted one; drawn on first use.
    gap: Option<u64>,
}

impl Corrupt {
    pub fn new(spec: &Spec, rng: Rng) -> Self {
        Self {
            probability: spec.probability,
            rng,
            gap: None,
        }
    }

    /// Bytes before the next chosen one: failures before the first success of
    /// Bernoulli(p) trials.
    fn draw_gap(&mut self) -> u64 {
        let p = self.probability;
        if p >= 1.0 {
            return 0;
        }
        if p <= 0.0 {
            return u64::MAX;
        }
        let u = 1.0 - self.rng.random::<f64>(); // (0, 1]: safe to take the logarithm of
        let gap = (u.ln() / (1.0 - p).ln()).floor();
        if gap >= u64::MAX as f64 {
            u64::MAX
        } else {
            gap as u64
        }
    }
}

impl Stage for Corrupt {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        let len = chunk.data.len() as u64;
        let mut copy: Option<BytesMut> = None;
        let mut pos = 0u64;
        let mut flipped = 0;
        loop {
            let gap = match self.gap {
                Some(g) => g,
                None => self.draw_gap(),
            };
            if gap >= len - pos {
                self.gap = Some(gap - (len - pos));
                break;
            }
            pos += gap;
            let bytes = copy.get_or_insert_with(|| BytesMut::from(&chunk.data[..]));
            bytes[pos as usize] ^= 1 << self.rng.random_range(0..8u32);
            flipped += 1;
            pos += 1;
            self.gap = None;
        }
        if let Some(bytes) = copy {
            chunk.data = bytes.freeze();
        }
        out.push(chunk);
        (flipped > 0).then_some(flipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, connect_as, echo_server, fault};
    use bytes::Bytes;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    fn corrupt(p: f64, seed: u64) -> Corrupt {
        Corrupt::new(&Spec { probability: p }, rng::rng(seed, "test", 0))
    }

    /// Feeds `data` in `pieces` chunks; the output and the bytes reported corrupted.
    fn run(c: &mut Corrupt, data: &[u8], pieces: usize) -> (Vec<u8>, usize) {
        let (mut out, mut n) = (Vec::new(), 0);
        for part in data.chunks(data.len().div_ceil(pieces)) {
            n += c
                .push(
                    Chunk::new(Bytes::copy_from_slice(part), Instant::now()),
                    &mut out,
                )
                .unwrap_or(0);
        }
        (out.iter().flat_map(|c| c.data.to_vec()).collect(), n)
    }

    fn flipped_bits(a: &[u8], b: &[u8]) -> Vec<u32> {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x ^ y).count_ones())
            .filter(|n| *n > 0)
            .collect()
    }

    #[test]
    fn every_chosen_byte_has_exactly_one_bit_flipped() {
        let data = vec![0xA5u8; 1000];
        let (out, n) = run(&mut corrupt(1.0, 1), &data, 7);
        assert_eq!(n, 1000);
        assert_eq!(flipped_bits(&data, &out), vec![1; 1000]);
        let (out, n) = run(&mut corrupt(0.0, 1), &data, 7);
        assert_eq!((out, n), (data, 0));
    }

    #[test]
    fn the_rate_holds_and_reads_do_not_change_the_choice() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
        let (whole, n) = run(&mut corrupt(0.01, 2), &data, 1);
        assert!((850..1150).contains(&n), "{n}");
        assert_eq!(flipped_bits(&data, &whole).len(), n);
        assert_eq!(run(&mut corrupt(0.01, 2), &data, 37), (whole.clone(), n));
        assert_ne!(run(&mut corrupt(0.01, 3), &data, 1).0, whole);
    }

    #[tokio::test]
    async fn bytes_arrive_with_single_bit_flips_and_the_ledger_counts_them() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Corrupt { probability: 0.05 },
            Duration::from_millis(100),
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut s = connect_as(h.addr(), 4).await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(150))).await;
        let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).await.unwrap();
        let mut back = vec![0; data.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        let flips = flipped_bits(&data, &back);
        assert!(flips.iter().all(|n| *n == 1), "{flips:?}");
        assert!((100..320).contains(&flips.len()), "{}", flips.len());
        assert!(h.board.last(4).is_some(), "corruption breaks the link");
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["corrupted"], 1);
        assert_eq!(ledger[0].bytes_affected, flips.len() as u64);
    }
}
