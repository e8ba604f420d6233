//! `slicer`: cut each chunk into segments of `average_size ± size_variation` bytes
//! (uniform, inclusive; the last segment of a chunk is what is left), with `delay` between
//! segments.
//!
//! The segments of a direction leave at least `delay` apart, across chunks too: a chunk
//! arriving while the previous one is still trickling out waits for its turn, as on a
//! link that only carries small packets. With `delay: 0` the segments are written
//! separately but back to back, and the receiving kernel may join them again.
//!
//! Good for frame-reassembly bugs: a WebSocket frame split across reads. Cutting a
//! `Bytes` copies nothing. Sizes come from the link's RNG, one draw per segment.

use std::time::Duration;

use rand::RngExt;
use tokio::time::Instant;

use super::{Acted, Chunk, Stage};
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub average_size: u64,
    pub size_variation: u64,
    pub delay: Duration,
}

/// The slicer stage of one link for one window.
pub(crate) struct Slicer {
    /// Segment sizes drawn from `min..=max`.
    min: usize,
    max: usize,
    delay: Duration,
    rng: Rng,
    /// When the next segment may leave.
    next: Option<Instant>,
}

impl Slicer {
    pub fn new(spec: &Spec, rng: Rng) -> Self {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let variation = spec.size_variation.min(spec.average_size.saturating_sub(1));
        Self {
            min: size(spec.average_size - variation).max(1),
            max: size(spec.average_size.saturating_add(variation)),
            delay: spec.delay,
            rng,
            next: None,
        }
    }
}

impl Stage for Slicer {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        let n = chunk.data.len();
        let mut segments = 0;
        while !chunk.data.is_empty() {
            let size = self.rng.random_range(self.min..=self.max);
            let data = chunk.data.split_to(size.min(chunk.data.len()));
            let due = self.next.map_or(chunk.due, |next| next.max(chunk.due));
            self.next = Some(due + self.delay);
            out.push(Chunk {
                data,
                arrival: chunk.arrival,
                due,
            });
            segments += 1;
        }
        // A chunk that fits one segment passed as it came (if maybe later).
        (segments > 1).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, Saw, fault, recording_server};
    use bytes::Bytes;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    fn slicer(average: u64, variation: u64, delay_ms: u64, seed: u64) -> Slicer {
        let spec = Spec {
            average_size: average,
            size_variation: variation,
            delay: Duration::from_millis(delay_ms),
        };
        Slicer::new(&spec, rng::rng(seed, "test", 0))
    }

    fn cut(s: &mut Slicer, data: &[u8], at: Instant) -> Vec<Chunk> {
        let mut out = Vec::new();
        s.push(Chunk::new(Bytes::copy_from_slice(data), at), &mut out);
        out
    }

    #[test]
    fn segments_stay_within_the_variation_and_keep_the_bytes() {
        let data: Vec<u8> = (0..=255).collect();
        let mut s = slicer(10, 3, 0, 1);
        let out = cut(&mut s, &data, Instant::now());
        let (last, rest) = out.split_last().unwrap();
        assert!(rest.iter().all(|c| (7..=13).contains(&c.data.len())));
        assert!(last.data.len() <= 13);
        let joined: Vec<u8> = out.iter().flat_map(|c| c.data.to_vec()).collect();
        assert_eq!(joined, data);
        let sizes = |seed| {
            let mut s = slicer(10, 3, 0, seed);
            cut(&mut s, &data, Instant::now())
                .iter()
                .map(|c| c.data.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(4), sizes(4));
        assert_ne!(sizes(4), sizes(5));
    }

    #[test]
    fn segments_leave_delay_apart_across_chunks() {
        let mut s = slicer(4, 0, 10, 1);
        let t0 = Instant::now();
        let mut out = cut(&mut s, &[1; 12], t0);
        out.extend(cut(&mut s, &[2; 4], t0 + Duration::from_millis(5)));
        let dues: Vec<_> = out.iter().map(|c| c.due - t0).collect();
        assert_eq!(dues, [0, 10, 20, 30].map(Duration::from_millis));
        // Long after, a segment leaves at once.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(cut(&mut s, &[3; 2], later)[0].due, later);
        let mut small = slicer(4, 0, 10, 1);
        let mut out = Vec::new();
        let one = small.push(Chunk::new(Bytes::from_static(b"abc"), t0), &mut out);
        assert_eq!(one, None, "a chunk that fits one segment is not acted on");
    }

    #[tokio::test]
    async fn the_server_reads_the_message_in_spaced_segments() {
        let (server, mut seen) = recording_server().await;
        let mut f = fault(
            NetworkFaultKind::Slicer {
                average_size: 8,
                size_variation: 0,
                delay: Duration::from_millis(25),
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, server, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        let msg: Vec<u8> = (0..40).collect();
        s.write_all(&msg).await.unwrap();
        let mut reads = Vec::new();
        let mut got = Vec::new();
        while got.len() < msg.len() {
            let (_, at, saw) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
                .await
                .unwrap()
                .unwrap();
            let Saw::Data(d) = saw else { panic!("{saw:?}") };
            got.extend_from_slice(&d);
            reads.push((at, d.len()));
        }
        assert_eq!(got, msg);
        // Five segments 25 ms apart: the reads span about 100 ms, however the server's
        // reads happen to join them.
        let span = reads.last().unwrap().0 - reads[0].0;
        assert!(reads.len() >= 2, "{reads:?}");
        assert!(span >= Duration::from_millis(70), "{span:?}");
        assert!(reads.iter().all(|(_, n)| *n < msg.len()), "{reads:?}");
        let ledger = h.stop().await;
        assert_eq!(
            (ledger[0].actions["sliced"], ledger[0].bytes_affected),
            (1, 40)
        );
    }
}
