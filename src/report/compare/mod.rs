//! `squall compare`: a candidate report judged against a baseline, metric by metric.
//!
//! Pure: two [`Report`]s and [`Options`] in, a [`Comparison`] out — every counter and
//! every histogram statistic side by side with its change and a [`Mark`], and the
//! regressions that fail the comparison. The rules (direction table, tolerances, noise
//! floors) are in `rules`; the scenario identity check in `identity`; the text and
//! Markdown tables in [`render`].
//!
//! Histogram statistics are read from each histogram's summary, the figures every other
//! format of the report shows, so the table matches `report.md` line for line; the
//! serialized HdrHistogram is only needed to add histograms (`squall merge`).

mod identity;
pub mod render;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use identity::IGNORED_KEYS;
pub use rules::{
    DEFAULT_COUNT_FLOOR, DEFAULT_LATENCY_FLOOR_US, DEFAULT_MAX_REGRESSION, DEFAULT_MIN_SAMPLES,
    Direction, Floors, Mark, Override, PER_UNIT_FLOOR, Stat, Tolerances, Unit, counter_direction,
    histogram_direction,
};

use super::{Counters, Report};
use crate::metrics::{Hist, Summary};

/// Why two reports could not be compared: every case is bad input.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("--max-regression {given}: {reason}")]
    BadTolerance { given: String, reason: String },
    #[error("--max-regression {name}: no metric `{name}` in these reports{hint}")]
    UnknownMetric { name: String, hint: String },
    #[error(
        "the reports ran different scenarios ({names}): {differences}; \
         pass --allow-different-scenarios to compare them anyway"
    )]
    DifferentScenarios { names: String, differences: String },
}

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub tolerances: Tolerances,
    pub floors: Floors,
    /// Compare reports of different scenarios instead of refusing.
    pub allow_different_scenarios: bool,
}

/// Two reports side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `pass` when nothing regressed, `fail` otherwise.
    pub verdict: &'static str,
    pub base: Side,
    pub new: Side,
    pub max_regression: f64,
    pub overrides: Vec<Override>,
    pub floors: Floors,
    /// Things that make the figures less trustworthy (a run that did not complete).
    pub warnings: Vec<String>,
    /// Things worth knowing (different seeds, groups only in one report).
    pub notes: Vec<String>,
    pub regressions: Vec<Regression>,
    /// Totals first, then each client group both reports have.
    pub rows: Vec<Row>,
}

/// One of the two reports, as the comparison names it.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub name: String,
    pub seed: u64,
    pub status: String,
    pub started_at: String,
    pub version: String,
    /// Where the report was read from, when the caller says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One figure of both reports.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The client group, or `None` for the whole run.
    pub group: Option<String>,
    /// `messages_lost`, `errors.data`, `reconnect_latency.p99`: the name an override uses.
    pub metric: String,
    pub unit: Unit,
    pub direction: Direction,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `new - base`.
    pub change: Option<f64>,
    /// The change in percent of the base; `None` when the base is zero or missing.
    pub change_pct: Option<f64>,
    /// The tolerance applied, in percent; `None` when the row is not judged.
    pub max_regression: Option<f64>,
    pub mark: Mark,
}

/// A reason the comparison fails.
#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub group: Option<String>,
    /// A row's metric, or `run.status` for a candidate run that did not complete.
    pub metric: String,
    /// `+85.0% (310.2 ms → 574.0 ms)`, `0 → 12`.
    pub detail: String,
}

impl Regression {
    /// `reconnect_latency.p99 +85.0% (310.2 ms → 574.0 ms)`, with its group if any.
    pub fn text(&self) -> String {
        match &self.group {
            Some(g) => format!("{} (group {g}) {}", self.metric, self.detail),
            None => format!("{} {}", self.metric, self.detail),
        }
    }
}

impl Comparison {
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }

    /// The first line a CI log shows: the verdict and what regressed.
    pub fn headline(&self) -> String {
        format!(
            "compare: {} — {}",
            self.verdict.to_uppercase(),
            self.summary()
        )
    }

    /// What regressed (the first few), or how much was judged when nothing did.
    pub fn summary(&self) -> String {
        const LISTED: usize = 8;
        if self.regressions.is_empty() {
            let count = |f: fn(Mark) -> bool| self.rows.iter().filter(|r| f(r.mark)).count();
            return format!(
                "no metric regressed ({} judged, {} improved)",
                count(|m| matches!(m, Mark::Improved | Mark::Unchanged)),
                count(|m| m == Mark::Improved)
            );
        }
        let n = self.regressions.len();
        let mut listed: Vec<String> = self
            .regressions
            .iter()
            .take(LISTED)
            .map(Regression::text)
            .collect();
        if n > LISTED {
            listed.push(format!("and {} more", n - LISTED));
        }
        format!(
            "{n} metric{} regressed: {}",
            if n == 1 { "" } else { "s" },
            listed.join(", ")
        )
    }
}

