//! The connections the shim is forwarding right now, so instantaneous faults can find and
//! hit them.
//!
//! Control plane only: the lock is taken when a connection starts or ends and when a fault
//! fires, never per chunk, and never held across an await.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

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
}

#[derive(Debug)]
struct Entry {
    key: Key,
    kill: oneshot::Sender<Kill>,
}

impl Registry {
    /// Lists `conn`; the connection's task waits on the receiver for a kill. The entry goes
    /// away when the returned guard drops.
    pub fn insert(&self, conn: u64, key: Key) -> (Registration<'_>, oneshot::Receiver<Kill>) {
        let (kill, rx) = oneshot::channel();
        self.lock().insert(conn, Entry { key, kill });
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
            .map(|(&conn, e)| OpenConn { conn, key: e.key })
            .collect()
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
        let (guard, mut rx) = reg.insert(1, Key::Client(4));
        let (_g2, _rx2) = reg.insert(2, Key::Conn(2));
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
}
