//! Peers that do not play fair, against each part of squall that meets one: the recovery
//! engine's client against hostile servers, the built-in server against hostile clients,
//! and the shim (following WebSocket frames) between them. Each peer speaks just enough
//! HTTP and WebSocket by hand to get where it attacks: garbage after the upgrade, frame
//! headers that claim 2^62 bytes or one byte over the limit, messages that never end,
//! handshakes never answered or answered with an endless or broken head, bytes trickled
//! forever.
//!
//! What is checked: the error class of every failure (docs/recovery.md), retries and
//! giving up as the policy says, no panic (a session's outcome is a task's result), the
//! right close code from the server, healthy sessions on the same server or shim
//! unaffected, and memory: a client is handed its bytes through a counting stream, so
//! "it read at most N bytes of this connection" bounds what it could have buffered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use squall::recovery::{
    BoxedIo, DEFAULT_MAX_MESSAGE_BYTES, Dialer, Disconnect, End, Outcome, Session, SessionConfig,
    SessionEvent,
};
use squall::scenario::{ErrorClass, MessageKind, Protocol};

/// The client's read limit with the default `max_message_bytes`: 64 KiB plus the envelope.
fn client_limit() -> u64 {
    squall::protocol::read_limit(DEFAULT_MAX_MESSAGE_BYTES) as u64
}

/// Most bytes a hostile writer sends on one connection: far beyond every limit, so a
/// peer that did not enforce one would be seen reading it all.
const WRITE_CAP: u64 = 64 << 20;

// ---------------------------------------------------------------------------------------
// A hostile server: the URL's path chooses what it does.

/// Bytes written per path, summed and per connection (the most on one).
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    accepts: u32,
    max_per_conn: u64,
}

#[derive(Default)]
struct ServerLog(Mutex<BTreeMap<String, Written>>);

impl ServerLog {
    fn accepted(&self, path: &str) {
        self.0
            .lock()
            .unwrap()
            .entry(path.into())
            .or_default()
            .accepts += 1;
    }
    fn wrote(&self, path: &str, n: u64) {
        let mut map = self.0.lock().unwrap();
        let w = map.entry(path.into()).or_default();
        w.max_per_conn = w.max_per_conn.max(n);
    }
    fn get(&self, path: &str) -> Written {
        self.0
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or_default()
    }
}

/// Aborts the server's accept loop when the test ends.
struct Hostile {
    addr: SocketAddr,
    log: Arc<ServerLog>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the hostile server on 127.0.0.1:0. At most 500 connections, each served by a
/// task bounded in bytes ([`WRITE_CAP`]) and time (60 s).
async fn hostile_server() -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(ServerLog::default());
    let served = log.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        for _ in 0..500 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let log = served.clone();
            conns.spawn(async move {
                let _ = timeout(Duration::from_secs(60), serve_hostile(tcp, &log)).await;
            });
        }
    });
    Hostile { addr, log, task }
}

/// Reads an HTTP head up to its blank line: at most 16 KiB, 5 s.
async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            if tcp.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(())
    };
    timeout(Duration::from_secs(5), read).await.ok()??;
    String::from_utf8(head).ok()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The 101 answer to `head`, selecting squall.v1 when it was offered.
fn switching(head: &str) -> String {
    let key = header(head, "sec-websocket-key").unwrap_or_default();
    let accept =
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let protocol = match header(head, "sec-websocket-protocol") {
        Some(p) if p.contains(squall::protocol::SUBPROTOCOL) => {
            format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                squall::protocol::SUBPROTOCOL
            )
        }
        _ => String::new(),
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
    )
}

