//! Messages accepted by `send` and not yet confirmed, in sequence order, bounded by
//! count and bytes. Nothing leaves the outbox except by confirmation or by an explicit,
//! reported overflow policy: no silent drop.
//!
//! Sequence numbers belong to the session and never restart on a reconnect. On each new
//! connection everything unconfirmed is written again, oldest first, and never more than
//! `max_in_flight` messages are written and unconfirmed at once.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

use super::state::Delivered;
use crate::scenario::{OutboxPolicy, Overflow};

/// One unconfirmed message.
#[derive(Debug)]
struct Pending {
    seq: u64,
    payload: Bytes,
    intended: Instant,
    first_sent: Option<Instant>,
    sends: u32,
}

/// What happened to a message offered to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Queued under this sequence number.
    Queued(u64),
    /// Queued, and the oldest message (this seq) was dropped to make room.
    QueuedDropping { seq: u64, dropped: u64 },
    /// Refused (policy `fail`).
    Refused,
}

/// A message to write now.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: u64,
    pub payload: Bytes,
    /// Written before, on this connection or an earlier one.
    pub retransmit: bool,
}

/// The outbox of one session.
#[derive(Debug)]
pub struct Outbox {
    pending: VecDeque<Pending>,
    bytes: u64,
    next_seq: u64,
    policy: OutboxPolicy,
    max_in_flight: usize,
    /// How many messages at the front of `pending` were written on the current
    /// connection (the in-flight window).
    written: usize,
}

