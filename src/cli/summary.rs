//! The summary printed when a run ends: the verdict and failed thresholds first, where a
//! reader of a CI log sees them, then the key figures and the report's path.

use crate::metrics::Summary;
use crate::report::markdown::{measured, micros};
use crate::run::{RunOutcome, RunStatus};

pub fn print(outcome: &RunOutcome, quiet: bool) {
    let r = &outcome.report;
    if !quiet {
        let verdict = match &outcome.status {
            RunStatus::Interrupted => "INTERRUPTED".to_string(),
            RunStatus::Failed(e) => format!("COULD NOT RUN: {e}"),
            RunStatus::Aborted(why) => format!("FAIL ({why})"),
            RunStatus::Completed if r.verdict == "pass" => "PASS".to_string(),
            RunStatus::Completed => "FAIL".to_string(),
        };
        println!("squall: {} — {verdict}", r.name());
        // Under GitHub Actions each failed threshold also becomes an error annotation,
        // shown on the run's page without opening the log.
        let annotate = std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true");
        for t in r.thresholds.iter().filter(|t| !t.ok && annotate) {
            println!(
                "::error title=squall threshold failed::{} `{}` (measured {}) in {}",
                t.metric,
                t.expression,
                measured(t),
                r.name()
            );
        }
        for t in r.thresholds.iter().filter(|t| !t.ok) {
            println!(
                "  threshold failed: {} `{}` (measured {})",
                t.metric,
                t.expression,
                measured(t)
            );
        }
        let c = &r.counters;
        let p = |name: &str, f: fn(&Summary) -> u64| {
            r.histograms
                .get(name)
                .map(|s| micros(f(s)))
                .unwrap_or_default()
        };
        println!(
            "  clients peak {} · messages sent {} delivered {} lost {} · disconnects {} · reconnects {}",
            c.clients_connected_peak,
            c.messages_sent,
            c.messages_delivered,
            c.messages_lost,
            c.disconnects,
            c.reconnects
        );
        println!(
            "  reconnect latency p50 {} p99 {} · message rtt p50 {} p99 {}",
            p("reconnect_latency", |s| s.p50),
            p("reconnect_latency", |s| s.p99),
            p("message_rtt", |s| s.p50),
            p("message_rtt", |s| s.p99)
        );
    }
    println!("report: {}", outcome.dir.join("report.json").display());
}
