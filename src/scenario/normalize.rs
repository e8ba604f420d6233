//! The checked scenario written back as a scenario: every default spelled out, units in
//! their humane form, shaped like the YAML so that reading it again gives the same
//! [`Scenario`]. Reports carry it, and `squall replay` reads it back.

use super::model::{
    BackoffKind, ClientGroup, Connections, Direction, Distribution, DropUnit, ErrorAction,
    ErrorClass, ErrorMatch, Jitter, Load, MessageKind, Messages, NetworkFault, NetworkFaultKind,
    Overflow, PongAction, Protocol, RecoveryPolicy, ReportFormat, Scenario, ServerFault,
    ServerFaultKind, ServerMode, Target, Threshold, Window,
};
use super::spec::{
    BackoffKindSpec, BackoffSpec, BandwidthText, BuiltinSpec, ClientsSpec, CodeText,
    ConnectionsSpec, DirectionSpec, DistributionSpec, DropUnitSpec, DurationText, Entries,
    ErrorClassSpec, ErrorRuleSpec, FaultKindSpec, FaultSpec, FormatSpec, GroupSpec, HeartbeatSpec,
    JitterSpec, MessageKindSpec, MessagesSpec, ModeSpec, OutboxSpec, OverflowSpec, ProtocolSpec,
    RateText, RecoverySpec, ReportSpec, RetransmitSpec, ScenarioSpec, ServerFaultKindSpec,
    ServerFaultSpec, ShareText, SizeRangeSpec, SizeSpec, SizeText, StageSpec, TargetSpec,
    ThresholdFullSpec, ThresholdRules, ThresholdSpec,
};
use super::units;

impl Scenario {
    /// The normalized scenario as JSON (which is also YAML): every default filled in,
    /// durations like `"250ms"`, sizes like `"256B"`. Parsing it back gives an equal
    /// scenario.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(spec(self)).unwrap_or_default();
        drop_nulls(&mut value);
        value
    }
}

impl NetworkFault {
    /// The fault as a scenario's `faults:` entry writes it, every default spelled out (the
    /// proxy's control API answers with it). Parsing it back gives an equal fault.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(fault(self)).unwrap_or_default();
        drop_nulls(&mut value);
        value
    }
}

/// Absent keys serialize as `null`; a scenario leaves them out.
fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn duration(d: std::time::Duration) -> DurationText {
    DurationText(units::format_duration(d))
}

fn size(bytes: u64) -> SizeText {
    SizeText(units::format_size(bytes))
}

fn rate(rate: super::model::Rate) -> RateText {
    RateText(units::format_rate(rate))
}

fn spec(scenario: &Scenario) -> ScenarioSpec {
    ScenarioSpec {
        name: Some(scenario.name.clone()),
        seed: Some(scenario.seed),
        duration: Some(duration(scenario.duration)),
        target: Some(target(&scenario.target)),
        clients: Some(match scenario.groups.as_slice() {
            [group] => ClientsSpec::Group(Box::new(self::group(group))),
            groups => ClientsSpec::Groups(groups.iter().map(self::group).collect()),
        }),
        messages: None,
        recovery: None,
        faults: Some(scenario.faults.iter().map(fault).collect()),
        server: Some(scenario.server.iter().map(server_fault).collect()),
        thresholds: Some(thresholds(&scenario.thresholds)),
        report: Some(ReportSpec {
            dir: Some(scenario.report.dir.clone()),
            formats: Some(
                scenario
                    .report
                    .formats
                    .iter()
                    .map(|format| match format {
                        ReportFormat::Json => FormatSpec::Json,
                        ReportFormat::Md => FormatSpec::Md,
                        ReportFormat::Html => FormatSpec::Html,
                        ReportFormat::Junit => FormatSpec::Junit,
                    })
                    .collect(),
            ),
        }),
    }
}

fn target(target: &Target) -> TargetSpec {
    match target {
        Target::Builtin(builtin) => {
            let (mode, stream_rate, stream_size) = match builtin.mode {
                ServerMode::Echo => (ModeSpec::Echo, None, None),
                ServerMode::Stream {
                    rate: r,
                    size_bytes,
                } => (ModeSpec::Stream, Some(rate(r)), Some(size(size_bytes))),
            };
            TargetSpec {
                builtin: Some(BuiltinSpec {
                    mode: Some(mode),
                    rate: stream_rate,
                    size: stream_size,
                    session_window: Some(duration(builtin.session_window)),
                    replay_buffer: Some(builtin.replay_buffer as u64),
                    max_handshake_rate: builtin.max_handshake_rate.map(rate),
                }),
                ..TargetSpec::default()
            }
        }
        Target::External(external) => TargetSpec {
            builtin: None,
            url: Some(external.url.clone()),
            protocol: Some(match external.protocol {
                Protocol::Squall => ProtocolSpec::Squall,
                Protocol::Echo => ProtocolSpec::Echo,
            }),
            headers: Some(Entries(external.headers.clone())),
            subprotocols: Some(external.subprotocols.clone()),
            ca_file: external.ca_file.clone(),
        },
    }
}

