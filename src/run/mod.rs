//! The story of one run: start the server and the shim, ramp the clients, run for the
//! scenario's duration, drain, stop everything through one cancellation tree, judge the
//! thresholds and write the report — also when interrupted or when something fails midway.

mod live;
mod resources;
mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::events;
use crate::exhaustion::Tally;
use crate::gate;
use crate::load::{self, Shard, Stops};
use crate::metrics::{Counter, Metrics, ScopeDef, Snapshot};
use crate::report::{self, Report, ReportError, RunInfo};
use crate::scenario::{Scenario, Scope, Target, Threshold};
use crate::shim::{Shim, ShimConfig, ShimHandle};
use crate::target::{self, ServerHandle};
use crate::touch::TouchBoard;

pub use live::{Live, Progress};
pub use resources::{ResourceError, fds_needed, raise_fd_limit, workers_needed};
pub use workers::{Workers, run as run_workers};

/// How a run is carried out (beyond the scenario itself).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Parent directory of the report directory; the scenario's `report.dir` otherwise.
    pub out: Option<PathBuf>,
    /// How progress is shown while the run goes.
    pub live: Live,
    /// Run only this slice of the clients; the report is marked with it.
    pub shard: Option<Shard>,
    /// Write the report exactly here rather than in a new directory under `out`.
    pub into: Option<PathBuf>,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    Completed,
    Interrupted,
    /// A threshold with `abort_on_fail` failed for good; says which and when.
    Aborted(String),
    /// The harness could not go on (a component failed to start, resources ran out).
    Failed(String),
}

/// A finished run: its report, where it was written, and how it ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    pub dir: PathBuf,
    pub status: RunStatus,
}

/// Why a run produced no report at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("cannot write the event log: {0}")]
    Events(std::io::Error),
    #[error("{0}")]
    Workers(String),
}

/// Extra time after the run's end for clients to get their last messages confirmed.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long the reachability check of an external target may take.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long stopped components get to finish their goodbyes.
const STOP_DEADLINE: Duration = Duration::from_secs(3);

/// Runs `scenario`. Cancelling `interrupt` (Ctrl-C) stops the run early; the report is
/// still written and marked interrupted.
pub async fn run(
    scenario: Scenario,
    opts: RunOptions,
    interrupt: CancellationToken,
) -> Result<RunOutcome, RunError> {
    // A scenario that cannot fit is refused before anything starts, but still leaves a
    // report saying why (status `failed`, exit code 3).
    let refused = resources::check(&scenario, opts.shard).err();
    let limits = Tally::now();
    let started_at = SystemTime::now();
    let clock = Clock::start();
    let dir = report_dir(&scenario, &opts, started_at)?;
    let (events, ledger) =
        events::spawn_log(clock, Some(dir.join("events.jsonl"))).map_err(RunError::Events)?;
    let metrics = Metrics::scoped(
        clock,
        scenario.groups.iter().map(|g| g.name.clone()).collect(),
        scopes(&scenario),
    );
    let touches = Arc::new(TouchBoard::new(scenario.peak_clients() as usize));

    let root = CancellationToken::new();
    let services = TaskTracker::new();
    let clients = TaskTracker::new();
    let stops = Stops {
        stop_sending: root.child_token(),
        hard: root.child_token(),
    };

    let mut server = None;
    let started = match refused {
        Some(e) => Err(e.to_string()),
        None => start_services(&scenario, &metrics, &events, &touches, &root, &services).await,
    };
    let status = match started {
        Err(e) => RunStatus::Failed(e),
        Ok((shim, built_in, url)) => {
            server = built_in;
            let spawned = load::spawn(
                &scenario,
                &load::Entry {
                    url,
                    via: shim.local_addr(),
                    shard: opts.shard,
                },
                &metrics,
                &events,
                &stops,
                Some(touches.clone()),
                &clients,
            );
            clients.close();
            let status = match spawned {
                Err(e) => RunStatus::Failed(format!("target: {e}")),
                Ok(()) => {
                    let watch = AbortWatch::new(&scenario, started_at, server.as_ref());
                    let ctl = Control {
                        interrupt: &interrupt,
                        stops: &stops,
                        clients: &clients,
                        limits,
                    };
                    drive(&opts, &metrics, &shim, &ctl, &watch).await
                }
            };
            live::clear(opts.live);
            status
        }
    };

    // One tree: stopping the root stops the shim, the server and any straggler.
    root.cancel();
    services.close();
    let _ = tokio::time::timeout(STOP_DEADLINE, async {
        clients.wait().await;
        services.wait().await;
    })
    .await;
    if let Some(server) = &server {
        server.control().detach_events();
    }
    drop(events);
    let faults = tokio::time::timeout(STOP_DEADLINE, ledger)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();

    let snap = snapshot(&metrics, server.as_ref());
    let mut run_info = run_info(&scenario, started_at, clock, &status);
    run_info.shard = opts.shard.map(|s| s.to_string());
    let mut report = Report::build(scenario.to_json(), run_info, &snap, faults);
    gate::judge(&mut report, &scenario.thresholds);
    report::write_all(&dir, &report, &scenario.report.formats)?;
    Ok(RunOutcome {
        report,
        dir,
        status,
    })
}

