//! `thresholds:` — release gates in the k6 form, `stat op value` per metric:
//! `reconnect_latency: ["p(99) < 3s"]`, `messages_lost: ["count == 0"]`.
//!
//! Each metric's unit decides what a value may be: a duration (stored in microseconds)
//! for latency histograms, a plain number for counters and count histograms.

use super::super::messages;
use super::super::model::{CompareOp, Stat, Threshold};
use super::super::path::YamlPath;
use super::super::spec::{Entries, ThresholdRules, ThresholdSpec};
use super::super::units;
use super::{Checked, Invalid, fields};

/// Report counters, by their contract names.
pub const COUNTERS: &[&str] = &[
    "clients_connected_peak",
    "sessions",
    "messages_sent",
    "messages_delivered",
    "messages_lost",
    "messages_duplicated",
    "retransmits",
    "corruption_detected",
    "disconnects",
    "reconnects",
    "reconnect_failures",
    "gave_up",
    "errors.connection",
    "errors.data",
    "errors.application",
    "connect_attempts",
    "server_handshakes",
    "messages_received",
    "duplicates_suppressed",
    "messages_unverified",
    "server_received",
    "server_sent",
    "server_sent_acked",
];
/// Histograms in microseconds.
pub const LATENCIES: &[&str] = &[
    "reconnect_latency",
    "detection_latency",
    "downtime",
    "message_rtt",
    "message_rtt_uncorrected",
];
/// Histograms of counts.
pub const COUNT_HISTOGRAMS: &[&str] = &["retransmits_per_message", "attempts_per_reconnect"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Counter,
    Latency,
    CountHistogram,
}

fn unit_of(metric: &str) -> Option<Unit> {
    if COUNTERS.contains(&metric) {
        Some(Unit::Counter)
    } else if LATENCIES.contains(&metric) {
        Some(Unit::Latency)
    } else if COUNT_HISTOGRAMS.contains(&metric) {
        Some(Unit::CountHistogram)
    } else {
        None
    }
}

/// Thresholds grouped by metric in name order (so the normalized scenario reads back the
/// same whatever order a JSON map keeps), each metric's in file order.
pub fn thresholds(
    path: &YamlPath,
    spec: Option<&Entries<ThresholdRules>>,
) -> Checked<Vec<Threshold>> {
    let mut thresholds: Vec<Threshold> = Vec::new();
    for (metric, rules) in spec.map(|entries| entries.0.as_slice()).unwrap_or_default() {
        let metric_path = path.key(metric);
        let unit = unit_of(metric).ok_or_else(|| {
            let known: Vec<&str> = [COUNTERS, LATENCIES, COUNT_HISTOGRAMS].concat();
            Invalid::key(&metric_path, messages::unknown("metric", metric, &known))
        })?;
        if thresholds.iter().any(|t| t.metric == *metric) {
            return Err(Invalid::key(
                &metric_path,
                "appears twice; list all of its thresholds under one key",
            ));
        }
        let rules: Vec<(YamlPath, &ThresholdSpec)> = match rules {
            ThresholdRules::One(rule) => vec![(metric_path.clone(), rule)],
            ThresholdRules::Many(list) => list
                .iter()
                .enumerate()
                .map(|(i, rule)| (metric_path.index(i), rule))
                .collect(),
        };
        for (rule_path, rule) in rules {
            let (source, abort_on_fail, source_path) = match rule {
                ThresholdSpec::Expr(source) => (source.as_str(), false, rule_path),
                ThresholdSpec::Full(full) => {
                    let source_path = rule_path.key("threshold");
                    let source = fields::required(
                        &source_path,
                        full.threshold.as_deref(),
                        "the expression, e.g. \"p(99) < 3s\"",
                    )?;
                    (source, full.abort_on_fail.unwrap_or(false), source_path)
                }
            };
            let (stat, op, value) = expression(metric, unit, source)
                .map_err(|message| Invalid::value(&source_path, message))?;
            thresholds.push(Threshold {
                metric: metric.clone(),
                stat,
                op,
                value,
                source: source.trim().to_owned(),
                abort_on_fail,
            });
        }
    }
    thresholds.sort_by(|a, b| a.metric.cmp(&b.metric));
    Ok(thresholds)
}

