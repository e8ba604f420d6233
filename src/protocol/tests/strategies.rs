//! Proptest generators for frames and their bodies.

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use crate::protocol::{AppError, CloseClass, CloseInfo, Frame, Hello, SessionId, Welcome};

pub fn session_id() -> impl Strategy<Value = SessionId> {
    "[!-~]{1,128}".prop_map(|s| SessionId::new(s).expect("strategy yields valid ids"))
}

/// Whole milliseconds: the wire's resolution.
fn millis() -> impl Strategy<Value = Duration> {
    any::<u64>().prop_map(Duration::from_millis)
}

fn close_class() -> impl Strategy<Value = CloseClass> {
    prop_oneof![
        Just(CloseClass::Transient),
        Just(CloseClass::Overload),
        Just(CloseClass::Restart),
        Just(CloseClass::Moved),
        Just(CloseClass::Auth),
        Just(CloseClass::Fatal),
    ]
}

fn data() -> impl Strategy<Value = Frame> {
    let binary =
        proptest::collection::vec(any::<u8>(), 0..512).prop_map(|v| (false, Bytes::from(v)));
    let text = ".{0,128}".prop_map(|s: String| (true, Bytes::from(s)));
    (
        1..=u64::MAX,
        any::<u64>(),
        any::<bool>(),
        prop_oneof![binary, text],
    )
        .prop_map(|(seq, ack, retransmit, (text, payload))| Frame::Data {
            seq,
            ack,
            retransmit,
            text,
            payload,
        })
}

pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (session_id(), any::<bool>(), any::<u64>(), 1..=u64::MAX).prop_map(
            |(session, resume, ack, next_seq)| Frame::Hello(Hello {
                session,
                resume,
                ack,
                next_seq,
            })
        ),
        (
            session_id(),
            any::<bool>(),
            any::<u64>(),
            1..=u64::MAX,
            millis(),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(|(session, resumed, ack, next_seq, window, max_in_flight)| {
                Frame::Welcome(Welcome {
                    session,
                    resumed,
                    ack,
                    next_seq,
                    window,
                    max_in_flight,
                })
            }),
        data(),
        any::<u64>().prop_map(|ack| Frame::Ack { ack }),
        (
            any::<u64>(),
            any::<u16>(),
            close_class(),
            proptest::option::of(millis()),
            ".{0,64}",
        )
            .prop_map(|(ack, code, class, retry_after, reason)| Frame::Close {
                ack,
                info: CloseInfo {
                    code,
                    class,
                    retry_after,
                    reason,
                },
            }),
        (any::<u64>(), any::<u32>(), ".{0,64}").prop_map(|(ack, code, message)| Frame::Error {
            ack,
            error: AppError { code, message },
        }),
    ]
}
