//! The built-in server's session table: what each squall session has received and what
//! it has sent and not had acknowledged, kept for `session_window` after its connection
//! ends so the client can resume. Locks are held for a frame's worth of work, never across
//! an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::protocol::{Inbound, Outbound};

/// One session's protocol state.
#[derive(Debug)]
pub struct ServerSession {
    pub inbound: Inbound,
    /// Sent to the client and not yet acknowledged: the replay buffer.
    pub outbound: Outbound<Bytes>,
    /// The connection serving this session now (its id and token); its token is
    /// cancelled when another connection takes the session over.
    active: Option<(u64, CancellationToken)>,
    /// When the last connection ended; the resume window runs from here.
    idle_since: Instant,
    /// Messages this session's stream has pushed so far (stream mode): the next one's
    /// message number is this plus one.
    pub pushed: u64,
}

pub type Shared = Arc<Mutex<ServerSession>>;

/// All sessions of one server.
#[derive(Debug)]
pub struct SessionTable {
    sessions: Mutex<HashMap<String, Shared>>,
    window: Duration,
}

impl SessionTable {
    pub fn new(window: Duration) -> Self {
        SessionTable {
            sessions: Mutex::new(HashMap::new()),
            window,
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Attaches a connection (its `conn` token) to session `id`. Returns the session and
    /// whether it was resumed; a session past its window starts afresh. A connection
    /// already serving the session is fenced off (its token cancelled): one connection
    /// per session, so no message is delivered twice through two connections.
    /// A HELLO that does not ask to resume starts the session afresh whatever is held.
    pub fn attach(
        &self,
        id: &str,
        resume: bool,
        conn: (u64, CancellationToken),
        now: Instant,
    ) -> (Shared, bool) {
        let mut sessions = lock(&self.sessions);
        if let Some(existing) = sessions.get(id).filter(|_| resume) {
            let mut s = lock(existing);
            let alive =
                s.active.is_some() || now.saturating_duration_since(s.idle_since) <= self.window;
            if alive {
                if let Some((_, old)) = s.active.replace(conn) {
                    old.cancel();
                }
                drop(s);
                return (existing.clone(), true);
            }
        }
        // Starting afresh fences off any connection still serving the old state.
        if let Some(old) = sessions.get(id)
            && let Some((_, token)) = lock(old).active.take()
        {
            token.cancel();
        }
        let fresh = Arc::new(Mutex::new(ServerSession {
            inbound: Inbound::default(),
            outbound: Outbound::default(),
            active: Some(conn),
            idle_since: now,
            pushed: 0,
        }));
        sessions.insert(id.to_string(), fresh.clone());
        (fresh, false)
    }

    /// Connection `conn` (its id) of `session` ended.
    pub fn detach(session: &Shared, conn: u64, now: Instant) {
        let mut s = lock(session);
        if s.active.as_ref().is_some_and(|(id, _)| *id == conn) {
            s.active = None;
            s.idle_since = now;
        }
    }

    /// Forgets sessions idle past the window; returns how many remain.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| {
            let s = lock(s);
            s.active.is_some() || now.saturating_duration_since(s.idle_since) <= self.window
        });
        sessions.len()
    }

    /// Forgets every session (a restart without keeping sessions).
    pub fn clear(&self) {
        lock(&self.sessions).clear();
    }

    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
