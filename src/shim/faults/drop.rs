//! `drop`: discard chunks (`unit: chunk`) or single bytes (`unit: byte`) with
//! `probability`, in bursts when `correlation` > 0.
//!
//! Bursts are a two-state chain over the decisions, as netem's correlated loss:
//! after a drop the next one is dropped with `correlation + (1 − correlation)·p`, after a
//! kept one with `(1 − correlation)·p`. The long-run share dropped stays `p`; the mean
//! burst is `1 / ((1 − correlation)(1 − p))` decisions long. The first decision of a
//! window uses `p`.
//!
//! This is not packet loss: TCP would retransmit a lost packet, while a byte stream with a
//! hole in it is corrupt. A WebSocket peer sees a broken frame, which is what this fault
//! tests (research notes §8.1). Byte decisions draw one number per byte in stream order,
//! so they do not depend on how the stream happened to be cut into reads: the same seed
//! drops the same bytes.

use bytes::{Bytes, BytesMut};
use rand::RngExt;

use super::{Acted, Chunk, Stage};
use crate::rng::Rng;
use crate::scenario::DropUnit;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub probability: f64,
    pub unit: DropUnit,
    pub correlation: f64,
}

/// The drop stage of one link for one window.
pub(crate) struct Loss {
    spec: Spec,
    rng: Rng,
    /// Whether the previous decision dropped; `None` before the first.
    last: Option<bool>,
}

impl Loss {
    pub fn new(spec: &Spec, rng: Rng) -> Self {
        Self {
            spec: spec.clone(),
            rng,
            last: None,
        }
    }

    /// The next decision: true to drop.
    fn roll(&mut self) -> bool {
        let (p, c) = (self.spec.probability, self.spec.correlation);
        let chance = match self.last {
            None => p,
            Some(true) => c + (1.0 - c) * p,
            Some(false) => (1.0 - c) * p,
        };
        let drop = self.rng.random::<f64>() < chance;
        self.last = Some(drop);
        drop
    }

    fn bytes(&mut self, data: &Bytes) -> (Option<Bytes>, usize) {
        let mut kept: Option<BytesMut> = None;
        for (i, &b) in data.iter().enumerate() {
            match (self.roll(), &mut kept) {
                (true, None) => kept = Some(BytesMut::from(&data[..i])),
                (true, Some(_)) => {}
                (false, Some(k)) => k.extend_from_slice(&[b]),
                (false, None) => {}
            }
        }
        match kept {
            None => (Some(data.clone()), 0),
            Some(k) => {
                let dropped = data.len() - k.len();
                ((!k.is_empty()).then(|| k.freeze()), dropped)
            }
        }
    }
}

