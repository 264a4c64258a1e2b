//! The exposition read back with the parser crate `--server-metrics` uses: every figure equals
//! the snapshot's.

use super::*;
use crate::engine::Snapshot;
use crate::metrics::{
    Failure, FailureKind, MetricId, Outcome, RequestKind, RequestRecord, TokenSource,
};
use crate::observe::parse::{parse, Sample, SeriesKind};
use std::time::{Duration, Instant};

fn kinds() -> Arc<[RequestKind]> {
    vec![
        RequestKind {
            method: "POST".into(),
            name: "/v1/chat/completions".into(),
        },
        // A hostile name: quotes, backslash and newline must be escaped, not break the text.
        RequestKind {
            method: "GET".into(),
            name: "we\"ird\\na\nme".into(),
        },
    ]
    .into()
}

fn record(kind: usize, outcome: Outcome, e2e_ms: u64) -> RequestRecord {
    let t0 = Instant::now();
    let mut r = RequestRecord::bare(kind, t0, t0 + Duration::from_millis(e2e_ms), outcome);
    r.headers = Some(t0 + Duration::from_millis(1));
    r.first_event = Some(t0 + Duration::from_millis(2));
    r.first_token = Some(t0 + Duration::from_millis(e2e_ms / 2));
    r.last_token = Some(t0 + Duration::from_millis(e2e_ms));
    r.output_tokens = Some((4, TokenSource::Usage));
    r
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::initial(5, kinds());
    s.state = RunState::Running;
    s.users = 4;
    s.in_flight = 3;
    s.health.cpu_percent = 42.0;
    s.health.loop_lag_p99_ms = 7.5;
    for i in 0..40u64 {
        s.stats.record(
            &record(0, Outcome::Success, 20 + i * 50),
            &[3_000, 40_000],
            1,
            2,
            true,
        );
    }
    let fail = |k, m: &str| Outcome::Failure(Failure::new(k, m));
    s.stats.record(
        &record(
            0,
            fail(FailureKind::HttpStatus, "Received status code: 500"),
            5,
        ),
        &[],
        1,
        2,
        false,
    );
    s.stats.record(
        &record(
            0,
            fail(FailureKind::HttpStatus, "Received status code: 503"),
            5,
        ),
        &[],
        1,
        2,
        false,
    );
    s.stats.record(
        &record(1, fail(FailureKind::Timeout, "timed out"), 5),
        &[],
        1,
        2,
        false,
    );
    s.stats
        .record(&record(1, Outcome::Success, 10), &[], 1, 2, true);
    s
}

fn samples(text: &str) -> Vec<Sample> {
    let (samples, skipped) = parse(text.as_bytes()).expect("valid Prometheus text");
    assert_eq!(skipped, None, "every family parses:\n{text}");
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0].value
}

