//! Statistics per request kind (a stats row) and the failures table, mergeable with `merge`.

use super::{FailureKind, Metric, Outcome, RequestRecord, TokenSource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A stats row's identity: HTTP method and request name, as Locust shows them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestKind {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request name, e.g. `/api/chat/completions`.
    pub name: String,
}

/// Everything measured for one request kind.
///
/// Locust's figures (`requests`, `failures`, `response_time_us`) cover every finished request;
/// the LLM metrics cover successful requests only, so that fast failures do not flatter them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NameStats {
    /// Finished requests: successes plus failures (Locust's "Request Count").
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Requests cut off at stop: neither success nor failure.
    pub cancelled: u64,
    /// Open-loop arrivals dropped because `--max-concurrency` requests were in flight.
    pub dropped: u64,
    /// Requests that started during the warm-up and were left out of every other figure.
    pub warmup: u64,
    /// Successful requests that met every SLO (equals successes when no SLO is set).
    pub good: u64,
    /// Locust's response time (E2E of every finished request), µs.
    pub response_time_us: Metric,
    /// Response bytes of every finished request.
    pub content_bytes: u64,
    /// New-connection setup time, µs (requests that opened a connection).
    pub connect_us: Metric,
    /// Time to first byte (headers), µs.
    pub ttfb_us: Metric,
    /// Time to first SSE event, µs.
    pub ttfe_us: Metric,
    /// Time to first token, µs.
    pub ttft_us: Metric,
    /// End-to-end latency of successful requests, µs.
    pub e2e_us: Metric,
    /// Time per output token after the first, µs (requests with ≥ 2 tokens).
    pub tpot_us: Metric,
    /// Every gap between consecutive token-bearing events, pooled, µs.
    pub itl_us: Metric,
    /// Output tokens per request.
    pub output_tokens: Metric,
    /// Per-request output speed: output tokens / E2E seconds, in thousandths of a token per
    /// second (HDR keeps integers; milli-units keep 3 significant digits for slow streams).
    pub output_tps_milli: Metric,
    /// Open loop: actual − intended start, µs (every started request).
    pub schedule_lag_us: Metric,
    /// Open loop: TTFT from the intended start (free of coordinated omission), µs.
    pub ttft_intended_us: Metric,
    /// Open loop: E2E from the intended start, µs.
    pub e2e_intended_us: Metric,
    /// Number of requests whose token count came from each [`TokenSource`] (by `index()`).
    pub token_sources: [u64; 3],
    /// Earliest request start, µs since the Unix epoch (0 = none yet).
    pub first_start_unix_us: u64,
    /// Latest request end, µs since the Unix epoch (0 = none yet).
    pub last_end_unix_us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl NameStats {
    /// Records one request. `itl_us` holds its inter-token gaps; `start_unix_us`/`end_unix_us`
    /// place it on the wall clock; `good` says whether it met the SLOs.
    pub fn record(
        &mut self,
        rec: &RequestRecord,
        itl_us: &[u32],
        start_unix_us: u64,
        end_unix_us: u64,
        good: bool,
    ) {
        if let Some(c) = rec.connect {
            self.connect_us.record(micros(c));
        }
        if let Some(lag) = rec.schedule_lag() {
            self.schedule_lag_us.record(micros(lag));
        }
        match &rec.outcome {
            Outcome::Cancelled => {
                self.cancelled += 1;
                return;
            }
            Outcome::Failure(_) => self.failures += 1,
            Outcome::Success => {}
        }
        self.requests += 1;
        self.response_time_us.record(micros(rec.e2e()));
        self.content_bytes += rec.content_bytes;
        if self.first_start_unix_us == 0 || start_unix_us < self.first_start_unix_us {
            self.first_start_unix_us = start_unix_us;
        }
        self.last_end_unix_us = self.last_end_unix_us.max(end_unix_us);
        if rec.outcome != Outcome::Success {
            return;
        }
        if good {
            self.good += 1;
        }
        self.e2e_us.record(micros(rec.e2e()));
        if let Some(t) = rec.ttfb() {
            self.ttfb_us.record(micros(t));
        }
        if let Some(t) = rec.first_event {
            self.ttfe_us
                .record(micros(t.saturating_duration_since(rec.start)));
        }
        if let Some(t) = rec.ttft() {
            self.ttft_us.record(micros(t));
        }
        if let Some(intended) = rec.intended {
            self.e2e_intended_us
                .record(micros(rec.end.saturating_duration_since(intended)));
            if let Some(t) = rec.first_token {
                self.ttft_intended_us
                    .record(micros(t.saturating_duration_since(intended)));
            }
        }
        if let Some(t) = rec.tpot() {
            self.tpot_us.record(micros(t));
        }
        for &gap in itl_us {
            self.itl_us.record(u64::from(gap));
        }
        if let Some((tokens, source)) = rec.output_tokens {
            self.output_tokens.record(tokens);
            self.token_sources[source.index()] += 1;
            let e2e_s = rec.e2e().as_secs_f64();
            if e2e_s > 0.0 {
                self.output_tps_milli
                    .record((tokens as f64 * 1000.0 / e2e_s).round() as u64);
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &NameStats) {
        // Counts may come from the network (a master merging workers' reports): they saturate
        // rather than wrap, whatever a peer claims.
        self.requests = self.requests.saturating_add(other.requests);
        self.failures = self.failures.saturating_add(other.failures);
        self.cancelled = self.cancelled.saturating_add(other.cancelled);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.warmup = self.warmup.saturating_add(other.warmup);
        self.good = self.good.saturating_add(other.good);
        self.content_bytes = self.content_bytes.saturating_add(other.content_bytes);
        for (a, b) in self.metrics_mut().into_iter().zip(other.metrics()) {
            a.add(b);
        }
        for (a, b) in self.token_sources.iter_mut().zip(other.token_sources) {
            *a = a.saturating_add(b);
        }
        if other.first_start_unix_us != 0
            && (self.first_start_unix_us == 0
                || other.first_start_unix_us < self.first_start_unix_us)
        {
            self.first_start_unix_us = other.first_start_unix_us;
        }
        self.last_end_unix_us = self.last_end_unix_us.max(other.last_end_unix_us);
    }

    fn metrics(&self) -> [&Metric; 13] {
        [
            &self.response_time_us,
            &self.connect_us,
            &self.ttfb_us,
            &self.ttfe_us,
            &self.ttft_us,
            &self.e2e_us,
            &self.tpot_us,
            &self.itl_us,
            &self.output_tokens,
            &self.output_tps_milli,
            &self.schedule_lag_us,
            &self.ttft_intended_us,
            &self.e2e_intended_us,
        ]
    }

    fn metrics_mut(&mut self) -> [&mut Metric; 13] {
        [
            &mut self.response_time_us,
            &mut self.connect_us,
            &mut self.ttfb_us,
            &mut self.ttfe_us,
            &mut self.ttft_us,
            &mut self.e2e_us,
            &mut self.tpot_us,
            &mut self.itl_us,
            &mut self.output_tokens,
            &mut self.output_tps_milli,
            &mut self.schedule_lag_us,
            &mut self.ttft_intended_us,
            &mut self.e2e_intended_us,
        ]
    }

    /// Forgets every sample, keeping allocated buckets.
    pub fn clear(&mut self) {
        for m in self.metrics_mut() {
            m.clear();
        }
        let NameStats {
            requests,
            failures,
            cancelled,
            dropped,
            warmup,
            good,
            content_bytes,
            token_sources,
            first_start_unix_us,
            last_end_unix_us,
            ..
        } = self;
        for n in [
            requests,
            failures,
            cancelled,
            dropped,
            warmup,
            good,
            content_bytes,
            first_start_unix_us,
            last_end_unix_us,
        ] {
            *n = 0;
        }
        *token_sources = [0; 3];
    }

    /// Successful requests.
    pub fn successes(&self) -> u64 {
        self.requests - self.failures
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests == 0
            && self.cancelled == 0
            && self.dropped == 0
            && self.warmup == 0
            && self.connect_us.count() == 0
            && self.schedule_lag_us.count() == 0
    }

    /// Seconds between the first start and the last end (0 when fewer than one request).
    pub fn span_s(&self) -> f64 {
        if self.first_start_unix_us == 0 || self.last_end_unix_us <= self.first_start_unix_us {
            return 0.0;
        }
        (self.last_end_unix_us - self.first_start_unix_us) as f64 / 1e6
    }

    /// Count of requests with each token source.
    pub fn token_source_counts(&self) -> impl Iterator<Item = (TokenSource, u64)> + '_ {
        TokenSource::ALL
            .into_iter()
            .map(|s| (s, self.token_sources[s.index()]))
    }
}

/// The failures table's key: request kind, failure kind and message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FailureKey {
    /// Index of the request kind.
    pub kind: usize,
    /// What kind of failure (the message names its details).
    pub cause: FailureKind,
    /// Failure message (names the cause).
    pub message: String,
}

