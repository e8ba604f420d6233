//! `squall merge`: joins shard reports into one, exactly. Counters are summed, histograms
//! added (their serialized HdrHistograms, not their percentiles), timelines and each
//! group's per-second connect attempts aligned by second, and the per-second peaks
//! computed again from those sums (`peaks`); fault ledgers are combined. The thresholds
//! are then judged again on the merged result by the caller.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Counters, Delivery, GroupReport, Report, ReportError};
use crate::events::FaultSummary;
use crate::metrics::{self, Summary};

/// Merges `reports` (at least one) of the same scenario.
pub fn merge(reports: &[Report]) -> Result<Report, ReportError> {
    let invalid = |reason: String| ReportError::Invalid {
        path: "(merge)".into(),
        reason,
    };
    let first = reports
        .first()
        .ok_or_else(|| invalid("nothing to merge".into()))?;
    if let Some(other) = reports.iter().find(|r| r.name() != first.name()) {
        return Err(invalid(format!(
            "reports of different scenarios (`{}` and `{}`) do not merge",
            first.name(),
            other.name()
        )));
    }
    let mut out = first.clone();
    for r in &reports[1..] {
        out.counters = add_counters(&out.counters, &r.counters)?;
        out.histograms = add_histograms(&out.histograms, &r.histograms)?;
        add_groups(&mut out.groups, &r.groups)?;
        for s in &r.scopes {
            match out.scopes.iter_mut().find(|mine| mine.scope == s.scope) {
                Some(mine) => {
                    mine.counters = add_counters(&mine.counters, &s.counters)?;
                    mine.histograms = add_histograms(&mine.histograms, &s.histograms)?;
                    add_groups(&mut mine.groups, &s.groups)?;
                }
                None => out.scopes.push(s.clone()),
            }
        }
        add_timeline(&mut out, r);
        add_faults(&mut out.faults, &r.faults);
        out.run.started_at = out.run.started_at.clone().min(r.run.started_at.clone());
        out.run.duration_s = out.run.duration_s.max(r.run.duration_s);
        out.run.interrupted |= r.run.interrupted;
        if r.run.status != "completed" && out.run.status == "completed" {
            out.run.status = r.run.status.clone();
            out.run.error = r.run.error.clone();
        }
    }
    out.run.shard = None;
    super::peaks::fill(&mut out);
    let c = &out.counters;
    out.delivery = Delivery {
        sent: c.messages_sent,
        delivered: c.messages_delivered,
        lost: c.messages_lost,
        closes: c.messages_sent == c.messages_delivered + c.messages_lost,
    };
    Ok(out)
}

fn add_groups(out: &mut Vec<GroupReport>, theirs: &[GroupReport]) -> Result<(), ReportError> {
    for g in theirs {
        match out.iter_mut().find(|mine| mine.name == g.name) {
            Some(mine) => {
                mine.counters = add_counters(&mine.counters, &g.counters)?;
                mine.histograms = add_histograms(&mine.histograms, &g.histograms)?;
                let attempts = g.connect_attempts_per_second.iter().copied();
                metrics::add_series(&mut mine.connect_attempts_per_second, attempts);
            }
            None => out.push(g.clone()),
        }
    }
    Ok(())
}

/// Sums every number of two counter sets. `clients_connected_peak` too: shards run side
/// by side, so the sum of their peaks bounds the merged run's peak from above. The
/// per-second peaks summed here are replaced by exact ones once everything is added.
fn add_counters(a: &Counters, b: &Counters) -> Result<Counters, ReportError> {
    let (mut x, y) = (to_value(a)?, to_value(b)?);
    sum_into(&mut x, &y);
    serde_json::from_value(x).map_err(|e| ReportError::Invalid {
        path: "(merge)".into(),
        reason: e.to_string(),
    })
}

fn to_value<T: serde::Serialize>(t: &T) -> Result<Value, ReportError> {
    serde_json::to_value(t).map_err(|e| ReportError::Invalid {
        path: "(merge)".into(),
        reason: e.to_string(),
    })
}

fn sum_into(x: &mut Value, y: &Value) {
    match (x, y) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(mine) => sum_into(mine, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (x @ Value::Number(_), Value::Number(n)) => {
            let total = x
                .as_u64()
                .unwrap_or(0)
                .saturating_add(n.as_u64().unwrap_or(0));
            *x = Value::from(total);
        }
        _ => {}
    }
}

