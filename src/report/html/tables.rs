//! The tables of `report.html`: thresholds with their measured values, the figures at a
//! glance, delivery accounting, faults injected, every counter and every histogram's
//! summary — the whole report as text, whether or not the charts draw.

use std::fmt::{self, Write};

use super::errors::{close_code_name, close_codes_seen};
use super::{Esc, sources};
use crate::metrics::{Hist, Summary};
use crate::report::markdown::{measured, micros, secs, stretches};
use crate::report::{Counters, Report};

pub fn thresholds(o: &mut String, r: &Report) -> fmt::Result {
    writeln!(o, "<section id=\"thresholds\">\n<h2>Thresholds</h2>")?;
    if r.thresholds.is_empty() {
        writeln!(
            o,
            "<p class=\"note\">None set: the verdict only says whether the run completed.</p>"
        )?;
        return writeln!(o, "</section>");
    }
    writeln!(
        o,
        "<table>\n<thead><tr><th>metric</th><th>threshold</th><th class=\"num\">measured</th>\
         <th>result</th></tr></thead>\n<tbody>"
    )?;
    for t in &r.thresholds {
        let (class, result) = if t.ok {
            ("ok", "pass")
        } else {
            ("bad", "FAIL")
        };
        let aborts = if t.abort_on_fail {
            " <span class=\"tag\">abort on fail</span>"
        } else {
            ""
        };
        writeln!(
            o,
            "<tr><td><code>{}</code></td><td><code>{}</code>{aborts}</td><td class=\"num\">{}</td>\
             <td class=\"{class}\">{result}</td></tr>",
            Esc(&t.metric),
            Esc(&t.expression),
            Esc(&measured(t))
        )?;
    }
    writeln!(o, "</tbody>\n</table>\n</section>")
}

/// The few figures a reader wants first, as cards; losses and duplicates turn red.
pub fn glance(o: &mut String, r: &Report) -> fmt::Result {
    let c = &r.counters;
    let latency = |name: &str, f: fn(&Summary) -> u64| match r.histograms.get(name) {
        Some(s) if s.count > 0 => micros(f(s)),
        _ => "–".to_string(),
    };
    let promise = |n: u64| if n == 0 { "ok" } else { "bad" };
    let cards = [
        (number(c.clients_connected_peak), "clients at peak", ""),
        (number(c.disconnects), "disconnects", ""),
        (number(c.reconnects), "reconnects", ""),
        (number(c.gave_up), "clients gave up", promise(c.gave_up)),
        (
            latency("reconnect_latency", |s| s.p50),
            "reconnect latency p50",
            "",
        ),
        (
            latency("reconnect_latency", |s| s.p99),
            "reconnect latency p99",
            "",
        ),
        (
            latency("message_rtt", |s| s.p99),
            "message round trip p99",
            "",
        ),
        (
            number(c.messages_lost),
            "messages lost",
            promise(c.messages_lost),
        ),
        (
            number(c.messages_duplicated),
            "messages duplicated",
            promise(c.messages_duplicated),
        ),
    ];
    writeln!(
        o,
        "<section id=\"glance\">\n<h2>At a glance</h2>\n<div class=\"cards\">"
    )?;
    for (value, label, class) in cards {
        writeln!(
            o,
            "<div class=\"card {class}\"><div class=\"value\">{value}</div><div class=\"label\">{label}</div></div>"
        )?;
    }
    writeln!(o, "</div>\n</section>")
}

pub fn delivery(o: &mut String, r: &Report) -> fmt::Result {
    let (d, c) = (&r.delivery, &r.counters);
    writeln!(o, "<section id=\"delivery\">\n<h2>Delivery</h2>")?;
    if d.closes {
        writeln!(
            o,
            "<p class=\"accounting ok\">✓ Accounting closes: sent = delivered + lost \
             ({} = {} + {}).</p>",
            number(d.sent),
            number(d.delivered),
            number(d.lost)
        )?;
    } else {
        writeln!(
            o,
            "<p class=\"accounting bad\">✗ Accounting does not close: sent {} ≠ delivered {} \
             + lost {} (the run did not drain).</p>",
            number(d.sent),
            number(d.delivered),
            number(d.lost)
        )?;
    }
    let rows = [
        ("messages_sent", c.messages_sent),
        ("messages_delivered", c.messages_delivered),
        ("messages_lost", c.messages_lost),
        ("messages_duplicated", c.messages_duplicated),
        ("retransmits", c.retransmits),
        ("corruption_detected", c.corruption_detected),
        ("duplicates_suppressed", c.duplicates_suppressed),
        ("messages_unverified", c.messages_unverified),
    ];
    writeln!(o, "<table class=\"compact\">\n<tbody>")?;
    for (name, n) in rows {
        writeln!(
            o,
            "<tr><th><code>{name}</code></th><td class=\"num\">{}</td></tr>",
            number(n)
        )?;
    }
    writeln!(o, "</tbody>\n</table>")?;
    if r.scenario.pointer("/target/url").is_some() {
        writeln!(
            o,
            "<p>The target is your server: <code>messages_duplicated</code> counts only what \
             squall's clients saw twice.</p>"
        )?;
    } else {
        writeln!(
            o,
            "<p>The built-in server's own ledger: {} distinct messages received; {} sent to \
             clients, {} of them acknowledged; {} delivered to clients' applications.</p>",
            number(c.server_received),
            number(c.server_sent),
            number(c.server_sent_acked),
            number(c.messages_received)
        )?;
    }
    writeln!(o, "</section>")
}

