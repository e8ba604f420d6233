//! Property tests of the codec: it never panics, it round-trips, it catches bit flips.

use bytes::Bytes;
use proptest::prelude::*;

use super::strategies::frame;
use crate::protocol::{DecodeError, HEADER_LEN, decode, encode};

proptest! {
    /// Whatever arrives, decode answers with a value.
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&Bytes::from(bytes));
    }

    /// Random bytes almost never pass the CRC, so also feed it sealed frames with a
    /// plausible header and an arbitrary body: that reaches the header and JSON checks.
    #[test]
    fn decode_never_panics_past_the_crc(
        ty in 0u8..8,
        flags in prop_oneof![0u8..4, any::<u8>()],
        seq in prop_oneof![Just(0u64), Just(1u64), any::<u64>()],
        ack in any::<u64>(),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..128),
            "\\{.{0,100}\\}".prop_map(String::into_bytes),
        ],
    ) {
        let mut buf = vec![1, ty, flags, 0];
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&ack.to_be_bytes());
        buf.extend_from_slice(&body);
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        if let Err(e) = decode(&Bytes::from(buf)) {
            prop_assert!(!e.is_corruption(), "a sealed frame is never corrupt: {e}");
        }
    }

    #[test]
    fn encode_then_decode_is_identity(frame in frame()) {
        let bytes = encode(&frame);
        prop_assert!(bytes.len() >= HEADER_LEN + 4);
        prop_assert_eq!(decode(&bytes).unwrap(), frame);
    }

    /// CRC-32C catches every single-bit error, and it is checked first, so a flipped bit
    /// anywhere (header, body or the CRC itself) is reported as corruption.
    #[test]
    fn a_flipped_bit_anywhere_is_detected(frame in frame(), position in any::<proptest::sample::Index>()) {
        let mut bytes = encode(&frame).to_vec();
        let bit = position.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let result = decode(&Bytes::from(bytes));
        prop_assert!(matches!(result, Err(DecodeError::Crc { .. })), "bit {}: {:?}", bit, result);
    }
}
