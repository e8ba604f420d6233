//! `squall replay`: the run a report records, run again — its embedded scenario, seed,
//! clients, duration and shard, so the same traffic and the same fault decisions — and
//! judged against the original: the figures through [`crate::report::compare`], the fault
//! ledgers through [`ledger`] (`docs/replay.md`).
//!
//! - this file: the original report read and checked, the replay's scenario and plan.
//! - [`ledger`]: `events.jsonl` folded into fault windows and acts per client, compared.
//! - `child`: the replay run through another squall build (`--binary`).
//! - [`render`]: the outcome (`replay.json`) and its text and Markdown (`replay.md`).

mod child;
pub mod ledger;
pub mod render;

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

pub use child::run as run_binary;

use crate::load::Shard;
use crate::report::{self, Report};
use crate::run::{self, Live, RunOptions};
use crate::scenario::{self, Scenario};

/// A `report.json` larger than this is no squall report (a 10,000-client report is a
/// few MiB); refused before it is read into memory.
const MAX_REPORT_BYTES: u64 = 256 << 20;

/// More shard directories than this is not a local run's (`squall run --workers` stops
/// at 64).
const MAX_WORKERS: u32 = 64;

/// Why a replay could not be made: the report (bad input), or the run (could not run).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    CouldNotRun(String),
}

/// The report to replay, read and checked.
#[derive(Debug, Clone)]
pub struct Original {
    /// Its `report.json`.
    pub path: PathBuf,
    /// The directory it is in, where its `events.jsonl` is.
    pub dir: PathBuf,
    pub report: Report,
    /// The slice of the clients it ran (`run.shard`).
    pub shard: Option<Shard>,
    /// Local worker processes it ran as (its `shards/` directories), 1 for one process.
    pub workers: u32,
}

impl Original {
    /// Reads the report at `path`: a `report.json` or the report directory holding one.
    pub fn open(path: &Path) -> Result<Original, ReplayError> {
        let bad = |what: String| ReplayError::BadInput(format!("{}: {what}", path.display()));
        let file = if path.is_dir() {
            path.join("report.json")
        } else {
            path.to_path_buf()
        };
        let meta = std::fs::metadata(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if path.is_dir() => {
                bad("no report.json in this directory".into())
            }
            _ => ReplayError::BadInput(format!("cannot read {}: {e}", file.display())),
        })?;
        if meta.len() > MAX_REPORT_BYTES {
            return Err(bad(format!(
                "is {} bytes, more than any squall report (is this the right file?)",
                meta.len()
            )));
        }
        let report = report::read(&file).map_err(|e| ReplayError::BadInput(e.to_string()))?;
        let origin = file.display().to_string();
        if !report.scenario.is_object() {
            return Err(ReplayError::BadInput(format!(
                "{origin}: has no embedded scenario (`scenario` is {}); replay needs a report written by `squall run`",
                kind_of(&report.scenario)
            )));
        }
        let shard = match &report.run.shard {
            None => None,
            Some(text) => Some(
                text.parse::<Shard>()
                    .map_err(|e| ReplayError::BadInput(format!("{origin}: run.shard: {e}")))?,
            ),
        };
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let workers = match shard {
            Some(_) => 1,
            None => shard_dirs(&dir),
        };
        if workers > MAX_WORKERS {
            return Err(ReplayError::BadInput(format!(
                "{}: {workers} shard directories: more than a local run has",
                dir.join("shards").display()
            )));
        }
        Ok(Original {
            path: file,
            dir,
            report,
            shard,
            workers,
        })
    }

    /// Where the original run's `events.jsonl` is.
    pub fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// The original's scenario name, as recorded.
    pub fn name(&self) -> &str {
        self.report.name()
    }
}

/// How many worker shards a merged run left under `dir/shards/` (`0`, `1`, …); 1 when
/// it has none.
fn shard_dirs(dir: &Path) -> u32 {
    let Ok(entries) = std::fs::read_dir(dir.join("shards")) else {
        return 1;
    };
    let n = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("report.json").is_file())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .take(MAX_WORKERS as usize + 1)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
    }
}

/// What the replay runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    /// The scenario as written to the replay's directory (`scenario.yaml`): the
    /// original's normalized scenario with its recorded seed, and the target switched.
    pub text: String,
    pub seed: u64,
    pub shard: Option<Shard>,
    pub workers: u32,
    /// `--target`: the original's target and the one replayed against.
    pub target: Option<(String, String)>,
}

