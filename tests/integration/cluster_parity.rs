//! Metric parity: one open-loop scenario run locally and through a master with one worker
//! reports the same set of metrics (issue 10: the wire carried 9 of the 13, so a distributed
//! open-loop test lost schedule lag, TTFT/E2E from the intended start and per-request tokens/s).

use crate::cluster::{clean, master, result, worker, Proc};
use crate::harness::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// The scenario both runs share: open loop at 40 requests/s for 3 s.
const SCENARIO: [&str; 6] = ["--rate", "40", "-t", "3s", "--stop-timeout", "10s"];

/// Per row (method, name): the raw metric keys that have samples.
fn raw_keys(v: &Value) -> Vec<(String, BTreeSet<String>)> {
    let rows = v["raw"]["rows"].as_array().expect("raw rows");
    rows.iter()
        .map(|r| {
            let keys = r["metrics"]
                .as_object()
                .expect("raw metrics")
                .iter()
                .filter(|(_, m)| m["count"].as_u64().unwrap_or(0) > 0)
                .map(|(k, _)| k.clone())
                .collect();
            (format!("{} {}", r["method"], r["name"]), keys)
        })
        .collect()
}

fn count(v: &Value, summary_key: &str) -> u64 {
    v["metrics"][summary_key]["count"].as_u64().unwrap_or(0)
}

/// The counts of one result agree with each other and with what the mock served.
fn assert_consistent(what: &str, v: &Value, served: u64) {
    let s = &v["summary"];
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{what}: summary.{k}"))
    };
    let (requests, successes, failures) = (n("requests"), n("successes"), n("failures"));
    assert!(
        requests >= 20,
        "{what}: {requests} requests at 40/s for 3 s"
    );
    assert_eq!(requests, successes + failures, "{what}");
    assert_eq!(failures, 0, "{what}");
    assert_eq!(
        requests, served,
        "{what}: every request the mock served is counted"
    );
    // Every started request has a schedule lag; each success the open-loop latencies.
    assert_eq!(
        count(v, "schedule_lag_ms"),
        requests + n("cancelled"),
        "{what}"
    );
    for key in [
        "ttft_from_intended_ms",
        "e2e_from_intended_ms",
        "output_tokens_per_s",
        "ttft_ms",
    ] {
        assert_eq!(count(v, key), successes, "{what}: {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_test_reports_the_same_metrics_locally_and_through_a_master() {
    // Local.
    let local_mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = local_mock.base_url();
    let mut args = vec![
        "--headless",
        "-H",
        &url,
        "--model",
        "test-model",
        "--json",
        "out.json",
    ];
    args.extend_from_slice(&SCENARIO);
    let mut cmd = clean(dir.path(), &args);
    cmd.env("GSA_AUTH_TOKEN", TOKEN);
    let mut local = Proc::spawn(cmd);
    assert_eq!(
        local.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        local.text()
    );
    let local_doc = result(dir.path());
    assert_consistent("local", &local_doc, local_mock.counters().requests);
    local_mock.shutdown().await;

    // The same scenario through a master and one worker.
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = vec!["--expect-workers", "1"];
    extra.extend_from_slice(&SCENARIO);
    let (mut m, port) = master(dir.path(), &mock, &extra).await;
    let mut w = worker(dir.path(), port, &mock.base_url());
    assert_eq!(
        m.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m.text()
    );
    assert_eq!(
        w.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        w.text()
    );
    let master_doc = result(dir.path());
    assert_consistent("master", &master_doc, mock.counters().requests);
    mock.shutdown().await;

    // The same metrics, row by row.
    let (local_keys, master_keys) = (raw_keys(&local_doc), raw_keys(&master_doc));
    for key in [
        "schedule_lag_us",
        "ttft_intended_us",
        "e2e_intended_us",
        "output_tps_milli",
        "ttft_us",
        "response_time_us",
    ] {
        assert!(
            local_keys.iter().any(|(_, k)| k.contains(key)),
            "local run has {key}: {local_keys:?}"
        );
    }
    assert_eq!(
        master_keys, local_keys,
        "the master's result has the metrics of the local one"
    );
    let summaries = |v: &Value| -> BTreeSet<String> {
        v["metrics"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, m)| m["count"].as_u64().unwrap_or(0) > 0)
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(summaries(&master_doc), summaries(&local_doc));
}
