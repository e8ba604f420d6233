//! From the serde mirror to the checked [`Scenario`]: defaults filled, units parsed,
//! every rule checked. A refusal names the YAML path it is about and says what was
//! expected and what was got; `from_str` then finds that path's line in the text.
//!
//! Checks run in the order of the file, so the first error reported is the first one a
//! reader meets.

mod clients;
mod faults;
mod fields;
mod recovery;
mod server;
mod target;
mod thresholds;

pub use server::is_sendable_close_code;

use std::time::Duration;

use super::defaults;
use super::model::{ReportFormat, ReportSettings, Scenario, Target};
use super::path::{Anchor, YamlPath};
use super::spec::{FormatSpec, ReportSpec, ScenarioSpec};
use super::units;

/// A value or key the scenario cannot have, before it is placed in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: YamlPath,
    /// Point at the key (stray or missing keys) or at the value (bad values).
    pub anchor: Anchor,
    pub message: String,
}

impl Invalid {
    /// The value at `path` is wrong.
    pub fn value(path: &YamlPath, message: impl Into<String>) -> Self {
        Self {
            path: path.clone(),
            anchor: Anchor::Value,
            message: message.into(),
        }
    }

    /// The key at `path` should not be there, or is missing (then its map is pointed at).
    pub fn key(path: &YamlPath, message: impl Into<String>) -> Self {
        Self {
            path: path.clone(),
            anchor: Anchor::Key,
            message: message.into(),
        }
    }
}

pub type Checked<T> = Result<T, Invalid>;

/// The run's length, and how to quote it in messages (as written, when it was).
pub struct Run {
    pub length: Duration,
    pub text: String,
}

pub fn scenario(spec: &ScenarioSpec) -> Checked<Scenario> {
    let root = YamlPath::root();
    let name = fields::scenario_name(&root.key("name"), spec.name.as_deref())?;
    let seed = spec.seed.unwrap_or(defaults::SEED);
    let duration_path = root.key("duration");
    let duration = spec
        .duration
        .as_ref()
        .map(|text| fields::positive_duration(&duration_path, text))
        .transpose()?;
    let target = target::target(&root.key("target"), spec.target.as_ref())?;
    let groups = clients::groups(spec)?;
    let duration = clients::run_duration(spec, duration, &groups)?;
    let run = Run {
        length: duration,
        text: spec.duration.as_ref().map_or_else(
            || units::format_duration(duration),
            |text| text.as_str().to_owned(),
        ),
    };
    let faults = faults::network_faults(&root.key("faults"), spec.faults.as_deref(), &run)?;
    let server = server::server_faults(
        &root.key("server"),
        spec.server.as_deref(),
        &run,
        matches!(target, Target::Builtin(_)),
    )?;
    let thresholds = thresholds::thresholds(
        &root.key("thresholds"),
        spec.thresholds.as_ref(),
        &thresholds::Faults {
            network: &faults,
            server: &server,
        },
    )?;
    let report = report(&root.key("report"), spec.report.as_ref())?;
    Ok(Scenario {
        name,
        seed,
        duration,
        target,
        groups,
        faults,
        server,
        thresholds,
        report,
    })
}

/// The faults of a faults file (`squall proxy --faults`): a list at the document's root,
/// with no end of run to be within.
pub fn faults_only(specs: &[super::spec::FaultSpec]) -> Checked<Vec<super::model::NetworkFault>> {
    let run = Run {
        length: Duration::MAX,
        text: "unbounded".into(),
    };
    faults::network_faults(&YamlPath::root(), Some(specs), &run)
}

/// One fault alone (the proxy's control API): a map at the document's root.
pub fn fault_only(spec: &super::spec::FaultSpec) -> Checked<super::model::NetworkFault> {
    let run = Run {
        length: Duration::MAX,
        text: "unbounded".into(),
    };
    faults::single(spec, &run)
}

/// JSON is always written (every other format renders from it), so it is always listed.
fn report(path: &YamlPath, spec: Option<&ReportSpec>) -> Checked<ReportSettings> {
    let mut settings = defaults::report();
    let Some(spec) = spec else {
        return Ok(settings);
    };
    if let Some(dir) = &spec.dir {
        if dir.as_os_str().is_empty() {
            return Err(Invalid::value(&path.key("dir"), "must not be empty"));
        }
        settings.dir = dir.clone();
    }
    if let Some(formats) = &spec.formats {
        settings.formats = vec![ReportFormat::Json];
        for format in formats {
            let format = match format {
                FormatSpec::Json => ReportFormat::Json,
                FormatSpec::Md => ReportFormat::Md,
                FormatSpec::Html => ReportFormat::Html,
                FormatSpec::Junit => ReportFormat::Junit,
            };
            if !settings.formats.contains(&format) {
                settings.formats.push(format);
            }
        }
    }
    Ok(settings)
}
