//! "Current" rates per stats row (requests/s, failures/s, output tokens/s) as differences of the
//! cumulative counts in the last few snapshots, so the engine does no extra work for them.

use crate::metrics::{MetricId, NameStats, StatsSet};
use std::collections::VecDeque;

/// Requests, failures and output tokens of one stats row at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    requests: u64,
    failures: u64,
    tokens: u64,
}

/// Current rates of one stats row, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Requests/s.
    pub rps: f64,
    /// Failures/s.
    pub fps: f64,
    /// Output tokens/s.
    pub tokens_per_s: f64,
}

/// The last few snapshots' cumulative counts per row (the last entry is the Aggregated row):
/// rates over the window are differences of counts, so no extra work in the engine.
#[derive(Debug, Default)]
pub(super) struct RateWindow {
    samples: VecDeque<(f64, Vec<Counts>)>,
}

/// Snapshots in the window: rates span the last five seconds, like the engine's timeline.
const RATE_SAMPLES: usize = 6;

impl RateWindow {
    pub(super) fn push(&mut self, elapsed_s: f64, stats: &StatsSet) {
        let counts = |r: &NameStats| Counts {
            requests: r.requests,
            failures: r.failures,
            tokens: r.metric(MetricId::OutputTokens).sum(),
        };
        let mut row: Vec<Counts> = stats.rows.iter().map(counts).collect();
        row.push(counts(&stats.total()));
        // New rows (a master learns them from its workers' first reports) are appended before
        // Aggregated: older samples had none of their requests.
        if self
            .samples
            .back()
            .is_some_and(|(_, last)| last.len() < row.len())
        {
            for (_, old) in &mut self.samples {
                let total = old.pop().unwrap_or_default();
                old.resize(row.len() - 1, Counts::default());
                old.push(total);
            }
        }
        // Counts that went down mean the statistics were reset: start the window afresh.
        if let Some((_, last)) = self.samples.back() {
            let went_down = last.len() != row.len()
                || last.iter().zip(&row).any(|(a, b)| b.requests < a.requests);
            if went_down {
                self.samples.clear();
            }
        }
        if self.samples.len() == RATE_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((elapsed_s, row));
    }

    /// Rates of row `i` (`rows.len()` for Aggregated).
    pub(super) fn rates(&self, i: usize) -> Rates {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return Rates::default();
        };
        let dt = t1 - t0;
        match (first.get(i), last.get(i)) {
            (Some(a), Some(b)) if dt > 0.0 => Rates {
                rps: b.requests.saturating_sub(a.requests) as f64 / dt,
                fps: b.failures.saturating_sub(a.failures) as f64 / dt,
                tokens_per_s: b.tokens.saturating_sub(a.tokens) as f64 / dt,
            },
            _ => Rates::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, RequestRecord};
    use std::time::{Duration, Instant};

    fn stats_with(n: u64) -> StatsSet {
        let mut s = StatsSet::new(1);
        let t0 = Instant::now();
        for _ in 0..n {
            let r = RequestRecord::bare(0, t0, t0 + Duration::from_millis(5), Outcome::Success);
            s.record(&r, &[], 1, 2, true);
        }
        s
    }

    #[test]
    fn rates_are_differences_over_the_window_and_restart_after_a_reset() {
        let mut w = RateWindow::default();
        w.push(1.0, &stats_with(0));
        w.push(2.0, &stats_with(10));
        w.push(3.0, &stats_with(30));
        assert_eq!(w.rates(0).rps, 15.0);
        assert_eq!(w.rates(1).rps, 15.0, "Aggregated");
        w.push(4.0, &stats_with(2));
        assert_eq!(w.rates(0).rps, 0.0, "a reset restarts the window");
        w.push(5.0, &stats_with(6));
        assert_eq!(w.rates(0).rps, 4.0);
        for i in 0..20u32 {
            w.push(6.0 + f64::from(i), &stats_with(6 + 10 * u64::from(i)));
        }
        assert_eq!(w.samples.len(), RATE_SAMPLES);
        assert_eq!(w.rates(0).rps, 10.0);
        assert_eq!(w.rates(7), Rates::default(), "unknown row");
    }

    #[test]
    fn rows_that_appear_later_keep_the_window() {
        let mut w = RateWindow::default();
        w.push(1.0, &StatsSet::new(0));
        w.push(2.0, &stats_with(10));
        assert_eq!(w.rates(0).rps, 10.0, "the new row counted from zero");
        assert_eq!(w.rates(1).rps, 10.0, "Aggregated");
    }
}
