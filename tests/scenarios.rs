//! Scenario files: the shipped ones validate, the broken ones fail where they say.

use crate::support::root;

#[test]
fn every_shipped_scenario_validates() {
    let mut seen = 0;
    for entry in walk(&root().join("scenarios")) {
        if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if let Err(e) = squall::scenario::load(&entry) {
                panic!("{} does not validate:\n{e}", entry.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no scenarios found");
}

/// Each file's first line is `# expect: <key.path> <line>`.
#[test]
fn every_invalid_scenario_fails_at_its_key_and_line() {
    let dir = root().join("tests/data/invalid");
    let mut checked = 0;
    for path in walk(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(expect) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
        else {
            continue;
        };
        let mut parts = expect.split_whitespace();
        let (key, line) = (
            parts.next().unwrap(),
            parts.next().unwrap().parse::<usize>().unwrap(),
        );
        let err = squall::scenario::load(&path)
            .expect_err(&format!("{} should not validate", path.display()));
        let shown = err.to_string();
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            shown.starts_with(&prefix),
            "{}: expected line {line}, got: {shown}",
            path.display()
        );
        assert!(
            shown.contains(key),
            "{}: expected key {key}, got: {shown}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} invalid scenarios checked");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every shipped scenario runs to the end with a few clients (its faults and timeline
/// unchanged within its first 30 s), and its delivery accounting closes: sent =
/// delivered + lost. The one pointed at an external server gets a built-in server on a
/// free port standing in. The outage library is left to `tests/outages.rs`, which runs
/// each incident in full and holds it to its thresholds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_runs_and_its_counters_close() {
    use squall::scenario::Target;

    let tracker = tokio_util::task::TaskTracker::new();
    let token = tokio_util::sync::CancellationToken::new();
    let (mut runs, mut servers) = (Vec::new(), Vec::new());
    let outages = root().join("scenarios/outages");
    for path in walk(&root().join("scenarios")) {
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            || path.starts_with(&outages)
        {
            continue;
        }
        let scenario = squall::scenario::load(&path).unwrap();
        let clients = scenario.peak_clients().min(20);
        // At most 30 s each (the scale scenario runs 90 s: its faults past 30 s drop out).
        let duration = scenario.duration.min(std::time::Duration::from_secs(30));
        let mut scenario = scenario
            .with_clients(clients)
            .unwrap()
            .with_duration(duration)
            .unwrap();
        if let Target::External(ext) = &mut scenario.target {
            let server = squall::target::start(
                ([127, 0, 0, 1], 0).into(),
                &squall::scenario::defaults::builtin_target(),
                None,
                token.child_token(),
                &tracker,
            )
            .await
            .unwrap();
            ext.url = format!("ws://{}/ws", server.local_addr());
            servers.push(server);
        }
        runs.push((path, crate::support::spawn_run(scenario, "shipped")));
    }
    assert!(runs.len() >= 5, "only {} scenarios", runs.len());
    for (path, run) in runs {
        let squall::run::RunOutcome { status, report, .. } = run.await.unwrap();
        assert_eq!(
            status,
            squall::run::RunStatus::Completed,
            "{}",
            path.display()
        );
        let d = &report.delivery;
        assert!(
            d.closes && d.sent > 0,
            "{}: sent {} delivered {} lost {}",
            path.display(),
            d.sent,
            d.delivered,
            d.lost
        );
        assert_eq!(report.counters.messages_duplicated, 0, "{}", path.display());
    }
    token.cancel();
    drop(servers);
}
