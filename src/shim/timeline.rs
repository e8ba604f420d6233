//! The fault timeline: one task per fault opens and closes its windows (or fires it) at
//! the scenario's offsets on the run clock, and publishes the set of open windows.
//!
//! Connections see the set through a `watch` channel: checking it per chunk is one atomic
//! load (`has_changed`), and the set itself is an `Arc` swapped whole, so a link never
//! holds a lock while it forwards.
//!
//! Window rules (`at`, `for`, `every` of a fault):
//! - windowed faults (latency, …) are open over `[at + k·every, at + k·every + for)`:
//!   `for` is the length of each window and `every` its period. Without `every` there is
//!   one window; without `for` it stays open to the end of the run (and never repeats); a
//!   period not longer than `for` is one window that never closes.
//! - instantaneous faults (reset) fire at `at`, and with `every` again at each period
//!   while inside `[at, at + for)` (to the end of the run without `for`). While such a
//!   repeating fault's span is open it counts as active for the status line.
//!
//! Ledger: `FaultStarted`/`FaultStopped` at each window's edges; around each firing of an
//! instantaneous fault. A window still open when the run is cancelled is stopped then.
//! A blackhole or partition window stamps the touch board of the connections it covers
//! as it opens (see `blackhole::window_opened`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;
use super::faults::{Action, Effect, StageSpec, blackhole};
use super::select::Members;
use crate::events::Event;

/// Windows open now, ordered by fault (plan) index.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveSet {
    pub open: Vec<Open>,
}

/// One open window of one fault.
#[derive(Debug, Clone)]
pub(crate) struct Open {
    pub plan: usize,
    /// Window (or span) number, from 0.
    pub window: u32,
    /// When it opened: staggered starts count from here.
    pub opened: Instant,
    pub members: Arc<Members>,
}

/// Starts one timeline task per fault. A window whose start has already come is opened
/// before this returns, so a fault `at: 0s` is in force for the very first byte.
pub(crate) fn spawn(shared: &Arc<Shared>, token: &CancellationToken, tracker: &TaskTracker) {
    for plan in 0..shared.plans.len() {
        let (shared, token) = (shared.clone(), token.clone());
        let at = shared.plans[plan].fault.window.at;
        match shared.plans[plan].effect.clone() {
            Effect::Stage(_) | Effect::Messages(_) => {
                let first_open = shared.clock.elapsed() >= at;
                if first_open {
                    open(&shared, plan, 0, members(&shared, plan, 0));
                }
                tracker.spawn(async move { windows(&shared, plan, first_open, &token).await });
            }
            Effect::Action(action) => {
                tracker.spawn(async move { firings(&shared, plan, action, &token).await });
            }
        }
    }
}

/// Runs a windowed fault's windows; `first_open`: window 0 is already open.
async fn windows(shared: &Shared, plan: usize, first_open: bool, token: &CancellationToken) {
    let w = shared.plans[plan].fault.window;
    let period = match (w.every, w.length) {
        (Some(every), Some(length)) if every > length => Some(every),
        _ => None,
    };
    for k in 0u32.. {
        let start = match (period, k) {
            (_, 0) => w.at,
            (Some(every), _) => match every.checked_mul(k) {
                Some(d) => w.at + d,
                None => return,
            },
            (None, _) => return,
        };
        if !(k == 0 && first_open) {
            if !wait(shared, start, token).await {
                return;
            }
            open(shared, plan, k, members(shared, plan, k));
        }
        let ended = match w.length {
            Some(length) if period.is_some() || w.every.is_none() => {
                wait(shared, start + length, token).await
            }
            _ => {
                token.cancelled().await;
                false
            }
        };
        close(shared, plan, k);
        if !ended {
            return;
        }
    }
}

