//! `slow_close`: when a side closes its stream (FIN) during the window, the close is
//! passed on `delay` later (after every byte before it, as always).
//!
//! Only the FIN is held: data keeps flowing both ways, the other direction is untouched,
//! and a reset is passed on at once (as Toxiproxy). It slows a goodbye rather than breaking
//! the link, so it does not mark the touch board; a delayed close counts in the ledger as
//! `FaultTouched { action: "close_delayed", bytes: 0 }`.

use std::time::Duration;

use tokio::time::Instant;

use super::{Acted, Chunk, Stage};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub delay: Duration,
}

/// The slow_close stage of one link for one window.
pub(crate) struct SlowClose {
    delay: Duration,
}

impl SlowClose {
    pub fn new(spec: &Spec) -> Self {
        Self { delay: spec.delay }
    }
}

impl Stage for SlowClose {
    fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) -> Acted {
        out.push(chunk);
        None
    }

    fn finish(&mut self, at: Instant) -> Option<Instant> {
        Some(at + self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Direction, NetworkFaultKind};
    use crate::shim::test_util::{Harness, Saw, fault, recording_server, until_end};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    #[test]
    fn the_end_moves_by_the_delay_and_data_passes() {
        let mut s = SlowClose::new(&Spec {
            delay: Duration::from_millis(300),
        });
        let t0 = Instant::now();
        assert_eq!(s.finish(t0), Some(t0 + Duration::from_millis(300)));
        let mut out = Vec::new();
        let chunk = Chunk::new(bytes::Bytes::from_static(b"x"), t0);
        assert_eq!(s.push(chunk.clone(), &mut out), None);
        assert_eq!(out, vec![chunk]);
    }

    #[tokio::test]
    async fn the_server_sees_the_data_at_once_and_the_close_later() {
        let (server, mut seen) = recording_server().await;
        let mut f = fault(
            NetworkFaultKind::SlowClose {
                delay: Duration::from_millis(300),
            },
            Duration::ZERO,
            None,
        );
        f.direction = Direction::Upstream;
        let h = Harness::start(vec![f], 1, server, false).await;
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        s.write_all(b"bye").await.unwrap();
        let closed = Instant::now();
        s.shutdown().await.unwrap();
        let (data, end) = until_end(&mut seen).await;
        let (at, how) = end.expect("the close comes");
        assert_eq!((data.as_slice(), how), (&b"bye"[..], Saw::Eof));
        let held = at - closed;
        assert!(
            held >= Duration::from_millis(280) && held < Duration::from_millis(1500),
            "{held:?}"
        );
        let ledger = h.stop().await;
        assert_eq!(
            (ledger[0].actions["close_delayed"], ledger[0].bytes_affected),
            (1, 0)
        );
    }
}
