//! Outgoing TCP connections spread over loopback source addresses.
//!
//! A connection is one of at most 28,232 ephemeral ports (32768–60999) per pair of source
//! address and destination; a closed one keeps its port in TIME_WAIT for a minute. Ten
//! thousand clients reconnecting through a storm of resets would exhaust one pair in
//! seconds. On Linux all of `127.0.0.0/8` is local, so a connection to a loopback address
//! can leave from any of [`SOURCES`] of them, which multiplies the ports by as much.
//! `IP_BIND_ADDRESS_NO_PORT` makes the port choice wait for `connect`, so the kernel
//! still picks ports per destination rather than reserving one per bind.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Connections the kernel queues for an accept loop (the shim's and the built-in
/// server's). Every client of a run connects at once through the shim, one upstream
/// connection each, and tokio's default of 1,024 let the queue overflow at a few
/// thousand: the kernel then drops the handshake's last ACK, the connection looks open to
/// the shim but never reaches the server, and the client's WebSocket handshake times out
/// and retries into the same full queue. The kernel caps it at `net.core.somaxconn`
/// (4,096 by default).
pub const BACKLOG: u32 = 4096;

/// A listener on `addr` with [`BACKLOG`]; `SO_REUSEADDR` as tokio's own `bind` sets it.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Loopback source addresses used in turn: `127.0.0.1` to `127.0.0.16`.
pub const SOURCES: u32 = 16;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Connects to `to`; to a loopback IPv4 address, from the next of [`SOURCES`] loopback
/// source addresses in turn (Linux only; elsewhere, or if that fails, a plain connect).
pub async fn connect(to: SocketAddr) -> io::Result<TcpStream> {
    match spread_socket(to) {
        Some(socket) => socket.connect(to).await,
        None => TcpStream::connect(to).await,
    }
}

/// A socket bound to the next loopback source address, when that applies here.
fn spread_socket(to: SocketAddr) -> Option<TcpSocket> {
    if !cfg!(target_os = "linux") || !matches!(to.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        return None;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % SOURCES;
    let source = Ipv4Addr::new(127, 0, 0, 1 + n as u8);
    let socket = TcpSocket::new_v4().ok()?;
    bind_without_port(&socket);
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    Some(socket)
}

#[cfg(target_os = "linux")]
fn bind_without_port(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this function borrows, with a pointer to a live
    // c_int and its exact size; failure leaves the socket as it was (checked below by
    // nothing: without the option bind merely reserves a port earlier).
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn bind_without_port(_socket: &TcpSocket) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_connections_leave_from_several_source_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sources = std::collections::BTreeSet::new();
        let mut keep = Vec::new();
        for _ in 0..SOURCES {
            let out = connect(addr).await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            assert_eq!(out.local_addr().unwrap(), peer);
            sources.insert(peer.ip());
            keep.push(out);
        }
        if cfg!(target_os = "linux") {
            assert!(sources.len() > 1, "{sources:?}");
            assert!(sources.iter().all(|ip| ip.is_loopback()));
        }
    }
}