/// Close codes with their meaning, per group when there are several.
pub fn close_codes(o: &mut String, r: &Report) -> fmt::Result {
    let columns = sources(r);
    let codes = close_codes_seen(&columns);
    if codes.is_empty() {
        return Ok(());
    }
    write!(o, "<table>\n<thead><tr><th>close code</th><th>meaning</th>")?;
    for c in &columns {
        write!(o, "<th class=\"num\">{}</th>", Esc(c.label))?;
    }
    writeln!(o, "</tr></thead>\n<tbody>")?;
    for code in codes {
        write!(
            o,
            "<tr><td>{}</td><td>{}</td>",
            Esc(code),
            close_code_name(code).unwrap_or("")
        )?;
        for c in &columns {
            let n = c
                .counters
                .errors
                .close_codes
                .get(code)
                .copied()
                .unwrap_or(0);
            write!(o, "<td class=\"num\">{}</td>", number(n))?;
        }
        writeln!(o, "</tr>")?;
    }
    writeln!(o, "</tbody>\n</table>")
}

pub fn faults(o: &mut String, r: &Report) -> fmt::Result {
    writeln!(o, "<section id=\"faults\">\n<h2>Faults injected</h2>")?;
    if r.faults.is_empty() {
        writeln!(o, "<p class=\"note\">None.</p>")?;
        return writeln!(o, "</section>");
    }
    writeln!(
        o,
        "<table>\n<thead><tr><th>fault</th><th>kind</th><th>windows</th>\
         <th class=\"num\">connections touched</th><th>actions</th>\
         <th class=\"num\">bytes affected</th></tr></thead>\n<tbody>"
    )?;
    for f in &r.faults {
        let windows: Vec<String> = f
            .windows
            .iter()
            .map(|&(start, stop)| match stop {
                // Instantaneous faults (a reset) open and close within a few milliseconds.
                Some(stop) if stop.saturating_sub(start) < 50_000 => format!("at {}", secs(start)),
                Some(stop) => format!("{} – {}", secs(start), secs(stop)),
                None => format!("{} – end", secs(start)),
            })
            .collect();
        let actions: Vec<String> = f
            .actions
            .iter()
            .map(|(k, v)| format!("{k} {}", number(*v)))
            .collect();
        writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{}</td></tr>",
            Esc(&f.name),
            Esc(&f.kind),
            Esc(&windows.join(", ")),
            number(f.connections_touched),
            Esc(&actions.join(", ")),
            number(f.bytes_affected)
        )?;
    }
    writeln!(o, "</tbody>\n</table>\n</section>")
}

/// Every counter, for the whole run and each group. One column of figures is split into
/// three tables side by side rather than one long list.
pub fn counters(o: &mut String, r: &Report) -> fmt::Result {
    let columns = sources(r);
    let rows: Vec<(&str, Vec<String>)> = Counters::names()
        .map(|name| {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(i, c)| match c.counters.get(name) {
                    // Run-wide figures have no value per group (column 0 is the run).
                    Some(n) if i == 0 || Counters::per_group(name) => number(n),
                    _ => "–".into(),
                })
                .collect();
            (name, cells)
        })
        .collect();
    let per_table = if columns.len() == 1 {
        rows.len().div_ceil(3)
    } else {
        rows.len()
    };
    writeln!(
        o,
        "<section id=\"counters\">\n<h2>Counters</h2>\n<div class=\"split\">"
    )?;
    for chunk in rows.chunks(per_table) {
        write!(o, "<table>\n<thead><tr><th>counter</th>")?;
        for c in &columns {
            write!(o, "<th class=\"num\">{}</th>", Esc(c.label))?;
        }
        writeln!(o, "</tr></thead>\n<tbody>")?;
        for (name, cells) in chunk {
            write!(o, "<tr><td><code>{name}</code></td>")?;
            for cell in cells {
                write!(o, "<td class=\"num\">{cell}</td>")?;
            }
            writeln!(o, "</tr>")?;
        }
        writeln!(o, "</tbody>\n</table>")?;
    }
    writeln!(o, "</div>\n</section>")
}

