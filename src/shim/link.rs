//! One direction of a proxied connection: read from one side, write to the other.
//!
//! Two paths:
//! - **fast**: no fault on this link and nothing queued. Read into one reused buffer and
//!   write it straight on: no allocation, no timer (the buffer grows, a few times at most,
//!   while reads keep filling it: a bulk transfer); per chunk, one atomic load to notice
//!   the timeline changing and one poll of the connection's close signal (an uncontended
//!   per-connection lock, as the connection task's own cancellation check).
//! - **faulted**: each chunk is copied out, stamped with its arrival, passed through the
//!   [`Chain`] of stages and queued until due. Reading goes on while chunks wait, so
//!   delays count from each chunk's arrival; a chunk is never written before an earlier
//!   one (`due` is raised to the previous chunk's). The link also follows the timeline
//!   while it waits, so a window closing is seen even when no data comes. The link goes
//!   back to the fast path only once the queue is empty, so the switch never reorders
//!   data.
//!
//! With WebSocket faults in the run, the fast path also follows the frames it forwards
//! (`Chain::observe`: counting, no copy) and wakes for a frame a fault fires at an idle
//! link (`ws_close`, `ws_oversize`); chunks the chain makes between reads (messages let
//! go when a window closes or a hold runs out, injected frames) are queued like read
//! ones (`Link::pump`).
//!
//! The queue holds at most [`MAX_QUEUED`] bytes (less if a stage says so: bandwidth);
//! beyond that the link stops reading and TCP backpressure reaches the sender, as it
//! would on a slow real link.
//!
//! End of stream: the FIN is passed on (write half shut down) after every queued byte,
//! when the stages let it (slow_close delays it, a blackhole holds it while open), and
//! the other direction keeps flowing — half-closed connections work.
//!
//! Closed by a fault (`close`, `limit_data`, `ws_close` once its frame is out; see
//! `ConnInfo::close`): whatever is still queued is dropped, the FIN goes at once, and the
//! source is read and discarded until it ends (at most [`DRAIN`]), so the peer that keeps
//! writing is not blocked on full buffers nor answered with a reset.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::Shared;
use super::chain::Chain;
use super::conn::ConnInfo;
use super::faults::Chunk;
use crate::scenario::Direction;

/// Read buffer per direction to start with. A handshake and small messages fit; a link
/// that fills it doubles it (see `Link::grow`). Idle connections are what there are tens
/// of thousands of: 2 × 2 KiB each rather than 2 × 8 KiB.
pub(crate) const BUF_SIZE: usize = 2 * 1024;
/// Largest the read buffer grows to on a link that keeps filling it (see `Link::grow`).
pub(crate) const MAX_BUF_SIZE: usize = 128 * 1024;
/// Bytes a faulted link holds before it stops reading.
pub(crate) const MAX_QUEUED: usize = 1024 * 1024;
/// How long a link closed by a fault keeps discarding what its source still sends.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

