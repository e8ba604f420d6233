//! `report.html`: one self-contained page rendered from the [`Report`] alone — the verdict
//! first, then charts (timeline with fault windows, percentile curves, retransmits, errors)
//! and every figure as a table.
//!
//! Nothing is fetched when the page is viewed: the style and the chart script are inlined
//! (`html/style.css`, `html/charts.js`), the chart data is embedded as JSON, and a
//! Content-Security-Policy forbids any request. Every text that came from a user's file is
//! escaped; the tables carry every figure, so the page still says everything without
//! JavaScript.
//!
//! Here: the page and its sections. `figures` (the chart data model, histogram figures),
//! `timeline` and `errors` build the charts' data; `points` computes curve and bar points
//! from the HdrHistograms; `tables` writes the tables; `html/*.js` draws.

mod errors;
mod figures;
mod points;
mod tables;
mod timeline;

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write};

use figures::Figure;

use super::{Counters, Report};
use crate::metrics::Summary;

const STYLE: &str = include_str!("html/style.css");
/// Runs first: reports any script error on the page itself instead of failing silently.
const GUARD: &str = include_str!("html/guard.js");
const CHARTS: &str = include_str!("html/charts.js");

/// Renders the whole report as one HTML page.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_page(&mut out, r);
    out
}

fn write_page(o: &mut String, r: &Report) -> fmt::Result {
    let pass = r.verdict == "pass";
    let verdict = if pass { "PASS" } else { "FAIL" };
    writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
    )?;
    writeln!(
        o,
        "<title>{verdict} · squall report: {}</title>",
        Esc(r.name())
    )?;
    writeln!(
        o,
        "<style>\n{STYLE}</style>\n<script>\n{GUARD}</script>\n</head>\n<body>"
    )?;
    write_header(o, r, pass, verdict)?;
    writeln!(o, "<main>")?;
    tables::thresholds(o, r)?;
    tables::glance(o, r)?;
    tables::delivery(o, r)?;

    let mut charts = serde_json::Map::new();
    section(o, "timeline", "Timeline", None)?;
    figure(o, &timeline::timeline(r), &mut charts)?;
    end_section(o)?;

    let (curves, empty) = figures::latency_curves(r);
    section(
        o,
        "percentiles",
        "Latency by percentile",
        Some(
            "Each curve plots a latency against the share of samples at or below it, on a \
             scale that gives every nine (90 %, 99 %, 99.9 %) the same room, so the tail — \
             where recovery costs hide — is as readable as the median.",
        ),
    )?;
    for f in &curves {
        figure(o, f, &mut charts)?;
    }
    no_samples(o, &empty)?;
    end_section(o)?;

    let (bars, empty) = figures::count_bars(r);
    section(o, "retransmits", "Retransmits and attempts", None)?;
    pair(o, &bars, &mut charts)?;
    no_samples(o, &empty)?;
    end_section(o)?;

    section(o, "errors", "Errors", None)?;
    pair(
        o,
        &[errors::error_classes(r), errors::close_codes(r)],
        &mut charts,
    )?;
    tables::close_codes(o, r)?;
    end_section(o)?;

    tables::faults(o, r)?;
    tables::scopes(o, r)?;
    tables::counters(o, r)?;
    tables::histograms(o, r)?;
    writeln!(o, "</main>")?;
    writeln!(
        o,
        "<footer>squall {} · rendered from report.json ({}) · this page needs no network</footer>",
        Esc(&r.run.version),
        Esc(&r.schema)
    )?;
    let data = serde_json::json!({ "charts": charts });
    writeln!(
        o,
        "<script type=\"application/json\" id=\"squall-charts\">{}</script>",
        script_json(&data)
    )?;
    writeln!(o, "<script>\n{CHARTS}</script>\n</body>\n</html>")
}

