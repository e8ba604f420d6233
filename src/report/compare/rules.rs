//! The rules of `squall compare`, in one place: which way each metric is worse (the
//! direction table), how much worse it may get (`--max-regression`, with per-metric
//! overrides) and the noise floors below which a change is not judged. `docs/compare.md`
//! explains them to users; keep the two in step.

use serde::Serialize;

use super::CompareError;

/// A metric may get this much worse, in percent of the base, before it regresses.
pub const DEFAULT_MAX_REGRESSION: f64 = 10.0;
/// Latency changes smaller than this (µs) are noise: 50 µs → 120 µs is not a regression.
pub const DEFAULT_LATENCY_FLOOR_US: u64 = 1_000;
/// Counter changes smaller than this are noise: 2 disconnects → 3 is not a regression.
pub const DEFAULT_COUNT_FLOOR: u64 = 5;
/// `*_per_*` histograms count whole retransmits or attempts: less than one is noise.
pub const PER_UNIT_FLOOR: f64 = 1.0;
/// A histogram statistic is judged only when at least this many samples lie at or beyond
/// it in both reports ([`Stat::support`]): the p99 of fifty reconnects is just the
/// slowest one, and moves by more than 10 % from one seed to the next.
pub const DEFAULT_MIN_SAMPLES: u64 = 10;

/// Which way a metric gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse.
    HigherIsWorse,
    /// Higher is worse and the engine promises zero: any rise from a base of zero
    /// regresses, whatever the tolerance and floors say.
    MustBeZero,
    /// Lower is worse.
    LowerIsWorse,
    /// Reflects the scenario's volume or mirrors another metric: shown, never judged.
    Informational,
}

/// What one figure counts, which decides its noise floor and how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A latency in microseconds.
    Micros,
    /// Events: a counter, or a histogram's sample count.
    Count,
    /// A statistic of a `*_per_*` histogram: retransmits per message, attempts per
    /// reconnect.
    PerUnit,
}

/// The direction of every counter, by report name. Counters not listed (`sessions`,
/// `messages_sent`, `reconnects`, `duplicates_suppressed`, `server_*`,
/// `errors.close_codes.*`) follow the scenario's volume or break down another counter
/// that is judged, so they are informational.
pub fn counter_direction(name: &str) -> Direction {
    match name {
        "messages_lost" | "messages_duplicated" | "gave_up" | "unrecovered" => {
            Direction::MustBeZero
        }
        "retransmits"
        | "corruption_detected"
        | "disconnects"
        | "reconnect_failures"
        | "errors.connection"
        | "errors.data"
        | "errors.application"
        | "messages_unverified"
        | "connect_attempts"
        // A busier second is a harder stampede on the server: lower is better.
        | "connect_attempts_peak"
        | "server_handshakes_peak" => Direction::HigherIsWorse,
        "messages_delivered" | "messages_received" | "clients_connected_peak" => {
            Direction::LowerIsWorse
        }
        _ => Direction::Informational,
    }
}

/// The direction of a histogram statistic: every squall histogram measures a cost
/// (latencies, retransmits per message, attempts per reconnect), so higher is worse; how
/// many samples there were follows the faults and is informational.
pub fn histogram_direction(stat: Stat) -> Direction {
    match stat {
        Stat::Count => Direction::Informational,
        _ => Direction::HigherIsWorse,
    }
}

/// The statistics of a histogram that are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Count,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Stat {
    pub const ALL: [Stat; 7] = [
        Stat::Count,
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];

    /// How many of `count` samples decide this statistic: all of them for the mean, the
    /// half at or above it for the median, one in a thousand for p999, one for the max.
    pub fn support(self, count: u64) -> f64 {
        let n = count as f64;
        match self {
            Stat::Count | Stat::Mean => n,
            Stat::P50 => n * 0.5,
            Stat::P90 => n * 0.1,
            Stat::P99 => n * 0.01,
            Stat::P999 => n * 0.001,
            Stat::Max => n.min(1.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
        }
    }
}

