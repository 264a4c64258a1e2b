//! The engine and client against the mock: exact counts, timings, fault modes, stop.

use crate::harness::*;
use gsai_load::metrics::{FailureKind, MetricId, TokenSource};
use gsai_load::mock::{FaultRates, MockConfig};
use gsai_load::workload::{ApiKind, ChatIdMode};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_equal_the_mock_counters() {
    let mock = start_mock(fast_config()).await;
    let r = run(plan(&mock, 8, 200)).await;
    let t = total(&r);
    let c = mock.counters();
    assert_eq!(t.requests, 200);
    assert_eq!(t.failures, 0, "{:?}", r.stats.failures);
    assert_eq!(t.cancelled, 0);
    assert_eq!(c.requests, 200);
    assert_eq!(c.ok, 200);
    assert_eq!(t.metric(MetricId::OutputTokens).sum(), 200 * 5);
    assert_eq!(t.token_sources[TokenSource::Usage.index()], 200);
    assert_eq!(
        t.metric(MetricId::Itl).count(),
        200 * 4,
        "4 gaps between 5 tokens"
    );
    assert_eq!(
        t.metric(MetricId::Connect).count(),
        8,
        "one keep-alive connection per user"
    );
    assert_eq!(r.stop_reason, gsai_load::engine::StopReason::MaxRequests);
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings_match_the_configured_delays() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(100),
        itl: Duration::from_millis(10),
        tokens: 10,
        ..fast_config()
    })
    .await;
    let r = run(plan(&mock, 4, 24)).await;
    let t = total(&r);
    assert_eq!(t.requests, 24);
    // Tolerance: loopback plus timer granularity (1 ms ticks) plus a loaded CI machine.
    let ttft_p50 = ms(t.metric(MetricId::Ttft).quantile(0.5).unwrap());
    assert!(
        (100.0..=125.0).contains(&ttft_p50),
        "TTFT p50 {ttft_p50} ms"
    );
    assert!(
        ms(t.metric(MetricId::Ttft).min().unwrap()) >= 100.0,
        "TTFT never below the configured delay"
    );
    let e2e_p50 = ms(t.metric(MetricId::E2e).quantile(0.5).unwrap());
    assert!(
        (190.0..=230.0).contains(&e2e_p50),
        "E2E p50 {e2e_p50} ms (100 + 9 × 10)"
    );
    let tpot_p50 = ms(t.metric(MetricId::Tpot).quantile(0.5).unwrap());
    assert!((9.5..=13.0).contains(&tpot_p50), "TPOT p50 {tpot_p50} ms");
    let itl_p50 = ms(t.metric(MetricId::Itl).quantile(0.5).unwrap());
    assert!((9.5..=12.0).contains(&itl_p50), "ITL p50 {itl_p50} ms");
    let ttfb_p50 = ms(t.metric(MetricId::Ttfb).quantile(0.5).unwrap());
    assert!(
        ttfb_p50 < 50.0,
        "headers come before the first token: {ttfb_p50} ms"
    );
    mock.shutdown().await;
}