/// The run's report directory: exactly `opts.into`, or a new one under `opts.out` (the
/// scenario's `report.dir` by default).
fn report_dir(
    scenario: &Scenario,
    opts: &RunOptions,
    started_at: SystemTime,
) -> Result<PathBuf, ReportError> {
    match &opts.into {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
                path: dir.clone(),
                source,
            })?;
            Ok(dir.clone())
        }
        None => {
            let parent = opts
                .out
                .clone()
                .unwrap_or_else(|| scenario.report.dir.clone());
            report::run_dir(&parent, &scenario.name, started_at)
        }
    }
}

/// The run's metrics merged, with the built-in server's own ledger where there is one.
fn snapshot(metrics: &Metrics, server: Option<&ServerHandle>) -> Snapshot {
    let mut snap = metrics.snapshot();
    if let Some(server) = server {
        // The server application's own record: deliveries it had already had are
        // duplicates whatever the protocol state claimed.
        let ledger = server.ledger();
        let dups = snap.total.counter(Counter::MessagesDuplicated) + ledger.duplicates;
        snap.total.set_counter(Counter::MessagesDuplicated, dups);
        snap.total
            .set_counter(Counter::ServerReceived, ledger.unique);
        snap.total.set_counter(Counter::ServerSent, ledger.sent);
        snap.total
            .set_counter(Counter::ServerSentAcked, ledger.acked);
    }
    snap
}

fn run_info(
    scenario: &Scenario,
    started_at: SystemTime,
    clock: Clock,
    status: &RunStatus,
) -> RunInfo {
    RunInfo {
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_s: (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        seed: scenario.seed,
        version: env!("CARGO_PKG_VERSION").to_string(),
        interrupted: *status == RunStatus::Interrupted,
        status: match status {
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Aborted(_) => "aborted",
            RunStatus::Failed(_) => "failed",
        }
        .to_string(),
        error: match status {
            RunStatus::Failed(e) | RunStatus::Aborted(e) => Some(e.clone()),
            _ => None,
        },
        shard: None,
    }
}

/// The thresholds with `abort_on_fail`, judged every second on the data so far.
struct AbortWatch<'a> {
    scenario: &'a Scenario,
    thresholds: Vec<&'a Threshold>,
    json: serde_json::Value,
    started_at: SystemTime,
    server: Option<&'a ServerHandle>,
}

impl<'a> AbortWatch<'a> {
    fn new(
        scenario: &'a Scenario,
        started_at: SystemTime,
        server: Option<&'a ServerHandle>,
    ) -> Self {
        let thresholds: Vec<&Threshold> = scenario
            .thresholds
            .iter()
            .filter(|t| t.abort_on_fail)
            .collect();
        AbortWatch {
            scenario,
            json: if thresholds.is_empty() {
                serde_json::Value::Null
            } else {
                scenario.to_json()
            },
            thresholds,
            started_at,
            server,
        }
    }

