//! One client connection of the built-in server: the WebSocket handshake, which picks
//! squall's protocol when the client offers `squall.v1`, and otherwise a plain echo so
//! any WebSocket client (a browser, websocat) can use the server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::ServerStats;
use super::control::{AcceptClose, Command, Control};
use super::ledger::DeliveryLedger;
use super::sessions::SessionTable;
use super::squall;
use crate::metrics::{Counter, Metrics, Tick};
use crate::protocol;

/// The handshake must finish within this, so a client that never sends its request
/// cannot hold a task and a descriptor forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The goodbye on shutdown is best effort: a dead peer must not hold the run open.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Small buffers: thousands of mostly idle connections, each message small. tungstenite's
/// default 128 KiB read buffer per connection would dominate memory. One frame and one
/// message are each limited to `limit` (the largest message a client of the run sends,
/// plus the envelope): tungstenite reserves a frame's declared length as soon as its
/// header arrives, so the limit is what a client can make the server hold.
fn ws_config(limit: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// The close code that answers a client which broke the stream (RFC 6455 §7.4.1): 1009
/// for a frame or message over the limit, 1007 for a text message that is not UTF-8,
/// 1002 for any other breach of the protocol. `None` when the connection just ended (EOF,
/// reset): there is no one left to tell.
pub(super) fn close_for(e: &WsError) -> Option<(u16, String)> {
    let (code, mut reason) = match e {
        WsError::Capacity(c) => (1009, c.to_string()),
        WsError::Utf8(_) => (1007, "invalid UTF-8 in a text message".into()),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return None,
        WsError::Protocol(p) => (1002, p.to_string()),
        _ => return None,
    };
    // A close frame's reason must fit in 123 bytes (a control frame carries 125).
    if reason.len() > 120 {
        let mut end = 120;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    Some((code, reason))
}

/// After the close that refuses a broken stream: shut the sending side (FIN), then read
/// and drop what the client still sends until it closes, for at most [`GOODBYE_TIMEOUT`].
/// Closing with unread bytes would answer with a reset, and a reset makes the client's
/// kernel discard the close frame it has not read yet.
pub(super) async fn drain(tcp: &mut TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    // On the heap: an array here would sit in every connection's future, used or not.
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

pub(super) struct Connection {
    pub id: u64,
    pub stats: Arc<ServerStats>,
    pub metrics: Option<Metrics>,
    pub sessions: Arc<SessionTable>,
    pub ledger: Arc<DeliveryLedger>,
    pub control: Arc<Control>,
    pub replay_buffer: usize,
    /// The largest frame or message read from the client.
    pub read_limit: usize,
    /// Stream mode: a push of this size every interval.
    pub push: Option<(Duration, usize)>,
    pub token: CancellationToken,
}

impl Connection {
    pub async fn serve(self, stream: TcpStream) {
        let mut speaks_squall = false;
        let refusal = self.control.check_handshake();
        // tungstenite's callback signature fixes the large error type.
        #[allow(clippy::result_large_err)]
        let negotiate = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            if let Some(r) = &refusal {
                let mut err = ErrorResponse::new(Some(format!("refused ({})", r.status)));
                *err.status_mut() =
                    StatusCode::from_u16(r.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                if let Some(after) = r.retry_after {
                    let secs = after.as_secs_f64().ceil() as u64;
                    err.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs.max(1)));
                }
                return Err(err);
            }
            let offered = req.headers().get_all("sec-websocket-protocol");
            if offered
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim() == protocol::SUBPROTOCOL)
            {
                resp.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(protocol::SUBPROTOCOL),
                );
                speaks_squall = true;
            }
            Ok(resp)
        };
        let handshake = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            negotiate,
            Some(ws_config(self.read_limit)),
        );
        let ws = tokio::select! {
            _ = self.token.cancelled() => return,
            done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => match done {
                Ok(Ok(ws)) => ws,
                _ => {
                    self.stats.failed_handshakes.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.record(0, |r| {
                r.count(Counter::ServerHandshakes, 1);
                r.tick(Tick::ServerHandshakes, 1);
            });
        }
        if let Some(close) = self.control.check_accept_close(self.id) {
            return accept_close(ws, close).await;
        }
        let commands = self.control.register(self.id);
        if speaks_squall {
            let cx = squall::Context {
                control: self.control.clone(),
                commands,
                sessions: self.sessions.clone(),
                ledger: self.ledger.clone(),
                replay_buffer: self.replay_buffer,
                push: self.push,
                token: self.token.clone(),
                conn_id: self.id,
                metrics: self.metrics.clone(),
            };
            squall::serve(ws, cx).await;
        } else {
            self.plain_echo(ws, commands).await;
        }
        self.control.unregister(self.id);
    }

    /// Any WebSocket client that does not speak squall's protocol gets a plain echo.
    async fn plain_echo(
        &self,
        mut ws: tokio_tungstenite::WebSocketStream<TcpStream>,
        mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
    ) {
        let mut stalled = self.control.stalled();
        loop {
            let reading = !*stalled.borrow();
            let msg = tokio::select! {
                _ = self.token.cancelled() => {
                    let bye = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, ws.close(Some(bye))).await;
                    return;
                }
                Some(cmd) = commands.recv() => {
                    if let Command::Close { code, reason, .. } = cmd {
                        let bye = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, ws.close(Some(bye))).await;
                        return;
                    }
                    // A plain client has no channel for application errors.
                    continue;
                }
                _ = stalled.changed() => continue,
                msg = ws.next(), if reading => msg,
            };
            let reply = match msg {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .bytes_received
                        .fetch_add(m.len() as u64, Ordering::Relaxed);
                    m
                }
                // tungstenite answers pings and closes by itself; nothing to echo.
                Some(Ok(_)) => continue,
                // Garbage, an oversized frame, invalid UTF-8: say why, then drop it.
                Some(Err(e)) => {
                    if let Some((code, reason)) = close_for(&e) {
                        let bye = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        // Bounded: the peer may be the very one that stopped reading.
                        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, ws.close(Some(bye))).await;
                        drain(ws.get_mut()).await;
                    }
                    return;
                }
                // The client's close or a reset: this connection is over.
                None => return,
            };
            if ws.send(reply).await.is_err() {
                return;
            }
        }
    }
}

/// `accept_close`: the upgrade went through, and the connection is closed before it
/// serves anything, as a gateway at capacity does. The close frame is the only thing
/// sent (the gateway does not speak squall's protocol, so no typed close); the client's
/// answer is awaited, bounded, so the socket is not dropped with its HELLO unread (which
/// would reset the connection and lose the close frame on the way).
async fn accept_close(mut ws: tokio_tungstenite::WebSocketStream<TcpStream>, close: AcceptClose) {
    let bye = CloseFrame {
        code: CloseCode::from(close.code),
        reason: close.reason.into(),
    };
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
        if ws.close(Some(bye)).await.is_ok() {
            // Bounded by the timeout: read until the client's close (or its end).
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
