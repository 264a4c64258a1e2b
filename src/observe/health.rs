//! The generator's self-check: is the load generator itself the bottleneck?
//!
//! While a test runs, a [`HealthMonitor`] measures two things about this process:
//! - its CPU use, once a second, as a share of the cores it may use (100 % = all of them busy);
//! - the async runtime's scheduling lag: how late a timer set 1 ms ahead actually fires. When
//!   the runtime's threads are busy or starved of CPU, every response the generator reads is
//!   timestamped late by about this much, and client latencies include the generator's delay.
//!
//! At the end the figures, with the open loop's schedule lag when there is one, give a
//! [`Verdict`]: `ok`, `degraded` (latencies may include a few ms of the generator's own delay)
//! or `saturated` (the generator, not the server, limits the test). The thresholds live here,
//! in [`Thresholds`], and nowhere else.

use super::process::{cpu_time_s, usable_cores};
use crate::metrics::Metric;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the probe timer is set, and how far ahead.
pub const PROBE_EVERY: Duration = Duration::from_millis(1);

/// How the generator fared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The generator kept up: its own delay is small against any real latency.
    #[default]
    Ok,
    /// The generator was busy: latencies may include a few ms of its own delay.
    Degraded,
    /// The generator was the bottleneck: latencies and throughput are its, not the server's.
    Saturated,
}

impl Verdict {
    /// Its name in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Saturated => "saturated",
        }
    }

    /// What a user should know and do, in words; `None` when ok.
    pub fn advice(self) -> Option<&'static str> {
        match self {
            Verdict::Ok => None,
            Verdict::Degraded => Some("the load generator was busy: latencies may include a few milliseconds of its own delay; use fewer users per process or add workers"),
            Verdict::Saturated => Some("the load generator was the bottleneck: latencies include its own delay and throughput is its limit, not the server's; use fewer users per process or add workers (--processes-like scaling: gsai-load --master with more --worker)"),
        }
    }
}

/// Where the verdict changes. CPU is a share of the usable cores (Locust warns at 90 % of its
/// one core); lags are the 99th percentile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// CPU p95 (percent of usable cores) from which the generator is degraded.
    pub cpu_degraded_percent: f64,
    /// CPU p95 (percent of usable cores) from which it is saturated.
    pub cpu_saturated_percent: f64,
    /// Probe-timer lag p99 from which it is degraded, ms.
    pub loop_lag_degraded_ms: f64,
    /// Probe-timer lag p99 from which it is saturated, ms.
    pub loop_lag_saturated_ms: f64,
    /// Open-loop schedule lag p99 from which it is degraded, ms.
    pub schedule_lag_degraded_ms: f64,
    /// Open-loop schedule lag p99 from which it is saturated, ms.
    pub schedule_lag_saturated_ms: f64,
}

/// The thresholds every verdict uses.
pub const THRESHOLDS: Thresholds = Thresholds {
    cpu_degraded_percent: 80.0,
    cpu_saturated_percent: 95.0,
    loop_lag_degraded_ms: 10.0,
    loop_lag_saturated_ms: 50.0,
    schedule_lag_degraded_ms: 20.0,
    schedule_lag_saturated_ms: 100.0,
};

/// The self-check of one process (the `generator` key of the JSON result).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    /// Cores the process could use.
    pub cores: usize,
    /// 95th percentile of the per-second CPU use, percent of the usable cores.
    pub cpu_p95: f64,
    /// Highest per-second CPU use, percent of the usable cores.
    pub cpu_max: f64,
    /// 99th percentile of the probe timer's lateness, ms.
    pub loop_lag_p99_ms: f64,
    /// Largest probe-timer lateness, ms.
    pub loop_lag_max_ms: f64,
    /// Open loop: 99th percentile of how late requests started against their schedule, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag_p99_ms: Option<f64>,
    /// The judgement.
    pub verdict: Verdict,
    /// Distributed: each worker's own check (the verdict above is the worst of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerHealth>,
}

/// One worker's self-check, as its master reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerHealth {
    /// The worker's id.
    pub worker: String,
    /// CPU p95, percent of the worker's usable cores.
    pub cpu_p95: f64,
    /// Probe-timer lag p99, ms.
    pub loop_lag_p99_ms: f64,
    /// The worker's verdict.
    pub verdict: Verdict,
}

