//! The gate: thresholds judged against a report, and the verdict that decides exit code
//! 0 or 1. It reads only the report, so a merged or re-read report is judged the same way
//! as a fresh one.

use crate::metrics;
use crate::report::{Report, ThresholdResult};
use crate::scenario::{CompareOp, Stat, Threshold};

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
pub fn evaluate(report: &Report, t: &Threshold) -> ThresholdResult {
    let value = measure(report, &t.metric, t.stat);
    ThresholdResult {
        metric: t.metric.clone(),
        expression: t.source.clone(),
        value,
        ok: value.is_some_and(|v| compare(v, t.op, t.value)),
        abort_on_fail: t.abort_on_fail,
    }
}

/// The value of `stat` of `metric` in `report`, in the metric's unit.
pub fn measure(report: &Report, metric: &str, stat: Stat) -> Option<f64> {
    if let Some(n) = report.counters.get(metric) {
        return match stat {
            Stat::Count | Stat::Max | Stat::Min | Stat::Mean | Stat::Percentile(_) => {
                Some(n as f64)
            }
            Stat::Rate if report.run.duration_s > 0.0 => Some(n as f64 / report.run.duration_s),
            Stat::Rate => None,
        };
    }
    let s = report.histograms.get(metric)?;
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