const FORM: &str = "expected `stat op value`, like \"p(99) < 3s\" or \"count == 0\"";

fn expression(metric: &str, unit: Unit, text: &str) -> Result<(Stat, CompareOp, f64), String> {
    let text = text.trim();
    let Some(at) = text.find(['<', '>', '=', '!']) else {
        return Err(format!("{FORM} (got {text:?})"));
    };
    let (stat_text, rest) = (text[..at].trim(), &text[at..]);
    let (op, width) = match rest.get(..2) {
        Some("<=") => (CompareOp::Le, 2),
        Some(">=") => (CompareOp::Ge, 2),
        Some("==") => (CompareOp::Eq, 2),
        Some("!=") => (CompareOp::Ne, 2),
        _ if rest.starts_with('<') => (CompareOp::Lt, 1),
        _ if rest.starts_with('>') => (CompareOp::Gt, 1),
        _ => {
            return Err(format!(
                "unknown comparison; use <, <=, >, >=, == or != (got {text:?})"
            ));
        }
    };
    let value_text = rest[width..].trim();
    if stat_text.is_empty() || value_text.is_empty() {
        return Err(format!("{FORM} (got {text:?})"));
    }
    let stat = stat(stat_text)?;
    let value = value(metric, unit, stat, value_text)?;
    Ok((stat, op, value))
}

fn stat(text: &str) -> Result<Stat, String> {
    Ok(match text {
        "max" => Stat::Max,
        "min" => Stat::Min,
        "mean" | "avg" => Stat::Mean,
        "count" => Stat::Count,
        "rate" => Stat::Rate,
        _ => {
            if let Some(n) = text
                .strip_prefix("p(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                return match n.trim().parse::<f64>() {
                    Ok(n) if n > 0.0 && n <= 100.0 => Ok(Stat::Percentile(n)),
                    _ => Err(format!(
                        "a percentile is p(N) with 0 < N <= 100 (got {text})"
                    )),
                };
            }
            if text.starts_with('p') && text[1..].parse::<f64>().is_ok() {
                return Err(format!(
                    "write percentiles as p({}) (got {text})",
                    &text[1..]
                ));
            }
            let mut message = format!("unknown statistic `{text}`");
            if let Some(best) =
                messages::suggest(text, &["max", "min", "mean", "avg", "count", "rate"])
            {
                message += &format!("; did you mean `{best}`?");
            }
            return Err(message + " (expected one of: p(N), max, min, mean, avg, count, rate)");
        }
    })
}

fn value(metric: &str, unit: Unit, stat: Stat, text: &str) -> Result<f64, String> {
    let number = text.parse::<f64>().ok().filter(|n| n.is_finite());
    let stat_name = match stat {
        Stat::Percentile(_) => "a percentile",
        Stat::Max => "max",
        Stat::Min => "min",
        Stat::Mean => "mean",
        Stat::Count => "count",
        Stat::Rate => "rate",
    };
    match (unit, stat) {
        (Unit::Counter, Stat::Count | Stat::Rate)
        | (Unit::Latency | Unit::CountHistogram, Stat::Count) => plain_number(metric, number, text),
        (Unit::Counter, _) => Err(format!(
            "{stat_name} applies to histograms; `{metric}` is a counter: use count or rate"
        )),
        (_, Stat::Rate) => Err(format!(
            "rate applies to counters; `{metric}` is a histogram: use p(N), max, min, mean or count"
        )),
        (Unit::CountHistogram, _) => plain_number(metric, number, text),
        (Unit::Latency, _) => match number {
            Some(0.0) => Ok(0.0),
            Some(_) => Err(format!(
                "needs a unit: `{metric}` is a time, like 3s or 250ms (got {text})"
            )),
            None => {
                let duration = units::parse_duration(text)?;
                Ok(duration.as_nanos() as f64 / 1000.0)
            }
        },
    }
}