async fn firings(shared: &Shared, plan: usize, action: Action, token: &CancellationToken) {
    let w = shared.plans[plan].fault.window;
    let end = w.length.map(|l| w.at + l);
    let span = w.every.is_some();
    if span {
        if !wait(shared, w.at, token).await {
            return;
        }
        set(shared, |s| {
            s.open.push(Open {
                plan,
                window: 0,
                opened: Instant::now(),
                members: Arc::new(Members::All),
            })
        });
    }
    for k in 0u32.. {
        let t = match (w.every, k) {
            (_, 0) => w.at,
            (Some(every), _) => match every.checked_mul(k) {
                Some(d) => w.at + d,
                None => break,
            },
            (None, _) => break,
        };
        if k > 0 && end.is_some_and(|e| t >= e) {
            break;
        }
        if !wait(shared, t, token).await {
            return;
        }
        ledger(shared, plan, true);
        action.fire(shared, plan, k, token).await;
        ledger(shared, plan, false);
    }
    if span {
        match end {
            Some(end) => {
                wait(shared, end, token).await;
            }
            None => token.cancelled().await,
        }
        set(shared, |s| s.open.retain(|o| o.plan != plan));
    }
}

/// Sleeps until `offset` on the run clock; false if the run was cancelled first.
async fn wait(shared: &Shared, offset: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep_until(shared.clock.at(offset)) => true,
    }
}

fn members(shared: &Shared, plan: usize, window: u32) -> Arc<Members> {
    let p = &shared.plans[plan];
    let open = || {
        shared
            .registry
            .snapshot()
            .into_iter()
            .map(|c| c.key)
            .collect()
    };
    Arc::new(Members::new(&p.fault.connections, p.seed, window, open))
}

fn open(shared: &Shared, plan: usize, window: u32, members: Arc<Members>) {
    let opened = Instant::now();
    let cuts = matches!(
        shared.plans[plan].effect,
        Effect::Stage(StageSpec::Blackhole)
    );
    let covered = cuts.then(|| members.clone());
    set(shared, |s| {
        s.open.push(Open {
            plan,
            window,
            opened,
            members,
        })
    });
    ledger(shared, plan, true);
    if let Some(members) = covered {
        blackhole::window_opened(shared, plan, &members);
    }
}

fn close(shared: &Shared, plan: usize, window: u32) {
    set(shared, |s| {
        s.open.retain(|o| !(o.plan == plan && o.window == window))
    });
    ledger(shared, plan, false);
}

/// Publishes a changed copy of the set; links pick it up on their next chunk.
fn set(shared: &Shared, change: impl FnOnce(&mut ActiveSet)) {
    shared.active.send_modify(|current| {
        let mut next = ActiveSet::clone(current);
        change(&mut next);
        next.open.sort_by_key(|o| o.plan);
        *current = Arc::new(next);
    });
}

fn ledger(shared: &Shared, plan: usize, started: bool) {
    let p = &shared.plans[plan];
    let (fault, name, kind) = (p.fault.id, p.fault.name.clone(), p.kind().to_string());
    shared.events.emit(if started {
        Event::FaultStarted { fault, name, kind }
    } else {
        Event::FaultStopped { fault, name, kind }
    });
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Distribution, NetworkFaultKind};
    use crate::shim::test_util::{Harness, echo_server, fault};
    use std::time::Duration;

    fn latency(at: u64, length: Option<u64>, every: Option<u64>) -> crate::scenario::NetworkFault {
        let kind = NetworkFaultKind::Latency {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            distribution: Distribution::Uniform,
        };
        let mut f = fault(
            kind,
            Duration::from_millis(at),
            length.map(Duration::from_millis),
        );
        f.window.every = every.map(Duration::from_millis);
        f
    }

    #[tokio::test]
    async fn windows_open_close_and_repeat_on_the_clock() {
        let echo = echo_server().await;
        let faults = vec![latency(50, Some(100), Some(250)), latency(0, None, None)];
        let h = Harness::start(faults, 1, echo, false).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(h.handle.active_faults(), vec!["latency#0", "latency#1"]);
        tokio::time::sleep(Duration::from_millis(125)).await; // 225 ms: first window closed
        assert_eq!(h.handle.active_faults(), vec!["latency#1"]);
        tokio::time::sleep(Duration::from_millis(125)).await; // 350 ms: second window open
        assert_eq!(h.handle.active_faults(), vec!["latency#0", "latency#1"]);
        let ledger = h.stop().await;
        assert_eq!(ledger[0].windows.len(), 2);
        assert!(ledger[0].windows[0].1.is_some());
        // The window to the end of the run is closed by the cancellation.
        assert_eq!(ledger[1].windows.len(), 1);
        assert!(ledger[1].windows[0].1.is_some());
        assert!(
            ledger.iter().all(|f| f.connections_touched == 0),
            "no traffic, no touch"
        );
    }
}
