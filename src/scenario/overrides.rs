//! Command-line overrides of a checked scenario (`--seed`, `--duration`, `--clients`).
//!
//! They change the scenario after validation, so they keep its rules themselves; errors
//! name the flag, as the flag is what the user typed.

use std::time::Duration;

use super::defaults::limits;
use super::error::ScenarioError;
use super::model::{ClientGroup, Load, Scenario};
use super::units;

impl Scenario {
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A new run length. A long scenario can be cut short for a quick check: faults that
    /// would start after the new end are left out and stages are cut at it, so the
    /// scenario recorded in the report is the one that ran (and validates again).
    pub fn with_duration(mut self, duration: Duration) -> Result<Self, ScenarioError> {
        let got = units::format_duration(duration);
        if duration.is_zero() {
            return Err(flag("--duration", format!("must be > 0 (got {got})")));
        }
        if duration > limits::DURATION {
            return Err(flag(
                "--duration",
                format!("must be at most 30 days (got {got})"),
            ));
        }
        let left_out = self
            .faults
            .iter()
            .map(|f| (&f.name, f.window.at))
            .chain(self.server.iter().map(|f| (&f.name, f.window.at)))
            .filter(|(_, at)| *at >= duration);
        for (name, at) in left_out {
            if let Some(t) = self
                .thresholds
                .iter()
                .find(|t| t.scope.as_ref().is_some_and(|s| s.fault() == name))
            {
                return Err(flag(
                    "--duration",
                    format!(
                        "{got} leaves out fault `{name}` (at {}), which threshold `{}` is scoped to",
                        units::format_duration(at),
                        t.key()
                    ),
                ));
            }
        }
        self.duration = duration;
        self.faults.retain(|f| f.window.at < duration);
        self.server.retain(|f| f.window.at < duration);
        for group in &mut self.groups {
            if let Load::Stages(stages) = &mut group.load {
                cut_stages(stages, duration);
            }
        }
        Ok(self)
    }

    /// Sets the total of clients at peak. One group takes them all (its stages scaled to
    /// the new peak); several groups share them in proportion to their peaks, each keeping
    /// at least one when there are enough to go round.
    pub fn with_clients(mut self, clients: u32) -> Result<Self, ScenarioError> {
        if clients == 0 {
            return Err(flag("--clients", "must be at least 1 (got 0)"));
        }
        if u64::from(clients) > limits::CLIENTS {
            return Err(flag(
                "--clients",
                format!("must be at most {} (got {clients})", limits::CLIENTS),
            ));
        }
        let peaks: Vec<u32> = self.groups.iter().map(ClientGroup::peak_clients).collect();
        for (group, peak) in self.groups.iter_mut().zip(share_out(clients, &peaks)) {
            set_peak(group, peak);
        }
        Ok(self)
    }
}

/// Cuts linear stages at `end`, the stage running then ending at the count it reached.
fn cut_stages(stages: &mut Vec<super::model::Stage>, end: Duration) {
    let mut t = Duration::ZERO;
    let mut from = 0u32;
    for i in 0..stages.len() {
        let s = stages[i];
        if t + s.duration >= end {
            let done = (end - t).as_secs_f64() / s.duration.as_secs_f64().max(f64::MIN_POSITIVE);
            let reached = f64::from(from) + (f64::from(s.target) - f64::from(from)) * done.min(1.0);
            stages[i] = super::model::Stage {
                duration: end - t,
                target: reached.round() as u32,
            };
            stages.truncate(i + 1);
            stages.retain(|s| !s.duration.is_zero());
            return;
        }
        t += s.duration;
        from = s.target;
    }
}

fn flag(name: &str, message: impl Into<String>) -> ScenarioError {
    ScenarioError::invalid(name, None, "", message)
}

/// Splits `total` in proportion to `weights` (largest remainders first, ties to the
/// earlier group), then lifts any group at zero to one while `total` allows.
fn share_out(total: u32, weights: &[u32]) -> Vec<u32> {
    let total = u64::from(total);
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    // Equal weights when there is nothing to be proportional to.
    let weights: Vec<u64> = match sum {
        0 => vec![1; weights.len()],
        _ => weights.iter().map(|&w| u64::from(w)).collect(),
    };
    let sum = sum.max(1).max(weights.iter().sum());
    let mut shares: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(total * weights[i] % sum));
    let left = total - shares.iter().sum::<u64>();
    for &i in by_remainder.iter().cycle().take(left as usize) {
        shares[i] += 1;
    }
    if total >= shares.len() as u64 {
        while let Some(empty) = shares.iter().position(|&s| s == 0) {
            let Some(richest) =
                (0..shares.len()).max_by_key(|&i| (shares[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            shares[richest] -= 1;
            shares[empty] += 1;
        }
    }
    shares
        .into_iter()
        .map(|s| u32::try_from(s).unwrap_or(u32::MAX))
        .collect()
}

fn set_peak(group: &mut ClientGroup, peak: u32) {
    let old_peak = u64::from(group.peak_clients());
    match &mut group.load {
        Load::Count(n) => *n = peak,
        Load::Stages(stages) => {
            for stage in stages {
                stage.target = match old_peak {
                    0 => peak,
                    // Rounded to nearest; the stage at the old peak lands on `peak` exactly.
                    _ => {
                        let scaled = (2 * u64::from(stage.target) * u64::from(peak) + old_peak)
                            / (2 * old_peak);
                        u32::try_from(scaled).unwrap_or(u32::MAX)
                    }
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_in_proportion() {
        assert_eq!(share_out(100, &[50]), vec![100]);
        assert_eq!(share_out(100, &[300, 100]), vec![75, 25]);
        assert_eq!(share_out(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(share_out(3, &[1000, 1, 1]), vec![1, 1, 1]);
        assert_eq!(share_out(2, &[1000, 1, 1]), vec![2, 0, 0]);
        assert_eq!(share_out(7, &[0, 0]), vec![4, 3]);
        for total in 1..50 {
            let shares = share_out(total, &[5, 17, 0, 3]);
            assert_eq!(shares.iter().sum::<u32>(), total);
        }
    }
}
