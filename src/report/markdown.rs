//! `report.md`: the verdict first, then what recovery cost, delivery accounting, errors,
//! faults and thresholds. Rendered from the [`Report`] alone, byte for byte the same
//! whether written by `run` or by `squall report`.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use super::model::{Counters, Report, ThresholdResult};
use crate::metrics::{Hist, Summary};

/// Renders the whole report as Markdown.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_report(&mut out, r);
    out
}

fn write_report(o: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(o, "# squall report: {}\n", r.name())?;
    let verdict = if r.verdict == "pass" { "PASS" } else { "FAIL" };
    writeln!(o, "**Verdict: {verdict}**")?;
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.ok).collect();
    for t in &failed {
        writeln!(
            o,
            "- failed: `{}` on `{}` (measured {})",
            t.expression,
            t.metric,
            measured(t)
        )?;
    }
    if r.run.interrupted {
        writeln!(
            o,
            "- the run was **interrupted** before its end: figures cover what ran"
        )?;
    }
    match (&r.run.error, r.run.status.as_str()) {
        (Some(e), "aborted") => writeln!(o, "- the run was **{e}**, by `abort_on_fail`")?,
        (Some(e), _) => writeln!(o, "- the run **failed**: {e}")?,
        (None, _) => {}
    }
    writeln!(o)?;
    writeln!(
        o,
        "Started {} · ran {:.1} s · seed {} · squall {} · status {}{}\n",
        r.run.started_at,
        r.run.duration_s,
        r.run.seed,
        r.run.version,
        r.run.status,
        r.run
            .shard
            .as_ref()
            .map(|s| format!(" · shard {s}"))
            .unwrap_or_default()
    )?;

    let c = &r.counters;
    writeln!(o, "## Recovery\n")?;
    writeln!(
        o,
        "{} disconnects, {} reconnects, {} failed reconnect attempts, {} clients gave up; peak {} clients connected in {} sessions. \
         At the busiest second {} connection attempts (`connect_attempts_peak`); the server accepted at most {} handshakes in one second (`server_handshakes_peak`).\n",
        c.disconnects,
        c.reconnects,
        c.reconnect_failures,
        c.gave_up,
        c.clients_connected_peak,
        c.sessions,
        c.connect_attempts_peak,
        c.server_handshakes_peak
    )?;
    hist_table(
        o,
        r,
        &[
            "reconnect_latency",
            "detection_latency",
            "downtime",
            "attempts_per_reconnect",
        ],
    )?;

    writeln!(o, "## Delivery\n")?;
    let d = &r.delivery;
    writeln!(
        o,
        "| sent | delivered | lost | duplicated | retransmits | corruption detected |"
    )?;
    writeln!(o, "| ---: | ---: | ---: | ---: | ---: | ---: |")?;
    writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} |\n",
        d.sent, d.delivered, d.lost, c.messages_duplicated, c.retransmits, c.corruption_detected
    )?;
    if d.closes {
        writeln!(
            o,
            "Accounting closes: sent = delivered + lost ({} = {} + {}).\n",
            d.sent, d.delivered, d.lost
        )?;
    } else {
        writeln!(
            o,
            "**Accounting does not close**: sent {} ≠ delivered {} + lost {} (the run did not drain).\n",
            d.sent, d.delivered, d.lost
        )?;
    }
    if r.scenario.pointer("/target/url").is_some() {
        writeln!(
            o,
            "The target is your server: `duplicated` counts only what squall's clients saw twice; \
             whether your server's application got a message twice is for your server to count.\n"
        )?;
    } else {
        writeln!(
            o,
            "The built-in server's own ledger: {} distinct messages received from clients; {} sent to \
             clients, {} of them acknowledged (so delivered); {} delivered to clients' applications.\n",
            c.server_received, c.server_sent, c.server_sent_acked, c.messages_received
        )?;
    }
    hist_table(
        o,
        r,
        &[
            "message_rtt",
            "message_rtt_uncorrected",
            "retransmits_per_message",
        ],
    )?;

    writeln!(o, "## Errors\n")?;
    errors(o, c)?;

    if r.groups.len() > 1 {
        writeln!(o, "## Groups\n")?;
        writeln!(
            o,
            "| group | sessions | disconnects | reconnects | attempts peak /s | lost | reconnect p50 | reconnect p99 | rtt p99 |"
        )?;
        writeln!(
            o,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for g in &r.groups {
            let h = |name: &str, f: fn(&Summary) -> u64| {
                g.histograms
                    .get(name)
                    .map(|s| micros(f(s)))
                    .unwrap_or_default()
            };
            writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                g.name,
                g.counters.sessions,
                g.counters.disconnects,
                g.counters.reconnects,
                g.counters.connect_attempts_peak,
                g.counters.messages_lost,
                h("reconnect_latency", |s| s.p50),
                h("reconnect_latency", |s| s.p99),
                h("message_rtt", |s| s.p99)
            )?;
        }
        writeln!(o)?;
    }

    writeln!(o, "## Faults injected\n")?;
    if r.faults.is_empty() {
        writeln!(o, "None.\n")?;
    } else {
        writeln!(
            o,
            "| fault | kind | windows | connections touched | actions | bytes affected |"
        )?;
        writeln!(o, "| --- | --- | --- | ---: | --- | ---: |")?;
        for f in &r.faults {
            let actions: Vec<String> = f.actions.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                f.name,
                f.kind,
                stretches(&f.windows),
                f.connections_touched,
                actions.join(", "),
                f.bytes_affected
            )?;
        }
        writeln!(o)?;
    }

    if !r.scopes.is_empty() {
        writeln!(o, "## During and after the faults\n")?;
        writeln!(
            o,
            "What happened while a fault's windows were open (`during:`), and from each window's end \
             until the next window of any fault starts (`after:`); `recovery` times each client whose outage began in \
             a window or its aftermath from that window's end to its session resumed.\n"
        )?;
        writeln!(
            o,
            "| scope | disconnects | reconnects | attempts peak /s | reconnect p99 | recovery p50 | recovery p99 | recovery max | not resumed |"
        )?;
        writeln!(
            o,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for scope in &r.scopes {
            let after = scope.scope.starts_with("after:");
            scope_row(o, &scope.scope, &scope.counters, &scope.histograms, after)?;
            // Several groups: each one's own line, so two policies compare under the
            // very same fault.
            if scope.groups.len() > 1 {
                for g in &scope.groups {
                    let label = format!("{} · {}", scope.scope, g.name);
                    scope_row(o, &label, &g.counters, &g.histograms, after)?;
                }
            }
        }
        writeln!(o)?;
    }

    writeln!(o, "## Thresholds\n")?;
    if r.thresholds.is_empty() {
        writeln!(o, "None set.")?;
    } else {
        writeln!(o, "| metric | threshold | measured | result |")?;
        writeln!(o, "| --- | --- | ---: | --- |")?;
        for t in &r.thresholds {
            let result = if t.ok { "pass" } else { "**FAIL**" };
            writeln!(
                o,
                "| {} | `{}` | {} | {} |",
                t.metric,
                t.expression,
                measured(t),
                result
            )?;
        }
    }
    Ok(())
}

