//! The points `report.html` plots from a report's HdrHistograms: percentile curves on the
//! "nines" scale of HdrHistogram's plotter, and counts by value for the small-integer
//! histograms (retransmits per message, attempts per reconnect).
//!
//! Everything is computed here, in Rust, from the serialized histogram, so the page only
//! draws; a blob that does not decode becomes a note on the page, never a panic.

use hdrhistogram::Histogram;

use crate::metrics::{Summary, decode};

/// Curve points per nine (90 % → 99 % → 99.9 % …): evenly spaced on the nines axis, so
/// ever denser in quantile toward the tail, where recovery costs hide.
const POINTS_PER_NINE: u32 = 20;

/// Value bars drawn one by one at most; rarer, larger values share the last bar.
pub const MAX_BARS: usize = 40;

/// Reads a report histogram back: `Ok(None)` when it holds no samples, `Err` (the reason,
/// for the page) when its `hdr` blob is not a histogram.
pub fn read(s: &Summary) -> Result<Option<Histogram<u64>>, String> {
    if s.count == 0 {
        return Ok(None);
    }
    let h = decode(&s.hdr).map_err(|e| e.to_string())?;
    Ok((!h.is_empty()).then_some(h))
}

/// `(nines, value)` pairs, nines = −log10(1 − quantile): 0 is the minimum, 1 is p90, 2 is
/// p99. The maximum sits at log10(count), the quantile of the single largest sample, so
/// the curve ends where the data does. Nines strictly increase and values never fall.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let top = (h.len() as f64).log10();
    let steps = (top * f64::from(POINTS_PER_NINE)).ceil() as u32;
    let mut points: Vec<(f64, u64)> = (0..steps)
        .map(|i| {
            let nines = f64::from(i) / f64::from(POINTS_PER_NINE);
            (nines, h.value_at_quantile(1.0 - 10f64.powf(-nines)))
        })
        .filter(|(nines, _)| *nines < top)
        .collect();
    points.push((top, h.max()));
    flatten(points)
}

/// Drops points in the middle of a flat run: the same line with fewer points.
fn flatten(points: Vec<(f64, u64)>) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let same_before = i > 0 && points[i - 1].1 == p.1;
        let same_after = points.get(i + 1).is_some_and(|n| n.1 == p.1);
        if !(same_before && same_after) {
            out.push(*p);
        }
    }
    out
}

/// One bar of a counts-by-value chart: how many samples of each histogram had `value`
/// (or, when `or_more`, that value or more).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueBar {
    pub value: u64,
    pub or_more: bool,
    /// One count per histogram, in the order they were given.
    pub counts: Vec<u64>,
}

