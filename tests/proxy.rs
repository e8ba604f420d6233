//! `squall proxy`: the built binary (exit codes, bytes forwarded), the control API while
//! traffic flows, and a Toxiproxy client's calls sent byte for byte as its Go and Java
//! clients send them. Loopback only; every wait bounded.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TempDir, squall};
use squall::proxy::{ProxyOptions, ProxyServer};

/// Bounds every wait.
const LIMIT: Duration = Duration::from_secs(10);

/// A TCP echo server on port 0.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends `msg` and reads it back; the round-trip time.
async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t0 = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    tokio::time::timeout(LIMIT, s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(back, msg);
    t0.elapsed()
}

/// Sends one raw HTTP/1.1 request and returns the status and the JSON body (Null if none).
async fn raw_http(api: SocketAddr, request: String) -> (u16, Value) {
    let mut s = TcpStream::connect(api).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status, body)
}

/// A request as Go's net/http sends it for the Toxiproxy client (`Connection: close` so
/// the test reads to the end).
fn go_request(method: &str, api: SocketAddr, path: &str, body: &str) -> String {
    let length = match (method, body.is_empty()) {
        ("GET" | "DELETE", true) => String::new(),
        _ => format!("Content-Length: {}\r\n", body.len()),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nUser-Agent: toxiproxy-cli\r\n{length}Content-Type: application/json\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n{body}"
    )
}

