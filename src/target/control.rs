//! The built-in server's control state, shared by the accept loop, every connection and
//! the server-fault timeline: which connections are open (so a fault can close them or
//! send them an application error), whether handshakes are being rejected, whether the
//! server is stalled, and admission control.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::events::{Event, EventSink};
use crate::rng::{self, Rng};
use crate::scenario::{Connections, Rate, Share};

/// What a fault asks an open connection to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Close with this code (squall's typed close first, for squall.v1 connections).
    Close {
        code: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Send an application error (squall.v1 connections only).
    AppError { code: u32, message: String },
}

/// A restart the accept loop carries out.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    pub close_code: u16,
    pub down_for: Duration,
    pub keep_sessions: bool,
}

struct Entry {
    session: Option<String>,
    tx: mpsc::UnboundedSender<Command>,
}

/// An open window of a fault that acts on a share of new connections
/// (`reject_handshakes`, `accept_close`): `act` is what it does to one.
struct ShareWindow<T> {
    id: usize,
    name: String,
    share: Share,
    rng: Rng,
    act: T,
}

/// What a `reject_handshakes` window answers.
#[derive(Clone, Copy)]
struct Reject {
    status: u16,
    retry_after: Option<Duration>,
}

/// What an `accept_close` window closes an upgraded connection with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptClose {
    pub code: u16,
    pub reason: String,
}

/// Handshakes per second at most, as a token bucket holding one second's worth.
struct Admission {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

/// Why a handshake was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The fault that refused it, or `None` for admission control.
    pub fault: Option<String>,
}

pub struct Control {
    conns: Mutex<HashMap<u64, Entry>>,
    rejects: Mutex<Vec<ShareWindow<Reject>>>,
    accept_closes: Mutex<Vec<ShareWindow<AcceptClose>>>,
    admission: Option<Mutex<Admission>>,
    stalled: watch::Sender<bool>,
    restarts: mpsc::UnboundedSender<Restart>,
    /// Handshakes refused by admission control.
    pub admission_refusals: AtomicU64,
    /// Where refusals are recorded in the fault ledger, once server faults run.
    events: Mutex<Option<EventSink>>,
    refused: AtomicU64,
}

impl Control {
    pub fn new(max_handshake_rate: Option<Rate>) -> (Self, mpsc::UnboundedReceiver<Restart>) {
        let (restarts, rx) = mpsc::unbounded_channel();
        let admission = max_handshake_rate.map(|r| {
            Mutex::new(Admission {
                per_second: r.per_second,
                tokens: r.per_second.max(1.0),
                last: Instant::now(),
            })
        });
        let control = Control {
            conns: Mutex::new(HashMap::new()),
            rejects: Mutex::new(Vec::new()),
            accept_closes: Mutex::new(Vec::new()),
            admission,
            stalled: watch::channel(false).0,
            restarts,
            admission_refusals: AtomicU64::new(0),
            events: Mutex::new(None),
            refused: AtomicU64::new(0),
        };
        (control, rx)
    }

