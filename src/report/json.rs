//! The `--json` result: a stable, documented schema (docs/outputs.md), versioned by
//! `schema_version`. The plan inside has the token redacted by [`crate::config::Secret`].
//!
//! Keys added after the first layout are additive (schema_version stays 1) and optional when
//! read: `summary.good/goodput/good_fraction`, `metrics.output_tokens_per_s`, `thresholds`,
//! `threshold_abort`, `stats_history`, `raw` (lossless histograms, which [`rebuild`] needs),
//! `server_metrics`, `server_metrics_errors` and `server_ttft` (`--server-metrics`).

use super::history::HistoryTick;
use super::raw::{self, RawError, RawStats};
use super::Extras;
use crate::config::Plan;
use crate::criteria::threshold::ThresholdResult;
use crate::engine::{RunResult, StopReason};
use crate::metrics::{
    FailureEntry, FailureKey, FailureKind, MetricId, MetricSummary, NameStats, RequestKind,
    TimelinePoint,
};
use crate::observe::health::GeneratorHealth;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole result document.
#[derive(Debug, Serialize, Deserialize)]
pub struct JsonResult {
    /// Layout version.
    pub schema_version: u32,
    /// Tool name and version.
    pub tool: Tool,
    /// The plan that ran (token redacted).
    pub plan: Plan,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Wall-clock duration, seconds.
    pub duration_s: f64,
    /// Why the test ended.
    pub stop_reason: StopReason,
    /// Headline figures over all request kinds.
    pub summary: Summary,
    /// LLM metrics over all request kinds.
    pub metrics: Metrics,
    /// One entry per request kind.
    pub requests: Vec<RequestRow>,
    /// Failures grouped by request kind and message.
    pub failures: Vec<FailureRow>,
    /// One point a second.
    pub timeline: Vec<TimelinePoint>,
    /// Each `--threshold`, judged at the end.
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// The threshold that stopped the test early (`--threshold-abort`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_abort: Option<ThresholdResult>,
    /// Locust's per-second stats history (what `PREFIX_stats_history.csv` holds), when recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats_history: Vec<HistoryTick>,
    /// The load generator's self-check: its CPU, its runtime's scheduling lag and a verdict
    /// on whether it, not the server, limited the test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorHealth>,
    /// Lossless statistics (HDR histograms) for `gsai-load report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawStats>,
    /// `--server-metrics`: every kept series `{url, name, labels, kind, points, rate_per_s}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_metrics: Vec<crate::observe::Series>,
    /// `--server-metrics`: failed scrapes, one entry per URL and cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_metrics_errors: Vec<crate::observe::ScrapeFailure>,
    /// The client's TTFT beside the server's own (from its TTFT histogram), when scraped.
    /// Derived from the two keys above and the statistics; `report` computes it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_ttft: Vec<super::server::TtftComparison>,
    /// `--repeat N`: `{n, asked, shown, runs: [each run's headline figures], metrics: {key:
    /// {n, mean, ci95_low, ci95_high, stddev}}}`. The rest of the document pools every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<super::repeat::Repeats>,
}

/// Tool identity.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tool {
    /// "gsai-load".
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// Headline figures.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Finished requests: successes + failures (Locust's Request Count).
    pub requests: u64,
    /// Successful requests.
    pub successes: u64,
    /// Failed requests.
    pub failures: u64,
    /// Requests cut off at stop (neither success nor failure).
    pub cancelled: u64,
    /// Open-loop arrivals dropped because `--max-concurrency` requests were in flight.
    #[serde(default)]
    pub dropped: u64,
    /// Requests that started during `--warmup` and are left out of every other figure.
    #[serde(default)]
    pub warmup_excluded: u64,
    /// failures / requests (0 when none).
    pub fail_ratio: f64,
    /// Finished requests per second over the span from first start to last end.
    pub rps: f64,
    /// Output tokens of successful requests.
    pub output_tokens: u64,
    /// Output tokens per second over the same span.
    pub output_tokens_per_s: f64,
    /// Number of successful requests whose token count came from each source.
    pub token_sources: BTreeMap<String, u64>,
    /// Successful requests that met every `--slo` (all successes when none is set).
    #[serde(default)]
    pub good: u64,
    /// Good requests per second over the same span (goodput).
    #[serde(default)]
    pub goodput: f64,
    /// good / requests: failed requests count as missing the SLO (0 when none).
    #[serde(default)]
    pub good_fraction: f64,
}

/// Every catalogue metric of a stats row, summarized in its display unit (ms for times, tokens,
/// tokens/s), under its [`crate::metrics::MetricDef::summary_key`] (`ttft_ms`, `output_tokens`,
/// `output_tokens_per_s`, `schedule_lag_ms` ...). Written as a JSON object in catalogue order;
/// read leniently: a missing key is an empty summary, an unknown key is ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub [MetricSummary; MetricId::COUNT]);

impl std::ops::Index<MetricId> for Metrics {
    type Output = MetricSummary;

    fn index(&self, id: MetricId) -> &MetricSummary {
        &self.0[id.index()]
    }
}

