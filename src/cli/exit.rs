//! Exit codes, decided here and nowhere else (PRODUCT.md): 0 ran and every threshold
//! held; 1 a threshold failed (or `squall compare` found a regression, or `squall replay`
//! a regression or another fault ledger); 2 bad input; 3 could not run; 130 interrupted (for
//! `squall proxy`, which runs until interrupted: stopped cleanly).

use std::process::ExitCode;

use crate::proxy::ProxyError;
use crate::replay::render::Outcome;
use crate::report::compare::Comparison;
use crate::run::{RunOutcome, RunStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Ok,
    ThresholdFailed,
    BadInput,
    CouldNotRun,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::ThresholdFailed => 1,
            Exit::BadInput => 2,
            Exit::CouldNotRun => 3,
            Exit::Interrupted => 130,
        }
    }

    /// The exit code of a run that produced a report.
    pub fn of_run(outcome: &RunOutcome) -> Exit {
        match outcome.status {
            RunStatus::Interrupted => Exit::Interrupted,
            RunStatus::Failed(_) => Exit::CouldNotRun,
            RunStatus::Aborted(_) => Exit::ThresholdFailed,
            RunStatus::Completed if outcome.report.verdict == "pass" => Exit::Ok,
            RunStatus::Completed => Exit::ThresholdFailed,
        }
    }
}

impl Exit {
    /// The exit code of a proxy that could not start (one that ran until Ctrl-C or
    /// SIGTERM exits [`Exit::Interrupted`]).
    pub fn of_proxy(e: &ProxyError) -> Exit {
        match e {
            ProxyError::BadInput(_) => Exit::BadInput,
            ProxyError::CouldNotStart(_) => Exit::CouldNotRun,
        }
    }
}

impl Exit {
    /// The exit code of `squall compare` once both reports were read and compared (a
    /// comparison refused for bad input exits [`Exit::BadInput`]).
    pub fn of_comparison(c: &Comparison) -> Exit {
        if c.regressed() {
            Exit::ThresholdFailed
        } else {
            Exit::Ok
        }
    }
}

impl Exit {
    /// The exit code of `squall replay` once the replay ran and was judged: its run
    /// interrupted or failed first, then a regression or a ledger difference.
    pub fn of_replay(o: &Outcome) -> Exit {
        match o.comparison.new.status.as_str() {
            "interrupted" => Exit::Interrupted,
            "failed" => Exit::CouldNotRun,
            _ if o.verdict == "pass" => Exit::Ok,
            _ => Exit::ThresholdFailed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}
