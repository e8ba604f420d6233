//! What the connect-phase faults (`accept_stall`, `accept_reset`, `dial_delay`) do to a new
//! connection between accept and the upstream dial: which of their open windows cover it,
//! and acting on it.
//!
//! A connection is covered the way `partition` decides it: by the window's members and the
//! connection's staggered start. Before the head is read (`key` unknown) only a fault
//! covering every connection from its start applies, so a stall or a reset of everyone
//! does not even read the client's first bytes. When several cover a connection, the
//! first in fault order among `accept_reset` and `accept_stall` wins; the delays of every
//! covering `dial_delay` add up.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Connect, Effect, accept_stall, reset};
use crate::shim::select::{self, Key, Members};
use crate::shim::{Shared, ledger};

/// Whether the connection goes on to be dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Go,
    /// A fault ended it (or the shim is stopping): drop it.
    Done,
}

/// Applies the connect-phase faults covering connection `conn` (`key` unknown yet: only
/// those over every connection, and no delay); returns whether to dial.
pub(crate) async fn before_dial(
    shared: &Shared,
    client: &TcpStream,
    conn: u64,
    key: Option<Key>,
    token: &CancellationToken,
) -> Verdict {
    let covering = covering(shared, key);
    let index = match key {
        Some(Key::Client(i)) => Some(i),
        _ => None,
    };
    let mut delay = Duration::ZERO;
    let mut delayed = Vec::new();
    for (plan, effect) in covering {
        match effect {
            Connect::Reset => {
                reset::rst(client);
                ledger::instant(shared, plan, conn, index, effect.action());
                return Verdict::Done;
            }
            Connect::Stall => {
                ledger::instant(shared, plan, conn, index, effect.action());
                accept_stall::hold(shared, plan, token).await;
                reset::rst(client);
                return Verdict::Done;
            }
            Connect::DialDelay(d) if key.is_some() => {
                delay += d;
                delayed.push(plan);
            }
            Connect::DialDelay(_) => {}
        }
    }
    for plan in delayed {
        ledger::first_act(shared, plan, index, false, None);
        ledger::emit(shared, plan, conn, index, "dial_delayed", 0);
    }
    if !delay.is_zero() {
        tokio::select! {
            _ = token.cancelled() => return Verdict::Done,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    Verdict::Go
}

/// The connect-phase faults covering a connection of `key` now, in fault order.
fn covering(shared: &Shared, key: Option<Key>) -> Vec<(usize, Connect)> {
    let set = shared.active.borrow().clone();
    let now = Instant::now();
    set.open
        .iter()
        .filter_map(|open| {
            let p = &shared.plans[open.plan];
            let Effect::Connect(effect) = p.effect else {
                return None;
            };
            let stagger = p.fault.window.stagger;
            let covered = match key {
                None => matches!(*open.members, Members::All) && stagger.is_zero(),
                Some(key) => {
                    open.members.contains(key)
                        && open.opened + select::stagger_offset(stagger, p.seed, key) <= now
                }
            };
            covered.then_some((open.plan, effect))
        })
        .collect()
}