impl Plan {
    /// The replay of `original`, against `target` (a `ws://` or `wss://` URL) if given.
    /// The scenario goes through the scenario's one parser and its checks, as any.
    pub fn new(original: &Original, target: Option<&str>) -> Result<Plan, ReplayError> {
        let mut value = original.report.scenario.clone();
        let seed = original.report.run.seed;
        let switched = match (target, value.as_object_mut()) {
            (Some(url), Some(map)) => {
                let before = map.get("target").cloned().unwrap_or_default();
                map.insert("target".into(), switch_target(&before, url));
                Some((describe_target(&before), url.to_string()))
            }
            _ => None,
        };
        if let Some(map) = value.as_object_mut() {
            map.insert("seed".into(), seed.into());
        }
        let text = serde_json::to_string_pretty(&value).map_err(|e| {
            ReplayError::BadInput(format!("{}: scenario: {e}", original.path.display()))
        })?;
        let origin = format!("{} (its scenario)", original.path.display());
        let scenario =
            scenario::from_str(&text, &origin).map_err(|e| ReplayError::BadInput(e.to_string()))?;
        Ok(Plan {
            scenario,
            text: format!(
                "# squall replay of {} (seed {seed})\n{text}\n",
                original.path.display()
            ),
            seed,
            shard: original.shard,
            workers: original.workers,
            target: switched,
        })
    }

    /// A new report directory for the replay under `parent`, holding `scenario.yaml`.
    pub fn create_dir(&self, parent: &Path) -> Result<PathBuf, ReplayError> {
        let dir = report::run_dir(
            parent,
            &format!("{}-replay", self.scenario.name),
            std::time::SystemTime::now(),
        )
        .map_err(|e| ReplayError::CouldNotRun(e.to_string()))?;
        report::write_atomic(&dir.join("scenario.yaml"), self.text.as_bytes())
            .map_err(|e| ReplayError::CouldNotRun(e.to_string()))?;
        Ok(dir)
    }

    /// `squall run` arguments that repeat this plan from `dir/scenario.yaml`.
    pub fn run_args(&self, dir: &Path) -> Vec<std::ffi::OsString> {
        vec![
            dir.join("scenario.yaml").into(),
            "--seed".into(),
            self.seed.to_string().into(),
        ]
    }

    /// Runs the plan in this process (as local worker processes when the original ran
    /// as several), writing its report into `dir`.
    pub async fn run(
        &self,
        dir: &Path,
        live: Live,
        interrupt: CancellationToken,
    ) -> Result<run::RunOutcome, ReplayError> {
        let opts = RunOptions {
            out: None,
            live,
            shard: self.shard,
            into: Some(dir.to_path_buf()),
        };
        let outcome = if self.workers > 1 {
            let workers = run::Workers {
                count: self.workers,
                args: self.run_args(dir),
            };
            run::run_workers(&self.scenario, &workers, &opts, interrupt).await
        } else {
            run::run(self.scenario.clone(), opts, interrupt).await
        };
        outcome.map_err(|e| ReplayError::CouldNotRun(e.to_string()))
    }
}

/// The target map replaced by an external `url`: an external target keeps its protocol,
/// headers and subprotocols; the built-in server speaks squall.v1, so its replacement is
/// a squall.v1 server at `url`.
fn switch_target(before: &serde_json::Value, url: &str) -> serde_json::Value {
    match before.get("url") {
        Some(_) => {
            let mut target = before.clone();
            if let Some(map) = target.as_object_mut() {
                map.insert("url".into(), url.into());
                // A CA file of the old server says nothing about the new one's.
                map.remove("ca_file");
            }
            target
        }
        None => serde_json::json!({ "url": url, "protocol": "squall" }),
    }
}

fn describe_target(target: &serde_json::Value) -> String {
    match target.get("url").and_then(|u| u.as_str()) {
        Some(url) => url.to_string(),
        None => "the built-in server".to_string(),
    }
}

/// The original as `compare` should see it beside the replay: with `--target`, the
/// target is what was meant to change, so it is not a different scenario.
pub fn comparable(original: &Report, replay: &Report, plan: &Plan) -> Report {
    let mut base = original.clone();
    if plan.target.is_some()
        && let (Some(map), Some(target)) =
            (base.scenario.as_object_mut(), replay.scenario.get("target"))
    {
        map.insert("target".into(), target.clone());
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builtin_target_becomes_a_squall_server_and_an_external_one_keeps_its_settings() {
        let builtin = serde_json::json!({"builtin": {"mode": "echo"}});
        assert_eq!(
            switch_target(&builtin, "ws://127.0.0.1:9/"),
            serde_json::json!({"url": "ws://127.0.0.1:9/", "protocol": "squall"})
        );
        let external = serde_json::json!({"url": "wss://a/", "protocol": "echo",
            "headers": {"x": "1"}, "ca_file": "ca.pem"});
        assert_eq!(
            switch_target(&external, "ws://b/"),
            serde_json::json!({"url": "ws://b/", "protocol": "echo", "headers": {"x": "1"}})
        );
        assert_eq!(describe_target(&builtin), "the built-in server");
        assert_eq!(describe_target(&external), "wss://a/");
    }
}
