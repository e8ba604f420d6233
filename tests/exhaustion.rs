//! Out of descriptors: the built binary under a small `ulimit -n`, refused up front when
//! the scenario cannot fit, and stopped mid-run when descriptors run out all the same
//! (here: two hundred of them already held by the parent shell). Either way the run exits
//! 3, names the limit and the remedy, and leaves a report that says why.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{TempDir, only_report_dir, report_json, root};

/// `bash -c SCRIPT squall SCENARIO OUT`: the script sets the limits, then execs squall.
fn squall_under(script: &str, scenario: &Path, out: &TempDir) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_squall"))
        .arg(scenario)
        .arg(out.path())
        .current_dir(root())
        .output()
        .unwrap()
}

fn scenario(dir: &TempDir, clients: u32, duration: &str) -> std::path::PathBuf {
    dir.write(
        "fds.yaml",
        &format!(
            "name: fds\nduration: {duration}\nclients: {{ count: {clients}, connect_rate: 200/s }}\n\
             messages: {{ rate: 2/s, size: 64B }}\n"
        ),
    )
}

/// The one report under `out`: status `failed`, its error mentioning `needle`.
fn failed_report(out: &TempDir, needle: &str) -> serde_json::Value {
    let report = report_json(&only_report_dir(out.path()));
    assert_eq!(report["run"]["status"], "failed");
    let error = report["run"]["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "{}", report["run"]);
    report
}

#[test]
fn a_scenario_over_the_open_file_limit_is_refused_with_the_remedy_and_a_report() {
    let dir = TempDir::new("fds-refused");
    let out = TempDir::new("fds-refused-out");
    let yaml = scenario(&dir, 20, "2s");
    let run = squall_under(
        r#"ulimit -n 40 && exec "$0" run "$1" --out "$2" --quiet"#,
        &yaml,
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    // 20 clients × 4 + 64 kept aside, against the limit of 40, and what to do about it.
    assert!(stderr.contains("144 open files"), "{stderr}");
    assert!(stderr.contains("at most 40"), "{stderr}");
    assert!(
        stderr.contains("--workers") && stderr.contains("ulimit"),
        "{stderr}"
    );
    let report = failed_report(&out, "at most 40");
    assert_eq!(report["counters"]["sessions"], 0, "no client started");
}

#[test]
fn descriptors_running_out_mid_run_stop_it_with_exit_3_naming_the_limit() {
    let dir = TempDir::new("fds-exhausted");
    let out = TempDir::new("fds-exhausted-out");
    // 40 clients fit a limit of 256 on paper (40 × 4 + 64 = 224), but the shell holds 200
    // descriptors that squall inherits: connects and accepts meet EMFILE.
    let yaml = scenario(&dir, 40, "20s");
    let started = std::time::Instant::now();
    let run = squall_under(
        r#"ulimit -n 256 || exit 99
           for i in $(seq 200); do exec {fd}</dev/null; done
           exec "$0" run "$1" --out "$2" --quiet"#,
        &yaml,
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("resources exhausted: too many open files (EMFILE)"),
        "{stderr}"
    );
    assert!(stderr.contains("its limit is 256"), "{stderr}");
    assert!(
        stderr.contains("ulimit -n") && stderr.contains("--workers"),
        "{stderr}"
    );
    // Stopped at the first second that saw it, not at the end of the 20 s.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    failed_report(&out, "EMFILE");
}
