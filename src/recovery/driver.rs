//! The one loop that drives a session through its states: connect, handshake, resend
//! what is unconfirmed, live, back off, and again — recording every transition as an event.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::ProtocolError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::outbox::{Admit, Outbox, decode_seq};
use super::state::{End, Outcome, SessionEvent, StateKind};
use super::{Application, Backoff, Disconnect, Disposition, Next, SessionConfig};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a live connection ended.
enum LiveEnd {
    Lost {
        reason: Disconnect,
        up_for: Duration,
        progressed: bool,
    },
    Drained,
    Cancelled,
}

/// Runs a session until the application finishes and everything is confirmed, a fatal
/// error or the retry limits end it, or `token` is cancelled.
pub async fn run<A: Application>(
    cfg: SessionConfig,
    app: &mut A,
    token: CancellationToken,
) -> Outcome {
    let backoff = match Backoff::try_new(cfg.policy.backoff, cfg.rng.clone()) {
        Ok(b) => b,
        Err(e) => {
            return Outcome {
                end: End::Failed(e.to_string()),
                undelivered: 0,
            };
        }
    };
    let outbox = Outbox::new(cfg.policy.outbox);
    let mut d = Driver {
        cfg,
        app,
        token,
        outbox,
        backoff,
        state: StateKind::Closed,
        finishing: false,
    };
    let end = d.drive().await;
    let state = if matches!(end, End::Failed(_)) {
        StateKind::Failed
    } else {
        StateKind::Closed
    };
    d.enter(state, 0);
    Outcome {
        end,
        undelivered: d.outbox.len() as u64,
    }
}

struct Driver<'a, A> {
    cfg: SessionConfig,
    app: &'a mut A,
    token: CancellationToken,
    outbox: Outbox,
    backoff: Backoff,
    state: StateKind,
    /// The application said it has nothing more to send.
    finishing: bool,
}

