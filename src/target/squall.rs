//! One `squall.v1` connection of the built-in server (docs/protocol.md): HELLO/WELCOME,
//! replay of what the client has not acknowledged, then DATA both ways with cumulative
//! acks and receiver-side dedup. In echo mode every message received goes back to the
//! client as a message of the server's own sequence.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::control::{Command, Control};
use super::ledger::DeliveryLedger;
use super::sessions::{ServerSession, SessionTable, Shared};
use crate::metrics::{Counter, Metrics};
use crate::protocol::{
    self, AppError, CloseClass, CloseInfo, Flags, Frame, Receipt, Welcome, close_code,
};

/// The client's HELLO must arrive within this.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounded goodbyes: a dead peer must not hold the server.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a squall connection needs from its server.
pub(super) struct Context {
    pub sessions: Arc<SessionTable>,
    pub ledger: Arc<DeliveryLedger>,
    /// Unacknowledged messages kept per session, at most.
    pub replay_buffer: usize,
    /// The server is stopping (run over, or a restart).
    pub token: CancellationToken,
    pub conn_id: u64,
    /// Where the server counts the corruption it detects.
    pub metrics: Option<Metrics>,
    pub control: Arc<Control>,
    /// What server faults ask of this connection.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Stream mode: push a message of this size every interval; otherwise echo.
    pub push: Option<(Duration, usize)>,
}

type Ws = WebSocketStream<TcpStream>;

/// Why the connection stopped, when it is the server's decision.
enum Stop {
    /// The peer went away or broke the stream; nothing more to say.
    Gone,
    /// Say why with a typed close, then close.
    Close(CloseInfo),
    /// The client broke the WebSocket stream: say why, then discard what it still sends
    /// until it goes (bounded), so the close is read rather than lost to a reset.
    Refuse(CloseInfo),
}

pub(super) async fn serve(mut ws: Ws, mut cx: Context) {
    let conn = cx.token.child_token();
    let hello = match read_hello(&mut ws).await {
        Ok(h) => h,
        Err(stop) => return finish(&mut ws, stop).await,
    };
    let (session, resumed) = cx.sessions.attach(
        hello.session.as_str(),
        hello.resume,
        (cx.conn_id, conn.clone()),
        Instant::now(),
    );
    cx.control.bind_session(cx.conn_id, hello.session.as_str());
    let stop = run_session(&mut ws, &mut cx, &conn, &hello, &session, resumed).await;
    SessionTable::detach(&session, cx.conn_id, Instant::now());
    finish(&mut ws, stop).await;
}

async fn read_hello(ws: &mut Ws) -> Result<protocol::Hello, Stop> {
    loop {
        let msg = match timeout(HELLO_TIMEOUT, ws.next()).await {
            Err(_) => return Err(close(1008, CloseClass::Fatal, "no HELLO")),
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(broken(&e)),
            Ok(None) => return Err(Stop::Gone),
        };
        match msg {
            Message::Binary(b) => {
                return match protocol::decode(&b) {
                    Ok(Frame::Hello(h)) => Ok(h),
                    Ok(other) => Err(close(
                        1002,
                        CloseClass::Fatal,
                        &format!("expected HELLO, got {}", other.frame_type()),
                    )),
                    Err(e) => Err(close(
                        close_code::CORRUPT,
                        CloseClass::Transient,
                        &format!("bad frame: {e}"),
                    )),
                };
            }
            Message::Text(_) => {
                return Err(close(
                    1003,
                    CloseClass::Fatal,
                    "squall.v1 frames are binary",
                ));
            }
            Message::Close(_) => return Err(Stop::Gone),
            _ => {}
        }
    }
}

