//! `squall replay REPORT.json [--target URL] [--binary PATH] [--out DIR] [--ledger MODE]
//! [compare flags]`: the run a report records, run again and judged against it
//! (`crate::replay`, `docs/replay.md`). Exits 0 when nothing regressed and the fault
//! ledgers agree, 1 when something regressed or the ledgers differ, 2 on bad input (not
//! a report, no embedded scenario, another schema, bad flags), 3 when the replay could not
//! run, 130 when interrupted (its report and the comparison are still written).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Exit, compare::RuleArgs, summary};
use crate::replay::ledger::{self, Ledger, Mode};
use crate::replay::render::{self, Outcome};
use crate::replay::{self, Original, Plan, ReplayError};
use crate::report::{self, compare};
use crate::run::Live;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The report to replay: a report.json written by `squall run`, or its directory.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// Replay against this WebSocket server (ws:// or wss://) instead of the original's
    /// target; the built-in server's replacement must speak squall.v1.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Replay with another squall build: its `squall run` on the scenario written to the
    /// replay's directory, as a child process.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Directory to put the replay's report directory in (default: beside the original's).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How much of the fault ledgers (events.jsonl) must be equal.
    #[arg(long, value_enum, default_value = "exact")]
    pub ledger: Mode,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// No live status line and no tables: the verdict lines and where the files are.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: ReplayArgs) -> Exit {
    match replay(&args) {
        Ok(exit) => exit,
        Err(e @ ReplayError::BadInput(_)) => {
            eprintln!("error: {e}");
            Exit::BadInput
        }
        Err(e @ ReplayError::CouldNotRun(_)) => {
            eprintln!("error: {e}");
            Exit::CouldNotRun
        }
    }
}

fn replay(args: &ReplayArgs) -> Result<Exit, ReplayError> {
    let bad = |e: &dyn std::fmt::Display| ReplayError::BadInput(e.to_string());
    // Everything the user gave is checked before anything runs.
    let original = Original::open(&args.report)?;
    let opts = args.rules.options().map_err(|e| bad(&e))?;
    // The original against itself: an override naming no metric is refused now, not
    // after the replay has run.
    compare::compare(&original.report, &original.report, &opts).map_err(|e| bad(&e))?;
    let original_ledger = match args.ledger {
        Mode::Off => Ledger::default(),
        _ => Ledger::read(&original.events()).map_err(|e| bad(&e))?,
    };
    if let Some(binary) = &args.binary
        && !binary.is_file()
    {
        return Err(ReplayError::BadInput(format!(
            "--binary {}: no such file",
            binary.display()
        )));
    }
    let plan = Plan::new(&original, args.target.as_deref())?;
    let parent = match &args.out {
        Some(out) => out.clone(),
        None => beside(&original.dir),
    };
    let dir = plan.create_dir(&parent)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ReplayError::CouldNotRun(format!("cannot start the async runtime: {e}")))?;
    let live = match (args.quiet, std::io::stdout().is_terminal()) {
        (true, _) => Live::Off,
        (false, true) => Live::Terminal,
        (false, false) => Live::Plain,
    };
    if !args.quiet {
        say(&format!(
            "squall replay: {} (seed {}) into {}\n",
            original.path.display(),
            plan.seed,
            dir.display()
        ));
    }
    let ran = runtime.block_on(async {
        let interrupt = CancellationToken::new();
        tokio::spawn(super::watch_signals(
            interrupt.clone(),
            "stopping the replay and writing its report…",
        ));
        match &args.binary {
            Some(binary) => replay::run_binary(binary, &plan, &dir, interrupt).await,
            None => plan.run(&dir, live, interrupt).await.map(|o| o.report),
        }
    });
    // Anything still running (a hung peer's socket) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let new = ran?;

    let mut notes = Vec::new();
    let mut original_ledger = original_ledger;
    let mut replay_ledger = match args.ledger {
        Mode::Off => Ledger::default(),
        _ => Ledger::read(&dir.join("events.jsonl"))
            .map_err(|e| ReplayError::CouldNotRun(format!("the replay's own ledger: {e}")))?,
    };
    if original.report.run.status != "completed" {
        replay_ledger = replay_ledger.cut_to(&original_ledger);
        notes.push(format!(
            "the original run is {}: the ledgers are compared on the windows it opened",
            original.report.run.status
        ));
    }
    if new.run.status != "completed" {
        original_ledger = original_ledger.cut_to(&replay_ledger);
        notes.push(format!(
            "the replay is {}: the ledgers are compared on the windows it opened",
            new.run.status
        ));
    }
    let base = replay::comparable(&original.report, &new, &plan);
    let mut comparison = compare::compare(&base, &new, &opts).map_err(|e| bad(&e))?;
    comparison.base.path = Some(original.path.display().to_string());
    comparison.new.path = Some(dir.join("report.json").display().to_string());
    if let Some((from, to)) = &plan.target {
        notes.push(format!("target switched: {from} → {to}"));
    }
    comparison.notes.extend(notes);
    // A run that could not run has no decisions to compare: saying "same" would lie.
    let ledger = match new.run.status.as_str() {
        "failed" => ledger::skipped("the replay could not run".into()),
        _ => ledger::compare(&original_ledger, &replay_ledger, args.ledger),
    };
    let mut outcome = Outcome::new(
        comparison,
        ledger,
        (
            original.path.display().to_string(),
            dir.join("report.json").display().to_string(),
        ),
        plan.seed,
    );
    outcome.target = plan.target.clone();
    outcome.binary = args.binary.as_ref().map(|b| b.display().to_string());

    write(&dir, &outcome)?;
    let shown = if args.quiet {
        outcome.headline() + "\n"
    } else {
        render::text(&outcome)
    };
    say(&format!(
        "{shown}replay: {}\n",
        dir.join("replay.md").display()
    ));
    if let Some(error) = &new.run.error {
        eprintln!("error: the replay {}: {error}", new.run.status);
    }
    for r in &outcome.comparison.regressions {
        summary::github_error(
            "squall replay",
            &format!("{} regressed: {}", outcome.comparison.new.name, r.text()),
        );
    }
    if let Some(d) = outcome.ledger.differences.first() {
        summary::github_error(
            "squall replay",
            &format!("fault ledger differs: {}", d.text),
        );
    }
    Ok(Exit::of_replay(&outcome))
}

/// Writes to standard output; a closed pipe (`| head`) is the reader's choice, not an
/// error, and never a panic.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// The parent of the original's report directory: the replay lands beside it.
fn beside(dir: &Path) -> PathBuf {
    dir.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `replay.json` and `replay.md` in the replay's report directory.
fn write(dir: &Path, outcome: &Outcome) -> Result<(), ReplayError> {
    let failed = |e: &dyn std::fmt::Display| ReplayError::CouldNotRun(e.to_string());
    let json = serde_json::to_vec_pretty(outcome).map_err(|e| failed(&e))?;
    report::write_atomic(&dir.join("replay.json"), &json).map_err(|e| failed(&e))?;
    report::write_atomic(&dir.join("replay.md"), render::markdown(outcome).as_bytes())
        .map_err(|e| failed(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_goes_beside_the_original() {
        assert_eq!(
            beside(Path::new("reports/quick-1")),
            PathBuf::from("reports")
        );
        assert_eq!(beside(Path::new("quick-1")), PathBuf::from("."));
        assert_eq!(beside(Path::new("/")), PathBuf::from("."));
    }
}
