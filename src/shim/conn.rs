//! One proxied connection, from accept to close: learn the client, dial the server, run
//! both directions, and die the way a fault or a broken side says.
//!
//! One task per connection; its two [`Link`]s run inside it, borrowing the two sockets, so
//! when they stop the task still owns the sockets and can choose how to close them: a
//! normal close (FIN), or an abort (RST) when a fault resets the connection or one side
//! broke — a reset on one side is passed on as a reset to the other.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Shared;
use super::chain::ConnInfo;
use super::faults::reset;
use super::identify::{self, HEAD_TIMEOUT, Head};
use super::link::Link;
use super::registry::Kill;
use crate::scenario::Direction;

/// How long dialing the server may take before the client is turned away.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How forwarding ended.
enum End {
    /// Both directions passed their FIN on.
    Done,
    /// The run is over.
    Cancelled,
    Killed(Kill),
    /// A read or write failed on one side.
    Broken(io::Error),
}

/// Serves connection number `conn` (accept order) until it closes or `token` is cancelled.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut client: TcpStream,
    conn: u64,
    token: CancellationToken,
) {
    let _open = shared.stats.open_guard();
    let _ = client.set_nodelay(true);
    let opened = tokio::select! {
        _ = token.cancelled() => return,
        r = open(&shared, &mut client) => r,
    };
    let (mut upstream, head) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            debug!(conn, error = %e, "shim: could not open the upstream side");
            // Refused like the server itself would be, not a clean close the client
            // could take for a server hanging up.
            reset::rst(&client);
            return;
        }
    };
    let info = ConnInfo::new(conn, head.client);
    let (_registration, kill) = shared.registry.insert(conn, info.key);
    let end = forward(
        &shared,
        &info,
        &mut client,
        &mut upstream,
        head.bytes,
        kill,
        &token,
    )
    .await;
    match end {
        End::Done | End::Cancelled => {}
        End::Killed(Kill::Reset(direction)) => reset::abort(&client, &upstream, direction),
        End::Broken(e) => {
            debug!(conn, error = %e, "shim: connection broke, resetting both sides");
            reset::abort(&client, &upstream, Direction::Both);
        }
    }
}

/// Reads the head (when identifying clients) and dials the server.
async fn open(shared: &Shared, client: &mut TcpStream) -> io::Result<(TcpStream, Head)> {
    let head = if shared.identify_clients {
        identify::read_head(client, HEAD_TIMEOUT).await?
    } else {
        Head::default()
    };
    let upstream = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(shared.upstream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "dialing the upstream timed out"))??;
    upstream.set_nodelay(true)?;
    Ok((upstream, head))
}

/// Runs both directions until they end, a fault kills the connection, or the run ends.
async fn forward(
    shared: &Shared,
    info: &ConnInfo,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    head: Vec<u8>,
    kill: oneshot::Receiver<Kill>,
    token: &CancellationToken,
) -> End {
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = Link::new(
        client_read,
        upstream_write,
        Direction::Upstream,
        shared,
        info,
        head,
    )
    .run();
    let down = Link::new(
        upstream_read,
        client_write,
        Direction::Downstream,
        shared,
        info,
        Vec::new(),
    )
    .run();
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    // A dropped sender (never sent) is not a kill: that branch just stays pending.
    let kill = async {
        match kill.await {
            Ok(k) => k,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(kill);
    while !(up_done && down_done) {
        let result = tokio::select! {
            _ = token.cancelled() => return End::Cancelled,
            k = &mut kill => return End::Killed(k),
            r = &mut up, if !up_done => {
                up_done = true;
                r
            }
            r = &mut down, if !down_done => {
                down_done = true;
                r
            }
        };
        if let Err(e) = result {
            return End::Broken(e);
        }
    }
    End::Done
}
