//! One direction of a proxied connection: read from one side, write to the other.
//!
//! Two paths:
//! - **fast**: no fault on this link and nothing queued. Read into one reused buffer and
//!   write it straight on: no allocation, no timer, one atomic load per chunk to notice
//!   the timeline changing.
//! - **faulted**: each chunk is copied out, stamped with its arrival, passed through the
//!   [`Chain`] of stages and queued until due. Reading goes on while chunks wait, so
//!   delays count from each chunk's arrival; a chunk is never written before an earlier
//!   one (`due` is raised to the previous chunk's). The link goes back to the fast path
//!   only once the queue is empty, so the switch never reorders data.
//!
//! The queue holds at most [`MAX_QUEUED`] bytes; beyond that the link stops reading and
//! TCP backpressure reaches the sender, as it would on a slow real link.
//!
//! End of stream: the FIN is passed on (write half shut down) after every queued byte,
//! and the other direction keeps flowing — half-closed connections work.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::Shared;
use super::chain::{Chain, ConnInfo};
use super::faults::Chunk;
use crate::scenario::Direction;

/// Read buffer per direction. A WebSocket message of a few KiB fits; 16 KiB per
/// connection matters when there are tens of thousands of them.
pub(crate) const BUF_SIZE: usize = 8 * 1024;
/// Bytes a faulted link holds before it stops reading.
pub(crate) const MAX_QUEUED: usize = 1024 * 1024;

pub(crate) struct Link<'a, R, W> {
    reader: R,
    writer: W,
    dir: Direction,
    shared: &'a Shared,
    chain: Chain<'a>,
    buf: Box<[u8]>,
    queue: VecDeque<Chunk>,
    queued: usize,
    /// The chunk being written and how much of it is written.
    current: Option<(Bytes, usize)>,
    last_due: Option<Instant>,
    /// Set once the source ended: when the FIN may follow.
    fin_at: Option<Instant>,
    /// Scratch for the chain's output.
    out: Vec<Chunk>,
}

impl<'a, R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Link<'a, R, W> {
    /// A link `dir` of connection `info`; `first` holds bytes already read from the
    /// source (the upgrade head), forwarded before anything else.
    pub fn new(
        reader: R,
        writer: W,
        dir: Direction,
        shared: &'a Shared,
        info: &'a ConnInfo,
        first: Vec<u8>,
    ) -> Self {
        let mut link = Self {
            reader,
            writer,
            dir,
            shared,
            chain: Chain::new(shared, info, dir),
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            queue: VecDeque::new(),
            queued: 0,
            current: None,
            last_due: None,
            fin_at: None,
            out: Vec::new(),
        };
        if !first.is_empty() {
            link.arrive(Bytes::from(first), Instant::now());
        }
        link
    }

    /// Forwards until the source ends and the FIN is passed on. An error means one side
    /// broke (reset, write to a closed socket): the connection should be aborted.
    pub async fn run(mut self) -> io::Result<()> {
        loop {
            if self.chain.is_empty() && self.idle() {
                let n = self.reader.read(&mut self.buf).await?;
                let now = Instant::now();
                self.chain.sync(now);
                if self.chain.is_empty() {
                    if n == 0 {
                        return self.writer.shutdown().await;
                    }
                    self.writer.write_all(&self.buf[..n]).await?;
                    self.shared.stats.add_bytes(self.dir, n);
                    continue;
                }
                self.read_done(n, now);
            } else if self.step().await? {
                return Ok(());
            }
        }
    }

