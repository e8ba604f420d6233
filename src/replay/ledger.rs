//! The fault ledger of a run as replay compares it: `events.jsonl` folded into the windows
//! each fault opened and, per window, the acts on each client — then two ledgers side by
//! side (`docs/replay.md`, "The same fault decisions").
//!
//! What is kept is what the seed decides, and nothing that follows the clock:
//!
//! - every fault (kind, name, id) and how many windows (or firings) it opened;
//! - per fault, window and client, how many `FaultTouched` acts of each action. A
//!   `FaultTouched` does not carry its window: it belongs to the fault's latest window
//!   opened before it in the same shard's stream (the shim writes a window's acts as the
//!   window closes or the connection ends inside it, so before the fault's next window
//!   opens, unless that one follows with almost no gap);
//! - the bytes each act covered, shown but never judged: which chunks cross a window's
//!   edges follows the clock (two runs of one seed differ in most windows' bytes);
//! - not the connection id (accept order, which follows the clock) nor any timestamp.
//!
//! Probabilistic faults (a drop, duplicate, corruption with a probability) draw per
//! chunk or message from a seeded stream per client connection, but which frames are
//! drawn for follows the interleaving of messages, acks and pings on the wire: their
//! acts are compared and listed, and judged only in [`Mode::Strict`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Fault kinds whose acts are random draws on the traffic (`probability`, `share`).
pub const PROBABILISTIC: [&str; 8] = [
    "drop",
    "corrupt",
    "duplicate",
    "ws_drop",
    "ws_duplicate",
    "ws_reorder",
    "ws_invalid_utf8",
    "server.reject_handshakes",
];

/// An `events.jsonl` line longer than this is not squall's.
const MAX_LINE: u64 = 1 << 20;

/// How many differences a comparison keeps in full (the count is always exact).
const KEPT: usize = 200;

/// Why a ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "{path}: no such file: the fault ledger (events.jsonl, beside report.json) is needed to compare fault decisions (--ledger off to skip)"
    )]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a squall event: {reason}")]
    Invalid {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// How much of the ledgers must be equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Windows of every fault; per window, the clients each deterministic fault acted on
    /// and how many acts of each kind. Probabilistic faults' acts are listed, not judged.
    Exact,
    /// As `exact`, and probabilistic faults' acts are judged too.
    Strict,
    /// Only which faults opened how many windows.
    Windows,
    /// No ledger comparison.
    Off,
}

/// A fault as the ledger names it: network and server faults number their ids apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FaultKey {
    /// The shard (`I/N`) of a merged run's events; `None` for a single process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub server: bool,
    pub id: usize,
    pub name: String,
    pub kind: String,
}

/// One fault's acts of one action on one client in one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActKey {
    pub fault: FaultKey,
    /// The window (firing) number from 0; `None` for an act before any window opened.
    pub window: Option<u32>,
    /// `None` when the shim could not tell the client (server faults, unidentified links).
    pub client: Option<u32>,
    pub action: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acts {
    pub count: u64,
    pub bytes: u64,
}

/// A run's fault ledger, folded from its `events.jsonl`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Windows (or firings) each fault opened.
    pub windows: BTreeMap<FaultKey, u32>,
    pub acts: BTreeMap<ActKey, Acts>,
}

/// What every `events.jsonl` line has: which event it is.
#[derive(Deserialize)]
struct Head {
    event: String,
}

/// The fields of a fault event the ledger reads. Other events are passed over unread
/// past their name, and unknown fields ignored, so a newer build's events still read.
#[derive(Deserialize)]
struct Line {
    event: String,
    #[serde(default)]
    shard: Option<String>,
    #[serde(default)]
    fault: Option<usize>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    client: Option<u32>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    bytes: u64,
}

