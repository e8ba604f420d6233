//! The figures of `report.html`, built from a [`Report`] alone: the chart data
//! `charts.js` draws (embedded in the page as JSON) and the notes shown where a chart
//! cannot be (no samples, a histogram that does not decode). The histogram figures live
//! here; the timeline and the errors have their own files.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::points::{self, ValueBar};
use super::timeline::Timeline;
use super::{Source, parts, sources};
use crate::report::Report;

/// One chart with its title, a line saying how to read it, and notes. A figure without a
/// chart shows its notes alone.
#[derive(Debug, Serialize)]
pub struct Figure {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub chart: Option<Chart>,
    pub notes: Vec<String>,
}

/// What `charts.js` draws, by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Chart {
    Timeline(Timeline),
    Curves(Curves),
    Bars(Bars),
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
}

/// Percentile curves: x in nines (0 = min, 1 = p90, 2 = p99, …), y in milliseconds.
#[derive(Debug, Serialize)]
pub struct Curves {
    pub y_label: &'static str,
    pub curves: Vec<Curve>,
}

#[derive(Debug, Serialize)]
pub struct Curve {
    pub label: String,
    pub count: u64,
    pub points: Vec<(f64, f64)>,
}

/// Grouped bars: one bar per series in each category.
#[derive(Debug, Serialize)]
pub struct Bars {
    pub x_label: &'static str,
    pub y_label: &'static str,
    /// Category labels; a `\n` starts a second line.
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// A log scale, when the bars span more than the eye can compare on a linear one.
    pub log: bool,
}

/// A histogram figure's words: which histogram, its title, how to read it, axis labels.
struct Spec {
    metric: &'static str,
    title: &'static str,
    caption: &'static str,
    /// Drawn even without samples (then with the note saying so).
    always: bool,
    /// What the value counts (x) and what a sample is (y, the latency for curves).
    x_label: &'static str,
    y_label: &'static str,
    /// Bars only: the first value drawn (0 retransmits; 1 attempt).
    from: u64,
}

const LATENCIES: [Spec; 4] = [
    Spec {
        metric: "reconnect_latency",
        title: "Reconnect latency",
        caption: "From a client detecting a lost connection to its session resumed on a new \
                  one, backoff included.",
        always: true,
        x_label: "percentile",
        y_label: "reconnect latency",
        from: 0,
    },
    Spec {
        metric: "message_rtt",
        title: "Message round trip",
        caption: "From a message's intended send time to its delivery confirmed, retransmits \
                  and reconnects included.",
        always: true,
        x_label: "percentile",
        y_label: "round trip",
        from: 0,
    },
    Spec {
        metric: "detection_latency",
        title: "Detection latency",
        caption: "From a fault touching a connection to the client noticing it.",
        always: false,
        x_label: "percentile",
        y_label: "detection latency",
        from: 0,
    },
    Spec {
        metric: "downtime",
        title: "Downtime",
        caption: "From a fault touching a connection to the session resumed.",
        always: false,
        x_label: "percentile",
        y_label: "downtime",
        from: 0,
    },
];

const COUNTS: [Spec; 2] = [
    Spec {
        metric: "retransmits_per_message",
        title: "Retransmits per message",
        caption: "How many delivered messages needed 0, 1, 2, … sends beyond the first.",
        always: true,
        x_label: "sends beyond the first",
        y_label: "messages",
        from: 0,
    },
    Spec {
        metric: "attempts_per_reconnect",
        title: "Attempts per reconnect",
        caption: "Connection attempts until one succeeded, for each reconnect.",
        always: false,
        x_label: "connection attempts",
        y_label: "reconnects",
        from: 1,
    },
];

/// Whether any source has samples of `metric` (or a blob worth a note).
fn has_samples(r: &Report, metric: &str) -> bool {
    sources(r)
        .iter()
        .any(|s| s.histograms.get(metric).is_some_and(|h| h.count > 0))
}

/// Percentile curves of the latency histograms; detection latency and downtime only when
/// something was measured. Also returns the histograms left out, for a note.
pub fn latency_curves(r: &Report) -> (Vec<Figure>, Vec<&'static str>) {
    shown(r, &LATENCIES, percentiles)
}

