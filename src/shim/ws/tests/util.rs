//! Helpers for the WebSocket faults' tests: a tungstenite server that echoes data
//! messages and reports what it reads, a tungstenite client through a shim, and units for
//! stage tests. Real sockets on `127.0.0.1:0`, every wait bounded.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::scenario::NetworkFault;
use crate::shim::test_util::{Harness, LIMIT};
use crate::shim::ws::frame::{Frame, OpCode, close_payload};
use crate::shim::ws::message::{Item, Message, Unit};

/// The frame limit of the test server and client (tungstenite's default is 16 MiB; a
/// smaller one keeps `ws_oversize` tests light).
pub(crate) const MAX_FRAME: u64 = 1 << 20;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME as usize))
        .max_message_size(Some(4 * MAX_FRAME as usize))
}

pub(crate) fn text(s: &str) -> WsMessage {
    WsMessage::Text(s.into())
}

/// A one-frame text message read at `at`.
pub(crate) fn text_unit(s: &str, at: Instant) -> Unit {
    let frame = Frame::new(true, 0, OpCode::Text, s.as_bytes(), None);
    Unit::new(
        Item::Message(Message {
            frames: vec![frame],
        }),
        at,
    )
}

pub(crate) fn close_unit(at: Instant) -> Unit {
    let frame = Frame::new(true, 0, OpCode::Close, &close_payload(1000, ""), None);
    Unit::new(Item::Control(frame), at)
}

/// `n` units: messages (some fragmented, some masked), pings, pongs and raw bytes.
pub(crate) fn units(n: usize) -> Vec<Unit> {
    let at = Instant::now();
    (0..n)
        .map(|i| {
            let mask = (i % 2 == 0).then_some([i as u8, 1, 2, 3]);
            let item = match i % 6 {
                0 | 3 => Item::Message(Message {
                    frames: vec![Frame::new(
                        true,
                        0,
                        OpCode::Text,
                        format!("m{i}").as_bytes(),
                        mask,
                    )],
                }),
                1 => Item::Message(Message {
                    frames: vec![
                        Frame::new(false, 0, OpCode::Binary, &[i as u8; 3], mask),
                        Frame::new(true, 0, OpCode::Continuation, &[i as u8; 2], mask),
                    ],
                }),
                2 => Item::Control(Frame::new(true, 0, OpCode::Ping, b"p", mask)),
                4 => Item::Control(Frame::new(true, 0, OpCode::Pong, b"q", mask)),
                _ => Item::Raw {
                    bytes: bytes::Bytes::from_static(b"\x81"),
                    after: crate::shim::ws::split::Boundary::MidFrame,
                },
            };
            Unit::new(item, at)
        })
        .collect()
}

/// What the test server read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen {
    Data(WsMessage),
    Ping,
    Close(Option<u16>),
    Failed(String),
    Ended,
}

pub(crate) struct Server {
    pub addr: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

/// A WebSocket server on port 0 that echoes text and binary messages (and, being
/// tungstenite, answers pings and closes) and reports everything it reads.
pub(crate) async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config())).await
                else {
                    return;
                };
                while let Some(read) = ws.next().await {
                    let seen = match read {
                        Ok(WsMessage::Close(frame)) => Seen::Close(frame.map(|f| f.code.into())),
                        Ok(WsMessage::Ping(_)) => Seen::Ping,
                        Ok(m @ (WsMessage::Text(_) | WsMessage::Binary(_))) => {
                            let _ = ws.send(m.clone()).await;
                            Seen::Data(m)
                        }
                        Ok(_) => continue,
                        Err(e) => {
                            let _ = tx.send(Seen::Failed(format!("{e:?}")));
                            break;
                        }
                    };
                    let _ = tx.send(seen);
                }
                let _ = tx.send(Seen::Ended);
            });
        }
    });
    Server { addr, seen }
}