    /// Why the run must stop now, if a threshold has failed for good. A threshold with
    /// nothing measured yet waits; see [`gate::failure_is_final`] for the rest.
    fn check(&self, metrics: &Metrics) -> Option<String> {
        let clock = metrics.clock();
        let elapsed = clock.elapsed();
        let due: Vec<&Threshold> = self
            .thresholds
            .iter()
            .copied()
            .filter(|t| elapsed >= t.delay_abort_eval)
            .collect();
        if due.is_empty() {
            return None;
        }
        let snap = snapshot(metrics, self.server);
        let info = run_info(self.scenario, self.started_at, clock, &RunStatus::Completed);
        let report = Report::build(self.json.clone(), info, &snap, Vec::new());
        due.into_iter().find_map(|t| {
            let judged = gate::evaluate(&report, t);
            let value = judged.value?;
            (!judged.ok && gate::failure_is_final(t, value)).then(|| {
                format!(
                    "aborted at {:.1}s: threshold {} `{}` failed (measured {})",
                    elapsed.as_secs_f64(),
                    judged.metric,
                    judged.expression,
                    report::markdown::measured(&judged)
                )
            })
        })
    }
}

/// The scopes the scenario's scoped thresholds look at, each with its fault's windows.
fn scopes(scenario: &Scenario) -> Vec<ScopeDef> {
    let mut wanted: Vec<&Scope> = scenario
        .thresholds
        .iter()
        .filter_map(|t| t.scope.as_ref())
        .collect();
    wanted.sort();
    wanted.dedup();
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let windows = |name: &str| -> Vec<(u64, u64)> {
        scenario
            .fault_spans(name)
            .unwrap_or_default()
            .iter()
            .map(|span| (us(span.start), span.end.map_or(u64::MAX, us)))
            .collect()
    };
    let starts: Vec<u64> = scenario
        .faults
        .iter()
        .map(|f| &f.name)
        .chain(scenario.server.iter().map(|f| &f.name))
        .flat_map(|name| windows(name).into_iter().map(|(start, _)| start))
        .collect();
    wanted
        .into_iter()
        .map(|scope| {
            ScopeDef::new(
                scope.key(),
                matches!(scope, Scope::After(_)),
                windows(scope.fault()),
                &starts,
            )
        })
        .collect()
}

/// Starts the target (unless external) and the shim in front of it; returns the shim, the
/// built-in server if there is one, and the URL clients connect to.
async fn start_services(
    scenario: &Scenario,
    metrics: &Metrics,
    events: &events::EventSink,
    touches: &Arc<TouchBoard>,
    root: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(ShimHandle, Option<ServerHandle>, String), String> {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut built_in = None;
    let (upstream, url) = match &scenario.target {
        Target::Builtin(cfg) => {
            // The server reads nothing larger than the largest message a client sends.
            let largest = scenario.groups.iter().map(|g| g.messages.max_bytes).max();
            let cfg = &crate::scenario::BuiltinTarget {
                max_message_bytes: largest.unwrap_or(cfg.max_message_bytes),
                ..cfg.clone()
            };
            let server = target::start(
                loopback,
                cfg,
                Some(metrics.clone()),
                root.child_token(),
                tracker,
            )
            .await
            .map_err(|e| format!("built-in server: {e}"))?;
            let addr = server.local_addr();
            target::spawn_faults(
                &scenario.server,
                server.control(),
                scenario.seed,
                metrics.clock(),
                events,
                root,
                tracker,
            );
            built_in = Some(server);
            (addr, format!("ws://{addr}/ws"))
        }
        Target::External(ext) => {
            let addr = external_upstream(&ext.url).await?;
            // Fail fast and clearly rather than run every client into refused connects.
            match tokio::time::timeout(PREFLIGHT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(format!("target {} is unreachable ({addr}): {e}", ext.url));
                }
                Err(_) => {
                    return Err(format!(
                        "target {} is unreachable ({addr}): no answer within {PREFLIGHT_TIMEOUT:?}",
                        ext.url
                    ));
                }
            }
            (addr, ext.url.clone())
        }
    };
    let cfg = ShimConfig {
        listen: loopback,
        upstream,
        faults: scenario.faults.clone(),
        seed: scenario.seed,
        identify_clients: true,
        touches: Some(touches.clone()),
        // No peer of this run accepts a larger message: holding one would be for nothing.
        max_held: crate::protocol::read_limit(load::largest_inbound(scenario)) as u64,
        until: Some(scenario.duration),
    };
    let shim = Shim::start(
        cfg,
        metrics.clock(),
        events.clone(),
        root.child_token(),
        tracker.clone(),
    )
    .await
    .map_err(|e| format!("shim: {e}"))?;
    Ok((shim, built_in, url))
}

