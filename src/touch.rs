//! When a fault last broke each client's connection, so a client can time its recovery
//! from the fault rather than from its own noticing: `detection_latency` is from the
//! fault touching the connection to the client noticing, `downtime` from the fault to the
//! session resumed.
//!
//! One slot per client index, written by the shim and read by the client: lock-free.

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-client time (µs since the run started) of the last fault that broke its link.
#[derive(Debug)]
pub struct TouchBoard {
    /// 0 means never; stored values are µs + 1.
    slots: Vec<AtomicU64>,
}

impl TouchBoard {
    /// A board for clients `0..clients`.
    pub fn new(clients: usize) -> Self {
        TouchBoard {
            slots: (0..clients).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A fault acted on `client`'s connection at `t_us`. Indices outside the board are
    /// ignored (a connection the shim could not identify).
    pub fn touch(&self, client: u32, t_us: u64) {
        if let Some(slot) = self.slots.get(client as usize) {
            slot.store(t_us.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// The last time a fault touched `client`, if ever.
    pub fn last(&self, client: u32) -> Option<u64> {
        let v = self.slots.get(client as usize)?.load(Ordering::Relaxed);
        v.checked_sub(1)
    }

    /// The last touch at or after `since_us` (a touch older than the connection being
    /// timed belongs to an earlier connection).
    pub fn since(&self, client: u32, since_us: u64) -> Option<u64> {
        self.last(client).filter(|t| *t >= since_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_are_per_client_and_bounded() {
        let b = TouchBoard::new(3);
        assert_eq!(b.last(1), None);
        b.touch(1, 0);
        b.touch(1, 500);
        b.touch(7, 10); // outside: ignored, no panic
        assert_eq!(b.last(1), Some(500));
        assert_eq!(b.since(1, 400), Some(500));
        assert_eq!(b.since(1, 600), None);
        assert_eq!(b.last(0), None);
    }
}
