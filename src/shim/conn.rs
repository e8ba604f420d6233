//! One proxied connection, from accept to close: learn the client, turn it away if a
//! partition covers it, dial the server, run both directions, and die the way a fault or
//! a broken side says.
//!
//! One task per connection; its two [`Link`]s run inside it, borrowing the two sockets, so
//! when they stop the task still owns the sockets and can choose how to close them: a
//! normal close (FIN), or an abort (RST) when a fault resets the connection or one side
//! broke — a reset on one side is passed on as a reset to the other. A fault that closes
//! a direction (`close`, `limit_data`) tells that direction's link through [`ConnInfo`];
//! the link sends the FIN itself, so the other direction can go on flowing.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Shared;
use super::faults::connect::{self, Verdict};
use super::faults::nat_timeout::Mappings;
use super::faults::{partition, reset};
use super::identify::{self, HEAD_TIMEOUT, Head};
use super::ledger::{self, Touches};
use super::link::Link;
use super::registry::Kill;
use super::select::Key;
use super::ws;
use crate::scenario::Direction;

/// How long dialing the server may take before the client is turned away.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What both directions of a connection know about it.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// Accept order.
    pub conn: u64,
    pub client: Option<u32>,
    pub key: Key,
    /// Connections of this client the shim saw before this one (0: the first), so a
    /// client's n-th connection draws the same decisions in every run.
    pub ordinal: u32,
    /// The fault windows acting on this connection, for the ledger.
    pub touches: Touches,
    /// Its NAT mappings (`nat_timeout`), shared by its two directions.
    pub mappings: Mappings,
    /// When the shim started forwarding it.
    pub since: Instant,
    /// Cancelled when a fault closes that direction: [upstream, downstream].
    stop: [CancellationToken; 2],
    /// Where `ws_close` and `ws_oversize` reach each direction's WebSocket layer, when
    /// it has one: [upstream, downstream].
    inbox: [ws::Inbox; 2],
}

impl ConnInfo {
    pub fn new(conn: u64, client: Option<u32>, ordinal: u32) -> Self {
        Self {
            conn,
            client,
            key: client.map_or(Key::Conn(conn), Key::Client),
            ordinal,
            touches: Touches::default(),
            mappings: Mappings::default(),
            since: Instant::now(),
            stop: Default::default(),
            inbox: Default::default(),
        }
    }

    /// The inbox of direction `dir`'s WebSocket layer (see `ws::inject`).
    pub fn inbox(&self, dir: Direction) -> &ws::Inbox {
        match dir {
            Direction::Downstream => &self.inbox[1],
            _ => &self.inbox[0],
        }
    }

    /// The token that tells the link of direction `dir` (upstream or downstream) to close.
    pub fn stop(&self, dir: Direction) -> &CancellationToken {
        match dir {
            Direction::Downstream => &self.stop[1],
            _ => &self.stop[0],
        }
    }

    /// Closes the direction(s) `dir` with a FIN; false if they were closed already.
    pub fn close(&self, dir: Direction) -> bool {
        let mut closed = false;
        for d in [Direction::Upstream, Direction::Downstream] {
            if (dir == Direction::Both || dir == d) && !self.stop(d).is_cancelled() {
                self.stop(d).cancel();
                closed = true;
            }
        }
        closed
    }
}

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
    // Known before the head only when the shim does not read heads; a partition over
    // every connection refuses without waiting for one either way.
    let early = (!shared.identify_clients).then_some(Key::Conn(conn));
    if refused(&shared, &client, conn, early) {
        return;
    }
    if connect::before_dial(&shared, &client, conn, early, &token).await == Verdict::Done {
        return;
    }
    let head = if shared.identify_clients {
        let read = tokio::select! {
            _ = token.cancelled() => return,
            r = identify::read_head(&mut client, HEAD_TIMEOUT) => r,
        };
        match read {
            Ok(head) => head,
            Err(e) => {
                debug!(conn, error = %e, "shim: reading the head failed");
                reset::rst(&client);
                return;
            }
        }
    } else {
        Head::default()
    };
    let key = head.client.map_or(Key::Conn(conn), Key::Client);
    if early.is_none()
        && (refused(&shared, &client, conn, Some(key))
            || connect::before_dial(&shared, &client, conn, Some(key), &token).await
                == Verdict::Done)
    {
        return;
    }
    let dialed = tokio::select! {
        _ = token.cancelled() => return,
        r = dial(&shared) => r,
    };
    let mut upstream = match dialed {
        Ok(upstream) => upstream,
        Err(e) => {
            // Out of descriptors or ports: counted, so the run can say so.
            crate::exhaustion::Exhausted::note(&e);
            debug!(conn, error = %e, "shim: could not open the upstream side");
            // Refused like the server itself would be, not a clean close the client
            // could take for a server hanging up.
            reset::rst(&client);
            return;
        }
    };
    let info = Arc::new(ConnInfo::new(
        conn,
        head.client,
        shared.registry.ordinal(key),
    ));
    let (_registration, kill) = shared.registry.insert(info.clone());
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

/// Turns the client away with an RST if a partition covers it (`key` unknown yet: only a
/// partition over every connection does); true if it did.
fn refused(shared: &Shared, client: &TcpStream, conn: u64, key: Option<Key>) -> bool {
    let Some(plan) = partition::refusing(shared, key) else {
        return false;
    };
    reset::rst(client);
    let index = match key {
        Some(Key::Client(i)) => Some(i),
        _ => None,
    };
    ledger::instant(shared, plan, conn, index, "refused");
    true
}

async fn dial(shared: &Shared) -> io::Result<TcpStream> {
    let upstream = tokio::time::timeout(DIAL_TIMEOUT, crate::net::connect(shared.upstream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "dialing the upstream timed out"))??;
    upstream.set_nodelay(true)?;
    Ok(upstream)
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
