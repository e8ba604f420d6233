//! squall: a load and chaos harness for WebSocket recovery.
//!
//! A YAML scenario describes virtual clients, a fault-injecting TCP shim between them and
//! a WebSocket server, and a timeline of faults. squall runs its recovery engine in every
//! client under that load and reports what recovery cost.
//!
//! # Layout
//!
//! Dependencies flow one way:
//! `cli → run → {scenario, target, shim, load → recovery, metrics, gate, report}`,
//! `cli → proxy → {scenario, shim}`, `cli → replay → {run, report, scenario}`;
//! the leaves (`scenario`, `metrics`, `clock`, `rng`, `events`) import nothing else from
//! the crate but each other's plain types.
//!
//! - [`cli`]: command-line flags (clap) and the one place exit codes are decided.
//! - [`run`]: the story of one run: start server and shim, ramp clients, drain, judge,
//!   write the report; Ctrl-C still writes it.
//! - [`scenario`]: the YAML model: serde mirror, validation with `file:line:col` errors,
//!   the checked [`scenario::Scenario`] everything else reads.
//! - [`recovery`]: the recovery engine, usable as a library: a WebSocket session that
//!   reconnects with backoff and jitter, detects dead peers and retransmits.
//! - [`protocol`]: the squall.v1 wire protocol, specified in `docs/protocol.md`.
//! - [`shim`]: the fault-injecting TCP proxy between clients and server.
//! - [`proxy`]: `squall proxy`: the shim alone, with a control API that also answers
//!   Toxiproxy's REST API.
//! - [`target`]: the built-in WebSocket server.
//! - [`load`]: virtual clients: arrival schedule, message pattern, one task per client.
//! - [`metrics`]: counters, HDR histograms and the per-second timeline, recorded per
//!   worker thread and merged at the end.
//! - [`gate`]: thresholds evaluated against the merged metrics: the verdict.
//! - [`report`]: `report.json` (the source of truth) and the formats rendered from it
//!   (Markdown, a self-contained HTML page with charts, JUnit XML), and
//!   `report::compare`, one report judged against another.
//! - [`replay`]: `squall replay`: a report's run again (same scenario, seed, shard), judged
//!   against the original: figures through `report::compare`, fault ledgers side by side.
//! - [`events`]: `events.jsonl` and the fault ledger.
//! - [`clock`]: the run's time origin, on tokio's clock.
//! - [`rng`]: seed derivation, so every component has its own reproducible stream.
//! - [`touch`]: when a fault last broke each client's link, to time detection from it.
//! - [`net`]: outgoing connections spread over loopback source addresses, so ephemeral
//!   ports do not run out under reconnect storms.
//! - [`exhaustion`]: out of descriptors or ports (EMFILE, EADDRNOTAVAIL, …) at accept or
//!   connect: recognised, counted, explained with the remedy; accept loops back off.
//! - `fuzzing`: entry points for the fuzz targets in `fuzz/` and their regression tests.

pub mod cli;
pub mod clock;
pub mod events;
pub mod exhaustion;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod load;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod proxy;
pub mod recovery;
pub mod replay;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod shim;
pub mod target;
pub mod touch;
