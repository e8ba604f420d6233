//! `faults:` — network faults for the shim. Each is one flat map: the common keys
//! (`kind`, `name`, `direction`, `connections`, `at`, `for`, `every`, `stagger`) and the
//! parameters of its kind; a parameter of another kind is refused by name.
//!
//! The timing window and the choice of connections are shared with `server:`.

use std::collections::HashSet;
use std::time::Duration;

use super::super::defaults::{self, limits};
use super::super::model::{
    Connections, Direction, Distribution, DropUnit, NetworkFault, NetworkFaultKind, PongAction,
    Window,
};
use super::super::path::YamlPath;
use super::super::spec::{
    ConnectionsSpec, DirectionSpec, DistributionSpec, DropUnitSpec, DurationText, FaultKindSpec,
    FaultSpec, SizeText,
};
use super::super::units;
use super::{Checked, Invalid, Run, fields, server};

pub fn network_faults(
    path: &YamlPath,
    specs: Option<&[FaultSpec]>,
    run: &Run,
) -> Checked<Vec<NetworkFault>> {
    let mut faults: Vec<NetworkFault> = Vec::new();
    let mut names = HashSet::new();
    for (id, spec) in specs.unwrap_or_default().iter().enumerate() {
        let fault = network_fault(&path.index(id), id, spec, run)?;
        unique_name(&path.index(id), &fault.name, &mut names)?;
        faults.push(fault);
    }
    Ok(faults)
}

/// One fault at the root of its own document.
pub fn single(spec: &FaultSpec, run: &Run) -> Checked<NetworkFault> {
    network_fault(&YamlPath::root(), 0, spec, run)
}

fn network_fault(path: &YamlPath, id: usize, spec: &FaultSpec, run: &Run) -> Checked<NetworkFault> {
    let kind_path = path.key("kind");
    let kind = *fields::required(
        &kind_path,
        spec.kind.as_ref(),
        "which fault, e.g. `kind: latency`",
    )?;
    let name = kind_name(kind);
    reject_foreign_parameters(path, name, spec)?;
    let kind = parameters(path, kind, spec)?;
    let window = window(
        path,
        Timing {
            at: spec.at.as_ref(),
            length: spec.length.as_ref(),
            every: spec.every.as_ref(),
            stagger: spec.stagger.as_ref(),
        },
        kind.is_instantaneous().then_some(kind.name()),
        run,
    )?;
    if matches!(kind, NetworkFaultKind::NatTimeout { .. })
        && spec.direction.is_some_and(|d| d != DirectionSpec::Both)
    {
        return Err(Invalid::key(
            &path.key("direction"),
            "a NAT forgets a connection both ways at once: `nat_timeout` takes only `both`",
        ));
    }
    Ok(NetworkFault {
        id,
        name: fault_name(&path.key("name"), spec.name.as_deref(), kind.name(), id)?,
        direction: match spec.direction.unwrap_or(default_direction(&kind)) {
            DirectionSpec::Upstream => Direction::Upstream,
            DirectionSpec::Downstream => Direction::Downstream,
            DirectionSpec::Both => Direction::Both,
        },
        connections: connections(&path.key("connections"), spec.connections.as_ref())?,
        kind,
        window,
    })
}

/// `ws_pong` acts on the server's answers to the client's pings; every other kind on
/// both directions.
fn default_direction(kind: &NetworkFaultKind) -> DirectionSpec {
    match kind {
        NetworkFaultKind::WsPong { .. } => DirectionSpec::Downstream,
        _ => DirectionSpec::Both,
    }
}

