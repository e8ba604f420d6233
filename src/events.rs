//! The run's event log: every connect, disconnect with its error class, reconnect, resume
//! and fault action, one JSON object a line in `events.jsonl`, plus the fault ledger the
//! report's `faults` section is built from.
//!
//! Emitting is a non-blocking channel send, so clients, the shim and the server never wait
//! on the disk; one writer task owns the file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::Clock;

/// One line of `events.jsonl`: when (µs since the run started) and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub t_us: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A client's connection is open (first time or after a reconnect).
    Connected { client: u32, attempt: u32 },
    /// A client lost its connection.
    Disconnected {
        client: u32,
        class: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        close_code: Option<u16>,
    },
    /// A client's session is live again after a disconnect.
    Reconnected {
        client: u32,
        latency_us: u64,
        attempts: u32,
    },
    /// A connection attempt failed; the next follows after `next_delay_ms`.
    AttemptFailed {
        client: u32,
        attempt: u32,
        class: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_delay_ms: Option<u64>,
    },
    /// A client stopped trying.
    GaveUp { client: u32, reason: String },
    /// The server had lost the client's session: `unvouched` messages may arrive twice.
    Discontinuity {
        client: u32,
        unvouched: u64,
        inbound_after: u64,
    },
    /// The server sent an application error.
    AppError {
        client: u32,
        code: u32,
        message: String,
    },
    /// The outbox overflowed and the policy dropped a message.
    Dropped { client: u32, seq: u64 },
    /// A message failed its checksum or did not decode.
    Corruption { client: u32 },
    /// A fault's window opened.
    FaultStarted {
        fault: usize,
        name: String,
        kind: String,
    },
    /// A fault's window closed.
    FaultStopped {
        fault: usize,
        name: String,
        kind: String,
    },
    /// A fault acted on one connection (`action` says how: delayed, reset, dropped, …).
    FaultTouched {
        fault: usize,
        name: String,
        kind: String,
        conn: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        client: Option<u32>,
        action: String,
        #[serde(default)]
        bytes: u64,
    },
}

/// Where components send events. Cloning is cheap; a disabled sink drops everything.
#[derive(Debug, Clone)]
pub struct EventSink {
    clock: Clock,
    tx: Option<mpsc::UnboundedSender<Record>>,
}

impl EventSink {
    /// A sink that records nothing (library use without a run).
    pub fn disabled(clock: Clock) -> Self {
        Self { clock, tx: None }
    }

    /// Records `event` at the current run time.
    pub fn emit(&self, event: Event) {
        if let Some(tx) = &self.tx {
            // The writer only goes away after every sender is dropped, so an error here
            // means the run is already tearing down; the event has nowhere to go.
            let _ = tx.send(Record {
                t_us: self.clock.now_us(),
                event,
            });
        }
    }

    /// The clock event timestamps are taken from.
    pub fn clock(&self) -> Clock {
        self.clock
    }
}

/// What the ledger knows about one fault once the run is over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSummary {
    pub fault: usize,
    pub name: String,
    pub kind: String,
    /// Start and stop times (µs) of each window, in order; an open window has no stop.
    pub windows: Vec<(u64, Option<u64>)>,
    /// Distinct connections the fault acted on.
    pub connections_touched: u64,
    /// Actions by name (`reset`: 50, `delayed`: 1200).
    pub actions: BTreeMap<String, u64>,
    pub bytes_affected: u64,
}

/// Starts the writer task. With `path` it writes `events.jsonl` there; either way it
/// folds fault events into the ledger it returns once every sink is dropped.
pub fn spawn_log(
    clock: Clock,
    path: Option<PathBuf>,
) -> std::io::Result<(EventSink, JoinHandle<Vec<FaultSummary>>)> {
    let mut out = match path {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
    let handle = tokio::spawn(async move {
        let mut ledger = Ledger::default();
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            for rec in batch.drain(..) {
                ledger.fold(&rec);
                if let Some(w) = out.as_mut() {
                    // A full disk must not stop the run; the report says what it can.
                    if serde_json::to_writer(&mut *w, &rec).is_ok() {
                        let _ = w.write_all(b"\n");
                    }
                }
            }
        }
        if let Some(mut w) = out {
            let _ = w.flush();
        }
        ledger.finish()
    });
    Ok((
        EventSink {
            clock,
            tx: Some(tx),
        },
        handle,
    ))
}