/// Every histogram's summary (latencies in their unit, counts as counts), per group too.
pub fn histograms(o: &mut String, r: &Report) -> fmt::Result {
    let sources = sources(r);
    let grouped = sources.len() > 1;
    writeln!(o, "<section id=\"histograms\">\n<h2>Histograms</h2>")?;
    write!(o, "<table>\n<thead><tr><th>histogram</th>")?;
    if grouped {
        write!(o, "<th>clients</th>")?;
    }
    writeln!(
        o,
        "<th class=\"num\">count</th><th class=\"num\">min</th><th class=\"num\">mean</th>\
         <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th>\
         <th class=\"num\">p99.9</th><th class=\"num\">max</th></tr></thead>\n<tbody>"
    )?;
    for h in Hist::ALL {
        for source in &sources {
            let Some(s) = source.histograms.get(h.name()) else {
                continue;
            };
            write!(o, "<tr><td><code>{}</code></td>", h.name())?;
            if grouped {
                write!(o, "<td>{}</td>", Esc(source.label))?;
            }
            write!(o, "<td class=\"num\">{}</td>", number(s.count))?;
            if s.count == 0 {
                writeln!(
                    o,
                    "<td class=\"num none\" colspan=\"7\">no samples</td></tr>"
                )?;
                continue;
            }
            let f = |v: u64| if h.is_micros() { micros(v) } else { number(v) };
            let mean = if h.is_micros() {
                micros(s.mean.max(0.0).round() as u64)
            } else {
                format!("{:.2}", s.mean)
            };
            writeln!(
                o,
                "<td class=\"num\">{}</td><td class=\"num\">{mean}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>",
                f(s.min),
                f(s.p50),
                f(s.p90),
                f(s.p99),
                f(s.p999),
                f(s.max)
            )?;
        }
    }
    writeln!(o, "</tbody>\n</table>\n</section>")
}

/// A count with thousands separated: `12,345`.
fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What happened during and after the faults that scoped thresholds name.
pub fn scopes(o: &mut String, r: &Report) -> fmt::Result {
    if r.scopes.is_empty() {
        return Ok(());
    }
    writeln!(
        o,
        "<section id=\"scopes\">\n<h2>During and after the faults</h2>\n<p class=\"note\">While a \
         fault's windows were open (<code>during:</code>), and from each window's end until the \
         next window of any fault starts (<code>after:</code>). Recovery times each client whose \
         outage began in a window or its aftermath, from that window's end to its session \
         resumed.</p>"
    )?;
    writeln!(
        o,
        "<table>\n<thead><tr><th>scope</th><th>covers</th><th class=\"num\">disconnects</th>\
         <th class=\"num\">reconnects</th><th class=\"num\">reconnect p99</th>\
         <th class=\"num\">recovery p50</th><th class=\"num\">recovery p99</th>\
         <th class=\"num\">recovery max</th><th class=\"num\">not resumed</th></tr></thead>\n<tbody>"
    )?;
    for scope in &r.scopes {
        let after = scope.scope.starts_with("after:");
        let stat = |name: &str, f: fn(&Summary) -> u64| match scope.histograms.get(name) {
            Some(s) if s.count > 0 => micros(f(s)),
            _ if name == "recovery_time" && !after => "n/a".to_string(),
            _ => "–".to_string(),
        };
        let c = &scope.counters;
        let unrecovered = if after {
            number(c.unrecovered)
        } else {
            "n/a".to_string()
        };
        let class = if after && c.unrecovered > 0 {
            "bad"
        } else {
            ""
        };
        writeln!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num {class}\">{}</td></tr>",
            Esc(&scope.scope),
            Esc(&stretches(&scope.windows)),
            number(c.disconnects),
            number(c.reconnects),
            stat("reconnect_latency", |s| s.p99),
            stat("recovery_time", |s| s.p50),
            stat("recovery_time", |s| s.p99),
            stat("recovery_time", |s| s.max),
            unrecovered
        )?;
    }
    writeln!(o, "</tbody>\n</table>\n</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(7798), "7,798");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(number(u64::MAX), "18,446,744,073,709,551,615");
    }
}