fn hist_table(o: &mut String, r: &Report, names: &[&str]) -> std::fmt::Result {
    writeln!(
        o,
        "| histogram | count | min | p50 | p90 | p99 | p99.9 | max |"
    )?;
    writeln!(
        o,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for name in names {
        let Some(s) = r.histograms.get(*name) else {
            continue;
        };
        if s.count == 0 {
            writeln!(o, "| {name} | 0 | – | – | – | – | – | – |")?;
            continue;
        }
        let f = |v: u64| {
            if is_count(name) {
                v.to_string()
            } else {
                micros(v)
            }
        };
        writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            s.count,
            f(s.min),
            f(s.p50),
            f(s.p90),
            f(s.p99),
            f(s.p999),
            f(s.max)
        )?;
    }
    writeln!(o)
}

fn errors(o: &mut String, c: &Counters) -> std::fmt::Result {
    let e = &c.errors;
    writeln!(o, "| class | count |")?;
    writeln!(o, "| --- | ---: |")?;
    writeln!(o, "| connection | {} |", e.connection)?;
    writeln!(o, "| data | {} |", e.data)?;
    writeln!(o, "| application | {} |\n", e.application)?;
    if !e.close_codes.is_empty() {
        let codes: Vec<String> = e
            .close_codes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(o, "Close codes: {}.\n", codes.join(", "))?;
    }
    Ok(())
}

