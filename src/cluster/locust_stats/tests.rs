//! Locust's rounding, the byte layout of a stats report against Locust's own encoder, and the
//! exact merge path: histograms shipped and merged equal histograms merged directly.

use super::*;
use crate::cluster::protocol::{get, Message};
use crate::metrics::{FailureEntry, FailureKey, MetricId};
use crate::metrics::{Outcome, RequestRecord, TokenSource};
use std::time::{Duration, Instant};

#[test]
fn bucketing_matches_locust_bucket_response_time() {
    // Expected values computed by locust.stats.bucket_response_time(us / 1000) (Locust 2.47).
    let us = [
        0, 400, 499, 500, 501, 1500, 2500, 3500, 99499, 99500, 99999, 100000, 104999, 105000,
        115000, 125000, 145000, 147000, 155000, 999999, 1000000, 1050000, 1150000, 1250000,
        3432000, 9950000, 9999999, 10000000, 10500000, 11500000, 58760000, 123456789,
    ];
    let expected = [
        0, 0, 0, 0, 1, 2, 2, 4, 99, 100, 100, 100, 100, 100, 120, 120, 140, 150, 160, 1000, 1000,
        1000, 1200, 1200, 3400, 10000, 10000, 10000, 10000, 12000, 59000, 123000,
    ];
    let got: Vec<u64> = us.iter().map(|&u| bucket_ms(u)).collect();
    assert_eq!(got, expected);
}

fn kind() -> RequestKind {
    RequestKind {
        method: "POST".into(),
        name: "/api/chat/completions".into(),
    }
}

#[test]
fn stats_report_matches_locust_bytes() {
    let mut row = NameStats {
        requests: 4,
        failures: 2,
        content_bytes: 1000,
        first_start_unix_us: 1_700_000_000_250_000,
        last_end_unix_us: 1_700_000_002_750_000,
        ..NameStats::default()
    };
    for us in [12_250, 150_250, 1_234_750, 20_000_500] {
        row.metric_mut(MetricId::ResponseTime).record(us);
    }
    let mut delta = StatsSet::new(1);
    delta.rows[0] = row;
    delta.failures.insert(
        FailureKey {
            kind: 0,
            cause: crate::metrics::FailureKind::HttpStatus,
            message: "Received status code: 500".into(),
        },
        FailureEntry {
            count: 2,
            first_seen_unix_s: 1_700_000_001.25,
            last_seen_unix_s: 1_700_000_001.75,
        },
    );
    let per_sec: PerSecond = [
        (1_700_000_000, (1, 0)),
        (1_700_000_001, (2, 2)),
        (1_700_000_002, (1, 0)),
    ]
    .into_iter()
    .collect();
    let figures = WorkerFigures {
        user_classes_count: vec![("GsaiUser".into(), 7)],
        user_count: 7,
        in_flight: 0,
    };
    let data = report_data(&[kind()], &delta, &[per_sec], &figures, 0.0, false);
    let msg = Message::new(
        "stats",
        data,
        "worker-host_0123456789abcdef0123456789abcdef",
    );
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/locust/stats.bin"
    ))
    .unwrap();
    assert_eq!(
        msg.encode(),
        fixture,
        "same bytes as Locust's worker report"
    );

    // And the master reads Locust's report back (no exact extension: counts and buckets).
    let back = Message::decode(&fixture).unwrap();
    let mut index = KindIndex::default();
    let r = read_report(&back.data, &mut index).unwrap();
    assert!(!r.exact);
    assert_eq!(r.user_count, 7);
    let t = r.delta.total();
    assert_eq!((t.requests, t.failures, t.content_bytes), (4, 2, 1000));
    assert_eq!(t.metric(MetricId::ResponseTime).count(), 4);
    assert_eq!(t.metric(MetricId::ResponseTime).sum(), 21_397_750);
    assert_eq!(r.delta.failures.values().map(|e| e.count).sum::<u64>(), 2);
    assert_eq!(index.kinds(), &[kind()]);
}

