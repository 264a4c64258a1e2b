//! Injected faults: forced by `x-mock-scenario`, and drawn from seeded rates.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::mock::FaultRates;

fn ten() -> MockConfig {
    MockConfig {
        tokens: 10,
        ..fast()
    }
}

async fn forced(config: MockConfig, scenario: &str) -> (Reply, CountersSnapshot) {
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c
        .post(OWUI, &[("x-mock-scenario", scenario)], chat_body(json!({})))
        .await;
    (r, finish(server).await)
}

#[tokio::test]
async fn forced_http_500() {
    let (r, counters) = forced(ten(), "http_500").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json(), json!({"detail": "Internal Server Error"}));
    assert_eq!(
        counters,
        CountersSnapshot {
            requests: 1,
            http_500: 1,
            ..CountersSnapshot::default()
        }
    );
}

#[tokio::test]
async fn forced_http_429_says_when_to_retry() {
    let (r, counters) = forced(ten(), "http_429").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json(), json!({"detail": "Too Many Requests"}));
    assert_eq!(
        counters,
        CountersSnapshot {
            requests: 1,
            http_429: 1,
            ..CountersSnapshot::default()
        }
    );
}

#[tokio::test]
async fn forced_drop_cuts_the_body_after_half_the_tokens() {
    // Zero delays exercise the flush-before-abort path; small delays the ordinary one.
    for itl in [Duration::ZERO, Duration::from_millis(1)] {
        let (r, counters) = forced(MockConfig { itl, ..ten() }, "drop").await;
        assert_eq!(r.status, 200);
        assert!(
            r.error.is_some(),
            "the body must end in an error, not cleanly"
        );
        assert_eq!(r.events.len(), 6, "{:#?}", r.events);
        assert_eq!(r.events.iter().filter(|e| e.is_token()).count(), 5);
        assert!(r.events.iter().all(|e| e.data != "[DONE]"));
        let expected = CountersSnapshot {
            requests: 1,
            dropped: 1,
            events_sent: 6,
            tokens_sent: 5,
            ..CountersSnapshot::default()
        };
        assert_eq!(counters, expected);
    }
}

#[tokio::test]
async fn forced_malformed_sends_one_bad_event_then_finishes() {
    let (r, counters) = forced(ten(), "malformed").await;
    assert_eq!(r.status, 200);
    let data: Vec<&str> = r.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 15, "{data:#?}");
    assert_eq!(data[6], "{\"choices\": [ {\"delta\"");
    assert!(serde_json::from_str::<serde_json::Value>(data[6]).is_err());
    assert_eq!(r.events.iter().filter(|e| e.is_token()).count(), 10);
    assert_eq!(data[14], "[DONE]");
    let expected = CountersSnapshot {
        requests: 1,
        malformed: 1,
        events_sent: 15,
        tokens_sent: 10,
        ..CountersSnapshot::default()
    };
    assert_eq!(counters, expected);
}

#[tokio::test]
async fn forced_stream_error_is_open_webui_error_event_then_done() {
    let (r, counters) = forced(ten(), "stream_error").await;
    assert_eq!(r.status, 200);
    let data: Vec<&str> = r.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 8, "{data:#?}");
    assert_eq!(
        r.events[6].json(),
        json!({"error": {"message": "Chat completion stream failed"}})
    );
    assert_eq!(data[7], "[DONE]");
    let expected = CountersSnapshot {
        requests: 1,
        stream_error: 1,
        events_sent: 8,
        tokens_sent: 5,
        ..CountersSnapshot::default()
    };
    assert_eq!(counters, expected);
}

