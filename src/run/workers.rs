//! Local worker processes. A scenario that needs more descriptors than one process may
//! open runs as `N` shards of itself: `N` child processes of this binary, each
//! `squall run … --shard I/N`, each with its own server, shim and report; then their
//! reports merge exactly (`report::merge`) and the thresholds are judged on the whole.
//! It is the mechanism shards on many machines use, so what is tested on one machine is
//! what runs on many.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::SystemTime;

use futures_util::StreamExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::live::{self, Live, Progress};
use super::{RunError, RunOptions, RunOutcome, RunStatus};
use crate::gate;
use crate::load::Shard;
use crate::report::{self, Report, RunInfo};
use crate::scenario::Scenario;

/// How to start the workers of one run.
#[derive(Debug, Clone)]
pub struct Workers {
    pub count: u32,
    /// What follows `run` on each child's command line: the scenario file and the
    /// overrides as the user gave them (`--seed`, `--clients`, `--duration`).
    pub args: Vec<OsString>,
}

/// Runs `scenario` as `workers.count` child processes and merges their reports into
/// the run's own directory (each shard's report stays under `shards/I/`). Cancelling
/// `interrupt` passes SIGTERM on to every child: each writes its report, marked
/// interrupted, and the merge still happens.
pub async fn run(
    scenario: &Scenario,
    workers: &Workers,
    opts: &RunOptions,
    interrupt: CancellationToken,
) -> Result<RunOutcome, RunError> {
    let started_at = SystemTime::now();
    let dir = super::report_dir(scenario, opts, started_at)?;
    let exe = std::env::current_exe().map_err(|e| RunError::Workers(e.to_string()))?;
    let mut children: Vec<(Shard, Child)> = Vec::new();
    for index in 0..workers.count {
        let shard = Shard {
            index,
            count: workers.count,
        };
        let child = Command::new(&exe)
            .arg("run")
            .args(&workers.args)
            .arg("--shard")
            .arg(shard.to_string())
            .arg("--into")
            .arg(shard_dir(&dir, index))
            .arg("--quiet")
            .stdin(Stdio::null())
            // Each child prints only its report path; the merged one is what counts.
            .stdout(Stdio::null())
            .spawn();
        match child {
            Ok(child) => children.push((shard, child)),
            Err(e) => {
                terminate(&children);
                return Err(RunError::Workers(format!(
                    "cannot start worker {shard}: {e}"
                )));
            }
        }
    }

    let pids: Vec<u32> = children.iter().filter_map(|(_, c)| c.id()).collect();
    let mut waits: futures_util::stream::FuturesUnordered<_> = children
        .iter_mut()
        .map(|(shard, child)| async move { (*shard, child.wait().await) })
        .collect();
    let mut forwarded = false;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.tick().await;
    let mut ticks = 0u64;
    let mut exits = Vec::new();
    while exits.len() < workers.count as usize {
        tokio::select! {
            Some((shard, status)) = waits.next() => {
                // A worker whose `abort_on_fail` threshold failed exits 1 early: the
                // others stop too, as one process would have.
                let aborted = status.as_ref().ok().and_then(|s| s.code()) == Some(1);
                if aborted && !forwarded {
                    forwarded = true;
                    terminate_all(&pids);
                }
                exits.push((shard, status));
            }
            _ = interrupt.cancelled(), if !forwarded => {
                forwarded = true;
                terminate_all(&pids);
            }
            _ = tick.tick() => {
                ticks += 1;
                if live::due(opts.live, ticks) {
                    show_progress(&dir, workers.count, opts.live);
                }
            }
        }
    }
    drop(waits);
    exits.sort_by_key(|(shard, _)| shard.index);
    live::clear(opts.live);
    let codes: Vec<(Shard, Option<i32>)> = exits
        .into_iter()
        .map(|(shard, status)| (shard, status.ok().and_then(|s| s.code())))
        .collect();

    join_events(&dir, &codes);
    for (shard, _) in &codes {
        let _ = std::fs::remove_file(shard_dir(&dir, shard.index).join(live::PROGRESS_FILE));
    }
    let mut reports = Vec::new();
    let mut missing = Vec::new();
    for (shard, code) in &codes {
        match report::read(&shard_dir(&dir, shard.index).join("report.json")) {
            Ok(r) => reports.push(r),
            Err(e) => missing.push(format!(
                "worker {shard} exited with {} and left no report ({e})",
                code.map_or("a signal".to_string(), |c| format!("code {c}"))
            )),
        }
    }
    let mut merged = if reports.is_empty() {
        empty_report(scenario, started_at)
    } else {
        report::merge(&reports)?
    };
    merged.run.shard = None;
    merged.run.started_at = humantime::format_rfc3339_millis(started_at).to_string();
    if !missing.is_empty() {
        merged.run.status = "failed".to_string();
        merged.run.error = Some(missing.join("; "));
    } else if let Some(aborted) = reports.iter().find(|r| r.run.status == "aborted") {
        merged.run.status = "aborted".to_string();
        merged.run.interrupted = false;
        merged.run.error = aborted.run.error.clone();
    } else if forwarded && merged.run.status == "completed" {
        merged.run.status = "interrupted".to_string();
        merged.run.interrupted = true;
    }
    gate::judge(&mut merged, &scenario.thresholds);
    report::write_all(&dir, &merged, &scenario.report.formats)?;
    let status = match merged.run.status.as_str() {
        "completed" => RunStatus::Completed,
        "interrupted" => RunStatus::Interrupted,
        "aborted" => RunStatus::Aborted(merged.run.error.clone().unwrap_or_default()),
        _ => RunStatus::Failed(merged.run.error.clone().unwrap_or_default()),
    };
    Ok(RunOutcome {
        report: merged,
        dir,
        status,
    })
}

