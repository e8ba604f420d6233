//! Checks shared by every part of a scenario: one value with a unit, a count, a name.
//! Each takes the path of the value so its refusal can name it, and quotes the value as
//! written (`(got 0s)`), not as parsed.

use std::time::Duration;

use super::super::defaults::limits;
use super::super::model::{Rate, Share};
use super::super::path::YamlPath;
use super::super::spec::{DurationText, RateText, ShareText, SizeText};
use super::super::units;
use super::{Checked, Invalid};

/// Any duration, up to the longest run.
pub fn duration(path: &YamlPath, text: &DurationText) -> Checked<Duration> {
    let duration = units::parse_duration(text.as_str()).map_err(|e| Invalid::value(path, e))?;
    if duration > limits::DURATION {
        return Err(Invalid::value(
            path,
            format!("must be at most 30 days (got {})", text.as_str()),
        ));
    }
    Ok(duration)
}

pub fn positive_duration(path: &YamlPath, text: &DurationText) -> Checked<Duration> {
    let parsed = duration(path, text)?;
    if parsed.is_zero() {
        return Err(Invalid::value(
            path,
            format!("must be > 0 (got {})", text.as_str()),
        ));
    }
    Ok(parsed)
}

pub fn optional_duration(
    path: &YamlPath,
    text: Option<&DurationText>,
) -> Checked<Option<Duration>> {
    text.map(|text| duration(path, text)).transpose()
}

pub fn optional_positive_duration(
    path: &YamlPath,
    text: Option<&DurationText>,
) -> Checked<Option<Duration>> {
    text.map(|text| positive_duration(path, text)).transpose()
}

/// A size in bytes, at most `max`.
pub fn size(path: &YamlPath, text: &SizeText, max: u64) -> Checked<u64> {
    let bytes = units::parse_size(text.as_str()).map_err(|e| Invalid::value(path, e))?;
    if bytes > max {
        return Err(Invalid::value(
            path,
            format!(
                "must be at most {} (got {})",
                units::format_size(max),
                text.as_str()
            ),
        ));
    }
    Ok(bytes)
}

pub fn positive_size(path: &YamlPath, text: &SizeText, max: u64) -> Checked<u64> {
    let bytes = size(path, text, max)?;
    if bytes == 0 {
        return Err(Invalid::value(
            path,
            format!("must be > 0 (got {})", text.as_str()),
        ));
    }
    Ok(bytes)
}

/// Events per second, zero allowed, up to the rate limit.
pub fn rate(path: &YamlPath, text: &RateText) -> Checked<Rate> {
    let rate = units::parse_rate(text.as_str()).map_err(|e| Invalid::value(path, e))?;
    if rate.per_second > limits::RATE_PER_SECOND {
        return Err(Invalid::value(
            path,
            format!("must be at most 1000000/s (got {})", text.as_str()),
        ));
    }
    Ok(rate)
}

pub fn positive_rate(path: &YamlPath, text: &RateText) -> Checked<Rate> {
    let parsed = rate(path, text)?;
    if parsed.per_second <= 0.0 {
        return Err(Invalid::value(
            path,
            format!("must be > 0 (got {})", text.as_str()),
        ));
    }
    Ok(parsed)
}

pub fn share(path: &YamlPath, text: &ShareText) -> Checked<Share> {
    units::parse_share(text.as_str()).map_err(|e| Invalid::value(path, e))
}

/// A probability, written like a share: `0.001` or `0.1%`.
pub fn probability(path: &YamlPath, text: &ShareText) -> Checked<f64> {
    let parsed = units::parse_share(text.as_str())
        .map_err(|error| Invalid::value(path, error.replace("at most 100%", "at most 1 (100%)")))?;
    Ok(parsed.0)
}

/// A whole number within `min..=max`.
pub fn count(path: &YamlPath, n: u64, min: u64, max: u64) -> Checked<u64> {
    if n < min {
        return Err(Invalid::value(
            path,
            format!("must be at least {min} (got {n})"),
        ));
    }
    if n > max {
        return Err(Invalid::value(
            path,
            format!("must be at most {max} (got {n})"),
        ));
    }
    Ok(n)
}

/// `count` for values stored as `u32`; every limit is below `u32::MAX`.
pub fn count_u32(path: &YamlPath, n: u64, min: u64, max: u64) -> Checked<u32> {
    let n = count(path, n, min, max.min(u64::from(u32::MAX)))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A key that must be there; a missing key points at the map that lacks it.
pub fn required<'v, T: ?Sized>(path: &YamlPath, value: Option<&'v T>, why: &str) -> Checked<&'v T> {
    value.ok_or_else(|| Invalid::key(path, format!("is required: {why}")))
}

/// The scenario's name, which also names its report directory: no path separators, no
/// leading dot, nothing invisible.
pub fn scenario_name(path: &YamlPath, name: Option<&str>) -> Checked<String> {
    let name = required(
        path,
        name,
        "it names the run and its report directory (name: my-scenario)",
    )?;
    label(path, name)?;
    let bad = |c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if name.starts_with('.') || name.contains(bad) {
        return Err(Invalid::value(
            path,
            format!(
                "may hold letters, digits, spaces, `-`, `_` and `.` (not first), as it names the report directory (got {name:?})"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// A human label (group, fault): non-empty, printable, short.
pub fn label(path: &YamlPath, name: &str) -> Checked<()> {
    if name.trim().is_empty() {
        return Err(Invalid::value(path, "must not be empty"));
    }
    if name.trim() != name {
        return Err(Invalid::value(
            path,
            format!("must not start or end with spaces (got {name:?})"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::value(
            path,
            format!("must not contain control characters (got {name:?})"),
        ));
    }
    if name.chars().count() > 100 {
        return Err(Invalid::value(path, "must be at most 100 characters long"));
    }
    Ok(())
}

/// A key that does not apply where it is.
pub fn stray(path: &YamlPath, present: bool, why: &str) -> Checked<()> {
    match present {
        true => Err(Invalid::key(path, why)),
        false => Ok(()),
    }
}
