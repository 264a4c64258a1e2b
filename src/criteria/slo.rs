//! Per-request service-level objectives, judged: a successful request that meets every rule
//! (`--slo ttft<500ms,tpot<50ms`) is "good"; goodput is good requests per second. Failed requests
//! are never good. The rules are the plan's ([`crate::config::slo`]); the engine turns them into
//! the recorder's [`SloCheck`] with [`check`].

pub use crate::config::slo::{describe, SloError, SloRule};
use crate::metrics::{MetricId, RequestRecord, SloCheck};
use std::time::Duration;

/// This request's value of `metric`; `None` when it has nothing to judge (e.g. TPOT of 1 token).
/// ITL, pooled over requests in the statistics, is judged per request as its mean gap between
/// token-bearing events (fewer than 2 events: nothing to judge).
fn measure(metric: MetricId, rec: &RequestRecord) -> Option<Duration> {
    match metric {
        MetricId::Itl => {
            let span = rec.last_token?.saturating_duration_since(rec.first_token?);
            (rec.token_events >= 2).then(|| span / (rec.token_events - 1))
        }
        other => other.sample(rec).map(Duration::from_micros),
    }
}

/// Whether a request meets `rule` (a request with nothing to judge meets it).
pub fn met_by(rule: &SloRule, rec: &RequestRecord) -> bool {
    match measure(rule.metric, rec) {
        Some(d) => rule.op.holds(d.as_secs_f64() * 1000.0, rule.limit_ms),
        // A success always has headers and a first token, so only TPOT/ITL (and the open loop's
        // metrics in a closed-loop test) land here.
        None => !matches!(rule.metric, MetricId::Ttfb | MetricId::Ttft),
    }
}

/// The recorder's check: a request is good when it meets every rule.
pub fn check(rules: Vec<SloRule>) -> SloCheck {
    Box::new(move |rec: &RequestRecord| rules.iter().all(|r| met_by(r, rec)))
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

    fn met(s: &str, rec: &RequestRecord) -> bool {
        met_by(&s.parse::<SloRule>().unwrap(), rec)
    }

    #[test]
    fn checks_every_metric() {
        // TTFT 100 ms, E2E 1000 ms, 10 tokens: TPOT = ITL = 900/9 = 100 ms.
        let rec = record(100, 1000, 10);
        assert!(met("ttfb<2ms", &rec) && !met("ttfb<1ms", &rec) && met("ttfb<=1ms", &rec));
        assert!(met("ttft<101ms", &rec) && !met("ttft<100ms", &rec) && met("ttft<=100ms", &rec));
        assert!(met("tpot<=100ms", &rec) && !met("tpot<100ms", &rec));
        assert!(met("itl<=100ms", &rec) && !met("itl<99ms", &rec));
        assert!(met("e2e<1.01s", &rec) && !met("e2e<1s", &rec));
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
        assert!(met("tpot<1ms", &rec));
        assert!(met("itl<1ms", &rec));
    }

    #[test]
    fn open_loop_rules_judge_from_the_intended_start() {
        let mut rec = record(100, 1000, 10);
        // Closed loop: nothing to judge.
        assert!(met("ttft_intended<1ms", &rec));
        let late = Duration::from_millis(300);
        rec.intended = Some(rec.start);
        rec.start += late;
        rec.first_token = rec.first_token.map(|t| t + late);
        assert!(met("ttft<101ms", &rec));
        assert!(!met("ttft_intended<400ms", &rec) && met("ttft_intended<=400ms", &rec));
        assert!(met("schedule_lag<=300ms", &rec) && !met("schedule_lag<300ms", &rec));
    }
}
