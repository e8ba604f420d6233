//! One client connection of the built-in server: handshake, then echo until either side
//! closes or the run ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::ServerStats;
use crate::metrics::{Counter, Metrics, Tick};

/// The handshake must finish within this, so a client that never sends its request
/// cannot hold a task and a descriptor forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The goodbye on shutdown is best effort: a dead peer must not hold the run open.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// Small buffers: thousands of mostly idle connections, each message small. tungstenite's
/// default 128 KiB read buffer per connection would dominate memory.
pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20))
}

pub(super) struct Connection {
    pub stats: Arc<ServerStats>,
    pub metrics: Option<Metrics>,
    pub token: CancellationToken,
}

impl Connection {
    pub async fn serve(self, stream: TcpStream) {
        let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config()));
        let mut ws = tokio::select! {
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
        loop {
            let msg = tokio::select! {
                _ = self.token.cancelled() => {
                    let bye = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, ws.close(Some(bye))).await;
                    return;
                }
                msg = ws.next() => msg,
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
