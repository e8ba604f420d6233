//! squall's integration tests: one binary, one module per area (ripgrep's layout).

// Tests time child processes by the wall clock, not the engine's tokio clock.
#![allow(clippy::disallowed_types)]

// Shared helpers: temporary scenarios, in-process runs, the built binary.
mod support;

// Every file in scenarios/ validates; every broken scenario in tests/data/invalid/
// fails with the key path and line it names.
mod scenarios;

// The bad-input corpus (tests/data/README.md): every broken file exits 2 from `validate`
// and `run`, naming the file, line and key, and nothing panics.
mod bad_input;

// The fuzz targets' checks on every kept input: regressions, seeds, scenario files.
mod fuzz;

// Exit codes and messages of the built `squall` binary.
mod cli;

// Scoped thresholds, recovery deadlines, abort_on_fail.
mod gate;

// --shard and --workers: slices of a run, merged exactly.
mod shards;

// `squall compare`: a real report against itself and against hand-edited worse copies.
mod compare;

// `squall replay`: a real report run again (in-process, --binary, --target against
// `squall serve`), equal fault ledgers for one seed, hand-edited reports and ledgers.
mod replay;

// deploy/kubernetes/: the manifests' kinds and fields, and their commands run locally.
mod deploy;

// Whole runs in-process: server, shim, clients, report.json.
mod end_to_end;

// The recovery engine against faults and misbehaving servers: exactly once, every time.
mod recovery;

// `squall proxy`: the binary, the control API under traffic, Toxiproxy's clients.
mod proxy;

// Hostile peers: servers and clients that send garbage, endless or oversized frames,
// never finish a handshake or trickle bytes; the engine, the server and the shim stay
// bounded, classify each failure and keep serving everyone else.
mod hostile;

// Out of descriptors under a small `ulimit -n`: refused up front, or stopped mid-run,
// exit 3 with the limit and the remedy, and a report.
mod exhaustion;

// Faults of the built-in server: restart, rejected handshakes, closes, errors, stalls.
mod server_faults;

// The thundering herd after a partition: jitter-free backoff against jittered, side by
// side, at the peak second of connect attempts.
mod herd;

// The outage library (scenarios/outages/): each incident in full, at 40 clients, passes.
mod outages;

// `squall serve` through the built binary: echo, squall.v1, SIGINT, a taken port.
mod serve;

// squall against a WebSocket echo server it did not write (Python's `websockets`).
mod external;

// report.html in headless Chromium: every chart drawn, no script error.
mod html;
