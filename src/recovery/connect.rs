//! One connection attempt: TCP connect within `connect_timeout`, then the WebSocket
//! handshake within `handshake_timeout`, offering squall's subprotocol when the target
//! speaks it. Failures come back as [`Disconnect`] values, never as errors.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, error::ProtocolError};
use tokio_util::sync::CancellationToken;

use super::{Disconnect, SessionConfig};
use crate::exhaustion::Exhausted;
use crate::protocol;
use crate::scenario::Protocol;

/// Any byte stream a session can run over: a TCP connection, or an in-memory pipe in
/// tests (so the engine's timing can be tested on tokio's paused clock).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection's byte stream, boxed so real and in-memory transports share one engine.
pub type BoxedIo = Box<dyn Io>;

/// Opens the byte stream of each attempt. The default dials TCP; tests and embedders can
/// supply their own (an in-memory pipe, a Unix socket, a pre-configured socket).
pub trait Dialer: Send + Sync + std::fmt::Debug {
    /// Opens a byte stream for one attempt at `host:port` (from the URL).
    fn dial<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send + 'a>>;
}

/// Plain TCP with Nagle off: messages are small and latency is what is measured.
#[derive(Debug, Default)]
pub struct TcpDialer {
    /// Connect here instead of the URL's host and port — a proxy in between (squall's
    /// shim) — while the URL still names the server for TLS and the `Host` header.
    pub via: Option<std::net::SocketAddr>,
}

impl Dialer for TcpDialer {
    fn dial<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedIo>> + Send + 'a>> {
        Box::pin(async move {
            let tcp = match self.via {
                Some(addr) => crate::net::connect(addr).await?,
                None => TcpStream::connect((host, port)).await?,
            };
            let _ = tcp.set_nodelay(true);
            Ok(Box::new(tcp) as BoxedIo)
        })
    }
}

pub(super) type Ws = WebSocketStream<BoxedIo>;

/// What the handshake settled.
pub(super) enum Wire {
    /// The server selected `squall.v1`: sequence numbers, acks and resume.
    Squall,
    /// A plain echo server: confirmation by echo.
    Echo,
}

/// Connects once. `Err(None)` when cancelled.
pub(super) async fn connect(
    cfg: &SessionConfig,
    token: &CancellationToken,
) -> Result<(Ws, Wire), Option<Disconnect>> {
    let bad = |what: String| Some(Disconnect::ConnectFailed(what));
    let mut request = cfg
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| bad(format!("bad url: {e}")))?;
    for (k, v) in &cfg.headers {
        let name: HeaderName = k
            .parse()
            .map_err(|_| bad(format!("bad header name {k:?}")))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| bad(format!("bad value for header {k}")))?;
        request.headers_mut().append(name, value);
    }
    let mut offered: Vec<&str> = cfg.subprotocols.iter().map(String::as_str).collect();
    if cfg.protocol == Protocol::Squall {
        offered.insert(0, protocol::SUBPROTOCOL);
    }
    if !offered.is_empty() {
        let list = HeaderValue::from_str(&offered.join(", "))
            .map_err(|_| bad("bad subprotocol list".into()))?;
        request.headers_mut().insert("sec-websocket-protocol", list);
    }
    let uri = request.uri();
    let secure = uri.scheme_str() == Some("wss");
    let host = uri
        .host()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });

    let dialer: &dyn Dialer = cfg.dialer.as_deref().unwrap_or(&TcpDialer { via: None });
    let dial = timeout(cfg.policy.connect_timeout, dialer.dial(&host, port));
    let io = tokio::select! {
        _ = token.cancelled() => return Err(None),
        r = dial => match r {
            Err(_) => return Err(Some(Disconnect::ConnectTimeout)),
            Ok(Err(e)) => {
                // Out of descriptors or ports is the harness's limit, not the server's
                // failure: counted process-wide, so a run can stop and say so.
                let why = match Exhausted::note(&e) {
                    Some(limit) => limit.short().to_string(),
                    None => e.kind().to_string(),
                };
                return Err(Some(Disconnect::ConnectFailed(why)));
            }
            Ok(Ok(io)) => io,
        },
    };
    let tls_and_upgrade = async {
        let io = if secure {
            tls(cfg, &host, io).await?
        } else {
            io
        };
        super::upgrade::upgrade(request, &offered, io, ws_config(cfg.max_message_bytes)).await
    };
    let super::upgrade::Upgraded { ws, subprotocol } = tokio::select! {
        _ = token.cancelled() => return Err(None),
        r = timeout(cfg.policy.handshake_timeout, tls_and_upgrade) => match r {
            Err(_) => return Err(Some(Disconnect::HandshakeTimeout)),
            Ok(Err(e)) => return Err(Some(e)),
            Ok(Ok(done)) => done,
        },
    };
    let wire = match (cfg.protocol, subprotocol.as_deref()) {
        (Protocol::Squall, Some(p)) if p.trim() == protocol::SUBPROTOCOL => Wire::Squall,
        (Protocol::Squall, _) => {
            return Err(Some(Disconnect::Protocol(format!(
                "the server did not select the `{}` subprotocol: it does not speak squall's protocol \
                 (use `protocol: echo` for a plain echo server)",
                protocol::SUBPROTOCOL
            ))));
        }
        (Protocol::Echo, _) => Wire::Echo,
    };
    Ok((ws, wire))
}

/// Wraps `io` in TLS for `wss://`, verifying the server's certificate for `host`.
async fn tls(cfg: &SessionConfig, host: &str, io: BoxedIo) -> Result<BoxedIo, Disconnect> {
    let config = cfg.tls.clone().unwrap_or_else(super::tls::default_config);
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| Disconnect::ConnectFailed(format!("TLS server name {host:?}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| Disconnect::Tls(e.to_string()))?;
    Ok(Box::new(stream))
}

/// Client-side buffers sized for thousands of small-message connections: tungstenite's
/// default 128 KiB read buffer per connection would dominate memory. The read buffer fits
/// the largest message expected (`max_message`), between 1 KiB and 8 KiB: a larger frame
/// still arrives whole (the buffer grows to its declared length), it only takes more
/// reads. One message and one frame are each limited to the read limit: tungstenite
/// reserves a frame's declared length when its header arrives and appends fragments until
/// the message ends, so that limit is what a server can make this client hold.
fn ws_config(max_message: u64) -> WebSocketConfig {
    let limit = protocol::read_limit(max_message);
    // The envelope and the largest WebSocket frame header (14 bytes).
    let read_buffer = usize::try_from(max_message)
        .unwrap_or(usize::MAX)
        .saturating_add(protocol::HEADER_LEN + protocol::TRAILER_LEN + 14)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .clamp(1024, 8 * 1024);
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// Maps a WebSocket error on an open (or opening) connection to a disconnect reason.
pub(super) fn stream_error(e: WsError) -> Disconnect {
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