/// The parameters each kind takes, in the order the docs list them.
fn parameters_of(kind: FaultKindSpec) -> &'static [&'static str] {
    match kind {
        FaultKindSpec::Latency => &["latency", "jitter", "distribution"],
        FaultKindSpec::Bandwidth => &["rate", "shared"],
        FaultKindSpec::Slicer => &["average_size", "size_variation", "delay"],
        FaultKindSpec::Drop => &["probability", "unit", "correlation"],
        FaultKindSpec::Corrupt | FaultKindSpec::Duplicate => &["probability"],
        FaultKindSpec::LimitData => &["bytes"],
        FaultKindSpec::SlowClose | FaultKindSpec::DialDelay => &["delay"],
        FaultKindSpec::Blackhole => &["close_after", "reset_after"],
        FaultKindSpec::NatTimeout => &["idle"],
        FaultKindSpec::Reset
        | FaultKindSpec::Close
        | FaultKindSpec::Partition
        | FaultKindSpec::AcceptStall
        | FaultKindSpec::AcceptReset => &[],
        FaultKindSpec::WsDrop => &["probability", "controls"],
        FaultKindSpec::WsDelay => &["latency", "jitter", "distribution"],
        FaultKindSpec::WsDuplicate | FaultKindSpec::WsReorder | FaultKindSpec::WsInvalidUtf8 => {
            &["probability"]
        }
        FaultKindSpec::WsClose => &["code", "reason"],
        FaultKindSpec::WsPong => &["delay", "swallow"],
        FaultKindSpec::WsOversize => &["bytes"],
    }
}

fn kind_name(kind: FaultKindSpec) -> &'static str {
    match kind {
        FaultKindSpec::Latency => "latency",
        FaultKindSpec::Bandwidth => "bandwidth",
        FaultKindSpec::Slicer => "slicer",
        FaultKindSpec::Drop => "drop",
        FaultKindSpec::Corrupt => "corrupt",
        FaultKindSpec::Duplicate => "duplicate",
        FaultKindSpec::Blackhole => "blackhole",
        FaultKindSpec::Reset => "reset",
        FaultKindSpec::Close => "close",
        FaultKindSpec::LimitData => "limit_data",
        FaultKindSpec::SlowClose => "slow_close",
        FaultKindSpec::Partition => "partition",
        FaultKindSpec::AcceptStall => "accept_stall",
        FaultKindSpec::AcceptReset => "accept_reset",
        FaultKindSpec::DialDelay => "dial_delay",
        FaultKindSpec::NatTimeout => "nat_timeout",
        FaultKindSpec::WsDrop => "ws_drop",
        FaultKindSpec::WsDelay => "ws_delay",
        FaultKindSpec::WsDuplicate => "ws_duplicate",
        FaultKindSpec::WsReorder => "ws_reorder",
        FaultKindSpec::WsClose => "ws_close",
        FaultKindSpec::WsPong => "ws_pong",
        FaultKindSpec::WsInvalidUtf8 => "ws_invalid_utf8",
        FaultKindSpec::WsOversize => "ws_oversize",
    }
}

fn reject_foreign_parameters(path: &YamlPath, kind: &str, spec: &FaultSpec) -> Checked<()> {
    let present = [
        ("latency", spec.latency.is_some()),
        ("jitter", spec.jitter.is_some()),
        ("distribution", spec.distribution.is_some()),
        ("rate", spec.rate.is_some()),
        ("shared", spec.shared.is_some()),
        ("average_size", spec.average_size.is_some()),
        ("size_variation", spec.size_variation.is_some()),
        ("delay", spec.delay.is_some()),
        ("probability", spec.probability.is_some()),
        ("unit", spec.unit.is_some()),
        ("correlation", spec.correlation.is_some()),
        ("bytes", spec.bytes.is_some()),
        ("close_after", spec.close_after.is_some()),
        ("reset_after", spec.reset_after.is_some()),
        ("controls", spec.controls.is_some()),
        ("code", spec.code.is_some()),
        ("reason", spec.reason.is_some()),
        ("swallow", spec.swallow.is_some()),
        ("idle", spec.idle.is_some()),
    ];
    let allowed = spec.kind.map(parameters_of).unwrap_or_default();
    foreign(path, kind, allowed, &present)
}

/// Refuses the first parameter set that `kind` does not take, naming the ones it does.
pub fn foreign(
    path: &YamlPath,
    kind: &str,
    allowed: &[&str],
    present: &[(&str, bool)],
) -> Checked<()> {
    let Some((stray, _)) = present
        .iter()
        .find(|(key, set)| *set && !allowed.contains(key))
    else {
        return Ok(());
    };
    let takes = match allowed {
        [] => format!("`{kind}` takes no parameters"),
        _ => format!("parameters: {}", allowed.join(", ")),
    };
    Err(Invalid::key(
        &path.key(stray),
        format!("not a parameter of `{kind}` ({takes})"),
    ))
}

