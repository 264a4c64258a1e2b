//! The reports' `--server-metrics` section: the client's TTFT beside the server's own (from its
//! TTFT histogram), and the console lines that say what was scraped and what failed. The charts'
//! data comes from [`crate::observe::known`].

use crate::engine::RunResult;
use crate::observe::{known, ServerMetrics};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// What the gap between the client's and the server's TTFT is made of.
pub const GAP_NOTE: &str =
    "the gap is the network plus any gateway between gsai-load and the model server (e.g. Open WebUI in front of it)";

/// The client's TTFT against one server's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TtftComparison {
    /// The metrics URL.
    pub url: String,
    /// The server's TTFT histogram.
    pub source: String,
    /// First tokens the server counted during the test.
    pub server_count: f64,
    /// Client TTFT median, ms (every request kind).
    pub client_p50_ms: Option<f64>,
    /// Client TTFT p99, ms.
    pub client_p99_ms: Option<f64>,
    /// Server TTFT median, ms (interpolated within the histogram's buckets).
    pub server_p50_ms: Option<f64>,
    /// Server TTFT p99, ms.
    pub server_p99_ms: Option<f64>,
    /// The histogram bucket holding the server's median, `[lower, upper]` ms (upper null: none).
    #[serde(default)]
    pub server_p50_bucket_ms: Option<[f64; 2]>,
    /// The histogram bucket holding the server's p99, ms.
    #[serde(default)]
    pub server_p99_bucket_ms: Option<[f64; 2]>,
    /// What the gap is.
    pub note: String,
}

fn client_ms(result: &RunResult, q: f64) -> Option<f64> {
    result
        .stats
        .total()
        .metric(crate::metrics::MetricId::Ttft)
        .quantile(q)
        .map(|us| us as f64 / 1000.0)
}

/// One comparison per endpoint whose TTFT histogram counted first tokens during the test.
pub fn comparisons(result: &RunResult, sm: &ServerMetrics) -> Vec<TtftComparison> {
    compare(result, known::server_ttft(&sm.series))
}

/// The client's TTFT beside each server TTFT given.
pub fn compare(result: &RunResult, server: Vec<known::ServerTtft>) -> Vec<TtftComparison> {
    server
        .into_iter()
        .map(|s| TtftComparison {
            url: s.url,
            source: s.source,
            server_count: s.count,
            client_p50_ms: client_ms(result, 0.5),
            client_p99_ms: client_ms(result, 0.99),
            server_p50_ms: s.p50_ms,
            server_p99_ms: s.p99_ms,
            server_p50_bucket_ms: s.p50_bucket_ms,
            server_p99_bucket_ms: s.p99_bucket_ms,
            note: GAP_NOTE.to_string(),
        })
        .collect()
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"))
}

/// A server quantile with the bucket it lies in: `150 ms (100–250)`.
fn server_ms(v: Option<f64>, bucket: Option<[f64; 2]>) -> String {
    match (v, bucket) {
        (Some(v), Some([lo, hi])) if hi.is_finite() => format!("{v:.0} ms ({lo:.0}–{hi:.0})"),
        (Some(v), Some([lo, _])) => format!("{v:.0} ms (>{lo:.0})"),
        _ => ms(v),
    }
}

/// Client minus server; "in bucket" when the client's value lies inside the server's bucket
/// (the histogram cannot tell them apart).
fn gap(client: Option<f64>, server: Option<f64>, bucket: Option<[f64; 2]>) -> String {
    match (client, server, bucket) {
        (Some(c), _, Some([lo, hi])) if c > lo && c <= hi => {
            format!("{:+.0} ms (in bucket)", c - server.unwrap_or(c))
        }
        (Some(c), Some(s), _) => format!("{:+.0} ms", c - s),
        _ => "-".to_string(),
    }
}

