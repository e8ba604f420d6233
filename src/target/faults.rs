//! Server-side faults on the run's timeline (`server:` in the scenario): restart, reject
//! handshakes, close sessions, send application errors, stall, close connections as
//! soon as they are accepted. Each start and stop, and
//! every connection a fault acted on, goes to the fault ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::control::{AcceptClose, Command, Control, Restart};
use crate::clock::Clock;
use crate::events::{Event, EventSink};
use crate::rng;
use crate::scenario::{ServerFault, ServerFaultKind};

/// The application error code squall's built-in server sends for `app_error`.
pub const APP_ERROR_CODE: u32 = 5000;

/// Runs every fault of `faults` against the server behind `control`, each on its own
/// task, until `token` is cancelled.
pub fn spawn_faults(
    faults: &[ServerFault],
    control: &Arc<Control>,
    seed: u64,
    clock: Clock,
    events: &EventSink,
    token: &CancellationToken,
    tracker: &TaskTracker,
) {
    control.set_events(events.clone());
    for fault in faults {
        let run = FaultRun {
            fault: fault.clone(),
            control: control.clone(),
            seed: rng::derive(seed, &format!("server.fault:{}", fault.name), 0),
            clock,
            events: events.clone(),
            open: Default::default(),
        };
        let token = token.clone();
        tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => run.end(),
                _ = run.run() => {}
            }
        });
    }
}

struct FaultRun {
    fault: ServerFault,
    control: Arc<Control>,
    seed: u64,
    clock: Clock,
    events: EventSink,
    /// A window is open (so shutting down must close it in the ledger).
    open: std::sync::atomic::AtomicBool,
}

impl FaultRun {
    fn kind(&self) -> String {
        format!("server.{}", self.fault.kind.name())
    }

    fn emit_window(&self, start: bool) {
        self.open.store(start, std::sync::atomic::Ordering::Relaxed);
        let (fault, name, kind) = (self.fault.id, self.fault.name.clone(), self.kind());
        self.events.emit(if start {
            Event::FaultStarted { fault, name, kind }
        } else {
            Event::FaultStopped { fault, name, kind }
        });
    }

    fn touched(&self, conns: &[u64], action: &str) {
        for conn in conns {
            self.events.emit(Event::FaultTouched {
                fault: self.fault.id,
                name: self.fault.name.clone(),
                kind: self.kind(),
                conn: *conn,
                client: None,
                action: action.to_string(),
                bytes: 0,
            });
        }
    }

    /// Instantaneous kinds (restart, close, app_error) fire at `at`, then every `every`
    /// while inside `for`. Windowed kinds (reject_handshakes, stall, accept_close) open at `at` for
    /// `for` (to the end without it), and again every `every`.
    async fn run(&self) {
        let w = self.fault.window;
        let instantaneous = matches!(
            self.fault.kind,
            ServerFaultKind::Restart { .. }
                | ServerFaultKind::Close { .. }
                | ServerFaultKind::AppError { .. }
        );
        let span_end = w.length.filter(|_| instantaneous).map(|l| w.at + l);
        let mut start = w.at;
        loop {
            sleep_until(self.clock.at(start)).await;
            self.act(if instantaneous { None } else { w.length }).await;
            match w.every {
                Some(every) if !every.is_zero() => {
                    start += every;
                    if span_end.is_some_and(|e| start >= e) {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// One firing (instantaneous kinds) or one window (the others) of `length`.
    async fn act(&self, length: Option<Duration>) {
        self.emit_window(true);
        match &self.fault.kind {
            ServerFaultKind::Restart {
                close_code,
                down_for,
                keep_sessions,
            } => {
                let open = self.control.open_connections();
                self.control.restart(Restart {
                    close_code: *close_code,
                    down_for: *down_for,
                    keep_sessions: *keep_sessions,
                });
                self.touched(&open, "restarted");
                tokio::time::sleep(*down_for).await;
            }
            ServerFaultKind::Close {
                code,
                reason,
                sessions,
            } => {
                let cmd = Command::Close {
                    code: *code,
                    reason: reason.clone(),
                    retry_after: None,
                };
                let hit = self.control.to_sessions(sessions, self.seed, &cmd);
                self.touched(&hit, "closed");
            }
            ServerFaultKind::AppError { message, sessions } => {
                let cmd = Command::AppError {
                    code: APP_ERROR_CODE,
                    message: message.clone(),
                };
                let hit = self.control.to_sessions(sessions, self.seed, &cmd);
                self.touched(&hit, "app_error");
            }
            ServerFaultKind::RejectHandshakes {
                status,
                retry_after,
                share,
            } => {
                let rng = rng::rng(self.seed, "reject", 0);
                self.control.start_rejecting(
                    self.fault.id,
                    &self.fault.name,
                    *status,
                    *retry_after,
                    *share,
                    rng,
                );
                hold(length).await;
                self.control.stop_rejecting(&self.fault.name);
            }
            ServerFaultKind::Stall => {
                self.control.set_stalled(true);
                hold(length).await;
                self.control.set_stalled(false);
            }
            ServerFaultKind::AcceptClose {
                code,
                reason,
                share,
            } => {
                let close = AcceptClose {
                    code: *code,
                    reason: reason.clone(),
                };
                let rng = rng::rng(self.seed, "accept_close", 0);
                self.control.start_accept_close(
                    self.fault.id,
                    &self.fault.name,
                    close,
                    *share,
                    rng,
                );
                hold(length).await;
                self.control.stop_accept_close(&self.fault.name);
            }
        }
        self.emit_window(false);
    }

    /// The run ended with the fault's window open: undo it and close the window.
    fn end(&self) {
        if self.open.load(std::sync::atomic::Ordering::Relaxed) {
            self.emit_window(false);
        }
        match &self.fault.kind {
            ServerFaultKind::RejectHandshakes { .. } => {
                self.control.stop_rejecting(&self.fault.name)
            }
            ServerFaultKind::Stall => self.control.set_stalled(false),
            ServerFaultKind::AcceptClose { .. } => self.control.stop_accept_close(&self.fault.name),
            _ => {}
        }
    }
}

/// Waits out a window; one without a length lasts until the run is cancelled.
async fn hold(length: Option<Duration>) {
    match length {
        Some(l) => tokio::time::sleep(l).await,
        None => std::future::pending().await,
    }
}
