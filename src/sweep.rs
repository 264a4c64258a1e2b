//! `gsai-load sweep`: finds the highest request rate that still meets the SLOs, by running
//! short open-loop steps of doubling rate until one misses, then bisecting between the last
//! rate that passed and the first that failed.
//!
//! A step passes when the share of good requests (successful and within every `--slo`) among
//! all arrivals (finished, dropped and cancelled ones included) reaches `--attainment`.

use crate::config::Plan;
use crate::engine::{self, EngineError};
use serde::Serialize;
use std::time::Duration;

/// How to search.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// First rate tried, requests/s.
    pub start_rate: f64,
    /// Highest rate tried; if it passes, it is the answer.
    pub max_rate: f64,
    /// Length of each step.
    pub step_time: Duration,
    /// Share of good requests a step needs (0..1).
    pub attainment: f64,
    /// Bisection stops when (failed − passed) / passed is at most this.
    pub precision: f64,
}

/// One measured step.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Step {
    /// Offered rate, requests/s.
    pub rate: f64,
    /// Finished requests per second achieved.
    pub achieved_rps: f64,
    /// Good requests per second.
    pub goodput: f64,
    /// Good requests / all arrivals.
    pub good_fraction: f64,
    /// TTFT p95, ms.
    pub ttft_p95_ms: f64,
    /// TPOT p95, ms.
    pub tpot_p95_ms: f64,
    /// Failed requests.
    pub failures: u64,
    /// Whether the step met the attainment.
    pub passed: bool,
}

/// The search's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The highest rate that passed (None if even the start rate failed).
    pub best_rate: Option<f64>,
}

/// The search's own flags of `gsai-load sweep` (beside a test's flags: `cli::SweepCmd`).
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// First rate tried, requests/s.
    #[arg(long, default_value_t = 1.0, help_heading = "Sweep")]
    pub start_rate: f64,
    /// Highest rate tried, requests/s.
    #[arg(long, default_value_t = 1024.0, help_heading = "Sweep")]
    pub max_rate: f64,
    /// Length of each step.
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration, help_heading = "Sweep")]
    pub step_time: Duration,
    /// Share of arrivals that must be good (succeed within every SLO) for a step to pass, e.g. 90% or 0.9.
    #[arg(long, default_value = "90%", value_parser = crate::config::parse_ratio, help_heading = "Sweep")]
    pub attainment: f64,
    /// Stop bisecting when the gap between the passing and the failing rate is at most this share.
    #[arg(long, default_value = "5%", value_parser = crate::config::parse_ratio, help_heading = "Sweep")]
    pub precision: f64,
}

/// Why a sweep cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// No SLO given.
    #[error("sweep needs --slo (e.g. --slo ttft<500ms,tpot<50ms): it finds the highest rate that meets it")]
    NoSlo,
    /// Bad rates.
    #[error("--start-rate and --max-rate must be above 0, with --start-rate at most --max-rate")]
    Rates,
    /// Bad precision.
    #[error("--precision must be above 0%")]
    Precision,
    /// The engine refused the plan.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SweepArgs {
    /// The search parameters, validated.
    pub fn spec(&self) -> Result<SweepSpec, SweepError> {
        if !(self.start_rate > 0.0 && self.max_rate >= self.start_rate && self.max_rate.is_finite())
        {
            return Err(SweepError::Rates);
        }
        if self.precision <= 0.0 {
            return Err(SweepError::Precision);
        }
        Ok(SweepSpec {
            start_rate: self.start_rate,
            max_rate: self.max_rate,
            step_time: self.step_time,
            attainment: self.attainment,
            precision: self.precision,
        })
    }
}