/// Counts by value of each histogram, on bars they share: smallest value first, every
/// value from `from` (or the smallest seen, if smaller) to the largest listed, zeros
/// included, so the bars read as a distribution. Past [`MAX_BARS`] values, the rest are
/// summed into a last "or more" bar.
pub fn value_counts(hs: &[&Histogram<u64>], from: u64) -> Vec<ValueBar> {
    let mut seen: Vec<u64> = hs
        .iter()
        .flat_map(|h| {
            h.iter_recorded()
                .map(|v| h.lowest_equivalent(v.value_iterated_to()))
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let (Some(&smallest), Some(&largest)) = (seen.first(), seen.last()) else {
        return Vec::new();
    };
    let from = from.min(smallest);
    let mut values: Vec<u64> = if largest - from < MAX_BARS as u64 {
        (from..=largest).collect()
    } else {
        seen
    };
    let tail = values.len() > MAX_BARS;
    values.truncate(MAX_BARS);
    let last = values.len() - 1;
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let or_more = tail && i == last;
            let counts = hs
                .iter()
                .map(|h| {
                    let high = if or_more {
                        u64::MAX
                    } else {
                        h.highest_equivalent(value)
                    };
                    h.count_between(value, high)
                })
                .collect();
            ValueBar {
                value,
                or_more,
                counts,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MAX_COUNT, MAX_MICROS, encode};

    fn hist(max: u64, values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, max, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn curve_is_monotone_and_ends_at_the_maximum() {
        // A long tail: most samples fast, a few very slow.
        let h = hist(
            MAX_MICROS,
            (1..=10_000u64).map(|i| {
                if i % 1000 == 0 {
                    2_000_000 + i
                } else {
                    500 + i % 300
                }
            }),
        );
        let c = percentile_curve(&h);
        assert!(c.len() > 20, "{c:?}");
        assert_eq!(c[0].0, 0.0);
        assert!(
            c.windows(2).all(|w| w[0].0 < w[1].0),
            "nines increase: {c:?}"
        );
        assert!(
            c.windows(2).all(|w| w[0].1 <= w[1].1),
            "values never fall: {c:?}"
        );
        let last = c.last().unwrap();
        assert!((last.0 - 4.0).abs() < 1e-9, "10 000 samples end at 4 nines");
        assert_eq!(last.1, h.max());
        // p50 and p99.9 read off the curve as the histogram has them.
        let at = |nines: f64| c.iter().rev().find(|p| p.0 <= nines + 1e-9).unwrap().1;
        assert_eq!(at(2.0), h.value_at_quantile(0.99));
        // One sample in a thousand is slow: p99.9 is still fast, just past it is not.
        assert!(at(3.0) < 2_000_000);
        assert!(at(3.05) >= 2_000_000);
    }

    #[test]
    fn one_sample_is_one_point_and_empty_is_none() {
        assert_eq!(percentile_curve(&hist(MAX_MICROS, [42])), vec![(0.0, 42)]);
        assert!(percentile_curve(&hist(MAX_MICROS, [])).is_empty());
        let empty = Summary::of(&hist(MAX_MICROS, []));
        assert_eq!(read(&empty), Ok(None));
    }

    #[test]
    fn a_bad_blob_is_a_reason_not_a_panic() {
        let mut s = Summary::of(&hist(MAX_MICROS, [1, 2, 3]));
        s.hdr = "not base64 !!".into();
        assert!(read(&s).unwrap_err().contains("base64"));
        s.hdr = String::new();
        assert!(read(&s).is_err());
        s.hdr = encode(&hist(MAX_MICROS, [7]));
        assert_eq!(read(&s).unwrap().unwrap().max(), 7);
    }

    #[test]
    fn value_counts_fill_the_gaps_from_zero() {
        let h = hist(MAX_COUNT, [0, 0, 0, 0, 1, 3]);
        let bar = |value, counts: &[u64]| ValueBar {
            value,
            or_more: false,
            counts: counts.to_vec(),
        };
        assert_eq!(
            value_counts(&[&h], 0),
            vec![bar(0, &[4]), bar(1, &[1]), bar(2, &[0]), bar(3, &[1])]
        );
        assert!(value_counts(&[&hist(MAX_COUNT, [])], 0).is_empty());
        assert!(value_counts(&[], 0).is_empty());
        // Two groups share the bars, each with its own counts.
        let g = hist(MAX_COUNT, [0, 5]);
        let bars = value_counts(&[&h, &g], 0);
        assert_eq!(bars.len(), 6);
        assert_eq!(bars[0], bar(0, &[4, 1]));
        assert_eq!(bars[5], bar(5, &[0, 1]));
        // Attempts start at 1: no empty bar for 0, unless something was 0.
        let attempts = hist(MAX_COUNT, [1, 1, 3]);
        assert_eq!(value_counts(&[&attempts], 1)[0], bar(1, &[2]));
        assert_eq!(value_counts(&[&h], 1)[0], bar(0, &[4]));
    }

    #[test]
    fn value_counts_cap_the_number_of_bars() {
        let h = hist(MAX_COUNT, (0..500).chain([100_000, 100_000]));
        let bars = value_counts(&[&h], 0);
        assert_eq!(bars.len(), MAX_BARS);
        assert_eq!(bars.iter().map(|b| b.counts[0]).sum::<u64>(), h.len());
        let last = bars.last().unwrap();
        assert!(last.or_more, "the last bar sums the rest");
        assert_eq!(last.value, (MAX_BARS - 1) as u64);
        assert_eq!(last.counts[0], 500 - (MAX_BARS as u64 - 1) + 2);
    }
}
