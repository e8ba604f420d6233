//! Faults added, replaced and withdrawn while the shim runs (the standalone proxy's control
//! API), fed into the same active set the timeline publishes, so the data path does not
//! change: a link sees a new fault the way it sees a window open.
//!
//! Every fault in place has a timeline task under its own child token; withdrawing one
//! cancels that token (its task records the window's end) and takes it out of the active
//! set at once. Plans are never removed from [`Shared::plans`] — links may still hold
//! their index — so a shim accepts at most [`MAX_PLANS`] faults over its life.
//!
//! The lock here is the control plane's alone: the data path never takes it, and it is
//! never held across an await.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::faults::Plan;
use super::{Shared, ShimError, timeline};
use crate::scenario::NetworkFault;
use std::sync::Arc;

/// Faults one shim may have over its life: each costs a few hundred bytes that stay.
pub(crate) const MAX_PLANS: usize = 100_000;

pub(crate) struct Control {
    /// The shim's own token: every fault's token is a child of it.
    token: CancellationToken,
    tracker: TaskTracker,
    /// The faults in place, in the order they were added.
    live: Mutex<Vec<Live>>,
}

struct Live {
    /// As given (an added fault's `at` counts from when it was added).
    fault: NetworkFault,
    plan: usize,
    token: CancellationToken,
}

impl Control {
    pub fn new(token: CancellationToken, tracker: TaskTracker) -> Self {
        Self {
            token,
            tracker,
            live: Mutex::new(Vec::new()),
        }
    }

    /// Starts the timeline of every fault the shim started with.
    pub fn start_all(&self, shared: &Arc<Shared>) {
        let mut live = self.lock();
        for (plan, p) in shared.plans.iter() {
            live.push(self.start(shared, plan, p.fault.clone()));
        }
    }

    fn start(&self, shared: &Arc<Shared>, plan: usize, fault: NetworkFault) -> Live {
        let token = self.token.child_token();
        timeline::spawn_plan(shared, plan, token.clone(), &self.tracker);
        Live { fault, plan, token }
    }

    /// Adds `fault`, its `at` counting from now; with `replace`, the fault of the same
    /// name (if any) is withdrawn in the same step. Returns its name (given, or
    /// `<kind>#<id>` for an unnamed one).
    pub fn add(
        &self,
        shared: &Arc<Shared>,
        mut fault: NetworkFault,
        replace: bool,
    ) -> Result<String, ShimError> {
        let mut live = self.lock();
        let existing = live.iter().position(|l| l.fault.name == fault.name);
        if existing.is_some() && !replace {
            return Err(ShimError::Duplicate { name: fault.name });
        }
        let id = shared.plans.count();
        if id >= MAX_PLANS {
            return Err(ShimError::TooManyFaults { max: MAX_PLANS });
        }
        fault.id = id;
        if fault.name.is_empty() {
            fault.name = format!("{}#{id}", fault.kind.name());
        }
        let mut shifted = fault.clone();
        shifted.window.at += shared.clock.elapsed();
        // Checked before anything changes, so a refusal leaves the old fault in place.
        let plan = Plan::new(&shifted, shared.seed)?;
        if let Some(i) = existing {
            let old = live.remove(i);
            withdraw(shared, &old);
        }
        // Pushes happen under the lock only, so the two indices agree.
        let index = shared.plans.push(plan);
        let counters = shared
            .stats
            .push_fault(fault.name.clone(), fault.kind.name().to_string());
        debug_assert_eq!((index, counters), (id, id));
        let name = fault.name.clone();
        live.push(self.start(shared, index, fault));
        Ok(name)
    }

    /// Withdraws the fault named `name`; false if there is none.
    pub fn remove(&self, shared: &Shared, name: &str) -> bool {
        let mut live = self.lock();
        let Some(i) = live.iter().position(|l| l.fault.name == name) else {
            return false;
        };
        let old = live.remove(i);
        withdraw(shared, &old);
        true
    }

    pub fn faults(&self) -> Vec<NetworkFault> {
        self.lock().iter().map(|l| l.fault.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        // A panic elsewhere while holding the lock leaves the list itself consistent.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn withdraw(shared: &Shared, live: &Live) {
    live.token.cancel();
    timeline::withdraw(shared, live.plan);
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Distribution, NetworkFaultKind};
    use crate::shim::ShimError;
    use crate::shim::test_util::{Harness, connect_as, echo_server, fault, roundtrip};
    use std::time::Duration;

    fn latency(ms: u64, name: &str) -> crate::scenario::NetworkFault {
        let mut f = fault(
            NetworkFaultKind::Latency {
                latency: Duration::from_millis(ms),
                jitter: Duration::ZERO,
                distribution: Distribution::Uniform,
            },
            Duration::ZERO,
            None,
        );
        f.name = name.into();
        f
    }

    #[tokio::test]
    async fn a_fault_added_while_traffic_flows_acts_at_once_and_goes_when_withdrawn() {
        let echo = echo_server().await;
        let h = Harness::start(Vec::new(), 1, echo, true).await;
        let mut s = connect_as(h.addr(), 0).await;
        assert!(roundtrip(&mut s, b"a").await < Duration::from_millis(100));
        h.handle.add_fault(latency(150, "slow")).unwrap();
        let rtt = roundtrip(&mut s, b"b").await;
        // Both directions: 2 × 150 ms.
        assert!(rtt >= Duration::from_millis(290), "{rtt:?}");
        assert_eq!(h.handle.active_faults(), vec!["slow"]);
        assert!(matches!(
            h.handle.add_fault(latency(1, "slow")),
            Err(ShimError::Duplicate { .. })
        ));
        // Replaced in one step: the new parameters from now on.
        h.handle.replace_fault(latency(40, "slow")).unwrap();
        let rtt = roundtrip(&mut s, b"c").await;
        assert!(
            (Duration::from_millis(75)..Duration::from_millis(250)).contains(&rtt),
            "{rtt:?}"
        );
        assert!(h.handle.remove_fault("slow"));
        assert!(!h.handle.remove_fault("slow"));
        assert!(roundtrip(&mut s, b"d").await < Duration::from_millis(60));
        assert!(h.handle.faults().is_empty() && h.handle.active_faults().is_empty());
        // A fault the shim cannot apply changes nothing.
        let bad = fault(
            NetworkFaultKind::Corrupt { probability: 2.0 },
            Duration::ZERO,
            None,
        );
        assert!(matches!(
            h.handle.add_fault(bad),
            Err(ShimError::Invalid { .. })
        ));
        assert!(h.handle.faults().is_empty());
        let ledger = h.stop().await;
        assert_eq!(ledger.len(), 2, "one entry per plan: {ledger:?}");
        assert!(
            ledger
                .iter()
                .all(|f| f.windows.iter().all(|w| w.1.is_some()))
        );
    }

    #[tokio::test]
    async fn an_added_faults_at_counts_from_when_it_was_added() {
        let echo = echo_server().await;
        let h = Harness::start(Vec::new(), 1, echo, false).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut f = latency(100, "later");
        f.window.at = Duration::from_millis(150);
        f.window.length = Some(Duration::from_millis(200));
        h.handle.add_fault(f).unwrap();
        assert!(h.handle.active_faults().is_empty(), "not yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(h.handle.active_faults(), vec!["later"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(h.handle.active_faults().is_empty(), "its window closed");
        assert_eq!(h.handle.faults()[0].window.at, Duration::from_millis(150));
        h.stop().await;
    }
}
