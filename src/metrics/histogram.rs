//! One bounded HDR histogram with a fixed unit and range, its summary and its portable
//! serialized form (V2 + deflate, base64), so two reports merge exactly.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Microsecond histograms span 1 µs to 1 h; longer samples saturate at the top.
pub const MAX_MICROS: u64 = 3_600_000_000;
/// Count histograms (retransmits per message, attempts per reconnect) span 1 to 10⁶.
pub const MAX_COUNT: u64 = 1_000_000;
/// Three significant digits: 0.1 % resolution at every magnitude.
const SIGFIG: u8 = 3;

/// A histogram with the bounds every squall histogram of its unit shares, so any two can
/// be added.
pub fn new(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, SIGFIG).expect("static histogram bounds are valid")
}

/// The figures a report shows for one histogram, plus the histogram itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// The histogram, HdrHistogram V2 + deflate, base64.
    pub hdr: String,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        let count = h.len();
        let q = |x: f64| {
            if count == 0 {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        Summary {
            count,
            min: if count == 0 { 0 } else { h.min() },
            mean: if count == 0 {
                0.0
            } else {
                (h.mean() * 10.0).round() / 10.0
            },
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: if count == 0 { 0 } else { h.max() },
            hdr: encode(h),
        }
    }
}

/// Serializes `h` as V2 + deflate, then base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Serializing into a Vec only fails on histograms too large to describe, which the
    // fixed bounds above rule out.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HdrHistogram V2 blob: {0}")]
    Hdr(String),
}

/// Reads back what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Histogram<u64>, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| DecodeError::Hdr(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_summary() {
        let mut h = new(MAX_MICROS);
        for v in [1u64, 10, 100, 1000, 10_000] {
            h.record(v).unwrap();
        }
        h.saturating_record(u64::MAX);
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        let s = Summary::of(&h);
        assert_eq!(s.count, 6);
        assert_eq!(s.min, 1);
        assert!(s.max >= MAX_MICROS);
    }

    #[test]
    fn empty_summary_is_zero() {
        let s = Summary::of(&new(MAX_COUNT));
        assert_eq!((s.count, s.min, s.p99, s.max), (0, 0, 0, 0));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode("not base64 !!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }
}
