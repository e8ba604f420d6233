//! Inbound and Outbound: the receiver rule, ack coalescing, the send window, rewind
//! and restart.

use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::{ACK_AFTER, ACK_EVERY, AckError, Inbound, Outbound, Receipt};

fn sent_all(out: &mut Outbound<&'static str>) -> Vec<(u64, bool)> {
    std::iter::from_fn(|| out.next_transmit(u32::MAX).map(|t| (t.seq, t.retransmit))).collect()
}

#[test]
fn inbound_delivers_in_order_once() {
    let now = Instant::now();
    let mut inb = Inbound::new();
    assert_eq!(inb.receive(1, now), Receipt::Deliver);
    assert_eq!(inb.receive(2, now), Receipt::Deliver);
    assert_eq!(inb.receive(2, now), Receipt::Duplicate);
    assert_eq!(inb.receive(1, now), Receipt::Duplicate);
    assert_eq!(inb.receive(4, now), Receipt::Gap { expected: 3 });
    assert_eq!(inb.ack(), 2, "a gap delivers nothing");
    assert_eq!(inb.receive(3, now), Receipt::Deliver);
    assert_eq!(inb.ack(), 3);
    inb.reset();
    assert_eq!(inb.ack(), 0);
    assert_eq!(inb.receive(1, now), Receipt::Deliver);
}

#[test]
fn inbound_ack_coalescing() {
    let t0 = Instant::now();
    let mut inb = Inbound::new();
    assert!(!inb.should_ack(t0, ACK_EVERY, ACK_AFTER));
    assert_eq!(inb.ack_deadline(ACK_AFTER), None);

    inb.receive(1, t0);
    inb.receive(2, t0 + Duration::from_millis(10));
    assert_eq!(inb.unacked(), 2);
    assert_eq!(
        inb.unacked_since(),
        Some(t0),
        "the oldest receipt sets the clock"
    );
    assert_eq!(inb.ack_deadline(ACK_AFTER), Some(t0 + ACK_AFTER));
    assert!(!inb.should_ack(
        t0 + ACK_AFTER - Duration::from_millis(1),
        ACK_EVERY,
        ACK_AFTER
    ));
    assert!(inb.should_ack(t0 + ACK_AFTER, ACK_EVERY, ACK_AFTER));
    assert!(inb.should_ack(t0, 2, ACK_AFTER), "count reached");

    inb.ack_sent();
    assert_eq!(inb.unacked(), 0);
    assert!(!inb.should_ack(t0 + Duration::from_secs(1), ACK_EVERY, ACK_AFTER));

    // A duplicate asks for a re-ack; a gap does not (the connection is closing).
    inb.receive(2, t0);
    assert_eq!(inb.unacked(), 1);
    inb.ack_sent();
    inb.receive(9, t0);
    assert_eq!(inb.unacked(), 0);
}

#[test]
fn outbound_push_transmit_ack() {
    let mut out = Outbound::new();
    assert_eq!(out.push("a"), 1);
    assert_eq!(out.push("b"), 2);
    assert_eq!(out.push("c"), 3);
    assert_eq!((out.len(), out.in_flight(), out.waiting()), (3, 0, 3));

    let t = out.next_transmit(2).unwrap();
    assert_eq!((t.seq, t.retransmit, *t.item), (1, false, "a"));
    *t.item = "A";
    assert_eq!(out.next_transmit(2).unwrap().seq, 2);
    assert!(out.next_transmit(2).is_none(), "window of 2 is full");
    assert_eq!(out.in_flight(), 2);

    let released: Vec<_> = out.acked(1).unwrap().collect();
    assert_eq!(released, vec![(1, "A")]);
    assert_eq!(out.next_transmit(2).unwrap().seq, 3);
    assert!(out.next_transmit(2).is_none(), "nothing left");
    assert_eq!(
        out.acked(1).unwrap().count(),
        0,
        "a repeated ack is harmless"
    );
    assert_eq!(out.acked(3).unwrap().count(), 2);
    assert!(out.is_empty());
    assert_eq!((out.ack(), out.sent(), out.next_seq()), (3, 3, 4));
}

#[test]
fn outbound_rejects_impossible_acks() {
    let mut out = Outbound::new();
    out.push("a");
    out.push("b");
    assert_eq!(
        out.acked(1).err(),
        Some(AckError::Beyond { ack: 1, sent: 0 }),
        "pushed is not sent"
    );
    out.next_transmit(8);
    out.acked(1).unwrap();
    assert_eq!(
        out.acked(0).err(),
        Some(AckError::Regressed { ack: 0, acked: 1 })
    );
    assert_eq!(out.len(), 1, "a refused ack releases nothing");
}

#[test]
fn outbound_rewind_retransmits_in_order() {
    let mut out = Outbound::new();
    for m in ["a", "b", "c", "d"] {
        out.push(m);
    }
    out.next_transmit(8);
    out.next_transmit(8);
    out.next_transmit(8);
    // Connection lost; the peer's WELCOME says it has 1.
    out.acked(1).unwrap().for_each(drop);
    out.rewind();
    assert_eq!(out.in_flight(), 0);
    assert_eq!(sent_all(&mut out), vec![(2, true), (3, true), (4, false)]);
    let items: Vec<_> = out.unacked().map(|(s, m)| (s, *m)).collect();
    assert_eq!(items, vec![(2, "b"), (3, "c"), (4, "d")]);
}

#[test]
fn outbound_ack_ahead_of_cursor_skips_retransmit() {
    let mut out = Outbound::new();
    out.push("a");
    out.push("b");
    sent_all(&mut out);
    out.rewind();
    out.acked(2).unwrap().for_each(drop);
    assert!(out.next_transmit(8).is_none());
}

#[test]
fn outbound_restart_renumbers_from_one() {
    let mut out = Outbound::new();
    for m in ["a", "b", "c", "d", "e"] {
        out.push(m);
    }
    out.next_transmit(3);
    out.next_transmit(3);
    out.next_transmit(3);
    out.acked(2).unwrap().for_each(drop);
    assert_eq!(out.restart(), 2);
    assert_eq!((out.ack(), out.sent(), out.next_seq()), (0, 1, 4));
    let items: Vec<_> = out.unacked().map(|(s, m)| (s, *m)).collect();
    assert_eq!(items, vec![(1, "c"), (2, "d"), (3, "e")]);
    // "c" went out before the loss: it may have reached the old server.
    assert_eq!(sent_all(&mut out), vec![(1, true), (2, false), (3, false)]);
}