/// Compares `new` against `base`.
pub fn compare(base: &Report, new: &Report, opts: &Options) -> Result<Comparison, CompareError> {
    let mut warnings = Vec::new();
    let mut notes = Vec::new();

    let differences = identity::differences(&base.scenario, &new.scenario);
    if !differences.is_empty() {
        let names = identity::names(base.name(), new.name());
        let differences = identity::summarize(&differences);
        if !opts.allow_different_scenarios {
            return Err(CompareError::DifferentScenarios { names, differences });
        }
        warnings.push(format!(
            "the reports ran different scenarios ({names}): {differences}; \
             compared anyway (--allow-different-scenarios)"
        ));
    }

    let mut raw = Vec::new();
    figures(
        None,
        (&base.counters, &base.histograms),
        (&new.counters, &new.histograms),
        &mut raw,
    );
    if base.groups.len() > 1 || new.groups.len() > 1 {
        for g in &base.groups {
            match new.groups.iter().find(|h| h.name == g.name) {
                Some(h) => figures(
                    Some(&g.name),
                    (&g.counters, &g.histograms),
                    (&h.counters, &h.histograms),
                    &mut raw,
                ),
                None => notes.push(format!("group `{}` is only in base: not compared", g.name)),
            }
        }
        for h in new
            .groups
            .iter()
            .filter(|h| !base.groups.iter().any(|g| g.name == h.name))
        {
            notes.push(format!("group `{}` is only in new: not compared", h.name));
        }
    }
    check_overrides(&opts.tolerances, &raw)?;

    let mut regressions = Vec::new();
    circumstances(base, new, &mut warnings, &mut notes, &mut regressions);

    let rows: Vec<Row> = raw
        .into_iter()
        .map(|f| judge(f, &opts.tolerances, &opts.floors))
        .collect();
    regressions.extend(
        rows.iter()
            .filter(|r| r.mark == Mark::Regressed)
            .map(|r| Regression {
                group: r.group.clone(),
                metric: r.metric.clone(),
                detail: render::change_detail(r),
            }),
    );
    Ok(Comparison {
        verdict: if regressions.is_empty() {
            "pass"
        } else {
            "fail"
        },
        base: side(base),
        new: side(new),
        max_regression: opts.tolerances.default,
        overrides: opts.tolerances.overrides.clone(),
        floors: opts.floors,
        warnings,
        notes,
        regressions,
        rows,
    })
}

/// What the figures alone do not say: other seeds, versions, shards, runs that did not
/// complete (a candidate that did not complete fails).
fn circumstances(
    base: &Report,
    new: &Report,
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
    regressions: &mut Vec<Regression>,
) {
    if base.run.seed != new.run.seed {
        notes.push(format!(
            "seeds differ (base {}, new {}): fault decisions and jitter differ, so some change is noise",
            base.run.seed, new.run.seed
        ));
    }
    if base.run.version != new.run.version {
        notes.push(format!(
            "squall versions differ (base {}, new {})",
            base.run.version, new.run.version
        ));
    }
    for (side, r) in [("base", base), ("new", new)] {
        if let Some(shard) = &r.run.shard {
            notes.push(format!(
                "{side} is shard {shard} of a larger run: merge the shards first (squall merge) to compare whole runs"
            ));
        }
    }
    if base.run.status != "completed" {
        warnings.push(format!(
            "the base run is {}, not completed: its figures cover only part of the run",
            base.run.status
        ));
    }
    if new.run.status != "completed" {
        warnings.push(format!(
            "the new run is {}, not completed: its figures cover only part of the run",
            new.run.status
        ));
        regressions.push(Regression {
            group: None,
            metric: "run.status".to_string(),
            detail: format!("{} (not completed)", new.run.status),
        });
    }
}

fn side(r: &Report) -> Side {
    Side {
        name: r.name().to_string(),
        seed: r.run.seed,
        status: r.run.status.clone(),
        started_at: r.run.started_at.clone(),
        version: r.run.version.clone(),
        path: None,
    }
}

/// A row before judgement.
struct Figure {
    group: Option<String>,
    metric: String,
    unit: Unit,
    direction: Direction,
    base: Option<f64>,
    new: Option<f64>,
    /// For a histogram statistic, how many samples decide it in the report with fewer.
    samples: Option<f64>,
}

type Metrics<'a> = (&'a Counters, &'a BTreeMap<String, Summary>);

