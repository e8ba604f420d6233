//! Scale (issue 8): memory per idle client, CPU per 1,000 delivered messages, session
//! setup rate through the shim and the time to build a 10,000-client report, each beside
//! a bare tokio-tungstenite echo client and server built here as the reference. Prints a
//! Markdown table (docs/benchmarks.md, "Scale").
//!
//! `cargo bench --bench scale` (release build; about two minutes). Not a test: nothing is
//! asserted, the numbers are printed as measured.
//!
//! Every part runs in a process of its own — a child of this binary, chosen by the
//! `SQUALL_SCALE_ROLE` variable — so CPU (`/proc/<pid>/stat`, user + system) and memory
//! (`VmRSS` of `/proc/<pid>/status`) are measured per part: squall's client side (the
//! load module running the recovery engine, as `squall run` does), squall's shim and
//! built-in server, and the reference client and server. Each child runs one tokio
//! worker thread. The parent only starts children, reads `/proc` and asks a client child
//! how many messages it has had delivered so far (a line on its stdin, one back).

// A benchmark measures wall-clock time; tokio's clock is not paused here.
#![allow(clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use squall::clock::Clock;
use squall::events::EventSink;
use squall::load::{self, Entry, Stops};
use squall::metrics::{Counter, Hist, Metrics, Tick};
use squall::recovery::{self, Application, Next, SessionConfig, SessionEvent, TcpDialer};
use squall::report::{self, Report, RunInfo};
use squall::scenario::{self, MessageKind, Protocol, defaults};
use squall::shim::{Shim, ShimConfig};
use squall::target::{self, ServerState};

const ROLE: &str = "SQUALL_SCALE_ROLE";
/// Idle clients held open for the memory figures.
const IDLE_CLIENTS: usize = 5000;
/// The CPU run: clients × messages per second each, message size.
const CPU_CLIENTS: usize = 1000;
const CPU_RATE: f64 = 10.0;
const MESSAGE: usize = 64;
const WARMUP: Duration = Duration::from_secs(3);
const WINDOW: Duration = Duration::from_secs(10);
/// Sessions opened (and closed) for the setup rate, by this many concurrent dialers.
const SESSIONS: usize = 20_000;
const DIALERS: usize = 500;
/// The report: clients, seconds of timeline, messages each.
const REPORT_CLIENTS: u32 = 10_000;
const REPORT_SECONDS: usize = 60;

fn main() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    match std::env::var(ROLE) {
        Ok(role) => child(&role),
        Err(_) => parent(),
    }
}

// ---------------------------------------------------------------------------------------
// The parent: starts children, reads /proc, prints the table.

struct Part {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Part {
    fn start(name: &'static str, role: &str, args: &[String]) -> Part {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Part {
            name,
            child,
            stdin,
            stdout,
        }
    }