/// Changes smaller than these are noise, not judged (a must-be-zero counter excepted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Floors {
    /// Latency changes smaller than this, in µs.
    pub latency_us: u64,
    /// Counter changes smaller than this many events.
    pub count: u64,
    /// Histogram statistics decided by fewer samples than this ([`Stat::support`]), in
    /// either report.
    pub samples: u64,
}

impl Default for Floors {
    fn default() -> Self {
        Floors {
            latency_us: DEFAULT_LATENCY_FLOOR_US,
            count: DEFAULT_COUNT_FLOOR,
            samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Floors {
    fn of(&self, unit: Unit, direction: Direction) -> f64 {
        match (unit, direction) {
            (_, Direction::MustBeZero) => 0.0,
            (Unit::Micros, _) => self.latency_us as f64,
            (Unit::Count, _) => self.count as f64,
            (Unit::PerUnit, _) => PER_UNIT_FLOOR,
        }
    }
}

/// How much worse each metric may get: `--max-regression`, parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// Percent of the base, for every metric without an override.
    pub default: f64,
    /// `METRIC=PCT` in the order given; `None` is `off` (shown, never judged).
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Override {
    /// A metric (`messages_lost`), a histogram (`reconnect_latency`, every statistic of
    /// it), one statistic (`reconnect_latency.p99`) or a family (`errors`).
    pub metric: String,
    pub max_regression: Option<f64>,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            default: DEFAULT_MAX_REGRESSION,
            overrides: Vec::new(),
        }
    }
}

impl Tolerances {
    /// Parses every `--max-regression` value: `PCT` (at most once) or `METRIC=PCT`, where
    /// `PCT` is a number ≥ 0 with an optional `%`, or `off` for an override.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, CompareError> {
        let mut t = Tolerances::default();
        let mut global_seen = false;
        for value in values {
            let value = value.as_ref().trim();
            let bad = |reason: &str| CompareError::BadTolerance {
                given: value.to_string(),
                reason: reason.to_string(),
            };
            match value.split_once('=') {
                None => {
                    if global_seen {
                        return Err(bad("a global percentage is given twice"));
                    }
                    global_seen = true;
                    t.default = percent(value).map_err(|r| bad(&r))?.ok_or_else(|| {
                        bad("`off` applies to one metric (METRIC=off), not to all")
                    })?;
                }
                Some((metric, pct)) => {
                    let metric = metric.trim();
                    if metric.is_empty() {
                        return Err(bad("expected METRIC=PCT, e.g. reconnect_latency.p99=25"));
                    }
                    if t.overrides.iter().any(|o| o.metric == metric) {
                        return Err(bad(&format!("`{metric}` is given twice")));
                    }
                    t.overrides.push(Override {
                        metric: metric.to_string(),
                        max_regression: percent(pct).map_err(|r| bad(&r))?,
                    });
                }
            }
        }
        Ok(t)
    }

    /// The tolerance for the metric `id` (`reconnect_latency.p99`): the most specific
    /// override naming it or a prefix of it, else the default. `None`: not judged.
    pub fn for_metric(&self, id: &str) -> Option<f64> {
        self.overrides
            .iter()
            .filter(|o| covers(&o.metric, id))
            .max_by_key(|o| o.metric.len())
            .map_or(Some(self.default), |o| o.max_regression)
    }
}

/// Does the override key `key` apply to the metric `id`? `errors` covers
/// `errors.data`; `reconnect_latency` covers `reconnect_latency.p99`; `message_rtt`
/// does not cover `message_rtt_uncorrected`.
pub fn covers(key: &str, id: &str) -> bool {
    id == key
        || id
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// `10`, `12.5%`, `0` → `Some(pct)`; `off` → `None`.
fn percent(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(Some(p)),
        Ok(_) => Err(format!(
            "the percentage must be a number ≥ 0 (got {number})"
        )),
        Err(_) => Err(format!(
            "`{number}` is not a percentage (examples: 10, 12.5%, reconnect_latency.p99=25, retransmits=off)"
        )),
    }
}