/// Every counter, close code and histogram statistic of one scope (the run or a group).
fn figures(group: Option<&str>, base: Metrics, new: Metrics, out: &mut Vec<Figure>) {
    let ((bc, bh), (nc, nh)) = (base, new);
    let figure = |metric: String, unit, direction, (base, new), samples| Figure {
        group: group.map(str::to_string),
        metric,
        unit,
        direction,
        base,
        new,
        samples,
    };
    for name in counter_names() {
        // The peak of connected clients and the server's are measured for the whole run
        // only.
        if group.is_some() && !Counters::per_group(name) {
            continue;
        }
        let value = |c: &Counters| c.get(name).map(|v| v as f64);
        out.push(figure(
            name.to_string(),
            Unit::Count,
            counter_direction(name),
            (value(bc), value(nc)),
            None,
        ));
    }
    let codes: BTreeSet<&String> = bc
        .errors
        .close_codes
        .keys()
        .chain(nc.errors.close_codes.keys())
        .collect();
    for code in codes {
        let metric = format!("errors.close_codes.{code}");
        let value =
            |c: &Counters| Some(c.errors.close_codes.get(code).copied().unwrap_or(0) as f64);
        let direction = counter_direction(&metric);
        out.push(figure(
            metric,
            Unit::Count,
            direction,
            (value(bc), value(nc)),
            None,
        ));
    }
    for name in histogram_names(bh, nh) {
        let micros = Hist::ALL
            .iter()
            .find(|h| h.name() == name)
            .map_or(!name.contains("_per_"), |h| h.is_micros());
        let (b, n) = (bh.get(&name), nh.get(&name));
        let samples = b.zip(n).map(|(b, n)| b.count.min(n.count));
        for stat in Stat::ALL {
            let unit = match stat {
                Stat::Count => Unit::Count,
                _ if micros => Unit::Micros,
                _ => Unit::PerUnit,
            };
            out.push(figure(
                format!("{name}.{}", stat.name()),
                unit,
                histogram_direction(stat),
                (stat_value(b, stat), stat_value(n, stat)),
                samples
                    .filter(|_| stat != Stat::Count)
                    .map(|n| stat.support(n)),
            ));
        }
    }
}

/// Every counter's report name, in the order reports list them.
fn counter_names() -> impl Iterator<Item = &'static str> {
    Counters::names()
}

/// squall's histograms in their usual order, then any other either report has.
fn histogram_names(a: &BTreeMap<String, Summary>, b: &BTreeMap<String, Summary>) -> Vec<String> {
    let mut names: Vec<String> = Hist::ALL
        .iter()
        .map(|h| h.name().to_string())
        .filter(|n| a.contains_key(n) || b.contains_key(n))
        .collect();
    for n in a.keys().chain(b.keys()) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// A statistic of a histogram; `None` when the histogram is missing, or empty (an empty
/// histogram has a count of zero and no other figure).
fn stat_value(s: Option<&Summary>, stat: Stat) -> Option<f64> {
    let s = s?;
    if stat == Stat::Count {
        return Some(s.count as f64);
    }
    if s.count == 0 {
        return None;
    }
    let v = match stat {
        Stat::Count => s.count as f64,
        Stat::Mean => s.mean,
        Stat::P50 => s.p50 as f64,
        Stat::P90 => s.p90 as f64,
        Stat::P99 => s.p99 as f64,
        Stat::P999 => s.p999 as f64,
        Stat::Max => s.max as f64,
    };
    v.is_finite().then_some(v)
}

/// Refuses an override that names no metric of these reports, with a "did you mean".
fn check_overrides(t: &Tolerances, figures: &[Figure]) -> Result<(), CompareError> {
    let mut known: Vec<String> = figures.iter().map(|f| f.metric.clone()).collect();
    // Names an override may use even when these reports have none of them.
    known.extend(counter_names().map(str::to_string));
    known.push("errors.close_codes".to_string());
    for h in Hist::ALL {
        known.extend(
            Stat::ALL
                .iter()
                .map(|s| format!("{}.{}", h.name(), s.name())),
        );
    }
    for o in &t.overrides {
        if known.iter().any(|k| rules::covers(&o.metric, k)) {
            continue;
        }
        // Suggest whole metrics and histograms as well as single statistics.
        let mut candidates: BTreeSet<&str> = known.iter().map(String::as_str).collect();
        candidates.extend(
            known
                .iter()
                .filter_map(|k| k.rsplit_once('.').map(|(h, _)| h)),
        );
        let candidates: Vec<&str> = candidates.into_iter().collect();
        let hint = match crate::scenario::suggest(&o.metric, &candidates) {
            Some(best) => format!("; did you mean `{best}`?"),
            None => " (metrics are counters like `messages_lost`, histograms like `reconnect_latency`, or one statistic like `reconnect_latency.p99`)".to_string(),
        };
        return Err(CompareError::UnknownMetric {
            name: o.metric.clone(),
            hint,
        });
    }
    Ok(())
}

fn judge(f: Figure, t: &Tolerances, floors: &Floors) -> Row {
    let tolerance = match f.direction {
        Direction::Informational => None,
        _ => t.for_metric(&f.metric),
    };
    let mark = rules::judge(
        f.direction,
        f.unit,
        (f.base, f.new),
        f.samples,
        tolerance,
        floors,
    );
    let change = match (f.base, f.new) {
        (Some(b), Some(n)) => Some(n - b).filter(|d| d.is_finite()),
        _ => None,
    };
    let change_pct = match (f.base, f.new) {
        (Some(b), Some(n)) => rules::change_pct(b, n),
        _ => None,
    };
    Row {
        group: f.group,
        metric: f.metric,
        unit: f.unit,
        direction: f.direction,
        base: f.base,
        new: f.new,
        change,
        change_pct,
        max_regression: tolerance,
        mark,
    }
}

#[cfg(test)]
mod tests;
