//! The client's HTTP upgrade (RFC 6455 §4.1), done here rather than by tungstenite's
//! handshake machine. That machine reads the response through a 4 KiB chunk buffer and
//! hands the buffer on to the connection as its read buffer, so every connection would
//! hold 4 KiB for its whole life whatever `read_buffer_size` says — the largest single
//! part of an idle client. Here the response head is read into a buffer dropped at the
//! end, and the connection starts with just the configured read buffer (and any bytes
//! the server sent after its head, which are kept).
//!
//! The request is tungstenite's own (`generate_request`), and the response is checked as
//! tungstenite checks it: status 101, `Upgrade: websocket`, `Connection: Upgrade`, the
//! accept key, and a subprotocol only from those offered.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::handshake::client::{Request, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::Disconnect;
use super::connect::{BoxedIo, Ws, stream_error};

/// The most a server's response head may take: past it the server is refused, not
/// buffered (a hostile or broken server could otherwise stream headers forever).
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// The most header fields a response head may have.
const MAX_HEADERS: usize = 64;

/// What the server's 101 response settled.
pub(super) struct Upgraded {
    pub ws: Ws,
    /// The subprotocol the server selected, if any.
    pub subprotocol: Option<String>,
}

/// Sends the upgrade request on `io` and reads the answer. A refusal (any status but
/// 101) comes back as [`Disconnect::HandshakeRejected`] with its `Retry-After`.
/// `offered` are the subprotocols the request's `Sec-WebSocket-Protocol` lists.
pub(super) async fn upgrade(
    request: Request,
    offered: &[&str],
    mut io: BoxedIo,
    config: WebSocketConfig,
) -> Result<Upgraded, Disconnect> {
    let (bytes, key) =
        generate_request(request).map_err(|e| Disconnect::ConnectFailed(e.to_string()))?;
    io.write_all(&bytes).await.map_err(io_error)?;
    io.flush().await.map_err(io_error)?;

    let mut buf = Vec::with_capacity(512);
    let (len, head) = loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD {
                return Err(Disconnect::Protocol(format!(
                    "the server's HTTP response head is over {} KiB",
                    MAX_HEAD / 1024
                )));
            }
            buf.reserve((buf.len()).min(MAX_HEAD - buf.len()));
        }
        if io.read_buf(&mut buf).await.map_err(io_error)? == 0 {
            return Err(Disconnect::Eof);
        }
        if let Some(parsed) = parse(&buf)? {
            break parsed;
        }
    };
    if head.status != 101 {
        return Err(Disconnect::HandshakeRejected {
            status: head.status,
            retry_after: head.retry_after,
        });
    }
    verify(&head, &key, offered)?;
    // Whatever followed the head is the connection's first bytes; copied so the read
    // buffer starts at its configured size, not at this buffer's.
    let tail = buf[len..].to_vec();
    drop(buf);
    let ws = WebSocketStream::from_partially_read(io, tail, Role::Client, Some(config)).await;
    Ok(Upgraded {
        ws,
        subprotocol: head.subprotocol,
    })
}

/// The fields of a response head the client acts on.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    retry_after: Option<Duration>,
    upgrade: Option<String>,
    connection: Option<String>,
    accept: Option<String>,
    subprotocol: Option<String>,
}

/// The response head in `buf` and its length, or `None` when more bytes are needed.
fn parse(buf: &[u8]) -> Result<Option<(usize, Head)>, Disconnect> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(Disconnect::Protocol(format!(
                "bad HTTP response to the upgrade: {e}"
            )));
        }
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        ..Head::default()
    };
    for h in response.headers.iter() {
        let value = || Some(String::from_utf8_lossy(h.value).trim().to_string());
        let name = h.name;
        if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
        } else if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade = value();
        } else if name.eq_ignore_ascii_case("connection") {
            head.connection = value();
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            head.accept = value();
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            head.subprotocol = value();
        }
    }
    Ok(Some((len, head)))
}

