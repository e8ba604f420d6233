//! The one loop that drives a session through its states — connect, handshake, resume,
//! live, back off, and again — and the one place that records each transition.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::connect::connect;
use super::live::LiveEnd;
use super::outbox::{Admit, Outbox};
use super::state::{End, Outcome, SessionEvent, StateKind};
use super::{Application, Backoff, Disposition, Next, SessionConfig};
use crate::protocol::Inbound;

/// Runs a session until the application finishes and everything is confirmed, a fatal
/// error or the retry limits end it, or `token` is cancelled.
///
/// A plain function returning the future rather than an `async fn`: an `async fn` keeps
/// its arguments in the future beside the locals they are moved into, and a session's
/// configuration would then be held twice for its whole life.
pub fn run<A: Application>(
    cfg: SessionConfig,
    app: &mut A,
    token: CancellationToken,
) -> impl Future<Output = Outcome> + '_ {
    let mut ready = Backoff::try_new(cfg.policy.backoff, cfg.rng.clone()).map(|backoff| Driver {
        outbox: Outbox::new(cfg.policy.outbox, cfg.policy.retransmit.max_in_flight),
        cfg,
        app,
        token,
        backoff,
        inbound: Inbound::default(),
        state: StateKind::Closed,
        finishing: false,
        ever_live: false,
    });
    async move {
        // Borrowed, not moved out: a moved-out driver would take a second slot in the
        // future beside the captured one.
        let d = match &mut ready {
            Ok(d) => d,
            Err(e) => {
                return Outcome {
                    end: End::Failed(e.to_string()),
                    undelivered: 0,
                };
            }
        };
        let end = d.drive().await;
        let state = if matches!(end, End::Failed(_)) {
            StateKind::Failed
        } else {
            StateKind::Closed
        };
        d.enter(state, 0);
        Outcome {
            end,
            undelivered: d.outbox.len() as u64,
        }
    }
}

pub(super) struct Driver<'a, A> {
    pub(super) cfg: SessionConfig,
    pub(super) app: &'a mut A,
    pub(super) token: CancellationToken,
    pub(super) outbox: Outbox,
    pub(super) backoff: Backoff,
    /// What this session has received from the server (squall protocol).
    pub(super) inbound: Inbound,
    pub(super) state: StateKind,
    /// The application said it has nothing more to send.
    pub(super) finishing: bool,
    /// A connection of this session has been live before: the next HELLO resumes.
    pub(super) ever_live: bool,
}

