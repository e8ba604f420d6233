//! `squall proxy`: flags in, the standalone proxy run until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Exit;
use crate::proxy::{self, ProxyOptions, ProxyServer};
use crate::scenario;

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Where clients connect, e.g. 127.0.0.1:9000 (port 0: any free port).
    #[arg(long, value_name = "ADDR", requires = "upstream")]
    pub listen: Option<String>,
    /// The server every connection is forwarded to, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR", requires = "listen")]
    pub upstream: Option<String>,
    /// Faults to apply: a YAML list in the syntax of a scenario's `faults:`; `at` counts
    /// from the proxy's start.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub faults: Option<PathBuf>,
    /// The control API (squall's and Toxiproxy's REST API). Loopback unless an address
    /// that is not loopback is given.
    #[arg(long, value_name = "ADDR", default_value = proxy::DEFAULT_API)]
    pub api: String,
    /// Run without the control API.
    #[arg(long, conflicts_with = "api")]
    pub no_api: bool,
    /// Seed for every random decision (which connections a fault picks, jitter, …).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Read `x-squall-client: N` from each connection's HTTP upgrade head, so faults can
    /// pick squall's virtual clients by index (off: any TCP protocol passes untouched).
    #[arg(long)]
    pub identify: bool,
}

/// Runs the proxy until interrupted; exit 130 after a clean stop.
pub fn run(args: ProxyArgs) -> Exit {
    let faults = match &args.faults {
        Some(path) => match scenario::load_faults(path) {
            Ok(faults) => faults,
            Err(e) => {
                eprintln!("{e}");
                return Exit::BadInput;
            }
        },
        None => Vec::new(),
    };
    let opts = ProxyOptions {
        listen: args.listen.clone(),
        upstream: args.upstream.clone(),
        faults,
        api: (!args.no_api).then(|| args.api.clone()),
        seed: args.seed,
        identify: args.identify,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CouldNotRun;
        }
    };
    let exit = runtime.block_on(async move {
        let server = match ProxyServer::start(opts).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::of_proxy(&e);
            }
        };
        if let (Some(listen), Some(upstream)) = (server.listen_addr(), &args.upstream) {
            println!("squall proxy: listening on {listen}, forwarding to {upstream}");
        }
        match server.api_addr() {
            Some(api) => println!("squall proxy: control API on http://{api}"),
            None => println!("squall proxy: no control API"),
        }
        let interrupt = CancellationToken::new();
        tokio::spawn(super::watch_signals(
            interrupt.clone(),
            "stopping the proxy…",
        ));
        interrupt.cancelled().await;
        server.shutdown().await;
        Exit::Interrupted
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    exit
}