fn group(group: &ClientGroup) -> GroupSpec {
    let (count, stages) = match &group.load {
        Load::Count(n) => (Some(u64::from(*n)), None),
        Load::Stages(stages) => (
            None,
            Some(
                stages
                    .iter()
                    .map(|stage| StageSpec {
                        duration: Some(duration(stage.duration)),
                        target: Some(u64::from(stage.target)),
                    })
                    .collect(),
            ),
        ),
    };
    GroupSpec {
        name: Some(group.name.clone()),
        count,
        stages,
        connect_rate: group.connect_rate.map(rate),
        messages: Some(messages(&group.messages)),
        recovery: Some(recovery(&group.recovery)),
    }
}

fn messages(messages: &Messages) -> MessagesSpec {
    MessagesSpec {
        rate: Some(rate(messages.rate)),
        size: Some(if messages.min_bytes == messages.max_bytes {
            SizeSpec::Fixed(size(messages.min_bytes))
        } else {
            SizeSpec::Range(SizeRangeSpec {
                min: Some(size(messages.min_bytes)),
                max: Some(size(messages.max_bytes)),
            })
        }),
        kind: Some(match messages.kind {
            MessageKind::Text => MessageKindSpec::Text,
            MessageKind::Binary => MessageKindSpec::Binary,
        }),
    }
}

fn recovery(policy: &RecoveryPolicy) -> RecoverySpec {
    let backoff = &policy.backoff;
    RecoverySpec {
        backoff: Some(BackoffSpec {
            kind: Some(match backoff.kind {
                BackoffKind::Constant => BackoffKindSpec::Constant,
                BackoffKind::Exponential => BackoffKindSpec::Exponential,
                BackoffKind::Decorrelated => BackoffKindSpec::Decorrelated,
            }),
            initial: Some(duration(backoff.initial)),
            max: Some(duration(backoff.max)),
            multiplier: Some(backoff.multiplier),
            jitter: Some(match backoff.jitter {
                Jitter::None => JitterSpec::None,
                Jitter::Full => JitterSpec::Full,
                Jitter::Equal => JitterSpec::Equal,
            }),
        }),
        heartbeat: Some(HeartbeatSpec {
            interval: Some(duration(policy.heartbeat.interval)),
            timeout: Some(duration(policy.heartbeat.timeout)),
        }),
        retransmit: Some(RetransmitSpec {
            ack_timeout: Some(duration(policy.retransmit.ack_timeout)),
            max_in_flight: Some(u64::from(policy.retransmit.max_in_flight)),
        }),
        outbox: Some(OutboxSpec {
            max_messages: Some(u64::from(policy.outbox.max_messages)),
            max_bytes: Some(size(policy.outbox.max_bytes)),
            overflow: Some(match policy.outbox.overflow {
                Overflow::Block => OverflowSpec::Block,
                Overflow::Fail => OverflowSpec::Fail,
                Overflow::DropOldest => OverflowSpec::DropOldest,
            }),
        }),
        max_attempts: policy.max_attempts.map(u64::from),
        max_elapsed: policy.max_elapsed.map(duration),
        connect_timeout: Some(duration(policy.connect_timeout)),
        handshake_timeout: Some(duration(policy.handshake_timeout)),
        min_uptime: Some(duration(policy.min_uptime)),
        on_error: Some(policy.on_error.iter().map(error_rule).collect()),
    }
}

fn error_rule(rule: &super::model::ErrorRule) -> ErrorRuleSpec {
    let code = |from: u16, to: u16| match from == to {
        true => CodeText(from.to_string()),
        false => CodeText(format!("{from}-{to}")),
    };
    let mut spec = ErrorRuleSpec {
        action: Some(match rule.action {
            ErrorAction::Retry => "retry".into(),
            ErrorAction::Fatal => "fatal".into(),
            ErrorAction::RetryAfter(delay) => {
                format!("retry_after {}", units::format_duration(delay))
            }
        }),
        ..ErrorRuleSpec::default()
    };
    match rule.matches {
        ErrorMatch::CloseCode { from, to } => spec.close_code = Some(code(from, to)),
        ErrorMatch::HttpStatus { from, to } => spec.http_status = Some(code(from, to)),
        ErrorMatch::Class(class) => {
            spec.class = Some(match class {
                ErrorClass::Connection => ErrorClassSpec::Connection,
                ErrorClass::Data => ErrorClassSpec::Data,
                ErrorClass::Application => ErrorClassSpec::Application,
            });
        }
    }
    spec
}

