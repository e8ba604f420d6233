//! The sequence and acknowledgement rules both ends run, as pure state: no I/O, no clock
//! reads (time comes in as a parameter, so paused-clock tests drive it).
//!
//! [`Inbound`] is the receiving half of one direction: it delivers each seq exactly once,
//! in order, and decides when an idle ACK is due. [`Outbound`] is the sending half: it
//! numbers messages, keeps each until the peer's cumulative ack covers it, paces
//! transmission by a window, and replays what is unacknowledged after a reconnect.

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;
use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;

/// Send an idle ACK once this many received messages have gone unacknowledged...
pub const ACK_EVERY: u32 = 16;
/// ...or once the oldest of them has waited this long.
pub const ACK_AFTER: Duration = Duration::from_millis(200);

/// What the receiver does with an incoming DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The next message in order: hand it to the application.
    Deliver,
    /// Already delivered (a retransmit that crossed an ack): drop it. It still counts
    /// toward the next ACK, so the sender learns it can stop.
    Duplicate,
    /// A message before this one never arrived. Nothing was delivered; the receiver
    /// closes the connection (close code 4000) and the resume retransmits from its ack.
    Gap { expected: u64 },
}

/// The receiving half of one direction of a session.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    delivered: u64,
    unacked: u32,
    unacked_since: Option<Instant>,
}

impl Inbound {
    pub fn new() -> Inbound {
        Inbound::default()
    }

    /// Applies the receiver rule to an incoming DATA's seq. `Deliver` means the caller
    /// hands the payload to the application now: the ack counts it as handed over.
    pub fn receive(&mut self, seq: u64, now: Instant) -> Receipt {
        let receipt = if seq <= self.delivered {
            Receipt::Duplicate
        } else if seq == self.delivered + 1 {
            self.delivered = seq;
            Receipt::Deliver
        } else {
            return Receipt::Gap {
                expected: self.delivered + 1,
            };
        };
        self.unacked = self.unacked.saturating_add(1);
        self.unacked_since.get_or_insert(now);
        receipt
    }

    /// The cumulative ack to put on every outgoing frame: every seq <= it was delivered.
    pub fn ack(&self) -> u64 {
        self.delivered
    }

    /// Receipts (deliveries and duplicates) not yet covered by an outgoing frame.
    pub fn unacked(&self) -> u32 {
        self.unacked
    }

    /// When the oldest receipt not yet acknowledged arrived.
    pub fn unacked_since(&self) -> Option<Instant> {
        self.unacked_since
    }

    /// Whether to send an ACK frame now, when there is no DATA to carry the ack:
    /// `every` receipts are waiting, or the oldest has waited `after`.
    pub fn should_ack(&self, now: Instant, every: u32, after: Duration) -> bool {
        self.unacked >= every.max(1) || self.ack_deadline(after).is_some_and(|at| now >= at)
    }

    /// When an idle ACK falls due, for a timer; `None` when nothing awaits one.
    pub fn ack_deadline(&self, after: Duration) -> Option<Instant> {
        self.unacked_since.map(|since| since + after)
    }

    /// Call whenever any frame goes out: each one carried [`Inbound::ack`].
    pub fn ack_sent(&mut self) {
        self.unacked = 0;
        self.unacked_since = None;
    }

    /// Forgets everything: the session was lost and the peer numbers from 1 again.
    pub fn reset(&mut self) {
        *self = Inbound::default();
    }
}

/// A peer's ack that no correct peer could send; the connection must close (1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AckError {
    #[error("peer acknowledged seq {ack}, but only {sent} was ever sent")]
    Beyond { ack: u64, sent: u64 },
    #[error("peer acknowledged seq {ack} after already acknowledging {acked}")]
    Regressed { ack: u64, acked: u64 },
}

/// One message to put on the wire, from [`Outbound::next_transmit`].
#[derive(Debug)]
pub struct Transmit<'a, T> {
    pub seq: u64,
    /// Sent before (set the RETRANSMIT flag).
    pub retransmit: bool,
    /// Mutable so the caller can stamp send times or count sends.
    pub item: &'a mut T,
}

