//! `recovery:` — backoff, heartbeat, retransmit, outbox, give-up limits, timeouts and the
//! `on_error` rules, applied key by key over a base policy.

use super::super::defaults::limits;
use super::super::model::{
    BackoffKind, ErrorAction, ErrorClass, ErrorMatch, ErrorRule, Jitter, Overflow, RecoveryPolicy,
};
use super::super::path::YamlPath;
use super::super::spec::{
    BackoffKindSpec, BackoffSpec, CodeText, ErrorClassSpec, ErrorRuleSpec, JitterSpec,
    OverflowSpec, RecoverySpec,
};
use super::super::{messages, units};
use super::{Checked, Invalid, fields};

/// `base` with every key `spec` sets applied, checked as a whole. `on_error`, a list,
/// replaces the base's rules rather than extending them.
pub fn apply(
    path: &YamlPath,
    base: &RecoveryPolicy,
    spec: &RecoverySpec,
) -> Checked<RecoveryPolicy> {
    let mut policy = base.clone();
    if let Some(backoff) = &spec.backoff {
        apply_backoff(&path.key("backoff"), &mut policy, backoff)?;
    }
    if let Some(heartbeat) = &spec.heartbeat {
        let path = path.key("heartbeat");
        if let Some(text) = &heartbeat.interval {
            policy.heartbeat.interval = fields::positive_duration(&path.key("interval"), text)?;
        }
        if let Some(text) = &heartbeat.timeout {
            policy.heartbeat.timeout = fields::positive_duration(&path.key("timeout"), text)?;
        }
    }
    if let Some(retransmit) = &spec.retransmit {
        let path = path.key("retransmit");
        if let Some(text) = &retransmit.ack_timeout {
            policy.retransmit.ack_timeout =
                fields::positive_duration(&path.key("ack_timeout"), text)?;
        }
        if let Some(n) = retransmit.max_in_flight {
            policy.retransmit.max_in_flight =
                fields::count_u32(&path.key("max_in_flight"), n, 1, limits::COUNT)?;
        }
    }
    if let Some(outbox) = &spec.outbox {
        let path = path.key("outbox");
        if let Some(n) = outbox.max_messages {
            policy.outbox.max_messages =
                fields::count_u32(&path.key("max_messages"), n, 1, limits::COUNT)?;
        }
        if let Some(text) = &outbox.max_bytes {
            policy.outbox.max_bytes =
                fields::positive_size(&path.key("max_bytes"), text, limits::OUTBOX_BYTES)?;
        }
        if let Some(overflow) = outbox.overflow {
            policy.outbox.overflow = match overflow {
                OverflowSpec::Block => Overflow::Block,
                OverflowSpec::Fail => Overflow::Fail,
                OverflowSpec::DropOldest => Overflow::DropOldest,
            };
        }
    }
    if let Some(n) = spec.max_attempts {
        policy.max_attempts = Some(fields::count_u32(
            &path.key("max_attempts"),
            n,
            1,
            limits::COUNT,
        )?);
    }
    if let Some(text) = &spec.max_elapsed {
        policy.max_elapsed = Some(fields::positive_duration(&path.key("max_elapsed"), text)?);
    }
    if let Some(text) = &spec.connect_timeout {
        policy.connect_timeout = fields::positive_duration(&path.key("connect_timeout"), text)?;
    }
    if let Some(text) = &spec.handshake_timeout {
        policy.handshake_timeout = fields::positive_duration(&path.key("handshake_timeout"), text)?;
    }
    if let Some(text) = &spec.min_uptime {
        policy.min_uptime = fields::duration(&path.key("min_uptime"), text)?;
    }
    if let Some(rules) = &spec.on_error {
        let path = path.key("on_error");
        policy.on_error = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| error_rule(&path.index(i), rule))
            .collect::<Checked<_>>()?;
    }
    Ok(policy)
}

fn apply_backoff(path: &YamlPath, policy: &mut RecoveryPolicy, spec: &BackoffSpec) -> Checked<()> {
    let backoff = &mut policy.backoff;
    if let Some(kind) = spec.kind {
        backoff.kind = match kind {
            BackoffKindSpec::Constant => BackoffKind::Constant,
            BackoffKindSpec::Exponential => BackoffKind::Exponential,
            BackoffKindSpec::Decorrelated => BackoffKind::Decorrelated,
        };
    }
    if let Some(text) = &spec.initial {
        backoff.initial = fields::positive_duration(&path.key("initial"), text)?;
    }
    if let Some(text) = &spec.max {
        backoff.max = fields::positive_duration(&path.key("max"), text)?;
    }
    if let Some(multiplier) = spec.multiplier {
        if !(1.0..=100.0).contains(&multiplier) {
            return Err(Invalid::value(
                &path.key("multiplier"),
                format!("must be between 1 and 100 (got {multiplier})"),
            ));
        }
        backoff.multiplier = multiplier;
    }
    if let Some(jitter) = spec.jitter {
        backoff.jitter = match jitter {
            JitterSpec::None => Jitter::None,
            JitterSpec::Full => Jitter::Full,
            JitterSpec::Equal => Jitter::Equal,
        };
    }
    // A constant backoff waits `initial` every time; `max` does not apply to it.
    if backoff.kind != BackoffKind::Constant && backoff.max < backoff.initial {
        let (initial, max) = (
            units::format_duration(backoff.initial),
            units::format_duration(backoff.max),
        );
        // Blame the key this map set: the other one may come from the defaults.
        return Err(if spec.max.is_some() || spec.initial.is_none() {
            Invalid::value(
                &path.key("max"),
                format!("must be >= initial ({initial}) (got {max})"),
            )
        } else {
            Invalid::value(
                &path.key("initial"),
                format!("must be <= max ({max}) (got {initial})"),
            )
        });
    }
    Ok(())
}