impl<A: Application> Driver<'_, A> {
    async fn drive(&mut self) -> End {
        // Set when a live connection is lost: the start of the downtime being measured.
        let mut lost_at: Option<Instant> = None;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            self.enter(StateKind::Connecting, attempt);
            // Boxed, like every rare step: a task's size is its largest state, held for the
            // session's whole life, and most of that life is spent live.
            let failure = match Box::pin(connect(&self.cfg, &self.token)).await {
                Err(None) => return End::Cancelled,
                Err(Some(reason)) => reason,
                Ok((ws, wire)) => {
                    self.enter(StateKind::Handshaking, attempt);
                    match Box::pin(self.live(ws, wire, lost_at, attempt)).await {
                        LiveEnd::Drained => return End::Drained,
                        LiveEnd::Cancelled => return End::Cancelled,
                        // A connection that never got as far as live is a failed attempt.
                        LiveEnd::Lost {
                            reason,
                            up_for,
                            progressed,
                        } if self.state == StateKind::Live => {
                            lost_at = Some(Instant::now());
                            attempt = 0;
                            self.report(SessionEvent::Disconnected {
                                class: reason.class(),
                                reason: reason.clone(),
                                up_for,
                            });
                            // Only a connection that stayed up and did work proves the
                            // server healthy; an accept-then-close loop keeps backing off.
                            if up_for >= self.cfg.policy.min_uptime && progressed {
                                self.backoff.reset();
                            }
                            match reason.disposition(&self.cfg.policy.on_error) {
                                Disposition::Fatal => {
                                    return self.give_up(format!("fatal: {reason}"));
                                }
                                d => {
                                    let delay = self.delay(d);
                                    if !Box::pin(self.back_off(delay, 0)).await {
                                        return End::Cancelled;
                                    }
                                    continue;
                                }
                            }
                        }
                        LiveEnd::Lost { reason, .. } => reason,
                    }
                }
            };
            let disposition = failure.disposition(&self.cfg.policy.on_error);
            let limit_hit = self.cfg.policy.max_attempts.is_some_and(|m| attempt >= m)
                || lost_at
                    .zip(self.cfg.policy.max_elapsed)
                    .is_some_and(|(t, max)| t.elapsed() >= max);
            let next =
                (disposition != Disposition::Fatal && !limit_hit).then(|| self.delay(disposition));
            self.report(SessionEvent::AttemptFailed {
                attempt,
                class: failure.class(),
                reason: failure.clone(),
                next_delay: next,
            });
            match next {
                None if limit_hit => {
                    return self.give_up(format!(
                        "retry limit reached after {attempt} attempts: {failure}"
                    ));
                }
                None => return self.give_up(format!("fatal: {failure}")),
                Some(delay) => {
                    if !Box::pin(self.back_off(delay, attempt)).await {
                        return End::Cancelled;
                    }
                }
            }
        }
    }

    /// A connection is live: report it, and the recovery it ends.
    pub(super) fn went_live(&mut self, lost_at: Option<Instant>, attempt: u32, replayed: usize) {
        self.enter(StateKind::Live, attempt);
        self.report(SessionEvent::Connected {
            attempt,
            reconnect: lost_at.is_some(),
        });
        if let Some(t) = lost_at {
            self.report(SessionEvent::Resumed {
                downtime: t.elapsed(),
                attempts: attempt,
                replayed,
            });
        }
        self.ever_live = true;
    }

    fn give_up(&mut self, reason: String) -> End {
        self.report(SessionEvent::GaveUp {
            reason: reason.clone(),
        });
        End::Failed(reason)
    }

    fn delay(&mut self, d: Disposition) -> Duration {
        let base = self.backoff.next_delay();
        match d {
            Disposition::RetryAfter(hint) => base.max(hint),
            _ => base,
        }
    }

    /// The one place a state transition happens and is recorded.
    pub(super) fn enter(&mut self, to: StateKind, attempt: u32) {
        if self.state != to {
            let from = std::mem::replace(&mut self.state, to);
            self.report(SessionEvent::StateChanged { from, to, attempt });
        }
    }

    /// Hands an event to the application and to `tracing`.
    pub(super) fn report(&mut self, event: SessionEvent) {
        let session = self.cfg.session.as_str();
        match &event {
            SessionEvent::StateChanged { from, to, attempt } => {
                tracing::debug!(target: "squall::recovery", session, ?from, ?to, attempt, "state");
            }
            SessionEvent::Disconnected {
                reason,
                class,
                up_for,
            } => {
                tracing::info!(target: "squall::recovery", session, reason = %reason, ?class, close_code = ?reason.close_code(), ?up_for, "disconnected");
            }
            SessionEvent::AttemptFailed {
                attempt,
                reason,
                class,
                next_delay,
            } => {
                tracing::info!(target: "squall::recovery", session, attempt, reason = %reason, ?class, ?next_delay, "attempt failed");
            }
            SessionEvent::Resumed {
                downtime,
                attempts,
                replayed,
            } => {
                tracing::info!(target: "squall::recovery", session, ?downtime, attempts, replayed, "resumed");
            }
            SessionEvent::GaveUp { reason } => {
                tracing::warn!(target: "squall::recovery", session, reason = %reason, "gave up")
            }
            SessionEvent::Discontinuity {
                unvouched,
                inbound_after,
            } => {
                tracing::warn!(target: "squall::recovery", session, unvouched = unvouched.len(), inbound_after, "server lost the session");
            }
            other => tracing::debug!(target: "squall::recovery", session, event = ?other),
        }
        self.app.event(event);
    }

    /// Waits `delay`, still taking messages from the application. False if cancelled.
    async fn back_off(&mut self, delay: Duration, attempt: u32) -> bool {
        self.enter(StateKind::BackingOff, attempt);
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = self.token.cancelled() => return false,
                _ = sleep_until(until) => return true,
                next = self.app.next(), if self.accepting() => { self.accept(next); }
            }
        }
    }

    pub(super) fn accepting(&self) -> bool {
        !self.finishing && !self.outbox.blocks()
    }

    /// Takes one message from the application into the outbox.
    pub(super) fn accept(&mut self, next: Next) {
        match next {
            Next::Finish => self.finishing = true,
            Next::Send { payload, intended } => match self.outbox.admit(payload, intended) {
                Admit::Queued(seq) => self.app.accepted(seq),
                Admit::QueuedDropping { seq, dropped } => {
                    self.app.accepted(seq);
                    self.report(SessionEvent::Dropped { seq: dropped });
                }
                Admit::Refused => self.app.refused(),
            },
        }
    }
}
