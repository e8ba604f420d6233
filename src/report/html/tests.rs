//! The page rendered from reports built by hand: escaping, empty and odd reports, groups.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::*;
use crate::events::FaultSummary;
use crate::metrics::{Hist, MAX_COUNT, MAX_MICROS, TimelineRow};
use crate::report::{Delivery, GroupReport, RunInfo, SCHEMA, ThresholdResult};

fn summary(max: u64, values: &[u64]) -> Summary {
    let mut h = Histogram::<u64>::new_with_bounds(1, max, 3).unwrap();
    for v in values {
        h.record(*v).unwrap();
    }
    Summary::of(&h)
}

/// Every histogram with `values` (microseconds, or counts for the count histograms).
fn histograms(values: &[u64]) -> BTreeMap<String, Summary> {
    Hist::ALL
        .iter()
        .map(|h| {
            let s = if h.is_micros() {
                summary(MAX_MICROS, values)
            } else {
                summary(MAX_COUNT, &values.iter().map(|v| v % 3).collect::<Vec<_>>())
            };
            (h.name().to_string(), s)
        })
        .collect()
}

fn row(t: u64, connected: i64) -> TimelineRow {
    TimelineRow {
        t,
        connected,
        connects: 1,
        disconnects: 2,
        connect_attempts: 3,
        server_handshakes: 3,
        messages_sent: 40,
        messages_delivered: 40,
        retransmits: 1,
        active_faults: vec![],
    }
}

fn report(values: &[u64]) -> Report {
    let mut counters = Counters::default();
    counters.errors.connection = 4;
    counters.errors.close_codes.insert("1006".into(), 4);
    Report {
        schema: SCHEMA.into(),
        scenario: json!({ "name": "unit" }),
        run: RunInfo {
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_s: 3.0,
            seed: 1,
            version: "0.1.0".into(),
            interrupted: false,
            status: "completed".into(),
            error: None,
            shard: None,
        },
        counters,
        histograms: histograms(values),
        groups: Vec::new(),
        delivery: Delivery {
            sent: 0,
            delivered: 0,
            lost: 0,
            closes: true,
        },
        timeline: (0..3).map(|t| row(t, 10)).collect(),
        faults: vec![FaultSummary {
            name: "reset#0".into(),
            kind: "reset".into(),
            windows: vec![(1_000_000, Some(1_000_100))],
            ..Default::default()
        }],
        scopes: Vec::new(),
        thresholds: Vec::new(),
        verdict: "pass".into(),
    }
}

/// The chart data embedded in a page, parsed back.
fn charts(page: &str) -> serde_json::Map<String, Value> {
    let open = "<script type=\"application/json\" id=\"squall-charts\">";
    let start = page.find(open).expect("the page embeds its chart data") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&page[start..end]).unwrap();
    data["charts"].as_object().unwrap().clone()
}