/// The steps as a table, with the answer.
pub fn table(result: &SweepResult, spec: &SweepSpec) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_HORIZONTAL_ONLY)
        .remove_style(comfy_table::TableComponent::HorizontalLines)
        .remove_style(comfy_table::TableComponent::MiddleIntersections)
        .set_header(vec![
            "rate (req/s)",
            "achieved req/s",
            "goodput",
            "good %",
            "TTFT p95 (ms)",
            "TPOT p95 (ms)",
            "failures",
            "SLO",
        ]);
    for s in &result.steps {
        t.add_row(vec![
            format!("{:.2}", s.rate),
            format!("{:.2}", s.achieved_rps),
            format!("{:.2}", s.goodput),
            format!("{:.1}", s.good_fraction * 100.0),
            format!("{:.1}", s.ttft_p95_ms),
            format!("{:.1}", s.tpot_p95_ms),
            s.failures.to_string(),
            if s.passed {
                "met".into()
            } else {
                "missed".into()
            },
        ]);
    }
    let answer = match result.best_rate {
        Some(r) if result.steps.iter().all(|s| s.passed) => {
            format!("Highest rate meeting the SLOs: at least {r:.2} req/s (the --max-rate; raise it to search further)")
        }
        Some(r) => format!(
            "Highest rate meeting the SLOs ({:.0}% of arrivals good): {r:.2} req/s",
            spec.attainment * 100.0
        ),
        None => format!(
            "Even {:.2} req/s misses the SLOs; lower --start-rate",
            spec.start_rate
        ),
    };
    format!("{t}\n{answer}\n")
}

/// Runs one step at `rate` with `base`'s target and SLOs.
pub async fn step(base: &Plan, rate: f64, spec: &SweepSpec) -> Result<Step, EngineError> {
    let mut plan = base.clone();
    plan.rate = Some(rate);
    plan.stages = None;
    plan.run_time = Some(spec.step_time);
    plan.max_requests = None;
    // A step's leftovers must not spill into the next one.
    plan.stop_timeout = plan.stop_timeout.min(Duration::from_secs(2));
    let result = engine::start(plan)?.wait().await;
    let t = result.stats.total();
    let arrivals = t.requests + t.dropped + t.cancelled;
    let secs = spec.step_time.as_secs_f64();
    let good_fraction = if arrivals > 0 {
        t.good as f64 / arrivals as f64
    } else {
        0.0
    };
    let q = |m: &crate::metrics::Metric| m.quantile(0.95).map_or(0.0, |v| v as f64 / 1000.0);
    Ok(Step {
        rate,
        achieved_rps: t.requests as f64 / secs,
        goodput: t.good as f64 / secs,
        good_fraction,
        ttft_p95_ms: q(t.metric(crate::metrics::MetricId::Ttft)),
        tpot_p95_ms: q(t.metric(crate::metrics::MetricId::Tpot)),
        failures: t.failures,
        passed: arrivals > 0 && good_fraction >= spec.attainment,
    })
}

/// Runs the search; `on_step` sees each step as it completes (for live output).
pub async fn run(
    base: &Plan,
    spec: &SweepSpec,
    mut on_step: impl FnMut(&Step),
) -> Result<SweepResult, SweepError> {
    if base.slo.is_empty() {
        return Err(SweepError::NoSlo);
    }
    let mut steps = Vec::new();
    let mut passed: Option<f64> = None;
    let mut failed: Option<f64> = None;
    let mut rate = spec.start_rate;
    // Doubling phase.
    loop {
        let s = step(base, rate, spec).await?;
        on_step(&s);
        steps.push(s);
        if s.passed {
            passed = Some(rate);
            if rate >= spec.max_rate {
                break;
            }
            rate = (rate * 2.0).min(spec.max_rate);
        } else {
            failed = Some(rate);
            break;
        }
    }
    // Bisection phase.
    while let (Some(lo), Some(hi)) = (passed, failed) {
        if (hi - lo) / lo <= spec.precision {
            break;
        }
        let mid = (lo + hi) / 2.0;
        let s = step(base, mid, spec).await?;
        on_step(&s);
        steps.push(s);
        if s.passed {
            passed = Some(mid);
        } else {
            failed = Some(mid);
        }
    }
    Ok(SweepResult {
        steps,
        best_rate: passed,
    })
}