/// The verdict on one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Worse by more than its tolerance and its noise floor.
    Regressed,
    /// Better by more than its tolerance and its noise floor.
    Improved,
    /// Equal, or changed within the tolerance or below the noise floor.
    Unchanged,
    /// A histogram statistic decided by too few samples to judge (`Floors::samples`).
    FewSamples,
    /// Shown, never judged: the direction table says so, or the override is `off`.
    Informational,
    /// One side has no value (an empty histogram, or one the report does not have).
    NoData,
}

impl Mark {
    pub fn label(self) -> &'static str {
        match self {
            Mark::Regressed => "REGRESSED",
            Mark::Improved => "improved",
            Mark::Unchanged => "unchanged",
            Mark::FewSamples => "few samples",
            Mark::Informational => "info",
            Mark::NoData => "n/a",
        }
    }
}

/// Judges one figure: `tolerance` in percent of the base (`None`: not judged);
/// `samples`, for a histogram statistic, how many samples decide it in the report with
/// fewer ([`Stat::support`]).
pub fn judge(
    direction: Direction,
    unit: Unit,
    (base, new): (Option<f64>, Option<f64>),
    samples: Option<f64>,
    tolerance: Option<f64>,
    floors: &Floors,
) -> Mark {
    let (Some(b), Some(n)) = (base, new) else {
        return Mark::NoData;
    };
    let Some(tolerance) = tolerance else {
        return Mark::Informational;
    };
    if direction == Direction::Informational {
        return Mark::Informational;
    }
    if b == n {
        return Mark::Unchanged;
    }
    if samples.is_some_and(|s| s < floors.samples as f64) {
        return Mark::FewSamples;
    }
    let worse = match direction {
        Direction::HigherIsWorse | Direction::MustBeZero => n > b,
        Direction::LowerIsWorse => n < b,
        Direction::Informational => false,
    };
    let mark = if worse {
        Mark::Regressed
    } else {
        Mark::Improved
    };
    if direction == Direction::MustBeZero && (b == 0.0 || n == 0.0) {
        return mark;
    }
    if (n - b).abs() < floors.of(unit, direction) {
        return Mark::Unchanged;
    }
    match change_pct(b, n) {
        Some(pct) if pct.abs() <= tolerance => Mark::Unchanged,
        _ => mark,
    }
}

