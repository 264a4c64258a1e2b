//! Run-level thresholds (`--threshold 'ttft.p95<800ms'`, repeatable), judged on the Aggregated
//! figures at the end of a run (exit code 99 when one fails, k6's convention) and, with
//! `--threshold-abort`, on the running figures once a second.
//!
//! Grammar: `METRIC[.STAT] OP NUMBER[UNIT]`, whitespace ignored.
//! - Every metric of the catalogue ([`MetricId`]: `ttfb`, `ttft`, `tpot`, `itl`, `e2e`,
//!   `response_time`, `connect`, `ttfe`, `schedule_lag`, `ttft_intended`, `e2e_intended`,
//!   `output_tokens`, `output_tps`) needs a statistic: `p50`, `p90`, `p95`, `p99` (any `pNN[.N]`),
//!   `min`, `max`, `mean` (or `avg`). Times take units `ms` (the default), `s`, `us`; token
//!   counts and `output_tps` (tokens/s per request) take plain numbers.
//! - `fail_rate` and `good_fraction` are ratios: `1%` or `0.01`.
//! - `rps`, `goodput` (requests/s), `output_tokens_per_s` (tokens/s), `requests`, `failures`
//!   (counts) take plain numbers.
//! - Operators `<`, `<=`, `>`, `>=`, `==`.

use super::{number_and_unit, split, time_ms, CmpOp};
use crate::metrics::{MetricId, NameStats, Unit};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A statistic of a metric's distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    /// Percentile, 0 < p ≤ 100.
    Percentile(f64),
    /// Smallest sample.
    Min,
    /// Largest sample.
    Max,
    /// Exact mean.
    Mean,
}

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// A statistic of a catalogue metric, in its display unit (ms for times).
    Metric(MetricId, Stat),
    /// Failed / finished requests, in %.
    FailRate,
    /// Finished requests per second.
    Rps,
    /// Output tokens per second.
    OutputTokensPerS,
    /// Good requests (succeeded and met every `--slo`) per second.
    Goodput,
    /// Good / finished requests, in %.
    GoodFraction,
    /// Finished requests.
    Requests,
    /// Failed requests.
    Failures,
}

const SCALARS: [(&str, Measure); 7] = [
    ("fail_rate", Measure::FailRate),
    ("rps", Measure::Rps),
    ("output_tokens_per_s", Measure::OutputTokensPerS),
    ("goodput", Measure::Goodput),
    ("good_fraction", Measure::GoodFraction),
    ("requests", Measure::Requests),
    ("failures", Measure::Failures),
];

impl Measure {
    /// Unit of the measured value and the limit, as shown in reports.
    pub fn unit(self) -> &'static str {
        match self {
            Measure::Metric(m, _) => m.def().unit.display(),
            Measure::FailRate | Measure::GoodFraction => "%",
            Measure::Rps | Measure::Goodput => "req/s",
            Measure::OutputTokensPerS => "tok/s",
            Measure::Requests | Measure::Failures => "",
        }
    }

    /// Canonical name, e.g. `ttft.p95`, `fail_rate`.
    pub fn name(self) -> String {
        match self {
            Measure::Metric(l, stat) => {
                let stat = match stat {
                    Stat::Percentile(p) => format!("p{p}"),
                    Stat::Min => "min".into(),
                    Stat::Max => "max".into(),
                    Stat::Mean => "mean".into(),
                };
                format!("{}.{stat}", l.name())
            }
            other => SCALARS
                .iter()
                .find(|(_, m)| *m == other)
                .map_or_else(String::new, |(n, _)| (*n).to_string()),
        }
    }

    /// The value over `s`, in [`Measure::unit`]; `None` when there is nothing to measure yet.
    pub fn measure(self, s: &NameStats) -> Option<f64> {
        let span = s.span_s();
        let per_s = |n: u64| (span > 0.0).then(|| n as f64 / span);
        let pct = |n: u64| (s.requests > 0).then(|| n as f64 * 100.0 / s.requests as f64);
        match self {
            Measure::Metric(id, stat) => {
                let m = s.metric(id);
                let v = match stat {
                    Stat::Percentile(p) => m.quantile(p / 100.0).map(|v| v as f64),
                    Stat::Min => m.min().map(|v| v as f64),
                    Stat::Max => m.max().map(|v| v as f64),
                    Stat::Mean => m.mean(),
                };
                v.map(|v| v / id.def().unit.display_scale())
            }
            Measure::FailRate => pct(s.failures),
            Measure::GoodFraction => pct(s.good),
            Measure::Rps => per_s(s.requests),
            Measure::OutputTokensPerS => per_s(s.metric(MetricId::OutputTokens).sum()),
            Measure::Goodput => per_s(s.good),
            Measure::Requests => Some(s.requests as f64),
            Measure::Failures => Some(s.failures as f64),
        }
    }
}

/// One `--threshold` expression, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The expression as given.
    pub expr: String,
    /// What it measures.
    pub measure: Measure,
    /// How the measured value must compare to the limit.
    pub op: CmpOp,
    /// The limit, in [`Measure::unit`] (ratios in %).
    pub limit: f64,
}

/// Why a `--threshold` expression was refused (a usage error: exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("--threshold '{input}': {reason} (expected e.g. 'ttft.p95<800ms', 'fail_rate<1%' or 'rps>20'; metrics: {} with .p50/.p90/.p95/.p99/.min/.max/.mean, and fail_rate, rps, output_tokens_per_s, goodput, good_fraction, requests, failures)", MetricId::names())]
pub struct ThresholdError {
    input: String,
    reason: String,
}

