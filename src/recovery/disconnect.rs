//! Why a connection ended or an attempt failed, as data: each [`Disconnect`] has an error
//! class (connection / data / application) and a default disposition (retry, retry after,
//! fatal). Close codes follow RFC 6455 §7.4 and the IANA registry; 4000–4499 are
//! application codes that ask for a reconnect (but squall's own 4000 gap and 4001
//! corrupt frame are data), 4500–4999 are terminal.

use std::fmt;
use std::time::Duration;

use crate::protocol;
use crate::scenario::{ErrorAction, ErrorClass, ErrorMatch, ErrorRule};

/// How a connection ended, or why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Disconnect {
    /// The TCP connect failed (refused, unreachable, reset during connect).
    ConnectFailed(String),
    /// No TCP connection within `connect_timeout`.
    ConnectTimeout,
    /// No WebSocket handshake within `handshake_timeout`.
    HandshakeTimeout,
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol mismatch).
    Tls(String),
    /// The server answered the upgrade with an HTTP status instead of 101.
    HandshakeRejected {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header, when sent in seconds.
        retry_after: Option<Duration>,
    },
    /// The connection was reset (RST) or broke mid-stream.
    Reset,
    /// The peer closed TCP without a WebSocket close.
    Eof,
    /// The peer closed with this code (a WebSocket close frame, or squall's typed close
    /// which may carry a retry hint).
    Closed {
        /// The close code (1005 when the frame carried none).
        code: u16,
        /// The close reason.
        reason: String,
        /// The typed close's retry hint.
        retry_after: Option<Duration>,
    },
    /// Nothing arrived within the heartbeat timeout after a ping: a dead or half-open link.
    HeartbeatMissed,
    /// A sent message went unacknowledged longer than `ack_timeout` on a live connection.
    AckTimeout,
    /// A write could not complete within the heartbeat timeout (send buffer never drained).
    WriteStalled,
    /// The peer broke the WebSocket protocol (bad frame, invalid UTF-8, oversized).
    Protocol(String),
    /// A message arrived that does not decode (corrupted on the way).
    Corrupt(String),
}

impl Disconnect {
    /// The error class this reason falls in.
    pub fn class(&self) -> ErrorClass {
        match self {
            Disconnect::ConnectFailed(_)
            | Disconnect::ConnectTimeout
            | Disconnect::HandshakeTimeout
            | Disconnect::Reset
            | Disconnect::Eof
            | Disconnect::HeartbeatMissed
            | Disconnect::AckTimeout
            | Disconnect::WriteStalled => ErrorClass::Connection,
            Disconnect::Protocol(_) | Disconnect::Corrupt(_) | Disconnect::Tls(_) => {
                ErrorClass::Data
            }
            Disconnect::HandshakeRejected { .. } => ErrorClass::Application,
            Disconnect::Closed { code, .. } => close_code_class(*code),
        }
    }

