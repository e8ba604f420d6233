//! The error figures of `report.html`: errors by class and close codes, per group when
//! there are several.

use super::figures::{Bars, Chart, Figure, Series, wide_range};
use super::{Source, parts};
use crate::report::{Counters, Report};

/// The words of a bars figure read from the counters.
struct Heading {
    id: &'static str,
    title: &'static str,
    caption: &'static str,
    x_label: &'static str,
    /// The note when every count is zero.
    none: &'static str,
}

/// A bars figure of counts read from the counters, or a note when all are zero.
fn counter_bars(
    r: &Report,
    h: Heading,
    categories: Vec<String>,
    count: impl Fn(&Counters, usize) -> u64,
) -> Figure {
    let series: Vec<Series> = parts(r)
        .into_iter()
        .map(|p| Series {
            label: p.label.to_string(),
            values: (0..categories.len())
                .map(|i| count(p.counters, i) as f64)
                .collect(),
        })
        .collect();
    let any = series.iter().flat_map(|s| &s.values).any(|v| *v > 0.0);
    Figure {
        id: h.id.into(),
        title: h.title.into(),
        caption: h.caption.into(),
        chart: any.then(|| {
            Chart::Bars(Bars {
                x_label: h.x_label,
                y_label: "count",
                categories,
                log: wide_range(&series),
                series,
            })
        }),
        notes: if any {
            Vec::new()
        } else {
            vec![h.none.to_string()]
        },
    }
}

pub fn error_classes(r: &Report) -> Figure {
    counter_bars(
        r,
        Heading {
            id: "errors-class",
            title: "Errors by class",
            caption: "Connection errors (resets, timeouts, refusals), data errors (corrupt or \
                      undecodable frames) and application errors (sent by the server).",
            x_label: "error class",
            none: "No errors in this run.",
        },
        vec!["connection".into(), "data".into(), "application".into()],
        |c, i| [c.errors.connection, c.errors.data, c.errors.application][i],
    )
}

pub fn close_codes(r: &Report) -> Figure {
    let codes = close_codes_seen(&parts(r));
    let categories = codes
        .iter()
        .map(|code| match close_code_name(code) {
            Some(name) => format!("{code}\n{name}"),
            None => code.to_string(),
        })
        .collect();
    counter_bars(
        r,
        Heading {
            id: "errors-close",
            title: "Close codes",
            caption: "The close code each lost connection ended with, as its client saw it \
                      (1006: the connection ended without a close frame).",
            x_label: "close code",
            none: "No close codes recorded.",
        },
        categories,
        |c, i| c.errors.close_codes.get(codes[i]).copied().unwrap_or(0),
    )
}

/// Every close code of `sources`, in numeric order.
pub fn close_codes_seen<'r>(sources: &[Source<'r>]) -> Vec<&'r String> {
    let mut codes: Vec<&String> = sources
        .iter()
        .flat_map(|s| s.counters.errors.close_codes.keys())
        .collect();
    codes.sort_by_key(|code| (code.parse::<u32>().unwrap_or(u32::MAX), code.as_str()));
    codes.dedup();
    codes
}

/// The meaning of a WebSocket close code (RFC 6455 and IANA's registry).
pub fn close_code_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "1000" => "normal",
        "1001" => "going away",
        "1002" => "protocol error",
        "1003" => "unsupported data",
        "1005" => "no status",
        "1006" => "abnormal",
        "1007" => "invalid payload",
        "1008" => "policy violation",
        "1009" => "message too big",
        "1010" => "extension required",
        "1011" => "internal error",
        "1012" => "service restart",
        "1013" => "try again later",
        "1014" => "bad gateway",
        "1015" => "TLS handshake",
        _ => return None,
    })
}
