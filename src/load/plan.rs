//! When each virtual client runs: pure functions from the scenario's groups, stages and
//! `connect_rate` to a start/stop schedule per client, testable without a runtime.

use std::time::Duration;

use crate::scenario::{ClientGroup, Load, Stage};

/// One client's place in the run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPlan {
    /// Index across all groups, in file order: what `connections: [..]` lists refer to.
    pub index: u32,
    pub group: usize,
    /// Periods of the run (offsets from its start) during which this client is wanted.
    pub active: Vec<(Duration, Duration)>,
}

/// Schedules every client of `groups` within a run of `duration`.
pub fn plan(groups: &[ClientGroup], duration: Duration) -> Vec<ClientPlan> {
    let mut out = Vec::new();
    let mut base = 0u32;
    for (g, group) in groups.iter().enumerate() {
        let peak = group.peak_clients();
        let spacing = group.connect_rate.and_then(|r| r.interval());
        // Arrivals are paced by connect_rate across the whole group: the k-th start is
        // never earlier than k × spacing, whatever the stages ask for.
        let mut next_free = Duration::ZERO;
        for k in 0..peak {
            let mut active = wanted(&group.load, k, duration);
            for period in active.iter_mut() {
                if let Some(s) = spacing {
                    period.0 = period.0.max(next_free);
                    next_free = period.0 + s;
                }
            }
            active.retain(|(start, stop)| start < stop);
            if !active.is_empty() {
                out.push(ClientPlan {
                    index: base + k,
                    group: g,
                    active,
                });
            }
        }
        base += peak;
    }
    out
}

/// Periods during which client `k` (0-based within its group) is wanted.
fn wanted(load: &Load, k: u32, duration: Duration) -> Vec<(Duration, Duration)> {
    match load {
        Load::Count(n) => {
            if k < *n {
                vec![(Duration::ZERO, duration)]
            } else {
                vec![]
            }
        }
        Load::Stages(stages) => stage_periods(stages, k, duration),
    }
}

/// Client `k` is wanted while the linear stage target is at least `k + 1`.
fn stage_periods(stages: &[Stage], k: u32, duration: Duration) -> Vec<(Duration, Duration)> {
    let level = f64::from(k) + 1.0;
    let mut periods = Vec::new();
    let mut open: Option<Duration> = None;
    let (mut t0, mut c0) = (Duration::ZERO, 0.0f64);
    for stage in stages {
        let t1 = t0 + stage.duration;
        let c1 = f64::from(stage.target);
        let crossing = |from: f64, to: f64| {
            let frac = ((level - from) / (to - from)).clamp(0.0, 1.0);
            t0 + stage.duration.mul_f64(frac)
        };
        if open.is_none() && c1 >= level && c0 < level {
            open = Some(crossing(c0, c1));
        } else if open.is_none() && c0 >= level {
            open = Some(t0);
        }
        if let Some(start) = open
            && c1 < level
            && c0 >= level
        {
            periods.push((start, crossing(c0, c1)));
            open = None;
        }
        t0 = t1;
        c0 = c1;
    }
    // After the last stage the count holds at its final target.
    if let Some(start) = open {
        periods.push((start, duration));
    }
    periods
        .into_iter()
        .filter(|(s, _)| *s < duration)
        .map(|(s, e)| (s, e.min(duration)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::*;

    fn group(load: Load, connect_rate: Option<f64>) -> ClientGroup {
        ClientGroup {
            name: "g".into(),
            load,
            connect_rate: connect_rate.map(|r| Rate { per_second: r }),
            messages: Messages {
                rate: Rate::ZERO,
                min_bytes: 1,
                max_bytes: 1,
                kind: MessageKind::Text,
            },
            recovery: RecoveryPolicy {
                backoff: BackoffPolicy {
                    kind: BackoffKind::Exponential,
                    initial: Duration::from_millis(100),
                    max: Duration::from_secs(1),
                    multiplier: 2.0,
                    jitter: Jitter::Full,
                },
                heartbeat: HeartbeatPolicy {
                    interval: Duration::from_secs(1),
                    timeout: Duration::from_secs(1),
                },
                retransmit: RetransmitPolicy {
                    ack_timeout: Duration::from_secs(1),
                    max_in_flight: 10,
                },
                outbox: OutboxPolicy {
                    max_messages: 10,
                    max_bytes: 1000,
                    overflow: Overflow::Block,
                },
                max_attempts: None,
                max_elapsed: None,
                connect_timeout: Duration::from_secs(1),
                handshake_timeout: Duration::from_secs(1),
                min_uptime: Duration::from_secs(1),
                on_error: vec![],
            },
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn count_with_connect_rate_paces_arrivals() {
        let p = plan(&[group(Load::Count(4), Some(2.0))], S(10));
        let starts: Vec<u128> = p.iter().map(|c| c.active[0].0.as_millis()).collect();
        assert_eq!(starts, [0, 500, 1000, 1500]);
        assert!(p.iter().all(|c| c.active[0].1 == S(10)));
    }

    #[test]
    fn stages_ramp_up_hold_and_down() {
        let stages = vec![
            Stage {
                duration: S(10),
                target: 10,
            },
            Stage {
                duration: S(10),
                target: 10,
            },
            Stage {
                duration: S(10),
                target: 0,
            },
        ];
        let p = plan(&[group(Load::Stages(stages), None)], S(30));
        assert_eq!(p.len(), 10);
        // Client 0 is wanted once the target reaches 1 (1 s) until it drops below 1.
        assert_eq!(p[0].active, vec![(S(1), S(29))]);
        assert_eq!(p[9].active, vec![(S(10), S(20))]);
    }

    #[test]
    fn groups_number_clients_in_file_order_and_duration_cuts() {
        let p = plan(
            &[group(Load::Count(2), None), group(Load::Count(3), None)],
            S(5),
        );
        let idx: Vec<(u32, usize)> = p.iter().map(|c| (c.index, c.group)).collect();
        assert_eq!(idx, [(0, 0), (1, 0), (2, 1), (3, 1), (4, 1)]);
        let late = vec![Stage {
            duration: S(100),
            target: 100,
        }];
        let p = plan(&[group(Load::Stages(late), None)], S(10));
        // Only clients the ramp reaches within 10 s run.
        assert_eq!(p.len(), 9);
    }
}