fn parameters(path: &YamlPath, kind: FaultKindSpec, spec: &FaultSpec) -> Checked<NetworkFaultKind> {
    let duration_or = |key: &str, text: Option<&DurationText>, default: Duration| {
        text.map_or(Ok(default), |text| fields::duration(&path.key(key), text))
    };
    let required_duration = |key: &str, text: Option<&DurationText>, why: &str| {
        let key_path = path.key(key);
        fields::positive_duration(&key_path, fields::required(&key_path, text, why)?)
    };
    let probability = || match &spec.probability {
        Some(text) => fields::probability(&path.key("probability"), text),
        None => Err(Invalid::key(
            &path.key("probability"),
            format!(
                "is required for `{}`: a chance from 0 to 1, like 0.01 or 1%",
                kind_name(kind)
            ),
        )),
    };
    Ok(match kind {
        FaultKindSpec::Latency | FaultKindSpec::WsDelay => {
            let latency_path = path.key("latency");
            let what = match kind {
                FaultKindSpec::Latency => "the delay added to each chunk, e.g. 80ms",
                _ => "the delay added to each message, e.g. 80ms",
            };
            let text = fields::required(&latency_path, spec.latency.as_ref(), what)?;
            let latency = fields::duration(&latency_path, text)?;
            let jitter = duration_or("jitter", spec.jitter.as_ref(), Duration::ZERO)?;
            if latency.is_zero() && jitter.is_zero() {
                return Err(Invalid::value(
                    &latency_path,
                    format!("must be > 0, or `jitter` must be (got {})", text.as_str()),
                ));
            }
            let distribution = match spec.distribution.unwrap_or(DistributionSpec::Uniform) {
                DistributionSpec::Uniform => Distribution::Uniform,
                DistributionSpec::Normal => Distribution::Normal,
                DistributionSpec::Pareto => Distribution::Pareto,
            };
            match kind {
                FaultKindSpec::Latency => NetworkFaultKind::Latency {
                    latency,
                    jitter,
                    distribution,
                },
                _ => NetworkFaultKind::WsDelay {
                    latency,
                    jitter,
                    distribution,
                },
            }
        }
        FaultKindSpec::Bandwidth => {
            let rate_path = path.key("rate");
            let text = fields::required(
                &rate_path,
                spec.rate.as_ref(),
                "the throughput allowed, e.g. 64KiB/s",
            )?;
            let bytes_per_second = units::parse_bandwidth(text.as_str())
                .map_err(|error| Invalid::value(&rate_path, error))?;
            if bytes_per_second == 0 {
                return Err(Invalid::value(
                    &rate_path,
                    format!("must be at least 1B/s (got {})", text.as_str()),
                ));
            }
            NetworkFaultKind::Bandwidth {
                bytes_per_second,
                shared: spec.shared.unwrap_or(false),
            }
        }
        FaultKindSpec::Slicer => {
            let size_or = |key: &str, text: Option<&SizeText>, default: u64| {
                text.map_or(Ok(default), |text| {
                    fields::size(&path.key(key), text, limits::MESSAGE_BYTES)
                })
            };
            let average_size = size_or(
                "average_size",
                spec.average_size.as_ref(),
                defaults::SLICER_AVERAGE_SIZE,
            )?;
            let size_variation = size_or(
                "size_variation",
                spec.size_variation.as_ref(),
                defaults::SLICER_SIZE_VARIATION,
            )?;
            if average_size == 0 {
                return Err(Invalid::value(
                    &path.key("average_size"),
                    "must be > 0 (got 0B)",
                ));
            }
            if size_variation >= average_size {
                let key = if spec.size_variation.is_some() {
                    "size_variation"
                } else {
                    "average_size"
                };
                return Err(Invalid::value(
                    &path.key(key),
                    format!(
                        "size_variation must be less than average_size, so no segment is empty (got {} and {})",
                        units::format_size(size_variation),
                        units::format_size(average_size)
                    ),
                ));
            }
            let delay = duration_or("delay", spec.delay.as_ref(), Duration::ZERO)?;
            NetworkFaultKind::Slicer {
                average_size,
                size_variation,
                delay,
            }
        }
        FaultKindSpec::Drop => NetworkFaultKind::Drop {
            probability: probability()?,
            unit: match spec.unit.unwrap_or(DropUnitSpec::Chunk) {
                DropUnitSpec::Chunk => DropUnit::Chunk,
                DropUnitSpec::Byte => DropUnit::Byte,
            },
            correlation: spec.correlation.as_ref().map_or(Ok(0.0), |text| {
                fields::probability(&path.key("correlation"), text)
            })?,
        },
        FaultKindSpec::Corrupt => NetworkFaultKind::Corrupt {
            probability: probability()?,
        },
        FaultKindSpec::Duplicate => NetworkFaultKind::Duplicate {
            probability: probability()?,
        },
        FaultKindSpec::LimitData => {
            let bytes_path = path.key("bytes");
            let text = fields::required(
                &bytes_path,
                spec.bytes.as_ref(),
                "bytes to let through before closing, e.g. 4KiB",
            )?;
            NetworkFaultKind::LimitData {
                bytes: fields::positive_size(&bytes_path, text, u64::MAX)?,
            }
        }
        FaultKindSpec::SlowClose => {
            let delay = match &spec.delay {
                Some(text) => fields::positive_duration(&path.key("delay"), text)?,
                None => defaults::SLOW_CLOSE_DELAY,
            };
            NetworkFaultKind::SlowClose { delay }
        }
        FaultKindSpec::DialDelay => NetworkFaultKind::DialDelay {
            delay: required_duration(
                "delay",
                spec.delay.as_ref(),
                "how much later the server is dialed, e.g. 2s",
            )?,
        },
        FaultKindSpec::NatTimeout => NetworkFaultKind::NatTimeout {
            idle: required_duration(
                "idle",
                spec.idle.as_ref(),
                "how long a connection may stay silent before the NAT forgets it, e.g. 30s",
            )?,
        },
        FaultKindSpec::Blackhole => {
            let close_after = fields::optional_positive_duration(
                &path.key("close_after"),
                spec.close_after.as_ref(),
            )?;
            let reset_path = path.key("reset_after");
            let reset_after =
                fields::optional_positive_duration(&reset_path, spec.reset_after.as_ref())?;
            if close_after.is_some() && reset_after.is_some() {
                return Err(Invalid::key(
                    &reset_path,
                    "a blackhole ends with a close (close_after) or a reset (reset_after), not both",
                ));
            }
            NetworkFaultKind::Blackhole {
                close_after,
                reset_after,
            }
        }
        FaultKindSpec::WsDrop => NetworkFaultKind::WsDrop {
            probability: probability()?,
            controls: spec.controls.unwrap_or(false),
        },
        FaultKindSpec::WsDuplicate => NetworkFaultKind::WsDuplicate {
            probability: probability()?,
        },
        FaultKindSpec::WsReorder => NetworkFaultKind::WsReorder {
            probability: probability()?,
        },
        FaultKindSpec::WsInvalidUtf8 => NetworkFaultKind::WsInvalidUtf8 {
            probability: match &spec.probability {
                Some(text) => fields::probability(&path.key("probability"), text)?,
                None => defaults::WS_INVALID_UTF8_PROBABILITY,
            },
        },
        FaultKindSpec::WsClose => NetworkFaultKind::WsClose {
            code: server::close_code(&path.key("code"), spec.code, defaults::WS_CLOSE_CODE)?,
            reason: server::close_reason(&path.key("reason"), spec.reason.as_deref())?,
        },
        FaultKindSpec::WsPong => NetworkFaultKind::WsPong {
            action: pong_action(path, spec)?,
        },
        FaultKindSpec::WsOversize => NetworkFaultKind::WsOversize {
            bytes: match &spec.bytes {
                Some(text) => {
                    fields::positive_size(&path.key("bytes"), text, limits::WS_OVERSIZE_BYTES)?
                }
                None => defaults::WS_OVERSIZE_BYTES,
            },
        },
        FaultKindSpec::Reset => NetworkFaultKind::Reset,
        FaultKindSpec::Close => NetworkFaultKind::Close,
        FaultKindSpec::Partition => NetworkFaultKind::Partition,
        FaultKindSpec::AcceptStall => NetworkFaultKind::AcceptStall,
        FaultKindSpec::AcceptReset => NetworkFaultKind::AcceptReset,
    })
}

