//! The run's clock: one start instant every component measures from, on tokio's time so
//! logic tests can pause it.

use std::time::Duration;
use tokio::time::Instant;

/// Time since the run started. Cheap to copy into every task.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// The instant the run started.
    pub fn origin(&self) -> Instant {
        self.start
    }

    /// Time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Microseconds since the start, the unit of every event timestamp.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Microseconds from the start to `at` (0 for an instant before it).
    pub fn us_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant at `offset` after the start.
    pub fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }
}