impl std::ops::IndexMut<MetricId> for Metrics {
    fn index_mut(&mut self, id: MetricId) -> &mut MetricSummary {
        &mut self.0[id.index()]
    }
}

impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(MetricId::COUNT))?;
        for id in MetricId::ALL {
            map.serialize_entry(id.def().summary_key, &self[id])?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut raw: BTreeMap<String, serde_json::Value> = BTreeMap::deserialize(d)?;
        let mut out = Metrics::default();
        for id in MetricId::ALL {
            if let Some(v) = raw.remove(id.def().summary_key) {
                out[id] = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
            }
        }
        Ok(out)
    }
}

/// One request kind's figures.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestRow {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// Headline figures of this kind.
    #[serde(flatten)]
    pub summary: Summary,
    /// Its metrics.
    pub metrics: Metrics,
}

/// One failures-table row.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FailureRow {
    /// HTTP method.
    pub method: String,
    /// Request name.
    pub name: String,
    /// What kind of failure (absent in files written before kinds existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FailureKind>,
    /// Message naming the cause.
    pub message: String,
    /// Occurrences.
    pub count: u64,
    /// First occurrence, seconds since the Unix epoch.
    pub first_seen_unix_s: f64,
    /// Last occurrence, seconds since the Unix epoch.
    pub last_seen_unix_s: f64,
}

/// Headline figures of a stats row.
pub fn summary(s: &NameStats) -> Summary {
    let span = s.span_s();
    let per_s = |n: u64| if span > 0.0 { n as f64 / span } else { 0.0 };
    Summary {
        requests: s.requests,
        successes: s.successes(),
        failures: s.failures,
        cancelled: s.cancelled,
        dropped: s.dropped,
        warmup_excluded: s.warmup,
        fail_ratio: if s.requests > 0 {
            s.failures as f64 / s.requests as f64
        } else {
            0.0
        },
        rps: per_s(s.requests),
        output_tokens: s.metric(MetricId::OutputTokens).sum(),
        output_tokens_per_s: per_s(s.metric(MetricId::OutputTokens).sum()),
        token_sources: s
            .token_source_counts()
            .map(|(src, n)| (src.as_str().to_string(), n))
            .collect(),
        good: s.good,
        goodput: per_s(s.good),
        good_fraction: if s.requests > 0 {
            s.good as f64 / s.requests as f64
        } else {
            0.0
        },
    }
}

/// The metrics of a stats row, each in its display unit (see [`Metrics`]).
pub fn metrics(s: &NameStats) -> Metrics {
    let mut out = Metrics::default();
    for (id, m) in s.metrics() {
        out[id] = m.summary(id.def().unit.display_scale());
    }
    out
}

fn kind_of(kinds: &[RequestKind], i: usize) -> (String, String) {
    kinds.get(i).map_or_else(
        || (String::new(), format!("#{i}")),
        |k| (k.method.clone(), k.name.clone()),
    )
}

/// Builds the JSON document of a bare result (no thresholds, no history).
pub fn build(result: &RunResult) -> JsonResult {
    build_with(result, &Extras::default())
}

/// Builds the JSON document of a result and what the run added to it.
pub fn build_with(result: &RunResult, extras: &Extras) -> JsonResult {
    let total = result.stats.total();
    JsonResult {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        plan: result.plan.clone(),
        started_unix_s: result.started_unix_s,
        duration_s: result.duration_s,
        stop_reason: result.stop_reason,
        summary: summary(&total),
        metrics: metrics(&total),
        requests: result
            .stats
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let (method, name) = kind_of(&result.kinds, i);
                RequestRow {
                    method,
                    name,
                    summary: summary(row),
                    metrics: metrics(row),
                }
            })
            .collect(),
        failures: result
            .stats
            .failures_sorted()
            .into_iter()
            .map(|(k, e)| {
                let (method, name) = kind_of(&result.kinds, k.kind);
                FailureRow {
                    method,
                    name,
                    kind: Some(k.cause),
                    message: k.message.clone(),
                    count: e.count,
                    first_seen_unix_s: e.first_seen_unix_s,
                    last_seen_unix_s: e.last_seen_unix_s,
                }
            })
            .collect(),
        timeline: result.timeline.clone(),
        thresholds: extras.thresholds.clone(),
        threshold_abort: extras.threshold_abort.clone(),
        stats_history: extras.history.clone(),
        generator: result.generator.clone(),
        raw: Some(raw::encode(&result.kinds, &result.stats)),
        server_metrics: extras.server_metrics.series.clone(),
        server_metrics_errors: extras.server_metrics.errors.clone(),
        server_ttft: super::server::comparisons(result, &extras.server_metrics),
        repeats: extras.repeats.clone(),
    }
}

/// Writes the JSON result to `path` (via a temporary file, so a crash never leaves half a file).
pub fn write(result: &RunResult, path: &Path) -> std::io::Result<()> {
    write_with(result, &Extras::default(), path)
}

