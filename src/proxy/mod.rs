//! `squall proxy`: the shim alone, in front of any TCP server, with a control API that adds,
//! changes and removes faults while traffic flows and that also answers Toxiproxy's REST
//! API, so Toxiproxy's clients and test containers drive it unchanged (`docs/proxy.md`).
//!
//! - `mod.rs`: [`ProxyServer::start`] and [`ProxyServer::shutdown`]: the main proxy (from
//!   `--listen`, `--upstream`, `--faults`), the API listener, one cancellation tree.
//! - `registry`: the named proxies, each a shim instance, and their faults.
//! - `api`: the routes, Toxiproxy's and squall's own (`/squall/faults`).
//! - `toxics`: Toxiproxy's toxics mapped onto squall's faults.
//! - `http`: a small, bounded HTTP/1.1 server.
//!
//! The API can never make the data path wait: a fault change is a swap of the shim's
//! active set (see `shim::control`), and the API's own lock is never taken by a link.

pub mod http;

mod api;
mod registry;
mod toxics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::events::EventSink;
use crate::scenario::NetworkFault;
pub use api::TOXIPROXY_VERSION;
use registry::{Context, NewProxy, Registry};

/// Name of the proxy `--listen`/`--upstream` make, as the Toxiproxy API lists it.
pub const MAIN_PROXY: &str = "squall";
/// Where the API listens unless told otherwise: Toxiproxy's port, loopback only.
pub const DEFAULT_API: &str = "127.0.0.1:8474";
/// How long the API's open connections get to finish when the proxy stops.
const STOP_DEADLINE: Duration = Duration::from_secs(2);

/// What `squall proxy` runs.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// The main proxy: where it listens and what it forwards to (`host:port`); none for an
    /// API-only process (proxies are then created through the API, as with Toxiproxy).
    pub listen: Option<String>,
    pub upstream: Option<String>,
    /// Faults of the main proxy, their `at` counting from the proxy's start.
    pub faults: Vec<NetworkFault>,
    /// The control API's address; `None`: no API.
    pub api: Option<String>,
    pub seed: u64,
    /// Read `x-squall-client` from upgrade heads (squall's own clients only).
    pub identify: bool,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// An address or fault that cannot work as given (exit 2).
    #[error("{0}")]
    BadInput(String),
    /// A port taken, a name that does not resolve at the time (exit 3).
    #[error("{0}")]
    CouldNotStart(String),
}

/// A running `squall proxy`.
pub struct ProxyServer {
    api: Arc<api::Api>,
    listen: Option<SocketAddr>,
    api_addr: Option<SocketAddr>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl ProxyServer {
    /// Starts the main proxy (if asked) and the API, and returns at once.
    pub async fn start(opts: ProxyOptions) -> Result<ProxyServer, ProxyError> {
        let token = CancellationToken::new();
        let ctx = Context {
            seed: opts.seed,
            clock: Clock::start(),
            events: EventSink::disabled(Clock::start()),
            token: token.clone(),
        };
        let api_listener = match &opts.api {
            Some(addr) => Some(bind_api(addr).await?),
            None => None,
        };
        let mut registry = Registry::default();
        let main = match (&opts.listen, &opts.upstream) {
            (Some(listen), Some(upstream)) => {
                let new = NewProxy {
                    name: MAIN_PROXY.into(),
                    listen: listen.clone(),
                    upstream: upstream.clone(),
                    enabled: true,
                    identify: opts.identify,
                    faults: opts.faults.clone(),
                };
                registry
                    .create(&ctx, new)
                    .await
                    .map_err(|e| match e.status {
                        400 => ProxyError::BadInput(e.message),
                        _ => ProxyError::CouldNotStart(e.message),
                    })?;
                Some(MAIN_PROXY.to_owned())
            }
            (None, None) if opts.faults.is_empty() => None,
            (None, None) => {
                return Err(ProxyError::BadInput(
                    "--faults needs --listen and --upstream".into(),
                ));
            }
            _ => {
                return Err(ProxyError::BadInput(
                    "--listen and --upstream go together".into(),
                ));
            }
        };
        let listen = main.as_ref().and_then(|m| registry.local_addr(m));
        let api = Arc::new(api::Api {
            registry: tokio::sync::Mutex::new(registry),
            ctx,
            main,
        });
        let tracker = TaskTracker::new();
        let api_addr = match api_listener {
            Some(listener) => {
                let addr = listener.local_addr().ok();
                let handler_api = api.clone();
                let handler = move |req| handler_api.clone().handle(req);
                tracker.spawn(http::serve(
                    listener,
                    handler,
                    token.child_token(),
                    tracker.clone(),
                ));
                addr
            }
            None => None,
        };
        Ok(ProxyServer {
            api,
            listen,
            api_addr,
            token,
            tracker,
        })
    }

    /// Where the main proxy listens.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Where the control API listens.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// Stops every proxy and the API: listeners close, connections close.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.api.registry.lock().await.stop_all().await;
        self.tracker.close();
        let _ = tokio::time::timeout(STOP_DEADLINE, self.tracker.wait()).await;
    }
}

/// Binds the API: to exactly the address given; with no host (`:8474`, `8474`), loopback.
async fn bind_api(addr: &str) -> Result<TcpListener, ProxyError> {
    let addr = match addr.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None if addr.bytes().all(|b| b.is_ascii_digit()) => format!("127.0.0.1:{addr}"),
        None => addr.to_owned(),
    };
    let resolved = registry::resolve(&addr, "--api")
        .await
        .map_err(|e| ProxyError::BadInput(e.message))?;
    TcpListener::bind(resolved).await.map_err(|e| {
        ProxyError::CouldNotStart(format!("the control API cannot listen on {resolved}: {e}"))
    })
}
