//! A fixed, deterministic result shared by the report tests (golden CSVs, JSON round trip, HTML).

use crate::config::{Plan, Secret, WaitTime};
use crate::engine::{RunResult, StopReason};
use crate::metrics::{Outcome, RequestKind, RequestRecord, StatsSet, TimelinePoint, TokenSource};
use std::time::{Duration, Instant};

/// The token of the fixture's plan: it must never appear in any output.
pub const TOKEN: &str = "sk-fixture-secret-42";

/// Start of the fixture's run, seconds since the Unix epoch (2023-11-14T22:13:20Z).
pub const START_S: u64 = 1_700_000_000;

/// Two request kinds, 40 requests (alternating kinds), five failures, one with a comma and quotes.
pub fn sample() -> (Vec<RequestKind>, StatsSet) {
    let kinds = vec![
        RequestKind {
            method: "POST".into(),
            name: "/api/chat/completions".into(),
        },
        RequestKind {
            method: "GET".into(),
            name: "/api/models".into(),
        },
    ];
    let mut set = StatsSet::new(2);
    let t0 = Instant::now();
    let base_us = START_S * 1_000_000;
    for i in 0..40u64 {
        let ms = Duration::from_millis;
        let outcome = if i % 10 == 3 {
            Outcome::Failure(crate::metrics::Failure::new(
                crate::metrics::FailureKind::HttpStatus,
                "Received status code: 500",
            ))
        } else if i == 8 {
            Outcome::Failure(crate::metrics::Failure::new(
                crate::metrics::FailureKind::HttpStatus,
                "Received status code: 429 (detail: \"slow down, please\")",
            ))
        } else {
            Outcome::Success
        };
        let e2e = ms(200 + i * 7);
        let mut r = RequestRecord::bare((i % 2) as usize, t0, t0 + e2e, outcome);
        // Every fourth request is an open-loop arrival (its intended start is its start), so the
        // open-loop metrics are not empty.
        if i % 4 == 0 {
            r.intended = Some(t0);
        }
        r.headers = Some(t0 + ms(20 + i));
        r.first_token = Some(t0 + ms(50 + i * 3));
        r.last_token = Some(t0 + e2e);
        r.token_events = 10;
        r.output_tokens = Some((10 + i, TokenSource::ALL[(i % 3) as usize]));
        r.content_bytes = 1000 + i;
        let gaps: Vec<u32> = (0..9).map(|g| 10_000 + g * 100 + i as u32).collect();
        let start = base_us + i * 250_000;
        let end = start + e2e.as_micros() as u64;
        set.record(&r, &gaps, start, end, i % 3 != 0);
    }
    (kinds, set)
}

/// A whole run: the sample's stats, a plan with a token and SLOs, and a 10-point timeline.
pub fn result() -> RunResult {
    let (kinds, stats) = sample();
    let mut plan = Plan::new("http://127.0.0.1:8080", "fixture-model");
    plan.token = Some(Secret::new(TOKEN));
    plan.users = 4;
    plan.spawn_rate = 2.0;
    plan.wait = WaitTime::Constant { s: 0.5 };
    plan.run_time = Some(Duration::from_secs(10));
    plan.slo = vec![
        "ttft<100ms".parse().expect("valid SLO"),
        "e2e<=0.4s".parse().expect("valid SLO"),
    ];
    let timeline = (1..=10u64)
        .map(|s| TimelinePoint {
            unix_s: (START_S + s) as f64,
            elapsed_s: s as f64,
            users: s.min(4),
            rps: 4.0 + (s % 3) as f64 * 0.5,
            fps: if s % 4 == 0 { 0.5 } else { 0.0 },
            output_tokens_per_s: 100.0 + s as f64 * 10.0,
            e2e_p50_ms: 300.0 + s as f64,
            e2e_p95_ms: 400.0 + s as f64 * 2.0,
            ttft_p50_ms: 80.0 + s as f64,
            ttft_p95_ms: 120.0 + s as f64,
            total_requests: s * 4,
            total_failures: s / 2,
        })
        .collect();
    RunResult {
        plan,
        kinds,
        stats,
        timeline,
        started_unix_s: START_S as f64,
        duration_s: 10.5,
        stop_reason: StopReason::RunTime,
        generator: None,
    }
}
