//! The collector: turns per-second statistics deltas into the cumulative set, the timeline and
//! the published [`Snapshot`]s.
//!
//! The engine feeds it what its recorder drained; the distributed master feeds it what the
//! workers reported. Both therefore publish the same [`Snapshot`] and end with the same
//! [`RunResult`] parts, so the console, JSON, CSV/HTML reports and the web UI need not know
//! whether a run was local or distributed.

use super::{RunState, Snapshot};
use crate::metrics::{RequestKind, StatsSet, TimelinePoint, Window};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The live figures that come from outside the statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Live {
    /// Phase.
    pub state: RunState,
    /// Seconds since the test started.
    pub elapsed_s: f64,
    /// Users running now.
    pub users: u64,
    /// Users asked for.
    pub target_users: u64,
    /// Requests in flight now.
    pub in_flight: u64,
}

/// Cumulative statistics, sliding window and timeline of one run.
#[derive(Debug)]
pub struct Collector {
    kinds: Arc<[RequestKind]>,
    cumulative: StatsSet,
    window: Window,
    timeline: Vec<TimelinePoint>,
    last: Instant,
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Collector {
    /// A collector for rows identified by `kinds`.
    pub fn new(kinds: Arc<[RequestKind]>) -> Self {
        Self {
            cumulative: StatsSet::new(kinds.len()),
            kinds,
            window: Window::new(5),
            timeline: Vec::new(),
            last: Instant::now(),
        }
    }

    /// Replaces the row identities (the master learns new ones from workers). Rows keep their
    /// indices; new kinds are appended.
    pub fn set_kinds(&mut self, kinds: Arc<[RequestKind]>) {
        if kinds.len() > self.cumulative.rows.len() {
            self.cumulative
                .rows
                .resize(kinds.len(), crate::metrics::NameStats::default());
        }
        self.kinds = kinds;
    }

    /// The row identities.
    pub fn kinds(&self) -> &Arc<[RequestKind]> {
        &self.kinds
    }

    /// Forgets statistics so far (the window too); the timeline stays.
    pub fn reset(&mut self) {
        self.cumulative.clear();
        self.window.clear();
    }

    /// Adds one delta (what was measured since the previous push) and returns the snapshot.
    pub fn push(&mut self, delta: &StatsSet, live: Live) -> Arc<Snapshot> {
        let now = Instant::now();
        self.window
            .push(delta, now.duration_since(self.last).as_secs_f64());
        self.last = now;
        self.cumulative.merge(delta);
        if self.cumulative.rows.len() < self.kinds.len() {
            self.cumulative
                .rows
                .resize(self.kinds.len(), crate::metrics::NameStats::default());
        }
        let total = self.cumulative.total();
        let point = TimelinePoint {
            unix_s: unix_now_s(),
            elapsed_s: live.elapsed_s,
            users: live.users,
            total_requests: total.requests,
            total_failures: total.failures,
            ..self.window.point()
        };
        self.timeline.push(point);
        Arc::new(Snapshot {
            state: live.state,
            elapsed_s: live.elapsed_s,
            users: live.users,
            target_users: live.target_users,
            in_flight: live.in_flight,
            point,
            stats: self.cumulative.clone(),
            kinds: self.kinds.clone(),
        })
    }

    /// Cumulative statistics so far.
    pub fn cumulative(&self) -> &StatsSet {
        &self.cumulative
    }

    /// The cumulative statistics and the timeline, for a [`super::RunResult`].
    pub fn into_parts(self) -> (StatsSet, Vec<TimelinePoint>) {
        (self.cumulative, self.timeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, RequestRecord};
    use std::time::Duration;

    fn delta(n: u64) -> StatsSet {
        let mut s = StatsSet::new(1);
        let t0 = Instant::now();
        for i in 0..n {
            let r = RequestRecord::bare(0, t0, t0 + Duration::from_millis(i + 1), Outcome::Success);
            s.record(&r, &[], 1, 2, true);
        }
        s
    }

    #[test]
    fn pushes_accumulate_into_snapshots_and_timeline() {
        let kinds: Arc<[RequestKind]> = vec![RequestKind {
            method: "POST".into(),
            name: "/x".into(),
        }]
        .into();
        let mut c = Collector::new(kinds);
        let live = Live {
            state: RunState::Running,
            elapsed_s: 1.0,
            users: 3,
            target_users: 4,
            in_flight: 2,
        };
        c.push(&delta(5), live);
        let snap = c.push(
            &delta(7),
            Live {
                elapsed_s: 2.0,
                ..live
            },
        );
        assert_eq!(snap.stats.total().requests, 12);
        assert_eq!(snap.point.total_requests, 12);
        assert_eq!((snap.users, snap.target_users, snap.in_flight), (3, 4, 2));
        c.set_kinds(
            vec![
                RequestKind {
                    method: "POST".into(),
                    name: "/x".into(),
                },
                RequestKind {
                    method: "GET".into(),
                    name: "/y".into(),
                },
            ]
            .into(),
        );
        assert_eq!(c.cumulative().rows.len(), 2);
        c.reset();
        assert_eq!(c.cumulative().total().requests, 0);
        let (stats, timeline) = c.into_parts();
        assert_eq!(stats.rows.len(), 2);
        assert_eq!(timeline.len(), 2);
    }
}
