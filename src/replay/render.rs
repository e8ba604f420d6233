//! A replay's outcome: [`Outcome`] (`replay.json`), and for people the comparison's table
//! as `squall compare` prints it, then the fault ledgers side by side and their first
//! differences; as text for a terminal or CI log, and as Markdown (`replay.md`).

use std::fmt::Write;

use serde::Serialize;

use super::ledger::{self, Difference, LedgerComparison};
use crate::report::compare::{Comparison, render};

/// How many differences the text and Markdown list (`replay.json` keeps more).
const LISTED: usize = 20;

/// What a replay found: `replay.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `pass`: nothing regressed and the ledgers agree; `fail` otherwise.
    pub verdict: &'static str,
    /// The original's `report.json`.
    pub original: String,
    /// The replay's `report.json`.
    pub replay: String,
    pub seed: u64,
    /// `--target`: from, to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<(String, String)>,
    /// `--binary`: the build that ran the replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    pub comparison: Comparison,
    pub ledger: LedgerComparison,
}

impl Outcome {
    pub fn new(
        comparison: Comparison,
        ledger: LedgerComparison,
        paths: (String, String),
        seed: u64,
    ) -> Outcome {
        let fail = comparison.regressed() || ledger.differs();
        Outcome {
            verdict: if fail { "fail" } else { "pass" },
            original: paths.0,
            replay: paths.1,
            seed,
            target: None,
            binary: None,
            comparison,
            ledger,
        }
    }

    /// The lines a CI log shows first.
    pub fn headline(&self) -> String {
        format!(
            "replay: {} — seed {}, {}\n{}\n{}",
            self.verdict.to_uppercase(),
            self.seed,
            self.against(),
            self.comparison.headline(),
            self.ledger.headline()
        )
    }

    fn against(&self) -> String {
        let mut what = match &self.target {
            Some((from, to)) => format!("against {to} (the original ran against {from})"),
            None => "against the original's target".to_string(),
        };
        if let Some(b) = &self.binary {
            what += &format!(", run by {b}");
        }
        what
    }
}

/// The outcome for a terminal: headline, the comparison's table, the ledger.
pub fn text(o: &Outcome) -> String {
    let mut s = String::new();
    // The comparison's own text starts with its verdict line.
    let _ = writeln!(
        s,
        "replay: {} — seed {}, {}",
        o.verdict.to_uppercase(),
        o.seed,
        o.against()
    );
    let _ = writeln!(s, "{}", o.ledger.headline());
    let _ = writeln!(s, "  original: {}", o.original);
    let _ = writeln!(s, "  replay:   {}\n", o.replay);
    s += &render::text(&o.comparison);
    let _ = write_ledger_text(&mut s, &o.ledger);
    s
}

/// The outcome as Markdown (`replay.md`).
pub fn markdown(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = write_markdown(&mut s, o);
    s
}

fn write_ledger_text(s: &mut String, l: &LedgerComparison) -> std::fmt::Result {
    writeln!(s, "\nFault ledger ({})", mode_text(l.mode))?;
    let mut rows = vec![[
        "fault".to_string(),
        "kind".into(),
        "windows".into(),
        "acts".into(),
        "clients".into(),
        "bytes (not judged)".into(),
    ]];
    rows.extend(l.faults.iter().map(cells));
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (c, w) in row.iter().zip(widths) {
            line += &format!("{c}{}  ", " ".repeat(w - c.chars().count()));
        }
        writeln!(s, "{}", line.trim_end())?;
    }
    list_text(s, "differences", &l.differences, l.differences_total)?;
    list_text(
        s,
        "probabilistic faults, not judged (--ledger strict judges them)",
        &l.unjudged,
        l.unjudged_total,
    )
}

fn list_text(s: &mut String, title: &str, items: &[Difference], total: usize) -> std::fmt::Result {
    if total == 0 {
        return Ok(());
    }
    writeln!(s, "{title}: {total}")?;
    for d in items.iter().take(LISTED) {
        writeln!(s, "  {}", d.text)?;
    }
    if total > LISTED {
        writeln!(
            s,
            "  and {} more (replay.json lists up to 200)",
            total - LISTED
        )?;
    }
    Ok(())
}

fn write_markdown(s: &mut String, o: &Outcome) -> std::fmt::Result {
    writeln!(s, "# squall replay: {}\n", o.comparison.new.name)?;
    writeln!(
        s,
        "**{}** — seed {}, {}\n",
        o.verdict.to_uppercase(),
        o.seed,
        o.against()
    )?;
    writeln!(s, "- {}", o.comparison.headline())?;
    writeln!(s, "- {}\n", o.ledger.headline())?;
    writeln!(s, "| | report |\n| --- | --- |")?;
    writeln!(s, "| original | `{}` |", o.original)?;
    writeln!(s, "| replay | `{}` |\n", o.replay)?;
    writeln!(s, "## Fault ledger\n")?;
    writeln!(s, "Compared: {}.\n", mode_text(o.ledger.mode))?;
    writeln!(
        s,
        "| fault | kind | windows | acts | clients | bytes (not judged) |"
    )?;
    writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: |")?;
    for row in o.ledger.faults.iter().map(cells) {
        writeln!(s, "| {} |", row.join(" | "))?;
    }
    for (title, items, total) in [
        (
            "Differences",
            &o.ledger.differences,
            o.ledger.differences_total,
        ),
        (
            "Probabilistic faults, not judged",
            &o.ledger.unjudged,
            o.ledger.unjudged_total,
        ),
    ] {
        if total == 0 {
            continue;
        }
        writeln!(s, "\n### {title} ({total})\n")?;
        for d in items.iter().take(LISTED) {
            writeln!(s, "- {}", d.text)?;
        }
        if total > LISTED {
            writeln!(s, "- and {} more (`replay.json`)", total - LISTED)?;
        }
    }
    writeln!(s, "\n## Figures\n")?;
    // The comparison's own Markdown, its title one level down.
    let table = render::markdown(&o.comparison);
    let table = table
        .split_once('\n')
        .map_or(table.as_str(), |(_, rest)| rest);
    s.push_str(table.trim_start());
    Ok(())
}

fn mode_text(mode: ledger::Mode) -> &'static str {
    match mode {
        ledger::Mode::Exact => {
            "exact: windows of every fault; per window, the clients each deterministic fault acted on and its acts"
        }
        ledger::Mode::Strict => {
            "strict: windows of every fault; per window, the clients each fault acted on and its acts"
        }
        ledger::Mode::Windows => "windows: which faults opened how many windows",
        ledger::Mode::Off => "off: not compared",
    }
}

/// One fault's row: both sides, `=` when they agree, `→` when they do not.
fn cells(row: &ledger::FaultRow) -> [String; 6] {
    let pair = |a: String, b: String| {
        if a == b {
            format!("{a} = {b}")
        } else {
            format!("{a} → {b}")
        }
    };
    let name = match &row.fault.shard {
        Some(s) => format!("{} (shard {s})", row.fault.name),
        None => row.fault.name.clone(),
    };
    let kind = if row.probabilistic {
        format!("{} (probabilistic)", row.fault.kind)
    } else {
        row.fault.kind.clone()
    };
    [
        name,
        kind,
        pair(row.windows.0.to_string(), row.windows.1.to_string()),
        pair(row.acts.0.to_string(), row.acts.1.to_string()),
        pair(row.clients.0.to_string(), row.clients.1.to_string()),
        format!("{} → {}", row.bytes.0, row.bytes.1),
    ]
}
