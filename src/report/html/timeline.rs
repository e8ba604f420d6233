//! The timeline figure of `report.html`: per-second panels (connected clients,
//! connections, messages, retransmits) on one time axis, with each fault's windows.

use serde::Serialize;

use super::figures::{Chart, Figure, Series};
use crate::metrics::TimelineRow;
use crate::report::Report;

/// Panels stacked on one time axis, with each fault's windows shaded across all of them.
#[derive(Debug, Serialize)]
pub struct Timeline {
    /// Whole seconds since the start; row `i` counts what happened in `[t[i], t[i] + 1)`.
    pub t: Vec<u64>,
    /// The right end of the time axis, in seconds.
    pub end_s: f64,
    pub panels: Vec<Panel>,
    pub faults: Vec<Band>,
    /// The faults active at each row's second.
    pub active: Vec<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct Panel {
    pub title: &'static str,
    pub unit: &'static str,
    /// Per-second counts are steps over their second; a sampled gauge is a line.
    pub step: bool,
    pub series: Vec<Series>,
}

/// One fault's windows, in seconds, each clipped to the time axis.
#[derive(Debug, Serialize)]
pub struct Band {
    pub label: String,
    pub windows: Vec<(f64, f64)>,
}

/// Fault bands are labelled with the fault's name, and its kind when the name hides it.
fn fault_label(name: &str, kind: &str) -> String {
    if name.starts_with(kind) {
        name.to_string()
    } else {
        format!("{name} ({kind})")
    }
}

pub fn timeline(r: &Report) -> Figure {
    let mut rows: Vec<&TimelineRow> = r.timeline.iter().collect();
    rows.sort_by_key(|row| row.t);
    let mut figure = Figure {
        id: "timeline".into(),
        title: "Clients, connections and messages per second".into(),
        caption: "Per second, with each fault's windows shaded. Hover for the figures of one \
                  second."
            .into(),
        chart: None,
        notes: Vec::new(),
    };
    let Some(last) = rows.last() else {
        figure.notes.push(
            "No samples: the timeline is empty (the run ended before its first second).".into(),
        );
        return figure;
    };
    let end_s = last.t.saturating_add(1) as f64;
    let column = |label: &str, f: fn(&TimelineRow) -> f64| Series {
        label: label.into(),
        values: rows.iter().map(|row| f(row)).collect(),
    };
    let panels = vec![
        Panel {
            title: "Connected clients",
            unit: "clients",
            step: false,
            series: vec![column("connected", |row| row.connected as f64)],
        },
        Panel {
            title: "Connections per second",
            unit: "per second",
            step: true,
            series: vec![
                column("connects", |row| row.connects as f64),
                column("disconnects", |row| row.disconnects as f64),
                column("connect attempts (clients)", |row| {
                    row.connect_attempts as f64
                }),
                column("handshakes (server)", |row| row.server_handshakes as f64),
            ],
        },
        Panel {
            title: "Messages per second",
            unit: "per second",
            step: true,
            series: vec![
                column("sent", |row| row.messages_sent as f64),
                column("delivered", |row| row.messages_delivered as f64),
            ],
        },
        Panel {
            title: "Retransmits per second",
            unit: "per second",
            step: true,
            series: vec![column("retransmits", |row| row.retransmits as f64)],
        },
    ];
    let faults = r
        .faults
        .iter()
        .map(|f| Band {
            label: fault_label(&f.name, &f.kind),
            windows: f
                .windows
                .iter()
                .map(|&(start, stop)| {
                    let start = start as f64 / 1e6;
                    let stop = stop.map_or(end_s, |s| s as f64 / 1e6);
                    (start.min(end_s), stop.clamp(start, end_s).min(end_s))
                })
                .filter(|&(start, _)| start < end_s)
                .collect(),
        })
        .filter(|b| !b.windows.is_empty())
        .collect();
    figure.chart = Some(Chart::Timeline(Timeline {
        t: rows.iter().map(|row| row.t).collect(),
        end_s,
        panels,
        faults,
        active: rows.iter().map(|row| row.active_faults.clone()).collect(),
    }));
    figure
}