/// Where worker `index` writes its report, inside the run's report directory.
fn shard_dir(dir: &std::path::Path, index: u32) -> std::path::PathBuf {
    dir.join("shards").join(index.to_string())
}

/// The workers' progress as one line (each worker leaves its own every second).
fn show_progress(dir: &std::path::Path, count: u32, live: Live) {
    let parts: Vec<Progress> = (0..count)
        .filter_map(|i| {
            let path = shard_dir(dir, i).join(live::PROGRESS_FILE);
            serde_json::from_slice(&std::fs::read(path).ok()?).ok()
        })
        .collect();
    if !parts.is_empty() {
        Progress::sum(&parts).print(live, count as usize);
    }
}

/// The run's `events.jsonl`: every shard's events, each line marked with its shard.
fn join_events(dir: &std::path::Path, shards: &[(Shard, Option<i32>)]) {
    use std::io::{BufRead, BufWriter, Write};
    let Ok(out) = std::fs::File::create(dir.join("events.jsonl")) else {
        return;
    };
    let mut out = BufWriter::new(out);
    for (shard, _) in shards {
        let path = shard_dir(dir, shard.index).join("events.jsonl");
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
            let _ = match line.strip_prefix('{') {
                Some(rest) => writeln!(out, "{{\"shard\":\"{shard}\",{rest}"),
                None => writeln!(out, "{line}"),
            };
        }
    }
    let _ = out.flush();
}

fn terminate(children: &[(Shard, Child)]) {
    terminate_all(
        &children
            .iter()
            .filter_map(|(_, c)| c.id())
            .collect::<Vec<_>>(),
    );
}

/// SIGTERM to each process: it stops its clients and writes its report.
fn terminate_all(pids: &[u32]) {
    for pid in pids {
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(*pid) {
            // SAFETY: kill(2) with a pid this process spawned and a valid signal number
            // has no memory effects; a pid that already exited yields ESRCH, ignored.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// The report of a run whose workers all failed before writing theirs.
fn empty_report(scenario: &Scenario, started_at: SystemTime) -> Report {
    let metrics = crate::metrics::Metrics::new(
        crate::clock::Clock::start(),
        scenario.groups.iter().map(|g| g.name.clone()).collect(),
    );
    let info = RunInfo {
        started_at: humantime::format_rfc3339_millis(started_at).to_string(),
        duration_s: 0.0,
        seed: scenario.seed,
        version: env!("CARGO_PKG_VERSION").to_string(),
        interrupted: false,
        status: "failed".to_string(),
        error: None,
        shard: None,
    };
    Report::build(scenario.to_json(), info, &metrics.snapshot(), Vec::new())
}
