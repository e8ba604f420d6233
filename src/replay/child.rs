//! The replay run through another squall build (`squall replay --binary PATH`): that
//! build's `squall run` on the scenario written to the replay's directory, as a child
//! process writing its report exactly there. Ctrl-C and SIGTERM pass on to it, so it
//! still writes its report, marked interrupted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Plan, ReplayError};
use crate::report::{self, Report};

/// How long an interrupted child gets to write its report before it is killed.
const GOODBYE: Duration = Duration::from_secs(30);

/// Runs `binary run DIR/scenario.yaml --seed N --into DIR --quiet [--shard I/N]` and
/// reads the report it wrote.
pub async fn run(
    binary: &Path,
    plan: &Plan,
    dir: &Path,
    interrupt: CancellationToken,
) -> Result<Report, ReplayError> {
    if plan.workers > 1 {
        return Err(ReplayError::BadInput(format!(
            "the original ran as {} worker processes: replay its shards one at a time through another build \
             (squall replay …/shards/I/report.json --binary {})",
            plan.workers,
            binary.display()
        )));
    }
    let mut command = Command::new(binary);
    command
        .arg("run")
        .args(plan.run_args(dir))
        .arg("--into")
        .arg(dir)
        .arg("--quiet")
        .stdin(Stdio::null())
        // It prints only its report's path; the comparison is what this run shows.
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if let Some(shard) = plan.shard {
        command.arg("--shard").arg(shard.to_string());
    }
    let mut child = command
        .spawn()
        .map_err(|e| ReplayError::CouldNotRun(format!("cannot start {}: {e}", binary.display())))?;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = interrupt.cancelled() => {
            terminate(child.id());
            match tokio::time::timeout(GOODBYE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = child.kill().await;
                    child.wait().await
                }
            }
        }
    }
    .map_err(|e| ReplayError::CouldNotRun(format!("{}: {e}", binary.display())))?;
    // 0 and 1 ran (1: a threshold failed), 130 was interrupted: each wrote a report.
    match status.code() {
        Some(0 | 1 | 130) => {}
        Some(2) => {
            return Err(ReplayError::BadInput(format!(
                "{} refused the replay's scenario {} (exit 2; its message is above)",
                binary.display(),
                dir.join("scenario.yaml").display()
            )));
        }
        _ => {
            return Err(ReplayError::CouldNotRun(format!(
                "{} run ended with {status} (its message is above)",
                binary.display()
            )));
        }
    }
    report::read(&dir.join("report.json")).map_err(|e| {
        ReplayError::CouldNotRun(format!(
            "{} ran but its report does not read: {e}",
            binary.display()
        ))
    })
}

/// SIGTERM to the child: it stops its clients and writes its report.
fn terminate(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with the pid of a child this process spawned and has not yet
        // reaped, and a valid signal number; no memory is touched.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}
