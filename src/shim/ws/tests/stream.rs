//! The layer follows any valid stream in any chunking, whether faults hold messages, stop
//! holding them half-way, or never do; garbage never panics it; what it cannot hold it
//! passes on.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio::time::Instant;

use crate::scenario::Direction;
use crate::shim::conn::ConnInfo;
use crate::shim::faults::Chunk;
use crate::shim::ws::frame::{Frame, OpCode, Parsed, parse};
use crate::shim::ws::layer::Layer;
use crate::shim::ws::message::{Item, Unit};
use crate::shim::ws::split::{Boundary, MAX_HELD};

const REQUEST: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

/// Feeds `stream` cut at `cuts` through a layer as the chain would (observe while
/// passive, split and join while not), holding messages per `holds` (cycled per chunk);
/// returns everything written, and every unit the layer made.
fn run(dir: Direction, stream: &[u8], cuts: &[usize], holds: &[bool]) -> (Vec<u8>, Vec<Unit>) {
    let info = ConnInfo::new(0, None, 0);
    let mut layer = Layer::new(dir, &info, MAX_HELD);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.extend([0, stream.len()]);
    points.sort_unstable();
    points.dedup();
    let (mut written, mut seen) = (Vec::new(), Vec::new());
    let now = Instant::now();
    let mut join = |layer: &mut Layer, mut units: Vec<Unit>, written: &mut Vec<u8>| {
        seen.extend(units.iter().cloned());
        let mut chunks = Vec::new();
        layer.join(&mut units, now, &mut chunks);
        for c in chunks {
            written.extend_from_slice(&c.data);
        }
    };
    for (i, w) in points.windows(2).enumerate() {
        let data = Bytes::copy_from_slice(&stream[w[0]..w[1]]);
        let hold = holds.is_empty() || holds[i % holds.len()];
        if layer.passive(hold) {
            layer.observe(&data);
            written.extend_from_slice(&data);
        } else {
            let mut units = Vec::new();
            layer.split(Chunk::new(data, now), hold, &mut units);
            join(&mut layer, units, &mut written);
        }
    }
    let mut units = Vec::new();
    layer.release(now, &mut units);
    join(&mut layer, units, &mut written);
    assert!(layer.passive(false), "nothing left held");
    (written, seen)
}

fn frames_of(mut wire: Bytes) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        match parse(&wire, u64::MAX) {
            Ok(Parsed::Frame(f, used)) => {
                frames.push(f);
                let _ = wire.split_to(used);
            }
            other => panic!("not whole frames: {other:?}, {} bytes left", wire.len()),
        }
    }
    frames
}

/// Messages of 1–3 fragments, pings between fragments and between messages.
fn script() -> impl Strategy<Value = Vec<(usize, Vec<usize>, Vec<bool>, bool)>> {
    proptest::collection::vec(
        (
            1usize..4,
            proptest::collection::vec(0usize..200, 3),
            proptest::collection::vec(any::<bool>(), 3),
            any::<bool>(),
        ),
        0..8,
    )
}

fn encode(script: &[(usize, Vec<usize>, Vec<bool>, bool)], masked: bool) -> Vec<Frame> {
    let mut frames = Vec::new();
    for (m, (parts, sizes, pings, binary)) in script.iter().enumerate() {
        for i in 0..*parts {
            let opcode = match (i, binary) {
                (0, true) => OpCode::Binary,
                (0, false) => OpCode::Text,
                _ => OpCode::Continuation,
            };
            let mask = masked.then_some([m as u8, i as u8, 7, 9]);
            let payload = vec![b'a' + (m % 26) as u8; sizes[i]];
            frames.push(Frame::new(i + 1 == *parts, 0, opcode, &payload, mask));
            if pings[i] {
                frames.push(Frame::new(true, 0, OpCode::Ping, &[i as u8], mask));
            }
        }
    }
    frames
}