/// `ws_pong` takes a `delay` or `swallow: true`, one of them.
fn pong_action(path: &YamlPath, spec: &FaultSpec) -> Checked<PongAction> {
    match (spec.swallow, &spec.delay) {
        (Some(true), Some(_)) => Err(Invalid::key(
            &path.key("delay"),
            "`ws_pong` either delays pongs (`delay`) or swallows them (`swallow: true`), not both",
        )),
        (Some(true), None) => Ok(PongAction::Swallow),
        (_, Some(text)) => Ok(PongAction::Delay(fields::positive_duration(
            &path.key("delay"),
            text,
        )?)),
        (_, None) => Err(Invalid::key(
            &path.key("delay"),
            "is required for `ws_pong` unless `swallow: true`: how long to hold each pong back, e.g. 5s",
        )),
    }
}

/// The timing keys of a fault, as written.
pub struct Timing<'s> {
    pub at: Option<&'s DurationText>,
    pub length: Option<&'s DurationText>,
    pub every: Option<&'s DurationText>,
    pub stagger: Option<&'s DurationText>,
}

/// `instantaneous` names the kind when it acts once per connection: it takes no `for`
/// unless `every` repeats it within that window.
pub fn window(
    path: &YamlPath,
    timing: Timing,
    instantaneous: Option<&str>,
    run: &Run,
) -> Checked<Window> {
    let at_path = path.key("at");
    let at = fields::optional_duration(&at_path, timing.at)?.unwrap_or_default();
    if at >= run.length {
        let at_text = timing.at.map_or("0s", DurationText::as_str);
        let when = if at == run.length {
            "at the very end"
        } else {
            "after the end"
        };
        return Err(Invalid::value(
            &at_path,
            format!("{at_text} is {when} of the run (duration {})", run.text),
        ));
    }
    let every = fields::optional_positive_duration(&path.key("every"), timing.every)?;
    if let (Some(kind), Some(_), None) = (instantaneous, timing.length, every) {
        return Err(Invalid::key(
            &path.key("for"),
            format!(
                "`{kind}` acts once, at `at`; `for` needs `every` to repeat it within the window"
            ),
        ));
    }
    let length = fields::optional_positive_duration(&path.key("for"), timing.length)?;
    let stagger =
        fields::optional_duration(&path.key("stagger"), timing.stagger)?.unwrap_or_default();
    Ok(Window {
        at,
        length,
        every,
        stagger,
    })
}

