//! The fault stages on one direction of one connection, kept in step with the timeline.
//!
//! [`Chain::sync`] runs once per chunk: when the timeline's set has not changed it costs
//! one atomic load, so the no-fault path stays lock-free. On a change it keeps the stages
//! of windows still open (their RNG and state go on), builds stages for new windows and
//! drops those of closed ones. A link with stages in place also waits on
//! [`Chain::follow`], so a window closing (or a staggered start coming) is seen at once
//! even on an idle connection.
//!
//! Touch accounting lives here, the same for every stage (see `ledger`): each stage
//! counts the bytes it acted on; the first act counts the connection as touched (and
//! stamps the touch board for faults that break links); when the stage goes away its
//! bytes go to the connection's record, which emits the window's one `FaultTouched`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::conn::ConnInfo;
use super::faults::{Chunk, Effect, Stage, StageSpec};
use super::registry::Kill;
use super::select;
use super::timeline::ActiveSet;
use super::{Shared, ledger};
use crate::scenario::Direction;

pub(crate) struct Chain<'a> {
    shared: &'a Shared,
    info: &'a ConnInfo,
    dir: Direction,
    rx: watch::Receiver<Arc<ActiveSet>>,
    stages: Vec<Applied>,
    /// The earliest staggered start on this link not reached yet.
    pending: Option<Instant>,
    /// Reused between chunks so a chain of stages allocates nothing per chunk.
    scratch: (Vec<Chunk>, Vec<Chunk>),
}

/// A stage in place for one window of one fault.
struct Applied {
    plan: usize,
    window: u32,
    action: &'static str,
    /// The first act stamps the touch board.
    stamps: bool,
    stage: Box<dyn Stage>,
    /// Acted at least once on this direction.
    acted: bool,
    /// Bytes acted on, on this direction.
    bytes: u64,
}

impl<'a> Chain<'a> {
    pub fn new(shared: &'a Shared, info: &'a ConnInfo, dir: Direction) -> Self {
        let mut rx = shared.active.subscribe();
        let set = rx.borrow_and_update().clone();
        let mut chain = Self {
            shared,
            info,
            dir,
            rx,
            stages: Vec::new(),
            pending: None,
            scratch: Default::default(),
        };
        chain.rebuild(&set, Instant::now());
        chain
    }

    /// No fault acts on this link now.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Catches up with the timeline; call before handling a chunk that arrived at `now`.
    pub fn sync(&mut self, now: Instant) {
        let changed = self.rx.has_changed().unwrap_or(false);
        if !changed && self.pending.is_none_or(|p| p > now) {
            return;
        }
        let set = self.rx.borrow_and_update().clone();
        self.rebuild(&set, now);
    }

    /// Waits for the timeline to change, a staggered start to come or a stage's wake-up
    /// (see `Stage::wake_at`), then catches up. Cancel-safe: nothing happens unless it
    /// completes.
    pub async fn follow(&mut self) {
        let wake = self.stages.iter().filter_map(|a| a.stage.wake_at()).min();
        let pending = match (self.pending, wake) {
            (Some(p), Some(w)) => Some(p.min(w)),
            (p, w) => p.or(w),
        };
        let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let live = tokio::select! {
            r = self.rx.changed() => r.is_ok(),
            () = tokio::time::sleep_until(pending.unwrap_or_else(far)), if pending.is_some() => true,
        };
        if !live {
            // The shim is going away; the run's cancellation ends the link.
            std::future::pending::<()>().await;
        }
        let set = self.rx.borrow_and_update().clone();
        self.rebuild(&set, Instant::now());
    }