fn connections(connections: &Connections) -> ConnectionsSpec {
    match connections {
        Connections::All => ConnectionsSpec::Share(ShareText("all".into())),
        Connections::Share(share) => ConnectionsSpec::Share(ShareText(units::format_share(*share))),
        Connections::Count(n) => ConnectionsSpec::Count(u64::from(*n)),
        Connections::Clients(indices) => {
            ConnectionsSpec::Clients(indices.iter().map(|&i| u64::from(i)).collect())
        }
    }
}

fn probability(p: f64) -> ShareText {
    ShareText(units::format_share(super::model::Share(p)))
}

/// The timing keys, shared by network and server faults.
fn timing(window: &Window) -> [Option<DurationText>; 4] {
    [
        Some(duration(window.at)),
        window.length.map(duration),
        window.every.map(duration),
        Some(duration(window.stagger)),
    ]
}

fn distribution(distribution: Distribution) -> DistributionSpec {
    match distribution {
        Distribution::Uniform => DistributionSpec::Uniform,
        Distribution::Normal => DistributionSpec::Normal,
        Distribution::Pareto => DistributionSpec::Pareto,
    }
}

fn fault(fault: &NetworkFault) -> FaultSpec {
    let [at, length, every, stagger] = timing(&fault.window);
    let mut spec = FaultSpec {
        kind: None,
        name: Some(fault.name.clone()),
        direction: Some(match fault.direction {
            Direction::Upstream => DirectionSpec::Upstream,
            Direction::Downstream => DirectionSpec::Downstream,
            Direction::Both => DirectionSpec::Both,
        }),
        connections: Some(connections(&fault.connections)),
        at,
        length,
        every,
        stagger,
        ..FaultSpec::default()
    };
    spec.kind = Some(match &fault.kind {
        NetworkFaultKind::Latency {
            latency,
            jitter,
            distribution,
        } => {
            spec.latency = Some(duration(*latency));
            spec.jitter = Some(duration(*jitter));
            spec.distribution = Some(self::distribution(*distribution));
            FaultKindSpec::Latency
        }
        NetworkFaultKind::Bandwidth {
            bytes_per_second,
            shared,
        } => {
            spec.rate = Some(BandwidthText(units::format_bandwidth(*bytes_per_second)));
            spec.shared = Some(*shared);
            FaultKindSpec::Bandwidth
        }
        NetworkFaultKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => {
            spec.average_size = Some(size(*average_size));
            spec.size_variation = Some(size(*size_variation));
            spec.delay = Some(duration(*delay));
            FaultKindSpec::Slicer
        }
        NetworkFaultKind::Drop {
            probability: p,
            unit,
            correlation,
        } => {
            spec.probability = Some(probability(*p));
            spec.unit = Some(match unit {
                DropUnit::Chunk => DropUnitSpec::Chunk,
                DropUnit::Byte => DropUnitSpec::Byte,
            });
            spec.correlation = Some(probability(*correlation));
            FaultKindSpec::Drop
        }
        NetworkFaultKind::Corrupt { probability: p } => {
            spec.probability = Some(probability(*p));
            FaultKindSpec::Corrupt
        }
        NetworkFaultKind::Duplicate { probability: p } => {
            spec.probability = Some(probability(*p));
            FaultKindSpec::Duplicate
        }
        NetworkFaultKind::LimitData { bytes } => {
            spec.bytes = Some(size(*bytes));
            FaultKindSpec::LimitData
        }
        NetworkFaultKind::SlowClose { delay } => {
            spec.delay = Some(duration(*delay));
            FaultKindSpec::SlowClose
        }
        NetworkFaultKind::Blackhole {
            close_after,
            reset_after,
        } => {
            spec.close_after = close_after.map(duration);
            spec.reset_after = reset_after.map(duration);
            FaultKindSpec::Blackhole
        }
        NetworkFaultKind::WsDrop {
            probability: p,
            controls,
        } => {
            spec.probability = Some(probability(*p));
            spec.controls = Some(*controls);
            FaultKindSpec::WsDrop
        }
        NetworkFaultKind::WsDelay {
            latency,
            jitter,
            distribution,
        } => {
            spec.latency = Some(duration(*latency));
            spec.jitter = Some(duration(*jitter));
            spec.distribution = Some(self::distribution(*distribution));
            FaultKindSpec::WsDelay
        }
        NetworkFaultKind::WsDuplicate { probability: p } => {
            spec.probability = Some(probability(*p));
            FaultKindSpec::WsDuplicate
        }
        NetworkFaultKind::WsReorder { probability: p } => {
            spec.probability = Some(probability(*p));
            FaultKindSpec::WsReorder
        }
        NetworkFaultKind::WsInvalidUtf8 { probability: p } => {
            spec.probability = Some(probability(*p));
            FaultKindSpec::WsInvalidUtf8
        }
        NetworkFaultKind::WsClose { code, reason } => {
            spec.code = Some(u64::from(*code));
            spec.reason = Some(reason.clone());
            FaultKindSpec::WsClose
        }
        NetworkFaultKind::WsPong { action } => {
            match action {
                PongAction::Delay(delay) => spec.delay = Some(duration(*delay)),
                PongAction::Swallow => {}
            }
            spec.swallow = Some(*action == PongAction::Swallow);
            FaultKindSpec::WsPong
        }
        NetworkFaultKind::WsOversize { bytes } => {
            spec.bytes = Some(size(*bytes));
            FaultKindSpec::WsOversize
        }
        NetworkFaultKind::Reset => FaultKindSpec::Reset,
        NetworkFaultKind::Close => FaultKindSpec::Close,
        NetworkFaultKind::Partition => FaultKindSpec::Partition,
        NetworkFaultKind::AcceptStall => FaultKindSpec::AcceptStall,
        NetworkFaultKind::AcceptReset => FaultKindSpec::AcceptReset,
        NetworkFaultKind::DialDelay { delay } => {
            spec.delay = Some(duration(*delay));
            FaultKindSpec::DialDelay
        }
        NetworkFaultKind::NatTimeout { idle } => {
            spec.idle = Some(duration(*idle));
            FaultKindSpec::NatTimeout
        }
    });
    spec
}

