//! The scenario: YAML in, checked [`Scenario`] out.
//!
//! Parse, then validate into another type: the text is read into a serde mirror of the
//! YAML (`spec`, unknown keys refused) and checked into the [`Scenario`] the rest of the
//! crate sees (`validate`, defaults filled, units parsed). Every refusal is a
//! [`ScenarioError`] that names the file, line, column and YAML path:
//! `scenarios/x.yaml:14:7: faults[1].for: must be > 0 (got 0s)`.
//!
//! - `model`: the checked scenario.
//! - `spec`: the serde mirror of the YAML.
//! - `validate`: spec to model, one file per part of the scenario.
//! - `units`: durations, sizes, rates and shares, both ways.
//! - `yaml`: the only caller of the YAML parser: parsing, and finding a path's position.
//! - `messages`: serde's messages in the scenario's words, with "did you mean".
//! - `error`: [`ScenarioError`].
//! - `normalize`: [`Scenario::to_json`], the scenario with every default spelled out.
//! - `overrides`: `--seed`, `--duration`, `--clients`.
//! - [`defaults`]: every default and limit, in one place.

pub mod defaults;
mod error;
mod messages;
mod model;
mod normalize;
mod overrides;
mod path;
mod spec;
mod units;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::ScenarioError;
pub use messages::suggest;
pub use model::*;
pub use path::Position;
pub use units::parse_size;
pub use validate::is_sendable_close_code;

use defaults::limits;
use path::{Anchor, YamlPath};

/// Reads and checks the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    from_str(&read_text(path, &origin)?, &origin)
}

/// Reads and checks a faults file (`squall proxy --faults`): a YAML list of faults in
/// exactly the syntax of a scenario's `faults:`, checked the same way. There is no end of
/// run, so any `at` is fine and a fault without `for` lasts until the proxy stops.
pub fn load_faults(path: &Path) -> Result<Vec<NetworkFault>, ScenarioError> {
    let origin = path.display().to_string();
    faults_from_str(&read_text(path, &origin)?, &origin)
}

/// Parses and checks a list of faults (see [`load_faults`]); an empty text is no fault.
pub fn faults_from_str(text: &str, origin: &str) -> Result<Vec<NetworkFault>, ScenarioError> {
    Ok(parse_faults(text, origin)?
        .into_iter()
        .map(|(_, fault)| fault)
        .collect())
}

/// As [`faults_from_str`], for faults added to a running proxy: a fault without `name`
/// gets an empty one for the proxy to give (not one after its place in this list).
pub fn faults_to_add(text: &str, origin: &str) -> Result<Vec<NetworkFault>, ScenarioError> {
    Ok(parse_faults(text, origin)?
        .into_iter()
        .map(|(named, mut fault)| {
            if !named {
                fault.name.clear();
            }
            fault
        })
        .collect())
}

/// Each fault of a list, with whether it was named.
fn parse_faults(text: &str, origin: &str) -> Result<Vec<(bool, NetworkFault)>, ScenarioError> {
    if text.len() as u64 > limits::FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    if is_blank(text) {
        return Ok(Vec::new());
    }
    let specs = yaml::parse::<Vec<spec::FaultSpec>>(text).map_err(|rejection| {
        let (path, message) = messages::rewrite(rejection.path, &rejection.message);
        ScenarioError::invalid(origin, rejection.position, path, message)
    })?;
    let faults = validate::faults_only(&specs).map_err(|invalid| {
        let position = position_of(text, &invalid.path, invalid.anchor);
        ScenarioError::invalid(origin, position, &invalid.path, invalid.message)
    })?;
    Ok(specs.iter().map(|s| s.name.is_some()).zip(faults).collect())
}

