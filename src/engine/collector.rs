//! The once-a-second collector: merges a delta into the cumulative statistics, extends the
//! timeline and builds the [`Snapshot`] that the console, web UI and reports read.

use super::{RunState, Snapshot};
use crate::metrics::{RequestKind, StatsSet, TimelinePoint, Window};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Cumulative statistics, the sliding window and the timeline of one run.
pub struct Collector {
    kinds: Arc<[RequestKind]>,
    /// Everything recorded so far (since the last reset).
    pub cumulative: StatsSet,
    window: Window,
    /// One point per collection.
    pub timeline: Vec<TimelinePoint>,
    last: Instant,
    started: Instant,
}

/// Live gauges that only the producer of the deltas knows.
#[derive(Clone, Copy, Debug)]
pub struct Gauges {
    /// Phase.
    pub state: RunState,
    /// Users running (or in-flight requests, open loop).
    pub users: u64,
    /// Users asked for.
    pub target_users: u64,
    /// Requests in flight.
    pub in_flight: u64,
}

impl Collector {
    /// A collector for a run that started at `started`.
    pub fn new(kinds: Arc<[RequestKind]>, started: Instant) -> Self {
        Self {
            cumulative: StatsSet::new(kinds.len()),
            kinds,
            window: Window::new(5),
            timeline: Vec::new(),
            last: started,
            started,
        }
    }

    /// Forgets the statistics (not the timeline).
    pub fn reset(&mut self) {
        self.cumulative.clear();
        self.window.clear();
    }

    /// Adds a delta and returns the snapshot that describes the run now.
    pub fn push(&mut self, delta: &StatsSet, gauges: Gauges) -> Snapshot {
        let now = Instant::now();
        self.window
            .push(delta, now.duration_since(self.last).as_secs_f64());
        self.last = now;
        self.cumulative.merge(delta);
        let total = self.cumulative.total();
        let point = TimelinePoint {
            unix_s: unix_now_s(),
            elapsed_s: now.duration_since(self.started).as_secs_f64(),
            users: gauges.users,
            total_requests: total.requests,
            total_failures: total.failures,
            ..self.window.point()
        };
        self.timeline.push(point);
        Snapshot {
            state: gauges.state,
            elapsed_s: point.elapsed_s,
            users: gauges.users,
            target_users: gauges.target_users,
            in_flight: gauges.in_flight,
            point,
            stats: self.cumulative.clone(),
            kinds: self.kinds.clone(),
        }
    }
}
