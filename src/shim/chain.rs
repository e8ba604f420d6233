//! The fault stages on one direction of one connection, kept in step with the timeline.
//!
//! [`Chain::sync`] runs once per chunk: when the timeline's set has not changed it costs
//! one atomic load, so the no-fault path stays lock-free. On a change it keeps the stages
//! of windows still open (their RNG and state go on), builds stages for new windows and
//! drops those of closed ones.
//!
//! Touch accounting lives here, the same for every stage: the first chunk a stage sees in
//! a window emits one `FaultTouched` for the connection (shared by both directions, so a
//! `direction: both` fault touches a connection once), and every chunk's bytes go to the
//! fault's `bytes_affected` counter.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

use super::Shared;
use super::faults::{Chunk, Effect, Stage};
use super::select::{self, Key};
use super::timeline::ActiveSet;
use crate::events::Event;
use crate::scenario::Direction;

/// What both directions of a connection know about it.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// Accept order.
    pub conn: u64,
    pub client: Option<u32>,
    pub key: Key,
    /// (plan, window) pairs already reported as touching this connection.
    touched: Mutex<Vec<(usize, u32)>>,
}

impl ConnInfo {
    pub fn new(conn: u64, client: Option<u32>) -> Self {
        let key = client.map_or(Key::Conn(conn), Key::Client);
        Self {
            conn,
            client,
            key,
            touched: Mutex::new(Vec::new()),
        }
    }

    /// True the first time a window of a fault touches this connection.
    fn first_touch(&self, plan: usize, window: u32) -> bool {
        let mut seen = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&(plan, window)) {
            return false;
        }
        seen.push((plan, window));
        true
    }
}

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
    stage: Box<dyn Stage>,
    touched: bool,
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
                None => Applied {
                    plan: open.plan,
                    window: open.window,
                    action: spec.action(),
                    stage: spec.build(plan.link_rng(open.window, self.dir, self.info.conn)),
                    touched: false,
                },
            });
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
                touch(self.shared, self.info, applied, c.data.len());
                applied.stage.push(c, &mut output);
            }
            std::mem::swap(&mut input, &mut output);
        }
        out.append(&mut input);
        self.scratch = (input, output);
    }

    /// The source ended at `at`: when the end of stream may follow, per the stages.
    pub fn finish(&mut self, at: Instant) -> Instant {
        self.stages.iter_mut().fold(at, |t, a| a.stage.finish(t))
    }
}

fn touch(shared: &Shared, info: &ConnInfo, applied: &mut Applied, bytes: usize) {
    shared.stats.affected(applied.plan, bytes);
    if applied.touched {
        return;
    }
    applied.touched = true;
    if !info.first_touch(applied.plan, applied.window) {
        return;
    }
    shared.stats.touched(applied.plan);
    let p = &shared.plans[applied.plan];
    shared.events.emit(Event::FaultTouched {
        fault: p.fault.id,
        name: p.fault.name.clone(),
        kind: p.kind().to_string(),
        conn: info.conn,
        client: info.client,
        action: applied.action.to_string(),
        bytes: bytes as u64,
    });
}
