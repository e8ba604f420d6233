//! `thresholds:` — release gates in the k6 form, `stat op value` per metric:
//! `reconnect_latency: ["p(99) < 3s"]`, `messages_lost: ["count == 0"]`.
//!
//! Each metric's unit decides what a value may be: a duration (stored in microseconds)
//! for latency histograms, a plain number for counters and count histograms.

use super::super::messages;
use super::super::model::{
    CompareOp, NetworkFault, Scope, ServerFault, ServerFaultKind, Stat, Threshold,
};
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
    "unrecovered",
    "connect_attempts_peak",
    "server_handshakes_peak",
];
/// Counters that are peaks (a gauge's, or a per-second rate's): `rate` means nothing.
const PEAKS: &[&str] = &[
    "clients_connected_peak",
    "connect_attempts_peak",
    "server_handshakes_peak",
];
/// Histograms in microseconds.
pub const LATENCIES: &[&str] = &[
    "reconnect_latency",
    "detection_latency",
    "downtime",
    "message_rtt",
    "message_rtt_uncorrected",
    "recovery_time",
];
/// Metrics that only mean something after a fault: thresholds on them need `{after: …}`.
const AFTER_ONLY: &[&str] = &["recovery_time"];
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

/// Distinct `during:`/`after:` scopes one run can keep (see `metrics::ScopeDef::MAX`).
pub const MAX_SCOPES: usize = 64;

/// The faults a scoped threshold may name.
pub struct Faults<'f> {
    pub network: &'f [NetworkFault],
    pub server: &'f [ServerFault],
}

/// Thresholds grouped by metric key in name order (so the normalized scenario reads back
/// the same whatever order a JSON map keeps), each metric's in file order.
pub fn thresholds(
    path: &YamlPath,
    spec: Option<&Entries<ThresholdRules>>,
    faults: &Faults,
) -> Checked<Vec<Threshold>> {
    let mut thresholds: Vec<Threshold> = Vec::new();
    for (key, rules) in spec.map(|entries| entries.0.as_slice()).unwrap_or_default() {
        let metric_path = path.key(key);
        let (metric, scope) =
            metric_key(key, faults).map_err(|message| Invalid::key(&metric_path, message))?;
        let unit = unit_of(&metric).ok_or_else(|| {
            let known: Vec<&str> = [COUNTERS, LATENCIES, COUNT_HISTOGRAMS].concat();
            Invalid::key(&metric_path, messages::unknown("metric", &metric, &known))
        })?;
        if AFTER_ONLY.contains(&metric.as_str()) && !matches!(scope, Some(Scope::After(_))) {
            return Err(Invalid::key(
                &metric_path,
                format!(
                    "`{metric}` is timed from a fault's end: write it as `{metric}{{after: <fault name>}}`"
                ),
            ));
        }
        if thresholds
            .iter()
            .any(|t| t.metric == metric && t.scope == scope)
        {
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
            let (source, abort_on_fail, delay_abort_eval, source_path) = match rule {
                ThresholdSpec::Expr(source) => (source.as_str(), false, None, rule_path),
                ThresholdSpec::Full(full) => {
                    let source_path = rule_path.key("threshold");
                    let source = fields::required(
                        &source_path,
                        full.threshold.as_deref(),
                        "the expression, e.g. \"p(99) < 3s\"",
                    )?;
                    let delay_path = rule_path.key("delay_abort_eval");
                    let delay =
                        fields::optional_duration(&delay_path, full.delay_abort_eval.as_ref())?;
                    let abort_on_fail = full.abort_on_fail.unwrap_or(false);
                    if delay.is_some() && !abort_on_fail {
                        return Err(Invalid::key(
                            &delay_path,
                            "only applies with `abort_on_fail: true`",
                        ));
                    }
                    (source, abort_on_fail, delay, source_path)
                }
            };
            let (stat, op, value) = expression(&metric, unit, source)
                .map_err(|message| Invalid::value(&source_path, message))?;
            thresholds.push(Threshold {
                metric: metric.clone(),
                scope: scope.clone(),
                stat,
                op,
                value,
                source: source.trim().to_owned(),
                abort_on_fail,
                delay_abort_eval: delay_abort_eval.unwrap_or_default(),
            });
        }
    }
    let mut scopes: Vec<&Scope> = thresholds.iter().filter_map(|t| t.scope.as_ref()).collect();
    scopes.sort();
    scopes.dedup();
    if scopes.len() > MAX_SCOPES {
        return Err(Invalid::key(
            path,
            format!(
                "scoped thresholds look at {} different scopes; at most {MAX_SCOPES} fit in one run",
                scopes.len()
            ),
        ));
    }
    // Stable: each key's thresholds stay in file order.
    thresholds.sort_by_key(Threshold::key);
    Ok(thresholds)
}

