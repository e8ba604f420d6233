//! Running out of descriptors or ports: the socket errors that say the harness itself hit
//! a limit (EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS), recognised wherever a socket is
//! accepted or connected, counted process-wide (the limits are per process or per
//! machine), and explained with the limit and the remedy.
//!
//! A run that sees one is measuring its own limits rather than the target's recovery:
//! `run` checks [`Tally::since`] every second and stops with exit code 3 and the
//! message. Accept loops back off ([`AcceptErrors`]) and log once per streak rather than
//! spinning or dying: the pending connections wait in the backlog.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// EMFILE: this process's open-file limit (`ulimit -n`).
    Descriptors,
    /// ENFILE: the machine's open-file table (`fs.file-max`).
    SystemDescriptors,
    /// EADDRNOTAVAIL on connect: no ephemeral port left for the destination.
    Ports,
    /// ENOBUFS or ENOMEM: kernel memory for sockets.
    SocketMemory,
}

const KINDS: [Exhausted; 4] = [
    Exhausted::Descriptors,
    Exhausted::SystemDescriptors,
    Exhausted::Ports,
    Exhausted::SocketMemory,
];

static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

impl Exhausted {
    /// The limit `e` reports hitting, if it is one of these.
    pub fn of(e: &io::Error) -> Option<Exhausted> {
        match e.raw_os_error()? {
            libc::EMFILE => Some(Exhausted::Descriptors),
            libc::ENFILE => Some(Exhausted::SystemDescriptors),
            libc::EADDRNOTAVAIL => Some(Exhausted::Ports),
            libc::ENOBUFS | libc::ENOMEM => Some(Exhausted::SocketMemory),
            _ => None,
        }
    }

    /// Counts `e` if it says a limit was hit; returns which.
    pub fn note(e: &io::Error) -> Option<Exhausted> {
        let kind = Exhausted::of(e)?;
        COUNTS[kind as usize].fetch_add(1, Ordering::Relaxed);
        Some(kind)
    }

    /// A few words for an event or a disconnect reason.
    pub fn short(self) -> &'static str {
        match self {
            Exhausted::Descriptors => "too many open files (EMFILE)",
            Exhausted::SystemDescriptors => "the system's file table is full (ENFILE)",
            Exhausted::Ports => "no ephemeral port left (EADDRNOTAVAIL)",
            Exhausted::SocketMemory => "no kernel memory for sockets (ENOBUFS)",
        }
    }

    /// What the limit is and what to do about it.
    pub fn explain(self) -> String {
        match self {
            Exhausted::Descriptors => {
                let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .map_or_else(|_| "?".into(), |(soft, _)| soft.to_string());
                format!(
                    "this process ran out of open files: its limit is {limit} (`ulimit -n`), and \
                     something else holds descriptors the run counted on. Raise the limit \
                     (`ulimit -n`, `ulimit -Hn` as root, LimitNOFILE= in a systemd unit), lower \
                     `clients`, or spread the run over processes (`--workers N`, `--shard I/N`)"
                )
            }
            Exhausted::SystemDescriptors => "the machine's open-file table is full (ENFILE): \
                 raise `fs.file-max` (sysctl) or run fewer processes on this machine"
                .into(),
            Exhausted::Ports => {
                let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                    .map_or_else(
                        |_| "?".into(),
                        |r| r.split_whitespace().collect::<Vec<_>>().join("–"),
                    );
                format!(
                    "no ephemeral port left to connect from (EADDRNOTAVAIL; local port range \
                     {range}): widen `net.ipv4.ip_local_port_range`, enable \
                     `net.ipv4.tcp_tw_reuse`, lower `clients` or the reconnect rate, or spread \
                     the run over machines (`--shard I/N`)"
                )
            }
            Exhausted::SocketMemory => "the kernel has no memory left for socket buffers \
                 (ENOBUFS): raise `net.ipv4.tcp_mem` or run fewer clients on this machine"
                .into(),
        }
    }
}

/// The process's counts of each limit hit, to compare with a later reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally([u64; 4]);

impl Tally {
    /// The counts so far.
    pub fn now() -> Tally {
        Tally(std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed)))
    }

    /// The first limit hit since `self` was read, and how many times it was.
    pub fn since(&self) -> Option<(Exhausted, u64)> {
        let now = Tally::now();
        KINDS
            .iter()
            .zip(now.0.iter().zip(self.0))
            .find_map(|(kind, (now, then))| (*now > then).then_some((*kind, now - then)))
    }
}

/// Shortest and longest pause of an accept loop after a failed accept.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// An accept loop's failures: a pause that doubles while they last, one log line when a
/// streak starts (with the remedy when a limit was hit) and one when it ends.
#[derive(Debug)]
pub struct AcceptErrors {
    what: &'static str,
    streak: u64,
}

impl AcceptErrors {
    /// For the accept loop of `what` (`shim`, `server`).
    pub fn new(what: &'static str) -> Self {
        Self { what, streak: 0 }
    }

    /// A failed accept: how long to pause before the next.
    pub fn failed(&mut self, e: &io::Error) -> Duration {
        let limit = Exhausted::note(e);
        if self.streak == 0 {
            match limit {
                Some(kind) => tracing::warn!(
                    "{}: cannot accept connections: {}; pausing until descriptors free up. {}",
                    self.what,
                    kind.short(),
                    kind.explain()
                ),
                None => tracing::warn!(error = %e, "{}: accept failed; pausing", self.what),
            }
        }
        self.streak += 1;
        let doublings = u32::try_from(self.streak - 1).unwrap_or(u32::MAX).min(7);
        (FIRST_PAUSE * 2u32.pow(doublings)).min(LONGEST_PAUSE)
    }

    /// A successful accept: ends a streak of failures.
    pub fn succeeded(&mut self) {
        if self.streak > 0 {
            tracing::info!(
                "{}: accepting again after {} failed accepts",
                self.what,
                self.streak
            );
            self.streak = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_recognised_counted_and_explained() {
        let before = Tally::now();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(Exhausted::note(&emfile), Some(Exhausted::Descriptors));
        assert_eq!(
            Exhausted::of(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            None
        );
        assert_eq!(Exhausted::of(&io::Error::other("no errno")), None);
        let (kind, n) = before.since().unwrap();
        assert_eq!(kind, Exhausted::Descriptors);
        assert!(n >= 1);
        let text = Exhausted::Descriptors.explain();
        assert!(
            text.contains("ulimit -n") && text.contains("--workers"),
            "{text}"
        );
        let ports = Exhausted::Ports.explain();
        assert!(ports.contains("ip_local_port_range"), "{ports}");
    }

    #[test]
    fn an_accept_streak_pauses_longer_up_to_a_second_and_resets() {
        let mut errors = AcceptErrors::new("test");
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<Duration> = (0..10).map(|_| errors.failed(&e)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*pauses.last().unwrap(), LONGEST_PAUSE);
        errors.succeeded();
        assert_eq!(errors.failed(&e), Duration::from_millis(10));
    }
}