/// The console lines of `--server-metrics` (empty without it).
pub fn console(result: &RunResult, sm: &ServerMetrics) -> String {
    if sm.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let mut urls: Vec<&str> = sm.series.iter().map(|s| s.url.as_str()).collect();
    urls.sort_unstable();
    urls.dedup();
    let _ = writeln!(
        out,
        "\nServer metrics (--server-metrics): {} series from {} endpoint(s)",
        sm.series.len(),
        urls.len()
    );
    for o in known::overviews(&sm.series) {
        let peak = |p: &[[f64; 2]]| p.iter().map(|x| x[1]).fold(f64::NAN, f64::max);
        let mut parts = Vec::new();
        if !o.running.is_empty() {
            parts.push(format!("running peak {:.0}", peak(&o.running)));
        }
        if !o.waiting.is_empty() {
            parts.push(format!("waiting peak {:.0}", peak(&o.waiting)));
        }
        if !o.kv_cache_pct.is_empty() {
            parts.push(format!("KV cache peak {:.1}%", peak(&o.kv_cache_pct)));
        }
        if !parts.is_empty() {
            let _ = writeln!(out, "  {} ({}): {}", o.url, o.engine, parts.join(", "));
        }
    }
    for c in comparisons(result, sm) {
        let _ = writeln!(
            out,
            "  TTFT, client vs server ({}, {:.0} first tokens counted by {}):",
            c.source, c.server_count, c.url
        );
        let row = |out: &mut String, label: &str, a: String, b: String| {
            let _ = writeln!(out, "    {label:<8}{a:>22}{b:>22}");
        };
        row(&mut out, "", "p50".into(), "p99".into());
        row(&mut out, "client", ms(c.client_p50_ms), ms(c.client_p99_ms));
        row(
            &mut out,
            "server",
            server_ms(c.server_p50_ms, c.server_p50_bucket_ms),
            server_ms(c.server_p99_ms, c.server_p99_bucket_ms),
        );
        row(
            &mut out,
            "gap",
            gap(c.client_p50_ms, c.server_p50_ms, c.server_p50_bucket_ms),
            gap(c.client_p99_ms, c.server_p99_ms, c.server_p99_bucket_ms),
        );
        let _ = writeln!(
            out,
            "    ({GAP_NOTE}; the server's figures are interpolated within its histogram's bucket, shown in brackets)"
        );
    }
    for e in &sm.errors {
        let _ = writeln!(out, "  scrape problem ×{}: {}: {}", e.count, e.url, e.cause);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::parse::SeriesKind;
    use crate::observe::{ScrapeFailure, Series};

    fn bucket(le: &str, a: f64, b: f64) -> Series {
        Series {
            url: "http://m:1/metrics".into(),
            name: "vllm:time_to_first_token_seconds_bucket".into(),
            labels: [("le".to_string(), le.to_string())].into(),
            kind: SeriesKind::Histogram,
            points: vec![[1.0, a], [2.0, b]],
            rate_per_s: Vec::new(),
        }
    }

    #[test]
    fn console_compares_client_and_server_ttft_and_lists_failures() {
        let result = crate::report::fixture::result();
        let sm = ServerMetrics {
            series: vec![
                bucket("0.05", 0.0, 10.0),
                bucket("0.1", 0.0, 20.0),
                bucket("+Inf", 0.0, 20.0),
            ],
            errors: vec![ScrapeFailure {
                url: "http://down:1/metrics".into(),
                cause: "connection refused".into(),
                count: 3,
                first_unix_s: 1.0,
                last_unix_s: 3.0,
            }],
        };
        let text = console(&result, &sm);
        assert!(text.contains("TTFT, client vs server"), "{text}");
        assert!(text.contains("50 ms (0–50)"), "{text}");
        assert!(text.contains("Open WebUI"), "{text}");
        assert!(text.contains("scrape problem ×3: http://down:1/metrics: connection refused"));
        let c = comparisons(&result, &sm);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].server_count, 20.0);
        assert!(c[0].client_p50_ms.is_some());
        assert_eq!(console(&result, &ServerMetrics::default()), "");
    }
}
