//! Learning which virtual client a connection belongs to from its HTTP upgrade head
//! (`x-squall-client: <n>`), so faults choose clients rather than accept order.
//!
//! Bounded: at most [`MAX_HEAD`] bytes and one deadline. Whatever was read is returned to
//! be forwarded unchanged; anything that is not an HTTP request (TLS, another protocol) is
//! recognised from its first bytes and given up on at once.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Longest head read; a WebSocket upgrade request is a few hundred bytes.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its head before the shim forwards what it has.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

const HEADER: &str = "x-squall-client";

/// What was read from the client before forwarding started.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Head {
    /// Every byte read, to be forwarded first.
    pub bytes: Vec<u8>,
    /// The client index from the `x-squall-client` header.
    pub client: Option<u32>,
}

/// Reads until the end of an HTTP head, `MAX_HEAD` bytes, end of stream, `timeout`, or
/// bytes that cannot be HTTP, whichever comes first.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    timeout: Duration,
) -> std::io::Result<Head> {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::with_capacity(1024);
    loop {
        let mut limited = (&mut *r).take((MAX_HEAD - bytes.len()) as u64);
        let n = match tokio::time::timeout_at(deadline, limited.read_buf(&mut bytes)).await {
            Ok(n) => n?,
            Err(_) => break,
        };
        if n == 0 || bytes.len() >= MAX_HEAD || !could_be_http(&bytes) {
            break;
        }
        if let Some(end) = find(&bytes, b"\r\n\r\n") {
            let client = client_index(&bytes[..end]);
            return Ok(Head { bytes, client });
        }
    }
    Ok(Head {
        bytes,
        client: None,
    })
}

/// False once the bytes cannot start an HTTP request line (`METHOD SP ...`).
fn could_be_http(bytes: &[u8]) -> bool {
    let space = bytes.iter().position(|&b| b == b' ');
    let method = &bytes[..space.unwrap_or(bytes.len())];
    let letters = method.iter().all(u8::is_ascii_uppercase);
    match space {
        Some(n) => n > 0 && n <= 16 && letters,
        // Still inside the method.
        None => letters && method.len() < 16,
    }
}

/// The `x-squall-client` header's value, if present and a number.
fn client_index(head: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case(HEADER)
            .then(|| value.trim().parse().ok())?
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const HEAD: &[u8] =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Squall-Client:  17 \r\n\r\n";

    async fn feed(parts: &[&[u8]], close: bool, timeout: Duration) -> Head {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        for p in parts {
            a.write_all(p).await.unwrap();
        }
        if close {
            drop(a);
            read_head(&mut b, timeout).await.unwrap()
        } else {
            let head = read_head(&mut b, timeout).await.unwrap();
            drop(a);
            head
        }
    }

    #[tokio::test]
    async fn header_gives_the_client_and_extra_bytes_are_kept() {
        let head = feed(&[HEAD, b"early"], false, HEAD_TIMEOUT).await;
        assert_eq!(head.client, Some(17));
        assert!(head.bytes.ends_with(b"early") && head.bytes.starts_with(HEAD));
    }

    #[tokio::test]
    async fn a_head_without_the_header_or_with_garbage_has_no_client() {
        assert_eq!(
            feed(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], false, HEAD_TIMEOUT)
                .await
                .client,
            None
        );
        let bad = b"GET / HTTP/1.1\r\nx-squall-client: nine\r\n\r\n";
        assert_eq!(feed(&[bad], false, HEAD_TIMEOUT).await.client, None);
    }

    #[tokio::test]
    async fn not_http_is_given_up_at_once_and_forwarded() {
        // A TLS ClientHello starts 0x16 0x03: no waiting for a head that will never come.
        let head = feed(&[&[0x16, 0x03, 0x01, 0x00]], false, Duration::from_secs(30)).await;
        assert_eq!(
            head,
            Head {
                bytes: vec![0x16, 0x03, 0x01, 0x00],
                client: None
            }
        );
        let head = feed(&[b"hello world"], false, Duration::from_secs(30)).await;
        assert_eq!(head.bytes, b"hello world");
    }

    #[tokio::test]
    async fn end_of_stream_oversize_and_silence_stop_the_read() {
        let head = feed(&[b"GET / HT"], true, HEAD_TIMEOUT).await;
        assert_eq!(head.bytes, b"GET / HT");
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.resize(MAX_HEAD + 100, b'a');
        let head = feed(&[&big], false, HEAD_TIMEOUT).await;
        assert_eq!(head.bytes.len(), MAX_HEAD);
        let t0 = Instant::now();
        let head = feed(&[b"GET / HTTP/1.1\r\n"], false, Duration::from_millis(50)).await;
        assert_eq!(head.bytes, b"GET / HTTP/1.1\r\n");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn http_prefixes() {
        assert!(could_be_http(b"G"));
        assert!(could_be_http(b"GET"));
        assert!(could_be_http(b"GET /"));
        assert!(!could_be_http(b"get /"));
        assert!(!could_be_http(b" GET"));
        assert!(!could_be_http(&[0x16]));
        assert!(!could_be_http(b"AAAAAAAAAAAAAAAAAAAA"));
    }
}