impl Ledger {
    /// Reads the ledger of the run whose `events.jsonl` is at `path`.
    pub fn read(path: &Path) -> Result<Ledger, LedgerError> {
        let file = std::fs::File::open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LedgerError::Missing { path: path.into() },
            _ => LedgerError::Read {
                path: path.into(),
                source,
            },
        })?;
        Self::from_reader(std::io::BufReader::new(file), path)
    }

    /// Folds `events.jsonl` text; `path` names it in errors.
    pub fn from_reader(mut reader: impl BufRead, path: &Path) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger::default();
        let mut buf = Vec::new();
        for number in 1u64.. {
            buf.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| LedgerError::Read {
                    path: path.into(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            let invalid = |reason: String| LedgerError::Invalid {
                path: path.into(),
                line: number,
                reason,
            };
            if buf.len() as u64 > MAX_LINE {
                return Err(invalid(format!("the line is longer than {MAX_LINE} bytes")));
            }
            let text = std::str::from_utf8(&buf)
                .map_err(|e| invalid(format!("not UTF-8 ({e})")))?
                .trim();
            if text.is_empty() {
                continue;
            }
            let head: Head = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
            if !matches!(
                head.event.as_str(),
                "fault_started" | "fault_stopped" | "fault_touched"
            ) {
                continue;
            }
            let line: Line = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
            ledger.fold(line).map_err(invalid)?;
        }
        Ok(ledger)
    }

    /// Folds one fault event in.
    fn fold(&mut self, line: Line) -> Result<(), String> {
        let (Some(id), Some(name), Some(kind)) = (line.fault, line.name, line.kind) else {
            return Err(format!("a {} without fault, name and kind", line.event));
        };
        let fault = FaultKey {
            shard: line.shard,
            server: kind.starts_with("server."),
            id,
            name,
            kind,
        };
        match line.event.as_str() {
            "fault_started" => *self.windows.entry(fault).or_default() += 1,
            "fault_touched" => {
                let window = self.windows.get(&fault).and_then(|n| n.checked_sub(1));
                let Some(action) = line.action else {
                    return Err("a fault_touched without action".into());
                };
                let acts = self
                    .acts
                    .entry(ActKey {
                        fault,
                        window,
                        client: line.client,
                        action,
                    })
                    .or_default();
                acts.count += 1;
                acts.bytes = acts.bytes.saturating_add(line.bytes);
            }
            _ => {}
        }
        Ok(())
    }

    /// The ledger as far as a run that stopped early got: per fault, only the windows
    /// `other` opened too (and the acts in them).
    pub fn cut_to(&self, other: &Ledger) -> Ledger {
        let opened = |f: &FaultKey| other.windows.get(f).copied().unwrap_or(0);
        Ledger {
            windows: self
                .windows
                .iter()
                .map(|(f, n)| (f.clone(), (*n).min(opened(f))))
                .filter(|(_, n)| *n > 0)
                .collect(),
            acts: self
                .acts
                .iter()
                .filter(|(k, _)| k.window.is_none_or(|w| w < opened(&k.fault)))
                .map(|(k, a)| (k.clone(), *a))
                .collect(),
        }
    }
}

/// Two ledgers side by side.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerComparison {
    pub mode: Mode,
    /// `same`, `different`, or `not compared` (mode `off`).
    pub verdict: &'static str,
    /// One row per fault of either ledger.
    pub faults: Vec<FaultRow>,
    /// Differences that fail the replay, in fault, window, client order (the first
    /// [`KEPT`]; `differences_total` counts them all).
    pub differences: Vec<Difference>,
    pub differences_total: usize,
    /// Differences shown but not judged (probabilistic faults' acts, in `exact` mode).
    pub unjudged: Vec<Difference>,
    pub unjudged_total: usize,
    /// Why the ledgers were not compared, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One fault in both ledgers.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRow {
    pub fault: FaultKey,
    pub probabilistic: bool,
    pub windows: (u32, u32),
    /// `FaultTouched` acts, all windows and clients.
    pub acts: (u64, u64),
    /// Distinct clients acted on.
    pub clients: (usize, usize),
    /// Bytes the acts covered: follows the clock, never judged.
    pub bytes: (u64, u64),
}

/// One place where the ledgers differ.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub fault: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<u32>,
    /// `fault `cut` (reset), window 0, client 5: reset ×1 in the original, none in the replay`.
    pub text: String,
}

impl LedgerComparison {
    pub fn differs(&self) -> bool {
        self.differences_total > 0
    }

    /// `ledger: SAME — …` or `ledger: DIFFERENT — …`, for a CI log.
    pub fn headline(&self) -> String {
        if let Some(why) = &self.skipped {
            return format!("ledger: not compared ({why})");
        }
        let what = match self.mode {
            Mode::Off => return "ledger: not compared (--ledger off)".to_string(),
            Mode::Windows => "fault windows",
            Mode::Exact => {
                "fault windows, and per window the clients and acts of every deterministic fault"
            }
            Mode::Strict => "fault windows, and per window the clients and acts of every fault",
        };
        if self.differs() {
            let first = self
                .differences
                .first()
                .map(|d| format!("; first: {}", d.text))
                .unwrap_or_default();
            format!(
                "ledger: DIFFERENT — {} difference{} in {what}{first}",
                self.differences_total,
                if self.differences_total == 1 { "" } else { "s" },
            )
        } else {
            let windows: u32 = self.faults.iter().map(|f| f.windows.0).sum();
            let acts: u64 = self.faults.iter().map(|f| f.acts.0).sum();
            format!(
                "ledger: SAME — {} fault{}, {windows} window{}, {acts} act{}: equal in {what}",
                self.faults.len(),
                if self.faults.len() == 1 { "" } else { "s" },
                if windows == 1 { "" } else { "s" },
                if acts == 1 { "" } else { "s" },
            )
        }
    }
}

