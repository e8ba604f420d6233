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
//! as it opens (see `blackhole::window_opened`); a blackhole with `close_after` (`reset_after`) ends
//! the covered connections open at its start that long after it (see
//! `blackhole::close_open`).
//!
//! Faults can come and go while the shim runs (see `control`): each has its own task
//! under its own token, and [`withdraw`] takes one out of the set at once.

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

/// Starts the timeline task of fault `plan`; it ends when `token` is cancelled (the run
/// ends, or the fault is withdrawn). A window whose start has already come is opened
/// before this returns, so a fault `at: 0s` is in force for the very first byte.
pub(crate) fn spawn_plan(
    shared: &Arc<Shared>,
    plan: usize,
    token: CancellationToken,
    tracker: &TaskTracker,
) {
    let shared = shared.clone();
    let at = shared.plans[plan].fault.window.at;
    match shared.plans[plan].effect.clone() {
        Effect::Stage(_) | Effect::Messages(_) | Effect::Connect(_) => {
            let first = (shared.clock.elapsed() >= at).then(|| {
                let members = members(&shared, plan, 0);
                open(&shared, plan, 0, members.clone());
                members
            });
            tracker.spawn(async move { windows(&shared, plan, first, &token).await });
        }
        Effect::Action(action) => {
            tracker.spawn(async move { firings(&shared, plan, action, &token).await });
        }
    }
}

/// Takes fault `plan` out of the active set at once (its task, cancelled, records the
/// window's end); links drop its stages on their next chunk or timeline check.
pub(crate) fn withdraw(shared: &Shared, plan: usize) {
    set(shared, |s| s.open.retain(|o| o.plan != plan));
}

/// Runs a windowed fault's windows; `first`: window 0 is already open, with these members.
async fn windows(
    shared: &Shared,
    plan: usize,
    mut first: Option<Arc<Members>>,
    token: &CancellationToken,
) {
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
        let members = match first.take() {
            Some(members) => members,
            None => {
                if !wait_to_start(shared, start, token).await {
                    return;
                }
                let members = members(shared, plan, k);
                open(shared, plan, k, members.clone());
                members
            }
        };
        let end = match w.length {
            Some(length) if period.is_some() || w.every.is_none() => Some(start + length),
            _ => None,
        };
        let mut ended = true;
        if let Some(after) = blackhole::end_after(&shared.plans[plan]) {
            let (opened, t) = (Instant::now(), shared.clock.elapsed() + after);
            if end.is_none_or(|e| t < e) {
                ended = wait(shared, t, token).await;
                if ended {
                    blackhole::close_open(shared, plan, &members, opened);
                }
            }
        }
        if ended {
            ended = match end {
                Some(end) => wait(shared, end, token).await,
                None => {
                    token.cancelled().await;
                    false
                }
            };
        }
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
        if shared.until.is_some_and(|u| t >= u) {
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

/// [`wait`] for a window to open or an act to fire: false at once when `offset` is at or
/// past the end of the fault timeline ([`Shared::until`]), so nothing opens or fires in
/// a run's drain (windows already open still close at their own end).
async fn wait_to_start(shared: &Shared, offset: Duration, token: &CancellationToken) -> bool {
    shared.until.is_none_or(|u| offset < u) && wait(shared, offset, token).await
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
        Effect::Stage(StageSpec::Blackhole(_))
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
