//! Failure kinds end to end: the mock injects an HTTP 500, a dropped stream, an invalid event
//! and an error event at seeded rates; the binary's JSON counts each under its kind, exactly as
//! often as the mock injected it, and the console and the HTML report summarize them per kind.

use crate::harness::*;
use gsai_load::metrics::FailureKind;
use gsai_load::mock::{FaultRates, MockConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// Requests of the run; the mock's seeded draws make the counts per fault reproducible.
const REQUESTS: u64 = 240;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_injected_fault_is_counted_under_its_kind_in_the_json() {
    let mock = start_mock(MockConfig {
        faults: FaultRates {
            http_500: 0.1,
            drop: 0.1,
            malformed: 0.1,
            stream_error: 0.1,
            ..FaultRates::default()
        },
        tokens: 6,
        seed: Some(20_261_201),
        ..fast_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let html = dir.path().join("out.html");
    let url = mock.base_url();
    let n = REQUESTS.to_string();
    let args = headless_args(
        &url,
        &[
            "--token",
            TOKEN,
            "--max-requests",
            &n,
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let o = tokio::time::timeout(Duration::from_secs(120), output(bin(dir.path(), &args)))
        .await
        .expect("the run ends in time");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "requests failed: {out}");
    let c = mock.counters();
    mock.shutdown().await;

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("JSON output");
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for f in doc["failures"].as_array().expect("failures[]") {
        let kind = f["kind"].as_str().expect("every row has a kind");
        *by_kind.entry(kind.to_string()).or_default() += f["count"].as_u64().unwrap();
    }
    let want: BTreeMap<String, u64> = [
        (FailureKind::HttpStatus, c.http_500),
        (FailureKind::IncompleteStream, c.dropped),
        (FailureKind::MalformedEvent, c.malformed),
        (FailureKind::StreamError, c.stream_error),
    ]
    .into_iter()
    .map(|(k, n)| (k.as_str().to_string(), n))
    .collect();
    assert_eq!(by_kind, want, "{out}");
    // The seed fixes the draws, so the counts are known exactly.
    assert_eq!(
        (c.http_500, c.dropped, c.malformed, c.stream_error),
        EXPECTED,
        "the mock's seeded draws changed"
    );
    assert_eq!(c.requests, REQUESTS);
    assert_eq!(doc["summary"]["requests"], REQUESTS);
    assert_eq!(
        doc["summary"]["failures"].as_u64(),
        Some(want.values().sum::<u64>())
    );

    // The console summarizes per kind, with each kind's meaning.
    for kind in [
        FailureKind::HttpStatus,
        FailureKind::IncompleteStream,
        FailureKind::MalformedEvent,
        FailureKind::StreamError,
    ] {
        assert!(out.contains(kind.meaning()), "{kind}: {out}");
    }
    // So does the HTML report, from its injected data.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("\"failure_kinds\":[{\"kind\":\"http_status\""),
        "per-kind data"
    );
    assert!(page.contains("Failures by kind"));
}

/// `(http_500, dropped, malformed, stream_error)` injected by the mock seeded as above.
const EXPECTED: (u64, u64, u64, u64) = (22, 22, 21, 16);
