//! The per-second timeline: one point per collector tick, with "current" percentiles taken over
//! a sliding window of recent deltas (Locust shows current figures the same way).

use super::{Metric, MetricId, StatsSet};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Points closer together than this (seconds of wall time) are one point: a push that comes
/// sooner after the previous one (the stop phase collects at once, not on the second) replaces
/// the last point instead of adding one, or the rates of a sliver of a second would draw a spike.
pub const MIN_POINT_GAP_S: f64 = 0.5;

impl TimelinePoint {
    /// Whether `self`, taken after `prev`, replaces it rather than following it
    /// (less than [`MIN_POINT_GAP_S`] apart).
    pub fn replaces(&self, prev: &TimelinePoint) -> bool {
        self.unix_s - prev.unix_s < MIN_POINT_GAP_S
    }
}

/// Appends `point` to `timeline`, or replaces the last point when `point` replaces it
/// ([`TimelinePoint::replaces`]); for copies of a collector's timeline kept from its snapshots.
pub fn push_point(timeline: &mut Vec<TimelinePoint>, point: TimelinePoint) {
    match timeline.last_mut() {
        Some(last) if point.replaces(last) => *last = point,
        _ => timeline.push(point),
    }
}

/// One point of the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Wall-clock time of the tick, seconds since the Unix epoch.
    pub unix_s: f64,
    /// Seconds since the test started.
    pub elapsed_s: f64,
    /// Running users (closed loop) or in-flight requests (open loop).
    pub users: u64,
    /// Requests finished per second over the window.
    pub rps: f64,
    /// Failures per second over the window.
    pub fps: f64,
    /// Output tokens per second over the window (successful requests).
    pub output_tokens_per_s: f64,
    /// Current median response time (E2E, all finished requests), ms.
    pub e2e_p50_ms: f64,
    /// Current 95th percentile response time, ms.
    pub e2e_p95_ms: f64,
    /// Current median TTFT, ms.
    pub ttft_p50_ms: f64,
    /// Current 95th percentile TTFT, ms.
    pub ttft_p95_ms: f64,
    /// Cumulative finished requests.
    pub total_requests: u64,
    /// Cumulative failures.
    pub total_failures: u64,
}

#[derive(Debug, Default)]
struct Slot {
    seconds: f64,
    requests: u64,
    failures: u64,
    tokens: u64,
    response_time: Metric,
    ttft: Metric,
}

/// Sliding window over the last few deltas.
#[derive(Debug)]
pub struct Window {
    slots: VecDeque<Slot>,
    len: usize,
}

impl Window {
    /// A window over the last `len` deltas (at least 1).
    pub fn new(len: usize) -> Self {
        Self {
            slots: VecDeque::new(),
            len: len.max(1),
        }
    }

    /// Adds a delta covering `seconds` of wall time.
    pub fn push(&mut self, delta: &StatsSet, seconds: f64) {
        let mut total = delta.total();
        if self.slots.len() == self.len {
            self.slots.pop_front();
        }
        self.slots.push_back(Slot {
            seconds,
            requests: total.requests,
            failures: total.failures,
            tokens: total.metric(MetricId::OutputTokens).sum(),
            response_time: std::mem::take(total.metric_mut(MetricId::ResponseTime)),
            ttft: std::mem::take(total.metric_mut(MetricId::Ttft)),
        });
    }

    /// Adds a delta covering `seconds` of wall time to the newest slot (a new one if there is
    /// none), so the window keeps its length in slots while the newest covers more time.
    pub fn extend_last(&mut self, delta: &StatsSet, seconds: f64) {
        let Some(last) = self.slots.back_mut() else {
            return self.push(delta, seconds);
        };
        let total = delta.total();
        last.seconds += seconds;
        // Saturating: counts may come from a master's workers, whatever they claim.
        last.requests = last.requests.saturating_add(total.requests);
        last.failures = last.failures.saturating_add(total.failures);
        last.tokens = last
            .tokens
            .saturating_add(total.metric(MetricId::OutputTokens).sum());
        last.response_time.add(total.metric(MetricId::ResponseTime));
        last.ttft.add(total.metric(MetricId::Ttft));
    }

    /// Forgets all deltas.
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// A timeline point from the window; the caller fills time, users and totals.
    pub fn point(&self) -> TimelinePoint {
        let seconds: f64 = self.slots.iter().map(|s| s.seconds).sum();
        let per_s = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let mut rt = Metric::new();
        let mut ttft = Metric::new();
        for s in &self.slots {
            rt.add(&s.response_time);
            ttft.add(&s.ttft);
        }
        let ms = |m: &Metric, q: f64| m.quantile(q).map_or(0.0, |v| v as f64 / 1000.0);
        TimelinePoint {
            rps: per_s(
                self.slots
                    .iter()
                    .fold(0, |n, s| n.saturating_add(s.requests)),
            ),
            fps: per_s(
                self.slots
                    .iter()
                    .fold(0, |n, s| n.saturating_add(s.failures)),
            ),
            output_tokens_per_s: per_s(
                self.slots.iter().fold(0, |n, s| n.saturating_add(s.tokens)),
            ),
            e2e_p50_ms: ms(&rt, 0.5),
            e2e_p95_ms: ms(&rt, 0.95),
            ttft_p50_ms: ms(&ttft, 0.5),
            ttft_p95_ms: ms(&ttft, 0.95),
            ..TimelinePoint::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_point_replaces_a_point_under_half_a_second_after_the_last() {
        let at = |unix_s: f64, users: u64| TimelinePoint {
            unix_s,
            users,
            ..TimelinePoint::default()
        };
        let mut timeline = Vec::new();
        push_point(&mut timeline, at(10.0, 1));
        push_point(&mut timeline, at(11.0, 2));
        push_point(&mut timeline, at(11.3, 3));
        push_point(&mut timeline, at(12.0, 4));
        let kept: Vec<(f64, u64)> = timeline.iter().map(|p| (p.unix_s, p.users)).collect();
        assert_eq!(kept, [(10.0, 1), (11.3, 3), (12.0, 4)]);
    }
}
