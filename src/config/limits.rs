//! The largest values a plan may hold: users, request rates and durations. One place, used by
//! the command line, the web form and the worker alike, so an absurd value (10^12 users, a run
//! of 10^14 hours) is refused up front with the flag and the maximum named, instead of starting
//! a run that cannot work or overflowing a clock.

use super::Plan;
use std::time::Duration;

/// Most simulated users (or open-loop requests in flight) in one process or one test.
pub const MAX_USERS: u64 = 1_000_000;

/// Highest open-loop rate, per second. (A spawn rate has no maximum: past the users it starts,
/// any rate means "all at once", which is what a master asks of its workers.)
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// Longest duration of any kind (run time, stop timeout, time limits, warm-up, one stage).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A value past its maximum; the message names the flag (or form field) and the maximum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {value} is more than the maximum of {max}")]
pub struct LimitError {
    /// The flag or form field.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// The maximum.
    pub max: String,
}

/// `users` must not pass [`MAX_USERS`].
pub fn users(flag: &'static str, users: u64) -> Result<(), LimitError> {
    if users <= MAX_USERS {
        return Ok(());
    }
    Err(LimitError {
        flag,
        value: users.to_string(),
        max: format!("{MAX_USERS} users"),
    })
}

/// A rate per second must not pass [`MAX_RATE_PER_S`].
pub fn rate(flag: &'static str, per_s: f64) -> Result<(), LimitError> {
    if per_s <= MAX_RATE_PER_S {
        return Ok(());
    }
    Err(LimitError {
        flag,
        value: format!("{per_s}/s"),
        max: format!("{MAX_RATE_PER_S}/s"),
    })
}

/// A duration must not pass [`MAX_DURATION`].
pub fn duration(flag: &'static str, d: Duration) -> Result<(), LimitError> {
    if d <= MAX_DURATION {
        return Ok(());
    }
    Err(LimitError {
        flag,
        value: humantime::format_duration(d).to_string(),
        max: "1 year (365 days)".to_string(),
    })
}

/// Every bounded value of a plan, named by its command-line flag.
pub fn check(plan: &Plan) -> Result<(), LimitError> {
    users("-u/--users", plan.users)?;
    if let Some(r) = plan.rate {
        rate("--rate", r)?;
    }
    if let Some(c) = plan.max_concurrency {
        users("--max-concurrency", c)?;
    }
    let durations = [
        ("-t/--run-time", plan.run_time),
        ("--stop-timeout", Some(plan.stop_timeout)),
        ("--warmup", plan.warmup),
        ("--connect-timeout", Some(plan.timeouts.connect)),
        ("--first-byte-timeout", Some(plan.timeouts.first_byte)),
        ("--idle-timeout", Some(plan.timeouts.idle)),
        ("--total-timeout", Some(plan.timeouts.total)),
    ];
    for (flag, d) in durations {
        if let Some(d) = d {
            duration(flag, d)?;
        }
    }
    if let Some(stages) = &plan.stages {
        for s in &stages.0 {
            duration("--stages", s.duration)?;
            if plan.rate.is_some() {
                rate("--stages", s.target)?;
            } else if s.target > MAX_USERS as f64 {
                users("--stages", u64::MAX)?;
            }
        }
        duration("--stages", stages.total())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_name_the_flag_and_the_maximum() {
        let mut p = Plan::new("http://h", "m");
        assert_eq!(check(&p), Ok(()));
        p.users = 1_000_000_000_000;
        let e = check(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            "-u/--users: 1000000000000 is more than the maximum of 1000000 users"
        );
        p.users = MAX_USERS;
        p.run_time = Some(Duration::from_secs(100_000_000_000_000 * 3600));
        assert!(check(&p)
            .unwrap_err()
            .to_string()
            .starts_with("-t/--run-time: "));
        p.run_time = Some(MAX_DURATION);
        p.stop_timeout = MAX_DURATION + Duration::from_secs(1);
        assert_eq!(check(&p).unwrap_err().flag, "--stop-timeout");
        p.stop_timeout = Duration::from_secs(1);
        p.stages = Some("10@400d".parse().unwrap());
        assert_eq!(check(&p).unwrap_err().flag, "--stages");
        p.stages = Some("2000000@1s".parse().unwrap());
        assert_eq!(check(&p).unwrap_err().flag, "--stages");
    }
}