    fn idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_none() && self.fin_at.is_none()
    }

    /// One event of the faulted path: a write, a chunk coming due, or a read. True once
    /// the FIN is passed on.
    async fn step(&mut self) -> io::Result<bool> {
        let wake = match (&self.current, self.queue.front()) {
            (Some(_), _) => None,
            (None, Some(front)) => Some(front.due),
            (None, None) => self.fin_at,
        };
        let pending: &[u8] = match &self.current {
            Some((data, written)) => &data[*written..],
            None => &[],
        };
        let can_read = self.fin_at.is_none() && self.queued < MAX_QUEUED;
        // Writes first, then due chunks, then reads: drain before taking more in.
        tokio::select! {
            biased;
            r = self.writer.write(pending), if !pending.is_empty() => {
                let n = r?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                self.shared.stats.add_bytes(self.dir, n);
                if let Some((data, written)) = &mut self.current {
                    *written += n;
                    if *written == data.len() {
                        self.current = None;
                    }
                }
            }
            () = tokio::time::sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                match self.queue.pop_front() {
                    Some(chunk) => {
                        self.queued -= chunk.data.len();
                        if !chunk.data.is_empty() {
                            self.current = Some((chunk.data, 0));
                        }
                    }
                    None => {
                        self.writer.shutdown().await?;
                        return Ok(true);
                    }
                }
            }
            r = self.reader.read(&mut self.buf), if can_read => {
                let n = r?;
                let now = Instant::now();
                self.chain.sync(now);
                self.read_done(n, now);
            }
        }
        Ok(false)
    }

    /// Handles a read of `n` bytes (0: end of stream) on the faulted path.
    fn read_done(&mut self, n: usize, now: Instant) {
        if n == 0 {
            let fin = self.chain.finish(now);
            self.fin_at = Some(self.last_due.map_or(fin, |last| fin.max(last)));
        } else {
            self.arrive(Bytes::copy_from_slice(&self.buf[..n]), now);
        }
    }

    /// Passes a chunk through the stages and queues what comes out, in order.
    fn arrive(&mut self, data: Bytes, now: Instant) {
        self.chain.push(
            Chunk {
                data,
                arrival: now,
                due: now,
            },
            &mut self.out,
        );
        for mut chunk in self.out.drain(..) {
            if let Some(last) = self.last_due {
                chunk.due = chunk.due.max(last);
            }
            self.last_due = Some(chunk.due);
            self.queued += chunk.data.len();
            self.queue.push_back(chunk);
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::events::EventSink;
    use crate::scenario::{Distribution, NetworkFault, NetworkFaultKind};
    use crate::shim::select::{Key, stagger_offset};
    use crate::shim::test_util::{fault, shared_for_test};
    use std::sync::Arc;

    fn latency(ms: u64, jitter_ms: u64) -> NetworkFaultKind {
        NetworkFaultKind::Latency {
            latency: Duration::from_millis(ms),
            jitter: Duration::from_millis(jitter_ms),
            distribution: Distribution::Uniform,
        }
    }

    /// Runs one upstream link over in-memory pipes with the fault windows opened by hand;
    /// returns each chunk with the time it came out.
    async fn through(
        kind: NetworkFaultKind,
        sends: Vec<(u64, Vec<u8>)>,
    ) -> Vec<(Duration, Vec<u8>)> {
        through_fault(fault(kind, Duration::ZERO, None), sends).await
    }

    async fn through_fault(
        f: NetworkFault,
        sends: Vec<(u64, Vec<u8>)>,
    ) -> Vec<(Duration, Vec<u8>)> {
        let clock = Clock::start();
        let shared = Arc::new(shared_for_test(vec![f], EventSink::disabled(clock)));
        crate::shim::test_util::open_all(&shared);
        let (mut client, src) = tokio::io::duplex(64 * 1024);
        let (dst, mut server) = tokio::io::duplex(64 * 1024);
        let t0 = Instant::now();
        let writer = tokio::spawn(async move {
            for (at, bytes) in sends {
                tokio::time::sleep_until(t0 + Duration::from_millis(at)).await;
                client.write_all(&bytes).await.unwrap();
            }
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = server.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.push((t0.elapsed(), buf[..n].to_vec()));
            }
        });
        let info = ConnInfo::new(0, Some(0));
        Link::new(src, dst, Direction::Upstream, &shared, &info, Vec::new())
            .run()
            .await
            .unwrap();
        writer.await.unwrap();
        reader.await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn every_chunk_is_delayed_from_its_own_arrival() {
        let sends = (0..10u8).map(|i| (u64::from(i), vec![i; 10])).collect();
        let got = through(latency(100, 0), sends).await;
        assert_eq!(got.len(), 10);
        for (i, (at, bytes)) in got.iter().enumerate() {
            assert_eq!(*at, Duration::from_millis(100 + i as u64), "chunk {i}");
            assert_eq!(bytes, &vec![i as u8; 10]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_never_reorders() {
        let sends: Vec<_> = (0..50u8).map(|i| (u64::from(i), vec![i; 3])).collect();
        let want: Vec<u8> = sends.iter().flat_map(|(_, b)| b.clone()).collect();
        let got = through(latency(50, 45), sends).await;
        let bytes: Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(bytes, want);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(got.iter().all(|(at, _)| *at >= Duration::from_millis(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn fin_waits_for_queued_bytes() {
        // The pipe closes right after the last write; the data still arrives, then EOF.
        let got = through(latency(200, 0), vec![(0, b"abc".to_vec())]).await;
        assert_eq!(got, vec![(Duration::from_millis(200), b"abc".to_vec())]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_staggered_start_begins_at_the_connections_offset() {
        let mut f = fault(latency(100, 0), Duration::ZERO, None);
        f.window.stagger = Duration::from_millis(200);
        let seed = crate::shim::faults::Plan::new(&f, 1).unwrap().seed;
        let offset = stagger_offset(f.window.stagger, seed, Key::Client(0));
        let before = offset.as_millis() as u64 / 2;
        let after = offset.as_millis() as u64 + 1;
        let got = through_fault(f, vec![(before, b"a".to_vec()), (after, b"b".to_vec())]).await;
        assert_eq!(
            got[0],
            (Duration::from_millis(before), b"a".to_vec()),
            "not yet: offset {offset:?}"
        );
        assert_eq!(got[1], (Duration::from_millis(after + 100), b"b".to_vec()));
    }
}