fn is_count(metric: &str) -> bool {
    metric.ends_with("_per_message") || metric.ends_with("_per_reconnect")
}

/// A measured threshold value in its unit.
/// What a threshold measured, with why it failed beyond its value when there is a reason.
pub fn measured(t: &ThresholdResult) -> String {
    // A count of a latency histogram is a number of samples, not a time.
    let value = if t.expression.trim_start().starts_with("count") {
        value_text("count", t.value)
    } else {
        value_text(&t.metric, t.value)
    };
    match &t.note {
        Some(note) => format!("{value}; {note}"),
        None => value,
    }
}

pub fn value_text(metric: &str, v: Option<f64>) -> String {
    match v {
        None => "no data".to_string(),
        Some(v) if Hist::by_name(metric).is_some_and(Hist::is_micros) => micros(v.round() as u64),
        Some(v) if v.fract() == 0.0 => format!("{v}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// Microseconds as a human duration.
///
/// ```
/// use squall::report::markdown::micros;
/// assert_eq!(micros(850), "850 µs");
/// assert_eq!(micros(12_345), "12.3 ms");
/// assert_eq!(micros(4_560_000), "4.56 s");
/// ```
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// Stretches of run time (µs from the start; no end: to the end of the run) as
/// `1.0s–3.0s, 8.0s–end`.
pub(crate) fn stretches(windows: &[(u64, Option<u64>)]) -> String {
    let each: Vec<String> = windows
        .iter()
        .map(|(from, to)| match to {
            Some(to) => format!("{}–{}", secs(*from), secs(*to)),
            None => format!("{}–end", secs(*from)),
        })
        .collect();
    each.join(", ")
}

/// Microseconds since the start as seconds: `12.5s`.
pub(crate) fn secs(us: u64) -> String {
    format!("{:.1}s", us as f64 / 1e6)
}

/// One line of the scopes table: what happened inside a scope (or to one group in it).
fn scope_row(
    o: &mut String,
    label: &str,
    c: &Counters,
    histograms: &BTreeMap<String, Summary>,
    after: bool,
) -> fmt::Result {
    let h = |name: &str, f: fn(&Summary) -> u64| {
        histograms
            .get(name)
            .filter(|s| s.count > 0)
            .map(|s| micros(f(s)))
            .unwrap_or_else(|| "–".to_string())
    };
    let recovery = |f: fn(&Summary) -> u64| {
        if after {
            h("recovery_time", f)
        } else {
            "n/a".to_string()
        }
    };
    writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        label,
        c.disconnects,
        c.reconnects,
        c.connect_attempts_peak,
        h("reconnect_latency", |s| s.p99),
        recovery(|s| s.p50),
        recovery(|s| s.p99),
        recovery(|s| s.max),
        if after {
            c.unrecovered.to_string()
        } else {
            "n/a".to_string()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(12_345), "12.3 ms");
        assert_eq!(micros(4_560_000), "4.56 s");
        assert_eq!(value_text("messages_lost", Some(0.0)), "0");
        assert_eq!(value_text("reconnect_latency", Some(1500.0)), "1.5 ms");
        assert_eq!(value_text("reconnect_latency", None), "no data");
    }
}
