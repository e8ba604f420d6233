//! The live status line on a terminal: elapsed / duration, connected clients, messages
//! per second, reconnects, active faults. Rewritten in place once a second; silent when
//! stdout is not a terminal or with `--quiet`.

use std::io::Write;

use crate::metrics::{Counter, Metrics};
use crate::scenario::Scenario;
use crate::shim::ShimHandle;

pub struct Status {
    duration_s: u64,
    target_clients: u32,
    last_delivered: u64,
}

impl Status {
    pub fn new(scenario: &Scenario) -> Self {
        Status {
            duration_s: scenario.duration.as_secs(),
            target_clients: scenario.peak_clients(),
            last_delivered: 0,
        }
    }

    /// Prints one status line (once a second).
    pub fn show(&mut self, live: bool, metrics: &Metrics, shim: &ShimHandle) {
        if !live {
            return;
        }
        let delivered = metrics.peek(Counter::MessagesDelivered);
        let rate = delivered.saturating_sub(self.last_delivered);
        self.last_delivered = delivered;
        let faults = shim.active_faults();
        let faults = if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        };
        let line = format!(
            "[{:>4}s/{}s] connected {}/{} · {} msg/s · reconnects {} · lost so far {} · faults: {}",
            metrics.clock().elapsed().as_secs(),
            self.duration_s,
            metrics.connected_now(),
            self.target_clients,
            rate,
            metrics.peek(Counter::Reconnects),
            metrics.peek(Counter::MessagesLost),
            faults
        );
        let mut out = std::io::stdout().lock();
        // \r and clear-to-end-of-line: one line, rewritten in place.
        let _ = write!(out, "\r{line}\x1b[K");
        let _ = out.flush();
    }
}

/// Ends the status line so the summary starts on a fresh line.
pub fn clear(live: bool) {
    if live {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K");
        let _ = out.flush();
    }
}
