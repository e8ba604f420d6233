//! The HELLO/WELCOME handshake applied to a session's [`Outbound`]/[`Inbound`] state:
//! resume where the peer left off, or start over and say precisely what is unverified.
//!
//! Both sides release what the peer's handshake ack covers, then rewind so every
//! unacknowledged DATA is retransmitted in order. When the server no longer has the
//! session (restarted without its sessions, or the resume window expired) both sequence
//! spaces restart at 1 and the client reports a [`Discontinuity`]: the protocol never
//! claims exactly-once across a loss of state it could not verify.

use std::ops::Range;

use thiserror::Error;

use super::control::{Hello, SessionId, Welcome};
use super::window::{AckError, Inbound, Outbound};

/// What the client cannot vouch for after the server lost its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discontinuity {
    /// Client → server messages, by their seq in the lost session (half-open range),
    /// transmitted and never acknowledged. Each may or may not have reached the server's
    /// application before its state was lost. They are all sent again (at-least-once), so
    /// any that had arrived now arrive twice: report them as unverified. Messages that
    /// were acknowledged, or never transmitted, are not here: those are certain.
    pub unvouched_out: Range<u64>,
    /// Server → client messages the client may have missed.
    pub server_gap: ServerGap,
}

impl Discontinuity {
    /// How many messages `unvouched_out` names.
    pub fn unvouched_count(&self) -> u64 {
        self.unvouched_out.end - self.unvouched_out.start
    }
}

/// The server → client side of a [`Discontinuity`]: the client received the lost
/// session's messages `1..=after`. Anything the server sent beyond is gone, and neither
/// side can count it (the server's record died with its state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerGap {
    pub after: u64,
}

/// What a handshake did to the session's sequence state.
#[derive(Debug)]
pub enum Resumption<T> {
    /// The peer kept the session. `released`: messages its handshake ack covered, oldest
    /// first; the rest are retransmitted next.
    Resumed { released: Vec<(u64, T)> },
    /// The session starts over with both seq spaces at 1. Held messages were renumbered:
    /// each seq dropped by `renumbered`. `discontinuity` is `None` only on a first
    /// connection (HELLO `resume: false`, nothing exchanged yet).
    Fresh {
        discontinuity: Option<Discontinuity>,
        renumbered: u64,
    },
}

/// A handshake no correct peer would send; the connection closes with 1002.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResumeError {
    #[error("WELCOME is for session {got}, but HELLO asked for {asked}")]
    SessionMismatch { asked: SessionId, got: SessionId },
    #[error("WELCOME resumed a session the HELLO asked to start fresh")]
    UnaskedResume,
    #[error("a fresh WELCOME must carry ack 0 and next_seq 1 (got ack {ack}, next_seq {next_seq})")]
    FreshNotEmpty { ack: u64, next_seq: u64 },
    #[error(
        "peer says its next seq is {next_seq}, but {delivered} of its messages were already delivered"
    )]
    PeerBehind { next_seq: u64, delivered: u64 },
    #[error("handshake ack: {0}")]
    Ack(#[from] AckError),
}

/// Client side: apply the server's WELCOME to the state the `hello` was built from.
///
/// On `Resumed`, transmit retransmits and then new messages. On `Fresh`, the session's
/// previous state is gone: report the discontinuity, then transmit (held messages now
/// numbered from 1, the unvouched ones flagged RETRANSMIT).
pub fn apply_welcome<T>(
    hello: &Hello,
    welcome: &Welcome,
    out: &mut Outbound<T>,
    inb: &mut Inbound,
) -> Result<Resumption<T>, ResumeError> {
    if welcome.session != hello.session {
        return Err(ResumeError::SessionMismatch {
            asked: hello.session.clone(),
            got: welcome.session.clone(),
        });
    }
    if welcome.resumed {
        if !hello.resume {
            return Err(ResumeError::UnaskedResume);
        }
        check_peer_next_seq(welcome.next_seq, inb)?;
        let released = out.acked(welcome.ack)?.collect();
        out.rewind();
        return Ok(Resumption::Resumed { released });
    }
    if welcome.ack != 0 || welcome.next_seq != 1 {
        return Err(ResumeError::FreshNotEmpty {
            ack: welcome.ack,
            next_seq: welcome.next_seq,
        });
    }
    // A failed resume is always reported, even with nothing unvouched outbound: the
    // server may have sent messages the client never saw, and nobody can count them now.
    let discontinuity = (hello.resume || out.sent() > 0 || inb.ack() > 0).then(|| Discontinuity {
        unvouched_out: out.ack() + 1..out.sent() + 1,
        server_gap: ServerGap { after: inb.ack() },
    });
    let renumbered = out.restart();
    inb.reset();
    Ok(Resumption::Fresh {
        discontinuity,
        renumbered,
    })
}