    /// The next line the child prints.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{} ended early", self.name);
        line.trim().to_string()
    }

    /// Asks a client child a question; its one-line answer.
    fn ask(&mut self, q: &str) -> String {
        writeln!(self.stdin, "{q}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }

    fn delivered(&mut self) -> u64 {
        self.ask("count").parse().unwrap()
    }

    fn cpu(&self) -> Duration {
        cpu_of(self.child.id())
    }

    fn rss(&self) -> f64 {
        rss_of(self.child.id())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server or shim child: started, its address read from its first line.
fn server(name: &'static str, role: &str, args: &[String]) -> (Part, String) {
    let mut p = Part::start(name, role, args);
    let addr = p.line();
    (p, addr)
}

/// Which implementation a run uses.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// tokio-tungstenite, default `WebSocketConfig` (128 KiB read buffer).
    RefDefault,
    /// tokio-tungstenite with a 4 KiB read buffer.
    Ref4k,
    /// squall: load (recovery engine) → shim → built-in server, protocol on.
    Squall,
}

impl Side {
    fn buffer(self) -> String {
        match self {
            Side::Ref4k => "4096".into(),
            _ => "default".into(),
        }
    }
}

/// The parts of one setup, started in order; clients last.
struct Setup {
    servers: Vec<Part>,
    client: Part,
}

fn setup(side: Side, clients: usize, rate: f64) -> Setup {
    match side {
        Side::RefDefault | Side::Ref4k => {
            let (srv, addr) = server("reference server", "ref-server", &[side.buffer()]);
            let client = Part::start(
                "reference client",
                "ref-client",
                &[addr, clients.to_string(), rate.to_string(), side.buffer()],
            );
            Setup {
                servers: vec![srv],
                client,
            }
        }
        Side::Squall => {
            let (srv, addr) = server("squall server", "squall-server", &[]);
            let (shim, via) = server("squall shim", "squall-shim", std::slice::from_ref(&addr));
            let client = Part::start(
                "squall client",
                "squall-client",
                &[addr, via, clients.to_string(), rate.to_string()],
            );
            Setup {
                servers: vec![srv, shim],
                client,
            }
        }
    }
}

/// RSS per idle client: (client side, each server-side part) in bytes.
fn memory(side: Side) -> (f64, Vec<f64>) {
    let mut s = setup(side, IDLE_CLIENTS, 0.0);
    // Before the clients connect: each process started, its runtime up.
    std::thread::sleep(Duration::from_millis(300));
    let base_client = s.client.rss();
    let base_servers: Vec<f64> = s.servers.iter().map(Part::rss).collect();
    s.client.ask("start");
    assert_eq!(s.client.ask("wait"), "ready");
    // Let the first heartbeats and any deferred frees settle.
    std::thread::sleep(Duration::from_secs(2));
    let per = |now: f64, base: f64| (now - base) / IDLE_CLIENTS as f64;
    let client = per(s.client.rss(), base_client);
    let servers = s
        .servers
        .iter()
        .zip(base_servers)
        .map(|(p, b)| per(p.rss(), b))
        .collect();
    (client, servers)
}

struct Cpu {
    /// Messages delivered in the window.
    delivered: u64,
    client: Duration,
    servers: Duration,
}

impl Cpu {
    fn per_1000(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0 / (self.delivered as f64 / 1000.0)
    }
}

fn cpu(side: Side) -> Cpu {
    let mut s = setup(side, CPU_CLIENTS, CPU_RATE);
    s.client.ask("start");
    assert_eq!(s.client.ask("wait"), "ready");
    std::thread::sleep(WARMUP);
    let d0 = s.client.delivered();
    let c0 = s.client.cpu();
    let s0: Duration = s.servers.iter().map(Part::cpu).sum();
    std::thread::sleep(WINDOW);
    let d1 = s.client.delivered();
    let c1 = s.client.cpu();
    let s1: Duration = s.servers.iter().map(Part::cpu).sum();
    Cpu {
        delivered: d1 - d0,
        client: c1 - c0,
        servers: s1 - s0,
    }
}

/// Sessions per second: (squall through the shim, reference direct).
fn setup_rate(side: Side) -> (f64, u64) {
    let (mut parts, args) = match side {
        Side::Squall => {
            let (srv, addr) = server("squall server", "squall-server", &[]);
            let (shim, via) = server("squall shim", "squall-shim", std::slice::from_ref(&addr));
            (vec![srv, shim], vec![addr, via])
        }
        _ => {
            let (srv, addr) = server("reference server", "ref-server", &[side.buffer()]);
            (vec![srv], vec![addr])
        }
    };
    let role = if side == Side::Squall {
        "squall-dial"
    } else {
        "ref-dial"
    };
    let mut dial = Part::start("dialer", role, &args);
    let answer = dial.ask("go");
    let mut it = answer.split_whitespace();
    let opened: u64 = it.next().unwrap().parse().unwrap();
    let secs: f64 = it.next().unwrap().parse().unwrap();
    parts.push(dial);
    (opened as f64 / secs, opened)
}

fn parent() {
    if let Ok(only) = std::env::var("SQUALL_SCALE_ONLY") {
        return quick(&only);
    }
    eprintln!("memory per idle client ({IDLE_CLIENTS} clients)…");
    let mem_ref = memory(Side::RefDefault);
    let mem_ref4 = memory(Side::Ref4k);
    let mem_squall = memory(Side::Squall);

    eprintln!("CPU per 1,000 delivered messages ({CPU_CLIENTS} clients × {CPU_RATE}/s)…");
    let cpu_ref = cpu(Side::RefDefault);
    let cpu_ref4 = cpu(Side::Ref4k);
    let cpu_squall = cpu(Side::Squall);

    eprintln!("session setup rate ({SESSIONS} sessions, {DIALERS} dialers)…");
    let (rate_squall, opened_squall) = setup_rate(Side::Squall);
    let (rate_ref, opened_ref) = setup_rate(Side::RefDefault);

    eprintln!("report for {REPORT_CLIENTS} clients…");
    let rep = report_build();

    let kib = |b: f64| b / 1024.0;
    let yes = |ok: bool| if ok { "yes" } else { "no" };
    let squall_all: f64 = mem_squall.0 + mem_squall.1.iter().sum::<f64>();
    println!(
        "| measure | squall | reference (default) | reference (4 KiB read buffer) | goal | met? |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| RSS per idle client, client side ({IDLE_CLIENTS} clients) | {:.1} KiB | {:.1} KiB | {:.1} KiB | < 8 KiB | {} |",
        kib(mem_squall.0),
        kib(mem_ref.0),
        kib(mem_ref4.0),
        yes(kib(mem_squall.0) < 8.0)
    );
    println!(
        "| RSS per idle client, server side | server {:.1} KiB + shim {:.1} KiB | {:.1} KiB | {:.1} KiB | | |",
        kib(mem_squall.1[0]),
        kib(mem_squall.1[1]),
        kib(mem_ref.1[0]),
        kib(mem_ref4.1[0])
    );
    println!(
        "| RSS per idle client, all processes | {:.1} KiB | {:.1} KiB | {:.1} KiB | < 32 KiB | {} |",
        kib(squall_all),
        kib(mem_ref.0 + mem_ref.1[0]),
        kib(mem_ref4.0 + mem_ref4.1[0]),
        yes(kib(squall_all) < 32.0)
    );
    let c = |x: &Cpu| x.per_1000(x.client);
    let a = |x: &Cpu| x.per_1000(x.client + x.servers);
    let cpu_row = |label: String, f: &dyn Fn(&Cpu) -> f64, factor: f64| {
        let (s, d, k) = (f(&cpu_squall), f(&cpu_ref), f(&cpu_ref4));
        println!(
            "| {label} | {s:.1} ms | {d:.1} ms | {k:.1} ms | ≤ {factor} × reference | {} ({:.2} × default, {:.2} × 4 KiB) |",
            yes(s <= factor * d),
            s / d,
            s / k
        );
    };
    cpu_row(
        format!(
            "CPU per 1,000 delivered, client side ({CPU_CLIENTS} × {CPU_RATE}/s, {MESSAGE} B, {}s)",
            WINDOW.as_secs()
        ),
        &c,
        1.1,
    );
    println!(
        "| CPU per 1,000 delivered, server side | {:.1} ms (server + shim) | {:.1} ms | {:.1} ms | | |",
        cpu_squall.per_1000(cpu_squall.servers),
        cpu_ref.per_1000(cpu_ref.servers),
        cpu_ref4.per_1000(cpu_ref4.servers)
    );
    cpu_row("CPU per 1,000 delivered, all parts".into(), &a, 1.25);
    println!(
        "| messages delivered in the window | {} | {} | {} | | |",
        cpu_squall.delivered, cpu_ref.delivered, cpu_ref4.delivered
    );
    println!(
        "| new sessions per second ({SESSIONS}, {DIALERS} concurrent) | {rate_squall:.0}/s through the shim ({opened_squall} opened) | {rate_ref:.0}/s direct ({opened_ref} opened) | | 5,000/s | {} |",
        yes(rate_squall >= 5000.0)
    );
    println!(
        "| report for {REPORT_CLIENTS} clients: snapshot + build + judge + write json/md/junit | {:.0} ms ({:.0} + {:.0} + {:.0} + {:.0}) | | | < 1 s | {} |",
        rep.total.as_secs_f64() * 1000.0,
        rep.snapshot.as_secs_f64() * 1000.0,
        rep.build.as_secs_f64() * 1000.0,
        rep.judge.as_secs_f64() * 1000.0,
        rep.write.as_secs_f64() * 1000.0,
        yes(rep.total < Duration::from_secs(1))
    );
    println!(
        "| report files written | {} KiB | | | | |",
        rep.bytes / 1024
    );
}

/// `SQUALL_SCALE_ONLY=memory|cpu|setup`: squall's side of one measure, without the
/// references, for quick before-and-after comparisons while tuning. The table needs the
/// full run.
fn quick(only: &str) {
    let kib = |b: f64| b / 1024.0;
    match only {
        "memory" => {
            let (client, servers) = memory(Side::Squall);
            println!(
                "RSS per idle client: client {:.1} KiB, server {:.1} KiB, shim {:.1} KiB, all {:.1} KiB",
                kib(client),
                kib(servers[0]),
                kib(servers[1]),
                kib(client + servers.iter().sum::<f64>())
            );
        }
        "cpu" => {
            let c = cpu(Side::Squall);
            println!(
                "CPU per 1,000 delivered: client {:.1} ms, server + shim {:.1} ms, all {:.1} ms ({} delivered)",
                c.per_1000(c.client),
                c.per_1000(c.servers),
                c.per_1000(c.client + c.servers),
                c.delivered
            );
        }
        "setup" => {
            let (rate, opened) = setup_rate(Side::Squall);
            println!("new sessions per second through the shim: {rate:.0}/s ({opened} opened)");
        }
        other => {
            eprintln!("SQUALL_SCALE_ONLY: {other:?} is not memory, cpu or setup");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The report for 10,000 clients.

struct ReportTimes {
    snapshot: Duration,
    build: Duration,
    judge: Duration,
    write: Duration,
    total: Duration,
    bytes: u64,
}

/// Metrics as 10,000 clients in two groups would record them over 60 s (one message
/// every 5 s each, a quarter reset once, one reconnect each), then the report built,
/// judged and written as `squall run` does.
fn report_build() -> ReportTimes {
    let yaml = format!(
        "name: report-10k\nduration: {REPORT_SECONDS}s\nclients:\n  \
         - {{ name: steady, count: {} }}\n  - {{ name: eager, count: {} }}\n\
         messages: {{ rate: 1/5s }}\n\
         faults:\n  - {{ kind: reset, connections: 25%, at: 30s }}\n\
         thresholds:\n  messages_lost: [\"count == 0\"]\n  \
         reconnect_latency: [\"p(99) < 5s\", \"max < 10s\"]\n  \
         message_rtt: [\"p(99) < 1s\"]\n\
         report: {{ formats: [json, md, junit] }}\n",
        REPORT_CLIENTS / 2,
        REPORT_CLIENTS / 2
    );
    let scenario = scenario::from_str(&yaml, "report-10k.yaml").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = rt.block_on(async {
        let metrics = Metrics::new(Clock::start(), vec!["steady".into(), "eager".into()]);
        // Recorded from both worker threads, as a run's clients would.
        let mut tasks = Vec::new();
        for half in 0..2u32 {
            let metrics = metrics.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(half);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for client in (half..REPORT_CLIENTS).step_by(2) {
                    let group = (client % 2) as usize;
                    metrics.connected();
                    metrics.record(group, |r| {
                        r.count(Counter::Sessions, 1);
                        r.count(Counter::ConnectAttempts, 1);
                        r.tick(Tick::Connects, 1);
                        let messages = REPORT_SECONDS as u64 / 5;
                        r.count(Counter::MessagesSent, messages);
                        r.count(Counter::MessagesDelivered, messages);
                        for _ in 0..messages {
                            r.record(Hist::MessageRtt, 200 + next() % 5_000);
                            r.record(Hist::MessageRttUncorrected, 200 + next() % 5_000);
                            r.record(Hist::RetransmitsPerMessage, 0);
                            r.tick(Tick::MessagesSent, 1);
                            r.tick(Tick::MessagesDelivered, 1);
                        }
                        if client % 4 == 0 {
                            r.count(Counter::Disconnects, 1);
                            r.count(Counter::Reconnects, 1);
                            r.count(Counter::ErrorsConnection, 1);
                            r.record(Hist::DetectionLatency, 100 + next() % 2_000);
                            r.record(Hist::ReconnectLatency, 50_000 + next() % 2_000_000);
                            r.record(Hist::Downtime, 50_000 + next() % 2_000_000);
                            r.record(Hist::AttemptsPerReconnect, 1 + next() % 3);
                            r.tick(Tick::Disconnects, 1);
                        }
                    });
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        metrics
    });
    for s in 0..REPORT_SECONDS {
        let faults = if s == 30 {
            vec!["reset#0".to_string()]
        } else {
            vec![]
        };
        metrics.sample_second(faults);
    }
    let dir = std::env::temp_dir().join(format!("squall-scale-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let t0 = Instant::now();
    let snap = metrics.snapshot();
    let t1 = Instant::now();
    let info = RunInfo {
        started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_s: REPORT_SECONDS as f64,
        seed: 1,
        version: env!("CARGO_PKG_VERSION").to_string(),
        interrupted: false,
        status: "completed".into(),
        error: None,
        shard: None,
    };
    let mut report = Report::build(scenario.to_json(), info, &snap, Vec::new());
    let t2 = Instant::now();
    squall::gate::judge(&mut report, &scenario.thresholds);
    let t3 = Instant::now();
    let files = report::write_all(&dir, &report, &scenario.report.formats).unwrap();
    let t4 = Instant::now();
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let _ = std::fs::remove_dir_all(&dir);
    drop(rt);
    ReportTimes {
        snapshot: t1 - t0,
        build: t2 - t1,
        judge: t3 - t2,
        write: t4 - t3,
        total: t4 - t0,
        bytes,
    }
}

// ---------------------------------------------------------------------------------------
// The children. Each prints what the parent needs on stdout, one line at a time.

fn child(role: &str) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match role {
            "ref-server" => ref_server(ws_config(&args[0])).await,
            "ref-client" => {
                let clients = Clients::new(args[1].parse().unwrap());
                ref_clients(
                    &args[0],
                    args[1].parse().unwrap(),
                    args[2].parse().unwrap(),
                    ws_config(&args[3]),
                    &clients,
                )
                .await;
                clients.serve().await
            }
            "squall-server" => squall_server().await,
            "squall-shim" => squall_shim(args[0].parse().unwrap()).await,
            "squall-client" => {
                squall_clients(
                    &args[0],
                    args[1].parse().unwrap(),
                    args[2].parse().unwrap(),
                    args[3].parse().unwrap(),
                )
                .await
            }
            "squall-dial" => squall_dial(&args[0], args[1].parse().unwrap()).await,
            "ref-dial" => ref_dial(&args[0]).await,
            other => panic!("unknown role {other}"),
        }
    });
}

fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The parent's next question, read off the runtime.
async fn question() -> Option<String> {
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        }
    })
    .await
    .unwrap()
}

fn ws_config(buffer: &str) -> WebSocketConfig {
    match buffer {
        "default" => WebSocketConfig::default(),
        n => WebSocketConfig::default().read_buffer_size(n.parse().unwrap()),
    }
}

/// A plain tokio-tungstenite echo server.
async fn ref_server(config: WebSocketConfig) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    say(listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    while question().await.is_some() {}
}

/// How many clients are connected and how many messages were delivered; answers the
/// parent's questions.
struct Clients {
    expected: usize,
    connected: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
    start: Arc<tokio::sync::Notify>,
}

impl Clients {
    fn new(expected: usize) -> Self {
        Clients {
            expected,
            connected: Arc::new(AtomicU64::new(0)),
            delivered: Arc::new(AtomicU64::new(0)),
            start: Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn serve(&self) {
        while let Some(q) = question().await {
            match q.as_str() {
                "start" => {
                    self.start.notify_one();
                    say("started");
                }
                "wait" => {
                    while (self.connected.load(Ordering::Relaxed) as usize) < self.expected {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    say("ready");
                }
                "count" => say(self.delivered.load(Ordering::Relaxed)),
                other => panic!("unknown question {other}"),
            }
        }
    }
}

/// Bare tokio-tungstenite clients: each sends a [`MESSAGE`]-byte text every 1/`rate` s
/// (phases spread) and counts the echoes; idle when `rate` is 0.
async fn ref_clients(addr: &str, n: usize, rate: f64, config: WebSocketConfig, c: &Clients) {
    let url = format!("ws://{addr}/ws");
    let (connected, delivered, start) = (c.connected.clone(), c.delivered.clone(), c.start.clone());
    tokio::spawn(async move {
        start.notified().await;
        for i in 0..n {
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                    .await
                    .unwrap();
            connected.fetch_add(1, Ordering::Relaxed);
            let delivered = delivered.clone();
            tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                if rate == 0.0 {
                    while let Some(Ok(_)) = rx.next().await {}
                    return;
                }
                let period = Duration::from_secs_f64(1.0 / rate);
                let phase = period.mul_f64(i as f64 / n as f64);
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let text = "x".repeat(MESSAGE);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            if tx.send(Message::text(text.clone())).await.is_err() {
                                return;
                            }
                        }
                        m = rx.next() => match m {
                            Some(Ok(m)) if m.is_text() => {
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(Ok(_)) => {}
                            _ => return,
                        }
                    }
                }
            });
        }
    });
}

/// squall's built-in server, echo mode, squall's protocol, as `squall run` starts it.
async fn squall_server() {
    let cfg = defaults::builtin_target();
    let tracker = TaskTracker::new();
    let server = target::start_with(
        "127.0.0.1:0".parse().unwrap(),
        &cfg,
        ServerState::new(&cfg),
        None,
        CancellationToken::new(),
        &tracker,
    )
    .await
    .unwrap();
    say(server.local_addr());
    while question().await.is_some() {}
}

/// squall's shim, no faults, identifying clients as `squall run` has it.
async fn squall_shim(upstream: SocketAddr) {
    let clock = Clock::start();
    let shim = Shim::start(
        ShimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream,
            faults: Vec::new(),
            seed: 1,
            identify_clients: true,
            touches: None,
            max_held: squall::shim::MAX_HELD,
            until: None,
        },
        clock,
        EventSink::disabled(clock),
        CancellationToken::new(),
        TaskTracker::new(),
    )
    .await
    .unwrap();
    say(shim.local_addr());
    while question().await.is_some() {}
}

/// squall's client side, as `squall run` has it: the load module's clients (one task
/// each, running the recovery engine and recording metrics) dialling `via` (the shim)
/// for the server at `addr`. Idle when `rate` is 0.
async fn squall_clients(addr: &str, via: SocketAddr, n: usize, rate: f64) {
    let messages = if rate == 0.0 {
        "  rate: 0\n".to_string()
    } else {
        format!("  rate: {rate}/s\n  size: {MESSAGE}B\n")
    };
    let yaml =
        format!("name: scale-bench\nduration: 1h\nclients:\n  count: {n}\nmessages:\n{messages}");
    let scenario = scenario::from_str(&yaml, "scale-bench.yaml").unwrap();
    let c = Clients::new(n);
    let metrics = Metrics::new(Clock::start(), vec![scenario.groups[0].name.clone()]);
    let clock = metrics.clock();
    let stops = Stops {
        stop_sending: CancellationToken::new(),
        hard: CancellationToken::new(),
    };
    let entry = Entry {
        url: format!("ws://{addr}/ws"),
        via,
        shard: None,
    };
    let tracker = TaskTracker::new();
    // The parent reads this process's RSS before the clients exist.
    assert_eq!(question().await.as_deref(), Some("start"));
    say("started");
    load::spawn(
        &scenario,
        &entry,
        &metrics,
        &EventSink::disabled(clock),
        &stops,
        None,
        &tracker,
    )
    .unwrap();
    while let Some(q) = question().await {
        match q.as_str() {
            "wait" => {
                while (metrics.connected_now() as usize) < c.expected {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                say("ready");
            }
            "count" => say(metrics.peek(Counter::MessagesDelivered)),
            other => panic!("unknown question {other}"),
        }
    }
}

/// Opens [`SESSIONS`] squall sessions through the shim, [`DIALERS`] at a time: each is
/// TCP connect, HTTP upgrade and squall's HELLO/WELCOME, then a close. Answers
/// "opened seconds".
async fn squall_dial(addr: &str, via: SocketAddr) {
    struct OpenOnce {
        live: Arc<tokio::sync::Notify>,
        opened: Arc<AtomicU64>,
    }
    impl Application for OpenOnce {
        async fn next(&mut self) -> Next {
            self.live.notified().await;
            Next::Finish
        }
        fn event(&mut self, event: SessionEvent) {
            if let SessionEvent::Connected { .. } = event {
                self.opened.fetch_add(1, Ordering::Relaxed);
                self.live.notify_one();
            }
        }
        fn delivered(&mut self, _: recovery::Delivered) {}
    }
    assert_eq!(question().await.as_deref(), Some("go"));
    let url = format!("ws://{addr}/ws");
    let dialer: Arc<dyn recovery::Dialer> = Arc::new(TcpDialer { via: Some(via) });
    let opened = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..DIALERS {
        let (url, dialer, opened, next) =
            (url.clone(), dialer.clone(), opened.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= SESSIONS as u64 {
                    return;
                }
                let config = SessionConfig {
                    url: url.clone(),
                    session: format!("dial-{i}"),
                    protocol: Protocol::Squall,
                    headers: vec![(load::CLIENT_HEADER.into(), i.to_string())],
                    subprotocols: vec![],
                    policy: defaults::recovery(),
                    kind: MessageKind::Text,
                    rng: squall::rng::rng(1, "backoff", i),
                    dialer: Some(dialer.clone()),
                    tls: None,
                    max_message_bytes: squall::recovery::DEFAULT_MAX_MESSAGE_BYTES,
                };
                let mut app = OpenOnce {
                    live: Arc::new(tokio::sync::Notify::new()),
                    opened: opened.clone(),
                };
                recovery::drive(config, &mut app, CancellationToken::new()).await;
            }
        }));
    }
    report_dialled(tasks, &opened, t0).await;
}

