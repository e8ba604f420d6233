//! The fault stages on one direction of one connection, kept in step with the timeline.
//!
//! [`Chain::sync`] runs once per chunk: when the timeline's set has not changed it costs
//! one atomic load, so the no-fault path stays lock-free. On a change it keeps the stages
//! of windows still open (their RNG and state go on), builds stages for new windows and
//! drops those of closed ones. A link with stages in place also waits on
//! [`Chain::follow`], so a window closing (or a staggered start coming) is seen at once
//! even on an idle connection.
//!
//! When the run has WebSocket faults for this direction, the chain starts with the
//! direction's WebSocket layer (`ws::Layer`): a chunk goes first through the layer and
//! the message stages (`ws_*`), then through the byte stages, so the layer reads the
//! stream as its source wrote it. While no message stage is in place the layer only
//! follows the bytes ([`Chain::observe`] on the fast path). Message stages and injected
//! frames also produce chunks between reads (a window closing lets held messages go, a
//! hold runs out, a close is fired): they wait in `ready` for the link to queue them.
//!
//! Touch accounting lives here, the same for every stage (see `ledger`): each stage
//! counts the bytes it acted on; the first act counts the connection as touched (and
//! stamps the touch board for faults that break links); when the stage goes away its
//! bytes go to the connection's record, which emits the window's one `FaultTouched`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::debug;

use super::conn::ConnInfo;
use super::faults::{Chunk, Effect, Stage, StageSpec};
use super::registry::Kill;
use super::timeline::ActiveSet;
use super::ws::{self, Injection, Layer, MessageStage, Unit};
use super::{Shared, ledger, select};
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
    /// The WebSocket layer, when the run has a `ws_*` fault for this direction.
    ws: Option<Layer>,
    /// Chunks made between reads, for the link to queue.
    ready: Vec<Chunk>,
}

/// A stage in place for one window of one fault.
struct Applied {
    plan: usize,
    window: u32,
    action: &'static str,
    /// The first act stamps the touch board.
    stamps: bool,
    /// Every act stamps it again (see `ws::Spec::breaks`).
    restamps: bool,
    stage: Staged,
    /// Acted at least once on this direction.
    acted: bool,
    /// Bytes acted on, on this direction.
    bytes: u64,
}

enum Staged {
    Bytes(Box<dyn Stage>),
    Messages(Box<dyn MessageStage>),
}

impl<'a> Chain<'a> {
    pub fn new(shared: &'a Shared, info: &'a ConnInfo, dir: Direction) -> Self {
        let mut rx = shared.active.subscribe();
        let set = rx.borrow_and_update().clone();
        let aware = shared
            .plans
            .iter()
            .any(|(_, p)| p.is_websocket() && p.applies_to(dir));
        let mut chain = Self {
            shared,
            info,
            dir,
            rx,
            stages: Vec::new(),
            pending: None,
            scratch: Default::default(),
            ws: aware.then(|| Layer::new(dir, info, shared.max_held)),
            ready: Vec::new(),
        };
        chain.rebuild(&set, Instant::now());
        chain
    }

