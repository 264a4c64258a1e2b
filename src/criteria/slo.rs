//! Per-request service-level objectives (`--slo ttft<500ms,tpot<50ms`). A successful request that
//! meets every objective is "good"; goodput is good requests per second. Failed requests are never
//! good. The rules travel in the run plan (`Plan`); the engine turns them into the recorder's
//! [`SloCheck`] with [`check`].

use super::{split, time_ms, CmpOp};
use crate::metrics::{RequestRecord, SloCheck};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A per-request metric an SLO can bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Time to first byte (response headers).
    Ttfb,
    /// Time to first token.
    Ttft,
    /// Time per output token after the first (requests with fewer than 2 tokens meet it).
    Tpot,
    /// The request's mean gap between token-bearing events (fewer than 2 events meet it).
    Itl,
    /// End-to-end latency.
    E2e,
}

impl SloMetric {
    /// Every metric, in the order they are listed in messages.
    pub const ALL: [SloMetric; 5] = [
        SloMetric::Ttfb,
        SloMetric::Ttft,
        SloMetric::Tpot,
        SloMetric::Itl,
        SloMetric::E2e,
    ];

    /// Name as written in `--slo`.
    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::Ttfb => "ttfb",
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::Itl => "itl",
            SloMetric::E2e => "e2e",
        }
    }

    /// This request's value; `None` when the request has nothing to judge (e.g. TPOT of 1 token).
    fn measure(self, rec: &RequestRecord) -> Option<Duration> {
        match self {
            SloMetric::Ttfb => rec.ttfb(),
            SloMetric::Ttft => rec.ttft(),
            SloMetric::Tpot => rec.tpot(),
            SloMetric::Itl => {
                let span = rec.last_token?.saturating_duration_since(rec.first_token?);
                (rec.token_events >= 2).then(|| span / (rec.token_events - 1))
            }
            SloMetric::E2e => Some(rec.e2e()),
        }
    }
}

/// One objective: `metric < limit` (or `<=`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloRule {
    /// What is bounded.
    pub metric: SloMetric,
    /// `<` or `<=`.
    pub op: CmpOp,
    /// The bound, milliseconds.
    pub limit_ms: f64,
}

/// Why an `--slo` rule was refused.
#[derive(Debug, thiserror::Error)]
#[error("--slo '{input}': {reason} (expected e.g. --slo ttft<500ms,tpot<50ms; metrics: ttfb, ttft, tpot, itl, e2e; units: ms, s, us)")]
pub struct SloError {
    input: String,
    reason: String,
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
        let metric = SloMetric::ALL
            .into_iter()
            .find(|m| m.as_str() == parts.name.to_ascii_lowercase())
            .ok_or_else(|| err(format!("unknown metric '{}'", parts.name)))?;
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
        write!(f, "{}{}{}ms", self.metric.as_str(), self.op, self.limit_ms)
    }
}

impl SloRule {
    /// Whether a request meets this objective (a request with nothing to judge meets it).
    pub fn met_by(&self, rec: &RequestRecord) -> bool {
        match self.metric.measure(rec) {
            Some(d) => self.op.holds(d.as_secs_f64() * 1000.0, self.limit_ms),
            // A success always has headers and a first token, so only TPOT/ITL land here.
            None => !matches!(self.metric, SloMetric::Ttfb | SloMetric::Ttft),
        }
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

/// The recorder's check: a request is good when it meets every rule.
pub fn check(rules: Vec<SloRule>) -> SloCheck {
    Box::new(move |rec: &RequestRecord| rules.iter().all(|r| r.met_by(rec)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Outcome, TokenSource};
    use std::time::Instant;

    fn record(ttft_ms: u64, e2e_ms: u64, tokens: u64) -> RequestRecord {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RequestRecord::bare(0, t0, t0 + ms(e2e_ms), Outcome::Success);
        r.headers = Some(t0 + ms(1));
        r.first_token = Some(t0 + ms(ttft_ms));
        r.last_token = Some(t0 + ms(e2e_ms));
        r.token_events = tokens as u32;
        r.output_tokens = Some((tokens, TokenSource::Usage));
        r
    }

    #[test]
    fn parses_rules_and_units() {
        let r: SloRule = "ttft<500ms".parse().unwrap();
        assert_eq!(
            r,
            SloRule {
                metric: SloMetric::Ttft,
                op: CmpOp::Lt,
                limit_ms: 500.0
            }
        );
        assert_eq!("E2E <= 2s".parse::<SloRule>().unwrap().limit_ms, 2000.0);
        assert_eq!("itl<1500us".parse::<SloRule>().unwrap().limit_ms, 1.5);
        assert_eq!("tpot<50".parse::<SloRule>().unwrap().limit_ms, 50.0);
        for bad in ["ttft>5ms", "speed<5ms", "ttft<5h", "ttft", "ttft==5ms"] {
            let e = bad.parse::<SloRule>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("--slo"), "{e}");
        }
    }

    #[test]
    fn checks_every_metric() {
        // TTFT 100 ms, E2E 1000 ms, 10 tokens: TPOT = ITL = 900/9 = 100 ms.
        let rec = record(100, 1000, 10);
        let met = |s: &str| s.parse::<SloRule>().unwrap().met_by(&rec);
        assert!(met("ttfb<2ms") && !met("ttfb<1ms") && met("ttfb<=1ms"));
        assert!(met("ttft<101ms") && !met("ttft<100ms") && met("ttft<=100ms"));
        assert!(met("tpot<=100ms") && !met("tpot<100ms"));
        assert!(met("itl<=100ms") && !met("itl<99ms"));
        assert!(met("e2e<1.01s") && !met("e2e<1s"));
        let all = check(vec![
            "ttft<200ms".parse().unwrap(),
            "e2e<2s".parse().unwrap(),
        ]);
        assert!(all(&rec));
        let strict = check(vec![
            "ttft<200ms".parse().unwrap(),
            "e2e<1s".parse().unwrap(),
        ]);
        assert!(!strict(&rec));
    }

    #[test]
    fn one_token_meets_tpot_and_itl() {
        let rec = record(100, 100, 1);
        assert!("tpot<1ms".parse::<SloRule>().unwrap().met_by(&rec));
        assert!("itl<1ms".parse::<SloRule>().unwrap().met_by(&rec));
    }

    #[test]
    fn describes_rules() {
        let rules: Vec<SloRule> = vec!["ttft<0.5s".parse().unwrap(), "tpot<=50ms".parse().unwrap()];
        assert_eq!(describe(&rules), "ttft<500ms,tpot<=50ms");
    }
}