fn record(set: &mut StatsSet, i: u64) {
    let t0 = Instant::now();
    let outcome = if i.is_multiple_of(11) {
        Outcome::Failure(crate::metrics::Failure::new(
            crate::metrics::FailureKind::HttpStatus,
            format!("Received status code: {}", 500 + i % 2),
        ))
    } else {
        Outcome::Success
    };
    let e2e = Duration::from_micros(20_000 + (i * 7919) % 900_000);
    let mut r = RequestRecord::bare(0, t0, t0 + e2e, outcome);
    // Half the requests are open-loop arrivals that started a little late.
    if i.is_multiple_of(2) {
        r.intended = Some(t0);
        r.start = t0 + Duration::from_micros(i % 700);
    }
    r.connect = i
        .is_multiple_of(5)
        .then_some(Duration::from_micros(300 + i));
    r.headers = Some(t0 + Duration::from_micros(1_000 + i));
    r.first_event = Some(t0 + Duration::from_micros(2_000 + i));
    r.first_token = Some(t0 + Duration::from_micros(5_000 + (i * 104_729) % 400_000));
    r.first_answer_token = r.first_token.map(|t| t + Duration::from_micros(i % 3_000));
    r.last_token = Some(t0 + e2e);
    r.output_tokens = Some((10 + i % 50, TokenSource::Usage));
    r.reasoning_tokens = Some(i % 10);
    r.content_bytes = 100 + i;
    r.request_bytes = 200 + i;
    let itl: Vec<u32> = (0..5)
        .map(|k| (1_000 + (i * 31 + k * 17) % 5_000) as u32)
        .collect();
    set.record(
        &r,
        &itl,
        1_000_000 + i,
        2_000_000 + i * 3,
        !i.is_multiple_of(3),
    );
}

fn same_metric(a: &Metric, b: &Metric, what: &str) {
    assert_eq!(
        (a.count(), a.sum(), a.min(), a.max()),
        (b.count(), b.sum(), b.min(), b.max()),
        "{what}"
    );
    let ra: Vec<_> = a
        .histogram()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    let rb: Vec<_> = b
        .histogram()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    assert_eq!(ra, rb, "{what}: buckets");
    for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
        assert_eq!(a.quantile(q), b.quantile(q), "{what} q{q}");
    }
}

#[test]
fn shipped_histograms_merge_to_the_same_percentiles_as_a_direct_merge() {
    // Three "workers" record disjoint requests; the master merges what they ship.
    let mut parts = vec![StatsSet::new(1), StatsSet::new(1), StatsSet::new(1)];
    let mut direct = StatsSet::new(1);
    for i in 0..3_000u64 {
        let w = (i % 3) as usize;
        record(&mut parts[w], i);
        record(&mut direct, i);
    }
    let mut index = KindIndex::new(vec![kind()]);
    let mut merged = StatsSet::new(1);
    for p in &parts {
        let figures = WorkerFigures {
            user_count: 3,
            in_flight: 2,
            ..WorkerFigures::default()
        };
        let data = report_data(&[kind()], p, &[PerSecond::new()], &figures, 1.0, true);
        // Through the wire format, as a master receives it.
        let bytes = Message::new("stats", data, "w").encode();
        let m = Message::decode(&bytes).unwrap();
        let r = read_report(&m.data, &mut index).unwrap();
        assert!(r.exact);
        assert_eq!(r.in_flight, 2);
        merged.merge(&r.delta);
    }
    let (a, b) = (merged.total(), direct.total());
    assert_eq!(
        (a.requests, a.failures, a.cancelled, a.good, a.content_bytes),
        (b.requests, b.failures, b.cancelled, b.good, b.content_bytes)
    );
    assert_eq!((a.dropped, a.warmup), (b.dropped, b.warmup));
    assert_eq!(a.token_sources, b.token_sources);
    assert_eq!(
        (a.first_start_unix_us, a.last_end_unix_us),
        (b.first_start_unix_us, b.last_end_unix_us)
    );
    // Every catalogue metric travels, the open loop's too.
    for (id, mb) in b.metrics() {
        assert!(mb.count() > 0, "the fixture records {}", id.key());
        same_metric(a.metric(id), mb, id.key());
    }
    assert_eq!(merged.failures, direct.failures);
    // The TTFT p99 is that of all requests, not an average of the workers' p99s.
    let avg_p99: f64 = parts
        .iter()
        .map(|p| p.total().metric(MetricId::Ttft).quantile(0.99).unwrap() as f64)
        .sum::<f64>()
        / 3.0;
    let p99 = |s: &NameStats| s.metric(MetricId::Ttft).quantile(0.99);
    assert_eq!(p99(&a), p99(&b));
    assert_ne!(p99(&a).unwrap() as f64, avg_p99);
}

