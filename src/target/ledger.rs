//! The server application's own record of what it received, kept apart from protocol
//! state so it survives a restart that drops every session: the proof, for the report,
//! that each message reached the application once and only once.
//!
//! Each payload from squall's load clients starts with a 16-hex-digit message number,
//! increasing per logical session; a number at or below the highest seen for its session
//! is a duplicate delivery.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Digits of the message number at the start of a load client's payload.
pub const ID_DIGITS: usize = 16;

#[derive(Debug, Default)]
pub struct DeliveryLedger {
    highest: Mutex<HashMap<String, u64>>,
    unique: AtomicU64,
    duplicates: AtomicU64,
    /// Payloads without a message number (not from squall's load clients).
    anonymous: AtomicU64,
    /// Server-to-client messages the application sent (echoes and pushes), and how many
    /// of them clients acknowledged, which they do only once delivered.
    sent: AtomicU64,
    acked: AtomicU64,
}

/// What the ledger holds at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub unique: u64,
    pub duplicates: u64,
    pub anonymous: u64,
    /// Server-to-client messages sent by the application.
    pub sent: u64,
    /// Of those, acknowledged by their client (so delivered to its application).
    pub acked: u64,
}

impl DeliveryLedger {
    /// The application of `session` received `payload`. True when it had it already.
    pub fn deliver(&self, session: &str, payload: &[u8]) -> bool {
        let Some(id) = message_id(payload) else {
            self.anonymous.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let mut highest = self.highest.lock().unwrap_or_else(|e| e.into_inner());
        let seen = highest.entry(session.to_string()).or_insert(0);
        if id <= *seen {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            *seen = id;
            self.unique.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The application sent one message to a client.
    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A client acknowledged `n` more messages.
    pub fn acked(&self, n: u64) {
        self.acked.fetch_add(n, Ordering::Relaxed);
    }

    pub fn totals(&self) -> LedgerTotals {
        LedgerTotals {
            unique: self.unique.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            anonymous: self.anonymous.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
        }
    }
}

/// The message number at the start of a payload (1-based), if it has one.
pub fn message_id(payload: &[u8]) -> Option<u64> {
    let head = std::str::from_utf8(payload.get(..ID_DIGITS)?).ok()?;
    u64::from_str_radix(head, 16).ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_unique_and_duplicate_deliveries_per_session() {
        let l = DeliveryLedger::default();
        let p = |id: u64| format!("{id:016x}filler").into_bytes();
        assert!(!l.deliver("a", &p(1)));
        assert!(!l.deliver("a", &p(2)));
        assert!(l.deliver("a", &p(2)), "same message again");
        assert!(
            !l.deliver("b", &p(1)),
            "another session's numbers are its own"
        );
        assert!(!l.deliver("a", b"no id here"));
        assert_eq!(
            l.totals(),
            LedgerTotals {
                unique: 3,
                duplicates: 1,
                anonymous: 1,
                sent: 0,
                acked: 0,
            }
        );
    }
}
