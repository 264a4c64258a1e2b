//! The spawn pacer: how many users may start (or stop) now to move toward a target at a rate.
//! One definition serves the engine's users and the master's dispatcher, so a local test and a
//! distributed one ramp alike.
//!
//! Users are moved in steps of `step` (1 in the engine; Locust's max(1, ⌊rate⌋) at a master,
//! which ships each step to the workers as one message). The first step is due at once; after
//! that, credit accrues at `rate` users per second and a step is due whenever a whole step of
//! credit is there. A late call catches up at most one second's worth, so a stall does not
//! turn into a burst; a changed target restarts the pacer.

use std::time::{Duration, Instant};

/// Paces a ramp at a rate, in whole steps.
#[derive(Clone, Debug)]
pub struct Pacer {
    rate_per_s: f64,
    step: u64,
    credit: f64,
    last: Instant,
}

/// The slowest rate a pacer takes (users per second); lower rates are raised to it.
pub const MIN_RATE_PER_S: f64 = 0.001;

/// The most time a late call catches up on, seconds.
const MAX_CATCH_UP_S: f64 = 1.0;

impl Pacer {
    /// A pacer at `rate_per_s` users per second moving `step` users at a time (at least 1);
    /// its first step is due at `now`.
    pub fn new(rate_per_s: f64, step: u64, now: Instant) -> Self {
        let step = step.max(1);
        Self {
            rate_per_s: rate_per_s.max(MIN_RATE_PER_S),
            step,
            credit: step as f64,
            last: now,
        }
    }

    /// Locust's dispatch step at `rate_per_s`: max(1, ⌊rate⌋) users.
    pub fn locust_step(rate_per_s: f64) -> u64 {
        rate_per_s.floor().max(1.0) as u64
    }

    /// Starts over at a new rate (a changed user count): the first step is due at once.
    pub fn restart(&mut self, rate_per_s: f64, step: u64, now: Instant) {
        *self = Self::new(rate_per_s, step, now);
    }

    /// The rate, users per second.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    /// How many of the `wanted` users may move at `now`, in whole steps (the last step may be
    /// short when fewer are wanted). The users returned are taken from the credit.
    pub fn take(&mut self, now: Instant, wanted: u64) -> u64 {
        let step = self.step as f64;
        let elapsed_s = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        // A late call catches up at most one second's worth beyond a step.
        let cap = step + self.rate_per_s * MAX_CATCH_UP_S;
        self.credit = (self.credit + elapsed_s * self.rate_per_s).min(cap);
        // The epsilon absorbs float sums (ten 0.1 s ticks at 10/s are a whole 10 users).
        let due = (((self.credit / step + 1e-9).floor() * step) as u64).min(wanted);
        // A short last step costs a whole step: the pace does not depend on the target.
        let cost = due.div_ceil(self.step).saturating_mul(self.step);
        self.credit = (self.credit - cost as f64).max(0.0);
        due
    }

    /// When the next whole step is due (at or after `now`).
    pub fn next_due(&self, now: Instant) -> Instant {
        let missing = (self.step as f64 - self.credit).max(0.0);
        let at = self.last + Duration::from_secs_f64(missing / self.rate_per_s);
        at.max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn first_step_at_once_then_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0, 1, t0);
        assert_eq!(p.take(t0, 100), 1);
        assert_eq!(p.take(at(t0, 50), 100), 0);
        assert_eq!(p.take(at(t0, 100), 100), 1);
        // A second later: 10 more (credit accrued at 10/s, taken each tick).
        let mut moved = 0;
        for ms in (110..=1100).step_by(10) {
            moved += p.take(at(t0, ms), 100);
        }
        assert_eq!(moved, 10);
    }

    #[test]
    fn locust_steps_at_a_master() {
        let t0 = Instant::now();
        let step = Pacer::locust_step(2.5);
        assert_eq!(step, 2);
        let mut p = Pacer::new(2.5, step, t0);
        assert_eq!(p.take(t0, 10), 2, "the first step at once");
        assert_eq!(p.next_due(t0), at(t0, 800), "step / rate later");
        assert_eq!(p.take(at(t0, 799), 10), 0);
        assert_eq!(p.take(at(t0, 800), 10), 2);
        assert_eq!(p.take(at(t0, 1600), 1), 1, "a short last step");
        assert_eq!(Pacer::locust_step(0.2), 1);
    }

    #[test]
    fn a_stall_catches_up_at_most_one_second() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1.0, 1, t0);
        assert_eq!(p.take(t0, 1), 1);
        // Not called for a minute, then 50 wanted: a step plus one second's worth, then the rate.
        assert_eq!(p.take(at(t0, 60_000), 50), 2);
        assert_eq!(p.take(at(t0, 60_500), 50), 0);
        assert_eq!(p.take(at(t0, 61_000), 50), 1);
    }

    #[test]
    fn tiny_and_absurd_rates_do_not_misbehave() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0.0, 1, t0);
        assert_eq!(p.rate_per_s(), MIN_RATE_PER_S);
        assert_eq!(p.take(t0, 5), 1);
        assert!(p.next_due(t0) > at(t0, 900_000));
        let mut q = Pacer::new(1e6, Pacer::locust_step(1e6), t0);
        assert_eq!(q.take(t0, 7), 7);
    }
}
