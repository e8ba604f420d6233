//! Messages accepted by `send` and not yet confirmed, in sequence order, bounded by
//! count and bytes. Nothing leaves the outbox except by confirmation or by an explicit,
//! reported overflow policy: no silent drop.
//!
//! In echo mode a message is confirmed when its echo comes back; its sequence number
//! travels in a small prefix so echoes can be matched and deduplicated (at-least-once
//! out, exactly-once observed).

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::state::Delivered;
use crate::scenario::{MessageKind, OutboxPolicy, Overflow};

/// Hex digits of the sequence prefix of a text message.
const TEXT_PREFIX: usize = 16;
/// Bytes of the sequence prefix of a binary message.
const BINARY_PREFIX: usize = 8;

/// One unconfirmed message.
#[derive(Debug)]
struct Pending {
    seq: u64,
    frame: Message,
    intended: Instant,
    first_sent: Option<Instant>,
    sends: u32,
}

/// What happened to a message offered to a full outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Queued under this sequence number.
    Queued(u64),
    /// Queued, and the oldest message (this seq) was dropped to make room.
    QueuedDropping { seq: u64, dropped: u64 },
    /// Refused (policy `fail`).
    Refused,
}

/// The outbox of one session.
#[derive(Debug)]
pub struct Outbox {
    pending: VecDeque<Pending>,
    bytes: u64,
    next_seq: u64,
    policy: OutboxPolicy,
}

impl Outbox {
    pub fn new(policy: OutboxPolicy) -> Self {
        Outbox {
            pending: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            policy,
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
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

    /// Accepts a payload, framing it with its sequence number.
    pub fn admit(&mut self, payload: &[u8], kind: MessageKind, intended: Instant) -> Admit {
        let mut dropped = None;
        if self.is_full() {
            match self.policy.overflow {
                Overflow::Fail => return Admit::Refused,
                // `block` is enforced by the caller not pulling more; if it gets here the
                // bound is exceeded by one message rather than anything being lost.
                Overflow::Block => {}
                Overflow::DropOldest => {
                    if let Some(old) = self.pending.pop_front() {
                        self.bytes -= old.frame.len() as u64;
                        dropped = Some(old.seq);
                    }
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let frame = encode(seq, payload, kind);
        self.bytes += frame.len() as u64;
        self.pending.push_back(Pending {
            seq,
            frame,
            intended,
            first_sent: None,
            sends: 0,
        });
        match dropped {
            Some(d) => Admit::QueuedDropping { seq, dropped: d },
            None => Admit::Queued(seq),
        }
    }

    /// The frame of `seq` to write now, marking it sent.
    pub fn take_for_send(&mut self, seq: u64, now: Instant) -> Option<Message> {
        let p = self.find_mut(seq)?;
        p.first_sent.get_or_insert(now);
        p.sends += 1;
        Some(p.frame.clone())
    }

    /// Sequence numbers of every unconfirmed message, oldest first (for a resend).
    pub fn unconfirmed(&self) -> Vec<u64> {
        self.pending.iter().map(|p| p.seq).collect()
    }

    /// First-send time of the oldest message written and not confirmed.
    pub fn oldest_sent(&self) -> Option<Instant> {
        self.pending.iter().filter_map(|p| p.first_sent).min()
    }

    /// Handles a confirmation of `seq`. `None` when it was already confirmed (a duplicate
    /// echo) or never sent.
    pub fn confirm(&mut self, seq: u64, now: Instant) -> Option<Delivered> {
        let idx = self.pending.binary_search_by_key(&seq, |p| p.seq).ok()?;
        let p = self.pending.remove(idx)?;
        self.bytes -= p.frame.len() as u64;
        let first_sent = p.first_sent?;
        Some(Delivered {
            seq,
            intended: p.intended,
            first_sent,
            confirmed: now,
            retransmits: p.sends.saturating_sub(1),
        })
    }

    fn find_mut(&mut self, seq: u64) -> Option<&mut Pending> {
        let idx = self.pending.binary_search_by_key(&seq, |p| p.seq).ok()?;
        self.pending.get_mut(idx)
    }
}

/// Frames `payload` with its sequence number: 16 hex digits before a text payload, 8
/// big-endian bytes before a binary one.
pub fn encode(seq: u64, payload: &[u8], kind: MessageKind) -> Message {
    match kind {
        MessageKind::Text => {
            let mut s = String::with_capacity(TEXT_PREFIX + payload.len());
            s.push_str(&format!("{seq:016x}"));
            s.push_str(&String::from_utf8_lossy(payload));
            Message::text(s)
        }
        MessageKind::Binary => {
            let mut v = Vec::with_capacity(BINARY_PREFIX + payload.len());
            v.extend_from_slice(&seq.to_be_bytes());
            v.extend_from_slice(payload);
            Message::binary(Bytes::from(v))
        }
    }
}

/// Reads the sequence number back from an echo; `None` if it is not one of ours.
pub fn decode_seq(msg: &Message) -> Option<u64> {
    match msg {
        Message::Text(t) => {
            let head = t.as_str().get(..TEXT_PREFIX)?;
            u64::from_str_radix(head, 16).ok()
        }
        Message::Binary(b) => Some(u64::from_be_bytes(b.get(..BINARY_PREFIX)?.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_messages: u32, overflow: Overflow) -> OutboxPolicy {
        OutboxPolicy {
            max_messages,
            max_bytes: 1 << 20,
            overflow,
        }
    }

    #[test]
    fn frames_round_trip_both_kinds() {
        for kind in [MessageKind::Text, MessageKind::Binary] {
            let m = encode(0xdead_beef, b"payload", kind);
            assert_eq!(decode_seq(&m), Some(0xdead_beef));
        }
        assert_eq!(decode_seq(&Message::text("short")), None);
        assert_eq!(decode_seq(&Message::text("zzzzzzzzzzzzzzzzzz")), None);
        assert_eq!(decode_seq(&Message::binary(vec![1u8, 2])), None);
    }

    #[test]
    fn confirms_once_then_treats_echoes_as_duplicates() {
        let now = Instant::now();
        let mut o = Outbox::new(policy(10, Overflow::Block));
        let Admit::Queued(a) = o.admit(b"x", MessageKind::Text, now) else {
            panic!()
        };
        let Admit::Queued(b) = o.admit(b"y", MessageKind::Text, now) else {
            panic!()
        };
        o.take_for_send(a, now).unwrap();
        o.take_for_send(b, now).unwrap();
        o.take_for_send(a, now).unwrap(); // a retransmit
        let d = o.confirm(a, now).unwrap();
        assert_eq!(d.retransmits, 1);
        assert!(o.confirm(a, now).is_none());
        assert_eq!(o.unconfirmed(), vec![b]);
    }

    #[test]
    fn overflow_policies_are_explicit() {
        let now = Instant::now();
        let mut fail = Outbox::new(policy(1, Overflow::Fail));
        assert!(matches!(
            fail.admit(b"a", MessageKind::Binary, now),
            Admit::Queued(1)
        ));
        assert_eq!(fail.admit(b"b", MessageKind::Binary, now), Admit::Refused);
        let mut drop = Outbox::new(policy(1, Overflow::DropOldest));
        drop.admit(b"a", MessageKind::Binary, now);
        assert_eq!(
            drop.admit(b"b", MessageKind::Binary, now),
            Admit::QueuedDropping { seq: 2, dropped: 1 }
        );
        assert_eq!(drop.len(), 1);
        let mut block = Outbox::new(policy(1, Overflow::Block));
        block.admit(b"a", MessageKind::Binary, now);
        assert!(block.blocks());
    }
}
