//! The lossless statistics inside the JSON result (its `raw` key): every row's counters and each
//! metric's HDR histogram (hdrhistogram V2 format, base64) with the exact count, sum, min and max,
//! so `gsai-load report` rebuilds percentiles, CSVs and the HTML from a saved result exactly as the
//! run would have written them.

use crate::metrics::{Metric, MetricId, NameStats, RequestKind, StatsSet};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How histograms are encoded; written into the document so readers can check.
pub const ENCODING: &str = "hdrhistogram-v2+base64";

/// Why raw statistics could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The document uses an encoding this version does not read.
    #[error("raw.encoding is '{0}', but this gsai-load reads only '{ENCODING}'")]
    Encoding(String),
    /// A histogram is not valid base64.
    #[error("raw histogram {metric} of '{row}' is not valid base64: {source}")]
    Base64 {
        /// Row name.
        row: String,
        /// Metric key.
        metric: String,
        /// Cause.
        source: base64::DecodeError,
    },
    /// A histogram is not a valid V2 histogram.
    #[error("raw histogram {metric} of '{row}' is not a valid HDR histogram: {source}")]
    Histogram {
        /// Row name.
        row: String,
        /// Metric key.
        metric: String,
        /// Cause.
        source: hdrhistogram::serialization::DeserializeError,
    },
}

/// One metric: its histogram and exact figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawMetric {
    /// Number of samples.
    pub count: u64,
    /// Exact sum.
    pub sum: u64,
    /// Exact smallest sample.
    pub min: u64,
    /// Exact largest sample.
    pub max: u64,
    /// The histogram, V2-serialized and base64-encoded.
    pub hdr: String,
}

/// One stats row, losslessly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawRow {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// Finished requests.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Cancelled at stop.
    pub cancelled: u64,
    /// Open-loop arrivals dropped (no free slot).
    #[serde(default)]
    pub dropped: u64,
    /// Requests excluded by the warm-up.
    #[serde(default)]
    pub warmup: u64,
    /// Successes that met every SLO.
    pub good: u64,
    /// Response bytes of finished requests.
    pub content_bytes: u64,
    /// Requests per token-count source (`usage`, `tokenizer`, `events`).
    pub token_sources: BTreeMap<String, u64>,
    /// Earliest request start, µs since the Unix epoch (0 = none).
    pub first_start_unix_us: u64,
    /// Latest request end, µs since the Unix epoch (0 = none).
    pub last_end_unix_us: u64,
    /// Non-empty metrics by their catalogue key ([`MetricId::key`]: `response_time_us`,
    /// `ttft_us`, ...); a missing key is an empty metric, an unknown one is ignored.
    pub metrics: BTreeMap<String, RawMetric>,
}

/// All rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawStats {
    /// [`ENCODING`].
    pub encoding: String,
    /// One entry per request kind, in the order of the document's `requests`.
    pub rows: Vec<RawRow>,
}

/// Encodes a histogram as V2 + base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail for I/O reasons, and our histograms fit the format.
    if V2Serializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    BASE64.encode(bytes)
}

fn encode_metric(m: &Metric) -> RawMetric {
    RawMetric {
        count: m.count(),
        sum: m.sum(),
        min: m.min().unwrap_or(0),
        max: m.max().unwrap_or(0),
        hdr: encode_histogram(m.histogram()),
    }
}

fn encode_row(kind: Option<&RequestKind>, i: usize, s: &NameStats) -> RawRow {
    RawRow {
        method: kind.map_or_else(String::new, |k| k.method.clone()),
        name: kind.map_or_else(|| format!("#{i}"), |k| k.name.clone()),
        requests: s.requests,
        failures: s.failures,
        cancelled: s.cancelled,
        dropped: s.dropped,
        warmup: s.warmup,
        good: s.good,
        content_bytes: s.content_bytes,
        token_sources: s
            .token_source_counts()
            .map(|(src, n)| (src.as_str().to_string(), n))
            .collect(),
        first_start_unix_us: s.first_start_unix_us,
        last_end_unix_us: s.last_end_unix_us,
        metrics: s
            .metrics()
            .filter(|(_, m)| m.count() > 0)
            .map(|(id, m)| (id.key().to_string(), encode_metric(m)))
            .collect(),
    }
}

/// The raw form of every row of `stats`.
pub fn encode(kinds: &[RequestKind], stats: &StatsSet) -> RawStats {
    RawStats {
        encoding: ENCODING.to_string(),
        rows: stats
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| encode_row(kinds.get(i), i, row))
            .collect(),
    }
}