/// Resolves an external `ws://` or `wss://` URL to the address the shim forwards to.
async fn external_upstream(url: &str) -> Result<SocketAddr, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|e| format!("target {url}: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("target {url}: no host"))?
        .trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("target {url}: cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("target {url}: {host} resolves to no address"))
}

/// What steers a running run: Ctrl-C, the two stops, the clients' tracker, and the
/// process's count of limits hit when it started.
struct Control<'a> {
    interrupt: &'a CancellationToken,
    stops: &'a Stops,
    clients: &'a TaskTracker,
    limits: Tally,
}

/// Runs the clock: a sample every second, the live line, then the two-step stop.
async fn drive(
    opts: &RunOptions,
    metrics: &Metrics,
    shim: &ShimHandle,
    ctl: &Control<'_>,
    watch: &AbortWatch<'_>,
) -> RunStatus {
    let Control {
        interrupt,
        stops,
        clients,
        limits,
    } = ctl;
    let scenario = watch.scenario;
    let clock = metrics.clock();
    let mut aborted = None;
    let end = clock.at(scenario.duration);
    let mut tick = tokio::time::interval_at(
        clock.origin() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let target = match opts.shard {
        Some(shard) => shard.share_of(scenario.peak_clients()),
        None => scenario.peak_clients(),
    };
    let file = opts.into.as_ref().map(|dir| dir.join(live::PROGRESS_FILE));
    let mut status = live::Status::new(scenario, target, file);
    loop {
        tokio::select! {
            _ = interrupt.cancelled() => {
                stops.hard.cancel();
                return RunStatus::Interrupted;
            }
            _ = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => {
                metrics.sample_second(shim.active_faults());
                status.show(opts.live, metrics, shim);
                if let Some(why) = watch.check(metrics) {
                    aborted = Some(why);
                    break;
                }
                // Out of descriptors or ports: what follows would measure this process's
                // limits, not the target's recovery. Stop, and say which and what to do.
                if let Some((limit, times)) = limits.since() {
                    stops.hard.cancel();
                    return RunStatus::Failed(format!(
                        "resources exhausted: {} ({times} sockets refused): {}",
                        limit.short(),
                        limit.explain()
                    ));
                }
            }
        }
    }
    // Stop sending; give sessions time to get what is in flight confirmed.
    stops.stop_sending.cancel();
    let grace = scenario
        .groups
        .iter()
        .map(|g| g.recovery.retransmit.ack_timeout)
        .max()
        .unwrap_or_default();
    let deadline = Instant::now() + DRAIN_GRACE.max(grace);
    loop {
        tokio::select! {
            _ = interrupt.cancelled() => {
                stops.hard.cancel();
                return RunStatus::Interrupted;
            }
            _ = clients.wait() => break,
            _ = tokio::time::sleep_until(deadline) => {
                // Whatever is still unconfirmed now is counted lost.
                stops.hard.cancel();
                break;
            }
            _ = tick.tick() => {
                metrics.sample_second(shim.active_faults());
                status.show(opts.live, metrics, shim);
            }
        }
    }
    match aborted {
        Some(why) => RunStatus::Aborted(why),
        None => RunStatus::Completed,
    }
}