async fn run_with_fault(
    faults: FaultRates,
    n: u64,
) -> (
    gsai_load::engine::RunResult,
    gsai_load::mock::CountersSnapshot,
) {
    let mock = start_mock(MockConfig {
        faults,
        tokens: 6,
        ..fast_config()
    })
    .await;
    let r = run(plan(&mock, 4, n)).await;
    let c = mock.counters();
    mock.shutdown().await;
    (r, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_mode_has_its_kind_and_exact_count() {
    let cases: [(FaultRates, FailureKind); 5] = [
        (
            FaultRates {
                http_500: 1.0,
                ..Default::default()
            },
            FailureKind::HttpStatus,
        ),
        (
            FaultRates {
                http_429: 1.0,
                ..Default::default()
            },
            FailureKind::HttpStatus,
        ),
        (
            FaultRates {
                drop: 1.0,
                ..Default::default()
            },
            FailureKind::IncompleteStream,
        ),
        (
            FaultRates {
                malformed: 1.0,
                ..Default::default()
            },
            FailureKind::MalformedEvent,
        ),
        (
            FaultRates {
                stream_error: 1.0,
                ..Default::default()
            },
            FailureKind::StreamError,
        ),
    ];
    for (faults, kind) in cases {
        let (r, c) = run_with_fault(faults, 12).await;
        let t = total(&r);
        assert_eq!(
            (t.requests, t.failures),
            (12, 12),
            "{kind}: {:?}",
            r.stats.failures
        );
        assert_eq!(failures_of(&r, kind), 12, "{kind}: {:?}", r.stats.failures);
        assert_eq!(c.requests, 12);
        assert_eq!(
            t.metric(MetricId::Ttft).count(),
            0,
            "failed requests stay out of the LLM metrics"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_faults_are_counted_exactly_per_cause() {
    let faults = FaultRates {
        http_500: 0.1,
        http_429: 0.1,
        drop: 0.1,
        malformed: 0.1,
        stream_error: 0.1,
    };
    let (r, c) = run_with_fault(faults, 300).await;
    let t = total(&r);
    assert_eq!(t.requests, 300);
    assert_eq!(c.requests, 300);
    assert_eq!(
        failures_of(&r, FailureKind::HttpStatus),
        c.http_500 + c.http_429
    );
    assert_eq!(failures_of(&r, FailureKind::IncompleteStream), c.dropped);
    assert_eq!(failures_of(&r, FailureKind::MalformedEvent), c.malformed);
    assert_eq!(failures_of(&r, FailureKind::StreamError), c.stream_error);
    assert_eq!(t.successes(), c.ok);
    assert_eq!(
        t.failures,
        c.http_500 + c.http_429 + c.dropped + c.malformed + c.stream_error
    );
    assert!(
        t.failures > 50 && t.failures < 250,
        "about half fail: {}",
        t.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_skips_malformed_events() {
    let mock = start_mock(MockConfig {
        faults: FaultRates {
            malformed: 1.0,
            ..Default::default()
        },
        ..fast_config()
    })
    .await;
    let mut p = plan(&mock, 2, 10);
    p.lenient = true;
    let r = run(p).await;
    assert_eq!((total(&r).requests, total(&r).failures), (10, 0));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_chat_id_failures_name_their_cause() {
    let mock = start_mock(fast_config()).await;
    let mut p = plan(&mock, 2, 6);
    p.token = Some(gsai_load::config::Secret::new("wrong-token"));
    let r = run(p).await;
    assert_eq!(failures_of(&r, FailureKind::HttpStatus), 6);
    // The message is what is tested here: it carries the server's own explanation.
    let msgs: Vec<_> = r.stats.failures.keys().map(|k| k.message.clone()).collect();
    assert_eq!(msgs, ["Received status code: 401 (401 Unauthorized)"]);

    let mut p = plan(&mock, 2, 6);
    p.chat_id = ChatIdMode::Uuid;
    let r = run(p).await;
    let msgs: Vec<_> = r.stats.failures.keys().map(|k| k.message.clone()).collect();
    assert_eq!(total(&r).failures, 6);
    assert_eq!(failures_of(&r, FailureKind::HttpStatus), 6);
    // The message is what is tested here: it suggests the fix.
    assert!(
        msgs.iter()
            .all(|m| m.starts_with("Received status code: 404") && m.contains("--chat-id local")),
        "{msgs:?}"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_api_and_token_sources() {
    let mock = start_mock(fast_config()).await;
    let mut p = plan(&mock, 2, 10);
    p.api = ApiKind::Openai;
    let r = run(p).await;
    let t = total(&r);
    assert_eq!((t.requests, t.failures), (10, 0), "{:?}", r.stats.failures);
    assert_eq!(r.kinds[0].name, "/v1/chat/completions");
    assert_eq!(t.token_sources[TokenSource::Usage.index()], 10);
    mock.shutdown().await;

    // Without usage the tiktoken count of the text is used.
    let mock = start_mock(MockConfig {
        usage: false,
        ..fast_config()
    })
    .await;
    let r = run(plan(&mock, 2, 10)).await;
    let t = total(&r);
    assert_eq!(t.token_sources[TokenSource::Tokenizer.index()], 10);
    assert!(
        t.metric(MetricId::OutputTokens).sum() >= 10 * 5,
        "{}",
        t.metric(MetricId::OutputTokens).sum()
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_are_cancelled_after_stop_timeout() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_secs(30),
        ..fast_config()
    })
    .await;
    let mut p = plan(&mock, 3, 100);
    p.max_requests = None;
    p.run_time = Some(Duration::from_millis(300));
    p.stop_timeout = Duration::from_millis(200);
    let r = run(p).await;
    let t = total(&r);
    assert_eq!((t.requests, t.cancelled), (0, 3));
    assert_eq!(r.stop_reason, gsai_load::engine::StopReason::RunTime);
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_within_stop_timeout() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(400),
        tokens: 2,
        ..fast_config()
    })
    .await;
    let mut p = plan(&mock, 3, 100);
    p.max_requests = None;
    p.run_time = Some(Duration::from_millis(200));
    p.stop_timeout = Duration::from_secs(10);
    let r = run(p).await;
    let t = total(&r);
    assert_eq!((t.requests, t.failures, t.cancelled), (3, 0, 0));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_connect_failures_are_failures() {
    // Idle: tokens 2 s apart against a 200 ms idle limit.
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(1),
        itl: Duration::from_secs(2),
        tokens: 3,
        ..fast_config()
    })
    .await;
    let mut p = plan(&mock, 2, 2);
    p.timeouts.idle = Duration::from_millis(200);
    let r = run(p).await;
    assert_eq!(
        failures_of(&r, FailureKind::Timeout),
        2,
        "{:?}",
        r.stats.failures
    );
    mock.shutdown().await;

    // First byte: a server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut p = gsai_load::config::Plan::new(format!("http://{addr}"), "m");
    p.users = 2;
    p.wait = gsai_load::config::WaitTime::None;
    p.max_requests = Some(2);
    p.timeouts.first_byte = Duration::from_millis(200);
    let r = run(p).await;
    assert_eq!(
        failures_of(&r, FailureKind::Timeout),
        2,
        "{:?}",
        r.stats.failures
    );
    holder.abort();

    // Connect: nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut p = gsai_load::config::Plan::new(format!("http://{closed}"), "m");
    p.wait = gsai_load::config::WaitTime::None;
    p.max_requests = Some(3);
    let r = run(p).await;
    assert_eq!(
        failures_of(&r, FailureKind::Connect),
        3,
        "{:?}",
        r.stats.failures
    );
}
