//! `clients:` (a count, one map, or a list of groups), each group's load shape and its
//! messages; and the run's duration, which stages may imply.
//!
//! A group's `messages` and `recovery` start from the top-level ones (or the defaults)
//! and override them key by key, so two groups can differ in one setting only.

use std::collections::HashSet;
use std::time::Duration;

use super::super::defaults::{self, limits};
use super::super::model::{ClientGroup, Load, MessageKind, Messages, RecoveryPolicy, Stage};
use super::super::path::YamlPath;
use super::super::spec::{
    ClientsSpec, GroupSpec, MessageKindSpec, MessagesSpec, ScenarioSpec, SizeSpec, StageSpec,
};
use super::super::units;
use super::{Checked, Invalid, fields, recovery};

pub fn groups(spec: &ScenarioSpec) -> Checked<Vec<ClientGroup>> {
    let root = YamlPath::root();
    let base_messages = match &spec.messages {
        Some(messages) => self::messages(&root.key("messages"), defaults::messages(), messages)?,
        None => defaults::messages(),
    };
    let base_recovery = match &spec.recovery {
        Some(policy) => recovery::apply(&root.key("recovery"), &defaults::recovery(), policy)?,
        None => defaults::recovery(),
    };
    let base = Base {
        messages: base_messages,
        recovery: &base_recovery,
    };
    let path = root.key("clients");
    let clients = fields::required(
        &path,
        spec.clients.as_ref(),
        "how many virtual clients, e.g. `clients: 100` or `clients: { count: 100 }`",
    )?;
    let groups = match clients {
        ClientsSpec::Count(n) => vec![ClientGroup {
            name: defaults::GROUP_NAME.into(),
            load: Load::Count(fields::count_u32(&path, *n, 0, limits::CLIENTS)?),
            connect_rate: None,
            messages: base.messages,
            recovery: base.recovery.clone(),
        }],
        ClientsSpec::Group(group_spec) => vec![group(&path, group_spec, &base, false)?],
        ClientsSpec::Groups(list) => {
            if list.is_empty() {
                return Err(Invalid::value(&path, "needs at least one group"));
            }
            let mut groups: Vec<ClientGroup> = Vec::with_capacity(list.len());
            let mut names = HashSet::new();
            for (i, group_spec) in list.iter().enumerate() {
                let group_path = path.index(i);
                let group = group(&group_path, group_spec, &base, true)?;
                if !names.insert(group.name.clone()) {
                    return Err(Invalid::value(
                        &group_path.key("name"),
                        format!("`{}` names another group already", group.name),
                    ));
                }
                groups.push(group);
            }
            groups
        }
    };
    let total: u64 = groups.iter().map(|g| u64::from(g.peak_clients())).sum();
    if total == 0 {
        return Err(Invalid::value(
            &path,
            "must bring at least 1 client (got 0)",
        ));
    }
    if total > limits::CLIENTS {
        return Err(Invalid::value(
            &path,
            format!(
                "must be at most {} clients in all (got {total})",
                limits::CLIENTS
            ),
        ));
    }
    Ok(groups)
}

struct Base<'a> {
    messages: Messages,
    recovery: &'a RecoveryPolicy,
}

fn group(path: &YamlPath, spec: &GroupSpec, base: &Base, in_list: bool) -> Checked<ClientGroup> {
    let name = match &spec.name {
        Some(name) => {
            fields::label(&path.key("name"), name)?;
            name.clone()
        }
        None if in_list => {
            return Err(Invalid::key(
                &path.key("name"),
                "is required for each group of a list: it labels the group in the report",
            ));
        }
        None => defaults::GROUP_NAME.into(),
    };
    let load = match (spec.count, &spec.stages) {
        (Some(_), Some(_)) => {
            return Err(Invalid::key(
                &path.key("stages"),
                "`count` and `stages` exclude each other: a fixed count or a ramp",
            ));
        }
        (Some(n), None) => Load::Count(fields::count_u32(
            &path.key("count"),
            n,
            0,
            limits::CLIENTS,
        )?),
        (None, Some(stages)) => Load::Stages(self::stages(&path.key("stages"), stages)?),
        (None, None) => {
            return Err(Invalid::key(
                &path.key("count"),
                "is required (or `stages`): how many clients this group runs",
            ));
        }
    };
    let connect_rate = spec
        .connect_rate
        .as_ref()
        .map(|text| fields::positive_rate(&path.key("connect_rate"), text))
        .transpose()?;
    let messages = match &spec.messages {
        Some(messages) => self::messages(&path.key("messages"), base.messages, messages)?,
        None => base.messages,
    };
    let recovery = match &spec.recovery {
        Some(policy) => recovery::apply(&path.key("recovery"), base.recovery, policy)?,
        None => base.recovery.clone(),
    };
    Ok(ClientGroup {
        name,
        load,
        connect_rate,
        messages,
        recovery,
    })
}

