//! One virtual client: a recovery-engine session whose application sends messages on a
//! schedule and records what recovery cost into the run's metrics and event log.

use std::sync::Arc;
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
use crate::target::ID_DIGITS;
use crate::touch::TouchBoard;

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
    /// Number of the last message made in this session (restarts with each session).
    pub message_number: u64,
    /// Messages of this session confirmed, and echoes received from the server: the
    /// session is settled when every confirmed message has come back.
    pub confirmed: u64,
    pub echoes: u64,
    /// Whether the server echoes over squall's protocol (each message comes back).
    pub expects_echoes: bool,
    /// Where the shim notes when a fault broke this client's link.
    pub touches: Option<Arc<TouchBoard>>,
    /// When the current (or last) connection went live, µs on the run clock.
    pub live_since_us: u64,
    /// The fault touch that explains the current outage, if a fault caused it.
    pub outage_touch_us: Option<u64>,
    /// When the current outage began (the fault's touch, or the disconnect): `Some` while
    /// the session is down.
    pub outage_since_us: Option<u64>,
}

impl ClientApp {
    /// Picks a random phase so clients of the same rate do not send in lockstep.
    pub fn schedule_from(&mut self, start: Instant) {
        self.next_due = self.messages.rate.interval().map(|every| {
            let phase = self.rng.random_range(0.0..1.0);
            start + every.mul_f64(phase)
        });
    }

    /// The next payload: its message number (16 hex digits, so the server's application
    /// can prove it received each message once), then filler up to the configured size.
    fn payload(&mut self) -> Bytes {
        let (lo, hi) = (
            self.messages.min_bytes,
            self.messages.max_bytes.max(self.messages.min_bytes),
        );
        let n = if lo == hi {
            lo
        } else {
            self.rng.random_range(lo..=hi)
        } as usize;
        self.message_number += 1;
        let mut p = Vec::with_capacity(n.max(ID_DIGITS));
        p.extend_from_slice(format!("{:016x}", self.message_number).as_bytes());
        while p.len() < n {
            let take = (n - p.len()).min(FILLER.len());
            p.extend_from_slice(&FILLER[..take]);
        }
        Bytes::from(p)
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

    /// Call once the connection has ended, to close the gauge.
    pub fn finish(&mut self) {
        if std::mem::take(&mut self.connected) {
            self.metrics.disconnected();
        }
    }

    /// Call once the session has ended: a session still down then never recovered.
    pub fn session_ended(&mut self) {
        self.finish();
        if let Some(since) = self.outage_since_us.take() {
            self.metrics.unrecovered(self.group, since);
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
                self.live_since_us = self.metrics.clock().now_us();
                self.record(|r| r.tick(Tick::Connects, 1));
                self.events.emit(Event::Connected { client, attempt });
            }
            SessionEvent::Disconnected { reason, class, .. } => {
                self.finish();
                // A fault that touched this connection after it went live explains the
                // loss: time the detection from it.
                let now = self.metrics.clock().now_us();
                self.outage_touch_us = self
                    .touches
                    .as_ref()
                    .and_then(|b| b.since(client, self.live_since_us))
                    .filter(|t| *t <= now);
                let detection = self.outage_touch_us.map(|t| now - t);
                self.outage_since_us = Some(self.outage_touch_us.unwrap_or(now));
                self.record(|r| {
                    r.count(Counter::Disconnects, 1);
                    r.tick(Tick::Disconnects, 1);
                    if let Some(d) = detection {
                        r.record(Hist::DetectionLatency, d);
                    }
                });
                self.count_error(class, reason.close_code());
                self.events.emit(Event::Disconnected {
                    client,
                    class: class_name(class).into(),
                    reason: reason.to_string(),
                    close_code: reason.close_code(),
                });
            }
            SessionEvent::AttemptFailed {
                reason,
                class,
                attempt,
                next_delay,
            } => {
                if self.ever_connected {
                    self.record(|r| r.count(Counter::ReconnectFailures, 1));
                }
                self.count_error(class, reason.close_code());
                self.events.emit(Event::AttemptFailed {
                    client,
                    attempt,
                    class: class_name(class).into(),
                    reason: reason.to_string(),
                    next_delay_ms: next_delay.map(|d| d.as_millis() as u64),
                });
            }
            SessionEvent::Resumed {
                downtime, attempts, ..
            } => {
                let us = u64::try_from(downtime.as_micros()).unwrap_or(u64::MAX);
                let now = self.metrics.clock().now_us();
                let outage = self.outage_touch_us.take().map(|t| now.saturating_sub(t));
                if let Some(since) = self.outage_since_us.take() {
                    self.metrics.recovered(self.group, since);
                }
                self.record(|r| {
                    r.count(Counter::Reconnects, 1);
                    r.record(Hist::ReconnectLatency, us);
                    r.record(Hist::AttemptsPerReconnect, u64::from(attempts));
                    if let Some(d) = outage {
                        r.record(Hist::Downtime, d);
                    }
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
            SessionEvent::Dropped { seq } => {
                self.dropped += 1;
                self.events.emit(Event::Dropped { client, seq });
            }
            SessionEvent::Discontinuity {
                unvouched,
                inbound_after,
            } => {
                let n = unvouched.len() as u64;
                self.record(|r| r.count(Counter::MessagesUnverified, n));
                self.events.emit(Event::Discontinuity {
                    client,
                    unvouched: n,
                    inbound_after,
                });
            }
            SessionEvent::AppError { code, message } => {
                self.count_error(ErrorClass::Application, None);
                self.events.emit(Event::AppError {
                    client,
                    code,
                    message,
                });
            }
            SessionEvent::CorruptionDetected => {
                self.record(|r| r.count(Counter::CorruptionDetected, 1));
                self.events.emit(Event::Corruption { client });
            }
        }
    }

    fn settled(&self) -> bool {
        !self.expects_echoes || self.echoes >= self.confirmed
    }

    fn received(&mut self, _payload: Bytes) {
        self.echoes += 1;
        self.record(|r| r.count(Counter::MessagesReceived, 1));
    }

    fn duplicate(&mut self, _seq: u64) {
        self.record(|r| r.count(Counter::DuplicatesSuppressed, 1));
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
        self.confirmed += 1;
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