    /// No fault acts on this link now, and nothing waits to be queued.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
            && self.ready.is_empty()
            && self.ws.as_ref().is_none_or(|ws| ws.passive(false))
    }

    /// Catches up with the timeline and fired injections; call before handling a chunk
    /// that arrived at `now`.
    pub fn sync(&mut self, now: Instant) {
        let changed = self.rx.has_changed().unwrap_or(false);
        if changed || self.pending.is_some_and(|p| p <= now) {
            let set = self.rx.borrow_and_update().clone();
            self.rebuild(&set, now);
        }
        while let Some(injection) = self.ws.as_mut().and_then(Layer::try_injection) {
            self.inject(injection, now);
        }
    }

    /// Waits for the timeline to change, a staggered start to come, a stage's wake-up
    /// (see `Stage::wake_at`), a held message's or an injection's time to run out, or an
    /// injection to be fired; then acts on it. Cancel-safe: nothing happens unless it
    /// completes.
    pub async fn follow(&mut self) {
        enum Woke {
            Timeline(bool),
            Deadline,
            Injected(Injection),
        }
        let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let wake = self
            .stages
            .iter()
            .filter_map(|a| match &a.stage {
                Staged::Bytes(stage) => stage.wake_at(),
                Staged::Messages(_) => None,
            })
            .min();
        let pending = match (self.pending, wake) {
            (Some(p), Some(w)) => Some(p.min(w)),
            (p, w) => p.or(w),
        };
        let deadline = self.deadline();
        let woke = tokio::select! {
            r = self.rx.changed() => Woke::Timeline(r.is_ok()),
            () = tokio::time::sleep_until(pending.unwrap_or_else(far)), if pending.is_some() => Woke::Timeline(true),
            () = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => Woke::Deadline,
            injection = next_injection(&mut self.ws) => Woke::Injected(injection),
        };
        let now = Instant::now();
        match woke {
            // The shim is going away; the run's cancellation ends the link.
            Woke::Timeline(false) => std::future::pending::<()>().await,
            Woke::Timeline(true) => {
                let set = self.rx.borrow_and_update().clone();
                self.rebuild(&set, now);
            }
            Woke::Deadline => self.expire(now),
            Woke::Injected(injection) => self.inject(injection, now),
        }
    }

    /// Waits for an injection fired at this direction (never, without a WebSocket layer).
    pub async fn injection(&mut self) -> Injection {
        next_injection(&mut self.ws).await
    }

    fn rebuild(&mut self, set: &ActiveSet, now: Instant) {
        self.pending = None;
        let mut old = std::mem::take(&mut self.stages);
        for open in &set.open {
            let plan = &self.shared.plans[open.plan];
            let (action, breaks, blackhole) = match &plan.effect {
                Effect::Stage(spec) => (
                    spec.action(),
                    spec.breaks(),
                    matches!(spec, StageSpec::Blackhole(_)),
                ),
                Effect::Messages(spec) if self.ws.is_some() => {
                    (spec.action(), spec.breaks(), false)
                }
                Effect::Messages(_) | Effect::Action(_) | Effect::Connect(_) => continue,
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
                    let stamped = blackhole && self.info.since <= open.opened;
                    let stage = match &plan.effect {
                        Effect::Stage(spec) => Staged::Bytes(spec.build(rng, self.dir, || {
                            self.info.mappings.get(open.plan, open.window, now)
                        })),
                        Effect::Messages(spec) => Staged::Messages(spec.build(rng)),
                        Effect::Action(_) | Effect::Connect(_) => {
                            unreachable!("actions and connect faults have no stage (skipped above)")
                        }
                    };
                    Applied {
                        plan: open.plan,
                        window: open.window,
                        action,
                        stamps: breaks && !stamped,
                        restamps: breaks && matches!(stage, Staged::Messages(_)),
                        stage,
                        acted: false,
                        bytes: 0,
                    }
                }
            });
        }
        for gone in old {
            match &gone.stage {
                // A forgotten NAT mapping stays forgotten (see `nat_timeout`).
                Staged::Bytes(stage) if stage.outlives_window() => self.stages.push(gone),
                _ => self.retire(gone, now),
            }
        }
    }

    /// Passes a chunk through the WebSocket layer and every stage in fault order; what
    /// leaves goes onto `out`, after anything made since the last chunk.
    pub fn push(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) {
        out.append(&mut self.ready);
        let hold = self.holds();
        match &mut self.ws {
            Some(ws) if !ws.passive(hold) => {
                let now = chunk.arrival;
                let mut units = Vec::new();
                ws.split(chunk, hold, &mut units);
                let units = self.flow(units, 0, false);
                self.onward(units, now, out);
            }
            Some(ws) => {
                ws.observe(&chunk.data);
                self.push_bytes(chunk, out);
            }
            None => self.push_bytes(chunk, out),
        }
        self.report();
    }

    /// Follows bytes forwarded on the fast path ([`Chain::is_empty`] holds).
    pub fn observe(&mut self, data: &[u8]) {
        if let Some(ws) = &mut self.ws {
            ws.observe(data);
            self.report();
        }
    }

    /// Moves what was made between reads onto `out`.
    pub fn take_ready(&mut self, out: &mut Vec<Chunk>) {
        out.append(&mut self.ready);
    }

    /// The source ended at `at`: everything held goes out, before the end of stream.
    pub fn ended(&mut self, at: Instant) {
        let Some(ws) = &mut self.ws else {
            return;
        };
        let mut units = Vec::new();
        ws.release(at, &mut units);
        let units = self.flow(units, 0, true);
        self.make_ready(units, at);
    }

    /// Hands an injected frame to the layer; a close first lets every held message go,
    /// as nothing may follow it.
    pub fn inject(&mut self, injection: Injection, now: Instant) {
        let Some(ws) = &mut self.ws else {
            return;
        };
        let close = matches!(injection.kind, ws::inject::Kind::Close { .. });
        ws.inject(injection, now);
        let units = match close {
            true => self.flow(Vec::new(), 0, true),
            false => Vec::new(),
        };
        self.make_ready(units, now);
    }

    fn deadline(&self) -> Option<Instant> {
        let held = self.stages.iter().filter_map(|a| match &a.stage {
            Staged::Messages(stage) => stage.deadline(),
            Staged::Bytes(_) => None,
        });
        held.chain(self.ws.as_ref().and_then(Layer::deadline)).min()
    }

    /// Lets go what message stages held past its time, and gives up on injections that
    /// found no place in time.
    fn expire(&mut self, now: Instant) {
        for i in 0..self.stages.len() {
            let Staged::Messages(stage) = &mut self.stages[i].stage else {
                continue;
            };
            if stage.deadline().is_some_and(|d| d <= now) {
                let mut units = Vec::new();
                stage.expire(now, &mut units);
                let units = self.flow(units, i + 1, false);
                self.make_ready(units, now);
            }
        }
        if let Some(ws) = &mut self.ws {
            let mut chunks = Vec::new();
            ws.expire(now, &mut chunks);
            let mut ready = std::mem::take(&mut self.ready);
            for chunk in chunks {
                self.push_bytes(chunk, &mut ready);
            }
            self.ready = ready;
        }
    }

    /// A message stage is in place: the layer holds messages whole for it.
    fn holds(&self) -> bool {
        self.stages
            .iter()
            .any(|a| matches!(a.stage, Staged::Messages(_)))
    }

    /// Passes units through the message stages from index `from` on; with `flush`, each
    /// stage then lets go all it holds (the stream ends, or a close comes).
    fn flow(&mut self, mut units: Vec<Unit>, from: usize, flush: bool) -> Vec<Unit> {
        let (shared, info) = (self.shared, self.info);
        let mut next = Vec::new();
        for applied in self.stages.iter_mut().skip(from) {
            if !matches!(applied.stage, Staged::Messages(_)) {
                continue;
            }
            for unit in units.drain(..) {
                let Staged::Messages(stage) = &mut applied.stage else {
                    continue;
                };
                if let Some(bytes) = stage.push(unit, &mut next) {
                    acted(shared, info, applied, bytes);
                }
            }
            if let (true, Staged::Messages(stage)) = (flush, &mut applied.stage) {
                stage.flush(&mut next);
            }
            std::mem::swap(&mut units, &mut next);
        }
        units
    }

    /// Units that left the message stages: back to chunks, then through the byte stages.
    fn onward(&mut self, mut units: Vec<Unit>, now: Instant, out: &mut Vec<Chunk>) {
        let mut chunks = Vec::new();
        if let Some(ws) = &mut self.ws {
            ws.join(&mut units, now, &mut chunks);
        }
        for chunk in chunks {
            self.push_bytes(chunk, out);
        }
    }

    fn make_ready(&mut self, units: Vec<Unit>, now: Instant) {
        let mut ready = std::mem::take(&mut self.ready);
        self.onward(units, now, &mut ready);
        self.ready = ready;
    }

    /// Passes a chunk through every byte stage in fault order; what leaves goes onto
    /// `out`.
    fn push_bytes(&mut self, chunk: Chunk, out: &mut Vec<Chunk>) {
        if self.stages.is_empty() {
            out.push(chunk);
            return;
        }
        let (mut input, mut output) = std::mem::take(&mut self.scratch);
        input.push(chunk);
        for applied in &mut self.stages {
            if !matches!(applied.stage, Staged::Bytes(_)) {
                continue;
            }
            for c in input.drain(..) {
                let Staged::Bytes(stage) = &mut applied.stage else {
                    continue;
                };
                if let Some(bytes) = stage.push(c, &mut output) {
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
            let Staged::Bytes(stage) = &mut applied.stage else {
                continue;
            };
            let next = stage.finish(t);
            if next != Some(t) {
                acted(self.shared, self.info, applied, 0);
            }
            t = next?;
        }
        Some(t)
    }

    /// A stage or an injected close has ended the connection: the directions to close
    /// once everything let through is written (see `Stage::closes`, `ws::inject`).
    pub fn closes(&self) -> Option<Direction> {
        let cut = self
            .stages
            .iter()
            .any(|a| matches!(&a.stage, Staged::Bytes(s) if s.closes()));
        match cut {
            true => Some(Direction::Both),
            false => self.ws.as_ref().and_then(Layer::closing),
        }
    }

    /// A stage has reset the connection (see `Stage::resets`): tells its task to abort it.
    pub fn check_reset(&self) {
        let reset = self
            .stages
            .iter()
            .any(|a| matches!(&a.stage, Staged::Bytes(s) if s.resets()));
        if reset {
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
            .filter_map(|a| match &a.stage {
                Staged::Bytes(stage) => stage.queue_limit(),
                Staged::Messages(_) => None,
            })
            .min()
    }

    /// A stage's window closed: what it held goes on through the stages after it, and
    /// its window reports.
    fn retire(&mut self, mut gone: Applied, now: Instant) {
        if let Staged::Messages(stage) = &mut gone.stage {
            let mut units = Vec::new();
            stage.flush(&mut units);
            if !units.is_empty() {
                let from = self
                    .stages
                    .iter()
                    .position(|a| a.plan > gone.plan)
                    .unwrap_or(self.stages.len());
                let units = self.flow(units, from, false);
                self.make_ready(units, now);
            }
        }
        self.release(gone);
    }

    /// What the layer could not follow or hold goes to the ledger: a stream given up on
    /// (against every WebSocket fault of this direction, none of which can act on it any
    /// more), a message too large to hold (against the message stages it escaped).
    fn report(&mut self) {
        let Some(ws) = &mut self.ws else {
            return;
        };
        let (gave_up, skipped) = (ws.take_gave_up(), ws.take_skipped());
        let (shared, info) = (self.shared, self.info);
        if let Some(why) = gave_up {
            debug!(conn = info.conn, dir = ?self.dir, why, "shim: no longer following WebSocket frames");
            for (plan, p) in shared.plans.iter() {
                if p.is_websocket() && p.applies_to(self.dir) {
                    ledger::emit(shared, plan, info.conn, info.client, "gave_up", 0);
                }
            }
        }
        for _ in 0..skipped {
            for a in &self.stages {
                if matches!(a.stage, Staged::Messages(_)) {
                    ledger::emit(shared, a.plan, info.conn, info.client, "too_large", 0);
                }
            }
        }
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

async fn next_injection(ws: &mut Option<Layer>) -> Injection {
    match ws {
        Some(ws) => ws.injection().await,
        None => std::future::pending().await,
    }
}

fn acted(shared: &Shared, info: &ConnInfo, applied: &mut Applied, bytes: usize) {
    shared.stats.affected(applied.plan, bytes);
    applied.bytes += bytes as u64;
    if applied.acted {
        if applied.restamps {
            ledger::board(shared, info.client, shared.clock.now_us());
        }
        return;
    }
    applied.acted = true;
    if info.touches.first_act(applied.plan, applied.window) {
        let since = match &applied.stage {
            Staged::Bytes(stage) => stage.acted_since(),
            Staged::Messages(_) => None,
        };
        let at = since.map(|t| shared.clock.us_at(t));
        ledger::first_act(shared, applied.plan, info.client, applied.stamps, at);
    }
}
