//! `dial_delay`: while the window is open, the chosen new connections are accepted and the
//! server is dialed `delay` later: a slow connection open (a cold backend, a congested
//! path, a TLS terminator queueing; Toxiproxy #123, PR #536). Nothing is read meanwhile,
//! so what the client sends waits in the kernel and reaches the server once it is dialed;
//! a client whose handshake deadline is shorter than the delay times out.
//!
//! With `identify_clients` the head is read first to know the client, then the dial
//! waits. The delays of several covering `dial_delay` faults add up. Each delayed
//! connection is a `FaultTouched { action: "dial_delayed" }`; a slow open is not a broken
//! link, so the touch board is not marked.

#[cfg(test)]
mod tests {
    use crate::scenario::NetworkFaultKind;
    use crate::shim::test_util::{Harness, echo_server, fault, roundtrip};
    use std::time::Duration;
    use tokio::net::TcpStream;
    use tokio::time::Instant;

    #[tokio::test]
    async fn the_first_answer_comes_after_the_delay_and_then_traffic_flows() {
        let echo = echo_server().await;
        let f = fault(
            NetworkFaultKind::DialDelay {
                delay: Duration::from_millis(300),
            },
            Duration::ZERO,
            None,
        );
        let h = Harness::start(vec![f], 1, echo, false).await;
        let t0 = Instant::now();
        let mut s = TcpStream::connect(h.addr()).await.unwrap();
        let first = roundtrip(&mut s, b"hello").await;
        assert!(
            t0.elapsed() >= Duration::from_millis(290) && first < Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
        let next = roundtrip(&mut s, b"again").await;
        assert!(next < Duration::from_millis(200), "{next:?}");
        let ledger = h.stop().await;
        assert_eq!(ledger[0].actions["dial_delayed"], 1);
    }
}