impl Stage for Loss {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        match self.spec.unit {
            DropUnit::Chunk => {
                if self.roll() {
                    return Some(chunk.data.len());
                }
                out.push(chunk);
                None
            }
            DropUnit::Byte => {
                let (kept, dropped) = self.bytes(&chunk.data);
                if let Some(data) = kept {
                    chunk.data = data;
                    out.push(chunk);
                }
                (dropped > 0).then_some(dropped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, connect_as, echo_server, fault, read_for, roundtrip};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    fn loss(p: f64, unit: DropUnit, c: f64, seed: u64) -> Loss {
        let spec = Spec {
            probability: p,
            unit,
            correlation: c,
        };
        Loss::new(&spec, rng::rng(seed, "test", 0))
    }

    fn decisions(l: &mut Loss, n: usize) -> Vec<bool> {
        (0..n).map(|_| l.roll()).collect()
    }

    #[test]
    fn independent_drops_keep_the_probability() {
        let d = decisions(&mut loss(0.3, DropUnit::Chunk, 0.0, 1), 20_000);
        let rate = d.iter().filter(|x| **x).count() as f64 / d.len() as f64;
        assert!((rate - 0.3).abs() < 0.02, "{rate}");
        assert!(
            decisions(&mut loss(1.0, DropUnit::Chunk, 0.5, 1), 100)
                .iter()
                .all(|x| *x)
        );
        assert!(
            !decisions(&mut loss(0.0, DropUnit::Chunk, 0.9, 1), 100)
                .iter()
                .any(|x| *x)
        );
    }

    #[test]
    fn correlation_makes_bursts_and_keeps_the_long_run_share() {
        let d = decisions(&mut loss(0.2, DropUnit::Chunk, 0.6, 2), 50_000);
        let rate = d.iter().filter(|x| **x).count() as f64 / d.len() as f64;
        assert!((rate - 0.2).abs() < 0.02, "rate {rate}");
        let after_drop: Vec<bool> = d.windows(2).filter(|w| w[0]).map(|w| w[1]).collect();
        let stay = after_drop.iter().filter(|x| **x).count() as f64 / after_drop.len() as f64;
        // P(drop | dropped) = 0.6 + 0.4 · 0.2 = 0.68.
        assert!((stay - 0.68).abs() < 0.03, "P(drop | dropped) {stay}");
    }

    #[test]
    fn byte_drops_keep_order_and_do_not_depend_on_how_reads_were_cut() {
        let data: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let t0 = Instant::now();
        let run = |pieces: usize| {
            let mut l = loss(0.25, DropUnit::Byte, 0.3, 3);
            let mut out = Vec::new();
            let mut dropped = 0;
            for part in data.chunks(data.len() / pieces) {
                let chunk = Chunk::new(Bytes::copy_from_slice(part), t0);
                dropped += l.push(chunk, &mut out).unwrap_or(0);
            }
            let kept: Vec<u8> = out.iter().flat_map(|c| c.data.to_vec()).collect();
            (kept, dropped)
        };
        let (whole, dropped) = run(1);
        assert_eq!(run(10), (whole.clone(), dropped));
        assert_eq!(whole.len() + dropped, data.len());
        assert!((800..1200).contains(&dropped), "{dropped}");
        // A subsequence of the input: drops only, nothing reordered.
        let mut it = data.iter();
        assert!(whole.iter().all(|b| it.any(|x| x == b)));
    }

    #[tokio::test]
    async fn dropped_chunks_never_arrive_and_the_client_is_marked() {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Drop {
                probability: 1.0,
                unit: DropUnit::Chunk,
                correlation: 0.0,
            },
            Duration::from_millis(200),
            Some(Duration::from_millis(300)),
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut s = connect_as(h.addr(), 3).await;
        roundtrip(&mut s, b"before").await;
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(250))).await;
        s.write_all(b"lost").await.unwrap();
        let (got, end) = read_for(&mut s, Duration::from_millis(150)).await;
        assert!(got.is_empty() && end.is_none(), "{got:?} {end:?}");
        let touched = h.board.last(3).expect("first drop marks the client");
        assert!((200_000..400_000).contains(&touched), "{touched}");
        tokio::time::sleep_until(h.clock.at(Duration::from_millis(550))).await;
        roundtrip(&mut s, b"kept").await;
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["dropped"], 1);
        assert_eq!(ledger[0].bytes_affected, 4);
    }

    /// Sends 3000 bytes through a byte-dropping shim; what comes back.
    async fn byte_run(seed: u64) -> Vec<u8> {
        let echo = echo_server().await;
        let mut f = fault(
            NetworkFaultKind::Drop {
                probability: 0.3,
                unit: DropUnit::Byte,
                correlation: 0.0,
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], seed, echo, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        let (mut r, mut w) = s.split();
        for part in (0..3000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .chunks(300)
        {
            w.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w.shutdown().await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut back))
            .await
            .unwrap()
            .unwrap();
        let ledger = h.stop().await;
        assert_eq!(ledger[0].bytes_affected, 3000 - back.len() as u64);
        back
    }

    #[tokio::test]
    async fn the_same_seed_drops_the_same_bytes() {
        let (a, b, c) = tokio::join!(byte_run(5), byte_run(5), byte_run(6));
        assert!((1800..2400).contains(&a.len()), "{}", a.len());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