    fn rebuild(&mut self, set: &ActiveSet, now: Instant) {
        self.pending = None;
        let mut old = std::mem::take(&mut self.stages);
        for open in &set.open {
            let plan = &self.shared.plans[open.plan];
            let Effect::Stage(spec) = &plan.effect else {
                continue;
            };
            if !plan.applies_to(self.dir) || !open.members.contains(self.info.key) {
                continue;
            }
            let begins = open.opened
                + select::stagger_offset(plan.fault.window.stagger, plan.seed, self.info.key);
            if begins > now {
                self.pending = Some(self.pending.map_or(begins, |p| p.min(begins)));
                continue;
            }
            let kept = old
                .iter()
                .position(|a| a.plan == open.plan && a.window == open.window);
            self.stages.push(match kept {
                Some(i) => old.swap_remove(i),
                None => {
                    self.info.touches.hold(open.plan, open.window);
                    let rng =
                        plan.link_rng(open.window, self.dir, self.info.key, self.info.ordinal);
                    // A blackhole stamped the connections open at its start already (see
                    // `blackhole::window_opened`); a later one is cut from its first byte.
                    let stamped =
                        matches!(spec, StageSpec::Blackhole(_)) && self.info.since <= open.opened;
                    Applied {
                        plan: open.plan,
                        window: open.window,
                        action: spec.action(),
                        stamps: spec.breaks() && !stamped,
                        stage: spec.build(rng, self.dir),
                        acted: false,
                        bytes: 0,
                    }
                }
            });
        }
        for gone in old {
            self.release(gone);
        }
    }

    /// Passes a chunk through every stage in fault order; what leaves goes onto `out`.
    pub fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) {
        if self.stages.is_empty() {
            out.push(chunk);
            return;
        }
        let (mut input, mut output) = std::mem::take(&mut self.scratch);
        input.push(chunk);
        for applied in &mut self.stages {
            for c in input.drain(..) {
                if let Some(bytes) = applied.stage.push(c, &mut output) {
                    acted(self.shared, self.info, applied, bytes);
                }
            }
            std::mem::swap(&mut input, &mut output);
        }
        out.append(&mut input);
        self.scratch = (input, output);
    }

    /// The source ended at `at`: when the end of stream may follow, per the stages;
    /// `None` while a stage holds it.
    pub fn finish(&mut self, at: Instant) -> Option<Instant> {
        let mut t = at;
        for applied in &mut self.stages {
            let next = applied.stage.finish(t);
            if next != Some(t) {
                acted(self.shared, self.info, applied, 0);
            }
            t = next?;
        }
        Some(t)
    }

    /// A stage has ended the connection (see `Stage::closes`).
    pub fn closes(&self) -> bool {
        self.stages.iter().any(|a| a.stage.closes())
    }

    /// A stage has reset the connection (see `Stage::resets`): tells its task to abort it.
    pub fn check_reset(&self) {
        if self.stages.iter().any(|a| a.stage.resets()) {
            // False when it is already ending: nothing more to do.
            self.shared
                .registry
                .kill(self.info.conn, Kill::Reset(Direction::Both));
        }
    }

    /// The most bytes the link may hold while these stages are in place.
    pub fn queue_limit(&self) -> Option<usize> {
        self.stages
            .iter()
            .filter_map(|a| a.stage.queue_limit())
            .min()
    }

    fn release(&self, applied: Applied) {
        let total = self
            .info
            .touches
            .release(applied.plan, applied.window, applied.bytes);
        if let Some(bytes) = total {
            ledger::emit(
                self.shared,
                applied.plan,
                self.info.conn,
                self.info.client,
                applied.action,
                bytes,
            );
        }
    }
}

impl Drop for Chain<'_> {
    /// The connection ended (or the run did): its windows report now.
    fn drop(&mut self) {
        for applied in std::mem::take(&mut self.stages) {
            self.release(applied);
        }
    }
}

fn acted(shared: &Shared, info: &ConnInfo, applied: &mut Applied, bytes: usize) {
    shared.stats.affected(applied.plan, bytes);
    applied.bytes += bytes as u64;
    if applied.acted {
        return;
    }
    applied.acted = true;
    if info.touches.first_act(applied.plan, applied.window) {
        ledger::first_act(shared, applied.plan, info.client, applied.stamps);
    }
}