/// Where a difference sorts: its fault, its window count (0) before its acts (1), then
/// window and client.
type Order<'a> = (&'a FaultKey, u8, Option<u32>, Option<u32>);

/// No comparison, and why: the replay could not run, say.
pub fn skipped(why: String) -> LedgerComparison {
    let mut out = compare(&Ledger::default(), &Ledger::default(), Mode::Off);
    out.skipped = Some(why);
    out
}

/// Compares the replay's ledger with the original's.
pub fn compare(original: &Ledger, replay: &Ledger, mode: Mode) -> LedgerComparison {
    let mut out = LedgerComparison {
        mode,
        verdict: "same",
        faults: rows(original, replay),
        differences: Vec::new(),
        differences_total: 0,
        unjudged: Vec::new(),
        unjudged_total: 0,
        skipped: None,
    };
    if mode == Mode::Off {
        out.verdict = "not compared";
        out.skipped = Some("--ledger off".into());
        return out;
    }
    // Sorted by fault, then its window count before its acts, then window and client: a
    // missing window explains the acts missing with it.
    let mut judged: Vec<(Order, Difference)> = Vec::new();
    let mut unjudged = Vec::new();
    let faults: BTreeSet<&FaultKey> = original
        .windows
        .keys()
        .chain(replay.windows.keys())
        .collect();
    for f in faults {
        let (a, b) = (windows(original, f), windows(replay, f));
        if a != b {
            judged.push((
                (f, 0, None, None),
                difference(
                    f,
                    None,
                    None,
                    format!(
                        "{}: {} in the original, {} in the replay",
                        fault_name(f),
                        count(u64::from(a), "window"),
                        count(u64::from(b), "window")
                    ),
                ),
            ));
        }
    }
    if mode != Mode::Windows {
        let keys: BTreeSet<&ActKey> = original.acts.keys().chain(replay.acts.keys()).collect();
        for k in keys {
            let (a, b) = (acts(original, k), acts(replay, k));
            if a == b {
                continue;
            }
            let d = difference(
                &k.fault,
                k.window,
                k.client,
                format!(
                    "{}: {} in the original, {} in the replay",
                    place(k),
                    times(&k.action, a),
                    times(&k.action, b)
                ),
            );
            if mode == Mode::Exact && is_probabilistic(&k.fault.kind) {
                unjudged.push(d);
            } else {
                judged.push(((&k.fault, 1, k.window, k.client), d));
            }
        }
    }
    judged.sort_by(|x, y| x.0.cmp(&y.0));
    out.differences_total = judged.len();
    out.unjudged_total = unjudged.len();
    unjudged.truncate(KEPT);
    out.differences = judged.into_iter().take(KEPT).map(|(_, d)| d).collect();
    out.unjudged = unjudged;
    if out.differs() {
        out.verdict = "different";
    }
    out
}

pub fn is_probabilistic(kind: &str) -> bool {
    PROBABILISTIC.contains(&kind)
}

fn rows(original: &Ledger, replay: &Ledger) -> Vec<FaultRow> {
    let faults: BTreeSet<&FaultKey> = original
        .windows
        .keys()
        .chain(replay.windows.keys())
        .chain(original.acts.keys().map(|k| &k.fault))
        .chain(replay.acts.keys().map(|k| &k.fault))
        .collect();
    let totals = |l: &Ledger, f: &FaultKey| {
        let mut clients = BTreeSet::new();
        let (mut acts, mut bytes) = (0u64, 0u64);
        for (k, a) in l.acts.iter().filter(|(k, _)| &k.fault == f) {
            clients.insert(k.client);
            acts += a.count;
            bytes = bytes.saturating_add(a.bytes);
        }
        (acts, clients.len(), bytes)
    };
    faults
        .into_iter()
        .map(|f| {
            let (a, b) = (totals(original, f), totals(replay, f));
            FaultRow {
                fault: f.clone(),
                probabilistic: is_probabilistic(&f.kind),
                windows: (windows(original, f), windows(replay, f)),
                acts: (a.0, b.0),
                clients: (a.1, b.1),
                bytes: (a.2, b.2),
            }
        })
        .collect()
}