/// `all`, a share, a count, or client indices.
pub fn connections(path: &YamlPath, spec: Option<&ConnectionsSpec>) -> Checked<Connections> {
    Ok(match spec {
        None => Connections::All,
        Some(ConnectionsSpec::Share(text)) if text.as_str().trim() == "all" => Connections::All,
        Some(ConnectionsSpec::Share(text)) => Connections::Share(fields::share(path, text)?),
        Some(ConnectionsSpec::Count(n)) => {
            Connections::Count(fields::count_u32(path, *n, 1, limits::CLIENTS)?)
        }
        Some(ConnectionsSpec::Clients(indices)) => {
            if indices.is_empty() {
                return Err(Invalid::value(
                    path,
                    "lists no client; leave `connections` out for all",
                ));
            }
            let mut clients = Vec::with_capacity(indices.len());
            for (i, index) in indices.iter().enumerate() {
                clients.push(fields::count_u32(
                    &path.index(i),
                    *index,
                    0,
                    limits::CLIENTS - 1,
                )?);
            }
            Connections::Clients(clients)
        }
    })
}

/// `name`, or `<kind>#<id>` when left out.
pub fn fault_name(path: &YamlPath, name: Option<&str>, kind: &str, id: usize) -> Checked<String> {
    match name {
        Some(name) => fields::label(path, name).map(|()| name.to_owned()),
        None => Ok(format!("{kind}#{id}")),
    }
}

/// Fault names scope thresholds and label the report, so two faults cannot share one.
/// `seen` holds the names before this one (a set: a scenario may list thousands).
pub fn unique_name(path: &YamlPath, name: &str, seen: &mut HashSet<String>) -> Checked<()> {
    match seen.insert(name.to_owned()) {
        false => Err(Invalid::value(
            &path.key("name"),
            format!("`{name}` names another fault already"),
        )),
        true => Ok(()),
    }
}