/// Server side: apply a resuming client's HELLO to the session the server still holds.
/// Returns the messages the HELLO's ack released; answer with a WELCOME carrying
/// `resumed: true`, `inb.ack()` and `out.next_seq()`, then retransmit.
///
/// A HELLO with `resume: false`, or for a session the server does not hold, needs no
/// call: the server starts fresh state (a new `Outbound` and `Inbound`) and answers
/// `resumed: false, ack: 0, next_seq: 1`.
pub fn apply_hello<T>(
    hello: &Hello,
    out: &mut Outbound<T>,
    inb: &mut Inbound,
) -> Result<Vec<(u64, T)>, ResumeError> {
    check_peer_next_seq(hello.next_seq, inb)?;
    let released = out.acked(hello.ack)?.collect();
    out.rewind();
    Ok(released)
}

/// A peer cannot have assigned fewer seqs than we already delivered from it; if it
/// claims so, it lost state while claiming to have kept it.
fn check_peer_next_seq(next_seq: u64, inb: &Inbound) -> Result<(), ResumeError> {
    if next_seq.saturating_sub(1) < inb.ack() {
        return Err(ResumeError::PeerBehind {
            next_seq,
            delivered: inb.ack(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::new(s).unwrap()
    }

    fn hello(resume: bool, ack: u64, next_seq: u64) -> Hello {
        Hello {
            session: sid("s"),
            resume,
            ack,
            next_seq,
        }
    }

    fn welcome(resumed: bool, ack: u64, next_seq: u64) -> Welcome {
        Welcome {
            session: sid("s"),
            resumed,
            ack,
            next_seq,
            window: Duration::from_secs(30),
            max_in_flight: None,
        }
    }

    /// A client that pushed 5, transmitted 1..=4, had 1 acked, and received 3.
    fn client() -> (Outbound<char>, Inbound) {
        let mut out = Outbound::new();
        for c in ['a', 'b', 'c', 'd', 'e'] {
            out.push(c);
        }
        for _ in 0..4 {
            out.next_transmit(16);
        }
        out.acked(1).unwrap().for_each(drop);
        let mut inb = Inbound::new();
        let now = Instant::now();
        for seq in 1..=3 {
            inb.receive(seq, now);
        }
        (out, inb)
    }

    #[test]
    fn resumed_releases_and_rewinds() {
        let (mut out, mut inb) = client();
        let h = hello(true, inb.ack(), out.next_seq());
        let r = apply_welcome(&h, &welcome(true, 2, 9), &mut out, &mut inb).unwrap();
        let Resumption::Resumed { released } = r else {
            panic!("expected Resumed")
        };
        assert_eq!(released, vec![(2, 'b')]);
        let t = out.next_transmit(16).unwrap();
        assert_eq!((t.seq, t.retransmit), (3, true));
        assert_eq!(inb.ack(), 3, "inbound state survives a resume");
    }

    #[test]
    fn fresh_names_exactly_the_unvouched() {
        let (mut out, mut inb) = client();
        let h = hello(true, inb.ack(), out.next_seq());
        let r = apply_welcome(&h, &welcome(false, 0, 1), &mut out, &mut inb).unwrap();
        let Resumption::Fresh {
            discontinuity: Some(d),
            renumbered,
        } = r
        else {
            panic!("expected Fresh with a discontinuity")
        };
        // 2, 3 and 4 were transmitted and not acked; 5 was never transmitted.
        assert_eq!(d.unvouched_out, 2..5);
        assert_eq!(d.unvouched_count(), 3);
        assert_eq!(d.server_gap, ServerGap { after: 3 });
        assert_eq!(renumbered, 1);
        assert_eq!(inb.ack(), 0);
        let sent: Vec<_> = std::iter::from_fn(|| {
            out.next_transmit(16)
                .map(|t| (t.seq, t.retransmit, *t.item))
        })
        .collect();
        assert_eq!(
            sent,
            vec![
                (1, true, 'b'),
                (2, true, 'c'),
                (3, true, 'd'),
                (4, false, 'e')
            ]
        );
    }

    #[test]
    fn first_connection_has_no_discontinuity() {
        let mut out = Outbound::new();
        out.push('a');
        let mut inb = Inbound::new();
        let h = hello(false, 0, out.next_seq());
        let r = apply_welcome(&h, &welcome(false, 0, 1), &mut out, &mut inb).unwrap();
        assert!(matches!(
            r,
            Resumption::Fresh {
                discontinuity: None,
                renumbered: 0
            }
        ));
        assert_eq!(out.next_transmit(1).unwrap().seq, 1);
    }

    #[test]
    fn fresh_after_everything_acked_still_reports_server_gap() {
        let mut out = Outbound::new();
        out.push('a');
        out.next_transmit(1);
        out.acked(1).unwrap().for_each(drop);
        let mut inb = Inbound::new();
        let h = hello(true, 0, out.next_seq());
        let r = apply_welcome(&h, &welcome(false, 0, 1), &mut out, &mut inb).unwrap();
        let Resumption::Fresh {
            discontinuity: Some(d),
            ..
        } = r
        else {
            panic!("expected a discontinuity")
        };
        assert!(d.unvouched_out.is_empty());
        assert_eq!(d.server_gap.after, 0);
        assert_eq!(out.next_seq(), 1);
    }

    #[test]
    fn client_rejects_inconsistent_welcomes() {
        let (mut out, mut inb) = client();
        let h = hello(true, inb.ack(), out.next_seq());
        let mut other = welcome(true, 1, 9);
        other.session = sid("t");
        assert!(matches!(
            apply_welcome(&h, &other, &mut out, &mut inb),
            Err(ResumeError::SessionMismatch { .. })
        ));
        let fresh_hello = hello(false, 0, 1);
        assert_eq!(
            apply_welcome(&fresh_hello, &welcome(true, 0, 1), &mut out, &mut inb).err(),
            Some(ResumeError::UnaskedResume)
        );
        assert_eq!(
            apply_welcome(&h, &welcome(false, 2, 1), &mut out, &mut inb).err(),
            Some(ResumeError::FreshNotEmpty {
                ack: 2,
                next_seq: 1
            })
        );
        assert_eq!(
            apply_welcome(&h, &welcome(true, 1, 3), &mut out, &mut inb).err(),
            Some(ResumeError::PeerBehind {
                next_seq: 3,
                delivered: 3
            })
        );
        assert_eq!(
            apply_welcome(&h, &welcome(true, 5, 9), &mut out, &mut inb).err(),
            Some(ResumeError::Ack(AckError::Beyond { ack: 5, sent: 4 }))
        );
        assert_eq!(
            apply_welcome(&h, &welcome(true, 0, 9), &mut out, &mut inb).err(),
            Some(ResumeError::Ack(AckError::Regressed { ack: 0, acked: 1 }))
        );
        assert_eq!(out.len(), 4, "a refused handshake changes nothing");
    }

    #[test]
    fn server_resume() {
        // The server sent 1..=3 and had 1 acked; it delivered the client's 1..=2.
        let mut out = Outbound::new();
        for c in ['x', 'y', 'z'] {
            out.push(c);
            out.next_transmit(16);
        }
        out.acked(1).unwrap().for_each(drop);
        let mut inb = Inbound::new();
        inb.receive(1, Instant::now());
        inb.receive(2, Instant::now());

        assert_eq!(
            apply_hello(&hello(true, 2, 2), &mut out, &mut inb).err(),
            Some(ResumeError::PeerBehind {
                next_seq: 2,
                delivered: 2
            })
        );
        let released = apply_hello(&hello(true, 2, 5), &mut out, &mut inb).unwrap();
        assert_eq!(released, vec![(2, 'y')]);
        let t = out.next_transmit(16).unwrap();
        assert_eq!((t.seq, t.retransmit, *t.item), (3, true, 'z'));
    }
}