#[test]
fn every_figure_equals_the_snapshot() {
    let snap = snapshot();
    let text = render(Some(Live {
        snapshot: Arc::new(snap.clone()),
        running: true,
    }));
    let s = samples(&text);
    let chat = [("method", "POST"), ("name", "/v1/chat/completions")];
    // Escaped on the wire (the parser crate keeps escapes as they are).
    let odd = [("method", "GET"), ("name", r#"we\"ird\\na\nme"#)];
    assert_eq!(value(&s, "gsai_test_running", &[]), 1.0);
    assert_eq!(value(&s, "gsai_users", &[]), 4.0);
    assert_eq!(value(&s, "gsai_target_users", &[]), 5.0);
    assert_eq!(value(&s, "gsai_in_flight_requests", &[]), 3.0);
    assert_eq!(value(&s, "gsai_generator_cpu_ratio", &[]), 0.42);
    assert_eq!(value(&s, "gsai_generator_loop_lag_seconds", &[]), 0.0075);
    assert_eq!(
        value(&s, "gsai_generator_verdict", &[("verdict", "ok")]),
        1.0
    );
    assert_eq!(value(&s, "gsai_requests_total", &chat), 42.0);
    assert_eq!(value(&s, "gsai_requests_total", &odd), 2.0);
    let kind = |row: &[(&'static str, &'static str); 2], k: &'static str| {
        let mut l = row.to_vec();
        l.push(("kind", k));
        value(&s, "gsai_failures_total", &l)
    };
    assert_eq!(kind(&chat, "http_status"), 2.0, "two messages, one kind");
    assert_eq!(kind(&odd, "timeout"), 1.0);
    assert_eq!(kind(&chat, "timeout"), 0.0, "every kind shown, zeros too");
    let tokens = snap.stats.rows[0].metric(MetricId::OutputTokens).sum() as f64;
    assert_eq!(value(&s, "gsai_output_tokens_total", &chat), tokens);
    for family in families::histogram_families() {
        let name = format!("{}_seconds", family.name);
        let present = s.iter().any(|x| x.name.starts_with(&name));
        if family.id.def().covers.open_loop_only() {
            assert!(!present, "{name}: no open-loop samples, no family");
            continue;
        }
        for (i, row) in [chat, odd].iter().enumerate() {
            let metric = snap.stats.rows[i].metric(family.id);
            let count = value(&s, &format!("{name}_count"), row);
            assert_eq!(count, metric.count() as f64, "{name}");
            let sum = value(&s, &format!("{name}_sum"), row);
            assert!((sum - metric.sum() as f64 / 1e6).abs() < 1e-9, "{name}");
            let mut buckets: Vec<(f64, f64)> = s
                .iter()
                .filter(|x| {
                    x.name == format!("{name}_bucket")
                        && row
                            .iter()
                            .all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|x| {
                    assert_eq!(x.kind, SeriesKind::Histogram);
                    let le = x.labels["le"]
                        .parse::<f64>()
                        .expect("le is a number or +Inf");
                    (le, x.value)
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(buckets.len(), family.bounds_s.len() + 1, "{name}");
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{name}: cumulative"
            );
            assert_eq!(
                buckets.last().map(|b| (b.0, b.1)),
                Some((f64::INFINITY, count)),
                "{name}"
            );
        }
    }
    // E2E of row 0: 40 successes from 20 ms to 1970 ms, 50 ms apart: 10 at or below 0.5 s.
    let le = |v: &str| {
        value(
            &s,
            "gsai_e2e_request_latency_seconds_bucket",
            &[chat[0], chat[1], ("le", v)],
        )
    };
    assert_eq!(le("0.5"), 10.0);
    assert_eq!(le("0.005"), 0.0);
}

#[test]
fn before_any_test_only_the_basics() {
    let s = samples(&render(None));
    assert_eq!(value(&s, "gsai_test_running", &[]), 0.0);
    assert_eq!(
        value(
            &s,
            "gsai_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(!s.iter().any(|x| x.name.starts_with("gsai_requests")));
}

#[test]
fn a_test_without_rows_yet_is_valid_text() {
    // A master before its workers' first report knows no request kinds yet.
    let snap = Snapshot::initial(4, Vec::new().into());
    let s = samples(&render(Some(Live {
        snapshot: Arc::new(snap),
        running: true,
    })));
    assert_eq!(value(&s, "gsai_target_users", &[]), 4.0);
    assert!(!s.iter().any(|x| x.name.starts_with("gsai_failures")));
}

#[tokio::test]
async fn a_feed_follows_each_test_and_sees_its_end() {
    let feed = Feed::new();
    let source = feed.source();
    assert!(source().is_none());
    let (tx, rx) = watch::channel(Arc::new(snapshot()));
    feed.follow(rx);
    let live = source().expect("a test");
    assert!(live.running);
    assert_eq!(live.snapshot.users, 4);
    drop(tx);
    assert!(
        !source().expect("the last test").running,
        "closed channel: over"
    );
    let mut last = snapshot();
    last.state = RunState::Stopped;
    let (_tx, rx) = watch::channel(Arc::new(last));
    feed.follow(rx);
    assert!(!source().expect("a stopped test").running);
}

/// Every `gsai_` series the Grafana dashboard queries is one the exporter writes, and the
/// documentation names every series it writes.
#[test]
fn the_dashboard_and_the_docs_name_the_exported_series() {
    let text = render(Some(Live {
        snapshot: Arc::new(snapshot()),
        running: true,
    }));
    let names: std::collections::BTreeSet<String> =
        samples(&text).into_iter().map(|s| s.name).collect();
    let dashboard = include_str!("../../deploy/grafana/gsai-load.json");
    let doc: serde_json::Value = serde_json::from_str(dashboard).expect("dashboard is JSON");
    assert_eq!(doc["uid"], "gsai-load");
    let word = regex::Regex::new(r"gsai_[a-z0-9_]+").unwrap();
    let mut queried = 0;
    for m in word.find_iter(dashboard) {
        assert!(
            names.contains(m.as_str()),
            "the dashboard queries {} (not exported)",
            m.as_str()
        );
        queried += 1;
    }
    assert!(queried >= 12, "{queried}");
    let docs = include_str!("../../docs/prometheus.md");
    for name in &names {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            docs.contains(base),
            "docs/prometheus.md does not name {base}"
        );
    }
}