    /// An open connection; its commands arrive on the returned receiver.
    pub fn register(&self, conn: u64) -> mpsc::UnboundedReceiver<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.conns).insert(conn, Entry { session: None, tx });
        rx
    }

    /// The connection now serves `session` (squall.v1, after HELLO).
    pub fn bind_session(&self, conn: u64, session: &str) {
        if let Some(e) = lock(&self.conns).get_mut(&conn) {
            e.session = Some(session.to_string());
        }
    }

    pub fn unregister(&self, conn: u64) {
        lock(&self.conns).remove(&conn);
    }

    /// Ids of the connections open now.
    pub fn open_connections(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = lock(&self.conns).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Sends `command` to every open connection; returns how many.
    pub fn broadcast(&self, command: &Command) -> usize {
        lock(&self.conns)
            .values()
            .filter(|e| e.tx.send(command.clone()).is_ok())
            .count()
    }

    /// Sends `command` to the sessions `which` picks (shares and counts drawn from
    /// `seed`, the fault's own); returns the connection ids reached.
    pub fn to_sessions(&self, which: &Connections, seed: u64, command: &Command) -> Vec<u64> {
        let conns = lock(&self.conns);
        let mut open: Vec<(&String, u64, &Entry)> = conns
            .iter()
            .filter_map(|(id, e)| e.session.as_ref().map(|s| (s, *id, e)))
            .collect();
        open.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let chosen: Vec<&(&String, u64, &Entry)> = match which {
            Connections::All => open.iter().collect(),
            Connections::Share(share) => open
                .iter()
                .filter(|(s, _, _)| unit(rng::derive(seed, s, 0)) < share.0)
                .collect(),
            Connections::Count(n) => {
                let mut keyed: Vec<_> = open
                    .iter()
                    .map(|c| (rng::derive(seed, c.0, 1), c))
                    .collect();
                keyed.sort_by_key(|(k, _)| *k);
                keyed
                    .into_iter()
                    .take(*n as usize)
                    .map(|(_, c)| c)
                    .collect()
            }
            Connections::Clients(list) => open
                .iter()
                .filter(|(s, _, _)| client_index(s).is_some_and(|i| list.contains(&i)))
                .collect(),
        };
        chosen
            .into_iter()
            .filter(|(_, _, e)| e.tx.send(command.clone()).is_ok())
            .map(|(_, id, _)| *id)
            .collect()
    }

    /// Opens a `reject_handshakes` window; `rng` decides which handshakes fall in `share`.
    pub fn start_rejecting(
        &self,
        id: usize,
        name: &str,
        status: u16,
        retry_after: Option<Duration>,
        share: Share,
        rng: Rng,
    ) {
        lock(&self.rejects).push(ShareWindow {
            id,
            name: name.to_string(),
            share,
            rng,
            act: Reject {
                status,
                retry_after,
            },
        });
    }

    /// Opens an `accept_close` window: `rng` decides which upgraded connections fall in
    /// `share` and are closed with `close` at once.
    pub fn start_accept_close(
        &self,
        id: usize,
        name: &str,
        close: AcceptClose,
        share: Share,
        rng: Rng,
    ) {
        lock(&self.accept_closes).push(ShareWindow {
            id,
            name: name.to_string(),
            share,
            rng,
            act: close,
        });
    }

    pub fn stop_accept_close(&self, name: &str) {
        lock(&self.accept_closes).retain(|w| w.name != name);
    }

    /// Decides whether connection `conn`, just upgraded, is closed at once.
    pub fn check_accept_close(&self, conn: u64) -> Option<AcceptClose> {
        self.pick(&self.accept_closes, "accept_close", "accept_closed", || {
            conn
        })
        .map(|(_, close)| close)
    }

    /// The first open window of `windows` whose share takes this connection, recorded in
    /// the fault ledger against the connection `conn` numbers.
    fn pick<T: Clone>(
        &self,
        windows: &Mutex<Vec<ShareWindow<T>>>,
        kind: &str,
        action: &str,
        conn: impl FnOnce() -> u64,
    ) -> Option<(String, T)> {
        let mut windows = lock(windows);
        let at = windows
            .iter_mut()
            .position(|w| w.rng.random_range(0.0..1.0) < w.share.0)?;
        let w = &windows[at];
        if let Some(events) = lock(&self.events).as_ref() {
            events.emit(Event::FaultTouched {
                fault: w.id,
                name: w.name.clone(),
                kind: format!("server.{kind}"),
                conn: conn(),
                client: None,
                action: action.into(),
                bytes: 0,
            });
        }
        Some((w.name.clone(), w.act.clone()))
    }

    /// Records refusals in this event log from now on.
    pub fn set_events(&self, events: EventSink) {
        *lock(&self.events) = Some(events);
    }

    /// Lets go of the event log, so it can close once the run is over.
    pub fn detach_events(&self) {
        lock(&self.events).take();
    }

    pub fn stop_rejecting(&self, name: &str) {
        lock(&self.rejects).retain(|r| r.name != name);
    }

    /// Decides whether to refuse a handshake now: an open reject window first, then
    /// admission control.
    pub fn check_handshake(&self) -> Option<Refusal> {
        // A refused handshake never becomes a connection: number the refusals instead.
        let refused = || self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some((name, r)) = self.pick(&self.rejects, "reject_handshakes", "rejected", refused)
        {
            return Some(Refusal {
                status: r.status,
                retry_after: r.retry_after,
                fault: Some(name),
            });
        }
        let mut a = lock(self.admission.as_ref()?);
        let now = Instant::now();
        let refill = now.saturating_duration_since(a.last).as_secs_f64() * a.per_second;
        a.tokens = (a.tokens + refill).min(a.per_second.max(1.0));
        a.last = now;
        if a.tokens >= 1.0 {
            a.tokens -= 1.0;
            None
        } else {
            self.admission_refusals.fetch_add(1, Ordering::Relaxed);
            // Come back when the bucket has a token again.
            let wait = Duration::from_secs_f64((1.0 - a.tokens) / a.per_second)
                .max(Duration::from_secs(1));
            Some(Refusal {
                status: 503,
                retry_after: Some(wait),
                fault: None,
            })
        }
    }

    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }

    /// Watches the stall flag (connections stop reading while it is set).
    pub fn stalled(&self) -> watch::Receiver<bool> {
        self.stalled.subscribe()
    }

    pub fn restart(&self, r: Restart) {
        let _ = self.restarts.send(r);
    }
}

