//! `squall serve` through the built binary: it prints the address it bound, echoes for a
//! plain WebSocket client, speaks squall.v1 to the recovery engine, stops on SIGINT with
//! exit 130 and a summary of what it received, and refuses a taken port with exit 3.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use squall::recovery::{End, Session, SessionConfig};
use squall::scenario::{MessageKind, Protocol};

/// Generous: a loaded CI machine may take a while to start a process.
const STARTUP: Duration = Duration::from_secs(30);

/// A running `squall serve`, killed when dropped (a failed assertion must not leave it
/// running). Its stdout is read line by line on a thread.
pub(crate) struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) addr: SocketAddr,
}

impl Served {
    pub(crate) fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Inherited, not piped: nothing has to drain it, and it shows on a failure.
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = read_lines(child.stdout.take().unwrap());
        let mut served = Served {
            child,
            lines,
            addr: ([0, 0, 0, 0], 0).into(),
        };
        let first = served
            .lines
            .recv_timeout(STARTUP)
            .expect("`squall serve` printed no address (its stderr is above)");
        // "squall serve: listening on 127.0.0.1:PORT (ws://…)"
        served.addr = first
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        served
    }

    /// Sends SIGINT and waits for the exit; returns the status and the rest of stdout.
    fn interrupt(&mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = wait_for(&mut self.child, Duration::from_secs(20));
        // The reader thread ends at EOF, now that the process has exited.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            rest.push(line);
        }
        (status, rest.join("\n"))
    }
}

/// What a stopped child wrote on stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    err
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for `child` to exit, at most `limit`; kills it and fails the test after that.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`squall serve` still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn squall_session(url: String) -> SessionConfig {
    let mut policy = squall::scenario::defaults::recovery();
    policy.backoff.initial = Duration::from_millis(50);
    policy.backoff.max = Duration::from_secs(1);
    SessionConfig {
        url,
        session: "serve-test".into(),
        protocol: Protocol::Squall,
        headers: vec![],
        subprotocols: vec![],
        policy,
        kind: MessageKind::Text,
        rng: squall::rng::rng(1, "backoff", 0),
        dialer: None,
        tls: None,
        max_message_bytes: squall::recovery::DEFAULT_MAX_MESSAGE_BYTES,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_echoes_plain_clients_delivers_squall_sessions_and_stops_on_sigint_with_130() {
    let mut served = Served::start(&["--listen", "127.0.0.1:0"]);
    assert!(served.addr.ip().is_loopback() && served.addr.port() != 0);
    let url = format!("ws://{}/ws", served.addr);

    // A plain WebSocket client, offering no subprotocol: a plain echo.
    let (mut ws, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .expect("handshake in time")
    .unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    for m in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
    ] {
        ws.send(m.clone()).await.unwrap();
        let back = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("echo in time")
            .unwrap()
            .unwrap();
        assert_eq!(back, m);
    }
    ws.close(None).await.unwrap();

    // The recovery engine offers squall.v1: every message reaches the server's
    // application once, as its ledger shows below.
    let (session, streams) = Session::open(squall_session(url), CancellationToken::new());
    for i in 1..=50u64 {
        session
            .send(format!("{i:016x} from the engine"))
            .await
            .unwrap();
    }
    drop(session);
    let outcome = tokio::time::timeout(Duration::from_secs(20), streams.outcome)
        .await
        .expect("the session drains in time")
        .unwrap();
    assert_eq!(outcome.end, End::Drained, "{outcome:?}");
    assert_eq!(outcome.undelivered, 0);

    let (status, summary) = served.interrupt();
    assert_eq!(status.code(), Some(130), "{summary}");
    assert!(summary.contains("stopped after"), "{summary}");
    assert!(summary.contains("handshakes 2 (failed 0)"), "{summary}");
    assert!(summary.contains("50 distinct, 0 duplicate"), "{summary}");
    assert!(
        summary.contains("plain echo messages received: 2"),
        "{summary}"
    );
}

#[test]
fn a_second_serve_on_a_taken_port_exits_3_saying_so() {
    let first = Served::start(&["--listen", "127.0.0.1:0"]);
    let taken = first.addr.to_string();
    let mut second = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["serve", "--listen", &taken])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut second, Duration::from_secs(20));
    let err = stderr_of(&mut second);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains(&taken) && err.contains("already in use"),
        "{err}"
    );
}

#[test]
fn a_bad_listen_address_exits_2_naming_the_expected_form() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["serve", "--listen", "9000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--listen") && err.contains("IP:PORT"), "{err}");
}
