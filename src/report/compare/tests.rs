//! The comparison on reports built in memory: identity, the rules applied row by row,
//! groups, incomplete runs and odd reports.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::json;

use super::*;
use crate::metrics::{MAX_COUNT, MAX_MICROS};
use crate::report::{Delivery, GroupReport, RunInfo, SCHEMA};

fn summary(values: &[u64], max: u64) -> Summary {
    let mut h = Histogram::<u64>::new_with_bounds(1, max, 3).unwrap();
    for v in values {
        h.record(*v).unwrap();
    }
    Summary::of(&h)
}

/// Latencies from `ms` milliseconds to 10 ms more, 2000 of them: enough that p99 is
/// judged (20 samples at or beyond it), not p999.
fn latencies(ms: u64) -> Summary {
    let values: Vec<u64> = (0..2000).map(|i| ms * 1000 + i * 5).collect();
    summary(&values, MAX_MICROS)
}

fn histograms(reconnect_ms: u64) -> BTreeMap<String, Summary> {
    BTreeMap::from([
        ("reconnect_latency".to_string(), latencies(reconnect_ms)),
        ("message_rtt".to_string(), latencies(2)),
        (
            "retransmits_per_message".to_string(),
            summary(&[[0; 30].as_slice(), &[1; 10]].concat(), MAX_COUNT),
        ),
    ])
}

fn counters() -> Counters {
    Counters {
        clients_connected_peak: 100,
        sessions: 100,
        messages_sent: 1000,
        messages_delivered: 1000,
        disconnects: 50,
        reconnects: 50,
        connect_attempts: 150,
        ..Counters::default()
    }
}

fn report(name: &str, seed: u64) -> Report {
    Report {
        schema: SCHEMA.to_string(),
        scenario: json!({"name": name, "seed": seed, "duration": "2s", "clients": {"count": 100}}),
        run: RunInfo {
            started_at: "2026-01-01T00:00:00Z".to_string(),
            duration_s: 2.0,
            seed,
            version: "0.1.0".to_string(),
            interrupted: false,
            status: "completed".to_string(),
            error: None,
            shard: None,
        },
        counters: counters(),
        histograms: histograms(300),
        groups: Vec::new(),
        delivery: Delivery {
            sent: 1000,
            delivered: 1000,
            lost: 0,
            closes: true,
        },
        timeline: Vec::new(),
        scopes: Vec::new(),
        faults: Vec::new(),
        thresholds: Vec::new(),
        verdict: "pass".to_string(),
    }
}

fn opts(max_regression: &[&str]) -> Options {
    Options {
        tolerances: Tolerances::parse(max_regression).unwrap(),
        ..Options::default()
    }
}

fn row<'c>(c: &'c Comparison, group: Option<&str>, metric: &str) -> &'c Row {
    c.rows
        .iter()
        .find(|r| r.metric == metric && r.group.as_deref() == group)
        .unwrap_or_else(|| panic!("no row {metric} in {group:?}"))
}

fn regressed(c: &Comparison) -> Vec<String> {
    c.regressions.iter().map(|r| r.metric.clone()).collect()
}

#[test]
fn a_report_against_itself_passes_with_every_figure_unchanged() {
    let r = report("x", 1);
    let c = compare(&r, &r, &Options::default()).unwrap();
    assert!(!c.regressed());
    assert_eq!(c.verdict, "pass");
    assert!(
        c.rows
            .iter()
            .all(|r| matches!(r.mark, Mark::Unchanged | Mark::Informational))
    );
    assert!(
        c.headline().starts_with("compare: PASS"),
        "{}",
        c.headline()
    );
    // Every counter, and seven statistics of each histogram.
    assert!(c.rows.iter().any(|r| r.metric == "errors.application"));
    assert_eq!(
        c.rows
            .iter()
            .filter(|r| r.metric.starts_with("reconnect_latency."))
            .count(),
        7
    );
    assert!(c.notes.is_empty() && c.warnings.is_empty());
}

