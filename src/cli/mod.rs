//! The command line: flags (clap) turned into library calls, and the one place where an
//! outcome becomes an exit code (`exit.rs`).

mod compare;
mod exit;
mod merge;
mod proxy;
mod replay;
mod report;
mod serve;
mod summary;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

pub use exit::Exit;

use crate::run::{self, RunOptions};
use crate::scenario;

/// squall: a load and chaos harness for WebSocket recovery.
///
/// Describe virtual clients, a fault timeline and thresholds in a YAML scenario; squall
/// runs them through a fault-injecting shim against a WebSocket server and reports what
/// recovery cost.
///
/// Exit codes: 0 every threshold held · 1 a threshold failed (compare: a regression;
/// replay: a regression or another fault ledger) ·
/// 2 bad input · 3 could not run · 130 interrupted (the report is still written).
#[derive(Debug, Parser)]
#[command(name = "squall", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its report (report.json, report.md, events.jsonl).
    ///
    /// The report goes to <report.dir>/<name>-<UTC timestamp>/ (default reports/).
    /// Ctrl-C stops the run early and still writes the report, marked interrupted.
    Run(RunArgs),
    /// Render a report again from its report.json alone (md or junit; stdout unless -o).
    Report(report::ReportArgs),
    /// Judge a candidate report against a baseline, metric by metric: every counter and
    /// histogram statistic side by side with its change.
    ///
    /// Exits 1 when a metric got worse by more than --max-regression percent of the base
    /// (beyond the noise floors; any rise from zero of messages_lost, messages_duplicated,
    /// gave_up or unrecovered), 2 on bad input or reports of different scenarios (docs/compare.md).
    Compare(compare::CompareArgs),
    /// Run again the scenario, seed and fault timeline a report records, and judge the
    /// new run against it: the figures as `squall compare` does, and the fault ledgers
    /// (events.jsonl): the same windows, clients and acts.
    ///
    /// Writes a full report directory (default: beside the original's) with replay.md and
    /// replay.json. Exits 1 when a metric regressed or the ledgers differ, 2 on a file that
    /// is not a replayable report, 3 if the replay could not run (docs/replay.md).
    Replay(replay::ReplayArgs),
    /// Join shard reports exactly (counters summed, histograms added) and judge the
    /// scenario's thresholds on the whole.
    Merge(merge::MergeArgs),
    /// Check scenarios without running them; prints each problem with file:line:col.
    Validate {
        /// Scenario files to check.
        #[arg(required = true, value_name = "SCENARIO.yaml")]
        scenarios: Vec<PathBuf>,
    },
    /// Run the fault-injecting proxy alone, in front of any TCP server, until Ctrl-C.
    ///
    /// Faults come from --faults (a YAML list, the scenario's `faults:` syntax) and from
    /// the control API, which also answers Toxiproxy's REST API (docs/proxy.md). Exits
    /// 130 once stopped cleanly, 2 on a bad faults file or address, 3 if it cannot listen.
    Proxy(proxy::ProxyArgs),
    /// Run the built-in target server alone until Ctrl-C, then print what it received.
    ///
    /// squall.v1 for clients that offer it (sessions resumable, exactly-once both ways);
    /// a plain echo for any other WebSocket client (websocat, a browser).
    Serve(serve::ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO.yaml")]
    pub scenario: PathBuf,
    /// Seed for every random decision (overrides the scenario's `seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Directory to put the report directory in (overrides `report.dir`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Total number of clients at peak (overrides `clients`; groups scale in proportion).
    #[arg(long, value_name = "N")]
    pub clients: Option<u32>,
    /// Run time, e.g. 30s or 2m (overrides `duration`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// No live status line and no summary: only the report path at the end.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run only the I-th of N slices of the clients (0 <= I < N), with its own report,
    /// for `squall merge` to join. A completed shard exits 0 whatever its thresholds say
    /// on its slice alone: the merge judges the whole.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::load::Shard>,
    /// Spread the clients over N local worker processes (shards of this run, merged at
    /// the end). By default squall uses as many as the open-file limit requires.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: Option<u32>,
    /// Write the report exactly into DIR (used by worker processes).
    #[arg(long, value_name = "DIR", hide = true)]
    pub into: Option<PathBuf>,
}

impl RunArgs {
    /// The arguments a worker process repeats: the scenario and its overrides.
    fn for_workers(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![self.scenario.clone().into()];
        if let Some(seed) = self.seed {
            args.extend(["--seed".into(), seed.to_string().into()]);
        }
        if let Some(n) = self.clients {
            args.extend(["--clients".into(), n.to_string().into()]);
        }
        if let Some(d) = self.duration {
            args.extend([
                "--duration".into(),
                humantime::format_duration(d).to_string().into(),
            ]);
        }
        args
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 30s, 2m)"))
}

