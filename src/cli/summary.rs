//! The summary printed when a run ends: the verdict and failed thresholds first, where a
//! reader of a CI log sees them, then the key figures and the report's path. Also the
//! GitHub Actions error annotation, shared with `squall compare`.

use crate::metrics::Summary;
use crate::report::markdown::{measured, micros};
use crate::run::{RunOutcome, RunStatus};

pub fn print(outcome: &RunOutcome, quiet: bool) {
    let r = &outcome.report;
    // Why a run could not go on is never quiet: exit code 3 alone says nothing of the cure.
    if let (true, RunStatus::Failed(e)) = (quiet, &outcome.status) {
        eprintln!("error: could not run: {e}");
    }
    if !quiet {
        let verdict = match &outcome.status {
            RunStatus::Interrupted => "INTERRUPTED".to_string(),
            RunStatus::Failed(e) => format!("COULD NOT RUN: {e}"),
            RunStatus::Aborted(why) => format!("FAIL ({why})"),
            RunStatus::Completed if r.verdict == "pass" => "PASS".to_string(),
            RunStatus::Completed => "FAIL".to_string(),
        };
        println!("squall: {} — {verdict}", r.name());
        for t in r.thresholds.iter().filter(|t| !t.ok) {
            github_error(
                "squall threshold failed",
                &format!(
                    "{} `{}` (measured {}) in {}",
                    t.metric,
                    t.expression,
                    measured(t),
                    r.name()
                ),
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

/// Under GitHub Actions (`GITHUB_ACTIONS=true`), prints `message` as an error annotation,
/// shown on the run's page without opening the log; elsewhere prints nothing.
pub fn github_error(title: &str, message: &str) {
    if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        println!("{}", annotation(title, message));
    }
}

/// `::error title=…::…`, escaped as the runner expects: `%`, CR and LF in both parts,
/// `:` and `,` in the title too, so a message cannot end the command early.
fn annotation(title: &str, message: &str) -> String {
    let data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let property = data(title).replace(':', "%3A").replace(',', "%2C");
    format!("::error title={property}::{}", data(message))
}

#[cfg(test)]
mod tests {
    use super::annotation;

    #[test]
    fn annotations_escape_what_would_end_the_command() {
        assert_eq!(
            annotation("squall compare", "p99 +85% (a → b)\nnext"),
            "::error title=squall compare::p99 +85%25 (a → b)%0Anext"
        );
        assert_eq!(annotation("a: b, c", "x"), "::error title=a%3A b%2C c::x");
    }
}
