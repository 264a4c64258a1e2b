//! Locust's stats history: one [`HistoryTick`] a second, built from the engine's cumulative
//! snapshots as the test runs. It is what `PREFIX_stats_history.csv` holds and what the JSON result
//! keeps under `stats_history`, so `gsai-load report` can write the same file again.
//!
//! "Current" figures cover the last [`WINDOW_S`] seconds, like Locust's
//! `CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`: they are the difference between the cumulative
//! histogram now and the one kept from about ten seconds ago (HDR histograms subtract exactly).

use crate::engine::Snapshot;
use crate::metrics::{Metric, MetricId, NameStats, RequestKind, StatsSet};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Locust's `PERCENTILES_TO_REPORT`.
pub const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Length of the window of "current" figures, seconds.
pub const WINDOW_S: f64 = 10.0;

/// One row of a tick: a request kind, or `Aggregated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// HTTP method (empty for Aggregated).
    pub method: String,
    /// Request name, or `Aggregated`.
    pub name: String,
    /// Finished requests per second over the window.
    pub current_rps: f64,
    /// Failures per second over the window.
    pub current_fps: f64,
    /// Response-time percentiles ([`PERCENTILES`]) of requests finished in the window, µs
    /// (zeros when none finished in it).
    pub current_us: [u64; 11],
    /// Response-time percentiles over the whole run so far, µs.
    pub total_us: [u64; 11],
    /// Finished requests so far.
    pub requests: u64,
    /// Failed requests so far.
    pub failures: u64,
    /// Sum of response times so far, µs.
    pub sum_us: u64,
    /// Smallest response time so far, µs.
    pub min_us: Option<u64>,
    /// Largest response time so far, µs.
    pub max_us: Option<u64>,
    /// Response bytes so far.
    pub content_bytes: u64,
}

/// One second of history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryTick {
    /// Seconds since the Unix epoch (whole seconds, as Locust writes them).
    pub unix_s: u64,
    /// Running users.
    pub users: u64,
    /// One row per request kind (in the run's kind order), then `Aggregated`.
    pub rows: Vec<HistoryRow>,
}

#[derive(Clone)]
struct MarkRow {
    requests: u64,
    failures: u64,
    hist: Histogram<u64>,
}

struct Mark {
    unix_s: f64,
    rows: Vec<MarkRow>,
}

fn empty_hist() -> Histogram<u64> {
    Metric::new().histogram().clone()
}

/// Builds ticks from successive cumulative statistics.
pub struct HistoryBuilder {
    marks: VecDeque<Mark>,
    start_unix_s: f64,
}

impl std::fmt::Debug for HistoryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryBuilder")
            .field("marks", &self.marks.len())
            .finish()
    }
}

fn percentiles(m: &Metric) -> [u64; 11] {
    PERCENTILES.map(|q| m.quantile(q).unwrap_or(0))
}

fn window_percentiles(h: &Histogram<u64>) -> [u64; 11] {
    if h.is_empty() {
        return [0; 11];
    }
    PERCENTILES.map(|q| h.value_at_quantile(q))
}

impl HistoryBuilder {
    /// A builder for a run that started at `start_unix_s` (the first window begins there).
    pub fn new(start_unix_s: f64) -> Self {
        Self {
            marks: VecDeque::new(),
            start_unix_s,
        }
    }

    fn zero_mark(&self, unix_s: f64, rows: usize) -> Mark {
        Mark {
            unix_s,
            rows: vec![
                MarkRow {
                    requests: 0,
                    failures: 0,
                    hist: empty_hist(),
                };
                rows
            ],
        }
    }

    /// The tick for a snapshot.
    pub fn push_snapshot(&mut self, snap: &Snapshot) -> HistoryTick {
        self.push(snap.point.unix_s, snap.users, &snap.kinds, &snap.stats)
    }

