//! The gate: thresholds judged against a report, and the verdict that decides exit code
//! 0 or 1. It reads only the report, so a merged or re-read report is judged the same way
//! as a fresh one.

use std::collections::BTreeMap;

use crate::metrics::{self, Summary};
use crate::report::{Counters, Report, ThresholdResult};
use crate::scenario::{CompareOp, Scope, Stat, Threshold};

/// Judges every threshold and sets the report's `thresholds` and `verdict`. A run that
/// did not complete never passes.
pub fn judge(report: &mut Report, thresholds: &[Threshold]) {
    report.thresholds = thresholds.iter().map(|t| evaluate(report, t)).collect();
    let held = report.thresholds.iter().all(|t| t.ok);
    report.verdict = if held && report.run.status == "completed" {
        "pass"
    } else {
        "fail"
    }
    .to_string();
}

/// Judges one threshold. A statistic of an empty histogram has no value and fails: a gate
/// that passes because nothing was measured would hide a broken run.
/// A recovery deadline (`recovery_time{after: …}`) also fails when a client never got
/// its session back: its recovery time is unbounded, whatever the others measured.
pub fn evaluate(report: &Report, t: &Threshold) -> ThresholdResult {
    let key = t.key();
    let mut value = None;
    let mut note = None;
    match place(report, t.scope.as_ref()) {
        None => note = Some(format!("the report has no `{key}`")),
        Some(place) => {
            value = measure(&place, &t.metric, t.stat);
            let unrecovered = place.counters.unrecovered;
            if t.metric == "recovery_time" && unrecovered > 0 {
                note = Some(format!(
                    "{unrecovered} client(s) had not resumed when the run ended"
                ));
            } else if value.is_none() {
                note = Some("nothing was measured".to_string());
            }
        }
    }
    ThresholdResult {
        metric: key,
        expression: t.source.clone(),
        value,
        ok: note.is_none() && value.is_some_and(|v| compare(v, t.op, t.value)),
        abort_on_fail: t.abort_on_fail,
        note,
    }
}

/// Where a threshold's metric is read: the whole run, or one scope of it.
pub struct Place<'r> {
    pub counters: &'r Counters,
    pub histograms: &'r BTreeMap<String, Summary>,
    /// Seconds of run time the place covers, for rates.
    pub seconds: f64,
}

/// The whole run, or the report's record of `scope`.
pub fn place<'r>(report: &'r Report, scope: Option<&Scope>) -> Option<Place<'r>> {
    let Some(scope) = scope else {
        return Some(Place {
            counters: &report.counters,
            histograms: &report.histograms,
            seconds: report.run.duration_s,
        });
    };
    let key = scope.key();
    let scope = report.scopes.iter().find(|s| s.scope == key)?;
    let run_us = (report.run.duration_s * 1e6) as u64;
    let covered: u64 = scope
        .windows
        .iter()
        .map(|(start, end)| end.unwrap_or(u64::MAX).min(run_us).saturating_sub(*start))
        .sum();
    Some(Place {
        counters: &scope.counters,
        histograms: &scope.histograms,
        seconds: covered as f64 / 1e6,
    })
}

/// The value of `stat` of `metric` in `place`, in the metric's unit.
pub fn measure(place: &Place, metric: &str, stat: Stat) -> Option<f64> {
    if let Some(n) = place.counters.get(metric) {
        return match stat {
            Stat::Count | Stat::Max | Stat::Min | Stat::Mean | Stat::Percentile(_) => {
                Some(n as f64)
            }
            Stat::Rate if place.seconds > 0.0 => Some(n as f64 / place.seconds),
            Stat::Rate => None,
        };
    }
    let s = place.histograms.get(metric)?;
    if stat == Stat::Count {
        return Some(s.count as f64);
    }
    if s.count == 0 {
        return None;
    }
    match stat {
        Stat::Max => Some(s.max as f64),
        Stat::Min => Some(s.min as f64),
        Stat::Mean => Some(s.mean),
        Stat::Percentile(p) => {
            let h = metrics::decode(&s.hdr).ok()?;
            Some(h.value_at_quantile(p / 100.0) as f64)
        }
        Stat::Count | Stat::Rate => None,
    }
}

fn compare(v: f64, op: CompareOp, bound: f64) -> bool {
    match op {
        CompareOp::Lt => v < bound,
        CompareOp::Le => v <= bound,
        CompareOp::Gt => v > bound,
        CompareOp::Ge => v >= bound,
        CompareOp::Eq => v == bound,
        CompareOp::Ne => v != bound,
    }
}

/// Whether a failure seen mid-run stands whatever comes later, so `abort_on_fail` may stop
/// the run on it. Counts and maxima only grow and minima only fall, so a bound they have
/// crossed stays crossed, while one they have not reached yet may still be reached (a
/// `count > 100` failing at second 3 is not a failure). Percentiles, means and rates move
/// both ways: as in k6, their failure aborts at once (`delay_abort_eval` holds it back).
pub fn failure_is_final(t: &Threshold, value: f64) -> bool {
    let rising = match t.stat {
        Stat::Count | Stat::Max => true,
        Stat::Min => false,
        Stat::Percentile(_) | Stat::Mean | Stat::Rate => return true,
    };
    // Past the bound in the direction the value moves: no later data brings it back.
    let past = if rising {
        value > t.value
    } else {
        value < t.value
    };
    match t.op {
        CompareOp::Lt | CompareOp::Le if rising => true,
        CompareOp::Gt | CompareOp::Ge if !rising => true,
        CompareOp::Eq => past,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn threshold(stat: Stat, op: CompareOp, value: f64) -> Threshold {
        Threshold {
            metric: "m".into(),
            scope: None,
            stat,
            op,
            value,
            source: String::new(),
            abort_on_fail: true,
            delay_abort_eval: Duration::ZERO,
        }
    }

    #[test]
    fn only_bounds_already_crossed_for_good_are_final() {
        use CompareOp::*;
        // (stat, op, bound, failing value, final?)
        for (stat, op, bound, value, fin) in [
            (Stat::Count, Lt, 10.0, 10.0, true), // counts only grow
            (Stat::Count, Le, 10.0, 11.0, true),
            (Stat::Count, Gt, 10.0, 3.0, false), // may still get there
            (Stat::Count, Ge, 10.0, 3.0, false),
            (Stat::Count, Eq, 0.0, 1.0, true),
            (Stat::Count, Eq, 10.0, 3.0, false),
            (Stat::Count, Ne, 3.0, 3.0, false),
            (Stat::Max, Lt, 5.0, 6.0, true), // maxima only grow
            (Stat::Max, Gt, 5.0, 4.0, false),
            (Stat::Min, Gt, 5.0, 4.0, true), // minima only fall
            (Stat::Min, Lt, 5.0, 6.0, false),
            (Stat::Min, Eq, 5.0, 4.0, true),
            (Stat::Min, Eq, 5.0, 6.0, false),
            (Stat::Percentile(99.0), Lt, 5.0, 6.0, true), // moves both ways: as k6
            (Stat::Mean, Gt, 5.0, 4.0, true),
            (Stat::Rate, Lt, 0.1, 0.2, true),
        ] {
            let t = threshold(stat, op, bound);
            assert_eq!(
                failure_is_final(&t, value),
                fin,
                "{stat:?} {op:?} {bound} at {value}"
            );
        }
    }
}
