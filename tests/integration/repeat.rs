//! `--repeat N`: N runs against the mock, one JSON with each run and the confidence intervals,
//! the console's "mean ± half-width" table, and the HTML report's section.

use crate::harness::{bin, fast_config, headless_args, output, start_mock, text, TOKEN};
use serde_json::Value;

#[tokio::test]
async fn repeat_runs_the_test_n_times_and_reports_confidence_intervals() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let html = dir.path().join("out.html");
    let url = mock.base_url();
    let (json_s, html_s) = (json.to_str().unwrap(), html.to_str().unwrap());
    let args = headless_args(
        &url,
        &[
            "--token",
            TOKEN,
            "--repeat",
            "3",
            "--max-requests",
            "10",
            "-t",
            "60s",
            "--json",
            json_s,
            "--html",
            html_s,
            "--slo",
            "ttft<5s",
        ],
    );
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = mock.counters();
    assert_eq!(c.requests, 30, "three runs of 10 requests: {c:?}");
    let console = String::from_utf8_lossy(&o.stdout);
    assert!(console.contains("± "), "{console}");
    assert!(console.contains("Student t"), "{console}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        doc["summary"]["requests"], 30,
        "the top level pools every run"
    );
    let rep = &doc["repeats"];
    assert_eq!(rep["n"], 3);
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let metrics = rep["metrics"].as_object().unwrap();
    for key in [
        "rps",
        "output_tokens_per_s",
        "fail_ratio",
        "goodput",
        "ttft_p50_ms",
        "e2e_p99_ms",
    ] {
        let e = &metrics[key];
        let (mean, lo, hi) = (
            e["mean"].as_f64().unwrap(),
            e["ci95_low"].as_f64().unwrap(),
            e["ci95_high"].as_f64().unwrap(),
        );
        assert!(lo <= mean && mean <= hi, "{key}: {e}");
        let avg = runs.iter().map(|r| r[key].as_f64().unwrap()).sum::<f64>() / 3.0;
        assert!(
            (avg - mean).abs() < 1e-9 * avg.abs().max(1.0),
            "{key}: {avg} vs {e}"
        );
        assert!(e["stddev"].as_f64().unwrap() >= 0.0);
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("repeat_figures") && page.contains("Repeated runs"));
    mock.shutdown().await;
}

#[tokio::test]
async fn repeat_needs_a_headless_local_test() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = headless_args("http://127.0.0.1:9", &["--repeat", "2"]);
    args.retain(|a| *a != "--headless");
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--repeat"), "{}", text(&o));
    let args = headless_args("http://127.0.0.1:9", &["--repeat", "0"]);
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
