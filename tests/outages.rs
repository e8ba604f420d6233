//! The outage library (`scenarios/outages/`): every incident runs in full — its whole
//! duration and fault timeline — with at most 40 clients, all of them at once, and each
//! must pass its own thresholds with its delivery accounting closed and nothing
//! delivered twice. `every_shipped_scenario_runs_and_its_counters_close` leaves these
//! files to this test, which does not cut them short.

use crate::support::root;

/// Clients per incident: enough for shares and percentiles to mean something, few enough
/// that every incident of the library runs at once on a small machine.
const CLIENTS: u32 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outage_passes_its_thresholds_in_full() {
    let dir = root().join("scenarios/outages");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 6,
        "only {} outages in {}",
        paths.len(),
        dir.display()
    );

    let mut runs = Vec::new();
    for path in paths {
        let scenario = squall::scenario::load(&path)
            .unwrap_or_else(|e| panic!("{} does not validate:\n{e}", path.display()));
        let clients = scenario.peak_clients().min(CLIENTS);
        let scenario = scenario.with_clients(clients).unwrap();
        assert!(
            !scenario.thresholds.is_empty(),
            "{}: an outage says what good recovery is",
            path.display()
        );
        runs.push((path, crate::support::spawn_run(scenario, "outage")));
    }

    let mut failures = Vec::new();
    for (path, run) in runs {
        let outcome = run.await.unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let report = &outcome.report;
        if outcome.status != squall::run::RunStatus::Completed {
            failures.push(format!("{name}: status {:?}", outcome.status));
        }
        let d = &report.delivery;
        if !(d.closes && d.sent == d.delivered + d.lost && d.sent > 0) {
            failures.push(format!(
                "{name}: sent {} delivered {} lost {}",
                d.sent, d.delivered, d.lost
            ));
        }
        if report.counters.messages_duplicated != 0 {
            failures.push(format!(
                "{name}: {} messages duplicated",
                report.counters.messages_duplicated
            ));
        }
        if report.verdict != "pass" {
            let failed: Vec<String> = report
                .thresholds
                .iter()
                .filter(|t| !t.ok)
                .map(|t| {
                    let value = t.value.map_or("nothing measured".into(), |v| v.to_string());
                    let note = t
                        .note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    format!("  {} `{}`: measured {value}{note}", t.metric, t.expression)
                })
                .collect();
            failures.push(format!(
                "{name}: verdict {}\n{}",
                report.verdict,
                failed.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
