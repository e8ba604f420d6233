//! Toxiproxy's toxics, as its clients send them, mapped onto squall's network faults.
//!
//! | toxic | attributes | squall fault |
//! | --- | --- | --- |
//! | `latency` | `latency`, `jitter` (ms) | `latency` (uniform jitter, as Toxiproxy) |
//! | `bandwidth` | `rate` (KB/s) | `bandwidth`, `rate × 1000` B/s; 0 is refused |
//! | `slow_close` | `delay` (ms) | `slow_close` |
//! | `timeout` | `timeout` (ms) | `blackhole`; > 0: `close_after` that long |
//! | `reset_peer` | `timeout` (ms) | `blackhole` with `reset_after` that long (0: at once) |
//! | `slicer` | `average_size`, `size_variation` (B), `delay` (µs) | `slicer` |
//! | `limit_data` | `bytes` | `limit_data`; 0 is refused |
//!
//! `stream` (default `downstream`) is the fault's `direction`; `toxicity` (default 1) is
//! its `connections` as a share: each connection is in or out by a draw from the seed and
//! its id, once, however often toxics are added or changed (Toxiproxy re-rolls per link on
//! every change). The fault is named like the toxic (default `<type>_<stream>`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::scenario::{
    Connections, Direction, Distribution, NetworkFault, NetworkFaultKind, Share, Window,
};

/// A toxic as the API keeps and shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub name: String,
    pub kind: String,
    pub stream: String,
    pub toxicity: f64,
    pub attributes: Map<String, Value>,
}

/// A toxic as a client sends it: everything optional (an update sends only what changes).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToxicInput {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub stream: Option<String>,
    pub toxicity: Option<f64>,
    pub attributes: Option<Map<String, Value>>,
}

/// Why a toxic was refused: a 400 with this message.
#[derive(Debug, Clone, PartialEq)]
pub struct BadToxic(pub String);

/// The attributes each type takes, with Toxiproxy's defaults.
fn defaults(kind: &str) -> Option<&'static [(&'static str, i64)]> {
    Some(match kind {
        "latency" => &[("latency", 0), ("jitter", 0)],
        "bandwidth" => &[("rate", 0)],
        "slow_close" => &[("delay", 0)],
        "timeout" => &[("timeout", 0)],
        "reset_peer" => &[("timeout", 0)],
        "slicer" => &[("average_size", 0), ("size_variation", 0), ("delay", 0)],
        "limit_data" => &[("bytes", 0)],
        _ => return None,
    })
}