async fn run_session(
    ws: &mut Ws,
    cx: &mut Context,
    conn: &CancellationToken,
    hello: &protocol::Hello,
    session: &Shared,
    resumed: bool,
) -> Stop {
    // WELCOME, then everything the client has not acknowledged, in order.
    let out = {
        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *s;
        if resumed {
            match protocol::apply_hello(hello, &mut s.outbound, &mut s.inbound) {
                Ok(released) => cx.ledger.acked(released.len() as u64),
                Err(e) => return close(1002, CloseClass::Fatal, &format!("bad HELLO: {e}")),
            }
        }
        let welcome = Welcome {
            session: hello.session.clone(),
            resumed,
            ack: s.inbound.ack(),
            next_seq: s.outbound.next_seq(),
            window: cx.sessions.window(),
            max_in_flight: None,
        };
        let mut out = vec![protocol::encode(&Frame::Welcome(welcome))];
        transmit(s, cx.replay_buffer, &mut out);
        out
    };
    if send_all(ws, out).await.is_err() {
        return Stop::Gone;
    }
    let mut stalled = cx.control.stalled();
    let period = cx
        .push
        .map_or(Duration::from_secs(3600), |(every, _)| every);
    let mut pushes = tokio::time::interval_at(Instant::now() + period, period);
    pushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A stalled server stops reading: backpressure builds in the client's buffers.
        let reading = !*stalled.borrow();
        let msg = tokio::select! {
            _ = stalled.changed() => continue,
            _ = pushes.tick(), if cx.push.is_some() && reading => {
                let frames = push(cx, session);
                if !frames.is_empty() && send_all(ws, frames).await.is_err() {
                    return Stop::Gone;
                }
                continue;
            }
            Some(cmd) = cx.commands.recv() => match cmd {
                Command::Close { code, reason, retry_after } => {
                    return Stop::Close(CloseInfo { code, class: CloseClass::from_close_code(code), retry_after, reason });
                }
                Command::AppError { code, message } => {
                    let ack = session.lock().unwrap_or_else(|e| e.into_inner()).inbound.ack();
                    let frame = protocol::encode(&Frame::Error { ack, error: AppError { code, message } });
                    if ws.send(Message::Binary(frame)).await.is_err() {
                        return Stop::Gone;
                    }
                    continue;
                }
            },
            _ = conn.cancelled() => {
                return if cx.token.is_cancelled() {
                    close(1001, CloseClass::Restart, "server going away")
                } else {
                    close(close_code::SUPERSEDED, CloseClass::Transient, "session taken over by another connection")
                };
            }
            msg = ws.next(), if reading => msg,
        };
        let bytes = match msg {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Text(_))) => {
                return close(1003, CloseClass::Fatal, "squall.v1 frames are binary");
            }
            Some(Ok(Message::Close(_))) | None => return Stop::Gone,
            Some(Err(e)) => return broken(&e),
            Some(Ok(_)) => continue,
        };
        let frame = match protocol::decode(&bytes) {
            Ok(f) => f,
            // Corrupted on the way: drop the connection, the session survives, the client
            // resumes and resends.
            Err(e) => {
                if e.is_corruption()
                    && let Some(m) = &cx.metrics
                {
                    m.record(0, |r| r.count(Counter::CorruptionDetected, 1));
                }
                return close(
                    close_code::CORRUPT,
                    CloseClass::Transient,
                    &format!("bad frame: {e}"),
                );
            }
        };
        let replies = match on_frame(cx, session, hello.session.as_str(), frame) {
            Ok(replies) => replies,
            Err(stop) => return stop,
        };
        if !replies.is_empty() && send_all(ws, replies).await.is_err() {
            return Stop::Gone;
        }
    }
}