#[test]
fn a_clearly_worse_run_fails_naming_each_regressed_metric() {
    let base = report("x", 1);
    let mut new = report("x", 1);
    new.counters.messages_lost = 12;
    new.counters.messages_delivered = 700;
    new.histograms = histograms(600);
    let c = compare(&base, &new, &Options::default()).unwrap();
    let names = regressed(&c);
    for m in [
        "messages_lost",
        "messages_delivered",
        "reconnect_latency.p50",
        "reconnect_latency.p99",
        "reconnect_latency.mean",
    ] {
        assert!(names.contains(&m.to_string()), "{m} in {names:?}");
    }
    // Unchanged figures and informational ones do not regress.
    for m in [
        "message_rtt.p99",
        "reconnect_latency.count",
        "messages_sent",
    ] {
        assert!(!names.contains(&m.to_string()), "{m} in {names:?}");
    }
    let lost = c
        .regressions
        .iter()
        .find(|r| r.metric == "messages_lost")
        .unwrap();
    assert_eq!(lost.detail, "0 → 12");
    let p99 = row(&c, None, "reconnect_latency.p99");
    assert_eq!(p99.mark, Mark::Regressed);
    assert!(p99.change_pct.unwrap() > 90.0);
    let headline = c.headline();
    assert!(
        headline.starts_with("compare: FAIL — ") && headline.contains("messages_lost 0 → 12"),
        "{headline}"
    );
    // The other way round, the same figures improved.
    let back = compare(&new, &base, &Options::default()).unwrap();
    assert!(!back.regressed(), "{:?}", back.regressions);
    assert_eq!(
        row(&back, None, "reconnect_latency.p99").mark,
        Mark::Improved
    );
}

#[test]
fn a_lost_message_from_zero_regresses_however_generous_the_tolerance() {
    let base = report("x", 1);
    let mut new = report("x", 1);
    new.counters.messages_duplicated = 1;
    new.counters.disconnects = 53;
    let c = compare(&base, &new, &opts(&["1000"])).unwrap();
    assert_eq!(regressed(&c), ["messages_duplicated"]);
    // 50 → 53 disconnects is +6 %: within 10 % and under the count floor anyway.
    let c = compare(&base, &new, &Options::default()).unwrap();
    assert_eq!(row(&c, None, "disconnects").mark, Mark::Unchanged);
}

#[test]
fn a_sub_millisecond_latency_change_is_noise() {
    let mut base = report("x", 1);
    let mut new = report("x", 1);
    base.histograms
        .insert("detection_latency".into(), summary(&[50; 30], MAX_MICROS));
    new.histograms
        .insert("detection_latency".into(), summary(&[120; 30], MAX_MICROS));
    let c = compare(&base, &new, &Options::default()).unwrap();
    let p50 = row(&c, None, "detection_latency.p50");
    assert!(p50.change_pct.unwrap() > 100.0);
    assert_eq!(p50.mark, Mark::Unchanged);
    assert!(!c.regressed());
    let strict = Options {
        floors: Floors {
            latency_us: 10,
            ..Floors::default()
        },
        ..Options::default()
    };
    let c = compare(&base, &new, &strict).unwrap();
    assert_eq!(row(&c, None, "detection_latency.p50").mark, Mark::Regressed);
}

#[test]
fn statistics_decided_by_a_few_samples_are_not_judged() {
    let with = |count: usize, base_us, new_us| {
        let mut base = report("x", 1);
        let mut new = report("x", 1);
        base.histograms.insert(
            "detection_latency".into(),
            summary(&vec![base_us; count], MAX_MICROS),
        );
        new.histograms.insert(
            "detection_latency".into(),
            summary(&vec![new_us; count], MAX_MICROS),
        );
        (base, new)
    };
    let marks = |c: &Comparison| -> Vec<Mark> {
        Stat::ALL[1..]
            .iter()
            .map(|s| row(c, None, &format!("detection_latency.{}", s.name())).mark)
            .collect()
    };
    use Mark::{FewSamples as Few, Regressed as Reg};
    // Two samples: nothing to judge.
    let (base, new) = with(2, 50_000, 900_000);
    let c = compare(&base, &new, &Options::default()).unwrap();
    assert_eq!(marks(&c), [Few, Few, Few, Few, Few, Few]);
    assert!(!c.regressed());
    // 200: mean, p50 and p90 have 10 samples or more at or beyond them; p99 has two.
    let (base, new) = with(200, 50_000, 900_000);
    let c = compare(&base, &new, &Options::default()).unwrap();
    assert_eq!(marks(&c), [Reg, Reg, Reg, Few, Few, Few]);
    // --min-samples 0 judges even the max.
    let every = Options {
        floors: Floors {
            samples: 0,
            ..Floors::default()
        },
        ..Options::default()
    };
    let (base, new) = with(2, 50_000, 900_000);
    let c = compare(&base, &new, &every).unwrap();
    assert_eq!(marks(&c), [Reg, Reg, Reg, Reg, Reg, Reg]);
}