fn parse_stat(text: &str) -> Result<Stat, String> {
    match text {
        "min" => Ok(Stat::Min),
        "max" => Ok(Stat::Max),
        "mean" | "avg" => Ok(Stat::Mean),
        "median" => Ok(Stat::Percentile(50.0)),
        _ => {
            let p = text
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .ok_or_else(|| {
                    format!("unknown statistic '{text}': use p50, p90, p95, p99, min, max or mean")
                })?;
            Ok(Stat::Percentile(p))
        }
    }
}

fn parse_measure(name: &str) -> Result<Measure, String> {
    let (metric, stat) = match name.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (name, None),
    };
    if let Some(id) = MetricId::parse(metric) {
        let stat = stat.ok_or_else(|| {
            format!("'{metric}' needs a statistic, e.g. {metric}.p95 or {metric}.mean")
        })?;
        return Ok(Measure::Metric(id, parse_stat(stat)?));
    }
    let (_, m) = SCALARS
        .iter()
        .find(|(n, _)| *n == metric)
        .ok_or_else(|| format!("unknown metric '{metric}'"))?;
    if stat.is_some() {
        return Err(format!(
            "'{metric}' is a single figure: drop '.{}'",
            stat.unwrap_or("")
        ));
    }
    Ok(*m)
}

fn parse_limit(measure: Measure, value: &str) -> Result<f64, String> {
    match measure {
        Measure::Metric(id, _) if id.def().unit == Unit::Micros => time_ms(value),
        Measure::FailRate | Measure::GoodFraction => match number_and_unit(value)? {
            (n, "%") => Ok(n),
            (n, "") if n <= 1.0 => Ok(n * 100.0),
            (n, "") => Err(format!(
                "a ratio is written as a percentage or a fraction: {n}% or {}",
                n / 100.0
            )),
            (_, unit) => Err(format!(
                "unit '{unit}' does not fit a ratio: use % (e.g. 1%)"
            )),
        },
        _ => match number_and_unit(value)? {
            (n, "") => Ok(n),
            (_, unit) => Err(format!(
                "'{}' takes a plain number, without the unit '{unit}'",
                measure.name()
            )),
        },
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ThresholdError {
            input: input.to_string(),
            reason,
        };
        let text: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let parts = split(&text).map_err(err)?;
        let measure = parse_measure(parts.name).map_err(err)?;
        let limit = parse_limit(measure, parts.value).map_err(err)?;
        Ok(Threshold {
            expr: input.trim().to_string(),
            measure,
            op: parts.op,
            limit,
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// A threshold's verdict, as the summary, JSON and HTML show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The expression as given.
    pub expr: String,
    /// Canonical metric name, e.g. `ttft.p95`.
    pub metric: String,
    /// Operator.
    pub op: CmpOp,
    /// The limit, in `unit`.
    pub limit: f64,
    /// Unit of `limit` and `measured` (`ms`, `%`, `req/s`, `tok/s`, or empty for counts).
    pub unit: String,
    /// The measured value (`null` when there was nothing to measure, which fails the threshold).
    pub measured: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
}

impl Threshold {
    /// Judges this threshold on final figures: a threshold with nothing to measure fails.
    pub fn judge(&self, total: &NameStats) -> ThresholdResult {
        let measured = self.measure.measure(total);
        ThresholdResult {
            expr: self.expr.clone(),
            metric: self.measure.name(),
            op: self.op,
            limit: self.limit,
            unit: self.measure.unit().to_string(),
            measured,
            passed: measured.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }

    /// Whether running figures can already fail this threshold for good enough to stop a test:
    /// counts only grow, so `requests>N` (or `>=`, `==`) may still be met later; other figures
    /// are judged as they stand.
    fn judged_live(&self) -> bool {
        !matches!(
            (self.measure, self.op),
            (
                Measure::Requests | Measure::Failures,
                CmpOp::Gt | CmpOp::Ge | CmpOp::Eq
            )
        )
    }
}

/// Judges every threshold on the final Aggregated figures.
pub fn judge_all(thresholds: &[Threshold], total: &NameStats) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| t.judge(total)).collect()
}

/// For `--threshold-abort`: the first threshold the running figures already breach, if any.
/// Thresholds with nothing to measure yet, and count lower bounds, are not judged.
pub fn first_breach(thresholds: &[Threshold], running: &NameStats) -> Option<ThresholdResult> {
    thresholds
        .iter()
        .filter(|t| t.judged_live())
        .map(|t| t.judge(running))
        .find(|r| r.measured.is_some() && !r.passed)
}

/// `measured OP limit` with units, for summaries: `ttft.p95 = 734.2 ms (< 800 ms)`.
pub fn describe(r: &ThresholdResult) -> String {
    let v = |x: f64| {
        let n = if x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{x:.0}")
        } else if x.abs() >= 100.0 {
            format!("{x:.1}")
        } else if x.abs() >= 1.0 {
            format!("{x:.2}")
        } else {
            format!("{x:.3}")
        };
        match r.unit.as_str() {
            "" => n,
            "%" => format!("{n}%"),
            u => format!("{n} {u}"),
        }
    };
    let measured = r.measured.map_or_else(|| "no data".to_string(), v);
    format!("{} = {measured} (limit {} {})", r.metric, r.op, v(r.limit))
}

#[cfg(test)]
mod tests;
