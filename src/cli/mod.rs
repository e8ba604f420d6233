//! The command line: flags (clap) turned into library calls, and the one place where an
//! outcome becomes an exit code (`exit.rs`).

mod exit;
mod merge;
mod proxy;
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
/// Exit codes: 0 every threshold held · 1 a threshold failed · 2 bad input ·
/// 3 could not run · 130 interrupted (the report is still written).
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
    let opts = RunOptions {
        out: args.out.clone(),
        live: match (args.quiet, std::io::stdout().is_terminal()) {
            (true, _) => crate::run::Live::Off,
            (false, true) => crate::run::Live::Terminal,
            (false, false) => crate::run::Live::Plain,
        },
    };
    let quiet = args.quiet;
    let exit = runtime.block_on(async move {
        let interrupt = CancellationToken::new();
        tokio::spawn(watch_signals(
            interrupt.clone(),
            "stopping clients and writing the report…",
        ));
        match run::run(scenario, opts, interrupt).await {
            Ok(outcome) => {
                summary::print(&outcome, quiet);
                Exit::of_run(&outcome)
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
