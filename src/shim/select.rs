//! Which connections a fault touches.
//!
//! A connection is known by its [`Key`]: the client index from its `x-squall-client`
//! header, or its accept-order id when the shim could not tell. Two ways to choose:
//!
//! - **Membership** ([`Members`], windowed faults): decided per key, so a client that
//!   reconnects during the window is still chosen (or still spared). `Share` hashes
//!   (fault seed, key) into `[0, 1)` and compares it with the share: deterministic, stable,
//!   close to the share over many clients. `Count(n)` takes exactly `n` keys: drawn among
//!   those open when the window opens, then, while fewer than `n`, the first to connect
//!   during the window (so `at: 0s` with clients still ramping up works). `Clients` is
//!   its list.
//! - **A pick at a moment** ([`pick`], instantaneous faults): of the connections open at a
//!   firing, sorted by key, exactly `round(share × open)` (or `n`, or the listed clients),
//!   drawn from an RNG of (fault seed, firing number), so the report's counts are exact and
//!   the same seed picks the same connections.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt;

use crate::rng::{self, Rng};
use crate::scenario::Connections;

/// How a fault knows a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    /// Client index from the upgrade head.
    Client(u32),
    /// Accept order, when the client is unknown.
    Conn(u64),
}

/// A connection open at the moment of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenConn {
    pub conn: u64,
    pub key: Key,
}

/// The keys a windowed fault acts on during one window.
#[derive(Debug)]
pub(crate) enum Members {
    All,
    Share {
        share: f64,
        seed: u64,
    },
    Keys(HashSet<Key>),
    /// At most `n` keys, filled up first come first served. Checked when a link starts
    /// or the timeline changes, never per chunk, so the lock is off the hot path.
    Count {
        n: usize,
        keys: Mutex<HashSet<Key>>,
    },
}

impl Members {
    /// Membership for window number `window` of a fault with seed `seed`; `open` lists
    /// the keys open now (only `Count` needs them).
    pub fn new(
        connections: &Connections,
        seed: u64,
        window: u32,
        open: impl FnOnce() -> Vec<Key>,
    ) -> Self {
        match connections {
            Connections::All => Members::All,
            Connections::Share(s) => Members::Share {
                share: s.0,
                seed: rng::derive(seed, "share", 0),
            },
            Connections::Clients(list) => {
                Members::Keys(list.iter().map(|&i| Key::Client(i)).collect())
            }
            Connections::Count(n) => {
                let mut keys = open();
                keys.sort_unstable();
                keys.dedup();
                let mut rng = rng::rng(seed, "window", u64::from(window));
                let n = *n as usize;
                let take = n.min(keys.len());
                let drawn = sample(keys, take, &mut rng);
                Members::Count {
                    n,
                    keys: Mutex::new(drawn.into_iter().collect()),
                }
            }
        }
    }

    pub fn contains(&self, key: Key) -> bool {
        match self {
            Members::All => true,
            Members::Share { share, seed } => fraction(*seed, key) < *share,
            Members::Keys(keys) => keys.contains(&key),
            Members::Count { n, keys } => {
                let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
                keys.contains(&key) || (keys.len() < *n && keys.insert(key))
            }
        }
    }
}

/// The connections an instantaneous fault hits at firing number `firing`, in the order
/// it hits them (random, so a stagger does not always start with client 0).
pub(crate) fn pick(
    connections: &Connections,
    seed: u64,
    firing: u32,
    mut open: Vec<OpenConn>,
) -> Vec<OpenConn> {
    open.sort_unstable_by_key(|c| (c.key, c.conn));
    let mut rng = rng::rng(seed, "firing", u64::from(firing));
    match connections {
        Connections::All => open,
        Connections::Clients(list) => {
            open.retain(|c| matches!(c.key, Key::Client(i) if list.contains(&i)));
            open
        }
        Connections::Share(s) => {
            let n = ((s.0 * open.len() as f64).round() as usize).min(open.len());
            sample(open, n, &mut rng)
        }
        Connections::Count(n) => {
            let n = (*n as usize).min(open.len());
            sample(open, n, &mut rng)
        }
    }
}

/// When a staggered fault starts on `key`: `stagger` scaled by the key's own fraction.
pub(crate) fn stagger_offset(stagger: Duration, seed: u64, key: Key) -> Duration {
    if stagger.is_zero() {
        return Duration::ZERO;
    }
    stagger.mul_f64(fraction(rng::derive(seed, "stagger", 0), key))
}