/// squall's load clients name their sessions `c<index>.<period>.<run>`.
fn client_index(session: &str) -> Option<u32> {
    session.strip_prefix('c')?.split('.').next()?.parse().ok()
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_picked_by_share_count_and_client_index() {
        let (c, _restarts) = Control::new(None);
        let mut rxs = vec![];
        for i in 0..20u64 {
            rxs.push(c.register(i));
            c.bind_session(i, &format!("c{i}.0.abc"));
        }
        let cmd = Command::AppError {
            code: 1,
            message: "x".into(),
        };
        assert_eq!(c.to_sessions(&Connections::All, 7, &cmd).len(), 20);
        assert_eq!(c.to_sessions(&Connections::Count(5), 7, &cmd).len(), 5);
        let mut listed = c.to_sessions(&Connections::Clients(vec![3, 11]), 7, &cmd);
        listed.sort();
        assert_eq!(listed, [3, 11]);
        let half = c.to_sessions(&Connections::Share(Share(0.5)), 7, &cmd);
        assert!((4..=16).contains(&half.len()), "{}", half.len());
        assert_eq!(
            half,
            c.to_sessions(&Connections::Share(Share(0.5)), 7, &cmd),
            "deterministic"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn admission_control_caps_handshakes_per_second() {
        let (c, _r) = Control::new(Some(Rate { per_second: 10.0 }));
        let admitted = (0..30).filter(|_| c.check_handshake().is_none()).count();
        assert_eq!(admitted, 10, "one second's worth at once");
        tokio::time::advance(Duration::from_millis(500)).await;
        let admitted = (0..30).filter(|_| c.check_handshake().is_none()).count();
        assert_eq!(admitted, 5);
        let refused = c.check_handshake().unwrap();
        assert_eq!((refused.status, refused.fault), (503, None));
    }

    #[test]
    fn accept_close_windows_take_their_share_and_stop() {
        let (c, _r) = Control::new(None);
        let close = AcceptClose {
            code: 1013,
            reason: String::new(),
        };
        c.start_accept_close(0, "a", close.clone(), Share(0.5), rng::rng(5, "a", 0));
        let hit = (0..1000).filter_map(|i| c.check_accept_close(i)).count();
        assert!((400..=600).contains(&hit), "{hit} of 1000 at 50%");
        assert_eq!(
            c.check_handshake().map(|r| r.status),
            None,
            "closing after the upgrade is not refusing it"
        );
        c.stop_accept_close("a");
        assert!((0..100).all(|i| c.check_accept_close(i).is_none()));
        c.start_accept_close(1, "b", close.clone(), Share(1.0), rng::rng(5, "b", 0));
        assert_eq!(c.check_accept_close(7), Some(close));
    }

    #[test]
    fn reject_windows_refuse_their_share() {
        let (c, _r) = Control::new(None);
        c.start_rejecting(
            0,
            "r",
            429,
            Some(Duration::from_secs(2)),
            Share(1.0),
            rng::rng(3, "r", 0),
        );
        let r = c.check_handshake().unwrap();
        assert_eq!(
            (r.status, r.retry_after),
            (429, Some(Duration::from_secs(2)))
        );
        c.stop_rejecting("r");
        assert!(c.check_handshake().is_none());
    }
}
