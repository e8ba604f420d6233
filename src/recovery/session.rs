//! The library face of the engine: open a session, send on a handle, read events.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Application, Delivered, Next, Outcome, SessionConfig, SessionEvent};

/// A handle to a running session. Dropping every handle finishes the session once all
/// sent messages are confirmed.
#[derive(Debug, Clone)]
pub struct Session {
    tx: mpsc::Sender<Bytes>,
}

/// What a session reports: lifecycle events, confirmed deliveries, and its final outcome.
#[derive(Debug)]
pub struct SessionStreams {
    /// Every lifecycle event, in order.
    pub events: mpsc::UnboundedReceiver<SessionEvent>,
    /// Each confirmed message, once.
    pub delivered: mpsc::UnboundedReceiver<Delivered>,
    /// Resolves when the session ends.
    pub outcome: JoinHandle<Outcome>,
}

/// Why `send` did not take a message.
#[derive(Debug, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionClosed;

impl Session {
    /// Starts a session on the current tokio runtime. It connects in the background;
    /// `send` queues even before the first connection is up. Cancel `token` to stop it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use squall::recovery::{Session, SessionConfig};
    /// use squall::scenario::{MessageKind, Protocol};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let config = SessionConfig {
    ///     url: "ws://127.0.0.1:9000/ws".into(),
    ///     session: "device-42".into(),
    ///     protocol: Protocol::Squall,
    ///     headers: vec![("authorization".into(), "Bearer t0ken".into())],
    ///     subprotocols: vec![],
    ///     policy: squall::scenario::defaults::recovery(),
    ///     kind: MessageKind::Text,
    ///     rng: squall::rng::rng(42, "backoff", 0),
    ///     dialer: None,
    ///     tls: None,
    ///     max_message_bytes: squall::recovery::DEFAULT_MAX_MESSAGE_BYTES,
    /// };
    /// let (session, mut streams) = Session::open(config, CancellationToken::new());
    /// session.send("hello").await?;
    /// drop(session); // finish once everything sent is confirmed
    /// while let Some(event) = streams.events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// let outcome = streams.outcome.await?;
    /// assert_eq!(outcome.undelivered, 0);
    /// # Ok(()) }
    /// ```
    pub fn open(config: SessionConfig, token: CancellationToken) -> (Session, SessionStreams) {
        // The outbox does the real bounding; this channel only hands messages over.
        let (tx, rx) = mpsc::channel(64);
        let (ev_tx, events) = mpsc::unbounded_channel();
        let (d_tx, delivered) = mpsc::unbounded_channel();
        let outcome = tokio::spawn(async move {
            let mut app = ChannelApp {
                rx,
                events: ev_tx,
                delivered: d_tx,
            };
            super::drive(config, &mut app, token).await
        });
        (
            Session { tx },
            SessionStreams {
                events,
                delivered,
                outcome,
            },
        )
    }

    /// Queues `payload`. Waits while the outbox is full (policy `block`); once accepted,
    /// the session keeps it until its delivery is confirmed.
    pub async fn send(&self, payload: impl Into<Bytes>) -> Result<(), SessionClosed> {
        self.tx
            .send(payload.into())
            .await
            .map_err(|_| SessionClosed)
    }
}

struct ChannelApp {
    rx: mpsc::Receiver<Bytes>,
    events: mpsc::UnboundedSender<SessionEvent>,
    delivered: mpsc::UnboundedSender<Delivered>,
}

impl Application for ChannelApp {
    async fn next(&mut self) -> Next {
        match self.rx.recv().await {
            Some(payload) => Next::Send {
                payload,
                intended: Instant::now(),
            },
            None => Next::Finish,
        }
    }

    fn event(&mut self, event: SessionEvent) {
        let _ = self.events.send(event);
    }

    fn delivered(&mut self, delivered: Delivered) {
        let _ = self.delivered.send(delivered);
    }
}
