//! One metric on the wire: an HDR histogram (V2 serialization, uncompressed) with its exact sum,
//! min and max, and the checks that make decoding a peer's histogram safe.
//!
//! hdrhistogram's deserializer trusts its header: it allocates the payload length the header
//! claims (up to 4 GiB from a 40-byte header) and a counts array sized by the claimed value
//! range and precision. So the header is read here first and the histogram is decoded only when
//! its payload length equals the bytes actually received, its precision is at most
//! [`MAX_HISTOGRAM_SIGFIG`] and its range at most [`MAX_HISTOGRAM_VALUE`]. Compressed
//! histograms (a zlib stream whose decompressed size nothing bounds) are refused; gsai-load
//! never sends them.

use super::protocol::as_u64;
use crate::metrics::Metric;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use rmpv::Value;

/// Most significant digits a peer's histogram may have (ours have 3). Each digit more
/// multiplies the counts array by about ten: 5 digits cost ~50 MB for one histogram.
pub const MAX_HISTOGRAM_SIGFIG: u8 = 3;
/// Largest value a peer's histogram may track: 2^40 µs is about 12.7 days (and 2^40 tokens more
/// than any completion). With 3 digits such a histogram's counts take ~254 KB.
pub const MAX_HISTOGRAM_VALUE: u64 = 1 << 40;
/// Cookie of the uncompressed V2 format (hdrhistogram's `V2_COOKIE`).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
/// Cookie, payload length, normalizing offset, digits, low, high, integer-to-double ratio.
pub const V2_HEADER_BYTES: usize = 40;

/// Why a peer's histogram is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HdrWireError {
    /// Fewer bytes than the header.
    #[error("histogram of {0} bytes is shorter than its {V2_HEADER_BYTES}-byte header")]
    Short(usize),
    /// Not an uncompressed V2 histogram.
    #[error("histogram cookie {0:#x} is not an uncompressed HDR V2 histogram")]
    Cookie(u32),
    /// The header's payload length is not what was received.
    #[error(
        "histogram header claims a {claimed_bytes}-byte payload but {received_bytes} bytes came"
    )]
    PayloadLength {
        /// The header's claim.
        claimed_bytes: u64,
        /// What follows the header.
        received_bytes: u64,
    },
    /// Precision or range beyond the limits.
    #[error("histogram of {sigfig} significant digits up to {high} exceeds the limits ({MAX_HISTOGRAM_SIGFIG} digits, {MAX_HISTOGRAM_VALUE})")]
    Range {
        /// Claimed significant digits.
        sigfig: u32,
        /// Claimed highest trackable value.
        high: u64,
    },
    /// hdrhistogram refused the content.
    #[error("histogram: {0}")]
    Decode(String),
    /// The metric is not `[bin, sum, min, max]`.
    #[error("metric is not [bin, sum, min, max]")]
    Shape,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// Checks a serialized histogram's header against the bytes received and the limits, without
/// allocating anything.
pub fn check_header(bytes: &[u8]) -> Result<(), HdrWireError> {
    if bytes.len() < V2_HEADER_BYTES {
        return Err(HdrWireError::Short(bytes.len()));
    }
    let cookie = be_u32(bytes, 0);
    if cookie != V2_COOKIE {
        return Err(HdrWireError::Cookie(cookie));
    }
    let claimed_bytes = u64::from(be_u32(bytes, 4));
    let received_bytes = (bytes.len() - V2_HEADER_BYTES) as u64;
    if claimed_bytes != received_bytes {
        return Err(HdrWireError::PayloadLength {
            claimed_bytes,
            received_bytes,
        });
    }
    let sigfig = be_u32(bytes, 12);
    let high = be_u64(bytes, 24);
    if sigfig > u32::from(MAX_HISTOGRAM_SIGFIG) || high > MAX_HISTOGRAM_VALUE {
        return Err(HdrWireError::Range { sigfig, high });
    }
    Ok(())
}