fn write_header(o: &mut String, r: &Report, pass: bool, verdict: &str) -> fmt::Result {
    let class = if pass { "pass" } else { "fail" };
    writeln!(o, "<header class=\"verdict {class}\">")?;
    writeln!(o, "<div class=\"badge\">{verdict}</div>")?;
    writeln!(o, "<div>\n<h1>squall report: {}</h1>", Esc(r.name()))?;
    write!(
        o,
        "<p class=\"meta\">started {} · ran {:.1} s · seed {} · squall {} · status <b>{}</b>",
        Esc(&r.run.started_at),
        r.run.duration_s,
        r.run.seed,
        Esc(&r.run.version),
        Esc(&r.run.status)
    )?;
    if let Some(shard) = &r.run.shard {
        write!(o, " · shard {}", Esc(shard))?;
    }
    writeln!(o, "</p>")?;
    let failed: Vec<_> = r.thresholds.iter().filter(|t| !t.ok).collect();
    if !failed.is_empty() || r.run.interrupted || r.run.error.is_some() {
        writeln!(o, "<ul class=\"reasons\">")?;
        for t in failed {
            writeln!(
                o,
                "<li>threshold failed: <code>{}</code> on <code>{}</code> (measured {})</li>",
                Esc(&t.expression),
                Esc(&t.metric),
                Esc(&super::markdown::measured(t))
            )?;
        }
        if r.run.interrupted {
            writeln!(
                o,
                "<li>the run was <b>interrupted</b> before its end: figures cover what ran</li>"
            )?;
        }
        if let Some(e) = &r.run.error {
            writeln!(o, "<li>the run <b>failed</b>: {}</li>", Esc(e))?;
        }
        writeln!(o, "</ul>")?;
    }
    writeln!(o, "</div>\n</header>")?;
    writeln!(
        o,
        "<div id=\"script-errors\" class=\"script-errors\" hidden></div>\n\
         <noscript><p class=\"note\">The charts need JavaScript; the tables hold every \
         figure.</p></noscript>"
    )
}

fn section(o: &mut String, id: &str, title: &str, intro: Option<&str>) -> fmt::Result {
    writeln!(o, "<section id=\"{id}\">\n<h2>{title}</h2>")?;
    match intro {
        Some(text) => writeln!(o, "<p class=\"intro\">{text}</p>"),
        None => Ok(()),
    }
}

fn end_section(o: &mut String) -> fmt::Result {
    writeln!(o, "</section>")
}

/// A figure: its title and caption, the chart's box (its data joins `charts`), its notes.
fn figure(
    o: &mut String,
    f: &Figure,
    charts: &mut serde_json::Map<String, serde_json::Value>,
) -> fmt::Result {
    writeln!(o, "<figure id=\"fig-{}\">", Esc(&f.id))?;
    writeln!(
        o,
        "<figcaption><h3>{}</h3><p>{}</p></figcaption>",
        Esc(&f.title),
        Esc(&f.caption)
    )?;
    if let Some(chart) = &f.chart {
        writeln!(
            o,
            "<div class=\"chart\" id=\"chart-{0}\" data-chart=\"{0}\"></div>",
            Esc(&f.id)
        )?;
        charts.insert(
            f.id.clone(),
            serde_json::to_value(chart).unwrap_or(serde_json::Value::Null),
        );
    }
    for note in &f.notes {
        writeln!(o, "<p class=\"note\">{}</p>", Esc(note))?;
    }
    writeln!(o, "</figure>")
}

/// Figures side by side, two to a row (bar charts are narrow).
fn pair(
    o: &mut String,
    figures: &[Figure],
    charts: &mut serde_json::Map<String, serde_json::Value>,
) -> fmt::Result {
    writeln!(o, "<div class=\"pair\">")?;
    for f in figures {
        figure(o, f, charts)?;
    }
    writeln!(o, "</div>")
}

/// One line naming the histograms left out because nothing was measured.
fn no_samples(o: &mut String, metrics: &[&str]) -> fmt::Result {
    if metrics.is_empty() {
        return Ok(());
    }
    writeln!(
        o,
        "<p class=\"note\">No samples of {}: nothing was measured, so nothing is drawn.</p>",
        metrics
            .iter()
            .map(|m| format!("<code>{m}</code>"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One set of figures the page shows beside others: the whole run, or one client group.
struct Source<'r> {
    label: &'r str,
    counters: &'r Counters,
    histograms: &'r BTreeMap<String, Summary>,
}

/// The whole run, then each group when there are several (one group is the whole run).
fn sources(r: &Report) -> Vec<Source<'_>> {
    let mut out = vec![Source {
        label: "all clients",
        counters: &r.counters,
        histograms: &r.histograms,
    }];
    if r.groups.len() > 1 {
        out.extend(r.groups.iter().map(|g| Source {
            label: &g.name,
            counters: &g.counters,
            histograms: &g.histograms,
        }));
    }
    out
}

/// The parts that add up to the run: each group when there are several, else the whole
/// run. Bars compare these side by side.
fn parts(r: &Report) -> Vec<Source<'_>> {
    let mut all = sources(r);
    if all.len() > 1 {
        all.remove(0);
    }
    all
}

/// JSON safe inside `<script>`: `<`, `>` and `&` become `\u` escapes (valid JSON, since
/// they only occur in strings), so no string can close the script element or open a
/// comment; U+2028 and U+2029 too, which some parsers take for line ends.
fn script_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text escaped for HTML content and attribute values.
struct Esc<'a>(&'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