/// Distinct connection ids, as bits in 64-id words. Ids are handed out in accept order,
/// so a long run's set stays dense: one bit per connection rather than a hash entry of
/// 16 bytes or more, which grew with every reconnect of a soak (the set lives as long as
/// the run).
#[derive(Default)]
struct ConnSet {
    words: BTreeMap<u64, u64>,
    len: u64,
}

impl ConnSet {
    fn insert(&mut self, id: u64) {
        let word = self.words.entry(id / 64).or_default();
        let bit = 1u64 << (id % 64);
        if *word & bit == 0 {
            *word |= bit;
            self.len += 1;
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// Fault summaries keyed by kind, name and id: network and server faults number their ids
/// separately, so ids alone would collide; and `squall proxy` may replace a fault by one
/// of the same name, a new plan with an id of its own, so names alone would too.
#[derive(Default)]
struct Ledger {
    index: std::collections::HashMap<(String, String, usize), usize>,
    faults: Vec<(FaultSummary, ConnSet)>,
}

impl Ledger {
    fn entry(&mut self, fault: usize, name: &str, kind: &str) -> &mut (FaultSummary, ConnSet) {
        let key = (kind.to_string(), name.to_string(), fault);
        let next = self.faults.len();
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            let summary = FaultSummary {
                fault,
                name: name.to_string(),
                kind: kind.to_string(),
                ..FaultSummary::default()
            };
            self.faults.push((summary, Default::default()));
        }
        &mut self.faults[i]
    }

    fn fold(&mut self, rec: &Record) {
        match &rec.event {
            Event::FaultStarted { fault, name, kind } => {
                self.entry(*fault, name, kind)
                    .0
                    .windows
                    .push((rec.t_us, None));
            }
            Event::FaultStopped { fault, name, kind } => {
                let (summary, _) = self.entry(*fault, name, kind);
                if let Some(w) = summary.windows.iter_mut().rev().find(|w| w.1.is_none()) {
                    w.1 = Some(rec.t_us);
                }
            }
            Event::FaultTouched {
                fault,
                name,
                kind,
                conn,
                action,
                bytes,
                ..
            } => {
                let (summary, conns) = self.entry(*fault, name, kind);
                conns.insert(*conn);
                *summary.actions.entry(action.clone()).or_default() += 1;
                summary.bytes_affected += bytes;
            }
            _ => {}
        }
    }

    /// Network faults first, then server faults, each in scenario order.
    fn finish(self) -> Vec<FaultSummary> {
        let mut out: Vec<FaultSummary> = self
            .faults
            .into_iter()
            .map(|(mut s, conns)| {
                s.connections_touched = conns.len();
                s
            })
            .collect();
        out.sort_by_key(|s| (s.kind.starts_with("server."), s.fault));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_set_counts_each_id_once_across_word_edges_and_far_apart() {
        let mut set = ConnSet::default();
        for id in [0, 63, 64, 64, 0, 10_000_000, u64::MAX] {
            set.insert(id);
        }
        assert_eq!(set.len(), 5);
        // A dense run of ids costs a word per 64 of them.
        for id in 0..6400 {
            set.insert(id);
        }
        assert_eq!(set.len(), 6400 + 2);
        assert_eq!(set.words.len(), 100 + 2);
    }

    #[tokio::test]
    async fn ledger_folds_fault_events_and_file_has_one_line_each() {
        let dir = std::env::temp_dir().join(format!("squall-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let (sink, done) = spawn_log(Clock::start(), Some(path.clone())).unwrap();
        let touched = |conn| Event::FaultTouched {
            fault: 0,
            name: "reset#0".into(),
            kind: "reset".into(),
            conn,
            client: Some(conn as u32),
            action: "reset".into(),
            bytes: 0,
        };
        sink.emit(Event::FaultStarted {
            fault: 0,
            name: "reset#0".into(),
            kind: "reset".into(),
        });
        sink.emit(touched(1));
        sink.emit(touched(2));
        sink.emit(touched(2));
        sink.emit(Event::FaultStopped {
            fault: 0,
            name: "reset#0".into(),
            kind: "reset".into(),
        });
        drop(sink);
        let ledger = done.await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0].connections_touched, 2);
        assert_eq!(ledger[0].actions["reset"], 3);
        assert!(ledger[0].windows[0].1.is_some());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        let first: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert!(matches!(first.event, Event::FaultStarted { .. }));
        std::fs::remove_dir_all(dir).ok();
    }
}
