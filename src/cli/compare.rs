//! `squall compare BASE.json NEW.json [--max-regression [METRIC=]PCT]…`: a candidate run
//! judged against a baseline (`report::compare`); exits 0 when nothing regressed, 1 when
//! something did, 2 on bad input (a report that does not read, bad flags, reports of
//! different scenarios).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::{Exit, summary};
use crate::report;
use crate::report::compare::{
    self, DEFAULT_COUNT_FLOOR, DEFAULT_MIN_SAMPLES, Floors, Options, Tolerances,
};

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json of a run known to be good.
    #[arg(value_name = "BASE.json")]
    pub base: PathBuf,
    /// The candidate: a report.json of the same scenario.
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// How to print the comparison.
    #[arg(long, short, value_enum, default_value = "text")]
    pub format: Format,
    /// Write the comparison here (atomically) and print only the verdict line.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// How a comparison judges: the flags `squall compare` and `squall replay` share.
#[derive(Debug, clap::Args)]
pub struct RuleArgs {
    /// How much worse than the base a metric may get, in percent: `PCT` for every metric
    /// (default 10), or `METRIC=PCT` for one metric, histogram or statistic
    /// (`reconnect_latency=25`, `reconnect_latency.p99=25`, `retransmits=off`).
    /// Repeatable.
    #[arg(
        long,
        value_name = "[METRIC=]PCT",
        allow_negative_numbers = true,
        action = clap::ArgAction::Append
    )]
    pub max_regression: Vec<String>,
    /// Latency changes smaller than this are noise, never a regression.
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = super::parse_duration)]
    pub latency_floor: Duration,
    /// Counter changes smaller than this many events are noise (messages_lost,
    /// messages_duplicated, gave_up and unrecovered excepted: any rise from zero
    /// regresses).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_COUNT_FLOOR)]
    pub count_floor: u64,
    /// Histogram statistics decided by fewer samples than this, in either report, are
    /// noise: the mean by all samples, p50 by half, p99 by 1 in 100, the max by one.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SAMPLES)]
    pub min_samples: u64,
    /// Compare reports of different scenarios instead of refusing (exit 2).
    #[arg(long)]
    pub allow_different_scenarios: bool,
}

impl RuleArgs {
    /// The comparison's options; a bad `--max-regression` is bad input.
    pub fn options(&self) -> Result<Options, compare::CompareError> {
        Ok(Options {
            tolerances: Tolerances::parse(&self.max_regression)?,
            floors: Floors {
                latency_us: u64::try_from(self.latency_floor.as_micros()).unwrap_or(u64::MAX),
                count: self.count_floor,
                samples: self.min_samples,
            },
            allow_different_scenarios: self.allow_different_scenarios,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The verdict line, then an aligned side-by-side table.
    Text,
    /// The same as Markdown, for a pull-request comment or a job summary.
    Md,
    /// Every row with its direction, tolerance and mark, for machines.
    Json,
}

pub fn run(args: CompareArgs) -> Exit {
    let (base, new) = match (report::read(&args.base), report::read(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let opts = match args.rules.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let mut comparison = match compare::compare(&base, &new, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    comparison.base.path = Some(args.base.display().to_string());
    comparison.new.path = Some(args.new.display().to_string());
    let text = match args.format {
        Format::Text => compare::render::text(&comparison),
        Format::Md => compare::render::markdown(&comparison),
        Format::Json => match serde_json::to_string_pretty(&comparison) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::CouldNotRun;
            }
        },
    };
    // JSON on standard output stays pure JSON: no annotations mixed in.
    let annotate = args.output.is_some() || args.format != Format::Json;
    match &args.output {
        Some(path) => {
            if let Err(e) = report::write_atomic(path, text.as_bytes()) {
                eprintln!("error: {e}");
                return Exit::CouldNotRun;
            }
            println!("{}", comparison.headline());
            for w in &comparison.warnings {
                println!("warning: {w}");
            }
            println!("comparison: {}", path.display());
        }
        None => {
            // A closed pipe (`| head`) is the reader's choice, not an error to report.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    if annotate {
        for r in &comparison.regressions {
            summary::github_error(
                "squall compare",
                &format!("{} regressed: {}", comparison.new.name, r.text()),
            );
        }
    }
    Exit::of_comparison(&comparison)
}
