//! One metric: an HDR histogram plus exact count, sum, min and max.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A distribution of non-negative integer samples (microseconds, or tokens).
///
/// The histogram gives percentiles to 3 significant digits; count, sum, min and max are kept
/// exactly beside it, so means and extremes are not rounded.
#[derive(Clone, Debug)]
pub struct Metric {
    hist: Histogram<u64>,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Metric {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.hist == other.hist
            && self.sum == other.sum
            && self.min == other.min
            && self.max == other.max
    }
}

/// Summary figures of a metric, in the metric's unit divided by `scale` (see [`Metric::summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample (0 when empty).
    pub min: f64,
    /// Mean (0 when empty).
    pub mean: f64,
    /// Largest sample (0 when empty).
    pub max: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Metric {
    /// An empty, auto-resizing histogram with 3 significant digits.
    pub fn new() -> Self {
        let mut hist = Histogram::new(3).expect("3 significant digits is a valid HDR precision");
        hist.auto(true);
        Self {
            hist,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one sample.
    pub fn record(&mut self, value: u64) {
        // Auto-resizing histograms accept any u64 up to the precision limit; saturate the rest.
        let _ = self
            .hist
            .record(value)
            .or_else(|_| self.hist.record(self.hist.high()));
        self.sum = self.sum.saturating_add(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every sample of `other` to `self`.
    pub fn add(&mut self, other: &Metric) {
        if other.count() == 0 {
            return;
        }
        // Both histograms auto-resize, so adding cannot fail for range reasons.
        let _ = self.hist.add(&other.hist);
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Removes all samples, keeping allocated buckets.
    pub fn clear(&mut self) {
        self.hist.reset();
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Exact sum of the samples.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Exact smallest sample, if any.
    pub fn min(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.min)
    }

    /// Exact largest sample, if any.
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max)
    }

    /// Exact mean, if any samples.
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.sum as f64 / self.count() as f64)
    }

    /// The value at quantile `q` (0..=1), clamped to the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count() == 0 {
            return None;
        }
        let v = self.hist.value_at_quantile(q);
        Some(v.clamp(self.min, self.max))
    }

    /// The underlying histogram (for serialization and charts).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Rebuilds a metric from a histogram and exact figures (the inverse of the accessors).
    pub fn from_parts(hist: Histogram<u64>, sum: u64, min: u64, max: u64) -> Self {
        let mut hist = hist;
        hist.auto(true);
        let count = hist.len();
        Self {
            hist,
            sum,
            min: if count == 0 { u64::MAX } else { min },
            max: if count == 0 { 0 } else { max },
        }
    }

    /// Summary with every figure divided by `scale` (1000.0 turns microseconds into ms).
    pub fn summary(&self, scale: f64) -> MetricSummary {
        let q = |q: f64| self.quantile(q).map_or(0.0, |v| v as f64 / scale);
        MetricSummary {
            count: self.count(),
            min: self.min().map_or(0.0, |v| v as f64 / scale),
            mean: self.mean().map_or(0.0, |v| v / scale),
            max: self.max().map_or(0.0, |v| v as f64 / scale),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_figures_and_percentiles_within_precision() {
        let mut m = Metric::new();
        for v in 1..=1000u64 {
            m.record(v * 1000);
        }
        assert_eq!(m.count(), 1000);
        assert_eq!(m.min(), Some(1000));
        assert_eq!(m.max(), Some(1_000_000));
        assert_eq!(m.mean(), Some(500_500.0));
        let p50 = m.quantile(0.5).unwrap() as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.001, "{p50}");
        let p99 = m.quantile(0.99).unwrap() as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.001, "{p99}");
    }

    #[test]
    fn add_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Metric::new(), Metric::new(), Metric::new());
        for v in 0..500u64 {
            let x = v * v + 7;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.add(&b);
        assert_eq!(a, all);
        assert_eq!(a.summary(1000.0), all.summary(1000.0));
    }

    #[test]
    fn empty_metric_summarizes_to_zero() {
        let m = Metric::new();
        assert_eq!(m.summary(1.0), MetricSummary::default());
        assert_eq!(m.quantile(0.5), None);
    }

    #[test]
    fn clear_forgets_samples() {
        let mut m = Metric::new();
        m.record(5);
        m.clear();
        assert_eq!(m.count(), 0);
        assert_eq!(m.min(), None);
    }
}
