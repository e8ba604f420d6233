//! `latency`: delay each chunk by `latency` ± `jitter`, order kept.
//!
//! The delay is counted from each chunk's own arrival (`due += delay` on a chunk whose
//! `due` starts at its arrival), so back-to-back chunks are each delayed once rather than
//! queuing behind each other's sleeps (noxious's serial delays are the mistake avoided).
//! Order is the link's job: a chunk drawn a shorter delay than the one before waits for it.
//!
//! Distributions of one chunk's delay:
//! - `uniform`: `latency + U[-jitter, +jitter]` (as Toxiproxy).
//! - `normal`: `latency + N(0, σ = jitter)`.
//! - `pareto`: a long tail with **mean `latency` and standard deviation `jitter`**: shape
//!   `α = 1 + √(1 + (latency/jitter)²)`, scale `latency·(α−1)/α` (the minimum delay).
//!   Unlike netem's table we keep the mean at `latency`, so switching distribution changes
//!   the shape of the delays, not their average.
//!
//! Negative draws are sent at once (delay 0); draws are capped at an hour.

use std::time::Duration;

use rand::RngExt;

use super::{Acted, Chunk, Stage};
use crate::rng::Rng;
use crate::scenario::Distribution;

/// Longest single delay, so a freak pareto draw cannot overflow a deadline.
const MAX_DELAY_S: f64 = 3600.0;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub latency: Duration,
    pub jitter: Duration,
    pub distribution: Distribution,
}

/// The latency stage of one link for one window.
pub(crate) struct Latency {
    spec: Spec,
    rng: Rng,
}

impl Latency {
    pub fn new(spec: Spec, rng: Rng) -> Self {
        Self { spec, rng }
    }

    /// The delay of the next chunk.
    pub fn sample(&mut self) -> Duration {
        let l = self.spec.latency.as_secs_f64();
        let j = self.spec.jitter.as_secs_f64();
        if j == 0.0 {
            return self.spec.latency;
        }
        let s = match self.spec.distribution {
            Distribution::Uniform => l + self.rng.random_range(-j..=j),
            Distribution::Normal => l + j * self.standard_normal(),
            Distribution::Pareto if l == 0.0 => 0.0,
            Distribution::Pareto => {
                let cv = j / l;
                let alpha = 1.0 + (1.0 + 1.0 / (cv * cv)).sqrt();
                let scale = l * (alpha - 1.0) / alpha;
                scale / self.open_unit().powf(1.0 / alpha)
            }
        };
        Duration::from_secs_f64(s.clamp(0.0, MAX_DELAY_S))
    }

    /// Uniform in (0, 1]: safe to take a logarithm or a negative power of.
    fn open_unit(&mut self) -> f64 {
        1.0 - self.rng.random::<f64>()
    }

