//! Where the HTTP upgrade ends, in one direction: the client's request head upstream, the
//! server's `101 Switching Protocols` downstream. Frames start right after it.
//!
//! Bounded like `identify`: a head longer than [`MAX_HEAD`] is not an upgrade squall can
//! follow. A request without `Upgrade: websocket`, or an answer other than 101, means the
//! connection never speaks WebSocket: the layer forwards it raw.

use crate::scenario::Direction;

/// Longest head scanned.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// An HTTP head being read.
#[derive(Debug)]
pub(crate) struct Scan {
    dir: Direction,
    bytes: Vec<u8>,
}

/// What a [`Scan::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// The head goes on past these bytes.
    More,
    /// The head ends after `used` bytes of the input; `upgraded`: WebSocket follows.
    Done { used: usize, upgraded: bool },
}

impl Scan {
    /// The head of direction `dir`: a request upstream, a response downstream.
    pub fn new(dir: Direction) -> Self {
        Self {
            dir,
            bytes: Vec::new(),
        }
    }

    /// Reads `data`, the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) -> Scanned {
        let before = self.bytes.len();
        let take = data.len().min(MAX_HEAD - before);
        self.bytes.extend_from_slice(&data[..take]);
        let from = before.saturating_sub(3);
        if let Some(at) = self.bytes[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + at + 4;
            let upgraded = self.upgrades(&self.bytes[..end]);
            self.bytes = Vec::new();
            return Scanned::Done {
                used: end - before,
                upgraded,
            };
        }
        if self.bytes.len() >= MAX_HEAD {
            self.bytes = Vec::new();
            return Scanned::Done {
                used: take,
                upgraded: false,
            };
        }
        Scanned::More
    }

    fn upgrades(&self, head: &[u8]) -> bool {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        match self.dir {
            Direction::Downstream => {
                first.starts_with("HTTP/1.") && first.split(' ').nth(1) == Some("101")
            }
            _ => {
                first.starts_with("GET ")
                    && lines.any(|line| {
                        line.split_once(':').is_some_and(|(name, value)| {
                            name.trim().eq_ignore_ascii_case("upgrade")
                                && value.to_ascii_lowercase().contains("websocket")
                        })
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n";
    const RESPONSE: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    #[test]
    fn the_head_ends_at_the_blank_line_in_any_cutting() {
        for (dir, head) in [
            (Direction::Upstream, REQUEST),
            (Direction::Downstream, RESPONSE),
        ] {
            let stream = [head, b"\x81\x00"].concat();
            for cut in 1..stream.len() {
                let mut scan = Scan::new(dir);
                let (a, b) = stream.split_at(cut);
                let got = match scan.feed(a) {
                    Scanned::More => match scan.feed(b) {
                        Scanned::Done { used, upgraded } => (cut + used, upgraded),
                        Scanned::More => panic!("cut {cut}: no end"),
                    },
                    Scanned::Done { used, upgraded } => (used, upgraded),
                };
                assert_eq!(got, (head.len(), true), "{dir:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn not_an_upgrade_is_said_so() {
        let done = |dir, bytes: &[u8]| Scan::new(dir).feed(bytes);
        let plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            done(Direction::Upstream, plain),
            Scanned::Done {
                used: plain.len(),
                upgraded: false
            }
        );
        let refused = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert_eq!(
            done(Direction::Downstream, refused),
            Scanned::Done {
                used: refused.len(),
                upgraded: false
            }
        );
        let mut endless = Scan::new(Direction::Upstream);
        assert_eq!(endless.feed(&[b'a'; MAX_HEAD - 1]), Scanned::More);
        assert_eq!(
            endless.feed(b"bcd"),
            Scanned::Done {
                used: 1,
                upgraded: false
            }
        );
    }
}
