//! `target:` — the built-in server (default) or an external `ws://`/`wss://` URL.

use super::super::defaults::{self, limits};
use super::super::model::{BuiltinTarget, ExternalTarget, Protocol, ServerMode, Target};
use super::super::path::YamlPath;
use super::super::spec::{BuiltinSpec, ModeSpec, ProtocolSpec, TargetSpec};
use super::fields;
use super::{Checked, Invalid};

pub fn target(path: &YamlPath, spec: Option<&TargetSpec>) -> Checked<Target> {
    let Some(spec) = spec else {
        return Ok(Target::Builtin(defaults::builtin_target()));
    };
    match (&spec.builtin, &spec.url) {
        (Some(_), Some(_)) => Err(Invalid::key(
            &path.key("url"),
            "`url` and `builtin` exclude each other: test the built-in server or an external one",
        )),
        (_, Some(url)) => external(path, spec, url).map(Target::External),
        (builtin, None) => {
            let only_external = "only applies to an external target (`url`)";
            fields::stray(
                &path.key("protocol"),
                spec.protocol.is_some(),
                only_external,
            )?;
            fields::stray(&path.key("headers"), spec.headers.is_some(), only_external)?;
            fields::stray(
                &path.key("subprotocols"),
                spec.subprotocols.is_some(),
                only_external,
            )?;
            fields::stray(&path.key("ca_file"), spec.ca_file.is_some(), only_external)?;
            let builtin_path = path.key("builtin");
            builtin
                .as_ref()
                .map_or_else(
                    || Ok(defaults::builtin_target()),
                    |b| self::builtin(&builtin_path, b),
                )
                .map(Target::Builtin)
        }
    }
}

fn builtin(path: &YamlPath, spec: &BuiltinSpec) -> Checked<BuiltinTarget> {
    let mut target = defaults::builtin_target();
    target.mode = match spec.mode.unwrap_or(ModeSpec::Echo) {
        ModeSpec::Echo => {
            let only_stream = "only applies to `mode: stream`";
            fields::stray(&path.key("rate"), spec.rate.is_some(), only_stream)?;
            fields::stray(&path.key("size"), spec.size.is_some(), only_stream)?;
            ServerMode::Echo
        }
        ModeSpec::Stream => ServerMode::Stream {
            rate: match &spec.rate {
                Some(text) => fields::positive_rate(&path.key("rate"), text)?,
                None => defaults::STREAM_RATE,
            },
            size_bytes: match &spec.size {
                Some(text) => fields::size(&path.key("size"), text, limits::MESSAGE_BYTES)?,
                None => defaults::STREAM_SIZE,
            },
        },
    };
    if let Some(text) = &spec.session_window {
        target.session_window = fields::positive_duration(&path.key("session_window"), text)?;
    }
    if let Some(n) = spec.replay_buffer {
        let n = fields::count(&path.key("replay_buffer"), n, 1, limits::COUNT)?;
        target.replay_buffer = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(text) = &spec.max_handshake_rate {
        let rate = fields::positive_rate(&path.key("max_handshake_rate"), text)?;
        target.max_handshake_rate = Some(rate);
    }
    Ok(target)
}

fn external(path: &YamlPath, spec: &TargetSpec, url: &str) -> Checked<ExternalTarget> {
    let url_path = path.key("url");
    let secure = check_url(url).map_err(|message| Invalid::value(&url_path, message))?;
    if spec.ca_file.is_some() && !secure {
        return Err(Invalid::key(
            &path.key("ca_file"),
            "only applies to a `wss://` URL",
        ));
    }
    let mut headers = Vec::new();
    if let Some(entries) = &spec.headers {
        for (name, value) in &entries.0 {
            let header_path = path.key("headers").key(name);
            check_header(name, value).map_err(|message| Invalid::key(&header_path, message))?;
            if headers
                .iter()
                .any(|(seen, _): &(String, String)| seen.eq_ignore_ascii_case(name))
            {
                return Err(Invalid::key(&header_path, "is set twice"));
            }
            headers.push((name.clone(), value.clone()));
        }
    }
    // Sorted, so the normalized scenario reads back identically whatever the JSON map order.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let subprotocols = spec.subprotocols.clone().unwrap_or_default();
    for (i, subprotocol) in subprotocols.iter().enumerate() {
        if subprotocol.is_empty() || !subprotocol.chars().all(is_token_char) {
            return Err(Invalid::value(
                &path.key("subprotocols").index(i),
                format!("expected a token without spaces or separators (got {subprotocol:?})"),
            ));
        }
    }
    Ok(ExternalTarget {
        url: url.to_owned(),
        protocol: match spec.protocol.unwrap_or(ProtocolSpec::Squall) {
            ProtocolSpec::Squall => Protocol::Squall,
            ProtocolSpec::Echo => Protocol::Echo,
        },
        headers,
        subprotocols,
        ca_file: spec.ca_file.clone(),
    })
}

/// Checks a `ws://` or `wss://` URL has a host and a usable port; true for `wss`.
fn check_url(url: &str) -> Result<bool, String> {
    let got = format!("(got {url:?})");
    let (secure, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else {
        return Err(format!("expected a ws:// or wss:// URL {got}"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, port)) => (host, port.strip_prefix(':')),
            None => return Err(format!("has an unclosed `[` in its host {got}")),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("has no host {got}"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("has spaces in its host {got}"));
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
    {
        return Err(format!("has a port that is not 1-65535 {got}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("must not contain spaces {got}"));
    }
    Ok(secure)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Handshake headers squall must own are refused rather than silently overridden.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(format!("is not a valid header name (got {name:?})"));
    }
    let lower = name.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "host" | "upgrade" | "connection" | "content-length"
    ) || lower.starts_with("sec-websocket-")
    {
        return Err(
            "is set by the WebSocket handshake itself; use `subprotocols` for the protocol list"
                .into(),
        );
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err("must not contain line breaks".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(check_url("ws://127.0.0.1:9000/ws"), Ok(false));
        assert_eq!(check_url("wss://example.com/path?q=1"), Ok(true));
        assert_eq!(check_url("ws://[::1]:9000"), Ok(false));
        assert_eq!(check_url("ws://user@host"), Ok(false));
        for bad in [
            "http://example.com",
            "ws://",
            "ws://:9000",
            "ws://host:0",
            "ws://host:99999",
            "ws://host:abc",
            "ws://[::1",
            "ws://ho st",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert!(check_header("X-Tenant", "acme").is_ok());
        assert!(check_header("Sec-WebSocket-Protocol", "x").is_err());
        assert!(check_header("Bad Name", "x").is_err());
        assert!(check_header("X-A", "a\r\nInjected: 1").is_err());
    }
}