    /// The tick for cumulative `stats` at `unix_s` with `users` running.
    pub fn push(
        &mut self,
        unix_s: f64,
        users: u64,
        kinds: &[RequestKind],
        stats: &StatsSet,
    ) -> HistoryTick {
        let total = stats.total();
        let all: Vec<(&str, &str, &NameStats)> = stats
            .rows
            .iter()
            .enumerate()
            .map(|(i, s)| {
                kinds
                    .get(i)
                    .map_or(("", "?", s), |k| (k.method.as_str(), k.name.as_str(), s))
            })
            .chain(std::iter::once(("", "Aggregated", &total)))
            .collect();
        let now = Mark {
            unix_s,
            rows: all
                .iter()
                .map(|(_, _, s)| MarkRow {
                    requests: s.requests,
                    failures: s.failures,
                    hist: s.metric(MetricId::ResponseTime).histogram().clone(),
                })
                .collect(),
        };
        // Statistics were reset (or the shape changed): start the window again from nothing.
        let restarted = self.marks.back().is_some_and(|last| {
            last.rows.len() != now.rows.len()
                || last
                    .rows
                    .iter()
                    .zip(&now.rows)
                    .any(|(a, b)| b.requests < a.requests)
        });
        if restarted {
            self.marks.clear();
            self.start_unix_s = unix_s - 1.0;
        }
        if self.marks.is_empty() {
            let zero = self.zero_mark(self.start_unix_s.min(unix_s - 1e-3), now.rows.len());
            self.marks.push_back(zero);
        }
        // Keep as base the newest mark that is at least WINDOW_S old (or the oldest there is).
        while self.marks.len() >= 2 && self.marks[1].unix_s <= unix_s - WINDOW_S {
            self.marks.pop_front();
        }
        let base = &self.marks[0];
        let seconds = (unix_s - base.unix_s).max(1e-3);
        let rows = all
            .iter()
            .zip(&now.rows)
            .zip(&base.rows)
            .map(|(((method, name, s), cur), old)| {
                let mut window = cur.hist.clone();
                if window.subtract(&old.hist).is_err() {
                    window = cur.hist.clone();
                }
                HistoryRow {
                    method: (*method).to_string(),
                    name: (*name).to_string(),
                    current_rps: cur.requests.saturating_sub(old.requests) as f64 / seconds,
                    current_fps: cur.failures.saturating_sub(old.failures) as f64 / seconds,
                    current_us: window_percentiles(&window),
                    total_us: percentiles(s.metric(MetricId::ResponseTime)),
                    requests: s.requests,
                    failures: s.failures,
                    sum_us: s.metric(MetricId::ResponseTime).sum(),
                    min_us: s.metric(MetricId::ResponseTime).min(),
                    max_us: s.metric(MetricId::ResponseTime).max(),
                    content_bytes: s.content_bytes,
                }
            })
            .collect();
        self.marks.push_back(now);
        HistoryTick {
            unix_s: unix_s.max(0.0) as u64,
            users,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, RequestRecord};
    use std::time::{Duration, Instant};

    fn add(set: &mut StatsSet, e2e_ms: u64, fail: bool) {
        let t0 = Instant::now();
        let outcome = if fail {
            Outcome::Failure(crate::metrics::Failure::new(
                crate::metrics::FailureKind::HttpStatus,
                "x",
            ))
        } else {
            Outcome::Success
        };
        let r = RequestRecord::bare(0, t0, t0 + Duration::from_millis(e2e_ms), outcome);
        set.record(&r, &[], 1_000_000, 2_000_000, true);
    }

    fn kinds() -> Vec<RequestKind> {
        vec![RequestKind {
            method: "POST".into(),
            name: "/x".into(),
        }]
    }

    #[test]
    fn current_figures_cover_the_last_ten_seconds() {
        let mut b = HistoryBuilder::new(1000.0);
        let mut set = StatsSet::new(1);
        // 10 s of fast requests (2 a second), then 10 s of slow ones (4 a second, 1 failing).
        let mut last = None;
        for s in 1..=20u64 {
            for _ in 0..(if s <= 10 { 2 } else { 3 }) {
                add(&mut set, if s <= 10 { 100 } else { 900 }, false);
            }
            if s > 10 {
                add(&mut set, 900, true);
            }
            let tick = b.push(1000.0 + s as f64, 7, &kinds(), &set);
            if s == 1 {
                assert_eq!(tick.rows[1].current_rps, 2.0, "first tick: since the start");
            }
            last = Some(tick);
        }
        let tick = last.unwrap();
        assert_eq!(tick.unix_s, 1020);
        assert_eq!(tick.users, 7);
        assert_eq!(tick.rows.len(), 2);
        let agg = &tick.rows[1];
        assert_eq!((agg.method.as_str(), agg.name.as_str()), ("", "Aggregated"));
        assert!((agg.current_rps - 4.0).abs() < 1e-9, "{}", agg.current_rps);
        assert!((agg.current_fps - 1.0).abs() < 1e-9);
        let ms = |us: u64| (us as f64 / 1000.0).round();
        assert_eq!(
            ms(agg.current_us[0]),
            900.0,
            "window holds only slow requests"
        );
        assert_eq!(ms(agg.total_us[0]), 900.0, "40 of 60 requests are slow");
        assert_eq!(ms(agg.total_us[3]), 900.0);
        assert_eq!(ms(agg.total_us[10]), 900.0);
        assert_eq!(agg.requests, 60);
        assert_eq!(agg.failures, 10);
        assert_eq!(agg.min_us, Some(100_000));
    }

    #[test]
    fn a_reset_restarts_the_window() {
        let mut b = HistoryBuilder::new(0.0);
        let mut set = StatsSet::new(1);
        for _ in 0..10 {
            add(&mut set, 10, false);
        }
        b.push(1.0, 1, &kinds(), &set);
        let mut set = StatsSet::new(1);
        add(&mut set, 20, false);
        let t = b.push(2.0, 1, &kinds(), &set);
        assert_eq!(t.rows[0].current_rps, 1.0);
        assert_eq!((t.rows[0].current_us[0] as f64 / 1000.0).round(), 20.0);
    }

    #[test]
    fn an_empty_window_has_zero_percentiles() {
        let mut b = HistoryBuilder::new(0.0);
        let mut set = StatsSet::new(1);
        add(&mut set, 10, false);
        b.push(1.0, 1, &kinds(), &set);
        let t = b.push(12.0, 1, &kinds(), &set);
        assert_eq!(t.rows[0].current_us, [0; 11]);
        assert_eq!(t.rows[0].current_rps, 0.0);
        assert_eq!(t.rows[0].total_us[0], 10_000);
    }
}
