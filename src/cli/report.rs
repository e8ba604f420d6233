//! `squall report REPORT.json --format md|html|junit [-o FILE]`: renders a format again from a
//! report's JSON alone (stdout unless `-o`).

use std::io::Write;
use std::path::PathBuf;

use super::Exit;
use crate::report;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A report.json written by `squall run`.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// What to render.
    #[arg(long, short, value_enum)]
    pub format: Format,
    /// Write here instead of standard output (atomically: a temporary file, then rename).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// report.md: the verdict first, then recovery, delivery, errors, faults, thresholds.
    Md,
    /// report.html: one self-contained page with charts (timeline, percentile curves,
    /// retransmits, errors) and every figure as a table.
    Html,
    /// junit.xml: one test case per threshold, plus one for the run itself.
    Junit,
}

pub fn run(args: ReportArgs) -> Exit {
    let r = match report::read(&args.report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let text = match args.format {
        Format::Md => report::markdown::render(&r),
        Format::Html => report::html::render(&r),
        Format::Junit => report::junit::render(&r),
    };
    match &args.output {
        Some(path) => match report::write_atomic(path, text.as_bytes()) {
            Ok(_) => Exit::Ok,
            Err(e) => {
                eprintln!("error: {e}");
                Exit::CouldNotRun
            }
        },
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not an error to report.
            let _ = out.write_all(text.as_bytes());
            Exit::Ok
        }
    }
}