fn stages(path: &YamlPath, specs: &[StageSpec]) -> Checked<Vec<Stage>> {
    if specs.is_empty() {
        return Err(Invalid::value(
            path,
            "needs at least one stage, like [{ duration: 10s, target: 100 }]",
        ));
    }
    let mut stages = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let stage_path = path.index(i);
        let duration_path = stage_path.key("duration");
        let duration = fields::required(
            &duration_path,
            spec.duration.as_ref(),
            "how long this stage ramps",
        )?;
        let target_path = stage_path.key("target");
        let target = fields::required(
            &target_path,
            spec.target.as_ref(),
            "the client count this stage ramps to",
        )?;
        stages.push(Stage {
            duration: fields::duration(&duration_path, duration)?,
            target: fields::count_u32(&target_path, *target, 0, limits::CLIENTS)?,
        });
    }
    if stages.iter().all(|stage| stage.target == 0) {
        return Err(Invalid::value(
            path,
            "never brings a client: every target is 0",
        ));
    }
    Ok(stages)
}

/// Applies the keys `spec` sets over `base`.
fn messages(path: &YamlPath, base: Messages, spec: &MessagesSpec) -> Checked<Messages> {
    let mut messages = base;
    if let Some(text) = &spec.rate {
        messages.rate = fields::rate(&path.key("rate"), text)?;
    }
    match &spec.size {
        None => {}
        Some(SizeSpec::Fixed(text)) => {
            let bytes = fields::size(&path.key("size"), text, limits::MESSAGE_BYTES)?;
            (messages.min_bytes, messages.max_bytes) = (bytes, bytes);
        }
        Some(SizeSpec::Range(range)) => {
            let size_path = path.key("size");
            let min_path = size_path.key("min");
            let max_path = size_path.key("max");
            let min = fields::required(&min_path, range.min.as_ref(), "the smallest message size")?;
            let max = fields::required(&max_path, range.max.as_ref(), "the largest message size")?;
            let min_bytes = fields::size(&min_path, min, limits::MESSAGE_BYTES)?;
            let max_bytes = fields::size(&max_path, max, limits::MESSAGE_BYTES)?;
            if max_bytes < min_bytes {
                return Err(Invalid::value(
                    &max_path,
                    format!("must be >= min ({}) (got {})", min.as_str(), max.as_str()),
                ));
            }
            (messages.min_bytes, messages.max_bytes) = (min_bytes, max_bytes);
        }
    }
    if let Some(kind) = spec.kind {
        messages.kind = match kind {
            MessageKindSpec::Text => MessageKind::Text,
            MessageKindSpec::Binary => MessageKind::Binary,
        };
    }
    Ok(messages)
}

/// The run's length: `duration` when set (and long enough for every group's stages), else
/// as long as the longest stages, else the default.
pub fn run_duration(
    spec: &ScenarioSpec,
    duration: Option<Duration>,
    groups: &[ClientGroup],
) -> Checked<Duration> {
    let longest = groups
        .iter()
        .enumerate()
        .filter_map(|(i, group)| match &group.load {
            Load::Stages(stages) => Some((i, stages.iter().map(|s| s.duration).sum::<Duration>())),
            Load::Count(_) => None,
        })
        .max_by_key(|(_, length)| *length);
    let Some((group_index, stages_length)) = longest else {
        return Ok(duration.unwrap_or(defaults::DURATION));
    };
    let stages_path = match &spec.clients {
        Some(ClientsSpec::Groups(_)) => YamlPath::root().key("clients").index(group_index),
        _ => YamlPath::root().key("clients"),
    }
    .key("stages");
    match duration {
        Some(duration) if stages_length > duration => Err(Invalid::value(
            &stages_path,
            format!(
                "last {}, longer than the run (duration {}); leave `duration` out to run as long as the stages",
                units::format_duration(stages_length),
                units::format_duration(duration),
            ),
        )),
        Some(duration) => Ok(duration),
        None if stages_length.is_zero() => Err(Invalid::value(
            &stages_path,
            "last 0s in all: give a stage a duration, or set `duration`",
        )),
        None if stages_length > limits::DURATION => Err(Invalid::value(
            &stages_path,
            format!(
                "last {} in all, more than 30 days",
                units::format_duration(stages_length)
            ),
        )),
        None => Ok(stages_length),
    }
}