    /// Box–Muller: one standard normal draw from two uniforms.
    fn standard_normal(&mut self) -> f64 {
        let u1 = self.open_unit();
        let u2 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl Stage for Latency {
    fn push(&mut self, mut chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        chunk.due += self.sample();
        let n = chunk.data.len();
        out.push(chunk);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, connect_as, echo_server, fault, roundtrip};
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    fn stage(latency_ms: u64, jitter_ms: u64, distribution: Distribution, seed: u64) -> Latency {
        let spec = Spec {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            distribution,
        };
        Latency::new(spec, rng::rng(seed, "test", 0))
    }

    fn stats(s: &mut Latency, n: usize) -> (f64, f64, f64, f64) {
        let xs: Vec<f64> = (0..n).map(|_| s.sample().as_secs_f64() * 1000.0).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let min = xs.iter().copied().fold(f64::MAX, f64::min);
        let max = xs.iter().copied().fold(0.0, f64::max);
        (mean, sd, min, max)
    }

    #[test]
    fn uniform_stays_within_jitter_of_latency() {
        let (mean, _, min, max) = stats(&mut stage(100, 40, Distribution::Uniform, 1), 10_000);
        assert!(min >= 60.0 && max <= 140.0, "min {min} max {max}");
        assert!((mean - 100.0).abs() < 2.0, "mean {mean}");
    }

    #[test]
    fn normal_has_sigma_jitter() {
        let (mean, sd, _, _) = stats(&mut stage(200, 20, Distribution::Normal, 2), 20_000);
        assert!((mean - 200.0).abs() < 1.5, "mean {mean}");
        assert!((sd - 20.0).abs() < 1.5, "sd {sd}");
    }

    #[test]
    fn pareto_keeps_the_mean_and_has_a_tail() {
        let (mean, _, min, max) = stats(&mut stage(100, 50, Distribution::Pareto, 3), 50_000);
        assert!((mean - 100.0).abs() < 5.0, "mean {mean}");
        // α = 1 + √5 ≈ 3.24: the minimum is latency·(α−1)/α ≈ 69 ms.
        assert!((69.0..72.0).contains(&min), "min {min}");
        assert!(max > 250.0, "max {max}");
    }

    #[test]
    fn no_jitter_is_exact_and_seeds_replay() {
        let mut s = stage(80, 0, Distribution::Normal, 4);
        assert!((0..100).all(|_| s.sample() == Duration::from_millis(80)));
        let draw = |seed| {
            let mut s = stage(80, 30, Distribution::Uniform, seed);
            (0..8).map(|_| s.sample()).collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
    }

    #[test]
    fn delay_counts_from_each_chunks_arrival() {
        let mut s = stage(50, 0, Distribution::Uniform, 1);
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..3u64 {
            let at = t0 + Duration::from_millis(i);
            s.push(Chunk::new(Bytes::from_static(b"x"), at), &mut out);
        }
        let dues: Vec<_> = out.iter().map(|c| c.due - t0).collect();
        assert_eq!(dues, [50, 51, 52].map(Duration::from_millis));
    }

    fn latency_fault(ms: u64, direction: Direction) -> crate::scenario::NetworkFault {
        let mut f = fault(
            NetworkFaultKind::Latency {
                latency: Duration::from_millis(ms),
                jitter: Duration::ZERO,
                distribution: Distribution::Uniform,
            },
            Duration::ZERO,
            None,
        );
        f.direction = direction;
        f
    }

    #[tokio::test]
    async fn latency_fault_delays_round_trips() {
        let echo = echo_server().await;
        let h = Harness::start(vec![latency_fault(150, Direction::Both)], 1, echo, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        let rtt = roundtrip(&mut s, b"ping").await;
        // Both directions delayed: at least 2 × 150 ms, and nowhere near serial build-up.
        assert!(rtt >= Duration::from_millis(290), "rtt {rtt:?}");
        assert!(rtt < Duration::from_millis(1500), "rtt {rtt:?}");
        assert_eq!(h.handle.active_faults(), vec!["latency#0".to_string()]);
        let ledger = h.stop().await;
        assert_eq!(
            ledger[0].actions["delayed"], 1,
            "one touch per connection per window"
        );
    }

    #[tokio::test]
    async fn only_the_listed_clients_are_delayed() {
        let echo = echo_server().await;
        let mut f = latency_fault(150, Direction::Both);
        f.connections = crate::scenario::Connections::Clients(vec![1]);
        let h = Harness::start(vec![f], 1, echo, true).await;
        let mut spared = connect_as(h.addr(), 0).await;
        let mut chosen = connect_as(h.addr(), 1).await;
        let (fast, slow) = (
            roundtrip(&mut spared, b"a").await,
            roundtrip(&mut chosen, b"b").await,
        );
        assert!(fast < Duration::from_millis(100), "client 0: {fast:?}");
        assert!(slow >= Duration::from_millis(290), "client 1: {slow:?}");
        let ledger = h.stop().await;
        assert_eq!(ledger[0].connections_touched, 1);
    }

    #[tokio::test]
    async fn back_to_back_chunks_are_delayed_once_each_and_in_order() {
        let echo = echo_server().await;
        let h = Harness::start(
            vec![latency_fault(200, Direction::Upstream)],
            1,
            echo,
            false,
        )
        .await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        let t0 = Instant::now();
        let mut sent = Vec::new();
        for i in 0..10u8 {
            let chunk = [i; 100];
            s.write_all(&chunk).await.unwrap();
            sent.extend_from_slice(&chunk);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut got = vec![0u8; sent.len()];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got)).await;
        read.unwrap().unwrap();
        let elapsed = t0.elapsed();
        assert_eq!(got, sent, "order kept");
        // Serial delays would take ≥ 10 × 200 ms; measured from arrival it is ≈ 250 ms.
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
        h.stop().await;
    }
}
