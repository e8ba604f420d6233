//! Per-second peaks (`connect_attempts_peak`, `server_handshakes_peak`), derived from the
//! report's own per-second series: the timeline for the run, each group's
//! `connect_attempts_per_second` for the group. A peak of a sum is not the sum of peaks,
//! so a merge adds the series second by second and calls [`fill`] again; a scope's peak
//! is the busiest of the seconds that overlap its stretches.

use super::{Counters, Report};
use crate::metrics::TimelineRow;

/// Sets every peak of `report` (run, groups, scopes and their groups) from its series.
pub fn fill(report: &mut Report) {
    let attempts: Vec<u64> = report.timeline_series(|row| row.connect_attempts);
    let handshakes: Vec<u64> = report.timeline_series(|row| row.server_handshakes);
    let everywhere = |_: usize| true;
    set(&mut report.counters, &attempts, &handshakes, everywhere);
    for g in &mut report.groups {
        set(
            &mut g.counters,
            &g.connect_attempts_per_second,
            &[],
            everywhere,
        );
    }
    for scope in &mut report.scopes {
        let windows = scope.windows.clone();
        let inside = |second: usize| overlaps(&windows, second);
        set(&mut scope.counters, &attempts, &handshakes, inside);
        for g in &mut scope.groups {
            let series = report
                .groups
                .iter()
                .find(|mine| mine.name == g.name)
                .map(|mine| mine.connect_attempts_per_second.as_slice())
                .unwrap_or_default();
            set(&mut g.counters, series, &[], inside);
        }
    }
}

fn set(c: &mut Counters, attempts: &[u64], handshakes: &[u64], inside: impl Fn(usize) -> bool) {
    c.connect_attempts_peak = peak(attempts, &inside);
    c.server_handshakes_peak = peak(handshakes, &inside);
}

/// The largest value of `series` among the seconds `inside` admits (0 when none).
fn peak(series: &[u64], inside: impl Fn(usize) -> bool) -> u64 {
    series
        .iter()
        .enumerate()
        .filter(|(second, _)| inside(*second))
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
}

/// Whether second `second` (`[second, second + 1)` s of run time) overlaps one of the
/// stretches, in µs (`None`: to the end of the run).
fn overlaps(windows: &[(u64, Option<u64>)], second: usize) -> bool {
    let from = (second as u64).saturating_mul(1_000_000);
    let to = from.saturating_add(1_000_000);
    windows
        .iter()
        .any(|(start, end)| *start < to && end.is_none_or(|end| end > from))
}

impl Report {
    /// One column of the timeline as a series indexed by second (`t`); seconds missing
    /// from the timeline count as 0.
    fn timeline_series(&self, column: impl Fn(&TimelineRow) -> u64) -> Vec<u64> {
        let len = self
            .timeline
            .iter()
            .map(|row| row.t.saturating_add(1))
            .max()
            .unwrap_or(0);
        // A timeline row per second of a run of at most 30 days: bounded, and a report
        // whose `t` claims more is not given the memory.
        let mut series: Vec<u64> = vec![0; usize::try_from(len.min(MAX_SECONDS)).unwrap_or(0)];
        for row in &self.timeline {
            if let Some(slot) = usize::try_from(row.t).ok().and_then(|t| series.get_mut(t)) {
                *slot = slot.saturating_add(column(row));
            }
        }
        series
    }
}

/// 30 days of seconds: the longest run a scenario may ask for.
const MAX_SECONDS: u64 = 30 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_sees_the_seconds_that_overlap_it() {
        let windows = [(2_500_000, Some(4_000_000)), (9_000_000, None)];
        let inside: Vec<usize> = (0..12).filter(|s| overlaps(&windows, *s)).collect();
        assert_eq!(inside, [2, 3, 9, 10, 11]);
        assert_eq!(peak(&[5, 1, 2, 7, 3], |s| s != 3), 5);
        assert_eq!(peak(&[5, 1], |_| false), 0);
    }
}