/// An unmasked (server → client) frame header.
fn frame_header(fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut h = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => h.push(m | len as u8),
        126..=0xFFFF => {
            h.push(m | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(m | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        h.extend_from_slice(&key);
    }
    h
}

/// Writes `chunk` again and again until [`WRITE_CAP`] or the peer goes; returns the bytes
/// written.
async fn flood(tcp: &mut TcpStream, mut written: u64, chunk: &[u8]) -> u64 {
    while written < WRITE_CAP {
        if tcp.write_all(chunk).await.is_err() {
            break;
        }
        written += chunk.len() as u64;
    }
    written
}

async fn serve_hostile(mut tcp: TcpStream, log: &ServerLog) {
    let Some(head) = read_head(&mut tcp).await else {
        return;
    };
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    log.accepted(&path);
    let ok = switching(&head);
    let mut written = 0u64;
    match path.as_str() {
        // A well-behaved echo server, for the connections that must not be disturbed.
        "echo" => {
            if tcp.write_all(ok.as_bytes()).await.is_err() {
                return;
            }
            let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
            for _ in 0..100_000 {
                match ws.next().await {
                    Some(Ok(m)) if m.is_text() || m.is_binary() => {
                        if ws.send(m).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
            return;
        }
        // No WebSocket frame at all: 0xFF sets the reserved bits and a reserved opcode.
        "garbage" => {
            let _ = tcp.write_all(ok.as_bytes()).await;
            written = flood(&mut tcp, 0, &[0xFF; 4096]).await;
        }
        // A frame that claims 2^62 bytes, then zeros as long as the peer reads.
        "huge" => {
            let _ = tcp.write_all(ok.as_bytes()).await;
            let _ = tcp.write_all(&frame_header(true, 2, 1 << 62, None)).await;
            written = flood(&mut tcp, 0, &[0; 4096]).await;
        }
        // One byte over the client's limit, the payload really sent.
        "just-over" => {
            let _ = tcp.write_all(ok.as_bytes()).await;
            let len = client_limit() + 1;
            let _ = tcp.write_all(&frame_header(true, 2, len, None)).await;
            let mut left = len;
            while left > 0 {
                let n = left.min(4096);
                if tcp.write_all(&vec![0; n as usize]).await.is_err() {
                    break;
                }
                written += n;
                left -= n;
            }
        }
        // A text message that never ends: fragment after fragment, never FIN.
        "fragments" => {
            let _ = tcp.write_all(ok.as_bytes()).await;
            let mut first = frame_header(false, 1, 1024, None);
            first.extend_from_slice(&[b'a'; 1024]);
            let _ = tcp.write_all(&first).await;
            let mut next = frame_header(false, 0, 1024, None);
            next.extend_from_slice(&[b'a'; 1024]);
            written = flood(&mut tcp, first.len() as u64, &next).await;
        }
        // TCP accepted, the request read, never an answer (until the task's 60 s).
        "silent" => {
            let mut sink = [0u8; 1024];
            while let Ok(n) = tcp.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        // A 101 whose second line has no colon: not HTTP.
        "malformed" => {
            let _ = tcp
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade websocket\r\n\r\n")
                .await;
        }
        // A 101 status line, then one header line that never ends.
        "endless-head" => {
            let _ = tcp
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nX-Filler: ")
                .await;
            written = flood(&mut tcp, 0, &[b'a'; 4096]).await;
        }
        // The right answer, one byte every 50 ms (600 bytes at most).
        "trickle-head" => {
            for b in ok.bytes().cycle().take(600) {
                if tcp.write_all(&[b]).await.is_err() {
                    break;
                }
                written += 1;
                sleep(Duration::from_millis(50)).await;
            }
        }
        // The upgrade, then a message one byte every 100 ms (600 bytes at most).
        "trickle-frames" => {
            let _ = tcp.write_all(ok.as_bytes()).await;
            let mut frame = frame_header(true, 2, 590, None);
            frame.extend_from_slice(&[0; 590]);
            for b in frame.into_iter().take(600) {
                if tcp.write_all(&[b]).await.is_err() {
                    break;
                }
                written += 1;
                sleep(Duration::from_millis(100)).await;
            }
        }
        _ => {}
    }
    log.wrote(&path, written);
}

// ---------------------------------------------------------------------------------------
// A client whose every byte read is counted.

/// Dials TCP (to `via` if set) and counts the bytes each connection reads; keeps the most
/// any one connection read.
#[derive(Debug)]
struct CountingDialer {
    via: Option<SocketAddr>,
    max_read: Arc<AtomicU64>,
}

impl CountingDialer {
    fn new(via: Option<SocketAddr>) -> Arc<Self> {
        Arc::new(Self {
            via,
            max_read: Arc::new(AtomicU64::new(0)),
        })
    }
}

struct Counted {
    tcp: TcpStream,
    read: u64,
    max_read: Arc<AtomicU64>,
}

impl Dialer for CountingDialer {
    fn dial<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxedIo>> + Send + 'a>> {
        Box::pin(async move {
            let tcp = match self.via {
                Some(addr) => TcpStream::connect(addr).await?,
                None => TcpStream::connect((host, port)).await?,
            };
            Ok(Box::new(Counted {
                tcp,
                read: 0,
                max_read: self.max_read.clone(),
            }) as BoxedIo)
        })
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read += n;
        let read = self.read;
        self.max_read.fetch_max(read, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

fn config(url: String, protocol: Protocol, dialer: Arc<CountingDialer>) -> SessionConfig {
    let mut policy = squall::scenario::defaults::recovery();
    policy.backoff.initial = Duration::from_millis(50);
    policy.backoff.max = Duration::from_millis(200);
    policy.backoff.jitter = squall::scenario::Jitter::None;
    policy.handshake_timeout = Duration::from_millis(600);
    SessionConfig {
        url,
        session: "hostile-test".into(),
        protocol,
        headers: vec![],
        subprotocols: vec![],
        policy,
        kind: MessageKind::Text,
        rng: squall::rng::rng(1, "backoff", 0),
        dialer: Some(dialer),
        tls: None,
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
    }
}

/// What one session against a hostile path came to.
struct Seen {
    outcome: Outcome,
    /// Every failed attempt and lost connection: reason and class.
    failures: Vec<(Disconnect, ErrorClass)>,
    /// The most bytes one of its connections read.
    max_read: u64,
}

/// Opens a squall session to `path` that gives up after `attempts` failed attempts, and
/// waits (at most 30 s) for it to end.
async fn until_given_up(server: &Hostile, path: &str, attempts: u32) -> Seen {
    let dialer = CountingDialer::new(None);
    let mut cfg = config(
        format!("ws://{}/{path}", server.addr),
        Protocol::Squall,
        dialer.clone(),
    );
    cfg.policy.max_attempts = Some(attempts);
    let (session, streams) = Session::open(cfg, CancellationToken::new());
    let seen = collect(streams, Duration::from_secs(30), &dialer).await;
    drop(session);
    seen
}

async fn collect(
    mut streams: squall::recovery::SessionStreams,
    within: Duration,
    dialer: &CountingDialer,
) -> Seen {
    let outcome = timeout(within, &mut streams.outcome)
        .await
        .expect("the session ends by its policy")
        .expect("the session's task did not panic");
    let mut failures = Vec::new();
    while let Ok(ev) = streams.events.try_recv() {
        match ev {
            SessionEvent::AttemptFailed { reason, class, .. }
            | SessionEvent::Disconnected { reason, class, .. } => failures.push((reason, class)),
            _ => {}
        }
    }
    Seen {
        outcome,
        failures,
        max_read: dialer.max_read.load(Ordering::Relaxed),
    }
}

/// Every failure has `class` and satisfies `reason`; the session gave up after exactly
/// `attempts` connections, each one accepted by the server.
fn assert_gave_up(
    seen: &Seen,
    server: &Hostile,
    path: &str,
    attempts: u32,
    class: ErrorClass,
    reason: impl Fn(&Disconnect) -> bool,
) {
    assert!(
        matches!(&seen.outcome.end, End::Failed(why) if why.contains("retry limit")),
        "{path}: {:?}",
        seen.outcome
    );
    assert_eq!(
        seen.failures.len(),
        attempts as usize,
        "{path}: {:?}",
        seen.failures
    );
    for (r, c) in &seen.failures {
        assert_eq!(*c, class, "{path}: {r}");
        assert!(reason(r), "{path}: unexpected reason {r:?}");
    }
    assert_eq!(server.log.get(path).accepts, attempts, "{path}");
    // The figure docs and reviews quote (`--nocapture`).
    eprintln!(
        "{path}: at most {} bytes read by one connection, {} written to one by the server",
        seen.max_read,
        server.log.get(path).max_per_conn
    );
}

fn too_long(r: &Disconnect) -> bool {
    matches!(r, Disconnect::Protocol(m) if m.contains("too long"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_upgrade_is_a_data_error_retried_until_the_policy_gives_up() {
    let server = hostile_server().await;
    let seen = until_given_up(&server, "garbage", 3).await;
    // tungstenite reads 0xFF as a reserved opcode (15) before it looks at the RSV bits.
    assert_gave_up(
        &seen,
        &server,
        "garbage",
        3,
        ErrorClass::Data,
        |r| matches!(r, Disconnect::Protocol(m) if m.contains("opcode") || m.contains("eserved")),
    );
    // The first byte is refused: nothing like the flood was read.
    assert!(seen.max_read <= 16 * 1024, "read {} bytes", seen.max_read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_header_over_the_limit_is_refused_before_its_payload_is_read() {
    let server = hostile_server().await;
    for path in ["huge", "just-over"] {
        let seen = until_given_up(&server, path, 2).await;
        assert_gave_up(&seen, &server, path, 2, ErrorClass::Data, too_long);
        // The 101 and one 4 KiB read: the payload the header announced was never awaited.
        assert!(
            seen.max_read <= 16 * 1024,
            "{path}: read {} bytes",
            seen.max_read
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_never_ends_stops_at_the_message_limit() {
    let server = hostile_server().await;
    let seen = until_given_up(&server, "fragments", 2).await;
    assert_gave_up(&seen, &server, "fragments", 2, ErrorClass::Data, too_long);
    // The limit (64 KiB and the envelope), one fragment and one read over it at most:
    // the client never held more. (With tungstenite's 64 MiB it read the whole flood.)
    let bound = client_limit() + 16 * 1024;
    assert!(
        seen.max_read >= client_limit() && seen.max_read <= bound,
        "read {} bytes, limit {}",
        seen.max_read,
        client_limit()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_never_answered_or_trickled_times_out_as_a_connection_error() {
    let server = hostile_server().await;
    for path in ["silent", "trickle-head"] {
        let started = Instant::now();
        let seen = until_given_up(&server, path, 2).await;
        assert_gave_up(&seen, &server, path, 2, ErrorClass::Connection, |r| {
            *r == Disconnect::HandshakeTimeout
        });
        // Two 600 ms timeouts and one backoff, with room for a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(10), "{path}");
        assert!(seen.max_read <= 1024, "{path}: read {}", seen.max_read);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_endless_http_answer_is_a_data_error_and_bounded() {
    let server = hostile_server().await;
    let seen = until_given_up(&server, "malformed", 2).await;
    assert_gave_up(&seen, &server, "malformed", 2, ErrorClass::Data, |r| {
        matches!(r, Disconnect::Protocol(_))
    });
    let seen = until_given_up(&server, "endless-head", 2).await;
    assert_gave_up(&seen, &server, "endless-head", 2, ErrorClass::Data, |r| {
        matches!(r, Disconnect::Protocol(_))
    });
    // tungstenite reads at most 64 KiB of HTTP head, in 4 KiB reads.
    assert!(
        seen.max_read <= 72 * 1024,
        "an endless head was read up to {} bytes",
        seen.max_read
    );
    assert!(server.log.get("endless-head").max_per_conn < WRITE_CAP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_trickled_forever_is_a_missed_heartbeat_and_retried() {
    // Echo protocol: the connection goes live at once, and only the heartbeat can tell a
    // server that sends a byte every 100 ms from a working one.
    let server = hostile_server().await;
    let dialer = CountingDialer::new(None);
    let mut cfg = config(
        format!("ws://{}/trickle-frames", server.addr),
        Protocol::Echo,
        dialer.clone(),
    );
    cfg.policy.heartbeat.interval = Duration::from_millis(300);
    cfg.policy.heartbeat.timeout = Duration::from_millis(300);
    let token = CancellationToken::new();
    let (session, streams) = Session::open(cfg, token.clone());
    // Up to 15 s for three connections to be declared dead (each within about 600 ms).
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.log.get("trickle-frames").accepts < 3 && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    let seen = collect(streams, Duration::from_secs(10), &dialer).await;
    drop(session);
    assert_eq!(seen.outcome.end, End::Cancelled, "retried, never gave up");
    assert!(server.log.get("trickle-frames").accepts >= 3);
    assert!(seen.failures.len() >= 2, "{:?}", seen.failures);
    for (r, c) in &seen.failures {
        assert_eq!(*r, Disconnect::HeartbeatMissed);
        assert_eq!(*c, ErrorClass::Connection);
    }
    assert!(seen.max_read <= 1024, "read {}", seen.max_read);
}

/// A well-behaved session that sends 100 numbered messages, 20 ms apart, then drains:
/// what hostile peers on the same server or shim must not disturb.
fn healthy(
    url: String,
    protocol: Protocol,
    via: Option<SocketAddr>,
) -> tokio::task::JoinHandle<Outcome> {
    tokio::spawn(async move {
        let cfg = config(url, protocol, CountingDialer::new(via));
        let (session, streams) = Session::open(cfg, CancellationToken::new());
        for i in 1..=100u64 {
            session.send(format!("{i:016x} healthy")).await.unwrap();
            sleep(Duration::from_millis(20)).await;
        }
        drop(session);
        timeout(Duration::from_secs(30), streams.outcome)
            .await
            .expect("a healthy session drains")
            .expect("its task did not panic")
    })
}

// ---------------------------------------------------------------------------------------
// Hostile clients against the built-in server.

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Connects and upgrades by hand; returns the socket after the server's 101.
async fn upgraded(addr: SocketAddr, path: &str, squall_v1: bool) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let protocol = if squall_v1 {
        "Sec-WebSocket-Protocol: squall.v1\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{protocol}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await.expect("an answer to the upgrade");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A masked (client → server) frame with a zero mask key, so the payload goes as is.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_header(fin, opcode, payload.len() as u64, Some([0; 4]));
    f.extend_from_slice(payload);
    f
}

/// What the server sent until it closed, at most 20 s and 10,000 frames: the close code,
/// and the data messages' payload lengths before it.
async fn server_close<R: AsyncRead + Unpin>(rd: &mut R) -> (Option<u16>, Vec<usize>) {
    let mut messages = Vec::new();
    let read = async {
        for _ in 0..10_000 {
            let mut h = [0u8; 2];
            rd.read_exact(&mut h).await.ok()?;
            let len = match h[1] & 0x7F {
                126 => {
                    let mut b = [0u8; 2];
                    rd.read_exact(&mut b).await.ok()?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    rd.read_exact(&mut b).await.ok()?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            // The server's frames are ours to trust no more than theirs to trust ours.
            let mut payload = vec![0u8; usize::try_from(len).ok()?.min(1 << 20)];
            rd.read_exact(&mut payload).await.ok()?;
            match h[0] & 0x0F {
                8 if payload.len() >= 2 => {
                    return Some(u16::from_be_bytes([payload[0], payload[1]]));
                }
                8 => return Some(1005),
                1 | 2 => messages.push(payload.len()),
                _ => {}
            }
        }
        None
    };
    let code = timeout(Duration::from_secs(20), read).await.ok().flatten();
    (code, messages)
}

/// Whether the server dropped the connection (EOF or reset) within `within`.
async fn dropped_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    timeout(within, async {
        for _ in 0..10_000 {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_server_closes_hostile_clients_with_the_right_code_and_serves_the_rest() {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cfg = squall::scenario::defaults::builtin_target();
    let server = squall::target::start(
        "127.0.0.1:0".parse().unwrap(),
        &cfg,
        None,
        token.clone(),
        &tracker,
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let limit = squall::protocol::read_limit(cfg.max_message_bytes);

    // A healthy squall session sends 100 messages while the hostile clients work.
    let healthy = healthy(format!("ws://{addr}/ws"), Protocol::Squall, None);

    let garbage = tokio::spawn(async move {
        let mut tcp = upgraded(addr, "/ws", false).await;
        tcp.write_all(&[0xFF; 64]).await.unwrap();
        server_close(&mut tcp).await.0
    });
    let huge = tokio::spawn(async move {
        let mut tcp = upgraded(addr, "/ws", true).await;
        tcp.write_all(&frame_header(true, 2, 1 << 62, Some([0; 4])))
            .await
            .unwrap();
        server_close(&mut tcp).await.0
    });
    // Only the header of a frame one byte over the limit: the server refuses it without
    // waiting for (or making room for) the payload.
    let just_over = tokio::spawn(async move {
        let mut tcp = upgraded(addr, "/ws", false).await;
        tcp.write_all(&frame_header(true, 2, limit as u64 + 1, Some([0; 4])))
            .await
            .unwrap();
        server_close(&mut tcp).await.0
    });
    // A message exactly at the limit, in 1 KiB fragments, comes back; then one that never
    // ends is refused.
    let fragments = tokio::spawn(async move {
        let mut tcp = upgraded(addr, "/ws", false).await;
        let (mut rd, mut wr) = tcp.split();
        let writer = async {
            let mut left = limit;
            let mut first = true;
            while left > 0 {
                let n = left.min(1024);
                left -= n;
                let opcode = if first { 2 } else { 0 };
                first = false;
                wr.write_all(&client_frame(left == 0, opcode, &vec![7; n]))
                    .await
                    .unwrap();
            }
            // Now a text message that never ends, until the server closes (64 MiB cap).
            let mut sent = 0u64;
            let mut f = client_frame(false, 1, &[b'a'; 1024]);
            while sent < WRITE_CAP && wr.write_all(&f).await.is_ok() {
                sent += f.len() as u64;
                f = client_frame(false, 0, &[b'a'; 1024]);
            }
        };
        let reader = server_close(&mut rd);
        let ((), seen) = tokio::join!(writer, reader);
        seen
    });
    let bad_utf8 = tokio::spawn(async move {
        let mut tcp = upgraded(addr, "/ws", false).await;
        tcp.write_all(&client_frame(true, 1, &[0xFF, 0xFE, 0xFD]))
            .await
            .unwrap();
        server_close(&mut tcp).await.0
    });
    // Never a request: dropped at the server's handshake timeout (10 s).
    let silent = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        dropped_within(&mut tcp, Duration::from_secs(20)).await
    });
    // An endless request head: dropped once it passes tungstenite's 64 KiB.
    let endless_head = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(b"GET /ws HTTP/1.1\r\nX-Filler: ").await;
        let mut sent = 0u64;
        while sent < 4 << 20 && tcp.write_all(&[b'a'; 4096]).await.is_ok() {
            sent += 4096;
        }
        (
            sent,
            dropped_within(&mut tcp, Duration::from_secs(10)).await,
        )
    });
    // Slowloris: a request one byte every 100 ms (at most 300): dropped at the timeout.
    let slowloris = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let request = b"GET /ws HTTP/1.1\r\nHost: slow\r\nX-Filler: ".repeat(8);
        for b in request.iter().take(300) {
            if tcp.write_all(&[*b]).await.is_err() {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        (
            dropped_within(&mut tcp, Duration::from_secs(20)).await,
            started.elapsed(),
        )
    });

    assert_eq!(
        garbage.await.unwrap(),
        Some(1002),
        "garbage: protocol error"
    );
    assert_eq!(huge.await.unwrap(), Some(1009), "2^62-byte frame: too big");
    assert_eq!(just_over.await.unwrap(), Some(1009), "limit + 1: too big");
    let (code, echoed) = fragments.await.unwrap();
    assert_eq!(echoed, vec![limit], "a message at the limit is served");
    assert_eq!(code, Some(1009), "a message without end: too big");
    assert_eq!(
        bad_utf8.await.unwrap(),
        Some(1007),
        "invalid UTF-8: bad payload"
    );
    assert!(silent.await.unwrap(), "a silent client is dropped");
    let (sent, dropped) = endless_head.await.unwrap();
    assert!(dropped, "an endless head is dropped");
    assert!(
        sent < 4 << 20,
        "the server stopped reading it: {sent} bytes sent"
    );
    let (dropped, took) = slowloris.await.unwrap();
    assert!(dropped, "a slowloris client is dropped");
    assert!(took < Duration::from_secs(25), "{took:?}");

    let outcome = healthy.await.unwrap();
    assert_eq!(outcome.end, End::Drained, "{outcome:?}");
    assert_eq!(outcome.undelivered, 0);
    assert_eq!(server.ledger().unique, 100);
    assert_eq!(server.ledger().duplicates, 0);
    token.cancel();
}

// ---------------------------------------------------------------------------------------
// Hostile peers through the shim while WebSocket faults make it follow (and hold) frames.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_following_frames_stays_bounded_and_keeps_other_connections_flowing() {
    let server = hostile_server().await;
    // ws_delay holds every whole data message both ways: the shim's most exposed mode.
    let scenario = squall::scenario::from_str(
        "name: shim-hostile\nclients: { count: 1 }\nfaults:\n  - { kind: ws_delay, latency: 5ms }\n",
        "shim-hostile.yaml",
    )
    .unwrap();
    let clock = squall::clock::Clock::start();
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let shim = squall::shim::Shim::start(
        squall::shim::ShimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: server.addr,
            faults: scenario.faults,
            seed: 1,
            identify_clients: false,
            touches: None,
            // As a run sets it: the largest message its peers accept.
            max_held: client_limit(),
            until: None,
        },
        clock,
        squall::events::EventSink::disabled(clock),
        token.clone(),
        tracker.clone(),
    )
    .await
    .unwrap();
    let via = shim.local_addr();
    let url = |path: &str| format!("ws://{}/{path}", server.addr);

    // A healthy session through the same shim, all along.
    let healthy = healthy(url("echo"), Protocol::Echo, Some(via));

    // A hostile client through the shim: a 2^62-byte frame header, then 8 MiB of zeros.
    let hostile_client = tokio::spawn(async move {
        let mut tcp = upgraded(via, "/echo", false).await;
        let _ = tcp
            .write_all(&frame_header(true, 2, 1 << 62, Some([0; 4])))
            .await;
        let mut sent = 0u64;
        while sent < 8 << 20 && tcp.write_all(&[0; 4096]).await.is_ok() {
            sent += 4096;
        }
    });

    // Hostile servers behind the shim, each met by a session that gives up after two.
    for path in ["fragments", "huge", "garbage"] {
        let dialer = CountingDialer::new(Some(via));
        let mut cfg = config(url(path), Protocol::Squall, dialer.clone());
        cfg.policy.max_attempts = Some(2);
        let (session, streams) = Session::open(cfg, CancellationToken::new());
        let seen = collect(streams, Duration::from_secs(60), &dialer).await;
        drop(session);
        assert_gave_up(&seen, &server, path, 2, ErrorClass::Data, |r| {
            matches!(r, Disconnect::Protocol(_))
        });
        // Whatever the shim let through, the client stopped at its own limit.
        assert!(
            seen.max_read <= client_limit() + 16 * 1024,
            "{path}: the client read {}",
            seen.max_read
        );
    }
    // The endless message: the shim holds at most `max_held` of one message (then lets
    // it through unheld, to be refused by the client) and queues at most 1 MiB
    // (link::MAX_QUEUED); past that and the sockets' own buffers it stopped reading, then
    // closed. (With the fixed 16 MiB hold, it took 16 MiB and more of the flood.)
    let fragments = server.log.get("fragments");
    assert!(
        fragments.max_per_conn <= 12 << 20,
        "the shim took {} bytes of one endless message",
        fragments.max_per_conn
    );

    let _ = timeout(Duration::from_secs(30), hostile_client).await;
    let outcome = healthy.await.unwrap();
    assert_eq!(outcome.end, End::Drained, "{outcome:?}");
    assert_eq!(outcome.undelivered, 0);
    token.cancel();
    tracker.close();
    assert!(
        timeout(Duration::from_secs(10), tracker.wait())
            .await
            .is_ok(),
        "every shim task ends"
    );
}
