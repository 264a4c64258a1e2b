//! Statistics per request kind (a stats row) and the failures table, mergeable with `merge`.

use super::{FailureKind, Metric, MetricId, Outcome, RequestRecord, TokenSource};
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
/// Locust's figures (`requests`, `failures`, the response time) cover every finished request;
/// the LLM metrics cover successful requests only, so that fast failures do not flatter them.
/// Which requests each metric covers is in its [`crate::metrics::MetricDef`].
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
    /// Response bytes of every finished request.
    pub content_bytes: u64,
    /// Every catalogue metric, indexed by [`MetricId::index`] (see [`NameStats::metric`]).
    pub metrics: [Metric; MetricId::COUNT],
    /// Number of requests whose token count came from each [`TokenSource`] (by `index()`).
    pub token_sources: [u64; 3],
    /// Earliest request start, µs since the Unix epoch (0 = none yet).
    pub first_start_unix_us: u64,
    /// Latest request end, µs since the Unix epoch (0 = none yet).
    pub last_end_unix_us: u64,
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
        for id in MetricId::ALL {
            if id.def().covers.records(&rec.outcome) {
                if let Some(v) = id.sample(rec) {
                    self.metrics[id.index()].record(v);
                }
            }
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
        // ITL is the one metric with many samples per request: the client's list of gaps.
        let itl = &mut self.metrics[MetricId::Itl.index()];
        for &gap in itl_us {
            itl.record(u64::from(gap));
        }
        if let Some((_, source)) = rec.output_tokens {
            self.token_sources[source.index()] += 1;
        }
    }

    /// One metric.
    pub fn metric(&self, id: MetricId) -> &Metric {
        &self.metrics[id.index()]
    }

    /// One metric, to change.
    pub fn metric_mut(&mut self, id: MetricId) -> &mut Metric {
        &mut self.metrics[id.index()]
    }

    /// Every metric with its id, in catalogue order.
    pub fn metrics(&self) -> impl Iterator<Item = (MetricId, &Metric)> + '_ {
        MetricId::ALL.into_iter().zip(self.metrics.iter())
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
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
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

    /// Forgets every sample, keeping allocated buckets.
    pub fn clear(&mut self) {
        for m in &mut self.metrics {
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
            && self.metrics.iter().all(|m| m.count() == 0)
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
        assert_eq!(t.metric(MetricId::ResponseTime).count(), 3);
        assert_eq!(t.metric(MetricId::Ttft).count(), 1);
        assert_eq!(t.metric(MetricId::Itl).count(), 2);
        assert_eq!(t.token_sources, [1, 0, 0]);
        assert_eq!(s.failures.len(), 2, "grouped per kind and message");
        assert_eq!(t.first_start_unix_us, 1_000_000);
        assert_eq!(t.last_end_unix_us, 3_030_000);
    }

    /// Each metric records the requests its catalogue entry covers: a cancelled open-loop
    /// request leaves its connect time and schedule lag, a failure its response time, a success
    /// everything.
    #[test]
    fn each_metric_covers_what_the_catalogue_says() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let open_loop = |outcome: Outcome| {
            let mut r = rec(0, outcome, 50);
            r.intended = Some(t0);
            r.start = t0 + ms(5);
            r.end = t0 + ms(50);
            r.connect = Some(ms(2));
            r.headers = Some(t0 + ms(6));
            r.first_event = Some(t0 + ms(7));
            r.first_token = Some(t0 + ms(8));
            r.first_answer_token = Some(t0 + ms(9));
            r.last_token = Some(t0 + ms(50));
            r.reasoning_tokens = Some(1);
            r.request_bytes = 100;
            r
        };
        let failure = Outcome::Failure(crate::metrics::Failure::new(FailureKind::HttpStatus, "x"));
        let cases = [
            (Outcome::Cancelled, "cancelled"),
            (failure, "failure"),
            (Outcome::Success, "success"),
        ];
        for (outcome, what) in cases {
            let mut s = NameStats::default();
            s.record(&open_loop(outcome.clone()), &[3, 4], 1, 2, true);
            for id in MetricId::ALL {
                let covered = id.def().covers.records(&outcome);
                let expected = match id {
                    _ if !covered => 0,
                    MetricId::Itl => 2,
                    _ => 1,
                };
                assert_eq!(s.metric(id).count(), expected, "{what}: {}", id.key());
            }
        }
        let mut s = NameStats::default();
        s.record(&open_loop(Outcome::Success), &[], 1, 2, true);
        assert_eq!(s.metric(MetricId::ScheduleLag).max(), Some(5_000));
        assert_eq!(s.metric(MetricId::TtftIntended).max(), Some(8_000));
        assert_eq!(s.metric(MetricId::Ttft).max(), Some(3_000));
        assert_eq!(s.metric(MetricId::E2eIntended).max(), Some(50_000));
        // 3 tokens in 45 ms: 66.7 tokens/s, in thousandths.
        assert_eq!(s.metric(MetricId::OutputTps).max(), Some(66_667));
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