pub(crate) struct Link<'a, R, W> {
    reader: R,
    writer: W,
    dir: Direction,
    shared: &'a Shared,
    info: &'a ConnInfo,
    chain: Chain<'a>,
    buf: Box<[u8]>,
    queue: VecDeque<Chunk>,
    queued: usize,
    /// The chunk being written and how much of it is written.
    current: Option<(Bytes, usize)>,
    last_due: Option<Instant>,
    /// When the source ended.
    eof: Option<Instant>,
    /// When the FIN may follow, once the source ended; `None` while a stage holds it.
    fin_at: Option<Instant>,
    /// A stage ended the connection: close these directions once the queue is written.
    closing: Option<Direction>,
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
            info,
            chain: Chain::new(shared, info, dir),
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            queue: VecDeque::new(),
            queued: 0,
            current: None,
            last_due: None,
            eof: None,
            fin_at: None,
            closing: None,
            out: Vec::new(),
        };
        if !first.is_empty() {
            link.arrive(Bytes::from(first), Instant::now());
        }
        link
    }

    /// Forwards until the source ends and the FIN is passed on, or a fault closes this
    /// direction. An error means one side broke (reset, write to a closed socket): the
    /// connection should be aborted.
    pub async fn run(mut self) -> io::Result<()> {
        // Registered once: polling it again per chunk is a check, not a new waiter.
        let stopped = self.info.stop(self.dir).clone().cancelled_owned();
        tokio::pin!(stopped);
        loop {
            if self.chain.is_empty() && self.idle() {
                let n = tokio::select! {
                    biased;
                    () = &mut stopped => return self.close().await,
                    // Only with a WebSocket layer: a frame fired at an idle link.
                    injection = self.chain.injection() => {
                        self.chain.inject(injection, Instant::now());
                        self.pump();
                        continue;
                    }
                    r = self.reader.read(&mut self.buf) => r?,
                };
                let now = Instant::now();
                self.chain.sync(now);
                if self.chain.is_empty() {
                    if n == 0 {
                        return self.writer.shutdown().await;
                    }
                    self.chain.observe(&self.buf[..n]);
                    tokio::select! {
                        biased;
                        () = &mut stopped => return self.close().await,
                        r = self.writer.write_all(&self.buf[..n]) => r?,
                    }
                    self.shared.stats.add_bytes(self.dir, n);
                    self.grow(n);
                    continue;
                }
                self.read_done(n, now);
            } else {
                let fin_passed = tokio::select! {
                    biased;
                    () = &mut stopped => return self.close().await,
                    r = self.step() => r?,
                };
                if fin_passed {
                    return Ok(());
                }
            }
        }
    }

    /// A read that filled the buffer says a bulk transfer is on: a bigger buffer then
    /// means fewer system calls per byte. Connections that only ever carry small messages
    /// keep the small one.
    fn grow(&mut self, n: usize) {
        if n == self.buf.len() && self.buf.len() < MAX_BUF_SIZE {
            self.buf = vec![0; self.buf.len() * 2].into_boxed_slice();
        }
    }

    fn idle(&self) -> bool {
        self.queue.is_empty()
            && self.current.is_none()
            && self.eof.is_none()
            && self.closing.is_none()
    }

    /// One event of the faulted path: a write, a chunk coming due, the timeline changing,
    /// or a read. True once the FIN is passed on.
    async fn step(&mut self) -> io::Result<bool> {
        let wake = match (&self.current, self.queue.front()) {
            (Some(_), _) => None,
            (None, Some(front)) => Some(front.due),
            (None, None) if self.closing.is_some() => Some(Instant::now()),
            (None, None) => self.fin_at,
        };
        let pending: &[u8] = match &self.current {
            Some((data, written)) => &data[*written..],
            None => &[],
        };
        let limit = self
            .chain
            .queue_limit()
            .map_or(MAX_QUEUED, |l| l.min(MAX_QUEUED));
        let can_read = self.eof.is_none() && self.queued < limit;
        // Writes first, then due chunks, then the timeline, then reads: drain before
        // taking more in.
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
                match (self.queue.pop_front(), self.closing) {
                    (Some(chunk), _) => {
                        self.queued -= chunk.data.len();
                        if !chunk.data.is_empty() {
                            self.current = Some((chunk.data, 0));
                        }
                    }
                    // Everything the closing stage let through is written: the run loop
                    // sees the stop and closes this direction, the other link its own.
                    (None, Some(scope)) => {
                        self.info.close(scope);
                    }
                    (None, None) => {
                        self.writer.shutdown().await?;
                        return Ok(true);
                    }
                }
            }
            () = self.chain.follow() => {
                // A stage may end the connection with no chunk coming (see `wake_at`):
                // `pump` notes a close, `check_reset` a reset.
                self.pump();
                self.refresh_fin();
                self.chain.check_reset();
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
            self.chain.ended(now);
            self.pump();
            self.eof = Some(now);
            self.refresh_fin();
        } else {
            self.arrive(Bytes::copy_from_slice(&self.buf[..n]), now);
        }
    }

    /// After the source ended: when the FIN may follow, per the stages in place now.
    fn refresh_fin(&mut self) {
        let Some(eof) = self.eof else {
            return;
        };
        let fin = self.chain.finish(eof);
        self.fin_at = fin.map(|f| self.last_due.map_or(f, |last| f.max(last)));
    }

    /// Passes a chunk through the stages and queues what comes out, in order.
    fn arrive(&mut self, data: Bytes, now: Instant) {
        self.chain.push(Chunk::new(data, now), &mut self.out);
        self.enqueue();
    }

    /// Queues what the chain made between reads (see `Chain::take_ready`).
    fn pump(&mut self) {
        self.chain.take_ready(&mut self.out);
        self.enqueue();
    }

    /// Queues the chunks in `out`, in order.
    fn enqueue(&mut self) {
        for mut chunk in self.out.drain(..) {
            if let Some(last) = self.last_due {
                chunk.due = chunk.due.max(last);
            }
            self.last_due = Some(chunk.due);
            self.queued += chunk.data.len();
            self.queue.push_back(chunk);
        }
        // A closing stage passes nothing more, so the queue now ends where it cut.
        self.closing = self.closing.or(self.chain.closes());
        self.chain.check_reset();
    }

    /// This direction was closed by a fault: FIN now, then discard the source.
    async fn close(&mut self) -> io::Result<()> {
        self.queue.clear();
        self.queued = 0;
        self.current = None;
        // The peer may be gone already; there is no one left to tell.
        let _ = self.writer.shutdown().await;
        if self.eof.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + DRAIN;
        while let Ok(Ok(n)) =
            tokio::time::timeout_at(deadline, self.reader.read(&mut self.buf)).await
        {
            if n == 0 {
                break;
            }
        }
        Ok(())
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
        let info = ConnInfo::new(0, Some(0), 0);
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
