//! The APIs beyond OpenAI chat — legacy completions, the Responses API, Anthropic Messages and
//! embeddings — and reasoning models, each run against the in-process mock: exact request and
//! token counts, TTFT against the mock's configured delay, failure kinds of a dropped stream and
//! of an error event, and where the Anthropic API key goes.

use crate::harness::*;
use gsai_load::config::Secret;
use gsai_load::metrics::{FailureKind, MetricId, TokenSource};
use gsai_load::mock::{FaultRates, MockConfig};
use gsai_load::workload::scenario::Scenario;
use gsai_load::workload::ApiKind;
use std::time::Duration;

const STREAMING: [ApiKind; 4] = [
    ApiKind::Openai,
    ApiKind::Completions,
    ApiKind::Responses,
    ApiKind::Anthropic,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_streams_with_exact_counts_usage_tokens_and_the_configured_ttft() {
    for api in STREAMING {
        let mock = start_mock(MockConfig {
            ttft: Duration::from_millis(100),
            itl: Duration::from_millis(2),
            tokens: 7,
            ..fast_config()
        })
        .await;
        let mut p = plan(&mock, 3, 12);
        p.api = api;
        let r = run(p).await;
        let t = total(&r);
        let c = mock.counters();
        mock.shutdown().await;
        assert_eq!(
            (t.requests, t.failures),
            (12, 0),
            "{api:?}: {:?}",
            r.stats.failures
        );
        assert_eq!(c.requests, 12, "{api:?}: the mock saw exactly the requests");
        let out = t.metric(MetricId::OutputTokens);
        assert_eq!(
            (out.min(), out.max(), out.count()),
            (Some(7), Some(7), 12),
            "{api:?}"
        );
        let usage = t
            .token_source_counts()
            .find(|(s, _)| *s == TokenSource::Usage)
            .map(|(_, n)| n);
        assert_eq!(
            usage,
            Some(12),
            "{api:?}: every count from the server's usage"
        );
        // Tolerance: loopback plus timer granularity plus a loaded machine (the whole suite
        // runs at once on 2 cores, in a debug build): never below, p50 at most 50 ms above.
        let ttft = t.metric(MetricId::Ttft);
        let (min, p50) = (ms(ttft.min().unwrap()), ms(ttft.quantile(0.5).unwrap()));
        assert!(
            min >= 100.0 && p50 <= 150.0,
            "{api:?}: TTFT min {min} p50 {p50} ms"
        );
        // No reasoning: the answer starts with the first token.
        let answer = t.metric(MetricId::TtftAnswer);
        assert_eq!(answer.count(), 12, "{api:?}");
        assert_eq!(t.metric(MetricId::ReasoningTokens).count(), 0, "{api:?}");
        assert_eq!(t.metric(MetricId::AnswerTokens).max(), Some(7), "{api:?}");
        assert!(
            t.metric(MetricId::RequestBytes).min().unwrap() > 20,
            "{api:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_is_incomplete_and_an_error_event_a_stream_error_in_each_api() {
    let drop = FaultRates {
        drop: 1.0,
        ..Default::default()
    };
    let error = FaultRates {
        stream_error: 1.0,
        ..Default::default()
    };
    for api in STREAMING {
        for (faults, kind) in [
            (drop, FailureKind::IncompleteStream),
            (error, FailureKind::StreamError),
        ] {
            let mock = start_mock(MockConfig {
                faults,
                tokens: 6,
                ..fast_config()
            })
            .await;
            let mut p = plan(&mock, 2, 6);
            p.api = api;
            let r = run(p).await;
            mock.shutdown().await;
            let t = total(&r);
            assert_eq!((t.requests, t.failures), (6, 6), "{api:?} {kind:?}");
            assert_eq!(failures_of(&r, kind), 6, "{api:?}: {:?}", r.stats.failures);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reasoning_model_answers_n_itl_after_its_first_token_with_split_token_counts() {
    const REASONING: u32 = 10;
    const ITL_MS: u64 = 5;
    for api in [ApiKind::Openai, ApiKind::Responses, ApiKind::Anthropic] {
        let mock = start_mock(MockConfig {
            ttft: Duration::from_millis(30),
            itl: Duration::from_millis(ITL_MS),
            tokens: 5,
            reasoning_tokens: REASONING,
            ..fast_config()
        })
        .await;
        let mut p = plan(&mock, 2, 6);
        p.api = api;
        let r = run(p).await;
        mock.shutdown().await;
        let t = total(&r);
        assert_eq!(
            (t.requests, t.failures),
            (6, 0),
            "{api:?}: {:?}",
            r.stats.failures
        );
        let p50 = |id| ms(t.metric(id).quantile(0.5).unwrap());
        let (ttft, answer) = (p50(MetricId::Ttft), p50(MetricId::TtftAnswer));
        let expected = (u64::from(REASONING) * ITL_MS) as f64;
        // The gap is measured between two moments of one stream: ±15 ms for timer rounding.
        assert!(
            ttft < answer && (answer - ttft - expected).abs() <= 15.0,
            "{api:?}: TTFT {ttft} ms, TTFT (answer) {answer} ms, expected a gap of {expected} ms"
        );
        let one = |id| {
            let m = t.metric(id);
            assert_eq!(m.min(), m.max(), "{api:?} {id}: one value");
            m.max()
        };
        assert_eq!(one(MetricId::OutputTokens), Some(15), "{api:?}");
        // Chat and Responses send reasoning_tokens; Anthropic's count comes from the thinking text.
        assert_eq!(one(MetricId::ReasoningTokens), Some(10), "{api:?}");
        assert_eq!(one(MetricId::AnswerTokens), Some(5), "{api:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embeddings_kind_records_e2e_and_input_size_and_no_tokens() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(20),
        ..fast_config()
    })
    .await;
    let mut p = plan(&mock, 2, 8);
    p.prompt = "embed this sentence, please".into();
    p.scenario =
        Some(Scenario::parse("[[request]]\nkind = \"embeddings\"\nname = \"embed\"\n").unwrap());
    let r = run(p).await;
    let c = mock.counters();
    mock.shutdown().await;
    let t = total(&r);
    assert_eq!((t.requests, t.failures), (8, 0), "{:?}", r.stats.failures);
    assert_eq!(c.requests, 8);
    let e2e_min = ms(t.metric(MetricId::E2e).min().unwrap());
    assert!(
        e2e_min >= 20.0,
        "E2E {e2e_min} ms includes the mock's delay"
    );
    let bytes = t.metric(MetricId::RequestBytes);
    assert_eq!(bytes.count(), 8);
    // {"input":"embed this sentence, please","model":"test-model"}
    assert_eq!(bytes.max(), Some(60));
    assert_eq!(t.metric(MetricId::OutputTokens).count(), 0);
    assert_eq!(t.metric(MetricId::Ttft).count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sends_the_token_as_x_api_key_only_to_its_configured_host() {
    let configured = Recorder::start().await;
    let other = Recorder::start().await;
    for (host, given_for) in [
        (configured.base_url(), configured.base_url()),
        (other.base_url(), configured.base_url()),
    ] {
        let mut p = gsai_load::config::Plan::new(host, "claude");
        p.api = ApiKind::Anthropic;
        p.set_token(Some(Secret::new(TOKEN)), Some(&given_for));
        p.users = 1;
        p.wait = gsai_load::config::WaitTime::None;
        p.max_requests = Some(2);
        p.run_time = Some(Duration::from_secs(30));
        let r = run(p).await;
        assert_eq!(failures_of(&r, FailureKind::HttpStatus), 2);
    }
    let heads = configured.wait_for(2, Duration::from_secs(10)).await;
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(head.starts_with("POST /v1/messages "), "{head}");
        assert!(
            lower.contains(&format!("x-api-key: {}", TOKEN.to_ascii_lowercase())),
            "{head}"
        );
        assert!(lower.contains("anthropic-version: 2023-06-01"), "{head}");
        assert!(
            !lower.contains("authorization"),
            "the key goes in x-api-key only: {head}"
        );
    }
    let heads = other.wait_for(2, Duration::from_secs(10)).await;
    for head in &heads {
        assert!(!head.contains(TOKEN), "another host got the token: {head}");
        assert!(!head.to_ascii_lowercase().contains("x-api-key"), "{head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_each_api_against_the_mock() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let host = mock.base_url();
    for api in ["completions", "responses", "anthropic"] {
        let args = headless_args(
            &host,
            &["--api", api, "--token", TOKEN, "--max-requests", "4"],
        );
        let o = output(bin(dir.path(), &args)).await;
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{api}: {out}");
        assert!(out.contains("TTFT (answer)"), "{api}: {out}");
        assert!(!out.contains(TOKEN), "{api}: the token is never printed");
    }
    assert_eq!(mock.counters().requests, 12);
    mock.shutdown().await;
}
