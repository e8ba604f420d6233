//! A [`Comparison`] as a side-by-side table: plain text for a terminal or CI log,
//! Markdown for a pull-request comment or a job summary. Latencies print in human units,
//! counts as integers.

use std::fmt::Write;

use super::{Comparison, Mark, Row, Side, Unit};
use crate::report::markdown::micros;

/// The comparison for a terminal or CI log: the verdict line first.
pub fn text(c: &Comparison) -> String {
    let mut o = String::new();
    // Writing into a String cannot fail.
    let _ = write_text(&mut o, c);
    o
}

/// The comparison as Markdown.
pub fn markdown(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = write_markdown(&mut o, c);
    o
}

fn write_text(o: &mut String, c: &Comparison) -> std::fmt::Result {
    writeln!(o, "{}", c.headline())?;
    writeln!(o, "  base: {}", side(&c.base))?;
    writeln!(o, "  new:  {}", side(&c.new))?;
    writeln!(o, "  rules: {}", rules(c))?;
    for w in &c.warnings {
        writeln!(o, "warning: {w}")?;
    }
    for n in &c.notes {
        writeln!(o, "note: {n}")?;
    }
    let header = ["metric", "base", "new", "change", "%", ""].map(String::from);
    let sections = sections(c);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in sections.iter().flat_map(|(_, rows)| rows) {
        for (w, cell) in widths.iter_mut().zip(cells(row)) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |o: &mut String, cells: &[String; 6]| -> std::fmt::Result {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            match i {
                // The metric and the mark read left to right; numbers line up right.
                0 | 5 => text += &format!("{cell}{pad}  "),
                _ => text += &format!("{pad}{cell}  "),
            }
        }
        writeln!(o, "{}", text.trim_end())
    };
    for (title, rows) in &sections {
        writeln!(o, "\n{title}")?;
        line(o, &header)?;
        for row in rows {
            line(o, &cells(row))?;
        }
    }
    Ok(())
}

fn write_markdown(o: &mut String, c: &Comparison) -> std::fmt::Result {
    writeln!(o, "# squall compare: {}\n", c.new.name)?;
    writeln!(o, "**{}** — {}\n", c.verdict.to_uppercase(), c.summary())?;
    writeln!(o, "| | base | new |")?;
    writeln!(o, "| --- | --- | --- |")?;
    let both = |o: &mut String, what: &str, f: fn(&Side) -> String| {
        writeln!(o, "| {what} | {} | {} |", f(&c.base), f(&c.new))
    };
    both(o, "report", |s| {
        s.path.clone().unwrap_or_else(|| s.name.clone())
    })?;
    both(o, "scenario", |s| s.name.clone())?;
    both(o, "seed", |s| s.seed.to_string())?;
    both(o, "started", |s| s.started_at.clone())?;
    both(o, "status", |s| s.status.clone())?;
    both(o, "squall", |s| s.version.clone())?;
    writeln!(o, "\nRules: {}.\n", rules(c))?;
    for w in &c.warnings {
        writeln!(o, "> **Warning**: {w}\n")?;
    }
    for n in &c.notes {
        writeln!(o, "> Note: {n}\n")?;
    }
    for (title, rows) in sections(c) {
        writeln!(o, "## {title}\n")?;
        writeln!(o, "| metric | base | new | change | % | |")?;
        writeln!(o, "| --- | ---: | ---: | ---: | ---: | --- |")?;
        for row in rows {
            let [metric, base, new, change, pct, mark] = cells(row);
            let mark = match row.mark {
                Mark::Regressed => format!("**{mark}**"),
                _ => mark,
            };
            writeln!(
                o,
                "| `{metric}` | {base} | {new} | {change} | {pct} | {mark} |"
            )?;
        }
        writeln!(o)?;
    }
    Ok(())
}

