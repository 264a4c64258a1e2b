//! The mock's `GET /metrics`: vLLM-style Prometheus series computed from what the mock really
//! does, so a demo or a test can set `--server-metrics` beside the client's figures and compare
//! like with like. Running and waiting requests come from the open-stream count and the
//! capacity model; the TTFT histogram holds the time from each stream's start to its first
//! content token as actually sent.

use super::counters::Counters;
use super::MockConfig;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// vLLM's TTFT bucket bounds, seconds, with finer steps from 0.1 to 0.25 s (where the mock's
/// default TTFT lies) so that the demo's comparison is not blurred by one wide bucket.
pub(crate) const TTFT_BOUNDS_S: [f64; 27] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// A fixed-bucket histogram of time to first token, lock-free.
#[derive(Debug, Default)]
pub struct TtftHistogram {
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: [AtomicU64; TTFT_BOUNDS_S.len() + 1],
    sum_us: AtomicU64,
}

impl TtftHistogram {
    /// Records one first token.
    pub(crate) fn observe(&self, ttft: Duration) {
        let s = ttft.as_secs_f64();
        let i = TTFT_BOUNDS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(TTFT_BOUNDS_S.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(ttft.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

/// The exposition text.
pub(crate) fn render(counters: &Counters, config: &MockConfig) -> String {
    let model = config.models.first().map_or("mock", String::as_str);
    let labels = format!("model_name=\"{}\"", model.replace(['\\', '"', '\n'], "_"));
    let open = counters.open_streams.load(Relaxed);
    let (running, waiting, kv) = match config.max_concurrent {
        Some(cap) => {
            let cap = cap.max(1) as u64;
            let running = open.min(cap);
            (running, open - running, running as f64 / cap as f64)
        }
        None => (open, 0, (open as f64 / 256.0).min(1.0)),
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {v}\n"
        );
    };
    gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        running as f64,
    );
    gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        waiting as f64,
    );
    gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage (the mock: running / capacity).",
        kv,
    );
    let h = &counters.ttft;
    let name = "vllm:time_to_first_token_seconds";
    let _ = write!(
        out,
        "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram\n"
    );
    let mut cum = 0u64;
    for (i, b) in h.buckets.iter().enumerate() {
        cum += b.load(Relaxed);
        let le = TTFT_BOUNDS_S
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| format!("{b}"));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\",{labels}}} {cum}");
    }
    let sum_s = h.sum_us.load(Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_s}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cum}");
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{labels}}} {v}\n"
        );
    };
    counter(
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        counters.ok.load(Relaxed),
    );
    counter(
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        counters.tokens_sent.load(Relaxed),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_parseable_vllm_series() {
        let c = Counters::default();
        c.ttft.observe(Duration::from_millis(150));
        c.ttft.observe(Duration::from_millis(30));
        c.ttft.observe(Duration::from_secs(5000));
        c.open_streams.store(5, Relaxed);
        let config = MockConfig {
            max_concurrent: Some(3),
            ..MockConfig::default()
        };
        let text = render(&c, &config);
        let (samples, problem) = crate::observe::parse::parse(text.as_bytes()).unwrap();
        assert_eq!(problem, None, "{text}");
        let get = |name: &str, le: Option<&str>| {
            samples
                .iter()
                .find(|s| s.name == name && s.labels.get("le").map(String::as_str) == le)
                .map(|s| s.value)
        };
        assert_eq!(get("vllm:num_requests_running", None), Some(3.0));
        assert_eq!(get("vllm:num_requests_waiting", None), Some(2.0));
        assert_eq!(get("vllm:kv_cache_usage_perc", None), Some(1.0));
        assert_eq!(
            get("vllm:time_to_first_token_seconds_bucket", Some("0.04")),
            Some(1.0)
        );
        assert_eq!(
            get("vllm:time_to_first_token_seconds_bucket", Some("0.16")),
            Some(2.0)
        );
        assert_eq!(
            get("vllm:time_to_first_token_seconds_bucket", Some("+Inf")),
            Some(3.0)
        );
        assert_eq!(
            get("vllm:time_to_first_token_seconds_count", None),
            Some(3.0)
        );
    }
}
