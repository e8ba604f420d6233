//! squall against a WebSocket echo server this project did not write: Python's
//! `websockets` package (tests/data/echo_server.py), started by the test, with the shim
//! resetting connections under it. Nothing accepted may be lost.
//!
//! CI installs the package (`.ci/run`); without it this test fails and says how to
//! install it, rather than skipping and passing on a machine that never ran it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::support::{TempDir, report_json, root};
use squall::run::{RunOptions, RunStatus};

/// The echo server, killed when dropped, also when an assertion fails first.
struct EchoServer {
    child: Child,
    port: u16,
}

impl EchoServer {
    fn start(stderr_to: &std::path::Path) -> EchoServer {
        let import = Command::new("python3")
            .args(["-c", "import websockets"])
            .output();
        match import {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "this test needs Python's `websockets` package: run `.ci/run`, or \
                 `python3 -m pip install websockets`, then the tests again\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "this test needs python3 with the `websockets` package (cannot run python3: \
                 {e}); install Python 3, then `python3 -m pip install websockets`"
            ),
        }
        let mut child = Command::new("python3")
            .arg(root().join("tests/data/echo_server.py"))
            // Held open by the test: the server exits when it closes, so it cannot
            // outlive a test process that dies without running Drop.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // A file, not a pipe nobody drains: the server may log every reset.
            .stderr(std::fs::File::create(stderr_to).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = EchoServer { child, port: 0 };
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        server.port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the echo server printed no port ({line:?}); its stderr:\n{}",
                std::fs::read_to_string(stderr_to).unwrap_or_default()
            )
        });
        server
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_echo_server_under_resets_loses_nothing() {
    let dir = TempDir::new("external");
    let server = EchoServer::start(&dir.path().join("echo_server.stderr"));
    let yaml = format!(
        r#"
name: external-echo
seed: 9
duration: 5s
target: {{ url: "ws://127.0.0.1:{port}/", protocol: echo }}
clients: {{ count: 20, connect_rate: 200/s }}
messages: {{ rate: 10/s, size: 64B }}
recovery:
  backoff: {{ kind: exponential, initial: 50ms, max: 500ms, jitter: full }}
faults:
  - {{ kind: reset, connections: 50%, at: 1s, every: 700ms, for: 3s }}
"#,
        port = server.port
    );
    let scenario = squall::scenario::from_str(&yaml, "external.yaml").unwrap();
    let opts = RunOptions {
        out: Some(dir.path().to_path_buf()),
        live: squall::run::Live::Off,
        ..Default::default()
    };
    let outcome = squall::run::run(scenario, opts, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);
    let r = report_json(&outcome.dir);
    let c = &r["counters"];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("no counter {k}: {c}"))
    };
    // 20 clients × 10/s × ~5 s, less ramp, phase and the time spent reconnecting.
    assert!(n("messages_delivered") > 500, "{c}");
    assert_eq!(n("messages_lost"), 0, "{c}");
    assert_eq!(n("messages_sent"), n("messages_delivered"), "{c}");
    assert_eq!(n("messages_duplicated"), 0, "{c}");
    // Half the connections, five times: the resets really hit the third-party server.
    assert!(n("disconnects") >= 20, "{c}");
    assert_eq!(n("reconnects"), n("disconnects"), "{c}");
    drop(server);
}
