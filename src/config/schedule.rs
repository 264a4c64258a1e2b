//! Load shapes over time: stages that ramp users or rates linearly (k6's ramping executors,
//! Locust's LoadTestShape) and the open-loop arrival process (constant or Poisson).
//! Pure functions of elapsed time and a seeded RNG, so they are unit-tested without a clock.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One stage: ramp linearly from the previous target to `target` over `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Users (closed loop) or requests/s (open loop) at the end of the stage.
    pub target: f64,
    /// Length of the stage.
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub duration: Duration,
}

/// A list of stages, parsed from `"10@30s,50@2m,0@10s"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stages(pub Vec<Stage>);

/// Why a `--stages` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid --stages '{input}': {reason}; expected TARGET@DURATION[,TARGET@DURATION...], e.g. 10@30s,50@2m,0@10s")]
pub struct StagesError {
    input: String,
    reason: String,
}

impl FromStr for Stages {
    type Err = StagesError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| StagesError {
            input: input.to_string(),
            reason,
        };
        let mut stages = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (target, duration) = part
                .split_once('@')
                .ok_or_else(|| err(format!("'{part}' has no '@'")))?;
            let target: f64 = target
                .trim()
                .parse()
                .map_err(|_| err(format!("'{target}' is not a number")))?;
            if !target.is_finite() || target < 0.0 {
                return Err(err(format!("target '{target}' must be 0 or more")));
            }
            let duration = super::parse_duration(duration).map_err(err)?;
            stages.push(Stage { target, duration });
        }
        if stages.is_empty() {
            return Err(err("no stages".into()));
        }
        Ok(Stages(stages))
    }
}

impl fmt::Display for Stages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| format!("{}@{}", s.target, humantime::format_duration(s.duration)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Stages {
    /// Total length of all stages.
    pub fn total(&self) -> Duration {
        self.0.iter().map(|s| s.duration).sum()
    }

    /// The target at `t` after the start, ramping from `start` before the first stage;
    /// None once every stage is over.
    pub fn target_at(&self, start: f64, t: Duration) -> Option<f64> {
        let mut from = start;
        let mut begin = Duration::ZERO;
        for s in &self.0 {
            let end = begin + s.duration;
            if t < end {
                let frac = if s.duration.is_zero() {
                    1.0
                } else {
                    (t - begin).as_secs_f64() / s.duration.as_secs_f64()
                };
                return Some(from + (s.target - from) * frac);
            }
            from = s.target;
            begin = end;
        }
        None
    }

    /// Stage boundaries as (start, end, target) offsets, for charts.
    pub fn boundaries(&self) -> Vec<(f64, f64, f64)> {
        let mut begin = 0.0;
        self.0
            .iter()
            .map(|s| {
                let end = begin + s.duration.as_secs_f64();
                let b = (begin, end, s.target);
                begin = end;
                b
            })
            .collect()
    }
}

/// Open-loop arrival process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced: one every 1/rate seconds.
    Constant,
    /// Poisson process: exponential gaps with mean 1/rate.
    Poisson,
}

impl Arrival {
    /// The gap to the next arrival at `rate` per second (None when the rate is 0).
    pub fn gap(self, rate: f64, rng: &mut impl Rng) -> Option<Duration> {
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let secs = match self {
            Arrival::Constant => 1.0 / rate,
            Arrival::Poisson => {
                // Inverse transform sampling; 1 - u is in (0, 1], so ln never sees 0.
                let u: f64 = rng.random();
                -(1.0 - u).ln() / rate
            }
        };
        Some(Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_and_ramps_linearly() {
        let s: Stages = "10@10s, 50@20s,0@5s".parse().unwrap();
        assert_eq!(s.total(), Duration::from_secs(35));
        let at = |secs: f64| s.target_at(0.0, Duration::from_secs_f64(secs));
        assert_eq!(at(0.0), Some(0.0));
        assert_eq!(at(5.0), Some(5.0));
        assert_eq!(at(10.0), Some(10.0));
        assert_eq!(at(20.0), Some(30.0));
        assert_eq!(at(32.5), Some(25.0));
        assert_eq!(at(35.0), None);
        assert_eq!(
            s.boundaries(),
            vec![(0.0, 10.0, 10.0), (10.0, 30.0, 50.0), (30.0, 35.0, 0.0)]
        );
        assert_eq!(s.to_string(), "10@10s,50@20s,0@5s");
    }

    #[test]
    fn refuses_bad_stages() {
        for bad in ["", "10", "x@1s", "10@soon", "-1@1s"] {
            let e = bad.parse::<Stages>().unwrap_err().to_string();
            assert!(e.contains("--stages"), "{e}");
        }
    }

    #[test]
    fn poisson_gaps_have_the_right_mean_and_variance() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
        let rate = 50.0;
        let n = 20_000;
        let gaps: Vec<f64> = (0..n)
            .map(|_| Arrival::Poisson.gap(rate, &mut rng).unwrap().as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        // Exponential: mean 1/rate, variance 1/rate²; 4 standard errors of tolerance.
        assert!(
            (mean - 0.02).abs() < 4.0 * 0.02 / (n as f64).sqrt(),
            "mean {mean}"
        );
        assert!((var - 0.0004).abs() < 0.0004 * 0.1, "variance {var}");
        assert_eq!(
            Arrival::Constant.gap(4.0, &mut rng),
            Some(Duration::from_millis(250))
        );
        assert_eq!(Arrival::Constant.gap(0.0, &mut rng), None);
    }
}