/// Exactly `k` items drawn without replacement (partial Fisher–Yates), in draw order.
fn sample<T>(mut items: Vec<T>, k: usize, rng: &mut Rng) -> Vec<T> {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = rng.random_range(i..n);
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

/// A key's position in `[0, 1)`, uniform over keys, fixed for a seed.
fn fraction(seed: u64, key: Key) -> f64 {
    let h = match key {
        Key::Client(i) => rng::derive(seed, "client", u64::from(i)),
        Key::Conn(c) => rng::derive(seed, "conn", c),
    };
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Share;

    fn open(n: u32) -> Vec<OpenConn> {
        // Deliberately out of accept order: picks must not depend on it.
        (0..n)
            .rev()
            .map(|i| OpenConn {
                conn: u64::from(i) * 7 % 13,
                key: Key::Client(i),
            })
            .collect()
    }

    fn clients(picked: &[OpenConn]) -> Vec<u32> {
        let mut v: Vec<u32> = picked
            .iter()
            .map(|c| match c.key {
                Key::Client(i) => i,
                Key::Conn(_) => u32::MAX,
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn share_picks_exactly_the_rounded_share() {
        let share = Connections::Share(Share(0.25));
        assert_eq!(pick(&share, 1, 0, open(8)).len(), 2);
        assert_eq!(pick(&share, 1, 0, open(10)).len(), 3); // 2.5 rounds to 3
        assert_eq!(pick(&share, 1, 0, open(1)).len(), 0);
        assert_eq!(
            pick(&Connections::Share(Share(1.0)), 1, 0, open(5)).len(),
            5
        );
        assert_eq!(pick(&Connections::Count(3), 1, 0, open(8)).len(), 3);
        assert_eq!(pick(&Connections::Count(30), 1, 0, open(8)).len(), 8);
        assert_eq!(pick(&Connections::All, 1, 0, open(4)).len(), 4);
    }

    #[test]
    fn picks_replay_with_the_seed_and_vary_with_it_and_the_firing() {
        let share = Connections::Share(Share(0.5));
        let a = clients(&pick(&share, 42, 0, open(16)));
        assert_eq!(a, clients(&pick(&share, 42, 0, open(16))));
        assert!((1..6).any(|s| clients(&pick(&share, s, 0, open(16))) != a));
        assert!((1..6).any(|f| clients(&pick(&share, 42, f, open(16))) != a));
    }

    #[test]
    fn clients_list_picks_those_indices_only() {
        let picked = pick(&Connections::Clients(vec![1, 3, 99]), 1, 0, open(5));
        assert_eq!(clients(&picked), vec![1, 3]);
        let m = Members::new(&Connections::Clients(vec![2]), 1, 0, Vec::new);
        assert!(
            m.contains(Key::Client(2)) && !m.contains(Key::Client(1)) && !m.contains(Key::Conn(2))
        );
    }

    #[test]
    fn share_membership_is_close_stable_and_seeded() {
        let m = Members::new(&Connections::Share(Share(0.25)), 7, 0, Vec::new);
        let chosen = (0..10_000).filter(|&i| m.contains(Key::Client(i))).count();
        assert!((2_300..2_700).contains(&chosen), "{chosen}");
        // Same client, later window or reconnection: same answer.
        let again = Members::new(&Connections::Share(Share(0.25)), 7, 5, Vec::new);
        assert!((0..1000).all(|i| m.contains(Key::Client(i)) == again.contains(Key::Client(i))));
        let other = Members::new(&Connections::Share(Share(0.25)), 8, 0, Vec::new);
        assert!((0..1000).any(|i| m.contains(Key::Client(i)) != other.contains(Key::Client(i))));
    }

    #[test]
    fn count_membership_takes_exactly_n_distinct_open_keys() {
        let keys = || {
            vec![
                Key::Client(3),
                Key::Client(1),
                Key::Client(3),
                Key::Conn(9),
                Key::Client(2),
            ]
        };
        let m = Members::new(&Connections::Count(2), 1, 0, keys);
        let all = [
            Key::Client(1),
            Key::Client(2),
            Key::Client(3),
            Key::Conn(9),
            Key::Client(50),
        ];
        let chosen: Vec<_> = all.iter().filter(|k| m.contains(**k)).collect();
        assert_eq!(chosen.len(), 2);
        assert!(!chosen.contains(&&Key::Client(50)), "open keys come first");
        assert!(
            chosen.iter().all(|k| m.contains(**k)),
            "asking again, same answer"
        );
    }

    #[test]
    fn count_membership_fills_up_with_late_arrivals() {
        let m = Members::new(&Connections::Count(2), 1, 0, || vec![Key::Client(4)]);
        assert!(m.contains(Key::Client(4)));
        assert!(
            m.contains(Key::Client(9)),
            "a free place goes to the first to come"
        );
        assert!(!m.contains(Key::Client(1)), "then it is full");
        assert!(m.contains(Key::Client(9)), "a reconnection keeps its place");
    }

    #[test]
    fn stagger_offsets_spread_within_the_span() {
        let span = Duration::from_millis(100);
        let offs: Vec<_> = (0..100)
            .map(|i| stagger_offset(span, 1, Key::Client(i)))
            .collect();
        assert!(offs.iter().all(|o| *o < span));
        assert!(offs.iter().any(|o| *o < span / 4) && offs.iter().any(|o| *o > span * 3 / 4));
        assert_eq!(
            stagger_offset(Duration::ZERO, 1, Key::Client(0)),
            Duration::ZERO
        );
    }
}