/// A shim (identifying clients) with `faults` in front of a fresh [`server`], and a
/// client connected through it as client 0.
pub(crate) async fn through_shim(faults: Vec<NetworkFault>) -> (Harness, Client) {
    through_shim_to(faults, server().await.addr).await
}

/// As [`through_shim`], in front of `upstream`.
pub(crate) async fn through_shim_to(
    faults: Vec<NetworkFault>,
    upstream: SocketAddr,
) -> (Harness, Client) {
    through_shim_seeded(faults, upstream, 1).await
}

/// As [`through_shim_to`], with the run seed `seed`.
pub(crate) async fn through_shim_seeded(
    faults: Vec<NetworkFault>,
    upstream: SocketAddr,
    seed: u64,
) -> (Harness, Client) {
    let h = Harness::start(faults, seed, upstream, true).await;
    let client = Client::connect(h.addr(), 0).await;
    (h, client)
}

/// A raw TCP client upgraded to WebSocket by hand as client `index`, for frames no
/// library would send (fragments with a ping inside, broken framing). Frames written on
/// it must be masked.
pub(crate) async fn raw_upgrade(addr: SocketAddr, index: u32) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: squall\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         x-squall-client: {index}\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(LIMIT, s.read(&mut byte))
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(n, 1, "the server hung up during the upgrade");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// What the test server reads next, within `LIMIT`.
pub(crate) async fn next_seen(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(LIMIT, seen.recv())
        .await
        .expect("the server reads something in time")
        .unwrap_or(Seen::Ended)
}

/// What the test client read next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WsProbe {
    Text(String),
    Binary(Vec<u8>),
    Pong(Vec<u8>),
    Ping,
    Close(Option<u16>, String),
    /// tungstenite's error, `{:?}`-formatted (`Utf8(..)`, `Capacity(..)`).
    Failed(String),
    /// The connection ended.
    Ended,
    /// Nothing within the wait.
    Silent,
}

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `addr` as client `index` (`x-squall-client`).
    pub async fn connect(addr: SocketAddr, index: u32) -> Self {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("x-squall-client", index.to_string().parse().unwrap());
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config()), true);
        let (ws, _) = tokio::time::timeout(LIMIT, connect)
            .await
            .expect("handshake in time")
            .unwrap();
        Self { ws }
    }

    pub async fn send(&mut self, m: WsMessage) {
        tokio::time::timeout(LIMIT, self.ws.send(m))
            .await
            .expect("sent in time")
            .unwrap();
    }

    /// The next thing read, waiting up to `LIMIT`.
    pub async fn next(&mut self) -> WsProbe {
        self.next_for(LIMIT).await
    }

    /// Sends a ping and returns the next thing read.
    pub async fn ping(&mut self, payload: &[u8]) -> WsProbe {
        self.send(WsMessage::Ping(payload.to_vec().into())).await;
        self.next().await
    }

    /// The next thing read within `wait`.
    pub async fn next_for(&mut self, wait: Duration) -> WsProbe {
        let read = match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => return WsProbe::Silent,
            Ok(None) => return WsProbe::Ended,
            Ok(Some(read)) => read,
        };
        match read {
            Ok(WsMessage::Text(t)) => WsProbe::Text(t.to_string()),
            Ok(WsMessage::Binary(b)) => WsProbe::Binary(b.to_vec()),
            Ok(WsMessage::Pong(p)) => WsProbe::Pong(p.to_vec()),
            Ok(WsMessage::Ping(_)) => WsProbe::Ping,
            Ok(WsMessage::Close(frame)) => match frame {
                Some(f) => WsProbe::Close(Some(f.code.into()), f.reason.to_string()),
                None => WsProbe::Close(None, String::new()),
            },
            Ok(WsMessage::Frame(_)) => unreachable!("tungstenite never reads a raw frame"),
            Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed) => WsProbe::Ended,
            Err(e) => WsProbe::Failed(format!("{e:?}")),
        }
    }
}