/// Parses and checks one fault (a map in the syntax of a scenario's `faults:` entries, as
/// YAML or JSON), for the proxy's control API. Without a `name`, the name is left empty
/// for the proxy to give.
pub fn fault_from_str(text: &str, origin: &str) -> Result<NetworkFault, ScenarioError> {
    if text.len() as u64 > limits::FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    let spec = yaml::parse::<spec::FaultSpec>(text).map_err(|rejection| {
        let (path, message) = messages::rewrite(rejection.path, &rejection.message);
        ScenarioError::invalid(origin, rejection.position, path, message)
    })?;
    let mut fault = validate::fault_only(&spec).map_err(|invalid| {
        let position = position_of(text, &invalid.path, invalid.anchor);
        ScenarioError::invalid(origin, position, &invalid.path, invalid.message)
    })?;
    if spec.name.is_none() {
        fault.name.clear();
    }
    Ok(fault)
}

/// The text of a scenario or faults file, checked to be a readable, UTF-8 file of sane size.
fn read_text(path: &Path, origin: &str) -> Result<String, ScenarioError> {
    let origin = origin.to_owned();
    let metadata = std::fs::metadata(path)
        .map_err(|error| ScenarioError::file(&origin, format!("cannot read the file: {error}")))?;
    if metadata.is_dir() {
        return Err(ScenarioError::file(
            &origin,
            "is a directory, not a scenario file",
        ));
    }
    if metadata.len() > limits::FILE_BYTES {
        return Err(too_large(&origin, metadata.len()));
    }
    let bytes = std::fs::read(path)
        .map_err(|error| ScenarioError::file(&origin, format!("cannot read the file: {error}")))?;
    // The file may have grown since `metadata`.
    if bytes.len() as u64 > limits::FILE_BYTES {
        return Err(too_large(&origin, bytes.len() as u64));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(ScenarioError::file(
            &origin,
            "is UTF-16 text; scenarios are UTF-8 YAML (save it as UTF-8)",
        ));
    }
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        ScenarioError::file(
            &origin,
            format!("is not UTF-8 text (invalid byte at offset {offset}); scenarios are YAML"),
        )
    })
}

fn too_large(origin: &str, bytes: u64) -> ScenarioError {
    ScenarioError::file(
        origin,
        format!(
            "is {} bytes; a scenario is at most 1 MiB (is this the right file?)",
            bytes
        ),
    )
}

/// Parses and checks scenario text; `origin` names it in errors (usually the file name).
pub fn from_str(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    if text.len() as u64 > limits::FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    if is_blank(text) {
        return Err(ScenarioError::file(
            origin,
            "is empty; the smallest scenario is `name:` plus `clients:`",
        ));
    }
    let spec = yaml::parse::<spec::ScenarioSpec>(text).map_err(|rejection| {
        let (path, mut message) = messages::rewrite(rejection.path, &rejection.message);
        if let Some(hint) = rejection.position.and_then(|p| scoped_key_hint(text, p)) {
            message += hint;
        }
        ScenarioError::invalid(origin, rejection.position, path, message)
    })?;
    validate::scenario(&spec).map_err(|invalid| {
        let position = position_of(text, &invalid.path, invalid.anchor);
        ScenarioError::invalid(origin, position, &invalid.path, invalid.message)
    })
}

/// `reconnect_latency{after: cut}:` unquoted is broken YAML (the `: ` inside the braces
/// ends the key); say how to write it.
fn scoped_key_hint(text: &str, at: Position) -> Option<&'static str> {
    let line = text.lines().nth(at.line.checked_sub(1)?)?;
    let key = line.trim_start().split_once('{')?.1;
    (key.trim_start().starts_with("after") || key.trim_start().starts_with("during")).then_some(
        "; a scoped threshold's key must be quoted, like \"reconnect_latency{after: cut}\", or written without the space: reconnect_latency{after:cut}",
    )
}

/// Only comments, blank lines and document markers (after any byte-order mark).
fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

/// The position of the key or value at `path`; for a key that is not there, the
/// position of the nearest enclosing node that is.
fn position_of(text: &str, path: &YamlPath, anchor: Anchor) -> Option<Position> {
    let mut path = path.clone();
    let mut anchor = anchor;
    loop {
        if let Some(position) = yaml::locate(text, &path, anchor) {
            return Some(position);
        }
        path = path.parent()?;
        anchor = Anchor::Value;
    }
}
