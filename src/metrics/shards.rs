//! Sharded recording: users record into one of several locked [`StatsSet`]s, and a collector
//! drains them all once a second. With more shards than threads a lock is almost never
//! contended, and it is held only for the few histogram increments of one request.

use super::{RequestRecord, StatsSet};
use std::sync::Mutex;
use std::time::Instant;

/// Per-request SLO check: returns true when a successful record meets every objective.
pub type SloCheck = Box<dyn Fn(&RequestRecord) -> bool + Send + Sync>;

/// A set of shards that record requests and drain into deltas.
pub struct ShardedRecorder {
    shards: Vec<Mutex<StatsSet>>,
    kinds: usize,
    anchor_instant: Instant,
    anchor_unix_us: u64,
    slo: Option<SloCheck>,
    warmup_until: Option<Instant>,
    /// Cleared sets swapped into the shards by `drain`, so a shard is locked only for a swap.
    spares: Mutex<Vec<StatsSet>>,
}

impl std::fmt::Debug for ShardedRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRecorder")
            .field("shards", &self.shards.len())
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl ShardedRecorder {
    /// `shards` shards for `kinds` request kinds; `slo` decides which successes are "good".
    pub fn new(shards: usize, kinds: usize, slo: Option<SloCheck>) -> Self {
        let anchor_unix_us = super::clock::unix_now_us();
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(StatsSet::new(kinds)))
                .collect(),
            kinds,
            anchor_instant: Instant::now(),
            anchor_unix_us,
            slo,
            warmup_until: None,
            spares: Mutex::new(Vec::new()),
        }
    }

    /// Requests starting (or scheduled to start) before `until` are counted only as warm-up.
    pub fn set_warmup_until(&mut self, until: Instant) {
        self.warmup_until = Some(until);
    }

    fn shard(&self, hint: usize) -> std::sync::MutexGuard<'_, StatsSet> {
        // A poisoned shard only means another thread panicked mid-record; the data is still usable.
        self.shards[hint % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an open-loop arrival of kind `kind` that was dropped (no free slot).
    pub fn record_dropped(&self, hint: usize, kind: usize, at: Instant) {
        let mut set = self.shard(hint);
        if self.warmup_until.is_some_and(|w| at < w) {
            return;
        }
        if kind >= set.rows.len() {
            set.rows.resize(kind + 1, Default::default());
        }
        set.rows[kind].dropped += 1;
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Converts a monotonic instant to µs since the Unix epoch, via the anchor taken at creation.
    pub fn unix_us(&self, t: Instant) -> u64 {
        if t >= self.anchor_instant {
            self.anchor_unix_us + u64::try_from((t - self.anchor_instant).as_micros()).unwrap_or(0)
        } else {
            self.anchor_unix_us
                .saturating_sub(u64::try_from((self.anchor_instant - t).as_micros()).unwrap_or(0))
        }
    }

    /// Whether `rec` began in the warm-up (and so counts in no statistic but `warmup`).
    pub fn in_warmup(&self, rec: &RequestRecord) -> bool {
        let began = rec.intended.unwrap_or(rec.start);
        self.warmup_until.is_some_and(|w| began < w)
    }

    /// Records a request into shard `hint % shards`.
    pub fn record(&self, hint: usize, rec: &RequestRecord, itl_us: &[u32]) {
        if self.in_warmup(rec) {
            let mut set = self.shard(hint);
            if rec.kind >= set.rows.len() {
                set.rows.resize(rec.kind + 1, Default::default());
            }
            set.rows[rec.kind].warmup += 1;
            return;
        }
        let good = rec.outcome == super::Outcome::Success
            && self.slo.as_ref().is_none_or(|check| check(rec));
        let start = self.unix_us(rec.start);
        let end = self.unix_us(rec.end);
        self.shard(hint).record(rec, itl_us, start, end, good);
    }

    /// Moves everything recorded since the last drain into one delta. Each shard is locked
    /// only to swap its set with a cleared spare; merging happens outside the lock, so
    /// recording never waits for it.
    pub fn drain(&self) -> StatsSet {
        let mut delta = StatsSet::new(self.kinds);
        let mut spares =
            std::mem::take(&mut *self.spares.lock().unwrap_or_else(|p| p.into_inner()));
        for shard in &self.shards {
            let mut taken = spares.pop().unwrap_or_else(|| StatsSet::new(self.kinds));
            {
                let mut set = shard.lock().unwrap_or_else(|p| p.into_inner());
                if set.is_empty() {
                    spares.push(taken);
                    continue;
                }
                std::mem::swap(&mut *set, &mut taken);
            }
            delta.merge(&taken);
            taken.clear();
            spares.push(taken);
        }
        *self.spares.lock().unwrap_or_else(|p| p.into_inner()) = spares;
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Outcome;
    use std::time::Duration;

    #[test]
    fn drain_collects_every_shard_once() {
        let r = ShardedRecorder::new(4, 1, None);
        let t0 = Instant::now();
        for i in 0..10 {
            let rec = RequestRecord::bare(0, t0, t0 + Duration::from_millis(i), Outcome::Success);
            r.record(i as usize, &rec, &[]);
        }
        let d = r.drain();
        assert_eq!(d.total().requests, 10);
        assert_eq!(d.total().good, 10);
        assert!(r.drain().is_empty());
    }

    #[test]
    fn slo_check_decides_good() {
        let r = ShardedRecorder::new(
            1,
            1,
            Some(Box::new(|rec: &RequestRecord| {
                rec.e2e() < Duration::from_millis(5)
            })),
        );
        let t0 = Instant::now();
        for ms in [1, 10] {
            let rec = RequestRecord::bare(0, t0, t0 + Duration::from_millis(ms), Outcome::Success);
            r.record(0, &rec, &[]);
        }
        assert_eq!(r.drain().total().good, 1);
    }

    #[test]
    fn unix_anchor_is_monotonic() {
        let r = ShardedRecorder::new(1, 1, None);
        let t = Instant::now();
        assert!(r.unix_us(t + Duration::from_secs(1)) - r.unix_us(t) == 1_000_000);
    }
}