/// One row of the failures table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureEntry {
    /// Occurrences.
    pub count: u64,
    /// First occurrence, seconds since the Unix epoch.
    pub first_seen_unix_s: f64,
    /// Last occurrence, seconds since the Unix epoch.
    pub last_seen_unix_s: f64,
}

impl FailureEntry {
    fn merge(&mut self, other: &FailureEntry) {
        self.count = self.count.saturating_add(other.count);
        self.first_seen_unix_s = self.first_seen_unix_s.min(other.first_seen_unix_s);
        self.last_seen_unix_s = self.last_seen_unix_s.max(other.last_seen_unix_s);
    }
}

/// Stats for every request kind plus the failures table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsSet {
    /// One entry per request kind, indexed like the workload's kinds.
    pub rows: Vec<NameStats>,
    /// Failures grouped by (kind, message).
    pub failures: HashMap<FailureKey, FailureEntry>,
}

impl StatsSet {
    /// An empty set for `kinds` request kinds.
    pub fn new(kinds: usize) -> Self {
        Self {
            rows: vec![NameStats::default(); kinds],
            failures: HashMap::new(),
        }
    }

    /// Records one request (see [`NameStats::record`]).
    pub fn record(
        &mut self,
        rec: &RequestRecord,
        itl_us: &[u32],
        start_unix_us: u64,
        end_unix_us: u64,
        good: bool,
    ) {
        if rec.kind >= self.rows.len() {
            self.rows.resize(rec.kind + 1, NameStats::default());
        }
        self.rows[rec.kind].record(rec, itl_us, start_unix_us, end_unix_us, good);
        if let Outcome::Failure(f) = &rec.outcome {
            let at = end_unix_us as f64 / 1e6;
            let key = FailureKey {
                kind: rec.kind,
                cause: f.kind,
                message: f.message.clone(),
            };
            let entry = self.failures.entry(key).or_insert(FailureEntry {
                count: 0,
                first_seen_unix_s: at,
                last_seen_unix_s: at,
            });
            entry.merge(&FailureEntry {
                count: 1,
                first_seen_unix_s: at,
                last_seen_unix_s: at,
            });
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &StatsSet) {
        if other.rows.len() > self.rows.len() {
            self.rows.resize(other.rows.len(), NameStats::default());
        }
        for (a, b) in self.rows.iter_mut().zip(&other.rows) {
            a.merge(b);
        }
        for (key, entry) in &other.failures {
            self.failures
                .entry(key.clone())
                .and_modify(|e| e.merge(entry))
                .or_insert(*entry);
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(NameStats::is_empty) && self.failures.is_empty()
    }

    /// Forgets everything, keeping the number of rows and the histograms' allocated buckets
    /// (re-growing them every second would cost page faults on the recording path).
    pub fn clear(&mut self) {
        for row in &mut self.rows {
            row.clear();
        }
        self.failures.clear();
    }

    /// All rows merged: Locust's "Aggregated" row.
    pub fn total(&self) -> NameStats {
        let mut total = NameStats::default();
        for row in &self.rows {
            total.merge(row);
        }
        total
    }

    /// Failures sorted by count (descending), then kind and message, for reports.
    pub fn failures_sorted(&self) -> Vec<(&FailureKey, &FailureEntry)> {
        let mut v: Vec<_> = self.failures.iter().collect();
        v.sort_by(|a, b| {
            b.1.count
                .cmp(&a.1.count)
                .then_with(|| (a.0.kind, &a.0.message).cmp(&(b.0.kind, &b.0.message)))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn rec(kind: usize, outcome: Outcome, e2e_ms: u64) -> RequestRecord {
        let t0 = Instant::now();
        let mut r = RequestRecord::bare(kind, t0, t0 + Duration::from_millis(e2e_ms), outcome);
        r.first_token = Some(t0 + Duration::from_millis(1));
        r.last_token = Some(t0 + Duration::from_millis(e2e_ms));
        r.output_tokens = Some((3, TokenSource::Usage));
        r
    }

    #[test]
    fn counts_add_up_and_llm_metrics_only_for_successes() {
        let mut s = StatsSet::new(2);
        s.record(
            &rec(0, Outcome::Success, 10),
            &[5, 6],
            1_000_000,
            1_010_000,
            true,
        );
        s.record(
            &rec(
                0,
                Outcome::Failure(crate::metrics::Failure::new(
                    FailureKind::HttpStatus,
                    "boom",
                )),
                20,
            ),
            &[],
            2_000_000,
            2_020_000,
            false,
        );
        s.record(
            &rec(
                1,
                Outcome::Failure(crate::metrics::Failure::new(
                    FailureKind::HttpStatus,
                    "boom",
                )),
                30,
            ),
            &[],
            3_000_000,
            3_030_000,
            false,
        );
        s.record(
            &rec(1, Outcome::Cancelled, 30),
            &[],
            3_000_000,
            3_030_000,
            false,
        );
        let t = s.total();
        assert_eq!((t.requests, t.failures, t.cancelled, t.good), (3, 2, 1, 1));
        assert_eq!(t.response_time_us.count(), 3);
        assert_eq!(t.ttft_us.count(), 1);
        assert_eq!(t.itl_us.count(), 2);
        assert_eq!(t.token_sources, [1, 0, 0]);
        assert_eq!(s.failures.len(), 2, "grouped per kind and message");
        assert_eq!(t.first_start_unix_us, 1_000_000);
        assert_eq!(t.last_end_unix_us, 3_030_000);
    }

    #[test]
    fn merge_of_parts_equals_whole() {
        let mut whole = StatsSet::new(1);
        let mut a = StatsSet::new(1);
        let mut b = StatsSet::new(1);
        for i in 0..50u64 {
            let outcome = if i % 7 == 0 {
                Outcome::Failure(crate::metrics::Failure::new(
                    FailureKind::HttpStatus,
                    format!("e{}", i % 2),
                ))
            } else {
                Outcome::Success
            };
            let r = rec(0, outcome, 5 + i);
            whole.record(&r, &[i as u32], i * 10 + 1, i * 10 + 5, true);
            let part = if i % 2 == 0 { &mut a } else { &mut b };
            part.record(&r, &[i as u32], i * 10 + 1, i * 10 + 5, true);
        }
        a.merge(&b);
        assert_eq!(a.rows, whole.rows);
        assert_eq!(a.failures, whole.failures);
    }
}
