//! `squall serve`: the built-in target server alone, until Ctrl-C or SIGTERM; then what
//! its application received, so a run from another terminal (or any WebSocket client)
//! can be checked against the server's own record.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Exit;
use crate::scenario::{BuiltinTarget, defaults};
use crate::target::{self, ServerHandle, TargetError};

/// How long open connections get to say goodbye once stopped (each goodbye is bounded
/// by the server itself; this bounds them all).
const STOP_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT (or HOST:PORT). Port 0 lets the OS pick a free
    /// port; the address actually bound is printed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// How long a disconnected squall.v1 session stays resumable, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_window)]
    pub session_window: Duration,
    /// Unacknowledged messages kept per squall.v1 session for replay after a resume.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub replay_buffer: u32,
    /// The largest message a client may send, e.g. 64KiB or 1MiB; a larger frame or
    /// message is refused with close 1009 before it is buffered. Set it to the largest
    /// message the runs against this server send.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_max_message)]
    pub max_message: u64,
}

fn parse_max_message(s: &str) -> Result<u64, String> {
    match crate::scenario::parse_size(s)? {
        0 => Err("must be > 0 (examples: 64KiB, 1MiB)".into()),
        n if n > defaults::limits::MESSAGE_BYTES => Err(format!(
            "at most {} (a scenario's largest message)",
            defaults::limits::MESSAGE_BYTES
        )),
        n => Ok(n),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let hint = "expected IP:PORT, e.g. 127.0.0.1:9000, 0.0.0.0:9000 or [::1]:9000";
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s} resolves to no address ({hint})")),
        Err(e) => Err(format!("{e} ({hint})")),
    }
}

fn parse_window(s: &str) -> Result<Duration, String> {
    match super::parse_duration(s)? {
        d if d.is_zero() => Err("must be > 0 (examples: 30s, 2m)".into()),
        d => Ok(d),
    }
}

/// Runs the server until a stop signal; exits 3 if it cannot listen, 130 once stopped.
pub fn run(args: ServeArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CouldNotRun;
        }
    };
    let exit = runtime.block_on(serve(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    exit
}

async fn serve(args: ServeArgs) -> Exit {
    // Registered before the address is printed: a script that reads it and then sends
    // SIGINT must reach this handler, never the default one that kills without a word.
    let stop = match stop_signals() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("error: cannot watch for Ctrl-C: {e}");
            return Exit::CouldNotRun;
        }
    };
    let config = BuiltinTarget {
        session_window: args.session_window,
        replay_buffer: args.replay_buffer as usize,
        max_message_bytes: args.max_message,
        ..defaults::builtin_target()
    };
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let server = match target::start(args.listen, &config, None, token.clone(), &tracker).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {}", bind_failure(&e));
            return Exit::CouldNotRun;
        }
    };
    let started = Instant::now();
    print_banner(&server, &config);

    stop.await;
    token.cancel();
    tracker.close();
    let _ = tokio::time::timeout(STOP_DEADLINE, tracker.wait()).await;
    print_summary(&server, started.elapsed());
    Exit::Interrupted
}

/// What went wrong with the address, in words a user can act on.
fn bind_failure(e: &TargetError) -> String {
    let TargetError::Bind { addr, source } = e else {
        return e.to_string();
    };
    use std::io::ErrorKind;
    match source.kind() {
        ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the address is already in use (by another `squall serve` \
             or another program); stop it, or pick another port with --listen \
             (--listen {}:0 lets the OS choose)",
            bracketed(addr.ip())
        ),
        ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges); \
             pick a port above 1023"
        ),
        ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr}: no network interface of this machine has that address \
             (127.0.0.1 is this machine only, 0.0.0.0 every interface)"
        ),
        _ => e.to_string(),
    }
}

fn bracketed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn print_banner(server: &ServerHandle, config: &BuiltinTarget) {
    let addr = server.local_addr();
    // Listening on every interface: show a URL that works from this machine.
    let reachable = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    println!("squall serve: listening on {addr} (ws://{reachable}/ws, any path works)");
    println!(
        "  squall.v1 for clients that offer it: sessions resumable for {}, replay buffer {} messages",
        humantime::format_duration(config.session_window),
        config.replay_buffer
    );
    println!("  plain echo for any other WebSocket client (websocat, a browser)");
    println!("  Ctrl-C stops it and prints what it received");
}

fn print_summary(server: &ServerHandle, up: Duration) {
    let stats = server.stats();
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let ledger = server.ledger();
    // After a "^C" echoed by the terminal, start on a line of our own.
    println!(
        "\nsquall serve: stopped after {}",
        humantime::format_duration(Duration::from_secs(up.as_secs()))
    );
    println!(
        "  handshakes {} (failed {}) · sessions held at stop {}",
        load(&stats.handshakes),
        load(&stats.failed_handshakes),
        server.sessions()
    );
    // The ledger can only judge payloads that carry squall's message number (what
    // `squall run` sends); the rest are counted apart rather than guessed at.
    let unnumbered = if ledger.anonymous > 0 {
        format!(
            " (and {} without a message number, not checked)",
            ledger.anonymous
        )
    } else {
        String::new()
    };
    println!(
        "  squall.v1 messages its application received: {} distinct, {} duplicate{unnumbered}",
        ledger.unique, ledger.duplicates
    );
    println!(
        "  plain echo messages received: {}",
        load(&stats.messages_received)
    );
}

/// Registers for Ctrl-C and SIGTERM now; the future resolves at the first of them.
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_and_nonsense_is_refused() {
        assert_eq!(
            parse_listen("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(parse_listen("[::1]:9000").unwrap().is_ipv6());
        assert_eq!(parse_listen("localhost:9000").unwrap().port(), 9000);
        for bad in ["9000", "127.0.0.1", "127.0.0.1:99999", "not an address"] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains("IP:PORT"), "{bad}: {e}");
        }
        assert!(parse_window("0s").is_err());
        assert_eq!(parse_window("2m").unwrap(), Duration::from_secs(120));
    }
}
