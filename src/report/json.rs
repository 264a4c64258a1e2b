//! The `--json` result: a stable, documented schema (docs/json-schema.md), versioned by
//! `schema_version`. The plan inside has the token redacted by [`crate::config::Secret`].

use crate::config::Plan;
use crate::engine::{RunResult, StopReason};
use crate::metrics::{MetricSummary, NameStats, RequestKind, TimelinePoint};
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
}

/// The LLM metrics, each summarized.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Time to first byte (response headers), ms.
    pub ttfb_ms: MetricSummary,
    /// Time to first SSE event, ms.
    pub ttfe_ms: MetricSummary,
    /// Time to first token, ms.
    pub ttft_ms: MetricSummary,
    /// End-to-end latency of successful requests, ms.
    pub e2e_ms: MetricSummary,
    /// Time per output token after the first, ms.
    pub tpot_ms: MetricSummary,
    /// Inter-token latency (every gap, pooled), ms.
    pub itl_ms: MetricSummary,
    /// Output tokens per successful request.
    pub output_tokens: MetricSummary,
    /// Locust's response time (every finished request, failures included), ms.
    pub response_time_ms: MetricSummary,
    /// New-connection setup time, ms.
    pub connect_ms: MetricSummary,
    /// Open loop: actual − intended start, ms.
    #[serde(default)]
    pub schedule_lag_ms: MetricSummary,
    /// Open loop: TTFT measured from the intended start (no coordinated omission), ms.
    #[serde(default)]
    pub ttft_from_intended_ms: MetricSummary,
    /// Open loop: E2E measured from the intended start, ms.
    #[serde(default)]
    pub e2e_from_intended_ms: MetricSummary,
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
        output_tokens: s.output_tokens.sum(),
        output_tokens_per_s: per_s(s.output_tokens.sum()),
        token_sources: s
            .token_source_counts()
            .map(|(src, n)| (src.as_str().to_string(), n))
            .collect(),
    }
}

/// The metrics of a stats row, in ms (tokens for `output_tokens`).
pub fn metrics(s: &NameStats) -> Metrics {
    Metrics {
        ttfb_ms: s.ttfb_us.summary(1000.0),
        ttfe_ms: s.ttfe_us.summary(1000.0),
        ttft_ms: s.ttft_us.summary(1000.0),
        e2e_ms: s.e2e_us.summary(1000.0),
        tpot_ms: s.tpot_us.summary(1000.0),
        itl_ms: s.itl_us.summary(1000.0),
        output_tokens: s.output_tokens.summary(1.0),
        response_time_ms: s.response_time_us.summary(1000.0),
        connect_ms: s.connect_us.summary(1000.0),
        schedule_lag_ms: s.schedule_lag_us.summary(1000.0),
        ttft_from_intended_ms: s.ttft_intended_us.summary(1000.0),
        e2e_from_intended_ms: s.e2e_intended_us.summary(1000.0),
    }
}

fn kind_of(kinds: &[RequestKind], i: usize) -> (String, String) {
    kinds.get(i).map_or_else(
        || (String::new(), format!("#{i}")),
        |k| (k.method.clone(), k.name.clone()),
    )
}

/// Builds the JSON document of a result.
pub fn build(result: &RunResult) -> JsonResult {
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
                    message: k.message.clone(),
                    count: e.count,
                    first_seen_unix_s: e.first_seen_unix_s,
                    last_seen_unix_s: e.last_seen_unix_s,
                }
            })
            .collect(),
        timeline: result.timeline.clone(),
    }
}

/// Writes the JSON result to `path` (via a temporary file, so a crash never leaves half a file).
pub fn write(result: &RunResult, path: &Path) -> std::io::Result<()> {
    let doc = build(result);
    let text = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