/// The ids of the chart boxes on the page.
fn boxes(page: &str) -> Vec<String> {
    page.split("data-chart=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

#[test]
fn every_chart_box_has_its_data_and_the_verdict_comes_first() {
    let page = render(&report(&[800, 1_200, 90_000]));
    let data = charts(&page);
    let ids = boxes(&page);
    assert_eq!(
        ids,
        [
            "timeline",
            "pct-reconnect_latency",
            "pct-message_rtt",
            "pct-detection_latency",
            "pct-downtime",
            "bars-retransmits_per_message",
            "bars-attempts_per_reconnect",
            "errors-class",
            "errors-close",
        ]
    );
    assert_eq!(data.len(), ids.len());
    assert!(ids.iter().all(|id| data.contains_key(id)));
    assert!(page.find("class=\"badge\">PASS").unwrap() < page.find("id=\"thresholds\"").unwrap());
    // The reset is one band on the timeline, labelled with its name.
    assert_eq!(data["timeline"]["faults"][0]["label"], "reset#0");
    assert_eq!(data["timeline"]["panels"].as_array().unwrap().len(), 4);
}

#[test]
fn user_text_is_escaped_everywhere() {
    let nasty = "</script><script>alert(1)</script><img src=x onerror=alert(2)>";
    let mut r = report(&[1_000]);
    r.scenario = json!({ "name": nasty });
    r.faults[0].name = nasty.into();
    r.run.error = Some(nasty.into());
    r.thresholds.push(ThresholdResult {
        metric: "reconnect_latency".into(),
        expression: "p(99) < 3s & \"quoted\"".into(),
        value: Some(4e6),
        ok: false,
        abort_on_fail: false,
        note: Some("1 client(s) had not resumed <when> the run ended".into()),
    });
    r.verdict = "fail".into();
    let group = |name: &str| GroupReport {
        name: name.into(),
        counters: r.counters.clone(),
        histograms: histograms(&[500]),
        connect_attempts_per_second: Vec::new(),
    };
    r.groups = vec![group("a<b>'s"), group(nasty)];
    let page = render(&r);
    // The guard, the data and the chart script: no other element ends.
    assert_eq!(page.matches("</script>").count(), 3, "{page}");
    assert_eq!(page.matches("<script").count(), 3);
    assert!(
        !page.contains("<img"),
        "markup from a user's file got through"
    );
    assert!(page.contains("a&lt;b&gt;&#39;s"));
    assert!(page.contains("p(99) &lt; 3s &amp; &quot;quoted&quot;"));
    assert!(page.contains("class=\"badge\">FAIL"));
    // The data holds the names as they are; the page's script writes them as text.
    let data = charts(&page);
    assert_eq!(
        data["timeline"]["faults"][0]["label"],
        format!("{nasty} (reset)")
    );
    assert_eq!(data["pct-reconnect_latency"]["curves"][2]["label"], nasty);
}

#[test]
fn script_json_cannot_end_the_script_element() {
    let value = json!({ "s": "</script><!-- & \u{2028}" });
    let text = script_json(&value);
    assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
    assert!(!text.contains('\u{2028}'));
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    assert!(!GUARD.contains("</script") && !CHARTS.contains("</script"));
    assert!(!STYLE.contains("</style"));
}

#[test]
fn an_empty_report_says_no_samples_and_draws_nothing_broken() {
    let mut r = report(&[]);
    r.timeline.clear();
    r.faults.clear();
    r.counters = Counters::default();
    let page = render(&r);
    assert!(boxes(&page).is_empty(), "{:?}", boxes(&page));
    assert!(charts(&page).is_empty());
    for note in [
        "No samples: the timeline is empty",
        "all clients: no samples.",
        "No samples of <code>detection_latency</code>, <code>downtime</code>:",
        "No samples of <code>attempts_per_reconnect</code>:",
        "No errors in this run.",
        "No close codes recorded.",
    ] {
        assert!(page.contains(note), "missing {note:?}");
    }
    // Two figures that are always shown, each with its note.
    assert_eq!(
        page.matches("<p class=\"note\">all clients: no samples.</p>")
            .count(),
        3
    );
}

#[test]
fn several_groups_get_a_curve_each_and_bars_side_by_side() {
    let mut r = report(&[1_000, 2_000, 3_000]);
    let group = |name: &str, values: &[u64]| GroupReport {
        name: name.into(),
        counters: r.counters.clone(),
        histograms: histograms(values),
        connect_attempts_per_second: Vec::new(),
    };
    r.groups = vec![
        group("eager", &[1_000, 1_500]),
        group("patient", &[2_000, 3_000, 400_000]),
    ];
    let data = charts(&render(&r));
    let labels = |chart: &Value, key: &str| -> Vec<String> {
        chart[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap().to_string())
            .collect()
    };
    let rtt = &data["pct-message_rtt"];
    assert_eq!(labels(rtt, "curves"), ["all clients", "eager", "patient"]);
    for curve in rtt["curves"].as_array().unwrap() {
        let points: Vec<(f64, f64)> = serde_json::from_value(curve["points"].clone()).unwrap();
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
    }
    // The patient group's slowest round trip ends its curve, in milliseconds.
    let last = rtt["curves"][2]["points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()[1]
        .as_f64()
        .unwrap();
    assert!((last - 400.0).abs() < 1.0, "{last}");
    let bars = &data["bars-retransmits_per_message"];
    assert_eq!(labels(bars, "series"), ["eager", "patient"]);
    assert_eq!(
        labels(&data["errors-class"], "series"),
        ["eager", "patient"]
    );
}

#[test]
fn a_hand_edited_report_renders_notes_not_panics() {
    let mut r = report(&[1_000, 2_000]);
    r.histograms.get_mut("reconnect_latency").unwrap().hdr = "not base64 !!".into();
    r.histograms.get_mut("retransmits_per_message").unwrap().hdr = "aGVsbG8=".into();
    r.histograms.remove("message_rtt");
    r.run.duration_s = -5.0;
    r.timeline = vec![row(4, -3), row(1, 7), row(u64::MAX, 0)];
    r.faults[0].windows = vec![
        (5_000_000, Some(1_000_000)),
        (2_000_000, None),
        (u64::MAX, None),
    ];
    r.counters.errors.close_codes.insert("not a code".into(), 1);
    let page = render(&r);
    assert!(page.contains("all clients: cannot be drawn: histogram is not valid base64"));
    assert!(page.contains("all clients: not in this report."));
    let data = charts(&page);
    assert!(!data.contains_key("pct-reconnect_latency"));
    assert!(!data.contains_key("bars-retransmits_per_message"));
    let timeline = &data["timeline"];
    assert_eq!(timeline["t"], json!([1, 4, u64::MAX]));
    let end = timeline["end_s"].as_f64().unwrap();
    for w in timeline["faults"][0]["windows"].as_array().unwrap() {
        let (a, b) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
        assert!(0.0 <= a && a <= b && b <= end, "{w}");
    }
    let codes = data["errors-close"]["categories"].as_array().unwrap();
    assert_eq!(codes, &[json!("1006\nabnormal"), json!("not a code")]);
}
