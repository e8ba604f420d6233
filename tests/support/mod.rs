//! Helpers shared by the integration tests. Everything binds 127.0.0.1 on OS-chosen ports.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary directory for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("squall-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in this directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the built `squall` binary with `args`.
pub fn squall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// `squall run SCENARIO --out DIR` plus `extra` flags, through the built binary.
pub fn squall_run(scenario: &Path, out: &TempDir, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    squall(&args)
}

/// The single report directory written under `parent`.
pub fn only_report_dir(parent: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one report directory in {}: {dirs:?}",
        parent.display()
    );
    dirs.into_iter().next().unwrap()
}

/// Runs the scenario `yaml` through the built binary into cargo's per-target scratch
/// directory and returns its report directory, for a report several tests share (kept
/// in a `OnceLock`: a static is never dropped, so a `TempDir` would never be removed).
pub fn shared_report(tag: &str, yaml: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    run_report(&dir, yaml)
}

/// Writes `yaml` to `dir/scenario.yaml`, runs it with the built binary (`--out
/// dir/reports --quiet`), which must exit 0, and returns its report directory.
pub fn run_report(dir: &Path, yaml: &str) -> PathBuf {
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, yaml).unwrap();
    let out_dir = dir.join("reports");
    let out = squall(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    only_report_dir(&out_dir)
}

/// Runs `scenario` in-process with its report under `dir`; the run must complete.
pub async fn run_in(
    dir: &TempDir,
    scenario: squall::scenario::Scenario,
) -> squall::run::RunOutcome {
    let opts = squall::run::RunOptions {
        out: Some(dir.path().to_path_buf()),
        live: squall::run::Live::Off,
        ..Default::default()
    };
    let outcome = squall::run::run(scenario, opts, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        squall::run::RunStatus::Completed,
        "{:?}",
        outcome.report.run.error
    );
    outcome
}

/// Reads `report.json` of a report directory as loose JSON.
pub fn report_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// Runs a scenario given as YAML in-process (its report in a temporary directory) and
/// returns its report.json; the run must complete.
pub async fn run_yaml(yaml: &str) -> serde_json::Value {
    run_scenario(squall::scenario::from_str(yaml, "test.yaml").unwrap()).await
}

/// Runs a scenario in-process (its report in a temporary directory) and returns its
/// report.json; the run must complete.
pub async fn run_scenario(scenario: squall::scenario::Scenario) -> serde_json::Value {
    let dir = TempDir::new("run");
    report_json(&run_in(&dir, scenario).await.dir)
}

/// A counter of a report.json, by name.
pub fn counter(r: &serde_json::Value, key: &str) -> u64 {
    r["counters"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {key}: {}", r["counters"]))
}

/// Runs `scenario` in-process on its own task, its report in a temporary directory
/// removed once the run is over; progress is not shown.
pub fn spawn_run(
    scenario: squall::scenario::Scenario,
    tag: &str,
) -> tokio::task::JoinHandle<squall::run::RunOutcome> {
    let dir = TempDir::new(tag);
    let opts = squall::run::RunOptions {
        out: Some(dir.path().to_path_buf()),
        live: squall::run::Live::Off,
        ..Default::default()
    };
    tokio::spawn(async move {
        let outcome = squall::run::run(scenario, opts, tokio_util::sync::CancellationToken::new())
            .await
            .unwrap();
        drop(dir);
        outcome
    })
}