#[tokio::test]
async fn forced_ok_overrides_the_rates_and_unknown_names_the_header() {
    let faults = FaultRates {
        http_500: 1.0,
        ..FaultRates::default()
    };
    let (r, counters) = forced(MockConfig { faults, ..ten() }, "ok").await;
    assert_normal_stream(&r.events, 10, "stop", Some(SEED_PROMPT_TOKENS));
    assert_eq!((counters.ok, counters.http_500), (1, 0));

    let (r, counters) = forced(ten(), "explode").await;
    assert_eq!(r.status, 400);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        detail.contains("x-mock-scenario") && detail.contains("explode"),
        "{detail}"
    );
    assert_eq!(
        counters,
        CountersSnapshot {
            requests: 1,
            bad_request: 1,
            ..CountersSnapshot::default()
        }
    );
}

#[tokio::test]
async fn non_streaming_faults() {
    let server = mock(ten()).await;
    let body = || chat_body(json!({"stream": false}));
    let mut c = Client::connect(server.addr()).await;
    let r = c
        .post(OWUI, &[("x-mock-scenario", "malformed")], body())
        .await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = c
        .post(OWUI, &[("x-mock-scenario", "stream_error")], body())
        .await;
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Chat completion stream failed"}})
    );
    // A drop closes the connection without any answer.
    let req = Request::post(OWUI)
        .header("host", "m")
        .header("x-mock-scenario", "drop")
        .body(Full::new(body().into()));
    c.sender.ready().await.expect("ready");
    assert!(c.sender.send_request(req.expect("request")).await.is_err());
    let counters = finish(server).await;
    let expected = CountersSnapshot {
        requests: 3,
        malformed: 1,
        stream_error: 1,
        dropped: 1,
        ..CountersSnapshot::default()
    };
    assert_eq!(counters, expected);
}

/// Sends `n` requests one after another and returns the final counters.
async fn run_sequence(config: MockConfig, n: usize) -> CountersSnapshot {
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    for _ in 0..n {
        let r = c.post(OWUI, &[], chat_body(json!({}))).await;
        if r.error.is_some() {
            // A drop fault closed the connection; carry on with a new one.
            c = Client::connect(server.addr()).await;
        }
    }
    finish(server).await
}

#[tokio::test]
async fn seeded_rates_are_reproducible_and_near_their_probabilities() {
    let faults = FaultRates {
        http_500: 0.2,
        http_429: 0.1,
        drop: 0.1,
        malformed: 0.1,
        stream_error: 0.1,
    };
    let config = MockConfig {
        faults,
        seed: Some(42),
        ..ten()
    };
    let n = 400;
    let a = run_sequence(config.clone(), n).await;
    let b = run_sequence(config, n).await;
    assert_eq!(a, b, "same seed, same sequential requests, same counters");
    assert_eq!(a.requests, n as u64);
    let outcomes = a.ok + a.http_500 + a.http_429 + a.dropped + a.malformed + a.stream_error;
    assert_eq!(outcomes, n as u64, "{a:?}");
    // Loose bounds (about 4 standard deviations) on each rate.
    for (count, p) in [
        (a.http_500, 0.2),
        (a.http_429, 0.1),
        (a.dropped, 0.1),
        (a.malformed, 0.1),
        (a.ok, 0.4),
    ] {
        let mean = p * n as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (count as f64 - mean).abs() < 4.0 * sd,
            "{count} vs {mean}: {a:?}"
        );
    }
}

#[test]
fn draw_lays_rates_end_to_end() {
    use crate::mock::request::Scenario;
    let r = FaultRates {
        http_500: 0.1,
        http_429: 0.1,
        drop: 0.1,
        malformed: 0.1,
        stream_error: 0.1,
    };
    assert_eq!(Scenario::draw(&r, 0.05), Scenario::Http500);
    assert_eq!(Scenario::draw(&r, 0.15), Scenario::Http429);
    assert_eq!(Scenario::draw(&r, 0.25), Scenario::Drop);
    assert_eq!(Scenario::draw(&r, 0.35), Scenario::Malformed);
    assert_eq!(Scenario::draw(&r, 0.45), Scenario::StreamError);
    assert_eq!(Scenario::draw(&r, 0.55), Scenario::Ok);
    assert_eq!(Scenario::draw(&FaultRates::default(), 0.0), Scenario::Ok);
}