fn add_histograms(
    a: &BTreeMap<String, Summary>,
    b: &BTreeMap<String, Summary>,
) -> Result<BTreeMap<String, Summary>, ReportError> {
    let mut out = a.clone();
    for (name, theirs) in b {
        let merged = match a.get(name) {
            None => theirs.clone(),
            Some(mine) => {
                let decode = |s: &Summary| {
                    metrics::decode(&s.hdr).map_err(|e| ReportError::Invalid {
                        path: "(merge)".into(),
                        reason: format!("histogram {name}: {e}"),
                    })
                };
                let mut h = decode(mine)?;
                h.add(decode(theirs)?).map_err(|e| ReportError::Invalid {
                    path: "(merge)".into(),
                    reason: format!("histogram {name}: {e:?}"),
                })?;
                Summary::of(&h)
            }
        };
        out.insert(name.clone(), merged);
    }
    Ok(out)
}

fn add_timeline(out: &mut Report, r: &Report) {
    for row in &r.timeline {
        match out.timeline.iter_mut().find(|mine| mine.t == row.t) {
            Some(mine) => {
                mine.connected += row.connected;
                mine.connects += row.connects;
                mine.disconnects += row.disconnects;
                mine.connect_attempts += row.connect_attempts;
                mine.server_handshakes += row.server_handshakes;
                mine.messages_sent += row.messages_sent;
                mine.messages_delivered += row.messages_delivered;
                mine.retransmits += row.retransmits;
                for f in &row.active_faults {
                    if !mine.active_faults.contains(f) {
                        mine.active_faults.push(f.clone());
                    }
                }
            }
            None => out.timeline.push(row.clone()),
        }
    }
    out.timeline.sort_by_key(|row| row.t);
}

fn add_faults(out: &mut Vec<FaultSummary>, theirs: &[FaultSummary]) {
    for f in theirs {
        match out
            .iter_mut()
            .find(|mine| mine.kind == f.kind && mine.name == f.name)
        {
            Some(mine) => {
                mine.connections_touched += f.connections_touched;
                mine.bytes_affected += f.bytes_affected;
                for (action, n) in &f.actions {
                    *mine.actions.entry(action.clone()).or_default() += n;
                }
            }
            None => out.push(f.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::Clock;
    use crate::metrics::{Counter, Metrics, Tick};
    use crate::report::RunInfo;

    /// A shard's report: `attempts[s][g]` connect attempts of group `g` in second `s`,
    /// and `handshakes[s]` accepted by its server.
    async fn shard(attempts: &[[u64; 2]], handshakes: &[u64]) -> Report {
        let m = Metrics::new(Clock::start(), vec!["steady".into(), "eager".into()]);
        for (second, (per_group, accepted)) in attempts.iter().zip(handshakes).enumerate() {
            for (group, n) in per_group.iter().enumerate() {
                m.record(group, |r| {
                    r.count(Counter::ConnectAttempts, *n);
                    r.tick(Tick::ConnectAttempts, *n);
                });
            }
            m.record(0, |r| r.tick(Tick::ServerHandshakes, *accepted));
            assert_eq!(m.clock().now_us() / 1_000_000, second as u64);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let run = RunInfo {
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_s: attempts.len() as f64,
            seed: 1,
            version: "test".into(),
            interrupted: false,
            status: "completed".into(),
            error: None,
            shard: None,
        };
        Report::build(
            serde_json::json!({ "name": "herd" }),
            run,
            &m.snapshot(),
            vec![],
        )
    }

    #[tokio::test(start_paused = true)]
    async fn per_second_peaks_are_recomputed_from_the_summed_seconds() {
        // Each shard's busiest second is a different one: the sum of their peaks (9 + 8)
        // overstates the merged run's busiest second (5 + 8 = 13 at second 1).
        let a = shard(&[[1, 8], [2, 3], [0, 0]], &[4, 9, 1]).await;
        let b = shard(&[[0, 1], [6, 2], [1, 7]], &[2, 3, 8]).await;
        assert_eq!(a.counters.connect_attempts_peak, 9);
        assert_eq!(a.groups[1].counters.connect_attempts_peak, 8);
        assert_eq!(b.counters.server_handshakes_peak, 8);
        let merged = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(merged.counters.connect_attempts, 31);
        assert_eq!(merged.counters.connect_attempts_peak, 13);
        assert_eq!(merged.counters.server_handshakes_peak, 12);
        let (steady, eager) = (&merged.groups[0], &merged.groups[1]);
        assert_eq!(steady.connect_attempts_per_second, [1, 8, 1]);
        assert_eq!(steady.counters.connect_attempts_peak, 8);
        assert_eq!(eager.connect_attempts_per_second, [9, 5, 7]);
        assert_eq!(eager.counters.connect_attempts_peak, 9);
        // The server does not know client groups: its peak is the run's alone.
        assert_eq!(eager.counters.server_handshakes_peak, 0);
        // The same whichever shard comes first, and the series survive the JSON.
        let swapped = merge(&[b, a]).unwrap();
        assert_eq!(swapped.counters, merged.counters);
        assert_eq!(swapped.groups, merged.groups);
        let text = serde_json::to_string(&merged).unwrap();
        let again: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(again, merged);
    }
}