/// `new` relative to `base`, in percent; `None` when the base is zero.
pub fn change_pct(base: f64, new: f64) -> Option<f64> {
    let pct = (new - base) / base.abs() * 100.0;
    (base != 0.0 && pct.is_finite()).then_some(pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(direction: Direction, unit: Unit, b: f64, n: f64) -> Mark {
        judge(
            direction,
            unit,
            (Some(b), Some(n)),
            None,
            Some(DEFAULT_MAX_REGRESSION),
            &Floors::default(),
        )
    }

    #[test]
    fn the_direction_table_knows_which_way_is_worse() {
        for name in [
            "messages_lost",
            "messages_duplicated",
            "gave_up",
            "unrecovered",
        ] {
            assert_eq!(counter_direction(name), Direction::MustBeZero, "{name}");
        }
        for name in [
            "retransmits",
            "disconnects",
            "reconnect_failures",
            "errors.data",
            "connect_attempts",
            "connect_attempts_peak",
            "server_handshakes_peak",
        ] {
            assert_eq!(counter_direction(name), Direction::HigherIsWorse, "{name}");
        }
        for name in ["messages_delivered", "clients_connected_peak"] {
            assert_eq!(counter_direction(name), Direction::LowerIsWorse, "{name}");
        }
        for name in [
            "messages_sent",
            "sessions",
            "server_sent",
            "server_handshakes",
            "errors.close_codes.1006",
        ] {
            assert_eq!(counter_direction(name), Direction::Informational, "{name}");
        }
        assert_eq!(histogram_direction(Stat::P99), Direction::HigherIsWorse);
        assert_eq!(histogram_direction(Stat::Count), Direction::Informational);
    }

    #[test]
    fn worse_beyond_the_tolerance_regresses_and_better_improves() {
        let hi = Direction::HigherIsWorse;
        assert_eq!(j(hi, Unit::Micros, 300_000.0, 331_000.0), Mark::Regressed);
        assert_eq!(j(hi, Unit::Micros, 300_000.0, 329_000.0), Mark::Unchanged);
        assert_eq!(j(hi, Unit::Micros, 300_000.0, 100_000.0), Mark::Improved);
        assert_eq!(j(hi, Unit::Micros, 300_000.0, 300_000.0), Mark::Unchanged);
        let lo = Direction::LowerIsWorse;
        assert_eq!(j(lo, Unit::Count, 1000.0, 800.0), Mark::Regressed);
        assert_eq!(j(lo, Unit::Count, 1000.0, 1200.0), Mark::Improved);
        // Exactly at the tolerance holds.
        assert_eq!(j(hi, Unit::Count, 100.0, 110.0), Mark::Unchanged);
    }

    #[test]
    fn a_must_be_zero_counter_regresses_from_zero_whatever_the_floor() {
        let z = Direction::MustBeZero;
        assert_eq!(j(z, Unit::Count, 0.0, 1.0), Mark::Regressed);
        assert_eq!(j(z, Unit::Count, 0.0, 0.0), Mark::Unchanged);
        assert_eq!(j(z, Unit::Count, 3.0, 0.0), Mark::Improved);
        // From a non-zero base the percentage decides, without the count floor.
        assert_eq!(j(z, Unit::Count, 10.0, 12.0), Mark::Regressed);
        assert_eq!(j(z, Unit::Count, 10.0, 11.0), Mark::Unchanged);
        // However generous the tolerance.
        let strict = judge(
            z,
            Unit::Count,
            (Some(0.0), Some(1.0)),
            None,
            Some(1000.0),
            &Floors::default(),
        );
        assert_eq!(strict, Mark::Regressed);
    }

    #[test]
    fn changes_under_the_noise_floors_are_not_judged() {
        let hi = Direction::HigherIsWorse;
        // 50 µs → 120 µs is +140 % but under 1 ms.
        assert_eq!(j(hi, Unit::Micros, 50.0, 120.0), Mark::Unchanged);
        assert_eq!(j(hi, Unit::Micros, 50.0, 1_050.0), Mark::Regressed);
        // 2 → 3 disconnects is +50 % but one event; a rise from zero is judged by size.
        assert_eq!(j(hi, Unit::Count, 2.0, 3.0), Mark::Unchanged);
        assert_eq!(j(hi, Unit::Count, 0.0, 4.0), Mark::Unchanged);
        assert_eq!(j(hi, Unit::Count, 0.0, 5.0), Mark::Regressed);
        // Retransmits per message: less than one whole retransmit is noise.
        assert_eq!(j(hi, Unit::PerUnit, 0.1, 0.9), Mark::Unchanged);
        assert_eq!(j(hi, Unit::PerUnit, 0.0, 1.0), Mark::Regressed);
        let floors = Floors {
            latency_us: 0,
            count: 0,
            samples: 0,
        };
        let m = judge(
            hi,
            Unit::Micros,
            (Some(50.0), Some(120.0)),
            None,
            Some(10.0),
            &floors,
        );
        assert_eq!(m, Mark::Regressed);
    }

    #[test]
    fn statistics_of_too_few_samples_are_not_judged() {
        let f = Floors::default();
        let hi = Direction::HigherIsWorse;
        let ms = (Some(50_000.0), Some(500_000.0));
        assert_eq!(
            judge(hi, Unit::Micros, ms, Some(9.5), Some(10.0), &f),
            Mark::FewSamples
        );
        assert_eq!(
            judge(hi, Unit::Micros, ms, Some(10.0), Some(10.0), &f),
            Mark::Regressed
        );
        // Equal is equal, however few the samples.
        let same = (Some(5.0), Some(5.0));
        assert_eq!(
            judge(hi, Unit::Micros, same, Some(1.0), Some(10.0), &f),
            Mark::Unchanged
        );
    }

    #[test]
    fn a_statistic_is_decided_by_the_samples_at_or_beyond_it() {
        // 50 reconnects: the mean and median are judged, p90 and beyond are not.
        let judged: Vec<&str> = Stat::ALL
            .iter()
            .filter(|s| s.support(50) >= DEFAULT_MIN_SAMPLES as f64)
            .map(|s| s.name())
            .collect();
        assert_eq!(judged, ["count", "mean", "p50"]);
        assert_eq!(Stat::P99.support(1000), 10.0);
        assert_eq!(Stat::P999.support(10_000), 10.0);
        assert_eq!(Stat::Max.support(1_000_000), 1.0);
        assert_eq!(Stat::Max.support(0), 0.0);
    }

    #[test]
    fn missing_values_and_informational_metrics_are_never_judged() {
        let f = Floors::default();
        let hi = Direction::HigherIsWorse;
        assert_eq!(
            judge(hi, Unit::Micros, (None, Some(1e9)), None, Some(10.0), &f),
            Mark::NoData
        );
        assert_eq!(
            judge(hi, Unit::Micros, (Some(1.0), Some(1e9)), None, None, &f),
            Mark::Informational
        );
        let info = Direction::Informational;
        assert_eq!(
            judge(
                info,
                Unit::Count,
                (Some(1.0), Some(1e9)),
                None,
                Some(0.0),
                &f
            ),
            Mark::Informational
        );
        // Odd hand-edited values do not panic.
        let odd = judge(
            hi,
            Unit::Micros,
            (Some(-5.0), Some(f64::MAX)),
            None,
            Some(10.0),
            &f,
        );
        assert_eq!(odd, Mark::Regressed);
        assert_eq!(change_pct(0.0, 5.0), None);
        assert_eq!(change_pct(-4.0, -2.0), Some(50.0));
    }

    #[test]
    fn tolerances_parse_global_and_per_metric_and_the_most_specific_wins() {
        let t = Tolerances::parse(&[
            "5%",
            "reconnect_latency=25",
            "reconnect_latency.p99=50",
            "retransmits=off",
            "errors=0",
        ])
        .unwrap();
        assert_eq!(t.default, 5.0);
        assert_eq!(t.for_metric("reconnect_latency.p50"), Some(25.0));
        assert_eq!(t.for_metric("reconnect_latency.p99"), Some(50.0));
        assert_eq!(t.for_metric("retransmits"), None);
        assert_eq!(t.for_metric("retransmits_per_message.p99"), Some(5.0));
        assert_eq!(t.for_metric("errors.data"), Some(0.0));
        assert_eq!(t.for_metric("messages_lost"), Some(5.0));
        let empty: [&str; 0] = [];
        assert_eq!(
            Tolerances::parse(&empty).unwrap().default,
            DEFAULT_MAX_REGRESSION
        );
    }

    #[test]
    fn bad_percentages_are_refused_with_the_value() {
        for bad in [
            "ten", "-5", "x=-1", "x=abc", "=5", "off", "NaN", "inf", "5%%",
        ] {
            let e = Tolerances::parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let twice = Tolerances::parse(&["5", "10"]).unwrap_err().to_string();
        assert!(twice.contains("twice"), "{twice}");
        let twice = Tolerances::parse(&["a=5", "a=10"]).unwrap_err().to_string();
        assert!(twice.contains("twice"), "{twice}");
    }

    #[test]
    fn an_override_key_covers_whole_dotted_parts_only() {
        assert!(covers("errors", "errors.data"));
        assert!(covers("reconnect_latency", "reconnect_latency.p99"));
        assert!(covers("messages_lost", "messages_lost"));
        assert!(!covers("message_rtt", "message_rtt_uncorrected.p99"));
        assert!(!covers("reconnect_latency.p9", "reconnect_latency.p99"));
    }
}
