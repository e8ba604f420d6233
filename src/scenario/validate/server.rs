//! `server:` — faults of the built-in server, flat maps like network faults.

use std::collections::HashSet;

use super::super::defaults;
use super::super::model::{ServerFault, ServerFaultKind, Share};
use super::super::path::YamlPath;
use super::super::spec::{ServerFaultKindSpec, ServerFaultSpec};
use super::faults::{Timing, connections, fault_name, foreign, unique_name, window};
use super::{Checked, Invalid, Run, fields};

pub fn server_faults(
    path: &YamlPath,
    specs: Option<&[ServerFaultSpec]>,
    run: &Run,
    builtin_target: bool,
) -> Checked<Vec<ServerFault>> {
    let specs = specs.unwrap_or_default();
    if !specs.is_empty() && !builtin_target {
        return Err(Invalid::key(
            path,
            "needs the built-in target; an external server is not squall's to break",
        ));
    }
    let mut faults: Vec<ServerFault> = Vec::new();
    let mut names = HashSet::new();
    for (id, spec) in specs.iter().enumerate() {
        let fault = server_fault(&path.index(id), id, spec, run)?;
        unique_name(&path.index(id), &fault.name, &mut names)?;
        faults.push(fault);
    }
    Ok(faults)
}

fn server_fault(
    path: &YamlPath,
    id: usize,
    spec: &ServerFaultSpec,
    run: &Run,
) -> Checked<ServerFault> {
    let kind_path = path.key("kind");
    let kind = *fields::required(
        &kind_path,
        spec.kind.as_ref(),
        "which fault, e.g. `kind: restart`",
    )?;
    let (name, allowed, instantaneous): (_, &[&str], _) = match kind {
        ServerFaultKindSpec::Restart => (
            "restart",
            &["close_code", "down_for", "keep_sessions"],
            true,
        ),
        ServerFaultKindSpec::RejectHandshakes => (
            "reject_handshakes",
            &["status", "retry_after", "share"],
            false,
        ),
        ServerFaultKindSpec::Close => ("close", &["code", "reason", "sessions"], true),
        ServerFaultKindSpec::AppError => ("app_error", &["message", "sessions"], true),
        ServerFaultKindSpec::Stall => ("stall", &[], false),
        ServerFaultKindSpec::AcceptClose => ("accept_close", &["code", "reason", "share"], false),
    };
    let present = [
        ("close_code", spec.close_code.is_some()),
        ("down_for", spec.down_for.is_some()),
        ("keep_sessions", spec.keep_sessions.is_some()),
        ("status", spec.status.is_some()),
        ("retry_after", spec.retry_after.is_some()),
        ("share", spec.share.is_some()),
        ("code", spec.code.is_some()),
        ("reason", spec.reason.is_some()),
        ("sessions", spec.sessions.is_some()),
        ("message", spec.message.is_some()),
    ];
    foreign(path, name, allowed, &present)?;
    let sessions = || connections(&path.key("sessions"), spec.sessions.as_ref());
    let share = || match &spec.share {
        Some(text) => fields::share(&path.key("share"), text),
        None => Ok(Share(1.0)),
    };
    let kind = match kind {
        ServerFaultKindSpec::Restart => ServerFaultKind::Restart {
            close_code: close_code(
                &path.key("close_code"),
                spec.close_code,
                defaults::RESTART_CLOSE_CODE,
            )?,
            down_for: match &spec.down_for {
                Some(text) => fields::duration(&path.key("down_for"), text)?,
                None => defaults::RESTART_DOWN_FOR,
            },
            keep_sessions: spec.keep_sessions.unwrap_or(true),
        },
        ServerFaultKindSpec::RejectHandshakes => ServerFaultKind::RejectHandshakes {
            status: match spec.status {
                Some(status @ 400..=599) => status as u16,
                Some(status) => {
                    return Err(Invalid::value(
                        &path.key("status"),
                        format!("expected an HTTP error status, 400-599 (got {status})"),
                    ));
                }
                None => defaults::REJECT_STATUS,
            },
            retry_after: fields::optional_duration(
                &path.key("retry_after"),
                spec.retry_after.as_ref(),
            )?,
            share: share()?,
        },
        ServerFaultKindSpec::Close => ServerFaultKind::Close {
            code: close_code(&path.key("code"), spec.code, defaults::CLOSE_CODE)?,
            reason: close_reason(&path.key("reason"), spec.reason.as_deref())?,
            sessions: sessions()?,
        },
        ServerFaultKindSpec::AppError => ServerFaultKind::AppError {
            message: match &spec.message {
                Some(message) if message.is_empty() => {
                    return Err(Invalid::value(&path.key("message"), "must not be empty"));
                }
                Some(message) => message.clone(),
                None => defaults::APP_ERROR_MESSAGE.into(),
            },
            sessions: sessions()?,
        },
        ServerFaultKindSpec::Stall => ServerFaultKind::Stall,
        ServerFaultKindSpec::AcceptClose => ServerFaultKind::AcceptClose {
            code: close_code(&path.key("code"), spec.code, defaults::ACCEPT_CLOSE_CODE)?,
            reason: close_reason(&path.key("reason"), spec.reason.as_deref())?,
            share: share()?,
        },
    };
    let timing = Timing {
        at: spec.at.as_ref(),
        length: spec.length.as_ref(),
        every: spec.every.as_ref(),
        stagger: None,
    };
    Ok(ServerFault {
        id,
        name: fault_name(&path.key("name"), spec.name.as_deref(), name, id)?,
        window: window(path, timing, instantaneous.then_some(name), run)?,
        kind,
    })
}

/// Codes a close frame may carry: not the reserved 1004, nor 1005, 1006 and
/// 1015, which only ever describe a close that had no frame.
pub fn is_sendable_close_code(code: u64) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

pub fn close_code(path: &YamlPath, code: Option<u64>, default: u16) -> Checked<u16> {
    match code {
        None => Ok(default),
        Some(code) if is_sendable_close_code(code) => Ok(code as u16),
        Some(code) => Err(Invalid::value(
            path,
            format!(
                "expected a close code a close frame may carry: 1000-1003, 1007-1014 or 3000-4999 (got {code})"
            ),
        )),
    }
}

/// A close frame has 125 bytes of payload, two of them the code.
pub fn close_reason(path: &YamlPath, reason: Option<&str>) -> Checked<String> {
    let reason = reason.unwrap_or_default();
    if reason.len() > 123 {
        return Err(Invalid::value(
            path,
            format!(
                "must fit a close frame: at most 123 bytes (got {})",
                reason.len()
            ),
        ));
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_close_codes() {
        for code in [1000, 1001, 1003, 1007, 1012, 1014, 3000, 4999] {
            assert!(is_sendable_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!is_sendable_close_code(code), "{code}");
        }
    }
}
