//! Threshold parsing and judging: every metric name, statistic, unit and operator.

use super::*;
use crate::metrics::{Outcome, RequestRecord, StatsSet, TokenSource};
use std::time::{Duration, Instant};

fn t(s: &str) -> Threshold {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// 10 requests over 10 s: 8 good successes, 1 slow success (not good), 1 failure.
/// Successes: TTFB 10 ms, TTFT 100..=900 ms, E2E 1 s, 10 tokens (TPOT = ITL ≈ (E2E−TTFT)/9).
fn stats() -> NameStats {
    let mut set = StatsSet::new(1);
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    for i in 0..10u64 {
        let outcome = if i == 9 {
            Outcome::Failure(crate::metrics::Failure::new(
                crate::metrics::FailureKind::HttpStatus,
                "boom",
            ))
        } else {
            Outcome::Success
        };
        let mut r = RequestRecord::bare(0, t0, t0 + ms(1000), outcome);
        r.headers = Some(t0 + ms(10));
        r.first_token = Some(t0 + ms(100 * (i + 1)));
        r.last_token = Some(t0 + ms(1000));
        r.token_events = 10;
        r.output_tokens = Some((10, TokenSource::Usage));
        let gaps = [100_000u32; 9];
        let start = 1_000_000_000 + i * 1_000_000;
        set.record(&r, &gaps, start, start + 1_000_000, i < 8);
    }
    set.total()
}

#[test]
fn parses_every_metric_and_statistic() {
    let latencies = [
        // The names that worked before the catalogue, then the rest of its time metrics.
        ("ttfb", MetricId::Ttfb),
        ("ttft", MetricId::Ttft),
        ("tpot", MetricId::Tpot),
        ("itl", MetricId::Itl),
        ("e2e", MetricId::E2e),
        ("response_time", MetricId::ResponseTime),
        ("connect", MetricId::Connect),
        ("ttfe", MetricId::Ttfe),
        ("schedule_lag", MetricId::ScheduleLag),
        ("ttft_intended", MetricId::TtftIntended),
        ("e2e_intended", MetricId::E2eIntended),
    ];
    let stats = [
        ("p50", Stat::Percentile(50.0)),
        ("p90", Stat::Percentile(90.0)),
        ("p95", Stat::Percentile(95.0)),
        ("p99", Stat::Percentile(99.0)),
        ("p99.9", Stat::Percentile(99.9)),
        ("min", Stat::Min),
        ("max", Stat::Max),
        ("mean", Stat::Mean),
        ("avg", Stat::Mean),
    ];
    for (name, l) in latencies {
        for (sname, s) in stats {
            let th = t(&format!("{name}.{sname}<800ms"));
            assert_eq!(th.measure, Measure::Metric(l, s));
            assert_eq!(th.limit, 800.0);
            assert_eq!(th.op, CmpOp::Lt);
        }
    }
    for (name, m) in SCALARS {
        let value = if matches!(m, Measure::FailRate | Measure::GoodFraction) {
            "5%"
        } else {
            "5"
        };
        assert_eq!(t(&format!("{name}>={value}")).measure, m, "{name}");
    }
}

#[test]
fn units_and_operators() {
    assert_eq!(t("ttft.p95<800ms").limit, 800.0);
    assert_eq!(t("e2e.p99<=5s").limit, 5000.0);
    assert_eq!(t("itl.p50<500us").limit, 0.5);
    assert_eq!(t("tpot.p50<50").limit, 50.0, "a bare number is ms");
    assert_eq!(t("fail_rate<1%").limit, 1.0);
    assert_eq!(t("fail_rate<0.01").limit, 1.0, "a fraction becomes %");
    assert_eq!(t("good_fraction>=95%").limit, 95.0);
    assert_eq!(t("rps>20").limit, 20.0);
    assert_eq!(t("output_tokens_per_s>1000").limit, 1000.0);
    // Metrics that are not times take plain numbers, in their display unit.
    assert_eq!(t("output_tokens.p50>=9").limit, 9.0);
    assert_eq!(t("output_tps.mean>100").measure.unit(), "tok/s");
    assert!("output_tokens.p50>9ms".parse::<Threshold>().is_err());
    assert_eq!(t(" TTFT.P95 < 800 MS ").measure.name(), "ttft.p95");
    for (text, op) in [
        ("rps<1", CmpOp::Lt),
        ("rps<=1", CmpOp::Le),
        ("rps>1", CmpOp::Gt),
        ("rps>=1", CmpOp::Ge),
        ("rps==1", CmpOp::Eq),
    ] {
        assert_eq!(t(text).op, op);
    }
    assert_eq!(t(" ttft.p95 < 800ms ").expr, "ttft.p95 < 800ms");
}

#[test]
fn refuses_bad_expressions_naming_them() {
    for (bad, why) in [
        ("ttft<800ms", "needs a statistic"),
        ("ttft.p0<1", "unknown statistic"),
        ("ttft.p101<1", "unknown statistic"),
        ("ttft.q95<1", "unknown statistic"),
        ("latency.p95<1", "unknown metric"),
        ("rps.p95>1", "single figure"),
        ("ttft.p95<5h", "unknown time unit"),
        ("fail_rate<5", "percentage or a fraction"),
        ("fail_rate<5ms", "does not fit a ratio"),
        ("rps>5ms", "plain number"),
        ("ttft.p95=800", "'=' alone"),
        ("ttft.p95", "no comparison operator"),
        ("ttft.p95<abc", "does not start with a number"),
    ] {
        let e = bad.parse::<Threshold>().unwrap_err().to_string();
        assert!(e.contains(&format!("--threshold '{bad}'")), "{e}");
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn measures_every_metric() {
    let s = stats();
    let m = |e: &str| t(e).measure.measure(&s).unwrap();
    assert_eq!(m("requests>0"), 10.0);
    assert_eq!(m("failures>0"), 1.0);
    assert_eq!(m("fail_rate<1%"), 10.0);
    assert_eq!(m("good_fraction>1%"), 80.0);
    // Starts 1 s apart, each 1 s long: the span is 10 s.
    assert!((m("rps>1") - 1.0).abs() < 1e-9);
    assert!((m("goodput>1") - 0.8).abs() < 1e-9);
    assert!(
        (m("output_tokens_per_s>1") - 9.0).abs() < 1e-9,
        "9 successes × 10 tokens / 10 s"
    );
    assert_eq!(m("ttfb.max<1"), 10.0);
    assert_eq!(m("ttft.min<1"), 100.0);
    assert_eq!(m("ttft.max<1"), 900.0);
    assert_eq!(m("ttft.mean<1"), 500.0);
    assert!((m("ttft.p50<1") - 500.0).abs() <= 0.5);
    assert!(
        (m("ttft.p90<1") - 900.0).abs() <= 1.0,
        "9 samples: p90 is the 9th"
    );
    assert_eq!(m("e2e.p99<1"), 1000.0);
    assert_eq!(m("response_time.p95<1"), 1000.0);
    assert_eq!(m("output_tokens.mean<1"), 10.0);
    assert_eq!(m("output_tps.mean<1"), 10.0, "10 tokens in 1 s");
    assert_eq!(m("itl.p50<1"), 100.0);
    assert!(m("tpot.min<1") > 0.0);
}

#[test]
fn judges_pass_fail_and_no_data() {
    let s = stats();
    let r = t("ttft.max<=900ms").judge(&s);
    assert!(r.passed);
    assert_eq!((r.metric.as_str(), r.unit.as_str()), ("ttft.max", "ms"));
    assert_eq!(r.measured, Some(900.0));
    assert!(!t("ttft.max<900ms").judge(&s).passed);
    assert!(!t("fail_rate<1%").judge(&s).passed);
    assert!(t("fail_rate<=10%").judge(&s).passed);
    assert!(t("requests==10").judge(&s).passed);
    assert!(t("rps>=1").judge(&s).passed);
    let empty = NameStats::default();
    let r = t("ttft.p95<800ms").judge(&empty);
    assert_eq!(r.measured, None);
    assert!(!r.passed, "nothing measured fails a threshold");
    assert!(describe(&r).contains("no data"));
}

#[test]
fn live_breaches_skip_count_lower_bounds_and_missing_data() {
    let s = stats();
    let ths = [t("requests>100"), t("failures>=5"), t("ttft.p95<1s")];
    assert_eq!(first_breach(&ths, &s), None);
    let ths = [t("requests>100"), t("fail_rate<1%")];
    assert_eq!(first_breach(&ths, &s).unwrap().expr, "fail_rate<1%");
    assert_eq!(
        first_breach(&[t("failures<1")], &s).unwrap().metric,
        "failures"
    );
    assert_eq!(
        first_breach(&[t("ttft.p95<1ms")], &NameStats::default()),
        None
    );
}

#[test]
fn describes_results() {
    let s = stats();
    assert_eq!(
        describe(&t("ttft.max<1s").judge(&s)),
        "ttft.max = 900 ms (limit < 1000 ms)"
    );
    assert_eq!(
        describe(&t("fail_rate<1%").judge(&s)),
        "fail_rate = 10% (limit < 1%)"
    );
    assert_eq!(
        describe(&t("requests>=5").judge(&s)),
        "requests = 10 (limit >= 5)"
    );
}
