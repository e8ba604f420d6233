//! One client connection of the built-in server: the WebSocket handshake, which picks
//! squall's protocol when the client offers `squall.v1`, and otherwise a plain echo so
//! any WebSocket client (a browser, websocat) can use the server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
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
/// default 128 KiB read buffer per connection would dominate memory.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20))
}

pub(super) struct Connection {
    pub id: u64,
    pub stats: Arc<ServerStats>,
    pub metrics: Option<Metrics>,
    pub sessions: Arc<SessionTable>,
    pub ledger: Arc<DeliveryLedger>,
    pub control: Arc<Control>,
    pub replay_buffer: usize,
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
        let handshake =
            tokio_tungstenite::accept_hdr_async_with_config(stream, negotiate, Some(ws_config()));
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
                // A reset, garbage, or the client's close: this connection is over.
                Some(Err(_)) | None => return,
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