/// Splits `reconnect_latency{after: partition}` into the metric and its scope, checking
/// the fault exists and the scope means something for it.
fn metric_key(key: &str, faults: &Faults) -> Result<(String, Option<Scope>), String> {
    let Some(open) = key.find('{') else {
        return Ok((key.trim().to_owned(), None));
    };
    let metric = key[..open].trim().to_owned();
    let inner = key[open + 1..].strip_suffix('}').ok_or_else(|| {
        format!("a scope is written `{metric}{{after: <fault name>}}`; the closing `}}` is missing")
    })?;
    let (when, fault) = inner.split_once(':').ok_or_else(|| {
        format!("a scope is `during: <fault name>` or `after: <fault name>` (got `{inner}`)")
    })?;
    let (when, fault) = (when.trim(), fault.trim().to_owned());
    let network = faults.network.iter().find(|f| f.name == fault);
    let server = faults.server.iter().find(|f| f.name == fault);
    let instantaneous = match (network, server) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "`{fault}` names both a network and a server fault; give one of them another `name`"
            ));
        }
        (Some(f), None) => f.kind.is_instantaneous(),
        (None, Some(f)) => matches!(
            f.kind,
            ServerFaultKind::Close { .. } | ServerFaultKind::AppError { .. }
        ),
        (None, None) => {
            let names: Vec<&str> = faults
                .network
                .iter()
                .map(|f| f.name.as_str())
                .chain(faults.server.iter().map(|f| f.name.as_str()))
                .collect();
            if names.is_empty() {
                return Err(format!(
                    "the scenario has no fault named `{fault}` (it has no faults at all)"
                ));
            }
            return Err(format!(
                "{}; a fault is named by its `name`, or `<kind>#<index>` without one",
                messages::unknown(&format!("fault `{fault}`"), &fault, &names),
            ));
        }
    };
    let scope = match when {
        "during" if instantaneous => {
            return Err(format!(
                "`{fault}` acts at an instant and has no `during`; use `after: {fault}`"
            ));
        }
        "during" => Scope::During(fault),
        "after" => Scope::After(fault),
        other => {
            let mut message = format!("unknown scope `{other}`");
            if let Some(best) = messages::suggest(other, &["during", "after"]) {
                message += &format!("; did you mean `{best}`?");
            }
            return Err(message + " (expected `during` or `after`)");
        }
    };
    Ok((metric, Some(scope)))
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
        (Unit::Counter, Stat::Rate) if PEAKS.contains(&metric) => Err(format!(
            "`{metric}` is a peak, not a total: use count (its value at the busiest moment)"
        )),
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
            parse("connect_attempts_peak", "count <= 400"),
            Ok((Stat::Count, CompareOp::Le, 400.0))
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
            (
                "connect_attempts_peak",
                "rate < 3",
                "`connect_attempts_peak` is a peak",
            ),
            (
                "server_handshakes_peak",
                "p(99) < 3",
                "a percentile applies to histograms",
            ),
            ("messages_lost", "count < NaN", "expected a number"),
        ] {
            let error = parse(metric, text).unwrap_err();
            assert!(error.starts_with(start), "{text}: {error}");
        }
    }
}