/// A request as Java's HttpURLConnection sends it for toxiproxy-java.
fn java_request(method: &str, api: SocketAddr, path: &str, body: &str) -> String {
    let length = match body.is_empty() {
        true => String::new(),
        false => format!(
            "Content-type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nUser-Agent: Java/17.0.2\r\nHost: {api}\r\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: close\r\n{length}\r\n{body}"
    )
}

async fn start(opts: ProxyOptions) -> ProxyServer {
    ProxyServer::start(ProxyOptions {
        api: Some("127.0.0.1:0".into()),
        ..opts
    })
    .await
    .unwrap()
}

#[test]
fn a_bad_faults_file_exits_2_naming_file_line_and_column() {
    let dir = TempDir::new("proxy-bad-faults");
    let path = dir.write(
        "faults.yaml",
        "- { kind: latency, latency: 80ms }\n- kind: dial_delay\n  delay: 0s\n",
    );
    let out = squall(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:9",
        "--faults",
        path.to_str().unwrap(),
        "--no-api",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:10: [1].delay", path.display())),
        "{err}"
    );
    // Flags that cannot work are bad input too.
    let out = squall(&["proxy", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The binary, started on free ports; its main proxy and API addresses from its output.
struct Running {
    child: Child,
    listen: SocketAddr,
    api: SocketAddr,
}

fn spawn_proxy(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("proxy")
        .args(args)
        .args(["--api", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr_after = |marker: &str| -> SocketAddr {
        let line = lines.next().expect("a line").unwrap();
        let at = line.find(marker).unwrap_or_else(|| panic!("{line}")) + marker.len();
        line[at..]
            .split([',', ' '])
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let listen = addr_after("listening on ");
    let api = addr_after("http://");
    Running { child, listen, api }
}

fn terminate(mut running: Running) -> Option<i32> {
    let pid = running.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = running.child.kill();
            panic!("the proxy did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_forwards_bytes_applies_its_faults_file_and_exits_130_on_sigterm() {
    let echo = echo_server().await;
    let dir = TempDir::new("proxy-bin");
    let faults = dir.write(
        "faults.yaml",
        "# from the proxy's start\n- { kind: latency, latency: 150ms, direction: upstream, at: 0s, for: 1h }\n",
    );
    let upstream = echo.to_string();
    let running = spawn_proxy(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--faults",
        faults.to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(running.listen).await.unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let rtt = roundtrip(&mut s, &payload).await;
    assert!(
        rtt >= Duration::from_millis(140),
        "the faults file's latency: {rtt:?}"
    );
    // The fault is listed by the native API, open now.
    let (status, body) = raw_http(
        running.api,
        go_request("GET", running.api, "/squall/faults", ""),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["faults"][0]["kind"], "latency");
    assert_eq!(body["faults"][0]["active"], true);
    assert_eq!(terminate(running), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_adds_changes_and_removes_faults_while_traffic_flows() {
    let echo = echo_server().await;
    let server = start(ProxyOptions {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(echo.to_string()),
        ..Default::default()
    })
    .await;
    let (listen, api) = (server.listen_addr().unwrap(), server.api_addr().unwrap());
    let mut s = TcpStream::connect(listen).await.unwrap();
    // Traffic flows all along: one message every 20 ms on another connection.
    let busy = tokio::spawn(async move {
        let mut t = TcpStream::connect(listen).await.unwrap();
        for _ in 0..100 {
            roundtrip(&mut t, b"steady").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(roundtrip(&mut s, b"before").await < Duration::from_millis(100));
    let add = r#"{"kind": "latency", "latency": "100ms", "name": "slow"}"#;
    let (status, body) = raw_http(api, go_request("POST", api, "/squall/faults", add)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["faults"][0]["name"], "slow");
    let rtt = roundtrip(&mut s, b"during").await;
    assert!(rtt >= Duration::from_millis(190), "both ways: {rtt:?}");
    // Changed in place (YAML works too).
    let change = "kind: latency\nlatency: 30ms\ndirection: upstream\n";
    let (status, body) = raw_http(api, go_request("PUT", api, "/squall/faults/slow", change)).await;
    assert_eq!((status, &body["latency"]), (200, &json!("30ms")), "{body}");
    let rtt = roundtrip(&mut s, b"changed").await;
    assert!(
        (Duration::from_millis(28)..Duration::from_millis(150)).contains(&rtt),
        "{rtt:?}"
    );
    let (status, _) = raw_http(api, go_request("DELETE", api, "/squall/faults/slow", "")).await;
    assert_eq!(status, 204);
    assert!(roundtrip(&mut s, b"after").await < Duration::from_millis(60));
    let (status, _) = raw_http(api, go_request("DELETE", api, "/squall/faults/slow", "")).await;
    assert_eq!(status, 404);
    let bad = r#"{"kind": "latency", "latency": "soon"}"#;
    let (status, body) = raw_http(api, go_request("POST", api, "/squall/faults", bad)).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("latency"),
        "{body}"
    );
    tokio::time::timeout(LIMIT, busy).await.unwrap().unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_clients_create_a_proxy_add_a_latency_toxic_and_remove_it() {
    let echo = echo_server().await;
    let server = start(ProxyOptions::default()).await;
    let api = server.api_addr().unwrap();
    // Go client: `client.CreateProxy("redis", "127.0.0.1:0", upstream)`.
    let create = format!(
        r#"{{"name":"redis","listen":"127.0.0.1:0","upstream":"{echo}","enabled":true,"toxics":null}}"#
    );
    let (status, proxy) = raw_http(api, go_request("POST", api, "/proxies", &create)).await;
    assert_eq!(status, 201, "{proxy}");
    assert_eq!(proxy["name"], "redis");
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["toxics"], json!([]));
    let listen: SocketAddr = proxy["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(listen.port(), 0, "the port chosen is reported");
    let (status, _) = raw_http(api, go_request("POST", api, "/proxies", &create)).await;
    assert_eq!(status, 409);
    let mut s = TcpStream::connect(listen).await.unwrap();
    assert!(roundtrip(&mut s, b"plain").await < Duration::from_millis(100));
    // Go client: `proxy.AddToxic("", "latency", "", 1.0, Attributes{"latency": 200})`.
    let toxic = r#"{"name":"","type":"latency","toxicity":1,"attributes":{"latency":200}}"#;
    let (status, body) =
        raw_http(api, go_request("POST", api, "/proxies/redis/toxics", toxic)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 200, "jitter": 0}})
    );
    let rtt = roundtrip(&mut s, b"slow").await;
    assert!(rtt >= Duration::from_millis(195), "{rtt:?}");
    // Java client: `proxy.toxics().latency("lag", ToxicDirection.UPSTREAM, 50)`, then
    // `setLatency(80)`, as toxiproxy-java posts them.
    let java = r#"{"name":"lag","stream":"upstream","toxicity":1.0,"type":"latency","attributes":{"latency":50}}"#;
    let (status, body) = raw_http(
        api,
        java_request("POST", api, "/proxies/redis/toxics", java),
    )
    .await;
    assert_eq!(
        (status, &body["stream"]),
        (200, &json!("upstream")),
        "{body}"
    );
    let (status, body) = raw_http(
        api,
        java_request(
            "POST",
            api,
            "/proxies/redis/toxics/lag",
            r#"{"attributes":{"latency":80}}"#,
        ),
    )
    .await;
    assert_eq!(
        (status, &body["attributes"]["latency"]),
        (200, &json!(80)),
        "{body}"
    );
    let (status, list) = raw_http(api, go_request("GET", api, "/proxies/redis/toxics", "")).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 2));
    let (_, proxies) = raw_http(api, go_request("GET", api, "/proxies", "")).await;
    assert_eq!(proxies["redis"]["toxics"].as_array().unwrap().len(), 2);
    // Removed: the Go client's `proxy.RemoveToxic("latency_downstream")`, Java's `remove()`.
    let path = "/proxies/redis/toxics/latency_downstream";
    let (status, _) = raw_http(api, go_request("DELETE", api, path, "")).await;
    assert_eq!(status, 204);
    let (status, _) = raw_http(
        api,
        java_request("DELETE", api, "/proxies/redis/toxics/lag", ""),
    )
    .await;
    assert_eq!(status, 204);
    assert!(roundtrip(&mut s, b"fast again").await < Duration::from_millis(60));
    let (status, _) = raw_http(api, go_request("DELETE", api, path, "")).await;
    assert_eq!(status, 404);
    let (status, _) = raw_http(api, go_request("GET", api, "/proxies/nope", "")).await;
    assert_eq!(status, 404);
    // Disable: connections close and new ones are refused; enable: served again.
    let update = format!(
        r#"{{"name":"redis","listen":"{listen}","upstream":"{echo}","enabled":false,"toxics":[]}}"#
    );
    let (status, body) = raw_http(api, go_request("POST", api, "/proxies/redis", &update)).await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    assert!(
        TcpStream::connect(listen).await.is_err(),
        "refused while disabled"
    );
    let (status, _) = raw_http(api, go_request("POST", api, "/reset", "")).await;
    assert_eq!(status, 204);
    let mut again = TcpStream::connect(listen).await.expect("enabled by reset");
    roundtrip(&mut again, b"back").await;
    let (status, body) = raw_http(api, go_request("GET", api, "/version", "")).await;
    assert_eq!(status, 200);
    assert!(body["version"].as_str().unwrap().starts_with('2'), "{body}");
    let (status, _) = raw_http(api, go_request("DELETE", api, "/proxies/redis", "")).await;
    assert_eq!(status, 204);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_creates_proxies_and_bad_calls_get_toxiproxys_status_codes() {
    let echo = echo_server().await;
    let server = start(ProxyOptions::default()).await;
    let api = server.api_addr().unwrap();
    let config = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{echo}"}},{{"name":"b","listen":"127.0.0.1:0","upstream":"{echo}","enabled":false}}]"#
    );
    let (status, body) = raw_http(api, go_request("POST", api, "/populate", &config)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["proxies"].as_array().unwrap().len(), 2);
    assert_eq!(body["proxies"][1]["enabled"], false);
    // A toxic on a disabled proxy is kept for when it is enabled.
    let toxic = r#"{"type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#;
    let (status, _) = raw_http(api, go_request("POST", api, "/proxies/b/toxics", toxic)).await;
    assert_eq!(status, 200);
    let (status, _) = raw_http(api, go_request("POST", api, "/proxies/b/toxics", toxic)).await;
    assert_eq!(status, 409);
    for (path, body, want) in [
        ("/proxies/zzz/toxics", toxic, 404),
        ("/proxies/a/toxics", r#"{"type":"unknown"}"#, 400),
        ("/proxies/a/toxics", "{not json", 400),
        ("/proxies", r#"{"name":"c"}"#, 400),
    ] {
        let (status, body) = raw_http(api, go_request("POST", api, path, body)).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_eq!(body["status"], want);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_phase_faults_and_a_shared_budget_through_the_proxy() {
    let echo = echo_server().await;
    let faults = squall::scenario::faults_from_str(
        "- { kind: accept_reset, at: 0s, for: 300ms }\n- { kind: bandwidth, rate: 100KiB/s, shared: true, direction: upstream }\n",
        "faults.yaml",
    )
    .unwrap();
    let server = start(ProxyOptions {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(echo.to_string()),
        faults,
        ..Default::default()
    })
    .await;
    let listen = server.listen_addr().unwrap();
    // The reset may come before `connect` returns (it then fails), or on the first read.
    let reset = match TcpStream::connect(listen).await {
        Err(e) => e,
        Ok(mut s) => {
            let mut buf = [0u8; 4];
            let read = tokio::time::timeout(LIMIT, s.read(&mut buf)).await.unwrap();
            read.unwrap_err()
        }
    };
    assert_eq!(
        reset.kind(),
        std::io::ErrorKind::ConnectionReset,
        "accept_reset in its window"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Two connections share 100 KiB/s upstream: 2 × 25 KiB take about half a second.
    let payload = vec![7u8; 25 * 1024];
    let t0 = Instant::now();
    let sends = (0..2).map(|_| {
        let payload = payload.clone();
        async move {
            let mut s = TcpStream::connect(listen).await.unwrap();
            roundtrip(&mut s, &payload).await;
        }
    });
    tokio::time::timeout(LIMIT, futures_util::future::join_all(sends))
        .await
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(420) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.shutdown().await;
}
