//! Virtual clients: one task per client, started and stopped on the schedule of
//! [`plan`], each running the recovery engine against the shim.

mod client;
pub mod plan;

use std::sync::Arc;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::EventSink;
use crate::metrics::{Counter, Metrics};
use crate::recovery::{self, Dialer, SessionConfig, TcpDialer, TlsError};
use crate::rng;
use crate::scenario::{Protocol, Scenario, ServerMode, Target};
use crate::touch::TouchBoard;

pub use client::ClientApp;

/// The header that tells the shim which client a connection belongs to, so faults can
/// target client indices rather than accept order.
pub const CLIENT_HEADER: &str = "x-squall-client";

/// Tokens that end the load in two steps.
#[derive(Clone)]
pub struct Stops {
    /// Stop sending new messages; sessions then drain what is unconfirmed.
    pub stop_sending: CancellationToken,
    /// Stop everything now; what is still unconfirmed is counted lost.
    pub hard: CancellationToken,
}

/// Where clients connect: the URL naming the server (for TLS and the `Host` header) and
/// the address actually dialled (the shim in front of it); and which of the scenario's
/// clients this process runs.
#[derive(Debug, Clone)]
pub struct Entry {
    pub url: String,
    pub via: std::net::SocketAddr,
    /// Only this slice of the clients (all of them when `None`).
    pub shard: Option<Shard>,
}

/// The `index`-th of `count` slices of a run's clients (`--shard I/N`, 0-based as
/// Kubernetes' `JOB_COMPLETION_INDEX`). Client `k` belongs to slice `k mod count`, so every
/// group and every stage is spread evenly, and each client keeps its index, its seed and
/// its start time: the slices together are the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn owns(&self, client: u32) -> bool {
        client % self.count == self.index
    }

    /// How many of `clients` (indices `0..clients`) this slice holds.
    pub fn share_of(&self, clients: u32) -> u32 {
        clients / self.count + u32::from(clients % self.count > self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let form = "write it as I/N: the I-th of N slices, 0 <= I < N (e.g. 0/3)";
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: {form}"))?;
        let (Ok(index), Ok(count)) = (i.trim().parse::<u32>(), n.trim().parse::<u32>()) else {
            return Err(format!("{text:?}: {form}"));
        };
        if count == 0 || index >= count {
            return Err(format!("{text:?}: {form}"));
        }
        Ok(Shard { index, count })
    }
}

/// Spawns every client of `scenario` on `tracker`: each opens `entry.url` through the
/// shim at `entry.via`. With `touches`, clients time detection and downtime from the fault that broke
/// their link. Fails only when the TLS configuration (a CA file) cannot be built.
pub fn spawn(
    scenario: &Scenario,
    entry: &Entry,
    metrics: &Metrics,
    events: &EventSink,
    stops: &Stops,
    touches: Option<Arc<TouchBoard>>,
    tracker: &TaskTracker,
) -> Result<(), TlsError> {
    let clock = metrics.clock();
    let (protocol, headers, subprotocols) = match &scenario.target {
        Target::Builtin(_) => (Protocol::Squall, vec![], vec![]),
        Target::External(ext) => (ext.protocol, ext.headers.clone(), ext.subprotocols.clone()),
    };
    // Every client dials the shim; the URL still names the server (TLS, `Host`).
    let dialer: Arc<dyn Dialer> = Arc::new(TcpDialer {
        via: Some(entry.via),
    });
    let tls = match &scenario.target {
        Target::External(ext) if ext.url.starts_with("wss://") => {
            Some(recovery::tls_client_config(ext.ca_file.as_deref())?)
        }
        _ => None,
    };
    // Session ids must not collide with a previous run's sessions that an external
    // server may still hold: the run's start time makes them unique across runs.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let max_message_bytes = largest_inbound(scenario);
    let plans = plan::plan(&scenario.groups, scenario.duration)
        .into_iter()
        .filter(|p| entry.shard.is_none_or(|s| s.owns(p.index)));
    for plan in plans {
        let group = &scenario.groups[plan.group];
        let config = SessionConfig {
            url: entry.url.clone(),
            session: String::new(),
            protocol,
            headers: headers
                .iter()
                .cloned()
                .chain([(CLIENT_HEADER.to_string(), plan.index.to_string())])
                .collect(),
            subprotocols: subprotocols.clone(),
            policy: group.recovery.clone(),
            kind: group.messages.kind,
            rng: rng::rng(scenario.seed, "backoff", u64::from(plan.index)),
            dialer: Some(dialer.clone()),
            tls: tls.clone(),
            max_message_bytes,
        };
        let mut app = ClientApp {
            index: plan.index,
            group: plan.group,
            messages: group.messages,
            rng: rng::rng(scenario.seed, "client", u64::from(plan.index)),
            metrics: metrics.clone(),
            events: events.clone(),
            stop: stops.stop_sending.clone(),
            stop_at: Instant::now(),
            next_due: None,
            connected: false,
            ever_connected: false,
            highest_sent: 0,
            dropped: 0,
            message_number: 0,
            confirmed: 0,
            echoes: 0,
            expects_echoes: matches!(&scenario.target, Target::Builtin(b) if b.mode == ServerMode::Echo),
            touches: touches.clone(),
            live_since_us: 0,
            outage_touch_us: None,
            outage_since_us: None,
        };
        let hard = stops.hard.clone();
        // On the heap, and moved into the last period's session rather than cloned: a
        // task holds its largest state for its whole life.
        let mut template = Some(Box::new(config));
        tracker.spawn(async move {
            let periods = plan.active.len();
            for (period, (start, stop)) in plan.active.into_iter().enumerate() {
                tokio::select! {
                    _ = hard.cancelled() => return,
                    _ = app.stop.cancelled() => return,
                    _ = sleep_until(clock.at(start)) => {}
                }
                // Made after the wait and moved straight into the session, so the task
                // keeps no slot for it.
                let Some(mut config) = (if period + 1 == periods {
                    template.take().map(|c| *c)
                } else {
                    template.as_deref().cloned()
                }) else {
                    return;
                };
                config.session = format!("c{}.{period}.{nonce:x}", app.index);
                app.stop_at = clock.at(stop);
                app.schedule_from(clock.at(start));
                app.highest_sent = 0;
                app.message_number = 0;
                app.confirmed = 0;
                app.echoes = 0;
                app.metrics
                    .record(app.group, |r| r.count(Counter::Sessions, 1));
                let outcome = Box::pin(recovery::drive(config, &mut app, hard.clone())).await;
                app.session_ended();
                let lost = outcome.undelivered + std::mem::take(&mut app.dropped);
                app.metrics
                    .record(app.group, |r| r.count(Counter::MessagesLost, lost));
            }
        });
    }
    Ok(())
}

/// The largest message payload a client of `scenario` can be sent: an echo of the largest
/// message any group sends, or the built-in server's stream messages. Each client's read
/// limit follows from it, so a peer cannot make it buffer more (`protocol::read_limit`).
pub fn largest_inbound(scenario: &Scenario) -> u64 {
    let sent = scenario
        .groups
        .iter()
        .map(|g| g.messages.max_bytes)
        .max()
        .unwrap_or(0);
    match &scenario.target {
        Target::Builtin(b) => match b.mode {
            ServerMode::Stream { size_bytes, .. } => sent.max(size_bytes),
            ServerMode::Echo => sent,
        },
        Target::External(_) => sent,
    }
}