/// Judges figures against [`THRESHOLDS`].
pub fn judge(cpu_p95: f64, loop_lag_p99_ms: f64, schedule_lag_p99_ms: Option<f64>) -> Verdict {
    let t = THRESHOLDS;
    let sched = schedule_lag_p99_ms.unwrap_or(0.0);
    if cpu_p95 >= t.cpu_saturated_percent
        || loop_lag_p99_ms >= t.loop_lag_saturated_ms
        || sched >= t.schedule_lag_saturated_ms
    {
        Verdict::Saturated
    } else if cpu_p95 >= t.cpu_degraded_percent
        || loop_lag_p99_ms >= t.loop_lag_degraded_ms
        || sched >= t.schedule_lag_degraded_ms
    {
        Verdict::Degraded
    } else {
        Verdict::Ok
    }
}

impl GeneratorHealth {
    /// Adds the open loop's schedule lag p99 and judges again.
    pub fn with_schedule_lag(mut self, schedule_lag_p99_ms: Option<f64>) -> Self {
        self.schedule_lag_p99_ms = schedule_lag_p99_ms;
        self.verdict = self.verdict.max(judge(
            self.cpu_p95,
            self.loop_lag_p99_ms,
            schedule_lag_p99_ms,
        ));
        self
    }

    /// The whole test's figures in the live shape (for views of a finished test).
    pub fn as_now(&self) -> HealthNow {
        HealthNow {
            cpu_percent: self.cpu_p95,
            loop_lag_p99_ms: self.loop_lag_p99_ms,
            cpu_p95_so_far: self.cpu_p95,
            loop_lag_p99_so_far_ms: self.loop_lag_p99_ms,
            verdict: self.verdict,
        }
    }

    /// The master's view over its workers: the worst of each figure and verdict, with the
    /// per-worker list.
    pub fn of_workers(workers: Vec<WorkerHealth>) -> Self {
        let worst = |f: fn(&WorkerHealth) -> f64| workers.iter().map(f).fold(0.0, f64::max);
        Self {
            cores: 0,
            cpu_p95: worst(|w| w.cpu_p95),
            cpu_max: worst(|w| w.cpu_p95),
            loop_lag_p99_ms: worst(|w| w.loop_lag_p99_ms),
            loop_lag_max_ms: worst(|w| w.loop_lag_p99_ms),
            schedule_lag_p99_ms: None,
            verdict: workers.iter().map(|w| w.verdict).max().unwrap_or_default(),
            workers,
        }
    }
}

/// The figures of the last second, for live views (web UI, heartbeats, `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthNow {
    /// CPU use in the last second, percent of the usable cores.
    pub cpu_percent: f64,
    /// Probe-timer lag p99 in the last second, ms.
    pub loop_lag_p99_ms: f64,
    /// CPU p95 over the test so far, percent of the usable cores.
    pub cpu_p95_so_far: f64,
    /// Probe-timer lag p99 over the test so far, ms.
    pub loop_lag_p99_so_far_ms: f64,
    /// The verdict so far (over the whole test).
    pub verdict: Verdict,
}

impl HealthNow {
    /// The worse of two processes' figures (a master over its workers).
    pub fn worst(self, other: HealthNow) -> HealthNow {
        HealthNow {
            cpu_percent: self.cpu_percent.max(other.cpu_percent),
            loop_lag_p99_ms: self.loop_lag_p99_ms.max(other.loop_lag_p99_ms),
            cpu_p95_so_far: self.cpu_p95_so_far.max(other.cpu_p95_so_far),
            loop_lag_p99_so_far_ms: self
                .loop_lag_p99_so_far_ms
                .max(other.loop_lag_p99_so_far_ms),
            verdict: self.verdict.max(other.verdict),
        }
    }

    /// A worker's check for its master's result.
    pub fn of_worker(self, worker: &str) -> WorkerHealth {
        WorkerHealth {
            worker: worker.to_string(),
            cpu_p95: self.cpu_p95_so_far,
            loop_lag_p99_ms: self.loop_lag_p99_so_far_ms,
            verdict: self.verdict,
        }
    }
}

impl Verdict {
    /// The verdict named `s` (as [`Verdict::as_str`] writes it); `None` for anything else.
    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Ok, Verdict::Degraded, Verdict::Saturated]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Measures this process while a test runs; [`HealthMonitor::finish`] gives the result.
pub struct HealthMonitor {
    stop: CancellationToken,
    task: JoinHandle<GeneratorHealth>,
    live: watch::Receiver<HealthNow>,
}

impl HealthMonitor {
    /// Starts measuring on the current runtime.
    pub fn start() -> Self {
        let stop = CancellationToken::new();
        let (tx, live) = watch::channel(HealthNow::default());
        let task = tokio::spawn(measure(stop.clone(), tx));
        Self { stop, task, live }
    }

    /// The last second's figures, updated once a second.
    pub fn live(&self) -> watch::Receiver<HealthNow> {
        self.live.clone()
    }