#[test]
fn overrides_loosen_or_silence_one_metric_and_the_most_specific_wins() {
    let base = report("x", 1);
    let mut new = report("x", 1);
    new.histograms = histograms(600);
    let c = compare(&base, &new, &opts(&["reconnect_latency=150"])).unwrap();
    assert!(!c.regressed(), "{:?}", c.regressions);
    assert_eq!(
        row(&c, None, "reconnect_latency.p99").max_regression,
        Some(150.0)
    );
    let c = compare(
        &base,
        &new,
        &opts(&["reconnect_latency=150", "reconnect_latency.p99=5"]),
    )
    .unwrap();
    assert_eq!(regressed(&c), ["reconnect_latency.p99"]);
    let c = compare(&base, &new, &opts(&["reconnect_latency=off"])).unwrap();
    assert!(!c.regressed());
    assert_eq!(
        row(&c, None, "reconnect_latency.p99").mark,
        Mark::Informational
    );
}

#[test]
fn an_override_of_an_unknown_metric_is_refused_with_a_suggestion() {
    let r = report("x", 1);
    let e = compare(&r, &r, &opts(&["reconect_latency=25"])).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, CompareError::UnknownMetric { .. }));
    assert!(
        text.contains("reconect_latency") && text.contains("did you mean `reconnect_latency`"),
        "{text}"
    );
    let e = compare(&r, &r, &opts(&["reconnect_latency.p95=25"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reconnect_latency.p95"), "{e}");
    // Families, histograms the reports lack and close codes are known names.
    for ok in [
        "errors=5",
        "downtime.p99=5",
        "errors.close_codes=off",
        "messages_lost=0",
    ] {
        assert!(compare(&r, &r, &opts(&[ok])).is_ok(), "{ok}");
    }
}

#[test]
fn different_scenarios_are_refused_naming_both_and_what_differs() {
    let base = report("x", 1);
    let other = report("y", 1);
    let e = compare(&base, &other, &Options::default()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, CompareError::DifferentScenarios { .. }));
    assert!(
        text.contains("`x`") && text.contains("`y`") && text.contains("name: x → y"),
        "{text}"
    );
    assert!(text.contains("--allow-different-scenarios"), "{text}");
    let mut longer = report("x", 1);
    longer.scenario["duration"] = json!("5s");
    let text = compare(&base, &longer, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(text.contains("duration: 2s → 5s"), "{text}");
    let allowed = Options {
        allow_different_scenarios: true,
        ..Options::default()
    };
    let c = compare(&base, &longer, &allowed).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("duration: 2s → 5s")));
    assert!(!c.regressed());
}

#[test]
fn another_seed_is_the_same_scenario_with_a_note() {
    let c = compare(&report("x", 1), &report("x", 2), &Options::default()).unwrap();
    assert!(!c.regressed());
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("seeds differ (base 1, new 2)")),
        "{:?}",
        c.notes
    );
}

#[test]
fn an_incomplete_candidate_fails_and_an_incomplete_baseline_warns() {
    let done = report("x", 1);
    let mut stopped = report("x", 1);
    stopped.run.status = "interrupted".to_string();
    stopped.run.interrupted = true;
    let c = compare(&done, &stopped, &Options::default()).unwrap();
    assert_eq!(regressed(&c), ["run.status"]);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("new run is interrupted"))
    );
    let c = compare(&stopped, &done, &Options::default()).unwrap();
    assert!(!c.regressed());
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("base run is interrupted"))
    );
}