/// Decodes a histogram a peer sent, after [`check_header`].
pub fn decode_histogram(bytes: &[u8]) -> Result<Histogram<u64>, HdrWireError> {
    check_header(bytes)?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| HdrWireError::Decode(e.to_string()))
}

/// A metric as `[bin, sum, min, max]`.
pub fn encode_metric(m: &Metric) -> Value {
    let mut bytes = Vec::new();
    // Serializing into a Vec only fails for histograms wider than the format allows, which
    // ours (3 digits, auto-resized u64) are not; an empty value is then read as "no samples".
    let _ = V2Serializer::new().serialize(m.histogram(), &mut bytes);
    Value::Array(vec![
        Value::Binary(bytes),
        Value::from(m.sum()),
        Value::from(m.min().unwrap_or(0)),
        Value::from(m.max().unwrap_or(0)),
    ])
}

/// Reads a metric a peer sent (see [`decode_histogram`]).
pub fn decode_metric(v: &Value) -> Result<Metric, HdrWireError> {
    let parts = v.as_array().ok_or(HdrWireError::Shape)?;
    let (Some(Value::Binary(bytes)), Some(sum), Some(min), Some(max)) = (
        parts.first(),
        parts.get(1).and_then(as_u64),
        parts.get(2).and_then(as_u64),
        parts.get(3).and_then(as_u64),
    ) else {
        return Err(HdrWireError::Shape);
    };
    Ok(Metric::from_parts(decode_histogram(bytes)?, sum, min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized(values: &[u64]) -> Vec<u8> {
        let mut m = Metric::new();
        for v in values {
            m.record(*v);
        }
        let Value::Array(parts) = encode_metric(&m) else {
            unreachable!()
        };
        match &parts[0] {
            Value::Binary(b) => b.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn our_histograms_round_trip() {
        let mut m = Metric::new();
        for v in [1, 150, 2_000, 45_000, 3_600_000_000] {
            m.record(v);
        }
        let back = decode_metric(&encode_metric(&m)).unwrap();
        assert_eq!(back, m);
        check_header(&serialized(&[])).unwrap();
    }

    /// The 4 GiB claim: a 40-byte header whose payload length says u32::MAX is refused before
    /// hdrhistogram sees it (it would allocate the claim, then read).
    #[test]
    fn a_payload_length_claim_beyond_the_bytes_received_is_refused() {
        let mut b = serialized(&[5, 10]);
        let real = (b.len() - V2_HEADER_BYTES) as u64;
        b[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            check_header(&b),
            Err(HdrWireError::PayloadLength {
                claimed_bytes: u64::from(u32::MAX),
                received_bytes: real,
            })
        );
        assert!(decode_histogram(&b).is_err());
        // Also a claim of fewer bytes than came (trailing junk).
        let mut b = serialized(&[5, 10]);
        b.push(0);
        assert!(matches!(
            check_header(&b),
            Err(HdrWireError::PayloadLength { .. })
        ));
    }

    #[test]
    fn precision_range_and_format_are_bounded() {
        let b = serialized(&[7]);
        let mut digits = b.clone();
        digits[12..16].copy_from_slice(&5u32.to_be_bytes());
        assert!(matches!(
            check_header(&digits),
            Err(HdrWireError::Range { sigfig: 5, .. })
        ));
        let mut wide = b.clone();
        wide[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            check_header(&wide),
            Err(HdrWireError::Range { .. })
        ));
        let mut compressed = b.clone();
        compressed[0..4].copy_from_slice(&(0x1c84_9304u32 | 0x10).to_be_bytes());
        assert!(matches!(
            check_header(&compressed),
            Err(HdrWireError::Cookie(_))
        ));
        assert_eq!(check_header(&b[..10]), Err(HdrWireError::Short(10)));
        // A value beyond the limit is not trackable within it: refused as a whole.
        assert!(decode_histogram(&serialized(&[MAX_HISTOGRAM_VALUE * 4])).is_err());
    }
}
