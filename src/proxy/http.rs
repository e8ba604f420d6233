//! A small HTTP/1.1 server for the control API, on tokio alone.
//!
//! Only what the API's clients send (curl, the Go and Java Toxiproxy clients, test
//! containers): a request line, headers, a body sized by `Content-Length` or sent
//! chunked, `Expect: 100-continue`, keep-alive. It can never hang on a client: the head is
//! at most [`MAX_HEAD`] bytes and the body [`MAX_BODY`]; a request must arrive whole
//! within [`READ_TIMEOUT`] of its first byte, an idle connection closes after
//! [`IDLE_TIMEOUT`], a handler gets [`HANDLER_TIMEOUT`], an answer [`WRITE_TIMEOUT`], and at
//! most [`MAX_CONNECTIONS`] connections are served at once (more are answered 503).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// Longest request line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body (a faults list or a populate call is a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;
/// A request must be read whole within this time of its first byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a handler may take (Toxiproxy gives 25 s); the client then gets 503.
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(25);
/// Longest writing an answer may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// One request, read whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The raw query string (after `?`), empty if none.
    pub query: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of query parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }
}

/// One answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Self { status, body }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
        }
    }
}

/// Why a request could not be read; the connection is answered (when it can be) and closed.
#[derive(Debug)]
enum ReadError {
    /// The peer closed or went quiet between requests: close without a word.
    Gone,
    /// Malformed or too large: answer with this status, then close.
    Bad(u16, &'static str),
    Io(io::Error),
}

/// Serves `handler` on `listener` until `token` is cancelled; connections are tracked on
/// `tracker` and end with the token too.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    token: CancellationToken,
    tracker: TaskTracker,
) where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => r,
        };
        let mut stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                debug!(error = %e, "api: accept failed");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracker.spawn(async move {
                let busy = error_body(503, "too many control connections");
                let _ =
                    tokio::time::timeout(WRITE_TIMEOUT, write_response(&mut stream, &busy, false))
                        .await;
            });
            continue;
        };
        let (handler, token) = (handler.clone(), token.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                r = connection(&mut stream, handler) => {
                    if let Err(e) = r {
                        debug!(error = %e, "api: connection ended");
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves requests on one connection until it closes, asks to, or errs.
async fn connection<S, H, F>(stream: &mut S, handler: H) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let mut buf = Vec::new();
    loop {
        let (request, keep_alive) = match read_request(stream, &mut buf).await {
            Ok(r) => r,
            Err(ReadError::Gone) => return Ok(()),
            Err(ReadError::Io(e)) => return Err(e),
            Err(ReadError::Bad(status, why)) => {
                let response = error_body(status, why);
                let _ =
                    tokio::time::timeout(WRITE_TIMEOUT, write_response(stream, &response, false))
                        .await;
                return Ok(());
            }
        };
        let response = match tokio::time::timeout(HANDLER_TIMEOUT, handler(request)).await {
            Ok(response) => response,
            Err(_) => error_body(503, "the request took too long"),
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write_response(stream, &response, keep_alive))
            .await
        {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        }
        if !keep_alive {
            return Ok(());
        }
    }
}

/// An error in Toxiproxy's shape (`error`, `status`), plus `title` for its Java client.
pub fn error_body(status: u16, message: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({ "error": message, "title": message, "status": status }),
    )
}

/// Reads one request; `buf` carries bytes read past it (pipelining) to the next call.
async fn read_request<S>(stream: &mut S, buf: &mut Vec<u8>) -> Result<(Request, bool), ReadError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Wait for the first byte as long as an idle connection may stay, then for the rest of
    // the request as long as a request may take.
    if buf.is_empty() {
        match tokio::time::timeout(IDLE_TIMEOUT, fill(stream, buf)).await {
            Ok(Ok(0)) | Err(_) => return Err(ReadError::Gone),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ReadError::Io(e)),
        }
    }
    match tokio::time::timeout(READ_TIMEOUT, read_rest(stream, buf)).await {
        Ok(r) => r,
        Err(_) => Err(ReadError::Bad(408, "the request was not sent in time")),
    }
}

