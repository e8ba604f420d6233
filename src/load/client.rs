//! One virtual client: a recovery-engine session whose application sends messages on a
//! schedule and records what recovery cost into the run's metrics and event log.

use std::time::Duration;

use bytes::Bytes;
use rand::RngExt;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink};
use crate::metrics::{Counter, Hist, Metrics, Tick};
use crate::recovery::{Application, Delivered, Next, SessionEvent};
use crate::rng::Rng;
use crate::scenario::{ErrorClass, Messages};

/// Payload bytes: ASCII, so a slice of it is valid text at any length.
static FILLER: [u8; 65536] = {
    let mut b = [0u8; 65536];
    let mut i = 0;
    while i < b.len() {
        b[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    b
};

/// The application side of one virtual client.
pub struct ClientApp {
    pub index: u32,
    pub group: usize,
    pub messages: Messages,
    pub rng: Rng,
    pub metrics: Metrics,
    pub events: EventSink,
    /// Cancelled when this client should stop sending (its period ended, or the run's).
    pub stop: CancellationToken,
    /// When this client's current period ends: it stops sending then, too.
    pub stop_at: Instant,
    /// When the next message is due; `None` for clients that never send.
    pub next_due: Option<Instant>,
    pub connected: bool,
    /// Set once any connection of this client has been live: later failed attempts are
    /// reconnect failures.
    pub ever_connected: bool,
    /// Highest sequence number written at least once; lower writes are retransmits.
    pub highest_sent: u64,
    /// Messages accepted and then dropped by an overflow policy: lost on purpose.
    pub dropped: u64,
}

impl ClientApp {
    /// Picks a random phase so clients of the same rate do not send in lockstep.
    pub fn schedule_from(&mut self, start: Instant) {
        self.next_due = self.messages.rate.interval().map(|every| {
            let phase = self.rng.random_range(0.0..1.0);
            start + every.mul_f64(phase)
        });
    }

    fn payload(&mut self) -> Bytes {
        let (lo, hi) = (
            self.messages.min_bytes,
            self.messages.max_bytes.max(self.messages.min_bytes),
        );
        let n = if lo == hi {
            lo
        } else {
            self.rng.random_range(lo..=hi)
        };
        let n = n as usize;
        if n <= FILLER.len() {
            Bytes::from_static(&FILLER[..n])
        } else {
            Bytes::from(FILLER.repeat(n / FILLER.len() + 1)).slice(..n)
        }
    }

    fn record(&self, f: impl FnOnce(&mut crate::metrics::Recorder<'_>)) {
        self.metrics.record(self.group, f);
    }

    fn count_error(&self, class: ErrorClass, close_code: Option<u16>) {
        let c = match class {
            ErrorClass::Connection => Counter::ErrorsConnection,
            ErrorClass::Data => Counter::ErrorsData,
            ErrorClass::Application => Counter::ErrorsApplication,
        };
        self.record(|r| {
            r.count(c, 1);
            if let Some(code) = close_code {
                r.close_code(code);
            }
        });
    }

    /// Call once the session has ended, to close the gauge.
    pub fn finish(&mut self) {
        if std::mem::take(&mut self.connected) {
            self.metrics.disconnected();
        }
    }
}

fn class_name(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::Connection => "connection",
        ErrorClass::Data => "data",
        ErrorClass::Application => "application",
    }
}

impl Application for ClientApp {
    async fn next(&mut self) -> Next {
        let Some(due) = self.next_due.filter(|d| *d < self.stop_at) else {
            tokio::select! {
                _ = self.stop.cancelled() => {}
                _ = sleep_until(self.stop_at) => {}
            }
            return Next::Finish;
        };
        tokio::select! {
            // Stopping wins over a message that is due at the same moment.
            biased;
            _ = self.stop.cancelled() => Next::Finish,
            _ = sleep_until(due) => {
                let every = self.messages.rate.interval().unwrap_or(Duration::MAX);
                self.next_due = Some(due + every);
                Next::Send { payload: self.payload(), intended: due }
            }
        }
    }

    fn event(&mut self, event: SessionEvent) {
        let client = self.index;
        match event {
            SessionEvent::StateChanged {
                to: crate::recovery::StateKind::Connecting,
                ..
            } => {
                self.record(|r| {
                    r.count(Counter::ConnectAttempts, 1);
                    r.tick(Tick::ConnectAttempts, 1);
                });
            }
            SessionEvent::StateChanged { .. } => {}
            SessionEvent::Connected { attempt, .. } => {
                self.connected = true;
                self.ever_connected = true;
                self.metrics.connected();
                self.record(|r| r.tick(Tick::Connects, 1));
                self.events.emit(Event::Connected { client, attempt });
            }
            SessionEvent::Disconnected { reason, class, .. } => {
                self.finish();
                self.record(|r| {
                    r.count(Counter::Disconnects, 1);
                    r.tick(Tick::Disconnects, 1);
                });
                self.count_error(class, reason.close_code());
                self.events.emit(Event::Disconnected {
                    client,
                    class: class_name(class).into(),
                    reason: reason.to_string(),
                    close_code: reason.close_code(),
                });
            }
            SessionEvent::AttemptFailed { reason, class, .. } => {
                if self.ever_connected {
                    self.record(|r| r.count(Counter::ReconnectFailures, 1));
                }
                self.count_error(class, reason.close_code());
            }
            SessionEvent::Resumed {
                downtime, attempts, ..
            } => {
                let us = u64::try_from(downtime.as_micros()).unwrap_or(u64::MAX);
                self.record(|r| {
                    r.count(Counter::Reconnects, 1);
                    r.record(Hist::ReconnectLatency, us);
                    r.record(Hist::AttemptsPerReconnect, u64::from(attempts));
                });
                self.events.emit(Event::Reconnected {
                    client,
                    latency_us: us,
                    attempts,
                });
            }
            SessionEvent::GaveUp { reason } => {
                self.record(|r| r.count(Counter::GaveUp, 1));
                self.events.emit(Event::GaveUp { client, reason });
            }
            SessionEvent::Dropped { .. } => self.dropped += 1,
        }
    }

    fn accepted(&mut self, _seq: u64) {
        self.record(|r| {
            r.count(Counter::MessagesSent, 1);
            r.tick(Tick::MessagesSent, 1);
        });
    }

    fn sent(&mut self, seq: u64) {
        if seq <= self.highest_sent {
            self.record(|r| {
                r.count(Counter::Retransmits, 1);
                r.tick(Tick::Retransmits, 1);
            });
        } else {
            self.highest_sent = seq;
        }
    }

    fn delivered(&mut self, d: Delivered) {
        let us = |from: Instant| {
            u64::try_from(d.confirmed.saturating_duration_since(from).as_micros())
                .unwrap_or(u64::MAX)
        };
        self.record(|r| {
            r.count(Counter::MessagesDelivered, 1);
            r.tick(Tick::MessagesDelivered, 1);
            r.record(Hist::MessageRtt, us(d.intended));
            r.record(Hist::MessageRttUncorrected, us(d.first_sent));
            r.record(Hist::RetransmitsPerMessage, u64::from(d.retransmits));
        });
    }
}