fn split_by_kind(frames: &[Frame]) -> (Vec<Frame>, Vec<Frame>) {
    frames
        .iter()
        .cloned()
        .partition(|f| !f.header.opcode.is_control())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_chunking_and_holding_keeps_every_frame_and_valid_framing(
        script in script(),
        upstream in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        holds in proptest::collection::vec(any::<bool>(), 0..6),
    ) {
        let (dir, head) = match upstream {
            true => (Direction::Upstream, REQUEST),
            false => (Direction::Downstream, RESPONSE),
        };
        let frames = encode(&script, upstream);
        let mut stream = head.to_vec();
        for f in &frames {
            stream.extend_from_slice(&f.raw);
        }
        let (written, units) = run(dir, &stream, &cuts, &holds);
        prop_assert_eq!(written.len(), stream.len());
        prop_assert_eq!(&written[..head.len()], head);
        let out = frames_of(Bytes::copy_from_slice(&written[head.len()..]));
        // Data frames keep their order, controls theirs; a control may pass a held message.
        prop_assert_eq!(split_by_kind(&out), split_by_kind(&frames));
        // Every message held whole is one of the script's messages.
        for unit in &units {
            if let Item::Message(m) = &unit.item {
                prop_assert!(m.frames.last().unwrap().header.fin);
                prop_assert!(m.frames[1..].iter().all(|f| f.header.opcode == OpCode::Continuation));
            }
        }
    }

    #[test]
    fn garbage_after_the_upgrade_never_panics_and_is_all_passed_on(
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        holds in proptest::collection::vec(any::<bool>(), 0..6),
    ) {
        let stream = [RESPONSE, &garbage].concat();
        let (written, _) = run(Direction::Downstream, &stream, &cuts, &holds);
        prop_assert_eq!(written.len(), stream.len());
    }
}

#[test]
fn holding_gives_whole_messages_and_controls_in_between() {
    let mask = Some([1, 2, 3, 4]);
    let frames = [
        Frame::new(false, 0, OpCode::Text, b"hel", mask),
        Frame::new(true, 0, OpCode::Ping, b"x", mask),
        Frame::new(true, 0, OpCode::Continuation, b"lo", mask),
        Frame::new(true, 0, OpCode::Binary, &[0; 70_000], mask),
    ];
    let stream = [
        REQUEST,
        &frames
            .iter()
            .flat_map(|f| f.raw.to_vec())
            .collect::<Vec<_>>(),
    ]
    .concat();
    let (_, units) = run(
        Direction::Upstream,
        &stream,
        &[REQUEST.len() + 3, 100, 5000],
        &[true],
    );
    let kinds: Vec<String> = units
        .iter()
        .map(|u| match &u.item {
            Item::Raw { after, .. } => format!("raw {after:?}"),
            Item::Control(f) => format!("{:?}", f.header.opcode),
            Item::Message(m) => format!("{:?}×{}", m.opcode(), m.frames.len()),
        })
        .collect();
    assert_eq!(kinds, ["raw Clear", "Ping", "Text×2", "Binary×1"]);
}

#[test]
fn a_message_too_large_to_hold_passes_raw_and_is_counted() {
    let info = ConnInfo::new(0, None, 0);
    let mut layer = Layer::new(Direction::Downstream, &info, MAX_HELD);
    let now = Instant::now();
    let mut units = Vec::new();
    layer.split(
        Chunk::new(Bytes::from_static(RESPONSE), now),
        true,
        &mut units,
    );
    let small = Frame::new(false, 0, OpCode::Binary, b"abc", None);
    let big = Frame::new(
        true,
        0,
        OpCode::Continuation,
        &vec![7; MAX_HELD as usize],
        None,
    );
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&small.raw);
    wire.extend_from_slice(&big.raw);
    units.clear();
    layer.split(Chunk::new(wire.freeze(), now), true, &mut units);
    let afters: Vec<Boundary> = units
        .iter()
        .map(|u| match &u.item {
            Item::Raw { after, .. } => *after,
            other => panic!("held: {other:?}"),
        })
        .collect();
    // The held fragment, then the big one's header and payload as they come.
    assert_eq!(
        afters,
        [Boundary::MidMessage, Boundary::MidFrame, Boundary::Clear]
    );
    assert_eq!(layer.take_skipped(), 1);
    assert!(layer.passive(false));
}

#[test]
fn framing_errors_give_up_and_pass_the_rest_raw() {
    let info = ConnInfo::new(0, None, 0);
    let mut layer = Layer::new(Direction::Downstream, &info, MAX_HELD);
    layer.observe(RESPONSE);
    layer.observe(&Frame::new(true, 0, OpCode::Text, b"fine", None).raw);
    assert_eq!(layer.take_gave_up(), None);
    layer.observe(&[0x83, 0x00, 0xff, 0xff]); // reserved opcode 3
    assert_eq!(layer.take_gave_up().as_deref(), Some("reserved opcode 0x3"));
    let mut units = Vec::new();
    let now = Instant::now();
    layer.split(
        Chunk::new(Bytes::from_static(b"\x81\x02hi"), now),
        true,
        &mut units,
    );
    assert!(matches!(
        &units[..],
        [Unit {
            item: Item::Raw {
                after: Boundary::Lost,
                ..
            },
            ..
        }]
    ));
    // Not an upgrade at all: nothing to give up, nothing followed.
    let mut refused = Layer::new(Direction::Downstream, &info, MAX_HELD);
    refused.observe(b"HTTP/1.1 503 Busy\r\n\r\n\x83\x00");
    assert_eq!(refused.take_gave_up(), None);
}
