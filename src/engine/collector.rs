//! The collector: turns per-second statistics deltas into the cumulative set, the timeline and
//! the published [`Snapshot`]s.
//!
//! The engine feeds it what its recorder drained; the distributed master feeds it what the
//! workers reported. Both therefore publish the same [`Snapshot`] and end with the same
//! [`RunResult`](crate::engine::RunResult) parts, so the console, JSON, CSV/HTML reports and the web UI need not know
//! whether a run was local or distributed.

use super::{RunState, Snapshot};
use crate::metrics::clock::unix_now_s;
use crate::metrics::{RequestKind, StatsSet, TimelinePoint, Window, MIN_POINT_GAP_S};
use std::sync::Arc;
use std::time::Instant;

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
    ///
    /// A push less than [`MIN_POINT_GAP_S`] after the previous one (the stop phase collects at
    /// once) still counts in full, but its delta joins the newest window slot and its point
    /// replaces the last one: a point over a sliver of a second would draw a spike in the rates.
    pub fn push(&mut self, delta: &StatsSet, live: Live) -> Arc<Snapshot> {
        self.push_at(delta, live, Instant::now(), unix_now_s())
    }

    /// [`Collector::push`] at a given time (`now` and the same moment in Unix seconds).
    fn push_at(
        &mut self,
        delta: &StatsSet,
        live: Live,
        now: Instant,
        unix_s: f64,
    ) -> Arc<Snapshot> {
        let seconds = now.duration_since(self.last).as_secs_f64();
        let replace = self
            .timeline
            .last()
            .is_some_and(|p| unix_s - p.unix_s < MIN_POINT_GAP_S);
        if replace {
            self.window.extend_last(delta, seconds);
        } else {
            self.window.push(delta, seconds);
        }
        self.last = now;
        self.cumulative.merge(delta);
        if self.cumulative.rows.len() < self.kinds.len() {
            self.cumulative
                .rows
                .resize(self.kinds.len(), crate::metrics::NameStats::default());
        }
        let total = self.cumulative.total();
        let point = TimelinePoint {
            unix_s,
            elapsed_s: live.elapsed_s,
            users: live.users,
            total_requests: total.requests,
            total_failures: total.failures,
            ..self.window.point()
        };
        match self.timeline.last_mut() {
            Some(last) if replace => *last = point,
            _ => self.timeline.push(point),
        }
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

    fn kinds() -> Arc<[RequestKind]> {
        vec![RequestKind {
            method: "POST".into(),
            name: "/x".into(),
        }]
        .into()
    }

    const LIVE: Live = Live {
        state: RunState::Running,
        elapsed_s: 1.0,
        users: 3,
        target_users: 4,
        in_flight: 2,
    };

    /// A collector whose clock starts now, at Unix time 1000.
    fn collector() -> (Collector, Instant) {
        let c = Collector::new(kinds());
        let t0 = c.last;
        (c, t0)
    }

    /// Pushes `n` requests `at_s` seconds after `t0` (Unix time 1000 + at_s).
    fn push(c: &mut Collector, t0: Instant, n: u64, at_s: f64) -> Arc<Snapshot> {
        let now = t0 + Duration::from_secs_f64(at_s);
        let live = Live {
            elapsed_s: at_s,
            ..LIVE
        };
        c.push_at(&delta(n), live, now, 1000.0 + at_s)
    }

    #[test]
    fn pushes_accumulate_into_snapshots_and_timeline() {
        let (mut c, t0) = collector();
        push(&mut c, t0, 5, 1.0);
        let snap = push(&mut c, t0, 7, 2.0);
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

    #[test]
    fn a_push_within_half_a_second_replaces_the_last_point_and_keeps_totals() {
        let (mut c, t0) = collector();
        // A full window of one-second slots; the first is busy, so dropping it would show.
        for (i, n) in [50, 10, 10, 10, 10].into_iter().enumerate() {
            push(&mut c, t0, n, 1.0 + i as f64);
        }
        // The stop phase collects 0.1 s after the last tick.
        let snap = push(&mut c, t0, 1, 5.1);
        assert_eq!(snap.stats.total().requests, 91, "the delta counts in full");
        let (stats, timeline) = c.into_parts();
        assert_eq!(stats.total().requests, 91);
        assert_eq!(timeline.len(), 5, "replaced, not appended");
        let last = timeline[4];
        assert_eq!(
            last, snap.point,
            "the snapshot publishes the replacing point"
        );
        assert_eq!((last.unix_s, last.elapsed_s), (1005.1, 5.1));
        assert_eq!(last.total_requests, 91);
        // The window still spans all five slots, the newest now 1.1 s long: 91 requests in 5.1 s.
        assert!((last.rps - 91.0 / 5.1).abs() < 1e-9, "{}", last.rps);
        assert_eq!(timeline[3].unix_s, 1004.0, "earlier points untouched");
    }

    #[test]
    fn pushes_half_a_second_apart_each_add_a_point() {
        let (mut c, t0) = collector();
        push(&mut c, t0, 1, 1.0);
        push(&mut c, t0, 1, 1.5);
        push(&mut c, t0, 1, 1.9);
        let (_, timeline) = c.into_parts();
        let at: Vec<f64> = timeline.iter().map(|p| p.elapsed_s).collect();
        assert_eq!(at, [1.0, 1.9], "1.5 s follows 1.0 s; 1.9 s replaces it");
    }
}
