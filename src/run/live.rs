//! Progress while a run goes: on a terminal, one status line rewritten in place every
//! second; otherwise (a CI log) a plain line every few seconds; nothing with `--quiet`.
//! Elapsed / duration, connected / target, messages per second, reconnects and their
//! p99 so far, messages lost so far, open files against the limit, active faults; in
//! `progress.json` also the runtime's alive tasks.

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

/// A worker's progress file, in its report directory.
pub const PROGRESS_FILE: &str = "progress.json";

/// Seconds between two plain lines.
const PLAIN_EVERY: u64 = 5;

pub struct Status {
    duration_s: u64,
    target_clients: u32,
    last_delivered: u64,
    ticks: u64,
    fd_limit: u64,
    /// Where a worker process leaves its progress for the parent to show.
    file: Option<std::path::PathBuf>,
}

/// One second's progress of a run, or of one worker (as `progress.json` in its report
/// directory, read by the parent that shows the whole).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub elapsed_s: u64,
    pub duration_s: u64,
    pub connected: i64,
    pub target: u64,
    /// Messages delivered in the last second.
    pub rate: u64,
    pub reconnects: u64,
    /// p99 of reconnect latency so far, µs (for several workers: the worst worker's).
    pub reconnect_p99_us: Option<u64>,
    pub lost: u64,
    pub open_files: u64,
    pub fd_limit: u64,
    pub faults: Vec<String>,
    /// Tasks alive in this process's tokio runtime (clients, links, server connections,
    /// timers): flat over a long run when nothing leaks (`benches/soak.sh` samples it).
    #[serde(default)]
    pub tasks: u64,
}

impl Progress {
    /// Several workers' progress as one: sums, the longest elapsed time, the worst p99,
    /// the highest per-process descriptor use.
    pub fn sum(parts: &[Progress]) -> Progress {
        let mut all = Progress::default();
        for p in parts {
            all.elapsed_s = all.elapsed_s.max(p.elapsed_s);
            all.duration_s = all.duration_s.max(p.duration_s);
            all.connected += p.connected;
            all.target += p.target;
            all.rate += p.rate;
            all.reconnects += p.reconnects;
            all.reconnect_p99_us = all.reconnect_p99_us.max(p.reconnect_p99_us);
            all.lost += p.lost;
            all.open_files = all.open_files.max(p.open_files);
            all.fd_limit = all.fd_limit.max(p.fd_limit);
            all.tasks += p.tasks;
            for f in &p.faults {
                if !all.faults.contains(f) {
                    all.faults.push(f.clone());
                }
            }
        }
        all
    }

    fn line(&self, workers: usize) -> String {
        let faults = if self.faults.is_empty() {
            "none".to_string()
        } else {
            self.faults.join(", ")
        };
        let files = match workers {
            0 | 1 => format!("files {}/{}", self.open_files, self.fd_limit),
            n => format!(
                "{n} workers, files {}/{} in the busiest",
                self.open_files, self.fd_limit
            ),
        };
        format!(
            "[{:>4}s/{}s] connected {}/{} · {} msg/s · reconnects {} (p99 {}) · lost so far {} · {} · faults: {}",
            self.elapsed_s,
            self.duration_s,
            self.connected,
            self.target,
            self.rate,
            self.reconnects,
            self.reconnect_p99_us.map_or("–".to_string(), micros),
            self.lost,
            files,
            faults
        )
    }

    /// Prints the line the way `live` wants it.
    pub fn print(&self, live: Live, workers: usize) {
        let line = self.line(workers);
        let mut out = std::io::stdout().lock();
        match live {
            Live::Off => return,
            // \r and clear-to-end-of-line: one line, rewritten in place.
            Live::Terminal => {
                let _ = write!(out, "\r{line}\x1b[K");
            }
            Live::Plain => {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
    }
}

/// Whether this second's line is shown: every second on a terminal, every few in a log.
pub fn due(live: Live, ticks: u64) -> bool {
    match live {
        Live::Off => false,
        Live::Terminal => true,
        Live::Plain => ticks.is_multiple_of(PLAIN_EVERY),
    }
}

impl Status {
    pub fn new(scenario: &Scenario, target_clients: u32, file: Option<std::path::PathBuf>) -> Self {
        Status {
            duration_s: scenario.duration.as_secs(),
            target_clients,
            last_delivered: 0,
            ticks: 0,
            fd_limit: rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft),
            file,
        }
    }

    /// Called once a second.
    pub fn show(&mut self, live: Live, metrics: &Metrics, shim: &ShimHandle) {
        self.ticks += 1;
        let delivered = metrics.peek(Counter::MessagesDelivered);
        let rate = delivered.saturating_sub(self.last_delivered);
        self.last_delivered = delivered;
        if !due(live, self.ticks) && self.file.is_none() {
            return;
        }
        let progress = Progress {
            elapsed_s: metrics.clock().elapsed().as_secs(),
            duration_s: self.duration_s,
            connected: metrics.connected_now(),
            target: u64::from(self.target_clients),
            rate,
            reconnects: metrics.peek(Counter::Reconnects),
            reconnect_p99_us: metrics.peek_quantile(Hist::ReconnectLatency, 0.99),
            lost: metrics.peek(Counter::MessagesLost),
            open_files: open_files(),
            fd_limit: self.fd_limit,
            faults: shim.active_faults(),
            tasks: tokio::runtime::Handle::try_current()
                .map_or(0, |h| h.metrics().num_alive_tasks() as u64),
        };
        if let Some(file) = &self.file
            && let Ok(json) = serde_json::to_vec(&progress)
        {
            // Best effort: progress is for the eye, the report is what counts.
            let _ = crate::report::write_atomic(file, &json);
        }
        if due(live, self.ticks) {
            progress.print(live, 1);
        }
    }
}

/// Descriptors this process has open now (Linux; 0 where /proc is missing).
fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Ends the status line so the summary starts on a fresh line.
pub fn clear(live: Live) {
    if live == Live::Terminal {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K");
        let _ = out.flush();
    }
}