impl<A: Application> Driver<'_, A> {
    async fn drive(&mut self) -> End {
        // Set when a live connection is lost: the start of the downtime being measured.
        let mut lost_at: Option<Instant> = None;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let failure = match self.connect(attempt).await {
                Err(None) => return End::Cancelled,
                Err(Some(reason)) => reason,
                Ok(ws) => {
                    self.app.event(SessionEvent::Connected {
                        attempt,
                        reconnect: lost_at.is_some(),
                    });
                    let replayed = self.outbox.len();
                    if let Some(t) = lost_at.take() {
                        self.app.event(SessionEvent::Resumed {
                            downtime: t.elapsed(),
                            attempts: attempt,
                            replayed,
                        });
                    }
                    attempt = 0;
                    match self.live(ws).await {
                        LiveEnd::Drained => return End::Drained,
                        LiveEnd::Cancelled => return End::Cancelled,
                        LiveEnd::Lost {
                            reason,
                            up_for,
                            progressed,
                        } => {
                            lost_at = Some(Instant::now());
                            self.app.event(SessionEvent::Disconnected {
                                class: reason.class(),
                                reason: reason.clone(),
                                up_for,
                            });
                            // Only a connection that stayed up and did work proves the
                            // server healthy; an accept-then-close loop keeps backing off.
                            if up_for >= self.cfg.policy.min_uptime && progressed {
                                self.backoff.reset();
                            }
                            match reason.disposition(&self.cfg.policy.on_error) {
                                Disposition::Fatal => {
                                    return self.give_up(format!("fatal: {reason}"));
                                }
                                d => {
                                    let delay = self.delay(d);
                                    if !self.back_off(delay, attempt).await {
                                        return End::Cancelled;
                                    }
                                    continue;
                                }
                            }
                        }
                    }
                }
            };
            let disposition = failure.disposition(&self.cfg.policy.on_error);
            let limit_hit = self.cfg.policy.max_attempts.is_some_and(|m| attempt >= m)
                || lost_at
                    .zip(self.cfg.policy.max_elapsed)
                    .is_some_and(|(t, max)| t.elapsed() >= max);
            let next =
                (disposition != Disposition::Fatal && !limit_hit).then(|| self.delay(disposition));
            self.app.event(SessionEvent::AttemptFailed {
                attempt,
                class: failure.class(),
                reason: failure.clone(),
                next_delay: next,
            });
            match next {
                None if limit_hit => {
                    return self.give_up(format!(
                        "retry limit reached after {attempt} attempts: {failure}"
                    ));
                }
                None => return self.give_up(format!("fatal: {failure}")),
                Some(delay) => {
                    if !self.back_off(delay, attempt).await {
                        return End::Cancelled;
                    }
                }
            }
        }
    }

    fn give_up(&mut self, reason: String) -> End {
        self.app.event(SessionEvent::GaveUp {
            reason: reason.clone(),
        });
        End::Failed(reason)
    }

    fn delay(&mut self, d: Disposition) -> Duration {
        let base = self.backoff.next_delay();
        match d {
            Disposition::RetryAfter(hint) => base.max(hint),
            _ => base,
        }
    }

    fn enter(&mut self, to: StateKind, attempt: u32) {
        if self.state != to {
            let from = std::mem::replace(&mut self.state, to);
            self.app
                .event(SessionEvent::StateChanged { from, to, attempt });
        }
    }

    /// Waits `delay`, still taking messages from the application. False if cancelled.
    async fn back_off(&mut self, delay: Duration, attempt: u32) -> bool {
        self.enter(StateKind::BackingOff, attempt);
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = self.token.cancelled() => return false,
                _ = sleep_until(until) => return true,
                next = self.app.next(), if self.accepting() => { self.accept(next); }
            }
        }
    }

    fn accepting(&self) -> bool {
        !self.finishing && !self.outbox.blocks()
    }

    /// Takes one message from the application into the outbox; returns its seq.
    fn accept(&mut self, next: Next) -> Option<u64> {
        match next {
            Next::Finish => {
                self.finishing = true;
                None
            }
            Next::Send { payload, intended } => {
                match self.outbox.admit(&payload, self.cfg.kind, intended) {
                    Admit::Queued(seq) => {
                        self.app.accepted(seq);
                        Some(seq)
                    }
                    Admit::QueuedDropping { seq, dropped } => {
                        self.app.accepted(seq);
                        self.app.event(SessionEvent::Dropped { seq: dropped });
                        Some(seq)
                    }
                    Admit::Refused => {
                        self.app.refused();
                        None
                    }
                }
            }
        }
    }

    /// One attempt: TCP connect, then the WebSocket handshake. `Err(None)` when cancelled.
    async fn connect(&mut self, attempt: u32) -> Result<Ws, Option<Disconnect>> {
        self.enter(StateKind::Connecting, attempt);
        let mut request = self
            .cfg
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Some(Disconnect::ConnectFailed(format!("bad url: {e}"))))?;
        for (k, v) in &self.cfg.headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k
                .parse()
                .map_err(|_| Some(Disconnect::ConnectFailed(format!("bad header name {k:?}"))))?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                Some(Disconnect::ConnectFailed(format!(
                    "bad value for header {k}"
                )))
            })?;
            request.headers_mut().append(name, value);
        }
        if !self.cfg.subprotocols.is_empty() {
            let list = HeaderValue::from_str(&self.cfg.subprotocols.join(", "))
                .map_err(|_| Some(Disconnect::ConnectFailed("bad subprotocol list".into())))?;
            request.headers_mut().insert("sec-websocket-protocol", list);
        }
        let uri = request.uri();
        let host = uri
            .host()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("wss") {
                443
            } else {
                80
            });
        let dial = timeout(
            self.cfg.policy.connect_timeout,
            TcpStream::connect((host.as_str(), port)),
        );
        let tcp = tokio::select! {
            _ = self.token.cancelled() => return Err(None),
            r = dial => match r {
                Err(_) => return Err(Some(Disconnect::ConnectTimeout)),
                Ok(Err(e)) => return Err(Some(Disconnect::ConnectFailed(e.kind().to_string()))),
                Ok(Ok(tcp)) => tcp,
            },
        };
        let _ = tcp.set_nodelay(true);
        self.enter(StateKind::Handshaking, attempt);
        if uri.scheme_str() == Some("wss") {
            // TLS arrives with external targets; until then say so rather than fail oddly.
            return Err(Some(Disconnect::ConnectFailed(
                "wss:// is not supported yet".into(),
            )));
        }
        let handshake = tokio_tungstenite::client_async_with_config(
            request,
            MaybeTlsStream::Plain(tcp),
            Some(ws_config()),
        );
        tokio::select! {
            _ = self.token.cancelled() => Err(None),
            r = timeout(self.cfg.policy.handshake_timeout, handshake) => match r {
                Err(_) => Err(Some(Disconnect::HandshakeTimeout)),
                Ok(Err(e)) => Err(Some(handshake_error(e))),
                Ok(Ok((ws, _response))) => Ok(ws),
            },
        }
    }

    /// Serves one live connection until it ends.
    async fn live(&mut self, mut ws: Ws) -> LiveEnd {
        let since = Instant::now();
        let hb = self.cfg.policy.heartbeat;
        let write_deadline = hb.timeout;
        let mut progressed = false;
        let lost = |reason, progressed| LiveEnd::Lost {
            reason,
            up_for: since.elapsed(),
            progressed,
        };

        if !self.outbox.is_empty() {
            self.enter(StateKind::Resuming, 0);
            for seq in self.outbox.unconfirmed() {
                if let Some(frame) = self.outbox.take_for_send(seq, since) {
                    if let Err(e) = timeout(write_deadline, ws.feed(frame))
                        .await
                        .map_err(|_| Disconnect::WriteStalled)
                        .and_then(|r| r.map_err(stream_error))
                    {
                        return lost(e, false);
                    }
                    self.app.sent(seq);
                }
            }
            if let Err(e) = timeout(write_deadline, ws.flush())
                .await
                .map_err(|_| Disconnect::WriteStalled)
                .and_then(|r| r.map_err(stream_error))
            {
                return lost(e, false);
            }
        }
        self.enter(StateKind::Live, 0);

        let mut last_rx = Instant::now();
        let mut ping_deadline: Option<Instant> = None;
        loop {
            if self.finishing && self.outbox.is_empty() {
                let bye = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "done".into(),
                };
                let _ = timeout(Duration::from_secs(1), ws.close(Some(bye))).await;
                return LiveEnd::Drained;
            }
            let heartbeat_at = ping_deadline.unwrap_or(last_rx + hb.interval);
            // A message carried over from a previous connection is timed from this one.
            let ack_at = self
                .outbox
                .oldest_sent()
                .map(|t| t.max(since) + self.cfg.policy.retransmit.ack_timeout);
            tokio::select! {
                biased;
                _ = self.token.cancelled() => {
                    let bye = CloseFrame { code: CloseCode::Away, reason: "client stopping".into() };
                    let _ = timeout(Duration::from_millis(500), ws.close(Some(bye))).await;
                    return LiveEnd::Cancelled;
                }
                msg = ws.next() => {
                    last_rx = Instant::now();
                    ping_deadline = None;
                    match msg {
                        Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                            let Some(seq) = decode_seq(&m) else {
                                return lost(Disconnect::Corrupt("echo without a sequence number".into()), progressed);
                            };
                            match self.outbox.confirm(seq, last_rx) {
                                Some(d) => {
                                    progressed = true;
                                    self.app.delivered(d);
                                }
                                None => self.app.duplicate(seq),
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                            return lost(Disconnect::Closed { code, reason }, progressed);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return lost(stream_error(e), progressed),
                        None => return lost(Disconnect::Eof, progressed),
                    }
                }
                _ = sleep_until(heartbeat_at) => {
                    if ping_deadline.is_some() {
                        return lost(Disconnect::HeartbeatMissed, progressed);
                    }
                    if let Err(e) = self.write(&mut ws, Message::Ping(Default::default()), write_deadline).await {
                        return lost(e, progressed);
                    }
                    ping_deadline = Some(Instant::now() + hb.timeout);
                }
                _ = sleep_until(ack_at.unwrap_or(since)), if ack_at.is_some() => {
                    return lost(Disconnect::AckTimeout, progressed);
                }
                next = self.app.next(), if self.accepting() => {
                    if let Some(seq) = self.accept(next)
                        && let Some(frame) = self.outbox.take_for_send(seq, Instant::now())
                    {
                        if let Err(e) = self.write(&mut ws, frame, write_deadline).await {
                            return lost(e, progressed);
                        }
                        self.app.sent(seq);
                    }
                }
            }
        }
    }

    async fn write(
        &mut self,
        ws: &mut Ws,
        msg: Message,
        deadline: Duration,
    ) -> Result<(), Disconnect> {
        match timeout(deadline, ws.send(msg)).await {
            Err(_) => Err(Disconnect::WriteStalled),
            Ok(r) => r.map_err(stream_error),
        }
    }
}

/// Client-side buffers sized for thousands of small-message connections (tungstenite's
/// default 128 KiB read buffer per connection would dominate memory).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20))
}

fn handshake_error(e: WsError) -> Disconnect {
    match e {
        WsError::Http(resp) => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Disconnect::HandshakeRejected {
                status: resp.status().as_u16(),
                retry_after,
            }
        }
        other => stream_error(other),
    }
}

/// Maps a WebSocket error on an open (or opening) connection to a disconnect reason.
fn stream_error(e: WsError) -> Disconnect {
    use std::io::ErrorKind;
    match e {
        WsError::Io(io) => match io.kind() {
            ErrorKind::UnexpectedEof => Disconnect::Eof,
            _ => Disconnect::Reset,
        },
        WsError::ConnectionClosed | WsError::AlreadyClosed => Disconnect::Eof,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Disconnect::Eof,
        WsError::Protocol(p) => Disconnect::Protocol(p.to_string()),
        WsError::Utf8(s) => Disconnect::Protocol(format!("invalid UTF-8: {s}")),
        WsError::Capacity(c) => Disconnect::Protocol(c.to_string()),
        other => Disconnect::Protocol(other.to_string()),
    }
}