impl Outbox {
    pub fn new(policy: OutboxPolicy, max_in_flight: u32) -> Self {
        Outbox {
            pending: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            policy,
            max_in_flight: (max_in_flight as usize).max(1),
            written: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The sequence number the next accepted message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// True when another message would exceed a bound.
    pub fn is_full(&self) -> bool {
        self.pending.len() as u64 >= u64::from(self.policy.max_messages)
            || self.bytes >= self.policy.max_bytes
    }

    /// Whether the session should stop taking messages (policy `block` and full).
    pub fn blocks(&self) -> bool {
        self.policy.overflow == Overflow::Block && self.is_full()
    }

    /// Accepts a payload under the next sequence number.
    pub fn admit(&mut self, payload: Bytes, intended: Instant) -> Admit {
        let mut dropped = None;
        if self.is_full() {
            match self.policy.overflow {
                Overflow::Fail => return Admit::Refused,
                // `block` is enforced by the caller not pulling more; if it gets here the
                // bound is exceeded by one message rather than anything being lost.
                Overflow::Block => {}
                // Only a message never written can go: its number is not known to the
                // peer yet, so the ones after it close up and the receiver sees no gap.
                // With everything held already in flight, the new message is refused.
                Overflow::DropOldest => match self.pending.iter().position(|p| p.sends == 0) {
                    None => return Admit::Refused,
                    Some(i) => {
                        let old = self.pending.remove(i).expect("index from position");
                        self.bytes -= old.payload.len() as u64;
                        for p in self.pending.iter_mut().skip(i) {
                            p.seq -= 1;
                        }
                        self.next_seq -= 1;
                        dropped = Some(old.seq);
                    }
                },
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += payload.len() as u64;
        self.pending.push_back(Pending {
            seq,
            payload,
            intended,
            first_sent: None,
            sends: 0,
        });
        match dropped {
            Some(d) => Admit::QueuedDropping { seq, dropped: d },
            None => Admit::Queued(seq),
        }
    }

    /// A new connection: everything unconfirmed is to be written again.
    pub fn rewind(&mut self) {
        self.written = 0;
    }

    /// The next message to write, if the in-flight window has room; marks it written.
    pub fn next_to_write(&mut self, now: Instant) -> Option<Outgoing> {
        if self.written >= self.max_in_flight {
            return None;
        }
        let p = self.pending.get_mut(self.written)?;
        self.written += 1;
        let retransmit = p.sends > 0;
        p.first_sent.get_or_insert(now);
        p.sends = p.sends.saturating_add(1);
        Some(Outgoing {
            seq: p.seq,
            payload: p.payload.clone(),
            retransmit,
        })
    }

    /// First-send time of the oldest message written and not confirmed.
    pub fn oldest_in_flight(&self) -> Option<Instant> {
        self.pending
            .iter()
            .take(self.written)
            .filter_map(|p| p.first_sent)
            .min()
    }

    /// Sequence numbers of every unconfirmed message that was written at least once.
    pub fn unconfirmed_sent(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.iter().filter(|p| p.sends > 0).map(|p| p.seq)
    }

    /// The server lost the session and a fresh sequence space starts at 1: held messages
    /// keep their order and are renumbered from 1. Returns how much each seq dropped.
    pub fn renumber(&mut self) -> u64 {
        let offset = self.pending.front().map_or(self.next_seq, |p| p.seq) - 1;
        for p in &mut self.pending {
            p.seq -= offset;
        }
        self.next_seq -= offset;
        offset
    }

    /// Confirms one message (echo mode: its echo came back). `None` when it was already
    /// confirmed (a duplicate echo) or never written.
    pub fn confirm(&mut self, seq: u64, now: Instant) -> Option<Delivered> {
        let idx = self.pending.binary_search_by_key(&seq, |p| p.seq).ok()?;
        if self.pending[idx].sends == 0 {
            return None;
        }
        if idx < self.written {
            self.written -= 1;
        }
        let p = self.pending.remove(idx)?;
        self.bytes -= p.payload.len() as u64;
        Some(delivered(p, now))
    }

    /// Confirms every message with seq ≤ `ack` (protocol mode: a cumulative ack).
    /// Returns `Err` when `ack` covers a message never written: the peer is confused.
    pub fn confirm_upto(&mut self, ack: u64, now: Instant) -> Result<Vec<Delivered>, u64> {
        let mut out = Vec::new();
        while let Some(front) = self.pending.front() {
            if front.seq > ack {
                break;
            }
            if front.sends == 0 {
                return Err(ack);
            }
            let p = self.pending.pop_front().expect("front exists");
            self.bytes -= p.payload.len() as u64;
            self.written = self.written.saturating_sub(1);
            out.push(delivered(p, now));
        }
        if ack >= self.next_seq {
            return Err(ack);
        }
        Ok(out)
    }
}

fn delivered(p: Pending, now: Instant) -> Delivered {
    Delivered {
        seq: p.seq,
        intended: p.intended,
        first_sent: p.first_sent.unwrap_or(now),
        confirmed: now,
        retransmits: p.sends.saturating_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_messages: u32, overflow: Overflow, in_flight: u32) -> Outbox {
        Outbox::new(
            OutboxPolicy {
                max_messages,
                max_bytes: 1 << 20,
                overflow,
            },
            in_flight,
        )
    }

    fn admit(o: &mut Outbox, n: usize) {
        for _ in 0..n {
            o.admit(Bytes::from_static(b"x"), Instant::now());
        }
    }

    #[test]
    fn writes_respect_the_in_flight_window_and_rewind_resends() {
        let now = Instant::now();
        let mut o = outbox(100, Overflow::Block, 2);
        admit(&mut o, 3);
        let a = o.next_to_write(now).unwrap();
        let b = o.next_to_write(now).unwrap();
        assert!(o.next_to_write(now).is_none(), "window of 2");
        assert_eq!((a.seq, b.seq, a.retransmit), (1, 2, false));
        // Echo of 1 frees a slot for 3.
        assert_eq!(o.confirm(1, now).unwrap().seq, 1);
        assert_eq!(o.next_to_write(now).unwrap().seq, 3);
        // Connection lost: 2 and 3 go again, flagged as retransmits.
        o.rewind();
        let again: Vec<(u64, bool)> = std::iter::from_fn(|| o.next_to_write(now))
            .map(|m| (m.seq, m.retransmit))
            .collect();
        assert_eq!(again, [(2, true), (3, true)]);
        let d = o.confirm(2, now).unwrap();
        assert_eq!(d.retransmits, 1);
        assert!(o.confirm(2, now).is_none(), "a second echo is a duplicate");
    }

    #[test]
    fn cumulative_acks_release_in_order_and_reject_the_impossible() {
        let now = Instant::now();
        let mut o = outbox(100, Overflow::Block, 10);
        admit(&mut o, 4);
        for _ in 0..3 {
            o.next_to_write(now).unwrap();
        }
        let released: Vec<u64> = o
            .confirm_upto(2, now)
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(released, [1, 2]);
        assert_eq!(o.written, 1, "3 is still in flight");
        assert!(
            o.confirm_upto(2, now).unwrap().is_empty(),
            "an old ack releases nothing"
        );
        assert!(o.confirm_upto(4, now).is_err(), "4 was never written");
        assert!(o.confirm_upto(9, now).is_err(), "9 was never even accepted");
    }

    #[test]
    fn overflow_policies_are_explicit() {
        let now = Instant::now();
        let mut fail = outbox(1, Overflow::Fail, 10);
        assert_eq!(fail.admit(Bytes::from_static(b"a"), now), Admit::Queued(1));
        assert_eq!(fail.admit(Bytes::from_static(b"b"), now), Admit::Refused);
        let mut drop = outbox(2, Overflow::DropOldest, 10);
        drop.admit(Bytes::from_static(b"a"), now);
        drop.admit(Bytes::from_static(b"b"), now);
        drop.next_to_write(now).unwrap(); // 1 is in flight: it cannot be taken back
        // 2 was never written: it goes, and the new message takes its number.
        assert_eq!(
            drop.admit(Bytes::from_static(b"c"), now),
            Admit::QueuedDropping { seq: 2, dropped: 2 }
        );
        assert_eq!(drop.len(), 2);
        assert_eq!(
            drop.next_to_write(now).unwrap().payload,
            Bytes::from_static(b"c")
        );
        // Everything held is in flight now: nothing can be dropped, the new one is refused.
        assert_eq!(drop.admit(Bytes::from_static(b"d"), now), Admit::Refused);
        let mut block = outbox(1, Overflow::Block, 10);
        block.admit(Bytes::from_static(b"a"), now);
        assert!(block.blocks());
    }
}