fn decode_metric(row: &str, key: &str, raw: &RawMetric) -> Result<Metric, RawError> {
    let bytes = BASE64.decode(&raw.hdr).map_err(|source| RawError::Base64 {
        row: row.to_string(),
        metric: key.to_string(),
        source,
    })?;
    let hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|source| RawError::Histogram {
            row: row.to_string(),
            metric: key.to_string(),
            source,
        })?;
    Ok(Metric::from_parts(hist, raw.sum, raw.min, raw.max))
}

/// Rebuilds the request kinds and rows (the failures table is rebuilt from the document's
/// `failures`, see [`super::json`]). Unknown metric keys are ignored, for forward compatibility.
pub fn decode(raw: &RawStats) -> Result<(Vec<RequestKind>, StatsSet), RawError> {
    if raw.encoding != ENCODING {
        return Err(RawError::Encoding(raw.encoding.clone()));
    }
    let mut kinds = Vec::with_capacity(raw.rows.len());
    let mut set = StatsSet::new(raw.rows.len());
    for (r, s) in raw.rows.iter().zip(set.rows.iter_mut()) {
        kinds.push(RequestKind {
            method: r.method.clone(),
            name: r.name.clone(),
        });
        s.requests = r.requests;
        s.failures = r.failures;
        s.cancelled = r.cancelled;
        s.dropped = r.dropped;
        s.warmup = r.warmup;
        s.good = r.good;
        s.content_bytes = r.content_bytes;
        for (src, n) in crate::metrics::TokenSource::ALL
            .into_iter()
            .map(|src| (src, r.token_sources.get(src.as_str()).copied().unwrap_or(0)))
        {
            s.token_sources[src.index()] = n;
        }
        s.first_start_unix_us = r.first_start_unix_us;
        s.last_end_unix_us = r.last_end_unix_us;
        for id in MetricId::ALL {
            if let Some(m) = r.metrics.get(id.key()) {
                *s.metric_mut(id) = decode_metric(&r.name, id.key(), m)?;
            }
        }
    }
    Ok((kinds, set))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::sample;

    #[test]
    fn round_trip_is_lossless() {
        let (kinds, set) = sample();
        let raw = encode(&kinds, &set);
        let json = serde_json::to_string(&raw).unwrap();
        let back: RawStats = serde_json::from_str(&json).unwrap();
        let (kinds2, set2) = decode(&back).unwrap();
        assert_eq!(kinds2, kinds);
        assert_eq!(set2.rows, set.rows);
    }

    /// Every catalogue metric survives the raw form, each under its key.
    #[test]
    fn round_trip_keeps_every_catalogue_metric() {
        let (kinds, mut set) = sample();
        for id in MetricId::ALL {
            set.rows[0].metric_mut(id).record(1_000 + id.index() as u64);
        }
        let raw = encode(&kinds, &set);
        for id in MetricId::ALL {
            assert!(raw.rows[0].metrics.contains_key(id.key()), "{}", id.key());
        }
        let json = serde_json::to_string(&raw).unwrap();
        let (_, back) = decode(&serde_json::from_str(&json).unwrap()).unwrap();
        for id in MetricId::ALL {
            assert_eq!(
                back.rows[0].metric(id),
                set.rows[0].metric(id),
                "{}",
                id.key()
            );
        }
    }

    /// Keys written by earlier versions are today's keys: an old result still loads.
    #[test]
    fn keys_of_older_result_files_still_load() {
        for key in [
            "response_time_us",
            "connect_us",
            "ttfb_us",
            "ttfe_us",
            "ttft_us",
            "e2e_us",
            "tpot_us",
            "itl_us",
            "output_tokens",
            "output_tps_milli",
            "schedule_lag_us",
            "ttft_intended_us",
            "e2e_intended_us",
        ] {
            assert!(MetricId::from_key(key).is_some(), "{key}");
        }
    }

    #[test]
    fn refuses_bad_data_naming_it() {
        let (kinds, set) = sample();
        let mut raw = encode(&kinds, &set);
        raw.rows[0].metrics.get_mut("ttft_us").unwrap().hdr = "not base64!".into();
        let e = decode(&raw).unwrap_err().to_string();
        assert!(
            e.contains("ttft_us") && e.contains("/api/chat/completions"),
            "{e}"
        );
        raw.rows[0].metrics.get_mut("ttft_us").unwrap().hdr = BASE64.encode(b"nope");
        assert!(decode(&raw)
            .unwrap_err()
            .to_string()
            .contains("not a valid HDR"));
        raw.encoding = "other".into();
        assert!(matches!(decode(&raw), Err(RawError::Encoding(_))));
    }
}