/// RFC 6455 §4.1's checks of a 101 response, with tungstenite's wording.
fn verify(head: &Head, key: &str, offered: &[&str]) -> Result<(), Disconnect> {
    let fail = |e: ProtocolError| Err(Disconnect::Protocol(e.to_string()));
    if !head
        .upgrade
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        return fail(ProtocolError::MissingUpgradeWebSocketHeader);
    }
    if !head.connection.as_deref().is_some_and(|c| {
        c.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return fail(ProtocolError::MissingConnectionUpgradeHeader);
    }
    if head.accept.as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return fail(ProtocolError::SecWebSocketAcceptKeyMismatch);
    }
    match (&head.subprotocol, offered.is_empty()) {
        (None, false) => fail(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        )),
        (Some(_), true) => fail(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::ServerSentSubProtocolNoneRequested,
        )),
        (Some(p), false) if !offered.contains(&p.as_str()) => fail(
            ProtocolError::SecWebSocketSubProtocolError(SubProtocolError::InvalidSubProtocol),
        ),
        _ => Ok(()),
    }
}

/// A failed read or write during the upgrade, classified as on an open connection.
fn io_error(e: std::io::Error) -> Disconnect {
    stream_error(WsError::Io(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn head(extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
    }

    fn check(text: &str, offered: &[&str]) -> Result<(), Disconnect> {
        let (_, h) = parse(text.as_bytes())?.expect("complete");
        verify(&h, KEY, offered)
    }

    #[test]
    fn the_rfc_example_is_accepted() {
        assert!(check(&head(""), &[]).is_ok());
        assert!(
            check(
                &head("Sec-WebSocket-Protocol: squall.v1\r\n"),
                &["squall.v1"]
            )
            .is_ok()
        );
        // Header names and the Connection token are case-insensitive; a list is fine.
        let mixed = head("").replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        assert!(check(&mixed, &[]).is_ok());
    }

    #[test]
    fn a_wrong_accept_key_or_missing_upgrade_is_refused() {
        let bad_key = head("").replace(ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(
            matches!(check(&bad_key, &[]), Err(Disconnect::Protocol(m)) if m.contains("Accept"))
        );
        let no_upgrade = head("").replace("Upgrade: websocket\r\n", "");
        assert!(matches!(
            check(&no_upgrade, &[]),
            Err(Disconnect::Protocol(_))
        ));
    }

    #[test]
    fn subprotocols_must_be_one_offered() {
        assert!(check(&head(""), &["squall.v1"]).is_err());
        assert!(check(&head("Sec-WebSocket-Protocol: chat\r\n"), &[]).is_err());
        assert!(check(&head("Sec-WebSocket-Protocol: chat\r\n"), &["squall.v1"]).is_err());
    }

    #[test]
    fn a_partial_head_asks_for_more_and_retry_after_is_read() {
        let text = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n";
        assert!(parse(text.as_bytes()).unwrap().is_none());
        let (len, h) = parse(format!("{text}\r\nbody").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(len, text.len() + 2);
        assert_eq!(h.status, 503);
        assert_eq!(h.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00garbage\r\n\r\n"),
            Err(Disconnect::Protocol(_))
        ));
    }

    /// The point of this module: after the upgrade the connection's read buffer is the
    /// configured size, and bytes the server sent right after its head are not lost.
    #[tokio::test]
    async fn bytes_after_the_head_reach_the_connection() {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let (client, mut server) = tokio::io::duplex(4096);
        let serve = tokio::spawn(async move {
            let mut req = vec![0u8; 2048];
            let n = server.read(&mut req).await.unwrap();
            let text = String::from_utf8_lossy(&req[..n]).to_string();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_string();
            let mut answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            )
            .into_bytes();
            // An unmasked text frame "hi" in the same write as the head.
            answer.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
            server.write_all(&answer).await.unwrap();
            server
        });
        let request = "ws://127.0.0.1:1/ws".into_client_request().unwrap();
        let config = WebSocketConfig::default().read_buffer_size(1024);
        let mut up = upgrade(request, &[], Box::new(client), config)
            .await
            .unwrap();
        assert!(up.subprotocol.is_none());
        let first = up.ws.next().await.unwrap().unwrap();
        assert_eq!(first, Message::text("hi"));
        drop(serve.await.unwrap());
    }
}