fn windows(l: &Ledger, f: &FaultKey) -> u32 {
    l.windows.get(f).copied().unwrap_or(0)
}

fn acts(l: &Ledger, k: &ActKey) -> u64 {
    l.acts.get(k).map_or(0, |a| a.count)
}

fn difference(f: &FaultKey, window: Option<u32>, client: Option<u32>, text: String) -> Difference {
    Difference {
        fault: f.name.clone(),
        kind: f.kind.clone(),
        shard: f.shard.clone(),
        window,
        client,
        text,
    }
}

/// `fault `cut` (reset)`, with its shard in a merged run.
pub fn fault_name(f: &FaultKey) -> String {
    match &f.shard {
        Some(s) => format!("fault `{}` ({}) in shard {s}", f.name, f.kind),
        None => format!("fault `{}` ({})", f.name, f.kind),
    }
}

/// `fault `cut` (reset), window 0, client 5`.
fn place(k: &ActKey) -> String {
    let window = match k.window {
        Some(w) => format!("window {w}"),
        None => "before its first window".to_string(),
    };
    let client = match k.client {
        Some(c) => format!("client {c}"),
        None => "unidentified connections".to_string(),
    };
    format!("{}, {window}, {client}", fault_name(&k.fault))
}

fn times(action: &str, n: u64) -> String {
    if n == 0 {
        "none".to_string()
    } else {
        format!("{action} ×{n}")
    }
}

fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(text: &str) -> Ledger {
        Ledger::from_reader(text.as_bytes(), Path::new("events.jsonl")).unwrap()
    }

    const RUN: &str = r#"{"t_us":1,"event":"connected","client":0,"attempt":1}
{"t_us":10,"event":"fault_started","fault":0,"name":"cut","kind":"reset"}
{"t_us":11,"event":"fault_touched","fault":0,"name":"cut","kind":"reset","conn":4,"client":2,"action":"reset","bytes":0}
{"t_us":12,"event":"fault_stopped","fault":0,"name":"cut","kind":"reset"}
{"t_us":20,"event":"fault_started","fault":1,"name":"slow","kind":"latency"}
{"t_us":30,"event":"fault_stopped","fault":1,"name":"slow","kind":"latency"}
{"t_us":31,"event":"fault_touched","fault":1,"name":"slow","kind":"latency","conn":1,"client":3,"action":"delayed","bytes":640}
{"t_us":40,"event":"fault_started","fault":1,"name":"slow","kind":"latency"}
{"t_us":50,"event":"fault_touched","fault":1,"name":"slow","kind":"latency","conn":7,"client":3,"action":"delayed","bytes":128}
{"t_us":51,"event":"fault_started","fault":2,"name":"dup","kind":"ws_duplicate"}
{"t_us":52,"event":"fault_touched","fault":2,"name":"dup","kind":"ws_duplicate","conn":7,"client":1,"action":"duplicated","bytes":64}
"#;

    #[test]
    fn acts_land_in_the_latest_window_of_their_fault_even_after_it_closed() {
        let l = ledger(RUN);
        let slow = |window| ActKey {
            fault: FaultKey {
                shard: None,
                server: false,
                id: 1,
                name: "slow".into(),
                kind: "latency".into(),
            },
            window: Some(window),
            client: Some(3),
            action: "delayed".into(),
        };
        assert_eq!(
            l.acts[&slow(0)],
            Acts {
                count: 1,
                bytes: 640
            }
        );
        assert_eq!(
            l.acts[&slow(1)],
            Acts {
                count: 1,
                bytes: 128
            }
        );
        assert_eq!(l.windows.values().copied().collect::<Vec<_>>(), [1, 2, 1]);
    }

    #[test]
    fn the_same_ledger_with_other_connections_bytes_and_times_is_the_same() {
        let other = RUN
            .replace("\"conn\":4", "\"conn\":9")
            .replace("\"bytes\":640", "\"bytes\":700")
            .replace("\"t_us\":31", "\"t_us\":33");
        let c = compare(&ledger(RUN), &ledger(&other), Mode::Strict);
        assert_eq!(c.verdict, "same", "{:?}", c.differences);
        assert!(
            c.headline()
                .starts_with("ledger: SAME — 3 faults, 4 windows, 4 acts")
        );
        assert_eq!(c.faults[1].bytes, (768, 828));
    }

    #[test]
    fn another_client_or_a_missing_window_is_named_fault_window_and_client_first() {
        let other = RUN
            .replace("\"conn\":4,\"client\":2", "\"conn\":4,\"client\":5")
            .lines()
            .filter(|l| !(l.contains("\"t_us\":40") || l.contains("\"t_us\":50")))
            .collect::<Vec<_>>()
            .join("\n");
        let c = compare(&ledger(RUN), &ledger(&other), Mode::Exact);
        assert_eq!(c.verdict, "different");
        let texts: Vec<&str> = c.differences.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "fault `cut` (reset), window 0, client 2: reset ×1 in the original, none in the replay",
                "fault `cut` (reset), window 0, client 5: none in the original, reset ×1 in the replay",
                "fault `slow` (latency): 2 windows in the original, 1 window in the replay",
                "fault `slow` (latency), window 1, client 3: delayed ×1 in the original, none in the replay",
            ]
        );
        assert!(c.headline().contains("4 differences"), "{}", c.headline());
    }

    #[test]
    fn probabilistic_acts_are_listed_in_exact_mode_and_judged_in_strict() {
        let other: String = RUN
            .lines()
            .filter(|l| !l.contains("\"duplicated\""))
            .map(|l| format!("{l}\n"))
            .collect();
        let exact = compare(&ledger(RUN), &ledger(&other), Mode::Exact);
        assert_eq!(exact.verdict, "same");
        assert_eq!(exact.unjudged_total, 1);
        assert!(exact.unjudged[0].text.contains("client 1: duplicated ×1"));
        let strict = compare(&ledger(RUN), &ledger(&other), Mode::Strict);
        assert_eq!(strict.verdict, "different");
        let windows = compare(&ledger(RUN), &ledger(&other), Mode::Windows);
        assert_eq!(windows.verdict, "same");
        let off = compare(&ledger(RUN), &Ledger::default(), Mode::Off);
        assert_eq!(off.verdict, "not compared");
        assert_eq!(off.headline(), "ledger: not compared (--ledger off)");
        let skipped = skipped("the replay could not run".into());
        assert!(!skipped.differs());
        assert_eq!(
            skipped.headline(),
            "ledger: not compared (the replay could not run)"
        );
    }

    #[test]
    fn a_run_cut_short_is_compared_on_the_windows_it_opened() {
        let full = ledger(RUN);
        let short: String = RUN.lines().take(7).map(|l| format!("{l}\n")).collect();
        let short = ledger(&short);
        assert_eq!(compare(&short, &full, Mode::Strict).verdict, "different");
        assert_eq!(
            compare(&short, &full.cut_to(&short), Mode::Strict).verdict,
            "same"
        );
    }

    #[test]
    fn other_events_with_any_fields_are_passed_over() {
        let l =
            ledger("{\"event\":\"future_thing\",\"name\":[1,2],\"client\":-5,\"fault\":\"x\"}\n");
        assert_eq!(l, Ledger::default());
    }

    #[test]
    fn hostile_lines_are_errors_naming_the_line_never_panics() {
        let bad = |text: &str| {
            Ledger::from_reader(text.as_bytes(), Path::new("e.jsonl"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad("{}\n").starts_with("e.jsonl:1: not a squall event"),
            "{}",
            bad("{}\n")
        );
        assert!(bad("\n\nnot json").starts_with("e.jsonl:3:"));
        assert!(bad(r#"{"event":"fault_touched","fault":0}"#).contains("without fault"));
        assert!(
            bad(r#"{"event":"fault_touched","fault":0,"name":"a","kind":"reset"}"#)
                .contains("without action")
        );
        assert!(
            bad(r#"{"event":"fault_started","fault":-1,"name":"a","kind":"b"}"#).contains(":1:")
        );
        let long = format!("{{\"event\":\"{}\"}}", "x".repeat(MAX_LINE as usize + 10));
        assert!(bad(&long).contains("longer than"));
        let bytes = [b'{', 0xff, b'}'];
        let e = Ledger::from_reader(&bytes[..], Path::new("e.jsonl")).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"));
        // Huge numbers saturate rather than overflow.
        let l = ledger(
            "{\"event\":\"fault_started\",\"fault\":0,\"name\":\"a\",\"kind\":\"latency\"}\n\
             {\"event\":\"fault_touched\",\"fault\":0,\"name\":\"a\",\"kind\":\"latency\",\"action\":\"delayed\",\"bytes\":18446744073709551615}\n\
             {\"event\":\"fault_touched\",\"fault\":0,\"name\":\"a\",\"kind\":\"latency\",\"action\":\"delayed\",\"bytes\":5}\n",
        );
        assert_eq!(l.acts.values().next().unwrap().bytes, u64::MAX);
    }
}