/// Bars of the count histograms, by the same rule as [`latency_curves`].
pub fn count_bars(r: &Report) -> (Vec<Figure>, Vec<&'static str>) {
    shown(r, &COUNTS, value_bars)
}

/// The figures of `specs` worth drawing, and the metrics of the others.
fn shown(
    r: &Report,
    specs: &[Spec],
    draw: fn(&Report, &Spec) -> Figure,
) -> (Vec<Figure>, Vec<&'static str>) {
    let (shown, empty): (Vec<&Spec>, Vec<&Spec>) = specs
        .iter()
        .partition(|s| s.always || has_samples(r, s.metric));
    (
        shown.into_iter().map(|s| draw(r, s)).collect(),
        empty.into_iter().map(|s| s.metric).collect(),
    )
}

/// Reads `metric` of every source, noting what cannot be drawn.
fn read_all<'r>(
    sources: &[Source<'r>],
    metric: &str,
    notes: &mut Vec<String>,
) -> Vec<(&'r str, Histogram<u64>)> {
    let mut out = Vec::new();
    for Source {
        label, histograms, ..
    } in sources
    {
        match histograms.get(metric).map(points::read) {
            None => notes.push(format!("{label}: not in this report.")),
            Some(Ok(None)) => notes.push(format!("{label}: no samples.")),
            Some(Err(e)) => notes.push(format!("{label}: cannot be drawn: {e}.")),
            Some(Ok(Some(h))) => out.push((*label, h)),
        }
    }
    out
}

/// A percentile-curve figure of a microsecond histogram: the whole run's curve and, with
/// several groups, one per group, so recovery policies compare on one chart.
fn percentiles(r: &Report, spec: &Spec) -> Figure {
    let mut notes = Vec::new();
    let curves: Vec<Curve> = read_all(&sources(r), spec.metric, &mut notes)
        .into_iter()
        .map(|(label, h)| Curve {
            label: label.to_string(),
            count: h.len(),
            points: points::percentile_curve(&h)
                .into_iter()
                .map(|(nines, us)| (nines, us as f64 / 1e3))
                .collect(),
        })
        .collect();
    Figure {
        id: format!("pct-{}", spec.metric),
        title: spec.title.into(),
        caption: spec.caption.into(),
        chart: (!curves.is_empty()).then_some(Chart::Curves(Curves {
            y_label: spec.y_label,
            curves,
        })),
        notes,
    }
}

/// A bars figure of a count histogram: how many samples had 0, 1, 2, … (per group when
/// there are several).
fn value_bars(r: &Report, spec: &Spec) -> Figure {
    let mut notes = Vec::new();
    let hists = read_all(&parts(r), spec.metric, &mut notes);
    let refs: Vec<_> = hists.iter().map(|(_, h)| h).collect();
    let bars = points::value_counts(&refs, spec.from);
    let chart = (!bars.is_empty()).then(|| {
        let series: Vec<Series> = hists
            .iter()
            .enumerate()
            .map(|(i, (label, _))| Series {
                label: label.to_string(),
                values: bars.iter().map(|b| b.counts[i] as f64).collect(),
            })
            .collect();
        Chart::Bars(Bars {
            x_label: spec.x_label,
            y_label: spec.y_label,
            categories: bars.iter().map(ValueBar::label).collect(),
            log: wide_range(&series),
            series,
        })
    });
    Figure {
        id: format!("bars-{}", spec.metric),
        title: spec.title.into(),
        caption: spec.caption.into(),
        chart,
        notes,
    }
}

impl ValueBar {
    fn label(&self) -> String {
        if self.or_more {
            format!("≥ {}", self.value)
        } else {
            self.value.to_string()
        }
    }
}

/// Bars spanning more than ×50 between the smallest and the largest non-zero one: on a
/// linear scale the small ones (the interesting tail) would not show.
pub fn wide_range(series: &[Series]) -> bool {
    let nonzero = series.iter().flat_map(|s| &s.values).filter(|v| **v > 0.0);
    let (lo, hi) = nonzero.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    hi > 0.0 && hi / lo >= 50.0
}