/// The sending half of one direction of a session, generic over what the caller keeps
/// per message (the client its payload and timestamps, the server its replay buffer).
///
/// Seqs `ack+1 .. next_seq` are held, oldest first, in three runs: transmitted on this
/// connection (`ack+1 .. cursor`), transmitted on an earlier one only, and never
/// transmitted. Nothing leaves except through the peer's ack.
#[derive(Debug, Clone)]
pub struct Outbound<T> {
    queue: VecDeque<(u64, T)>,
    next_seq: u64,
    /// The peer's cumulative ack.
    acked: u64,
    /// Highest seq ever handed to a connection: acks above it are impossible.
    sent: u64,
    /// Next seq to transmit on the current connection.
    cursor: u64,
}

impl<T> Default for Outbound<T> {
    fn default() -> Self {
        Outbound {
            queue: VecDeque::new(),
            next_seq: 1,
            acked: 0,
            sent: 0,
            cursor: 1,
        }
    }
}

impl<T> Outbound<T> {
    pub fn new() -> Outbound<T> {
        Outbound::default()
    }

    /// Queues a new message; returns its seq.
    pub fn push(&mut self, item: T) -> u64 {
        let seq = self.next_seq;
        self.queue.push_back((seq, item));
        self.next_seq += 1;
        seq
    }

    /// The seq the next pushed message gets (HELLO/WELCOME `next_seq`).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The peer's cumulative ack so far.
    pub fn ack(&self) -> u64 {
        self.acked
    }

    /// Highest seq ever transmitted.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages held: pushed and not acknowledged.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Transmitted on the current connection and not yet acknowledged: what the window
    /// bounds.
    pub fn in_flight(&self) -> u64 {
        self.cursor - 1 - self.acked
    }

    /// Held and not yet transmitted on the current connection (retransmits included).
    pub fn waiting(&self) -> u64 {
        self.next_seq - self.cursor
    }

    /// Applies the peer's cumulative ack and releases, oldest first, every message it
    /// covers. Drop the iterator and they are released all the same.
    pub fn acked(&mut self, ack: u64) -> Result<Drain<'_, (u64, T)>, AckError> {
        if ack < self.acked {
            return Err(AckError::Regressed {
                ack,
                acked: self.acked,
            });
        }
        if ack > self.sent {
            return Err(AckError::Beyond {
                ack,
                sent: self.sent,
            });
        }
        let released = (ack - self.acked) as usize;
        self.acked = ack;
        self.cursor = self.cursor.max(ack + 1);
        Ok(self.queue.drain(..released))
    }

    /// Every message held, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = (u64, &T)> {
        self.queue.iter().map(|(seq, item)| (*seq, item))
    }

    /// The next message to transmit on this connection, if the window has room: first
    /// the retransmits, in order, then new messages.
    pub fn next_transmit(&mut self, max_in_flight: u32) -> Option<Transmit<'_, T>> {
        if self.cursor == self.next_seq || self.in_flight() >= u64::from(max_in_flight) {
            return None;
        }
        let seq = self.cursor;
        let retransmit = seq <= self.sent;
        self.cursor += 1;
        self.sent = self.sent.max(seq);
        let (_, item) = &mut self.queue[(seq - self.acked - 1) as usize];
        Some(Transmit {
            seq,
            retransmit,
            item,
        })
    }

    /// A new connection: transmission starts over from the oldest unacknowledged
    /// message. Apply the peer's HELLO/WELCOME ack first, so nothing it already has is
    /// sent again.
    pub fn rewind(&mut self) {
        self.cursor = self.acked + 1;
    }

    /// The peer lost the session: a fresh seq space starts at 1. Held messages keep their
    /// order and are renumbered from 1; ones transmitted before still go out flagged
    /// RETRANSMIT. Returns the offset: each held message's seq dropped by this much.
    pub fn restart(&mut self) -> u64 {
        let offset = self.acked;
        for (seq, _) in &mut self.queue {
            *seq -= offset;
        }
        self.next_seq -= offset;
        self.sent -= offset;
        self.acked = 0;
        self.cursor = 1;
        offset
    }
}