fn server_fault(fault: &ServerFault) -> ServerFaultSpec {
    let [at, length, every, _] = timing(&fault.window);
    let mut spec = ServerFaultSpec {
        name: Some(fault.name.clone()),
        at,
        length,
        every,
        ..ServerFaultSpec::default()
    };
    spec.kind = Some(match &fault.kind {
        ServerFaultKind::Restart {
            close_code,
            down_for,
            keep_sessions,
        } => {
            spec.close_code = Some(u64::from(*close_code));
            spec.down_for = Some(duration(*down_for));
            spec.keep_sessions = Some(*keep_sessions);
            ServerFaultKindSpec::Restart
        }
        ServerFaultKind::RejectHandshakes {
            status,
            retry_after,
            share,
        } => {
            spec.status = Some(u64::from(*status));
            spec.retry_after = retry_after.map(duration);
            spec.share = Some(ShareText(units::format_share(*share)));
            ServerFaultKindSpec::RejectHandshakes
        }
        ServerFaultKind::Close {
            code,
            reason,
            sessions,
        } => {
            spec.code = Some(u64::from(*code));
            spec.reason = Some(reason.clone());
            spec.sessions = Some(connections(sessions));
            ServerFaultKindSpec::Close
        }
        ServerFaultKind::AppError { message, sessions } => {
            spec.message = Some(message.clone());
            spec.sessions = Some(connections(sessions));
            ServerFaultKindSpec::AppError
        }
        ServerFaultKind::Stall => ServerFaultKindSpec::Stall,
        ServerFaultKind::AcceptClose {
            code,
            reason,
            share,
        } => {
            spec.code = Some(u64::from(*code));
            spec.reason = Some(reason.clone());
            spec.share = Some(ShareText(units::format_share(*share)));
            ServerFaultKindSpec::AcceptClose
        }
    });
    spec
}

/// One map entry per metric; validation keeps each metric's thresholds together.
fn thresholds(thresholds: &[Threshold]) -> Entries<ThresholdRules> {
    let mut entries: Vec<(String, ThresholdRules)> = Vec::new();
    for threshold in thresholds {
        let rule = match threshold.abort_on_fail {
            false => ThresholdSpec::Expr(threshold.source.clone()),
            true => ThresholdSpec::Full(ThresholdFullSpec {
                threshold: Some(threshold.source.clone()),
                abort_on_fail: Some(true),
                delay_abort_eval: (!threshold.delay_abort_eval.is_zero())
                    .then(|| duration(threshold.delay_abort_eval)),
            }),
        };
        let key = threshold.key();
        match entries.last_mut() {
            Some((metric, ThresholdRules::Many(rules))) if *metric == key => rules.push(rule),
            _ => entries.push((key, ThresholdRules::Many(vec![rule]))),
        }
    }
    Entries(entries)
}