/// Open-loop counts travel too, and a report from a peer that knows other metrics reads: an
/// unknown key is skipped, a missing one is an empty metric.
#[test]
fn unknown_metric_keys_are_skipped_and_missing_ones_are_empty() {
    let mut set = StatsSet::new(1);
    for i in 0..20 {
        record(&mut set, i);
    }
    set.rows[0].dropped = 7;
    set.rows[0].warmup = 3;
    let mut data = report_data(
        &[kind()],
        &set,
        &[PerSecond::new()],
        &WorkerFigures::default(),
        1.0,
        true,
    );
    // Keep only TTFT and add a metric from the future.
    let Value::Map(top) = &mut data else {
        unreachable!()
    };
    let gsai = top
        .iter_mut()
        .find(|(k, _)| k.as_str() == Some("gsai"))
        .unwrap();
    let Value::Map(g) = &mut gsai.1 else {
        unreachable!()
    };
    let rows = g
        .iter_mut()
        .find(|(k, _)| k.as_str() == Some("rows"))
        .unwrap();
    let Value::Array(rows) = &mut rows.1 else {
        unreachable!()
    };
    let Value::Map(row) = &mut rows[0] else {
        unreachable!()
    };
    let metrics = row
        .iter_mut()
        .find(|(k, _)| k.as_str() == Some("metrics"))
        .unwrap();
    let Value::Map(ms) = &mut metrics.1 else {
        unreachable!()
    };
    let ttft = ms
        .iter()
        .find(|(k, _)| k.as_str() == Some("ttft_us"))
        .unwrap()
        .clone();
    *ms = vec![(Value::from("queue_us"), ttft.1.clone()), ttft];
    let r = read_report(&data, &mut KindIndex::new(vec![kind()])).unwrap();
    let t = r.delta.total();
    assert_eq!((t.requests, t.dropped, t.warmup), (20, 7, 3));
    same_metric(
        t.metric(MetricId::Ttft),
        set.total().metric(MetricId::Ttft),
        "ttft_us",
    );
    for id in MetricId::ALL.into_iter().filter(|id| *id != MetricId::Ttft) {
        assert_eq!(t.metric(id).count(), 0, "{}", id.key());
    }
}

#[test]
fn outbox_keeps_per_second_counts_and_empties_on_take() {
    let mut d = StatsSet::new(1);
    for i in 1..=5 {
        record(&mut d, i);
    }
    let mut ob = Outbox::new(1);
    ob.add(&d, 1_700_000_001.2);
    ob.add(&d, 1_700_000_002.2);
    assert_eq!(ob.pending_requests(), 10);
    let data = ob.take(&[kind()], &WorkerFigures::default(), 1_700_000_002.3, false);
    assert_eq!(ob.pending_requests(), 0);
    let e = &get(&data, "stats").unwrap().as_array().unwrap()[0];
    let per = get(e, "num_reqs_per_sec").unwrap().as_map().unwrap();
    let keys: Vec<_> = per
        .iter()
        .map(|(k, v)| (k.as_i64().unwrap(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(keys, vec![(1_700_000_000, 5), (1_700_000_001, 5)]);
    assert_eq!(get(e, "num_requests").and_then(Value::as_u64), Some(10));
    assert!(get(&data, "gsai").is_none());
}

#[test]
fn malformed_reports_are_errors_not_panics() {
    let mut index = KindIndex::default();
    for bad in [
        Value::Nil,
        map(vec![("stats", Value::from(1))]),
        map(vec![("gsai", map(vec![("version", Value::from(99))]))]),
        map(vec![(
            "gsai",
            map(vec![
                ("version", Value::from(GSAI_PROTOCOL)),
                (
                    "rows",
                    Value::Array(vec![map(vec![(
                        "metrics",
                        map(vec![(
                            "ttft_us",
                            Value::Array(vec![Value::Binary(vec![1, 2, 3])]),
                        )]),
                    )])]),
                ),
            ]),
        )]),
    ] {
        assert!(read_report(&bad, &mut index).is_err(), "{bad:?}");
    }
}