    /// Stops measuring and judges.
    pub async fn finish(self) -> GeneratorHealth {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Per-second CPU shares are kept in tenths of a percent (HDR keeps integers).
const CPU_SCALE: f64 = 10.0;

async fn measure(stop: CancellationToken, live: watch::Sender<HealthNow>) -> GeneratorHealth {
    let cores = usable_cores();
    let (mut lag_all, mut lag_second, mut cpu) = (Metric::new(), Metric::new(), Metric::new());
    let mut second_start = Instant::now();
    let mut cpu_start = cpu_time_s();
    loop {
        let due = Instant::now() + PROBE_EVERY;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        let late_us = Instant::now().saturating_duration_since(due).as_micros();
        let late_us = u64::try_from(late_us).unwrap_or(u64::MAX);
        lag_all.record(late_us);
        lag_second.record(late_us);
        let wall_s = second_start.elapsed().as_secs_f64();
        if wall_s >= 1.0 {
            let now_cpu = cpu_time_s();
            let share = ((now_cpu - cpu_start) / wall_s / cores as f64 * 100.0).clamp(0.0, 100.0);
            cpu.record((share * CPU_SCALE).round() as u64);
            let p99_ms = lag_second.quantile(0.99).unwrap_or(0) as f64 / 1000.0;
            let cpu_p95_so_far = cpu.quantile(0.95).unwrap_or(0) as f64 / CPU_SCALE;
            let loop_lag_p99_so_far_ms = lag_all.quantile(0.99).unwrap_or(0) as f64 / 1000.0;
            live.send_replace(HealthNow {
                cpu_percent: share,
                loop_lag_p99_ms: p99_ms,
                cpu_p95_so_far,
                loop_lag_p99_so_far_ms,
                verdict: judge(cpu_p95_so_far, loop_lag_p99_so_far_ms, None),
            });
            lag_second.clear();
            second_start = Instant::now();
            cpu_start = now_cpu;
        }
    }
    let cpu_p95 = cpu.quantile(0.95).unwrap_or(0) as f64 / CPU_SCALE;
    let loop_lag_p99_ms = lag_all.quantile(0.99).unwrap_or(0) as f64 / 1000.0;
    GeneratorHealth {
        cores,
        cpu_p95,
        cpu_max: cpu.max().unwrap_or(0) as f64 / CPU_SCALE,
        loop_lag_p99_ms,
        loop_lag_max_ms: lag_all.max().unwrap_or(0) as f64 / 1000.0,
        schedule_lag_p99_ms: None,
        verdict: judge(cpu_p95, loop_lag_p99_ms, None),
        workers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_thresholds() {
        assert_eq!(judge(10.0, 1.2, None), Verdict::Ok);
        assert_eq!(judge(85.0, 1.2, None), Verdict::Degraded);
        assert_eq!(judge(10.0, 12.0, None), Verdict::Degraded);
        assert_eq!(judge(10.0, 1.0, Some(30.0)), Verdict::Degraded);
        assert_eq!(judge(99.0, 1.0, None), Verdict::Saturated);
        assert_eq!(judge(10.0, 80.0, None), Verdict::Saturated);
        assert_eq!(judge(10.0, 1.0, Some(150.0)), Verdict::Saturated);
        assert!(Verdict::Ok.advice().is_none());
        assert!(Verdict::Saturated.advice().unwrap().contains("add workers"));
    }

    #[test]
    fn the_master_takes_the_worst_worker() {
        let h = GeneratorHealth::of_workers(vec![
            WorkerHealth {
                worker: "a".into(),
                cpu_p95: 20.0,
                loop_lag_p99_ms: 1.0,
                verdict: Verdict::Ok,
            },
            WorkerHealth {
                worker: "b".into(),
                cpu_p95: 97.0,
                loop_lag_p99_ms: 3.0,
                verdict: Verdict::Saturated,
            },
        ]);
        assert_eq!(h.verdict, Verdict::Saturated);
        assert_eq!((h.cpu_p95, h.loop_lag_p99_ms), (97.0, 3.0));
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["verdict"], "saturated");
        assert_eq!(json["workers"][1]["worker"], "b");
    }

    /// A runtime thread that blocks shows up as probe lag; an idle one does not.
    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_as_loop_lag() {
        let m = HealthMonitor::start();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..5 {
            // Blocking the only runtime thread: the probe cannot fire for 60 ms each time.
            std::thread::sleep(Duration::from_millis(60));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let h = m.finish().await;
        assert!(h.loop_lag_max_ms >= 50.0, "{h:?}");
        assert!(h.cores >= 1);
    }
}
