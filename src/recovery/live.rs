//! One live connection: resume (squall protocol) or resend (echo), then messages flow
//! until the connection is lost, the session drains, or the run is cancelled.
//!
//! Liveness has three detectors, each a [`Disconnect`]: no traffic for a heartbeat
//! interval then no answer to a ping within the timeout (`HeartbeatMissed`: the half-open
//! link), a written message unconfirmed past `ack_timeout` (`AckTimeout`), and a write
//! that cannot complete (`WriteStalled`).

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::connect::{Wire, Ws, stream_error};
use super::driver::Driver;
use super::echo;
use super::state::{SessionEvent, StateKind};
use super::{Application, Disconnect};
use crate::protocol::{self, ACK_AFTER, ACK_EVERY, Flags, Frame, Hello, Receipt, SessionId};
use crate::scenario::MessageKind;

/// How a live connection ended.
pub(super) enum LiveEnd {
    Lost {
        reason: Disconnect,
        up_for: Duration,
        progressed: bool,
    },
    Drained,
    Cancelled,
}

/// Per-connection state of the live loop.
struct Conn {
    ws: Ws,
    wire: Wire,
    since: Instant,
    progressed: bool,
    last_rx: Instant,
    ping_deadline: Option<Instant>,
}

impl<A: Application> Driver<'_, A> {
    /// Serves one connection until it ends.
    pub(super) async fn live(
        &mut self,
        ws: Ws,
        wire: Wire,
        lost_at: Option<Instant>,
        attempt: u32,
    ) -> LiveEnd {
        let since = Instant::now();
        let mut c = Conn {
            ws,
            wire,
            since,
            progressed: false,
            last_rx: since,
            ping_deadline: None,
        };
        let hb = self.cfg.policy.heartbeat;
        let lost = |reason, c: &Conn| LiveEnd::Lost {
            reason,
            up_for: c.since.elapsed(),
            progressed: c.progressed,
        };

        if let Wire::Squall = c.wire {
            self.enter(StateKind::Resuming, 0);
            if let Err(reason) = Box::pin(self.resume(&mut c)).await {
                return lost(reason, &c);
            }
        } else if !self.outbox.is_empty() {
            self.enter(StateKind::Resuming, 0);
        }
        self.outbox.rewind();
        let replayed = self.outbox.len();
        if let Err(reason) = self.pump(&mut c).await {
            return lost(reason, &c);
        }
        self.went_live(lost_at, attempt, replayed);

        loop {
            if self.finishing
                && self.outbox.is_empty()
                && self.inbound.unacked() == 0
                && self.app.settled()
            {
                let bye = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "done".into(),
                };
                let _ = timeout(Duration::from_secs(1), c.ws.close(Some(bye))).await;
                return LiveEnd::Drained;
            }
            let heartbeat_at = c.ping_deadline.unwrap_or(c.last_rx + hb.interval);
            // A message carried over from an earlier connection is timed from this one.
            let ack_timeout = self.cfg.policy.retransmit.ack_timeout;
            let stale_at = self
                .outbox
                .oldest_in_flight()
                .map(|t| t.max(c.since) + ack_timeout);
            let ack_at = self.inbound.ack_deadline(ACK_AFTER);
            tokio::select! {
                biased;
                _ = self.token.cancelled() => {
                    let bye = CloseFrame { code: CloseCode::Away, reason: "client stopping".into() };
                    let _ = timeout(Duration::from_millis(500), c.ws.close(Some(bye))).await;
                    return LiveEnd::Cancelled;
                }
                msg = c.ws.next() => {
                    c.last_rx = Instant::now();
                    c.ping_deadline = None;
                    let result = match msg {
                        Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => self.on_message(&mut c, m).await,
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                            Err(Disconnect::Closed { code, reason, retry_after: None })
                        }
                        Some(Ok(_)) => Ok(()),
                        Some(Err(e)) => Err(stream_error(e)),
                        None => Err(Disconnect::Eof),
                    };
                    if let Err(reason) = result {
                        return lost(reason, &c);
                    }
                }
                _ = sleep_until(heartbeat_at) => {
                    if c.ping_deadline.is_some() {
                        return lost(Disconnect::HeartbeatMissed, &c);
                    }
                    if let Err(reason) = write(&mut c.ws, Message::Ping(Bytes::new()), hb.timeout).await {
                        return lost(reason, &c);
                    }
                    c.ping_deadline = Some(Instant::now() + hb.timeout);
                }
                _ = sleep_until(stale_at.unwrap_or(since)), if stale_at.is_some() => {
                    return lost(Disconnect::AckTimeout, &c);
                }
                _ = sleep_until(ack_at.unwrap_or(since)), if ack_at.is_some() => {
                    if let Err(reason) = self.send_ack(&mut c).await {
                        return lost(reason, &c);
                    }
                }
                next = self.app.next(), if self.accepting() => {
                    self.accept(next);
                    if let Err(reason) = self.pump(&mut c).await {
                        return lost(reason, &c);
                    }
                }
            }
        }
    }

    /// The squall handshake: HELLO with what this side has, WELCOME with what the server
    /// has; release what it acknowledged and report what nobody can vouch for.
    async fn resume(&mut self, c: &mut Conn) -> Result<(), Disconnect> {
        let session = SessionId::new(self.cfg.session.clone())
            .map_err(|e| Disconnect::Protocol(format!("session id: {e}")))?;
        let hello = Frame::Hello(Hello {
            session,
            resume: self.ever_live,
            ack: self.inbound.ack(),
            next_seq: self.outbox.next_seq(),
        });
        let deadline = self.cfg.policy.handshake_timeout;
        write(
            &mut c.ws,
            Message::Binary(protocol::encode(&hello)),
            deadline,
        )
        .await?;
        let welcome = loop {
            let msg = match timeout(deadline, c.ws.next()).await {
                Err(_) => return Err(Disconnect::HandshakeTimeout),
                Ok(None) => return Err(Disconnect::Eof),
                Ok(Some(Err(e))) => return Err(stream_error(e)),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => match protocol::decode(&b).map_err(|e| self.corrupt(e))? {
                    Frame::Welcome(w) => break w,
                    Frame::Close { info, .. } => return Err(typed_close(info)),
                    other => {
                        return Err(Disconnect::Protocol(format!(
                            "expected WELCOME, got {}",
                            other.frame_type()
                        )));
                    }
                },
                Message::Close(frame) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return Err(Disconnect::Closed {
                        code,
                        reason,
                        retry_after: None,
                    });
                }
                Message::Text(_) => {
                    return Err(Disconnect::Protocol(
                        "text message during the squall handshake".into(),
                    ));
                }
                _ => {}
            }
        };
        c.last_rx = Instant::now();
        if welcome.resumed {
            return self.confirm_upto(c, welcome.ack);
        }
        if welcome.ack != 0 || welcome.next_seq != 1 {
            return Err(Disconnect::Protocol(
                "a fresh WELCOME must carry ack 0 and next_seq 1".into(),
            ));
        }
        if self.ever_live {
            // The server no longer has this session (restarted, or the window expired):
            // what was sent and not acknowledged may or may not have reached it, and what
            // it had queued for us is gone. Say so; then both directions start afresh,
            // the held messages renumbered from 1 and sent again.
            let unvouched: Vec<u64> = self.outbox.unconfirmed_sent().collect();
            let lost_inbound_after = self.inbound.ack();
            self.report(SessionEvent::Discontinuity {
                unvouched,
                inbound_after: lost_inbound_after,
            });
        }
        self.inbound.reset();
        self.outbox.renumber();
        Ok(())
    }

    /// Handles one text or binary message from the server.
    async fn on_message(&mut self, c: &mut Conn, m: Message) -> Result<(), Disconnect> {
        match c.wire {
            Wire::Echo => {
                let Some(seq) = echo::decode_seq(&m) else {
                    return Err(self.corrupt("echo without a sequence number"));
                };
                match self.outbox.confirm(seq, c.last_rx) {
                    Some(d) => {
                        c.progressed = true;
                        self.app.delivered(d);
                    }
                    None => self.app.duplicate(seq),
                }
                self.pump(c).await
            }
            Wire::Squall => {
                let Message::Binary(bytes) = m else {
                    return Err(Disconnect::Protocol(
                        "text message on a squall.v1 connection".into(),
                    ));
                };
                let frame = protocol::decode(&bytes).map_err(|e| self.corrupt(e))?;
                self.confirm_upto(c, frame.ack())?;
                match frame {
                    Frame::Data { seq, payload, .. } => {
                        match self.inbound.receive(seq, c.last_rx) {
                            Receipt::Deliver => {
                                c.progressed = true;
                                self.app.received(payload);
                                if self.inbound.unacked() >= ACK_EVERY {
                                    self.send_ack(c).await?;
                                }
                            }
                            // The peer resent something we had: drop it, and the next ack
                            // tells it again.
                            Receipt::Duplicate => self.app.duplicate(seq),
                            Receipt::Gap { expected } => {
                                return Err(Disconnect::Protocol(format!(
                                    "message {seq} arrived where {expected} was expected (a message was lost in transit)"
                                )));
                            }
                        }
                    }
                    Frame::Close { info, .. } => return Err(typed_close(info)),
                    Frame::Error { error, .. } => {
                        self.report(SessionEvent::AppError {
                            code: error.code,
                            message: error.message,
                        });
                    }
                    Frame::Ack { .. } => {}
                    Frame::Hello(_) | Frame::Welcome(_) => {
                        return Err(Disconnect::Protocol(
                            "handshake frame on a live connection".into(),
                        ));
                    }
                }
                self.pump(c).await
            }
        }
    }

    /// Confirms everything the peer's cumulative `ack` covers.
    fn confirm_upto(&mut self, c: &mut Conn, ack: u64) -> Result<(), Disconnect> {
        let done = self
            .outbox
            .confirm_upto(ack, Instant::now())
            .map_err(|ack| {
                Disconnect::Protocol(format!(
                    "the server acknowledged {ack}, which was never sent"
                ))
            })?;
        if !done.is_empty() {
            c.progressed = true;
        }
        for d in done {
            self.app.delivered(d);
        }
        Ok(())
    }

    /// Writes what the in-flight window allows, then flushes once.
    async fn pump(&mut self, c: &mut Conn) -> Result<(), Disconnect> {
        let deadline = self.cfg.policy.heartbeat.timeout;
        let mut wrote = false;
        while let Some(out) = self.outbox.next_to_write(Instant::now()) {
            let msg = match c.wire {
                Wire::Echo => echo::encode(out.seq, &out.payload, self.cfg.kind),
                Wire::Squall => {
                    self.inbound.ack_sent();
                    let flags = Flags::new(out.retransmit, self.cfg.kind == MessageKind::Text);
                    Message::Binary(protocol::encode_data(
                        out.seq,
                        self.inbound.ack(),
                        flags,
                        &out.payload,
                    ))
                }
            };
            match timeout(deadline, c.ws.feed(msg)).await {
                Err(_) => return Err(Disconnect::WriteStalled),
                Ok(r) => r.map_err(stream_error)?,
            }
            wrote = true;
            self.app.sent(out.seq);
        }
        if wrote {
            match timeout(deadline, c.ws.flush()).await {
                Err(_) => return Err(Disconnect::WriteStalled),
                Ok(r) => r.map_err(stream_error)?,
            }
        }
        Ok(())
    }

    async fn send_ack(&mut self, c: &mut Conn) -> Result<(), Disconnect> {
        self.inbound.ack_sent();
        let frame = protocol::encode(&Frame::Ack {
            ack: self.inbound.ack(),
        });
        write(
            &mut c.ws,
            Message::Binary(frame),
            self.cfg.policy.heartbeat.timeout,
        )
        .await
    }

    /// A message that fails its checks: counted, and the connection is given up so the
    /// resume repairs the stream.
    fn corrupt(&mut self, why: impl std::fmt::Display) -> Disconnect {
        self.report(SessionEvent::CorruptionDetected);
        Disconnect::Corrupt(why.to_string())
    }
}

/// The peer's typed close, with its retry hint.
fn typed_close(info: protocol::CloseInfo) -> Disconnect {
    Disconnect::Closed {
        code: info.code,
        reason: info.reason,
        retry_after: info.retry_after,
    }
}

async fn write(ws: &mut Ws, msg: Message, deadline: Duration) -> Result<(), Disconnect> {
    match timeout(deadline, ws.send(msg)).await {
        Err(_) => Err(Disconnect::WriteStalled),
        Ok(r) => r.map_err(stream_error),
    }
}