async fn read_rest<S>(stream: &mut S, buf: &mut Vec<u8>) -> Result<(Request, bool), ReadError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        if fill(stream, buf).await.map_err(ReadError::Io)? == 0 {
            return Err(ReadError::Gone);
        }
    };
    if head_end > MAX_HEAD {
        return Err(ReadError::Bad(431, "request head too large"));
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Bad(400, "request head is not text"))?
        .to_owned();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target, version) = match (first.next(), first.next(), first.next()) {
        (Some(m), Some(t), Some(v)) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(ReadError::Bad(400, "malformed request line")),
    };
    let mut keep_alive = version == "HTTP/1.1";
    let (mut length, mut chunked, mut expect, mut user_agent) = (None, false, false, "");
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
                )
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => match value.to_ascii_lowercase().as_str() {
                "close" => keep_alive = false,
                "keep-alive" => keep_alive = true,
                _ => {}
            },
            "expect" => expect = value.eq_ignore_ascii_case("100-continue"),
            "user-agent" => user_agent = value,
            _ => {}
        }
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    if expect && (chunked || length.is_some_and(|n| n > 0)) {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(ReadError::Io)?;
    }
    let body = if chunked {
        read_chunked(stream, buf).await?
    } else {
        let n = length.unwrap_or(0);
        while buf.len() < n {
            if fill(stream, buf).await.map_err(ReadError::Io)? == 0 {
                return Err(ReadError::Gone);
            }
        }
        buf.drain(..n).collect()
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method: method.to_ascii_uppercase(),
        path: percent_decode(path),
        query: query.to_owned(),
        user_agent: user_agent.to_owned(),
        body,
    };
    Ok((request, keep_alive))
}

async fn read_chunked<S>(stream: &mut S, buf: &mut Vec<u8>) -> Result<Vec<u8>, ReadError>
where
    S: AsyncRead + Unpin,
{
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(stream, buf).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        while buf.len() < size + 2 {
            if fill(stream, buf).await.map_err(ReadError::Io)? == 0 {
                return Err(ReadError::Gone);
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
    }
}

async fn read_line<S>(stream: &mut S, buf: &mut Vec<u8>) -> Result<String, ReadError>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(i) = find(buf, b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..i + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Bad(400, "chunk line too long"));
        }
        if fill(stream, buf).await.map_err(ReadError::Io)? == 0 {
            return Err(ReadError::Gone);
        }
    }
}

/// Reads what is there into `buf`; 0 at end of stream.
async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    if !response.body.is_empty() {
        out.push_str("Content-Type: application/json\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes).await?;
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// `%41` → `A`; a malformed escape stays as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exchange(input: &[u8]) -> (Vec<Request>, String) {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        connection(&mut server, move |r: Request| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(r);
                Response::empty(204)
            }
        })
        .await
        .unwrap();
        drop(server);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        (seen, out)
    }

    #[tokio::test]
    async fn keep_alive_pipelining_content_length_and_chunked_bodies() {
        let input = b"POST /proxies?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nUser-Agent: go\r\n\r\nabcdDELETE /proxies/a%20b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n2;ext\r\n!!\r\n0\r\n\r\nGET /version HTTP/1.1\r\nConnection: close\r\n\r\n";
        let (seen, out) = exchange(input).await;
        assert_eq!(seen.len(), 3, "{out}");
        assert_eq!(
            (
                seen[0].method.as_str(),
                seen[0].path.as_str(),
                seen[0].body.as_slice()
            ),
            ("POST", "/proxies", &b"abcd"[..])
        );
        assert_eq!(seen[0].param("x").as_deref(), Some("1"));
        assert_eq!(seen[0].user_agent, "go");
        assert_eq!(
            (seen[1].path.as_str(), seen[1].body.as_slice()),
            ("/proxies/a b", &b"xyz!!"[..])
        );
        assert_eq!(out.matches("HTTP/1.1 204 No Content").count(), 3);
        assert!(out.ends_with("Connection: close\r\n\r\n"), "{out}");
    }

    #[tokio::test]
    async fn oversized_and_malformed_requests_are_refused() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let (seen, out) = exchange(big.as_bytes()).await;
        assert!(seen.is_empty() && out.starts_with("HTTP/1.1 413"), "{out}");
        let (_, out) = exchange(b"NONSENSE\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let (_, out) = exchange(long.as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
        // A request cut short is dropped without an answer.
        let (seen, out) = exchange(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab").await;
        assert!(seen.is_empty() && out.is_empty(), "{out}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_times_out() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let served = connection(&mut server, |_r: Request| async { Response::empty(204) });
        tokio::time::timeout(READ_TIMEOUT * 2, served)
            .await
            .expect("gives up on the client")
            .unwrap();
        drop(server);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    }
}