    /// The close code to report, when the peer sent one (1006 for an abnormal end).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Disconnect::Closed { code, .. } => Some(*code),
            Disconnect::Reset | Disconnect::Eof => Some(1006),
            _ => None,
        }
    }

    /// A short machine-friendly name (`reset`, `heartbeat_missed`, `closed`).
    pub fn kind(&self) -> &'static str {
        match self {
            Disconnect::ConnectFailed(_) => "connect_failed",
            Disconnect::Tls(_) => "tls",
            Disconnect::ConnectTimeout => "connect_timeout",
            Disconnect::HandshakeTimeout => "handshake_timeout",
            Disconnect::HandshakeRejected { .. } => "handshake_rejected",
            Disconnect::Reset => "reset",
            Disconnect::Eof => "eof",
            Disconnect::Closed { .. } => "closed",
            Disconnect::HeartbeatMissed => "heartbeat_missed",
            Disconnect::AckTimeout => "ack_timeout",
            Disconnect::WriteStalled => "write_stalled",
            Disconnect::Protocol(_) => "protocol",
            Disconnect::Corrupt(_) => "corrupt",
        }
    }

    /// What to do about it: the first matching rule of `rules`, else the default table.
    pub fn disposition(&self, rules: &[ErrorRule]) -> Disposition {
        let hint = self.retry_hint();
        let from_action = |a: ErrorAction| match a {
            ErrorAction::Retry => hint.map_or(Disposition::Retry, Disposition::RetryAfter),
            ErrorAction::RetryAfter(d) => Disposition::RetryAfter(hint.map_or(d, |h| h.max(d))),
            ErrorAction::Fatal => Disposition::Fatal,
        };
        if let Some(rule) = rules.iter().find(|r| self.matches(&r.matches)) {
            return from_action(rule.action);
        }
        match self {
            Disconnect::HandshakeRejected { status, .. } => match status {
                // Wrong URL, bad credentials, forbidden: retrying cannot help.
                400 | 401 | 403 | 404 | 405 | 410 | 426 => Disposition::Fatal,
                _ => from_action(ErrorAction::Retry),
            },
            Disconnect::Closed { code, .. } => match code {
                // Policy violation, unsupported extension, and the registered auth codes.
                1008 | 1010 | 3000 | 3003 => Disposition::Fatal,
                4500..=4999 => Disposition::Fatal,
                _ => from_action(ErrorAction::Retry),
            },
            _ => Disposition::Retry,
        }
    }

    /// The earliest retry the server asked for (HTTP `Retry-After`).
    pub fn retry_hint(&self) -> Option<Duration> {
        match self {
            Disconnect::HandshakeRejected { retry_after, .. }
            | Disconnect::Closed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn matches(&self, m: &ErrorMatch) -> bool {
        match (m, self) {
            (ErrorMatch::Class(c), _) => *c == self.class(),
            (ErrorMatch::CloseCode { from, to }, _) => self
                .close_code()
                .is_some_and(|c| (*from..=*to).contains(&c)),
            (ErrorMatch::HttpStatus { from, to }, Disconnect::HandshakeRejected { status, .. }) => {
                (*from..=*to).contains(status)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            Disconnect::ConnectTimeout => f.write_str("connect timed out"),
            Disconnect::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Disconnect::HandshakeTimeout => f.write_str("handshake timed out"),
            Disconnect::HandshakeRejected {
                status,
                retry_after: Some(d),
            } => {
                write!(
                    f,
                    "handshake rejected with HTTP {status} (retry after {d:?})"
                )
            }
            Disconnect::HandshakeRejected { status, .. } => {
                write!(f, "handshake rejected with HTTP {status}")
            }
            Disconnect::Reset => f.write_str("connection reset"),
            Disconnect::Eof => f.write_str("connection closed without a close frame"),
            Disconnect::Closed { code, reason, .. } if reason.is_empty() => {
                write!(f, "closed by peer with {code}")
            }
            Disconnect::Closed { code, reason, .. } => {
                write!(f, "closed by peer with {code} ({reason})")
            }
            Disconnect::HeartbeatMissed => f.write_str("heartbeat missed"),
            Disconnect::AckTimeout => f.write_str("acknowledgement timed out"),
            Disconnect::WriteStalled => f.write_str("write stalled"),
            Disconnect::Protocol(e) => write!(f, "protocol error: {e}"),
            Disconnect::Corrupt(e) => write!(f, "corrupt message: {e}"),
        }
    }
}

/// What the engine does after a [`Disconnect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Disposition {
    /// Reconnect on the backoff schedule.
    Retry,
    /// Reconnect, but no sooner than this.
    RetryAfter(Duration),
    /// Stop the session.
    Fatal,
}

/// The class of a close code sent by the peer.
pub fn close_code_class(code: u16) -> ErrorClass {
    match code {
        // Going away, abnormal, restart, bad gateway: the transport or the deployment.
        1001 | 1005 | 1006 | 1012 | 1014 | 1015 => ErrorClass::Connection,
        // Protocol error, unsupported or inconsistent data, too big, bad extension.
        1002 | 1003 | 1007 | 1009 | 1010 => ErrorClass::Data,
        // squall's own sequence gap and corrupt frame (docs/protocol.md): the server
        // found the data damaged on the way, as the client does when it sees it itself.
        // Left to the 4000-4499 rule they would read as application errors.
        protocol::close_code::GAP | protocol::close_code::CORRUPT => ErrorClass::Data,
        _ => ErrorClass::Application,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u16) -> Disconnect {
        Disconnect::Closed {
            code,
            reason: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn close_codes_by_class_and_disposition() {
        let table = [
            (1000, ErrorClass::Application, Disposition::Retry),
            (1001, ErrorClass::Connection, Disposition::Retry),
            (1002, ErrorClass::Data, Disposition::Retry),
            (1003, ErrorClass::Data, Disposition::Retry),
            (1007, ErrorClass::Data, Disposition::Retry),
            (1008, ErrorClass::Application, Disposition::Fatal),
            (1009, ErrorClass::Data, Disposition::Retry),
            (1010, ErrorClass::Data, Disposition::Fatal),
            (1011, ErrorClass::Application, Disposition::Retry),
            (1012, ErrorClass::Connection, Disposition::Retry),
            (1013, ErrorClass::Application, Disposition::Retry),
            (1014, ErrorClass::Connection, Disposition::Retry),
            (3000, ErrorClass::Application, Disposition::Fatal),
            (3008, ErrorClass::Application, Disposition::Retry),
            (4000, ErrorClass::Data, Disposition::Retry),
            (4001, ErrorClass::Data, Disposition::Retry),
            (4002, ErrorClass::Application, Disposition::Retry),
            (4499, ErrorClass::Application, Disposition::Retry),
            (4500, ErrorClass::Application, Disposition::Fatal),
            (4999, ErrorClass::Application, Disposition::Fatal),
        ];
        for (code, class, disp) in table {
            assert_eq!(closed(code).class(), class, "class of {code}");
            assert_eq!(closed(code).disposition(&[]), disp, "disposition of {code}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_rules_override_the_table() {
        let rejected = Disconnect::HandshakeRejected {
            status: 503,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(rejected.class(), ErrorClass::Application);
        assert_eq!(
            rejected.disposition(&[]),
            Disposition::RetryAfter(Duration::from_secs(3))
        );
        let fatal_503 = ErrorRule {
            matches: ErrorMatch::HttpStatus { from: 500, to: 599 },
            action: ErrorAction::Fatal,
        };
        assert_eq!(rejected.disposition(&[fatal_503]), Disposition::Fatal);
        let slow = ErrorRule {
            matches: ErrorMatch::CloseCode {
                from: 1013,
                to: 1013,
            },
            action: ErrorAction::RetryAfter(Duration::from_secs(5)),
        };
        assert_eq!(
            closed(1013).disposition(&[slow]),
            Disposition::RetryAfter(Duration::from_secs(5))
        );
        let by_class = ErrorRule {
            matches: ErrorMatch::Class(ErrorClass::Connection),
            action: ErrorAction::Fatal,
        };
        assert_eq!(
            Disconnect::Reset.disposition(std::slice::from_ref(&by_class)),
            Disposition::Fatal
        );
        assert_eq!(closed(4000).disposition(&[by_class]), Disposition::Retry);
    }

    #[test]
    fn a_typed_close_carries_its_retry_hint() {
        let overload = Disconnect::Closed {
            code: 1013,
            reason: "busy".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            overload.disposition(&[]),
            Disposition::RetryAfter(Duration::from_secs(2))
        );
        let terminal = Disconnect::Closed {
            code: 4501,
            reason: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            terminal.disposition(&[]),
            Disposition::Fatal,
            "a hint does not make a terminal code retryable"
        );
    }

    #[test]
    fn transport_failures_are_connection_class_with_1006() {
        for d in [
            Disconnect::Reset,
            Disconnect::Eof,
            Disconnect::HeartbeatMissed,
            Disconnect::ConnectTimeout,
        ] {
            assert_eq!(d.class(), ErrorClass::Connection);
            assert_eq!(d.disposition(&[]), Disposition::Retry);
        }
        assert_eq!(Disconnect::Reset.close_code(), Some(1006));
        assert_eq!(Disconnect::HeartbeatMissed.close_code(), None);
        let not_found = Disconnect::HandshakeRejected {
            status: 404,
            retry_after: None,
        };
        assert_eq!(not_found.disposition(&[]), Disposition::Fatal);
    }
}