/// Applies one frame to the session; returns the frames to answer with.
fn on_frame(cx: &Context, session: &Shared, id: &str, frame: Frame) -> Result<Vec<Bytes>, Stop> {
    let mut guard = session.lock().unwrap_or_else(|e| e.into_inner());
    let s = &mut *guard;
    match s.outbound.acked(frame.ack()) {
        Ok(released) => cx.ledger.acked(released.count() as u64),
        Err(e) => return Err(close(1002, CloseClass::Fatal, &format!("bad ack: {e}"))),
    }
    let mut out = Vec::new();
    match frame {
        Frame::Data { seq, payload, .. } => match s.inbound.receive(seq, Instant::now()) {
            Receipt::Deliver => {
                cx.ledger.deliver(id, &payload);
                if s.outbound.len() >= cx.replay_buffer {
                    // The client is not acknowledging: keep the session, drop the link;
                    // the resume replays what it has not had.
                    return Err(close(1013, CloseClass::Overload, "replay buffer full"));
                }
                // Stream mode takes the message in; echo mode sends it back.
                if cx.push.is_none() {
                    s.outbound.push(payload);
                    cx.ledger.sent();
                }
                transmit(s, cx.replay_buffer, &mut out);
            }
            // Already had it (a retransmit that crossed our ack): say so again.
            Receipt::Duplicate => {
                s.inbound.ack_sent();
                out.push(protocol::encode(&Frame::Ack {
                    ack: s.inbound.ack(),
                }));
            }
            Receipt::Gap { expected } => {
                return Err(close(
                    close_code::GAP,
                    CloseClass::Transient,
                    &format!("message {seq} arrived where {expected} was expected"),
                ));
            }
        },
        Frame::Ack { .. } => transmit(s, cx.replay_buffer, &mut out),
        Frame::Close { .. } => return Err(Stop::Gone),
        Frame::Hello(_) | Frame::Welcome(_) | Frame::Error { .. } => {
            return Err(close(
                1002,
                CloseClass::Fatal,
                "unexpected frame on a live connection",
            ));
        }
    }
    Ok(out)
}

/// Stream mode: the session's next message (its number, then filler), unless the
/// client is so far behind that the replay buffer is full — then the stream waits.
fn push(cx: &Context, session: &Shared) -> Vec<Bytes> {
    let Some((_, size)) = cx.push else {
        return Vec::new();
    };
    let mut guard = session.lock().unwrap_or_else(|e| e.into_inner());
    let s = &mut *guard;
    let mut out = Vec::new();
    if s.outbound.len() < cx.replay_buffer {
        s.pushed += 1;
        let mut payload = format!("{:016x}", s.pushed).into_bytes();
        payload.resize(size.max(payload.len()), b'.');
        s.outbound.push(Bytes::from(payload));
        cx.ledger.sent();
    }
    transmit(s, cx.replay_buffer, &mut out);
    out
}

/// Encodes what the send window lets go now: retransmits first, then new messages.
fn transmit(s: &mut ServerSession, window: usize, out: &mut Vec<Bytes>) {
    let ack = s.inbound.ack();
    let mut any = false;
    while let Some(t) = s.outbound.next_transmit(window as u32) {
        out.push(protocol::encode_data(
            t.seq,
            ack,
            Flags::new(t.retransmit, false),
            t.item,
        ));
        any = true;
    }
    if any {
        s.inbound.ack_sent();
    }
}

async fn send_all(ws: &mut Ws, frames: Vec<Bytes>) -> Result<(), ()> {
    for f in frames {
        ws.feed(Message::Binary(f)).await.map_err(|_| ())?;
    }
    ws.flush().await.map_err(|_| ())
}

/// A client that broke the WebSocket stream is told why (1002, 1007, 1009); one whose
/// connection merely ended is gone.
fn broken(e: &tokio_tungstenite::tungstenite::Error) -> Stop {
    match super::connection::close_for(e) {
        Some((code, reason)) => Stop::Refuse(CloseInfo {
            code,
            class: CloseClass::from_close_code(code),
            retry_after: None,
            reason,
        }),
        None => Stop::Gone,
    }
}

fn close(code: u16, class: CloseClass, reason: &str) -> Stop {
    Stop::Close(CloseInfo {
        code,
        class,
        retry_after: None,
        reason: reason.to_string(),
    })
}

/// Sends the typed close and the WebSocket close, bounded in time; after a refusal, drains.
async fn finish(ws: &mut Ws, stop: Stop) {
    let (info, refused) = match stop {
        Stop::Gone => return,
        Stop::Close(info) => (info, false),
        Stop::Refuse(info) => (info, true),
    };
    let code = info.code;
    let reason = info.reason.clone();
    let typed = protocol::encode(&Frame::Close { ack: 0, info });
    let _ = timeout(GOODBYE_TIMEOUT, async {
        let _ = ws.send(Message::Binary(typed)).await;
        let bye = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = ws.close(Some(bye)).await;
    })
    .await;
    if refused {
        super::connection::drain(ws.get_mut()).await;
    }
}
