//! Per-request service-level objectives as the plan holds them (`--slo ttft<500ms,tpot<50ms`):
//! the rule, its parsing and its text form. A rule names a time metric of the catalogue
//! ([`MetricId`]); the criteria module judges requests against the rules.

use super::expr::{split, time_ms, CmpOp};
use crate::metrics::{MetricId, Unit};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One objective: `metric < limit` (or `<=`), judged on each successful request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloRule {
    /// What is bounded: a time metric of the catalogue (serialized by name, e.g. `ttft`).
    pub metric: MetricId,
    /// `<` or `<=`.
    pub op: CmpOp,
    /// The bound, milliseconds.
    pub limit_ms: f64,
}

/// Why an `--slo` rule was refused.
#[derive(Debug, thiserror::Error)]
#[error("--slo '{input}': {reason} (expected e.g. --slo ttft<500ms,tpot<50ms; metrics: {}; units: ms, s, us)", slo_metric_names())]
pub struct SloError {
    input: String,
    reason: String,
}

/// The metrics an SLO can bound: every time metric of the catalogue.
pub fn slo_metrics() -> impl Iterator<Item = MetricId> {
    MetricId::ALL
        .into_iter()
        .filter(|m| m.def().unit == Unit::Micros)
}

fn slo_metric_names() -> String {
    slo_metrics()
        .map(MetricId::name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for SloRule {
    type Err = SloError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| SloError {
            input: input.to_string(),
            reason,
        };
        let text: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let parts = split(&text).map_err(err)?;
        let metric = MetricId::parse(parts.name)
            .ok_or_else(|| err(format!("unknown metric '{}'", parts.name)))?;
        if metric.def().unit != Unit::Micros {
            return Err(err(format!(
                "'{}' is not a time: an SLO bounds a time per request",
                parts.name
            )));
        }
        if !matches!(parts.op, CmpOp::Lt | CmpOp::Le) {
            return Err(err(format!(
                "an SLO is an upper limit: use < or <=, not {}",
                parts.op
            )));
        }
        let limit_ms = time_ms(parts.value).map_err(err)?;
        Ok(SloRule {
            metric,
            op: parts.op,
            limit_ms,
        })
    }
}

impl fmt::Display for SloRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}ms", self.metric.name(), self.op, self.limit_ms)
    }
}

/// All rules written as one `--slo` value: `ttft<500ms,tpot<50ms`.
pub fn describe(rules: &[SloRule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_units() {
        let r: SloRule = "ttft<500ms".parse().unwrap();
        assert_eq!(
            r,
            SloRule {
                metric: MetricId::Ttft,
                op: CmpOp::Lt,
                limit_ms: 500.0
            }
        );
        assert_eq!("E2E <= 2s".parse::<SloRule>().unwrap().limit_ms, 2000.0);
        assert_eq!("itl<1500us".parse::<SloRule>().unwrap().limit_ms, 1.5);
        assert_eq!("tpot<50".parse::<SloRule>().unwrap().limit_ms, 50.0);
        assert_eq!(
            "ttft_intended<1s".parse::<SloRule>().unwrap().metric,
            MetricId::TtftIntended
        );
        for bad in [
            "ttft>5ms",
            "speed<5ms",
            "ttft<5h",
            "ttft",
            "ttft==5ms",
            "output_tokens<5",
        ] {
            let e = bad.parse::<SloRule>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("--slo"), "{e}");
        }
    }

    #[test]
    fn every_name_of_before_the_catalogue_still_parses() {
        for name in ["ttfb", "ttft", "tpot", "itl", "e2e"] {
            let r: SloRule = format!("{name}<5ms").parse().unwrap();
            assert_eq!(r.metric.name(), name);
        }
    }

    #[test]
    fn describes_rules_and_serializes_as_before() {
        let rules: Vec<SloRule> = vec!["ttft<0.5s".parse().unwrap(), "tpot<=50ms".parse().unwrap()];
        assert_eq!(describe(&rules), "ttft<500ms,tpot<=50ms");
        // The plan's JSON form is that of the SloMetric enum it replaced: old results still load.
        let json = serde_json::to_string(&rules[0]).unwrap();
        assert_eq!(json, r#"{"metric":"ttft","op":"<","limit_ms":500.0}"#);
        let back: SloRule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules[0]);
    }
}