/// Parses the command line, runs the command, returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else is bad input.
            let code = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    init_logging();
    let exit = match cli.command {
        Command::Validate { scenarios } => validate(&scenarios),
        Command::Run(args) => run_command(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(args) => report::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Replay(args) => replay::run(args),
    };
    exit.into()
}

/// Structured logs (every disconnect and recovery step) go to stderr, filtered by
/// `RUST_LOG` (e.g. `RUST_LOG=squall::recovery=info`); warnings only by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn validate(paths: &[PathBuf]) -> Exit {
    let mut worst = Exit::Ok;
    for path in paths {
        match scenario::load(path) {
            Ok(s) => println!(
                "{}: ok ({}: {} clients for {})",
                path.display(),
                s.name,
                s.peak_clients(),
                humantime::format_duration(s.duration)
            ),
            Err(e) => {
                eprintln!("{e}");
                worst = Exit::BadInput;
            }
        }
    }
    worst
}

fn run_command(args: RunArgs) -> Exit {
    let scenario = match load_with_overrides(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Exit::BadInput;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CouldNotRun;
        }
    };
    let workers = match workers(&args, &scenario) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let opts = RunOptions {
        out: args.out.clone(),
        live: match (args.quiet, std::io::stdout().is_terminal()) {
            (true, _) => crate::run::Live::Off,
            (false, true) => crate::run::Live::Terminal,
            (false, false) => crate::run::Live::Plain,
        },
        shard: args.shard,
        into: args.into.clone(),
    };
    let shard = args.shard;
    let quiet = args.quiet;
    let exit = runtime.block_on(async move {
        let interrupt = CancellationToken::new();
        tokio::spawn(watch_signals(
            interrupt.clone(),
            "stopping clients and writing the report…",
        ));
        let outcome = match workers {
            Some(workers) => run::run_workers(&scenario, &workers, &opts, interrupt).await,
            None => run::run(scenario, opts, interrupt).await,
        };
        match outcome {
            Ok(outcome) => {
                summary::print(&outcome, quiet);
                match (shard, &outcome.status) {
                    // A shard's thresholds see a slice: the merge is the gate.
                    (Some(_), run::RunStatus::Completed) => Exit::Ok,
                    _ => Exit::of_run(&outcome),
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::CouldNotRun
            }
        }
    });
    // Anything still running (a hung peer's socket) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    exit
}

/// More local worker processes than this is more than one machine should carry.
const MAX_WORKERS: u32 = 64;

/// Worker processes for this run, if it is to have more than one: `--workers`, or as
/// many as the open-file limit requires.
fn workers(args: &RunArgs, scenario: &scenario::Scenario) -> Result<Option<run::Workers>, String> {
    if args.shard.is_some() || args.into.is_some() {
        return match args.workers {
            Some(n) if n > 1 => {
                Err("--workers and --shard do not combine: a shard is one process".into())
            }
            _ => Ok(None),
        };
    }
    let limit = run::raise_fd_limit();
    let count = match args.workers {
        Some(n) => n,
        // Below the descriptors one process keeps aside, more processes cannot help: run
        // in one, which refuses with the numbers and the remedy and leaves a report.
        None if run::workers_needed(scenario, limit) == u32::MAX => 1,
        None => {
            let n = run::workers_needed(scenario, limit);
            if n > 1 && !args.quiet {
                eprintln!(
                    "note: {} clients need about {} open files and one process may open {limit}: \
                     running them as {n} worker processes (--workers to choose)",
                    scenario.peak_clients(),
                    run::fds_needed(scenario, u64::from(scenario.peak_clients())),
                );
            }
            n
        }
    };
    if count > scenario.peak_clients().max(1) {
        return Err(format!(
            "--workers {count} is more than the scenario's {} clients",
            scenario.peak_clients()
        ));
    }
    if count > MAX_WORKERS {
        return Err(format!(
            "this scenario needs about {count} processes of {limit} open files each: more than \
             one machine should carry; run it as shards on several machines (--shard I/N, \
             docs/distributed.md)"
        ));
    }
    if count > 1 && !args.quiet {
        eprintln!(
            "running as {count} worker processes; each shard's report goes under shards/ in the report directory"
        );
    }
    Ok((count > 1).then(|| run::Workers {
        count,
        args: args.for_workers(),
    }))
}

fn load_with_overrides(args: &RunArgs) -> Result<scenario::Scenario, scenario::ScenarioError> {
    let mut s = scenario::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        s = s.with_seed(seed);
    }
    if let Some(d) = args.duration {
        s = s.with_duration(d)?;
    }
    if let Some(n) = args.clients {
        s = s.with_clients(n)?;
    }
    Ok(s)
}

/// Ctrl-C or SIGTERM cancels `interrupt` (saying `what` happens next); the run then writes
/// its report and exits 130.
async fn watch_signals(interrupt: CancellationToken, what: &str) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("\ninterrupted: {what}");
    interrupt.cancel();
}
