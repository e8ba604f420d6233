//! Values the YAML may write in more than one form (`clients: 50`, a map or a list;
//! `size: 256B` or `{ min, max }`), and values with units, kept as text.
//!
//! Each form is picked by the YAML node's shape, never by trial and error (no
//! `#[serde(untagged)]` on the way in), so a mistake inside a form is reported with that
//! form's own message and path rather than "did not match any variant".

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::GroupSpec;

/// A scalar taken as text, whatever YAML typed it as: `0` and `0.25` are as welcome as
/// `5s`, and `units` decides what they mean.
struct ScalarText(&'static str);

impl Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        Ok(n.to_string())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        Ok(n.to_string())
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
        Ok(n.to_string())
    }
}

macro_rules! humane_text {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ScalarText($expecting)).map($name)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

humane_text!(
    /// `250ms`, `5s`, `2m`, or `0`.
    DurationText,
    "a duration like 250ms, 5s or 2m"
);
humane_text!(
    /// `512B`, `4KiB`, or bare bytes.
    SizeText,
    "a size like 512B or 4KiB"
);
humane_text!(
    /// `10/s`, `0.2/s`, `30/m`.
    RateText,
    "a rate like 10/s or 30/m"
);
humane_text!(
    /// Bytes per time: `64KiB/s`.
    BandwidthText,
    "a bandwidth like 64KiB/s"
);
humane_text!(
    /// `25%` or `0.25`.
    ShareText,
    "a share like 25% or 0.25"
);
humane_text!(
    /// A close code or HTTP status, or an inclusive range of them: `1013`, `"500-599"`.
    CodeText,
    "a code like 1013 or a range like \"4000-4499\""
);

/// `clients:` as a bare count, one map, or a list of groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ClientsSpec {
    Count(u64),
    Group(Box<GroupSpec>),
    Groups(Vec<GroupSpec>),
}

impl<'de> Deserialize<'de> for ClientsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = ClientsSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a client count, a map with `count` or `stages`, or a list of groups")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ClientsSpec, E> {
                Ok(ClientsSpec::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ClientsSpec, E> {
                let n =
                    u64::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))?;
                Ok(ClientsSpec::Count(n))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ClientsSpec, A::Error> {
                let group = GroupSpec::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ClientsSpec::Group(Box::new(group)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ClientsSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(ClientsSpec::Groups)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// A message size: fixed, or uniform between `min` and `max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    Fixed(SizeText),
    Range(SizeRangeSpec),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeRangeSpec {
    pub min: Option<SizeText>,
    pub max: Option<SizeText>,
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like 256B, or { min: 64B, max: 4KiB }")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Fixed(SizeText(text.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<SizeSpec, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<SizeSpec, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<SizeSpec, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SizeSpec, A::Error> {
                SizeRangeSpec::deserialize(MapAccessDeserializer::new(map)).map(SizeSpec::Range)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// Which connections (or server sessions) a fault touches: `25%`, `0.25`, a count `10`,
/// a list of client indices `[0, 3, 7]`, or `all`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ConnectionsSpec {
    /// A share, or the word `all`.
    Share(ShareText),
    Count(u64),
    Clients(Vec<u64>),
}

impl<'de> Deserialize<'de> for ConnectionsSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = ConnectionsSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all`, a share like 25%, a count like 10, or a list of client indices")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ConnectionsSpec, E> {
                Ok(ConnectionsSpec::Share(ShareText(text.to_owned())))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<ConnectionsSpec, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ConnectionsSpec, E> {
                Ok(ConnectionsSpec::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ConnectionsSpec, E> {
                let n =
                    u64::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))?;
                Ok(ConnectionsSpec::Count(n))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ConnectionsSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(ConnectionsSpec::Clients)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// One threshold: `"p(99) < 3s"` or `{ threshold: "...", abort_on_fail: true }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Expr(String),
    Full(ThresholdFullSpec),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFullSpec {
    pub threshold: Option<String>,
    pub abort_on_fail: Option<bool>,
    pub delay_abort_eval: Option<DurationText>,
}

/// The thresholds of one metric: a list, or a single one without the brackets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThresholdRules {
    One(ThresholdSpec),
    Many(Vec<ThresholdSpec>),
}

impl<'de> Deserialize<'de> for ThresholdSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = ThresholdSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ONE_THRESHOLD)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ThresholdSpec, E> {
                Ok(ThresholdSpec::Expr(text.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdSpec, A::Error> {
                ThresholdFullSpec::deserialize(MapAccessDeserializer::new(map))
                    .map(ThresholdSpec::Full)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

const ONE_THRESHOLD: &str =
    "a threshold like \"p(99) < 3s\" or { threshold: ..., abort_on_fail: true }";

impl<'de> Deserialize<'de> for ThresholdRules {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = ThresholdRules;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{ONE_THRESHOLD}, or a list of them")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ThresholdRules, E> {
                Ok(ThresholdRules::One(ThresholdSpec::Expr(text.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdRules, A::Error> {
                let full = ThresholdFullSpec::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ThresholdRules::One(ThresholdSpec::Full(full)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ThresholdRules, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(ThresholdRules::Many)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// A map whose keys are the user's (metric names, header names), in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Shape<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Shape(PhantomData))
    }
}

impl<V: Serialize> Serialize for Entries<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
