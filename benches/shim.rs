//! The shim's cost beside a direct connection, measured in one run on 127.0.0.1:
//! added round-trip latency under 1,000 connections at 10 messages/s each, CPU per 1,000
//! forwarded messages, memory per proxied connection, bulk throughput, and the accuracy
//! of the `latency` and `bandwidth` faults. Prints a Markdown table (docs/benchmarks.md).
//!
//! `cargo bench --bench shim` (release build; about a minute). Not a test: nothing is
//! asserted, the numbers are printed as measured.
//!
//! Everything runs in this process on one tokio runtime (clients, echo server, shim), so
//! "direct" and "through the shim" differ only by the shim. CPU is the process's user +
//! system time from /proc/self/stat over each measured window; memory is VmRSS from
//! /proc/self/status.

// A benchmark measures wall-clock time; tokio's clock is not paused here.
#![allow(clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use squall::clock::Clock;
use squall::events::EventSink;
use squall::scenario::{
    Connections, Direction, Distribution, NetworkFault, NetworkFaultKind, Window,
};
use squall::shim::{Shim, ShimConfig, ShimHandle};

fn connections() -> usize {
    std::env::var("SQUALL_BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}
const CONNECTIONS: usize = 1000;
const RATE_PER_CONN: f64 = 10.0;
const MESSAGE: usize = 64;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
const MEMORY_CONNECTIONS: usize = 2000;
const BULK_BYTES: usize = 1024 * 1024 * 1024;

fn main() {
    // Clients, the shim's two sides and the server's: 4 descriptors per proxied connection.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let threads = |n, name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .thread_name(name)
            .event_interval(
                std::env::var("SQUALL_BENCH_EVENT_INTERVAL")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(61),
            )
            .enable_all()
            .build()
            .unwrap()
    };
    let load_threads = std::env::var("SQUALL_BENCH_LOAD_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let shim_threads = std::env::var("SQUALL_BENCH_SHIM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let load_rt = threads(load_threads, "load");
    let shim_rt = threads(shim_threads, "shim");
    SHIM_RT.set(shim_rt.handle().clone()).unwrap();
    load_rt.block_on(run());
}

/// The shims run on their own threads, as `squall proxy` would in its own process; the
/// clients, echo and sink servers on theirs.
static SHIM_RT: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

async fn run() {
    let echo = echo_server().await;
    let sink = sink_server().await;
    let shim = start_shim(echo, Vec::new()).await;
    let sink_shim = start_shim(sink, Vec::new()).await;

    eprintln!("latency under load: direct…");
    let direct = load(echo).await;
    eprintln!("latency under load: through the shim…");
    let proxied = load(shim.local_addr()).await;

    if std::env::var("SQUALL_BENCH_LATENCY_ONLY").is_ok() {
        for (name, l) in [("direct", &direct), ("shim", &proxied)] {
            println!(
                "{name}: p50 {} p99 {} n {} cpu {:?}",
                l.hist.value_at_quantile(0.5),
                l.hist.value_at_quantile(0.99),
                l.round_trips,
                l.cpu
            );
        }
        return;
    }
    eprintln!("memory per connection…");
    let mem_direct = memory(echo).await;
    let mem_shim = memory(shim.local_addr()).await;

    eprintln!("bulk throughput…");
    let bulk_direct = bulk(sink).await;
    let bulk_shim = bulk(sink_shim.local_addr()).await;

    eprintln!("fault accuracy…");
    let latency_fault = latency_accuracy(echo).await;
    let bandwidth_fault = bandwidth_accuracy(sink).await;

    let us = |v: u64| v as f64;
    let (p50d, p99d) = (
        us(direct.hist.value_at_quantile(0.5)),
        us(direct.hist.value_at_quantile(0.99)),
    );
    let (p50s, p99s) = (
        us(proxied.hist.value_at_quantile(0.5)),
        us(proxied.hist.value_at_quantile(0.99)),
    );
    // Each round trip is two messages forwarded by the shim: up and down.
    let forwarded = proxied.round_trips as f64 * 2.0;
    let cpu_added_ms = (proxied.cpu.as_secs_f64()
        - direct.cpu.as_secs_f64() * proxied.round_trips as f64 / direct.round_trips.max(1) as f64)
        * 1000.0;
    let cpu_per_1000 = cpu_added_ms / (forwarded / 1000.0);
    let mem_per_conn = (mem_shim - mem_direct) / 1024.0;
    let share = bulk_shim / bulk_direct * 100.0;

    println!("| measure | direct | through the shim | shim's cost | goal |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| round trip p50, {CONNECTIONS} conns × {RATE_PER_CONN}/s, {MESSAGE} B | {p50d:.0} µs | {p50s:.0} µs | +{:.0} µs | < 100 µs |",
        p50s - p50d
    );
    println!(
        "| round trip p99 | {p99d:.0} µs | {p99s:.0} µs | +{:.0} µs | < 1,000 µs |",
        p99s - p99d
    );
    println!(
        "| round trip p99.9 | {:.0} µs | {:.0} µs | +{:.0} µs | — |",
        us(direct.hist.value_at_quantile(0.999)),
        us(proxied.hist.value_at_quantile(0.999)),
        us(proxied.hist.value_at_quantile(0.999)) - us(direct.hist.value_at_quantile(0.999))
    );
    println!(
        "| round trips measured ({}s) | {} | {} | | |",
        MEASURE.as_secs(),
        direct.round_trips,
        proxied.round_trips
    );
    println!(
        "| process CPU over the window | {:.0} ms | {:.0} ms | {cpu_per_1000:.2} ms per 1,000 forwarded messages | < 15 ms |",
        direct.cpu.as_secs_f64() * 1000.0,
        proxied.cpu.as_secs_f64() * 1000.0
    );
    println!(
        "| RSS per open connection ({MEMORY_CONNECTIONS} open, 1 message each) | {:.1} KiB | {:.1} KiB | {mem_per_conn:.1} KiB per proxied connection | < 16 KiB |",
        mem_direct / 1024.0,
        mem_shim / 1024.0
    );
    println!(
        "| bulk transfer, 1 connection, {} MiB | {:.0} MiB/s | {:.0} MiB/s | {share:.0} % of direct | ≥ 90 % |",
        BULK_BYTES / (1024 * 1024),
        bulk_direct,
        bulk_shim
    );
    println!(
        "| `latency: 50ms` upstream, added round trip p50 / p99 (200 round trips) | | | {:.2} ms / {:.2} ms | 50 ms |",
        latency_fault.0, latency_fault.1
    );
    println!(
        "| `bandwidth: 1MiB/s` upstream, 4 MiB sent | | | {bandwidth_fault:.3} MiB/s | 1 MiB/s |"
    );
}

/// Round trips of [`CONNECTIONS`] connections, each sending a [`MESSAGE`]-byte message
/// every 1/[`RATE_PER_CONN`] s (phases spread), waiting for its echo.
struct Load {
    hist: Histogram<u64>,
    round_trips: u64,
    cpu: Duration,
}

async fn load(target: SocketAddr) -> Load {
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(),
    ));
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let start = Instant::now();
    let measuring = start + WARMUP;
    let period = Duration::from_secs_f64(1.0 / RATE_PER_CONN);
    let n = connections();
    for i in 0..n {
        let (hist, count, token) = (hist.clone(), count.clone(), token.clone());
        let stream = TcpStream::connect(target).await.unwrap();
        stream.set_nodelay(true).unwrap();
        tracker.spawn(async move {
            let mut s = stream;
            let phase = period.mul_f64(i as f64 / n as f64);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let msg = [b'x'; MESSAGE];
            let mut back = [0u8; MESSAGE];
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let t0 = Instant::now();
                if s.write_all(&msg).await.is_err() || s.read_exact(&mut back).await.is_err() {
                    return;
                }
                if t0 >= measuring {
                    let us = t0.elapsed().as_micros() as u64;
                    hist.lock().unwrap().saturating_record(us.max(1));
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep_until((measuring).into()).await;
    let cpu0 = cpu_time();
    tokio::time::sleep(MEASURE).await;
    let cpu = cpu_time() - cpu0;
    let round_trips = count.load(std::sync::atomic::Ordering::Relaxed);
    token.cancel();
    tracker.close();
    tracker.wait().await;
    let hist = hist.lock().unwrap().clone();
    Load {
        hist,
        round_trips,
        cpu,
    }
}

/// Bytes of RSS per connection with [`MEMORY_CONNECTIONS`] open to `target`, each having
/// carried one message.
async fn memory(target: SocketAddr) -> f64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes();
    let mut conns = Vec::with_capacity(MEMORY_CONNECTIONS);
    for _ in 0..MEMORY_CONNECTIONS {
        let mut s = TcpStream::connect(target).await.unwrap();
        s.write_all(&[b'm'; MESSAGE]).await.unwrap();
        let mut back = [0u8; MESSAGE];
        s.read_exact(&mut back).await.unwrap();
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    drop(conns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    (after - before) / MEMORY_CONNECTIONS as f64
}

/// MiB/s of [`BULK_BYTES`] written on one connection to a server that discards them.
async fn bulk(target: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(target).await.unwrap();
    let chunk = vec![0xabu8; 64 * 1024];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < BULK_BYTES {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len();
    }
    s.shutdown().await.unwrap();
    // The sink answers one byte once it has read everything.
    let mut done = [0u8; 1];
    s.read_exact(&mut done).await.unwrap();
    BULK_BYTES as f64 / (1024.0 * 1024.0) / t0.elapsed().as_secs_f64()
}

/// Added round trip (ms, p50 and p99) of a 50 ms upstream latency fault, beside the same
/// shim without it.
async fn latency_accuracy(echo: SocketAddr) -> (f64, f64) {
    let plain = start_shim(echo, Vec::new()).await;
    let slow = start_shim(
        echo,
        vec![fault(NetworkFaultKind::Latency {
            latency: Duration::from_millis(50),
            jitter: Duration::ZERO,
            distribution: Distribution::Uniform,
        })],
    )
    .await;
    let rtts = |addr: SocketAddr| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
        let mut back = [0u8; MESSAGE];
        for _ in 0..200 {
            let t0 = Instant::now();
            s.write_all(&[b'l'; MESSAGE]).await.unwrap();
            s.read_exact(&mut back).await.unwrap();
            h.record(t0.elapsed().as_micros() as u64).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h
    };
    let base = rtts(plain.local_addr()).await;
    let with = rtts(slow.local_addr()).await;
    let ms = |q| (with.value_at_quantile(q) as f64 - base.value_at_quantile(q) as f64) / 1000.0;
    (ms(0.5), ms(0.99))
}

/// MiB/s measured through a 1 MiB/s upstream bandwidth fault, 4 MiB sent.
async fn bandwidth_accuracy(sink: SocketAddr) -> f64 {
    let shim = start_shim(
        sink,
        vec![fault(NetworkFaultKind::Bandwidth {
            bytes_per_second: 1024 * 1024,
            shared: false,
        })],
    )
    .await;
    let mut s = TcpStream::connect(shim.local_addr()).await.unwrap();
    let total = 4 * 1024 * 1024;
    let chunk = vec![1u8; 64 * 1024];
    let t0 = Instant::now();
    for _ in 0..total / chunk.len() {
        s.write_all(&chunk).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut done = [0u8; 1];
    s.read_exact(&mut done).await.unwrap();
    total as f64 / (1024.0 * 1024.0) / t0.elapsed().as_secs_f64()
}

fn fault(kind: NetworkFaultKind) -> NetworkFault {
    NetworkFault {
        id: 0,
        name: format!("{}#0", kind.name()),
        kind,
        direction: Direction::Upstream,
        connections: Connections::All,
        window: Window {
            at: Duration::ZERO,
            length: None,
            every: None,
            stagger: Duration::ZERO,
        },
    }
}

async fn start_shim(upstream: SocketAddr, faults: Vec<NetworkFault>) -> ShimHandle {
    let clock = Clock::start();
    let cfg = ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        faults,
        seed: 1,
        identify_clients: false,
        touches: None,
        max_held: squall::shim::MAX_HELD,
        until: None,
    };
    // Never cancelled: the process ends with the benchmark.
    let rt = SHIM_RT.get().unwrap();
    rt.spawn(async move {
        Shim::start(
            cfg,
            clock,
            EventSink::disabled(clock),
            CancellationToken::new(),
            TaskTracker::new(),
        )
        .await
        .unwrap()
    })
    .await
    .unwrap()
}

/// An echo server with a small buffer per connection.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A server that reads everything, then answers one byte.
async fn sink_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(b"k").await;
            });
        }
    });
    addr
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after `state`.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn rss_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}