fn error_rule(path: &YamlPath, spec: &ErrorRuleSpec) -> Checked<ErrorRule> {
    let mut matchers = Vec::new();
    if let Some(text) = &spec.close_code {
        let key = path.key("close_code");
        let (from, to) = code_range(&key, text, 1000..=4999, "a close code (1000-4999)")?;
        matchers.push(("close_code", ErrorMatch::CloseCode { from, to }));
    }
    if let Some(text) = &spec.http_status {
        let key = path.key("http_status");
        let (from, to) = code_range(&key, text, 100..=599, "an HTTP status (100-599)")?;
        matchers.push(("http_status", ErrorMatch::HttpStatus { from, to }));
    }
    if let Some(class) = spec.class {
        matchers.push((
            "class",
            ErrorMatch::Class(match class {
                ErrorClassSpec::Connection => ErrorClass::Connection,
                ErrorClassSpec::Data => ErrorClass::Data,
                ErrorClassSpec::Application => ErrorClass::Application,
            }),
        ));
    }
    let matches = match matchers.as_slice() {
        [] => {
            return Err(Invalid::value(
                path,
                "needs one matcher: `close_code`, `http_status` or `class`",
            ));
        }
        [(_, matcher)] => matcher.clone(),
        [(first, _), (second, _), ..] => {
            return Err(Invalid::key(
                &path.key(second),
                format!(
                    "a rule matches on one thing only, and this one has `{first}` already; write two rules"
                ),
            ));
        }
    };
    let action_path = path.key("action");
    let action = fields::required(
        &action_path,
        spec.action.as_deref(),
        "retry, fatal or \"retry_after 5s\"",
    )?;
    Ok(ErrorRule {
        matches,
        action: error_action(&action_path, action)?,
    })
}

/// `1013` or `"4000-4499"`, inclusive, within `allowed`.
fn code_range(
    path: &YamlPath,
    text: &CodeText,
    allowed: std::ops::RangeInclusive<u16>,
    what: &str,
) -> Checked<(u16, u16)> {
    let text = text.as_str().trim();
    let bad = || {
        Invalid::value(
            path,
            format!("expected {what}, or a range like \"4000-4499\" (got {text})"),
        )
    };
    let parse = |part: &str| {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| allowed.contains(c))
    };
    let (from, to) = match text.split_once('-') {
        Some((from, to)) => (parse(from).ok_or_else(bad)?, parse(to).ok_or_else(bad)?),
        None => {
            let code = parse(text).ok_or_else(bad)?;
            (code, code)
        }
    };
    if from > to {
        return Err(Invalid::value(
            path,
            format!("the range must go upwards (got {text})"),
        ));
    }
    Ok((from, to))
}

fn error_action(path: &YamlPath, text: &str) -> Checked<ErrorAction> {
    let text = text.trim();
    match text {
        "retry" => return Ok(ErrorAction::Retry),
        "fatal" => return Ok(ErrorAction::Fatal),
        _ => {}
    }
    if let Some(delay) = text.strip_prefix("retry_after") {
        let delay = delay.trim();
        let duration = units::parse_duration(delay).map_err(|error| {
            Invalid::value(path, format!("`retry_after` takes a duration: {error}"))
        })?;
        if duration > limits::DURATION {
            return Err(Invalid::value(
                path,
                format!("must be at most 30 days (got {delay})"),
            ));
        }
        return Ok(ErrorAction::RetryAfter(duration));
    }
    let word = text.split_whitespace().next().unwrap_or_default();
    let mut message = format!("unknown action {text:?}");
    if let Some(best) = messages::suggest(word, &["retry", "fatal", "retry_after"]) {
        message += &format!("; did you mean `{best}`?");
    }
    message += " (expected retry, fatal or \"retry_after 5s\")";
    Err(Invalid::value(path, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges() {
        let path = YamlPath::root();
        let code = |text: &str| code_range(&path, &CodeText(text.into()), 1000..=4999, "a code");
        assert_eq!(code("1013"), Ok((1013, 1013)));
        assert_eq!(code("4000-4499"), Ok((4000, 4499)));
        assert_eq!(code(" 4000 - 4499 "), Ok((4000, 4499)));
        for bad in ["", "x", "999", "5000", "4499-4000", "-1", "1000-", "70000"] {
            assert!(code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions() {
        let path = YamlPath::root();
        assert_eq!(error_action(&path, "retry"), Ok(ErrorAction::Retry));
        assert_eq!(error_action(&path, "fatal"), Ok(ErrorAction::Fatal));
        assert_eq!(
            error_action(&path, "retry_after 5s"),
            Ok(ErrorAction::RetryAfter(std::time::Duration::from_secs(5)))
        );
        assert!(error_action(&path, "retry_after").is_err());
        let error = error_action(&path, "retyr").unwrap_err();
        assert_eq!(
            error.message,
            "unknown action \"retyr\"; did you mean `retry`? (expected retry, fatal or \"retry_after 5s\")"
        );
    }
}