/// The rows of the whole run, then of each group, with their titles.
fn sections(c: &Comparison) -> Vec<(String, Vec<&Row>)> {
    let mut out: Vec<(String, Vec<&Row>)> = Vec::new();
    for row in &c.rows {
        let title = match &row.group {
            None => "Whole run".to_string(),
            Some(g) => format!("Group {g}"),
        };
        match out.last_mut() {
            Some((t, rows)) if *t == title => rows.push(row),
            _ => out.push((title, vec![row])),
        }
    }
    out
}

fn side(s: &Side) -> String {
    let mut text = format!(
        "{} · seed {} · {} · {}",
        s.name, s.seed, s.started_at, s.status
    );
    if let Some(p) = &s.path {
        text += &format!(" · {p}");
    }
    text
}

/// The tolerance, the overrides and the floors, in one sentence.
fn rules(c: &Comparison) -> String {
    let mut text = format!(
        "worse by more than {}% of the base regresses",
        number(c.max_regression)
    );
    if !c.overrides.is_empty() {
        let each: Vec<String> = c
            .overrides
            .iter()
            .map(|o| match o.max_regression {
                Some(p) => format!("{} {}%", o.metric, number(p)),
                None => format!("{} off", o.metric),
            })
            .collect();
        text += &format!(" (overrides: {})", each.join(", "));
    }
    text += &format!(
        "; noise: changes under {} or {} events, statistics decided by fewer than {} samples; \
         messages_lost, messages_duplicated, gave_up and unrecovered must stay 0",
        micros(c.floors.latency_us),
        c.floors.count,
        c.floors.samples
    );
    text
}

/// metric, base, new, change, %, mark.
fn cells(r: &Row) -> [String; 6] {
    let show = |v: Option<f64>| v.map_or("–".to_string(), |v| value(r.unit, v));
    [
        r.metric.clone(),
        show(r.base),
        show(r.new),
        r.change.map_or("–".to_string(), |d| signed(r.unit, d)),
        pct(r),
        r.mark.label().to_string(),
    ]
}

fn pct(r: &Row) -> String {
    match (r.change_pct, r.change) {
        (_, Some(0.0)) => "0.0%".to_string(),
        (Some(p), _) => format!("{p:+.1}%"),
        _ => "–".to_string(),
    }
}

/// How a regression reads in the verdict line: `+85.0% (310.2 ms → 574.0 ms)`, or
/// `0 → 12` from a base of zero.
pub fn change_detail(r: &Row) -> String {
    let show = |v: Option<f64>| v.map_or("no data".to_string(), |v| value(r.unit, v));
    let values = format!("{} → {}", show(r.base), show(r.new));
    match r.change_pct {
        Some(p) => format!("{p:+.1}% ({values})"),
        None => values,
    }
}

/// One figure in its unit.
pub fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Micros if v < 0.0 => format!("-{}", micros((-v).round() as u64)),
        Unit::Micros => micros(v.round() as u64),
        Unit::Count => format!("{v:.0}"),
        Unit::PerUnit => number(v),
    }
}

/// A change with its sign: `+264.0 ms`, `-3`, `0`.
fn signed(unit: Unit, d: f64) -> String {
    if d == 0.0 {
        return "0".to_string();
    }
    let sign = if d > 0.0 { "+" } else { "-" };
    format!("{sign}{}", value(unit, d.abs()))
}

/// Whole numbers without decimals, others with two.
fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_in_their_units() {
        assert_eq!(value(Unit::Micros, 310_200.0), "310.2 ms");
        assert_eq!(value(Unit::Micros, 850.4), "850 µs");
        assert_eq!(value(Unit::Micros, -1500.0), "-1.5 ms");
        assert_eq!(value(Unit::Count, 12.0), "12");
        assert_eq!(value(Unit::PerUnit, 0.5), "0.50");
        assert_eq!(value(Unit::PerUnit, 2.0), "2");
        assert_eq!(signed(Unit::Micros, 264_000.0), "+264.0 ms");
        assert_eq!(signed(Unit::Count, -3.0), "-3");
        assert_eq!(signed(Unit::Count, 0.0), "0");
        assert_eq!(number(12.5), "12.50");
    }
}