/// Writes the JSON result with what the run added to it (see [`write()`]).
pub fn write_with(result: &RunResult, extras: &Extras, path: &Path) -> std::io::Result<()> {
    let doc = build_with(result, extras);
    let text = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
    super::write_atomic(path, &text)
}

/// Why a saved result could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a gsai-load JSON result.
    #[error("{path} is not a gsai-load JSON result (written with --json): {source}")]
    Json {
        /// The file.
        path: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// The layout is newer than this version.
    #[error("{path} has schema_version {found}; this gsai-load reads {SCHEMA_VERSION}: upgrade gsai-load")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
}

/// Reads a JSON result written by `--json`.
pub fn read(path: &Path) -> Result<JsonResult, ReadError> {
    let text = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let doc: JsonResult = serde_json::from_slice(&text).map_err(|source| ReadError::Json {
        path: path.display().to_string(),
        source,
    })?;
    if doc.schema_version > SCHEMA_VERSION {
        return Err(ReadError::Version {
            path: path.display().to_string(),
            found: doc.schema_version,
        });
    }
    Ok(doc)
}

/// Why a result could not be rebuilt from its JSON document.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No `raw` key: written before histograms were saved.
    #[error("the result has no 'raw' statistics (it was written by an older gsai-load): run the test again with this version")]
    NoRaw,
    /// The raw statistics are damaged.
    #[error(transparent)]
    Raw(#[from] RawError),
}

/// Rebuilds the run's result (and what the run added) from its JSON document, losslessly.
pub fn rebuild(doc: &JsonResult) -> Result<(RunResult, Extras), RebuildError> {
    let raw = doc.raw.as_ref().ok_or(RebuildError::NoRaw)?;
    let (kinds, mut stats) = raw::decode(raw)?;
    for f in &doc.failures {
        let Some(kind) = kinds
            .iter()
            .position(|k| k.method == f.method && k.name == f.name)
        else {
            continue;
        };
        stats.failures.insert(
            FailureKey {
                kind,
                cause: f
                    .kind
                    .unwrap_or_else(|| FailureKind::from_message(&f.message)),
                message: f.message.clone(),
            },
            FailureEntry {
                count: f.count,
                first_seen_unix_s: f.first_seen_unix_s,
                last_seen_unix_s: f.last_seen_unix_s,
            },
        );
    }
    let result = RunResult {
        plan: doc.plan.clone(),
        kinds,
        stats,
        timeline: doc.timeline.clone(),
        started_unix_s: doc.started_unix_s,
        duration_s: doc.duration_s,
        stop_reason: doc.stop_reason,
        generator: doc.generator.clone(),
    };
    let extras = Extras {
        thresholds: doc.thresholds.clone(),
        threshold_abort: doc.threshold_abort.clone(),
        history: doc.stats_history.clone(),
        server_metrics: crate::observe::ServerMetrics {
            series: doc.server_metrics.clone(),
            errors: doc.server_metrics_errors.clone(),
        },
        repeats: doc.repeats.clone(),
    };
    Ok((result, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn round_trip_rebuilds_the_result_and_hides_the_token() {
        let result = fixture::result();
        let extras = Extras {
            thresholds: vec!["ttft.p95<1s"
                .parse::<crate::criteria::threshold::Threshold>()
                .unwrap()
                .judge(&result.stats.total())],
            ..Extras::default()
        };
        let doc = build_with(&result, &extras);
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert!(!text.contains(fixture::TOKEN));
        let back: JsonResult = serde_json::from_str(&text).unwrap();
        let (r2, e2) = rebuild(&back).unwrap();
        assert_eq!(r2.stats, result.stats);
        assert_eq!(r2.kinds, result.kinds);
        assert_eq!(r2.timeline, result.timeline);
        assert_eq!(r2.plan.slo, result.plan.slo);
        assert_eq!(e2.thresholds, extras.thresholds);
        // The rebuilt document is the same document.
        assert_eq!(
            serde_json::to_value(build_with(&r2, &e2)).unwrap(),
            serde_json::to_value(&doc).unwrap()
        );
    }

    #[test]
    fn goodput_and_per_request_speed() {
        let result = fixture::result();
        let doc = build(&result);
        let t = result.stats.total();
        assert_eq!(doc.summary.good, t.good);
        assert!(doc.summary.good < doc.summary.successes);
        assert!((doc.summary.good_fraction - t.good as f64 / t.requests as f64).abs() < 1e-12);
        assert!(doc.summary.goodput > 0.0 && doc.summary.goodput < doc.summary.rps);
        assert!(doc.metrics[MetricId::OutputTps].count > 0);
    }

    #[test]
    fn old_documents_without_new_keys_still_read() {
        let mut v = serde_json::to_value(build(&fixture::result())).unwrap();
        for key in ["thresholds", "raw", "stats_history"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v["summary"].as_object_mut().unwrap().remove("goodput");
        let doc: JsonResult = serde_json::from_value(v).unwrap();
        assert!(matches!(rebuild(&doc), Err(RebuildError::NoRaw)));
    }
}