fn plain_number(metric: &str, number: Option<f64>, text: &str) -> Result<f64, String> {
    match number {
        Some(n) => Ok(n),
        None if units::parse_duration(text).is_ok() => Err(format!(
            "compare `{metric}` with a plain number, not a duration (got {text})"
        )),
        None => Err(format!("expected a number (got {text})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(metric: &str, text: &str) -> Result<(Stat, CompareOp, f64), String> {
        expression(metric, unit_of(metric).unwrap(), text)
    }

    #[test]
    fn k6_forms() {
        assert_eq!(
            parse("reconnect_latency", "p(99) < 3s"),
            Ok((Stat::Percentile(99.0), CompareOp::Lt, 3_000_000.0))
        );
        assert_eq!(
            parse("message_rtt", "p(99.9)<=250ms"),
            Ok((Stat::Percentile(99.9), CompareOp::Le, 250_000.0))
        );
        assert_eq!(
            parse("downtime", "max >= 0"),
            Ok((Stat::Max, CompareOp::Ge, 0.0))
        );
        assert_eq!(
            parse("messages_lost", "count == 0"),
            Ok((Stat::Count, CompareOp::Eq, 0.0))
        );
        assert_eq!(
            parse("errors.data", "rate < 0.01"),
            Ok((Stat::Rate, CompareOp::Lt, 0.01))
        );
        assert_eq!(
            parse("reconnect_latency", "avg > 1s"),
            Ok((Stat::Mean, CompareOp::Gt, 1e6))
        );
        assert_eq!(
            parse("reconnect_latency", "count != 5"),
            Ok((Stat::Count, CompareOp::Ne, 5.0))
        );
        assert_eq!(
            parse("attempts_per_reconnect", "p(90) < 3"),
            Ok((Stat::Percentile(90.0), CompareOp::Lt, 3.0))
        );
    }

    #[test]
    fn refusals() {
        for (metric, text, start) in [
            ("reconnect_latency", "p(99) 3s", "expected `stat op value`"),
            ("reconnect_latency", "p(99) = 3s", "unknown comparison"),
            ("reconnect_latency", "< 3s", "expected `stat op value`"),
            ("reconnect_latency", "p(99) <", "expected `stat op value`"),
            ("reconnect_latency", "p(0) < 3s", "a percentile is p(N)"),
            ("reconnect_latency", "p(101) < 3s", "a percentile is p(N)"),
            ("reconnect_latency", "p(NaN) < 3s", "a percentile is p(N)"),
            (
                "reconnect_latency",
                "p99 < 3s",
                "write percentiles as p(99)",
            ),
            (
                "reconnect_latency",
                "maxx < 3s",
                "unknown statistic `maxx`; did you mean `max`?",
            ),
            ("reconnect_latency", "p(99) < 3", "needs a unit"),
            ("reconnect_latency", "p(99) < fast", "expected a duration"),
            ("reconnect_latency", "rate < 3", "rate applies to counters"),
            (
                "reconnect_latency",
                "count < 3s",
                "compare `reconnect_latency` with a plain number",
            ),
            (
                "messages_lost",
                "p(99) < 3",
                "a percentile applies to histograms",
            ),
            (
                "messages_lost",
                "count < 3s",
                "compare `messages_lost` with a plain number",
            ),
            ("messages_lost", "count < inf", "expected a number"),
            ("messages_lost", "count < NaN", "expected a number"),
        ] {
            let error = parse(metric, text).unwrap_err();
            assert!(error.starts_with(start), "{text}: {error}");
        }
    }
}