#[test]
fn groups_both_reports_have_are_compared_too() {
    let group = |name: &str, reconnect_ms| GroupReport {
        name: name.to_string(),
        counters: counters(),
        histograms: histograms(reconnect_ms),
        connect_attempts_per_second: Vec::new(),
    };
    let mut base = report("x", 1);
    base.groups = vec![group("fast", 300), group("slow", 300), group("old", 300)];
    let mut new = report("x", 1);
    new.groups = vec![group("fast", 300), group("slow", 900), group("young", 300)];
    let c = compare(&base, &new, &Options::default()).unwrap();
    let slow = c
        .regressions
        .iter()
        .find(|r| r.metric == "reconnect_latency.p99")
        .unwrap();
    assert_eq!(slow.group.as_deref(), Some("slow"));
    assert!(slow.text().contains("(group slow)"), "{}", slow.text());
    assert_eq!(
        row(&c, Some("fast"), "reconnect_latency.p99").mark,
        Mark::Unchanged
    );
    // The whole-run peak is not measured per group.
    assert!(
        !c.rows
            .iter()
            .any(|r| r.group.is_some() && r.metric == "clients_connected_peak")
    );
    assert!(c.notes.iter().any(|n| n.contains("`old` is only in base")));
    assert!(c.notes.iter().any(|n| n.contains("`young` is only in new")));
    // A single group is the whole run again: no group rows.
    let mut one = report("x", 1);
    one.groups = vec![group("default", 300)];
    let c = compare(&one, &one, &Options::default()).unwrap();
    assert!(c.rows.iter().all(|r| r.group.is_none()));
}

#[test]
fn empty_missing_and_odd_histograms_are_no_data_not_a_panic() {
    let mut base = report("x", 1);
    let mut new = report("x", 1);
    base.histograms
        .insert("downtime".into(), summary(&[], MAX_MICROS));
    new.histograms.insert("downtime".into(), latencies(900));
    new.histograms.insert(
        "future_latency".into(),
        Summary {
            hdr: "not base64 !!".into(),
            ..latencies(1)
        },
    );
    base.histograms.get_mut("message_rtt").unwrap().mean = f64::MAX;
    let c = compare(&base, &new, &Options::default()).unwrap();
    assert_eq!(row(&c, None, "downtime.p99").mark, Mark::NoData);
    assert_eq!(row(&c, None, "downtime.count").mark, Mark::Informational);
    assert_eq!(row(&c, None, "future_latency.p99").mark, Mark::NoData);
    assert_eq!(row(&c, None, "future_latency.p99").unit, Unit::Micros);
    assert_eq!(row(&c, None, "message_rtt.mean").mark, Mark::Improved);
    let text = render::text(&c);
    assert!(text.contains("future_latency.p99"), "{text}");
    let _ = render::markdown(&c);
    assert!(serde_json::to_string(&c).is_ok());
}

#[test]
fn close_codes_of_either_report_are_shown_and_informational() {
    let base = report("x", 1);
    let mut new = report("x", 1);
    new.counters.errors.close_codes.insert("1011".into(), 40);
    let c = compare(&base, &new, &Options::default()).unwrap();
    let r = row(&c, None, "errors.close_codes.1011");
    assert_eq!((r.base, r.new), (Some(0.0), Some(40.0)));
    assert_eq!(r.mark, Mark::Informational);
}

#[test]
fn the_text_table_leads_with_the_verdict_and_lines_up() {
    let base = report("x", 1);
    let mut new = report("x", 1);
    new.counters.messages_lost = 3;
    let c = compare(&base, &new, &Options::default()).unwrap();
    let text = render::text(&c);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "compare: FAIL — 1 metric regressed: messages_lost 0 → 3"
    );
    let lost = text
        .lines()
        .find(|l| l.starts_with("messages_lost "))
        .unwrap();
    assert!(lost.ends_with("REGRESSED"), "{lost}");
    let p99 = text
        .lines()
        .find(|l| l.starts_with("reconnect_latency.p99 "))
        .unwrap();
    assert!(
        p99.contains("310.0 ms") && p99.ends_with("unchanged"),
        "{p99}"
    );
    let md = render::markdown(&c);
    assert!(
        md.contains("| `messages_lost` | 0 | 3 | +3 | – | **REGRESSED** |"),
        "{md}"
    );
}
