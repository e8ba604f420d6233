//! The connections the shim is forwarding right now, so instantaneous faults can find and
//! hit them.
//!
//! Control plane only: the lock is taken when a connection starts or ends and when a fault
//! fires, never per chunk, and never held across an await.
//!
//! It also numbers each client's connections (see `ConnInfo::ordinal`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::conn::ConnInfo;
use super::select::{Key, OpenConn};
use crate::scenario::Direction;

/// What a fault asks a connection's task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    /// Abort with RST towards the sides in the direction (`Both`: both sides).
    Reset(Direction),
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, Entry>>,
    /// Connections seen so far per identified client.
    ordinals: Mutex<HashMap<u32, u32>>,
}

#[derive(Debug)]
struct Entry {
    info: Arc<ConnInfo>,
    kill: oneshot::Sender<Kill>,
}

impl Registry {
    /// Lists the connection; its task waits on the receiver for a kill. The entry goes
    /// away when the returned guard drops.
    pub fn insert(&self, info: Arc<ConnInfo>) -> (Registration<'_>, oneshot::Receiver<Kill>) {
        let (kill, rx) = oneshot::channel();
        let conn = info.conn;
        self.lock().insert(conn, Entry { info, kill });
        (
            Registration {
                registry: self,
                conn,
            },
            rx,
        )
    }

    /// The connections open now, in no particular order.
    pub fn snapshot(&self) -> Vec<OpenConn> {
        self.lock()
            .iter()
            .map(|(&conn, e)| OpenConn {
                conn,
                key: e.info.key,
            })
            .collect()
    }

    /// The connections open now that were already forwarding at `t`.
    pub fn opened_by(&self, t: tokio::time::Instant) -> Vec<OpenConn> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.info.since <= t)
            .map(|(&conn, e)| OpenConn {
                conn,
                key: e.info.key,
            })
            .collect()
    }

    /// How many connections of `key`'s client came before this one; counts this one.
    /// Always 0 for an unidentified connection (its accept number tells it apart).
    pub fn ordinal(&self, key: Key) -> u32 {
        let Key::Client(client) = key else {
            return 0;
        };
        let mut ordinals = self.ordinals.lock().unwrap_or_else(|e| e.into_inner());
        let n = ordinals.entry(client).or_insert(0);
        let ordinal = *n;
        *n = n.saturating_add(1);
        ordinal
    }

    /// Closes the direction(s) `dir` of `conn` with a FIN; false if it already ended or
    /// those directions were closed already.
    pub fn close(&self, conn: u64, dir: Direction) -> bool {
        let info = self.lock().get(&conn).map(|e| e.info.clone());
        info.is_some_and(|info| info.close(dir))
    }

    /// What both directions of `conn` share, while it is open.
    pub fn info(&self, conn: u64) -> Option<Arc<ConnInfo>> {
        self.lock().get(&conn).map(|e| e.info.clone())
    }

    /// Tells `conn` to die; false if it already ended.
    pub fn kill(&self, conn: u64, kill: Kill) -> bool {
        let entry = self.lock().remove(&conn);
        entry.is_some_and(|e| e.kill.send(kill).is_ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes its connection from the registry when dropped.
pub(crate) struct Registration<'a> {
    registry: &'a Registry,
    conn: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_reaches_the_connection_once_and_guard_unlists_it() {
        let reg = Registry::default();
        let info = |conn, client| Arc::new(ConnInfo::new(conn, client, 0));
        let (guard, mut rx) = reg.insert(info(1, Some(4)));
        let (_g2, _rx2) = reg.insert(info(2, None));
        assert_eq!(reg.snapshot().len(), 2);
        assert!(reg.kill(1, Kill::Reset(Direction::Both)));
        assert_eq!(rx.try_recv().unwrap(), Kill::Reset(Direction::Both));
        assert!(!reg.kill(1, Kill::Reset(Direction::Both)));
        drop(guard);
        assert_eq!(
            reg.snapshot(),
            vec![OpenConn {
                conn: 2,
                key: Key::Conn(2)
            }]
        );
    }

    #[test]
    fn close_reaches_the_links_once_and_ordinals_count_per_client() {
        let reg = Registry::default();
        let info = Arc::new(ConnInfo::new(1, Some(4), 0));
        let (_guard, _rx) = reg.insert(info.clone());
        assert!(reg.close(1, Direction::Downstream));
        assert!(info.stop(Direction::Downstream).is_cancelled());
        assert!(!info.stop(Direction::Upstream).is_cancelled());
        assert!(!reg.close(1, Direction::Downstream), "already closed");
        assert!(reg.close(1, Direction::Both), "upstream was still open");
        assert!(!reg.close(9, Direction::Both), "no such connection");
        let ords: Vec<_> = [7, 7, 8, 7].map(|c| reg.ordinal(Key::Client(c))).into();
        assert_eq!(ords, vec![0, 1, 0, 2]);
        assert_eq!(reg.ordinal(Key::Conn(3)), 0);
    }
}
