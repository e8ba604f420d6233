//! `squall merge SHARD.json… -o OUT.json`: shard reports joined exactly, thresholds judged
//! again on the whole; exits like a run (0 held, 1 failed, 2 bad input).

use std::path::PathBuf;

use super::Exit;
use crate::{gate, report, scenario};

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard reports (report.json files) of one scenario.
    #[arg(required = true, value_name = "SHARD.json")]
    pub shards: Vec<PathBuf>,
    /// Where to write the merged report.json.
    #[arg(long, short, value_name = "OUT.json")]
    pub output: PathBuf,
}

pub fn run(args: MergeArgs) -> Exit {
    let mut reports = Vec::new();
    for path in &args.shards {
        match report::read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::BadInput;
            }
        }
    }
    let mut merged = match report::merge(&reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    // The thresholds come from the scenario the reports recorded.
    let thresholds = match scenario::from_str(&merged.scenario.to_string(), "report.json scenario")
    {
        Ok(s) => s.thresholds,
        Err(e) => {
            eprintln!("error: the reports' scenario does not validate: {e}");
            return Exit::BadInput;
        }
    };
    gate::judge(&mut merged, &thresholds);
    let json = match serde_json::to_vec_pretty(&merged) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::CouldNotRun;
        }
    };
    if let Err(e) = report::write_atomic(&args.output, &json) {
        eprintln!("error: {e}");
        return Exit::CouldNotRun;
    }
    let c = &merged.counters;
    println!(
        "merged {} reports: {} — sent {} delivered {} lost {} · reconnects {}",
        reports.len(),
        merged.verdict.to_uppercase(),
        c.messages_sent,
        c.messages_delivered,
        c.messages_lost,
        c.reconnects
    );
    for t in merged.thresholds.iter().filter(|t| !t.ok) {
        println!("  threshold failed: {} `{}`", t.metric, t.expression);
    }
    println!("report: {}", args.output.display());
    if merged.verdict == "pass" {
        Exit::Ok
    } else {
        Exit::ThresholdFailed
    }
}
