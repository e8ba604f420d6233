//! Both ends of one session, each an [`Outbound`] and an [`Inbound`], exchanging encoded
//! frames over a simulated connection that loses messages and reconnects on a schedule
//! proptest chooses. The connection never reorders; at each reconnect any suffix of what
//! was in flight is lost, and mid-connection a whole message may vanish (a gap).
//!
//! Checked against a model kept beside the implementation: every message is delivered
//! once and in order when the server keeps its state; when it loses it, the client's
//! [`Discontinuity`] names exactly the messages transmitted and not acknowledged, the
//! only ones delivered twice are those of them the lost server had delivered, and the
//! server-to-client gap is exactly what the client had received.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use tokio::time::Instant;

use crate::protocol::{
    Discontinuity, Flags, Frame, Hello, Inbound, Outbound, Receipt, Resumption, SessionId, Welcome,
    apply_hello, apply_welcome, decode, encode, encode_data,
};

/// A position in a collection whose size is known only when the step runs.
#[derive(Debug, Clone, Copy)]
struct Pick(u32);

impl Pick {
    /// Maps onto `0..size` (`size` > 0), evenly.
    fn index(self, size: usize) -> usize {
        ((size as u64 * u64::from(self.0)) >> 32) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

#[derive(Debug, Clone)]
enum Step {
    /// The application sends this many new messages (queued, not yet on the wire).
    Push(Side, u8),
    /// Put on the wire whatever the window allows.
    Transmit(Side),
    /// Up to this many frames from this side arrive at the other.
    Deliver(Side, u8),
    /// An idle ACK frame.
    Ack(Side),
    /// One in-flight message from this side vanishes.
    LoseOne(Side, Pick),
    /// The connection dies: a prefix of each direction's in-flight frames arrives, the
    /// rest is lost; the server may lose the session; the client reconnects.
    Reconnect {
        keep_c2s: Pick,
        keep_s2c: Pick,
        lose_state: bool,
    },
}

/// One end: what it sends (items are application message ids) and receives.
#[derive(Default)]
struct End {
    out: Outbound<u64>,
    inb: Inbound,
    transmitted: BTreeSet<u64>,
}

/// A server incarnation, as the model sees it.
struct Epoch {
    /// Client id = client seq + this, in this incarnation's seq space.
    client_base: u64,
    /// Client ids its application received, in order.
    delivered: Vec<u64>,
    /// Server id = server seq + this.
    server_base: u64,
    /// Server messages its application sent.
    pushed: u64,
    /// When lost: the client's report of what it had received from it.
    gap_after: Option<u64>,
}

struct Sim {
    now: Instant,
    window: u32,
    session: SessionId,
    client: End,
    server: End,
    server_has_state: bool,
    connected_before: bool,
    c2s: VecDeque<Bytes>,
    s2c: VecDeque<Bytes>,
    next_client_id: u64,
    next_server_id: u64,
    /// Client ids <= this were acknowledged by the server (acks are cumulative).
    client_acked_through: u64,
    /// What the client's application received, in order.
    client_received: Vec<u64>,
    epochs: Vec<Epoch>,
    /// Per client id: how many losses left it unvouched after the lost server had
    /// delivered it (each one is a duplicate to expect).
    expected_repeats: BTreeMap<u64, u64>,
    discontinuities: Vec<Discontinuity>,
}

impl Sim {
    fn new(window: u32) -> Sim {
        let mut sim = Sim {
            now: Instant::now(),
            window,
            session: SessionId::new("sim").unwrap(),
            client: End::default(),
            server: End::default(),
            server_has_state: false,
            connected_before: false,
            c2s: VecDeque::new(),
            s2c: VecDeque::new(),
            next_client_id: 1,
            next_server_id: 1,
            client_acked_through: 0,
            client_received: Vec::new(),
            epochs: Vec::new(),
            expected_repeats: BTreeMap::new(),
            discontinuities: Vec::new(),
        };
        sim.handshake(false);
        sim
    }

    fn run(&mut self, step: &Step, allow_loss: bool) {
        match *step {
            Step::Push(Side::Client, n) => {
                for _ in 0..n {
                    self.client.out.push(self.next_client_id);
                    self.next_client_id += 1;
                }
            }
            Step::Push(Side::Server, n) => {
                for _ in 0..n {
                    self.server.out.push(self.next_server_id);
                    self.next_server_id += 1;
                    self.epochs.last_mut().unwrap().pushed += 1;
                }
            }
            Step::Transmit(side) => self.transmit(side),
            Step::Deliver(side, n) => {
                for _ in 0..n {
                    if self.queue(side).is_empty() {
                        break;
                    }
                    if !self.deliver_one(side) {
                        // The receiver saw a gap and closed: everything in flight is
                        // lost, and the client resumes.
                        self.c2s.clear();
                        self.s2c.clear();
                        self.handshake(false);
                        break;
                    }
                }
            }
            Step::Ack(side) => {
                let end = self.end(side);
                if end.inb.unacked() > 0 {
                    let frame = encode(&Frame::Ack { ack: end.inb.ack() });
                    end.inb.ack_sent();
                    self.queue(side).push_back(frame);
                }
            }
            Step::LoseOne(side, at) => {
                let queue = self.queue(side);
                if !queue.is_empty() {
                    queue.remove(at.index(queue.len()));
                }
            }
            Step::Reconnect {
                keep_c2s,
                keep_s2c,
                lose_state,
            } => {
                let keep_c2s = keep_c2s.index(self.c2s.len() + 1);
                let keep_s2c = keep_s2c.index(self.s2c.len() + 1);
                self.arrive(Side::Client, keep_c2s);
                self.arrive(Side::Server, keep_s2c);
                self.c2s.clear();
                self.s2c.clear();
                self.handshake(lose_state && allow_loss);
            }
        }
    }

    /// The first `n` frames from `side` arrive on a dying connection (a gap stops them).
    fn arrive(&mut self, side: Side, n: usize) {
        for _ in 0..n {
            if !self.deliver_one(side) {
                return;
            }
        }
    }

    fn end(&mut self, side: Side) -> &mut End {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn queue(&mut self, from: Side) -> &mut VecDeque<Bytes> {
        match from {
            Side::Client => &mut self.c2s,
            Side::Server => &mut self.s2c,
        }
    }

    fn transmit(&mut self, side: Side) {
        let (end, queue) = match side {
            Side::Client => (&mut self.client, &mut self.c2s),
            Side::Server => (&mut self.server, &mut self.s2c),
        };
        let End {
            out,
            inb,
            transmitted,
        } = end;
        let mut any = false;
        while let Some(t) = out.next_transmit(self.window) {
            let id = *t.item;
            assert_eq!(
                t.retransmit,
                transmitted.contains(&id),
                "RETRANSMIT flag of {id}"
            );
            transmitted.insert(id);
            let flags = Flags::new(t.retransmit, false);
            queue.push_back(encode_data(t.seq, inb.ack(), flags, &id.to_be_bytes()));
            any = true;
        }
        if any {
            inb.ack_sent();
        }
    }

    /// The next frame from `from` reaches the other side. False when it revealed a gap.
    fn deliver_one(&mut self, from: Side) -> bool {
        let bytes = self.queue(from).pop_front().expect("caller checked");
        let frame = decode(&bytes).expect("nothing corrupts frames here");
        let now = self.now;
        let to = match from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let end = self.end(to);
        end.out
            .acked(frame.ack())
            .expect("a correct peer's ack")
            .for_each(drop);
        if to == Side::Client {
            let base = self.epochs.last().unwrap().client_base;
            self.client_acked_through = self.client_acked_through.max(base + frame.ack());
        }
        let Frame::Data { seq, payload, .. } = frame else {
            return true;
        };
        let end = self.end(to);
        match end.inb.receive(seq, now) {
            Receipt::Deliver => {
                let id = u64::from_be_bytes(payload[..].try_into().unwrap());
                match to {
                    Side::Client => self.client_received.push(id),
                    Side::Server => self.epochs.last_mut().unwrap().delivered.push(id),
                }
                true
            }
            Receipt::Duplicate => true,
            Receipt::Gap { .. } => false,
        }
    }

    fn handshake(&mut self, lose_state: bool) {
        if lose_state {
            self.server_has_state = false;
        }
        let hello = Hello {
            session: self.session.clone(),
            resume: self.connected_before,
            ack: self.client.inb.ack(),
            next_seq: self.client.out.next_seq(),
        };
        let Frame::Hello(hello) = decode(&encode(&Frame::Hello(hello))).unwrap() else {
            panic!("HELLO did not round-trip")
        };

        let welcome = if self.server_has_state && hello.resume {
            apply_hello(&hello, &mut self.server.out, &mut self.server.inb)
                .expect("a correct client's HELLO");
            Welcome {
                session: hello.session.clone(),
                resumed: true,
                ack: self.server.inb.ack(),
                next_seq: self.server.out.next_seq(),
                window: Duration::from_secs(30),
                max_in_flight: None,
            }
        } else {
            // A fresh incarnation: whatever the old one held is gone.
            self.server = End::default();
            self.server_has_state = true;
            self.epochs.push(Epoch {
                client_base: self.client_acked_through,
                delivered: Vec::new(),
                server_base: self.next_server_id - 1,
                pushed: 0,
                gap_after: None,
            });
            Welcome {
                session: hello.session.clone(),
                resumed: false,
                ack: 0,
                next_seq: 1,
                window: Duration::from_secs(30),
                max_in_flight: None,
            }
        };
        self.server.inb.ack_sent();
        let Frame::Welcome(welcome) = decode(&encode(&Frame::Welcome(welcome))).unwrap() else {
            panic!("WELCOME did not round-trip")
        };

        match apply_welcome(&hello, &welcome, &mut self.client.out, &mut self.client.inb)
            .expect("a correct server's WELCOME")
        {
            Resumption::Resumed { released } => {
                let base = self.epochs.last().unwrap().client_base;
                for (seq, id) in released {
                    assert_eq!(id, base + seq, "released in seq order");
                }
                self.client_acked_through = self.client_acked_through.max(base + welcome.ack);
            }
            Resumption::Fresh {
                discontinuity,
                renumbered,
            } => {
                if !self.connected_before {
                    assert!(discontinuity.is_none(), "a first connection loses nothing");
                    assert_eq!(renumbered, 0);
                } else {
                    self.session_lost(discontinuity.expect("a resume that failed is reported"));
                }
                // The renumbering keeps id = seq + base, base = everything acknowledged.
                let new_base = self.epochs.last().unwrap().client_base;
                let old_base = match self.epochs.len() {
                    1 => 0,
                    n => self.epochs[n - 2].client_base,
                };
                assert_eq!(old_base + renumbered, new_base);
            }
        }
        self.client.inb.ack_sent();
        self.connected_before = true;
    }

    /// Checks a discontinuity against the model and records what it predicts.
    fn session_lost(&mut self, d: Discontinuity) {
        let n = self.epochs.len();
        let lost = &mut self.epochs[n - 2];
        let reported: BTreeSet<u64> = d
            .unvouched_out
            .clone()
            .map(|seq| seq + lost.client_base)
            .collect();
        let model: BTreeSet<u64> = self
            .client
            .transmitted
            .range(self.client_acked_through + 1..)
            .copied()
            .collect();
        assert_eq!(
            reported, model,
            "unvouched = transmitted and not acknowledged"
        );
        let delivered: BTreeSet<u64> = lost.delivered.iter().copied().collect();
        for id in reported.intersection(&delivered) {
            *self.expected_repeats.entry(*id).or_default() += 1;
        }
        assert!(d.server_gap.after <= lost.pushed);
        lost.gap_after = Some(d.server_gap.after);
        self.discontinuities.push(d);
    }

    /// A clean reconnect, then exchange until nothing is left.
    fn drain(&mut self) {
        self.run(
            &Step::Reconnect {
                keep_c2s: Pick(0),
                keep_s2c: Pick(0),
                lose_state: false,
            },
            false,
        );
        for _ in 0..100_000 {
            if self.client.out.is_empty() && self.server.out.is_empty() {
                return;
            }
            for side in [Side::Client, Side::Server] {
                self.transmit(side);
            }
            self.deliver_all();
            for side in [Side::Client, Side::Server] {
                self.run(&Step::Ack(side), false);
            }
            self.deliver_all();
        }
        panic!("did not drain");
    }

    fn deliver_all(&mut self) {
        for side in [Side::Client, Side::Server] {
            while !self.queue(side).is_empty() {
                assert!(self.deliver_one(side), "no gap without loss");
            }
        }
    }

    fn check(&self) {
        // Client → server: within each server incarnation, in order and once each.
        let mut count: BTreeMap<u64, u64> = BTreeMap::new();
        for epoch in &self.epochs {
            let expect: Vec<u64> = (epoch.client_base + 1..)
                .take(epoch.delivered.len())
                .collect();
            assert_eq!(epoch.delivered, expect, "in order, once, per incarnation");
            for id in &epoch.delivered {
                *count.entry(*id).or_default() += 1;
            }
        }
        for id in 1..self.next_client_id {
            let repeats = self.expected_repeats.get(&id).copied().unwrap_or(0);
            assert_eq!(
                count.get(&id).copied(),
                Some(1 + repeats),
                "client message {id}"
            );
        }
        // Server → client: each lost incarnation's messages up to the reported gap, then
        // everything from the last one.
        let mut expect = Vec::new();
        for epoch in &self.epochs {
            let k = epoch.gap_after.unwrap_or(epoch.pushed);
            expect.extend(epoch.server_base + 1..=epoch.server_base + k);
        }
        assert_eq!(self.client_received, expect, "server messages");
    }
}

fn step() -> impl Strategy<Value = Step> {
    let side = prop_oneof![Just(Side::Client), Just(Side::Server)];
    prop_oneof![
        4 => (side.clone(), 1u8..=3).prop_map(|(s, n)| Step::Push(s, n)),
        3 => side.clone().prop_map(Step::Transmit),
        4 => (side.clone(), 1u8..=4).prop_map(|(s, n)| Step::Deliver(s, n)),
        1 => side.clone().prop_map(Step::Ack),
        1 => (side, any::<u32>().prop_map(Pick)).prop_map(|(s, i)| Step::LoseOne(s, i)),
        1 => (any::<u32>().prop_map(Pick), any::<u32>().prop_map(Pick), any::<bool>()).prop_map(|(a, b, lose_state)| {
            Step::Reconnect {
                keep_c2s: a,
                keep_s2c: b,
                lose_state,
            }
        }),
    ]
}

fn simulate(window: u32, steps: &[Step], allow_loss: bool) -> Sim {
    let mut sim = Sim::new(window);
    for step in steps {
        sim.run(step, allow_loss);
    }
    sim.drain();
    sim.check();
    sim
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The server keeps its sessions: exactly once, in order, both ways.
    #[test]
    fn exactly_once_across_drops_and_reconnects(
        window in 1u32..=6,
        steps in proptest::collection::vec(step(), 0..80),
    ) {
        let sim = simulate(window, &steps, false);
        prop_assert!(sim.discontinuities.is_empty());
        prop_assert_eq!(sim.epochs.len(), 1);
        let expect: Vec<u64> = (1..sim.next_client_id).collect();
        prop_assert_eq!(&sim.epochs[0].delivered, &expect);
    }

    /// The server may also lose its sessions: duplicates happen only where the client's
    /// discontinuity said they could.
    #[test]
    fn discontinuity_names_exactly_the_unverified(
        window in 1u32..=6,
        steps in proptest::collection::vec(step(), 0..80),
    ) {
        simulate(window, &steps, true);
    }
}

/// The case the report exists for: two of three messages reached the server's
/// application, no ack came back, then the server lost the session.
#[test]
fn session_loss_duplicates_only_what_was_unvouched() {
    use Side::*;
    let steps = [
        Step::Push(Client, 3),
        Step::Push(Client, 1),
        Step::Transmit(Client),
        Step::Deliver(Client, 2),
        Step::Reconnect {
            keep_c2s: Pick(0),
            keep_s2c: Pick(0),
            lose_state: true,
        },
    ];
    let sim = simulate(3, &steps, true);
    assert_eq!(sim.discontinuities.len(), 1);
    let d = &sim.discontinuities[0];
    assert_eq!(d.unvouched_out, 1..4, "4 was never transmitted (window 3)");
    assert_eq!(d.server_gap.after, 0);
    assert_eq!(sim.epochs[0].delivered, vec![1, 2]);
    assert_eq!(sim.epochs[1].delivered, vec![1, 2, 3, 4]);
    assert_eq!(sim.expected_repeats, BTreeMap::from([(1, 1), (2, 1)]));
}