impl Toxic {
    /// A new toxic from a create call.
    pub fn create(input: ToxicInput) -> Result<Toxic, BadToxic> {
        let kind = input
            .kind
            .ok_or_else(|| BadToxic("invalid toxic type: `type` is missing".into()))?;
        let defaults = defaults(&kind).ok_or_else(|| {
            BadToxic(format!(
                "invalid toxic type `{kind}` (squall knows latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data)"
            ))
        })?;
        // Go's client sends `"name": ""` and may leave `stream` out: both take the default.
        let stream = input
            .stream
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "downstream".into());
        let mut attributes: Map<String, Value> = defaults
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        for (k, v) in input.attributes.unwrap_or_default() {
            attributes.insert(k, v);
        }
        let toxic = Toxic {
            name: input
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("{kind}_{stream}")),
            kind,
            stream,
            toxicity: input.toxicity.unwrap_or(1.0),
            attributes,
        };
        toxic.fault()?;
        Ok(toxic)
    }

    /// This toxic changed by an update call: toxicity and attributes merge in; the rest
    /// stays.
    pub fn update(&self, input: ToxicInput) -> Result<Toxic, BadToxic> {
        let mut next = self.clone();
        if let Some(t) = input.toxicity {
            next.toxicity = t;
        }
        if let Some(stream) = input.stream.filter(|s| !s.is_empty()) {
            next.stream = stream;
        }
        for (k, v) in input.attributes.unwrap_or_default() {
            next.attributes.insert(k, v);
        }
        next.fault()?;
        Ok(next)
    }

    /// Toxiproxy's JSON for it.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        })
    }

    /// The squall fault it stands for.
    pub fn fault(&self) -> Result<NetworkFault, BadToxic> {
        let direction = match self.stream.as_str() {
            "upstream" => Direction::Upstream,
            "downstream" => Direction::Downstream,
            _ => {
                return Err(BadToxic(
                    "stream was invalid, can be either upstream or downstream".into(),
                ));
            }
        };
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(BadToxic(format!(
                "toxicity must be from 0 to 1 (got {})",
                self.toxicity
            )));
        }
        let connections = if self.toxicity >= 1.0 {
            Connections::All
        } else {
            Connections::Share(Share(self.toxicity))
        };
        let ms = |key: &str| self.number(key).map(Duration::from_millis);
        let kind = match self.kind.as_str() {
            "latency" => NetworkFaultKind::Latency {
                latency: ms("latency")?,
                jitter: ms("jitter")?,
                distribution: Distribution::Uniform,
            },
            "bandwidth" => match self.number("rate")? {
                0 => {
                    return Err(BadToxic(
                        "bandwidth rate must be > 0 KB/s (squall does not stall through a zero rate; a `timeout` toxic blackholes)".into(),
                    ));
                }
                rate => NetworkFaultKind::Bandwidth {
                    bytes_per_second: rate.saturating_mul(1000),
                    shared: false,
                },
            },
            "slow_close" => NetworkFaultKind::SlowClose {
                delay: ms("delay")?,
            },
            "timeout" => NetworkFaultKind::Blackhole {
                close_after: Some(ms("timeout")?).filter(|d| !d.is_zero()),
                reset_after: None,
            },
            "reset_peer" => NetworkFaultKind::Blackhole {
                close_after: None,
                reset_after: Some(ms("timeout")?),
            },
            "slicer" => {
                let average_size = self.number("average_size")?;
                let size_variation = self.number("size_variation")?;
                if average_size == 0 || size_variation >= average_size {
                    return Err(BadToxic(
                        "slicer needs average_size > 0 and size_variation below it".into(),
                    ));
                }
                NetworkFaultKind::Slicer {
                    average_size,
                    size_variation,
                    delay: Duration::from_micros(self.number("delay")?),
                }
            }
            "limit_data" => match self.number("bytes")? {
                0 => return Err(BadToxic("limit_data bytes must be > 0".into())),
                bytes => NetworkFaultKind::LimitData { bytes },
            },
            other => return Err(BadToxic(format!("invalid toxic type `{other}`"))),
        };
        Ok(NetworkFault {
            id: 0,
            name: self.name.clone(),
            kind,
            direction,
            connections,
            window: Window {
                at: Duration::ZERO,
                length: None,
                every: None,
                stagger: Duration::ZERO,
            },
        })
    }

    /// A whole, non-negative attribute (clients send `100` or `100.0`).
    fn number(&self, key: &str) -> Result<u64, BadToxic> {
        let value = self.attributes.get(key).cloned().unwrap_or(json!(0));
        let n = value
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| {
                BadToxic(format!(
                    "attribute `{key}` must be a number >= 0 (got {value})"
                ))
            })?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: &str) -> Result<Toxic, BadToxic> {
        Toxic::create(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn each_toxic_maps_onto_its_fault() {
        let t = create(r#"{"type":"latency","attributes":{"latency":100,"jitter":10.0}}"#).unwrap();
        assert_eq!(
            (t.name.as_str(), t.stream.as_str(), t.toxicity),
            ("latency_downstream", "downstream", 1.0)
        );
        let f = t.fault().unwrap();
        assert_eq!(f.direction, Direction::Downstream);
        assert_eq!(f.connections, Connections::All);
        assert_eq!(
            f.kind,
            NetworkFaultKind::Latency {
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(10),
                distribution: Distribution::Uniform
            }
        );
        let kinds = [
            (
                r#"{"type":"bandwidth","attributes":{"rate":64}}"#,
                NetworkFaultKind::Bandwidth {
                    bytes_per_second: 64_000,
                    shared: false,
                },
            ),
            (
                r#"{"type":"timeout","attributes":{"timeout":0}}"#,
                NetworkFaultKind::Blackhole {
                    close_after: None,
                    reset_after: None,
                },
            ),
            (
                r#"{"type":"timeout","attributes":{"timeout":500}}"#,
                NetworkFaultKind::Blackhole {
                    close_after: Some(Duration::from_millis(500)),
                    reset_after: None,
                },
            ),
            (
                r#"{"type":"reset_peer","attributes":{"timeout":0}}"#,
                NetworkFaultKind::Blackhole {
                    close_after: None,
                    reset_after: Some(Duration::ZERO),
                },
            ),
            (
                r#"{"type":"slow_close","attributes":{"delay":250}}"#,
                NetworkFaultKind::SlowClose {
                    delay: Duration::from_millis(250),
                },
            ),
            (
                r#"{"type":"slicer","attributes":{"average_size":64,"size_variation":8,"delay":100}}"#,
                NetworkFaultKind::Slicer {
                    average_size: 64,
                    size_variation: 8,
                    delay: Duration::from_micros(100),
                },
            ),
            (
                r#"{"type":"limit_data","attributes":{"bytes":1024}}"#,
                NetworkFaultKind::LimitData { bytes: 1024 },
            ),
        ];
        for (json, kind) in kinds {
            assert_eq!(create(json).unwrap().fault().unwrap().kind, kind, "{json}");
        }
    }

    #[test]
    fn stream_toxicity_and_updates() {
        let t = create(r#"{"name":"up","type":"latency","stream":"upstream","toxicity":0.25,"attributes":{"latency":5}}"#).unwrap();
        let f = t.fault().unwrap();
        assert_eq!((f.name.as_str(), f.direction), ("up", Direction::Upstream));
        assert_eq!(f.connections, Connections::Share(Share(0.25)));
        let u = t
            .update(serde_json::from_str(r#"{"attributes":{"jitter":3}}"#).unwrap())
            .unwrap();
        assert_eq!(u.attributes["latency"], json!(5), "kept");
        assert_eq!(u.attributes["jitter"], json!(3));
        assert_eq!(u.toxicity, 0.25);
        assert_eq!(u.to_json()["type"], "latency");
    }

    #[test]
    fn bad_toxics_are_refused() {
        for json in [
            r#"{"type":"nope"}"#,
            r#"{"attributes":{}}"#,
            r#"{"type":"latency","stream":"sideways"}"#,
            r#"{"type":"latency","toxicity":1.5}"#,
            r#"{"type":"latency","attributes":{"latency":-1}}"#,
            r#"{"type":"latency","attributes":{"latency":"fast"}}"#,
            r#"{"type":"bandwidth","attributes":{"rate":0}}"#,
            r#"{"type":"slicer","attributes":{"average_size":4,"size_variation":4}}"#,
            r#"{"type":"limit_data"}"#,
        ] {
            assert!(create(json).is_err(), "{json}");
        }
    }
}
