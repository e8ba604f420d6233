//! Progress while a run goes: on a terminal, one status line rewritten in place every
//! second; otherwise (a CI log) a plain line every few seconds; nothing with `--quiet`.
//! Elapsed / duration, connected / target, messages per second, reconnects and their
//! p99 so far, messages lost so far, open files against the limit, active faults.

use std::io::Write;

use crate::metrics::{Counter, Hist, Metrics};
use crate::report::markdown::micros;
use crate::scenario::Scenario;
use crate::shim::ShimHandle;

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Live {
    /// Nothing (`--quiet`, or library use).
    #[default]
    Off,
    /// One line rewritten in place every second.
    Terminal,
    /// A plain line every few seconds, for logs.
    Plain,
}

/// Seconds between two plain lines.
const PLAIN_EVERY: u64 = 5;

pub struct Status {
    duration_s: u64,
    target_clients: u32,
    last_delivered: u64,
    ticks: u64,
    fd_limit: u64,
}

impl Status {
    pub fn new(scenario: &Scenario) -> Self {
        Status {
            duration_s: scenario.duration.as_secs(),
            target_clients: scenario.peak_clients(),
            last_delivered: 0,
            ticks: 0,
            fd_limit: rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft),
        }
    }

    /// Called once a second.
    pub fn show(&mut self, live: Live, metrics: &Metrics, shim: &ShimHandle) {
        self.ticks += 1;
        let delivered = metrics.peek(Counter::MessagesDelivered);
        let rate = delivered.saturating_sub(self.last_delivered);
        self.last_delivered = delivered;
        if live == Live::Off || (live == Live::Plain && !self.ticks.is_multiple_of(PLAIN_EVERY)) {
            return;
        }
        let faults = shim.active_faults();
        let faults = if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join(", ")
        };
        let p99 = metrics
            .peek_quantile(Hist::ReconnectLatency, 0.99)
            .map_or("–".to_string(), micros);
        let line = format!(
            "[{:>4}s/{}s] connected {}/{} · {} msg/s · reconnects {} (p99 {}) · lost so far {} · files {}/{} · faults: {}",
            metrics.clock().elapsed().as_secs(),
            self.duration_s,
            metrics.connected_now(),
            self.target_clients,
            rate,
            metrics.peek(Counter::Reconnects),
            p99,
            metrics.peek(Counter::MessagesLost),
            open_files(),
            self.fd_limit,
            faults
        );
        let mut out = std::io::stdout().lock();
        match live {
            // \r and clear-to-end-of-line: one line, rewritten in place.
            Live::Terminal => {
                let _ = write!(out, "\r{line}\x1b[K");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
    }
}

/// Descriptors this process has open now (Linux; 0 where /proc is missing).
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Ends the status line so the summary starts on a fresh line.
pub fn clear(live: Live) {
    if live == Live::Terminal {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K");
        let _ = out.flush();
    }
}
