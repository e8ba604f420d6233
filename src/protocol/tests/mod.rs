//! Tests of the protocol through its public API: unit tests per file, property tests of
//! the codec, and a simulation of both ends over a lossy connection that checks the
//! exactly-once promise. (`resume` keeps its unit tests beside the code.)
//!
//! - `codec`: round trips, each decode error, the spec's test vectors.
//! - `control`: JSON shapes, session ids, the close-code table.
//! - `window`: the receiver rule, ack coalescing, the send window, rewind, restart.
//! - `props`: proptest over the codec (no panics, identity, bit flips caught).
//! - `exactly_once`: proptest over drop/reconnect/state-loss schedules.
//! - `strategies`: proptest generators shared by the two above.

mod codec;
mod control;
mod exactly_once;
mod props;
mod strategies;
mod window;
