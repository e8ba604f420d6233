//! Reports: `report.json` is the source of truth; `report.md`, `report.html` and
//! `junit.xml` render from it alone. Files are written atomically (temporary file, then
//! rename), so a crash never leaves a half-written report.

pub mod compare;
pub mod html;
pub mod junit;
mod merge;
pub use merge::merge;
pub mod markdown;
mod model;
mod peaks;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use model::*;

use crate::scenario::ReportFormat;

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a squall report: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// `reports/<name>-<UTC timestamp>/`, made unique if two runs start in the same second.
pub fn run_dir(parent: &Path, name: &str, started: SystemTime) -> Result<PathBuf, ReportError> {
    let stamp: String = humantime::format_rfc3339_seconds(started)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut dir = parent.join(format!("{safe}-{stamp}"));
    let mut n = 2;
    while dir.exists() {
        dir = parent.join(format!("{safe}-{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Write {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Writes `report.json` and every other format asked for; returns the files written.
pub fn write_all(
    dir: &Path,
    report: &Report,
    formats: &[ReportFormat],
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let json = serde_json::to_vec_pretty(report).map_err(|e| ReportError::Write {
        path: dir.join("report.json"),
        source: std::io::Error::other(e),
    })?;
    written.push(write_atomic(&dir.join("report.json"), &json)?);
    for f in formats {
        match f {
            ReportFormat::Json => {}
            ReportFormat::Md => written.push(write_atomic(
                &dir.join("report.md"),
                markdown::render(report).as_bytes(),
            )?),
            ReportFormat::Html => written.push(write_atomic(
                &dir.join("report.html"),
                html::render(report).as_bytes(),
            )?),
            ReportFormat::Junit => written.push(write_atomic(
                &dir.join("junit.xml"),
                junit::render(report).as_bytes(),
            )?),
        }
    }
    Ok(written)
}

/// Reads a `report.json`.
pub fn read(path: &Path) -> Result<Report, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.into(),
        source,
    })?;
    let report: Report = serde_json::from_str(&text).map_err(|e| ReportError::Invalid {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if report.schema != SCHEMA {
        return Err(ReportError::Invalid {
            path: path.into(),
            reason: format!("schema is {:?}, expected {SCHEMA:?}", report.schema),
        });
    }
    Ok(report)
}

/// Writes `bytes` to a sibling temporary file and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    let tmp = path.with_extension("tmp");
    let err = |source| ReportError::Write {
        path: path.into(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(path.to_path_buf())
}