/// The reference: [`SESSIONS`] bare tokio-tungstenite connections (TCP connect, HTTP
/// upgrade, close), [`DIALERS`] at a time, direct to the reference server.
async fn ref_dial(addr: &str) {
    assert_eq!(question().await.as_deref(), Some("go"));
    let url = format!("ws://{addr}/ws");
    let opened = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..DIALERS {
        let (url, opened, next) = (url.clone(), opened.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if next.fetch_add(1, Ordering::Relaxed) >= SESSIONS as u64 {
                    return;
                }
                if let Ok((mut ws, _)) =
                    tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await
                {
                    opened.fetch_add(1, Ordering::Relaxed);
                    let _ = ws.close(None).await;
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
        }));
    }
    report_dialled(tasks, &opened, t0).await;
}

/// Waits for the dialers, answers "opened seconds", then idles until the parent ends.
async fn report_dialled(tasks: Vec<tokio::task::JoinHandle<()>>, opened: &AtomicU64, t0: Instant) {
    for t in tasks {
        t.await.unwrap();
    }
    say(format!(
        "{} {}",
        opened.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64()
    ));
    while question().await.is_some() {}
}

// ---------------------------------------------------------------------------------------
// /proc

/// User + system CPU time of process `pid`.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after `state`.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn rss_of(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}
