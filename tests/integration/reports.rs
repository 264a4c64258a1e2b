//! Reports and verdicts against the mock: SLOs and goodput, the CSV/JSON/HTML files of a real run,
//! `report` rebuilding them byte for byte, thresholds and exit codes, `--threshold-abort`,
//! `compare`, and the HTML report drawn by headless Chromium.

use crate::chromium::{chromium, dump_dom, screenshot};
use crate::harness::*;
use gsai_load::report::{html, Extras};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A headless run against `url` that stops after `n` requests.
fn run_args<'a>(url: &'a str, n: &'a str) -> Vec<&'a str> {
    vec![
        "--headless",
        "--host",
        url,
        "--model",
        "test-model",
        "--token",
        TOKEN,
        "-u",
        "2",
        "-r",
        "100",
        "--wait",
        "none",
        "--max-requests",
        n,
        "--print-every",
        "0",
    ]
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const CSV_FILES: [&str; 5] = [
    "_stats.csv",
    "_stats_history.csv",
    "_failures.csv",
    "_exceptions.csv",
    "_llm_stats.csv",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_counts_good_requests_and_failures_never_count() {
    let mock = start_mock_failing(0.3).await;
    // TTFT is about 5 ms: every success meets 1 s, none meets 1 µs.
    let mut p = plan(&mock, 2, 40);
    p.slo = vec!["ttft<1s".parse().unwrap(), "e2e<=10s".parse().unwrap()];
    let t = total(&run(p.clone()).await);
    assert_eq!(t.requests, 40);
    assert!(t.failures > 0 && t.failures < 40, "{}", t.failures);
    assert_eq!(t.good, t.successes(), "every success met the SLO");
    p.slo = vec!["ttft<1us".parse().unwrap()];
    assert_eq!(total(&run(p.clone()).await).good, 0);
    p.slo.clear();
    let t = total(&run(p).await);
    assert_eq!(
        t.good,
        t.successes(),
        "without an SLO every success is good"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_csv_json_html_and_report_rebuilds_them_exactly() {
    let mock = start_mock_failing(0.2).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let mut args = run_args(&url, "30");
    args.extend([
        "--csv",
        "run",
        "--json",
        "run.json",
        "--html",
        "run.html",
        "--slo",
        "ttft<1s,tpot<1s",
        "--threshold",
        "ttft.p95<5s",
        "--threshold",
        "requests>=30",
        "--exit-code-on-error",
        "0",
    ]);
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("PASS  ttft.p95<5s") && all.contains("All 2 thresholds passed"),
        "{all}"
    );
    assert!(all.contains("Goodput:"), "{all}");

    let stats = read(dir.path(), "run_stats.csv");
    assert!(stats.starts_with("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\r\n"));
    assert!(
        stats.contains("\r\nPOST,/api/chat/completions,30,"),
        "{stats}"
    );
    assert!(stats.contains("\r\n,Aggregated,30,"), "{stats}");
    let history = read(dir.path(), "run_stats_history.csv");
    assert!(history.lines().count() >= 2, "{history}");
    assert!(history.lines().skip(1).all(|l| l.contains(",,Aggregated,")));
    assert!(read(dir.path(), "run_failures.csv").contains("Received status code: 500"));
    assert_eq!(
        read(dir.path(), "run_exceptions.csv"),
        "Count,Message,Traceback,Nodes\r\n"
    );
    assert!(read(dir.path(), "run_llm_stats.csv").contains(",Aggregated,30,"));

    let json: serde_json::Value = serde_json::from_str(&read(dir.path(), "run.json")).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["thresholds"].as_array().unwrap().len(), 2);
    assert_eq!(json["plan"]["slo"][0]["metric"], "ttft");
    assert!(json["summary"]["goodput"].as_f64().unwrap() > 0.0);
    assert!(json["raw"]["rows"][0]["metrics"]["ttft_us"]["hdr"].is_string());
    for f in CSV_FILES
        .iter()
        .map(|s| format!("run{s}"))
        .chain(["run.json".into(), "run.html".into()])
    {
        assert!(!read(dir.path(), &f).contains(TOKEN), "token in {f}");
    }

    // `report` rebuilds the same files from the JSON alone.
    let o = output(bin(
        dir.path(),
        &[
            "report",
            "run.json",
            "--html",
            "again.html",
            "--csv",
            "again",
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for suffix in CSV_FILES {
        assert_eq!(
            read(dir.path(), &format!("again{suffix}")),
            read(dir.path(), &format!("run{suffix}")),
            "{suffix} differs after report"
        );
    }
    let again = read(dir.path(), "again.html");
    assert!(again.len() > 20_000 && !again.contains(TOKEN));

    let o = output(bin(dir.path(), &["report", "run.json"])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--html FILE and/or --csv PREFIX"));
    let o = output(bin(
        dir.path(),
        &["report", "run_stats.csv", "--html", "x.html"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("is not a gsai-load JSON result"),
        "{}",
        text(&o)
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_and_failures_decide_the_exit_code() {
    let mock = start_mock_failing(1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    for (extra, code) in [
        (vec![], 1),
        (vec!["--exit-code-on-error", "0"], 0),
        (vec!["--exit-code-on-error", "3"], 3),
        (vec!["--threshold", "requests>0"], 1),
        (
            vec!["--threshold", "requests>0", "--exit-code-on-error", "0"],
            0,
        ),
        (
            vec!["--threshold", "fail_rate<1%", "--exit-code-on-error", "0"],
            99,
        ),
        (vec!["--threshold", "fail_rate<1%"], 99),
        (vec!["--threshold", "ttft.p95<1s"], 99),
    ] {
        let mut args = run_args(&url, "4");
        args.extend(&extra);
        let o = output(bin(dir.path(), &args)).await;
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {}", text(&o));
        if code == 99 {
            assert!(text(&o).contains("FAIL  "), "{}", text(&o));
        }
    }
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_threshold_and_slo_expressions_are_usage_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, expr, why) in [
        ("--threshold", "ttft<800ms", "needs a statistic"),
        ("--threshold", "latency.p95<1s", "unknown metric"),
        ("--threshold", "fail_rate<5", "percentage or a fraction"),
        ("--threshold", "ttft.p95<5h", "unknown time unit"),
        ("--slo", "ttft>5ms", "upper limit"),
        ("--slo", "speed<1s", "unknown metric"),
    ] {
        let mut args = run_args("http://127.0.0.1:9", "1");
        args.extend([flag, expr]);
        let o = output(bin(dir.path(), &args)).await;
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{expr}: {err}");
        assert!(err.contains(expr) && err.contains(why), "{expr}: {err}");
    }
    let mut args = run_args("http://127.0.0.1:9", "1");
    args.push("--threshold-abort");
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--threshold"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_abort_stops_the_test_early() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let mut args = run_args(&url, "1000000");
    args.extend([
        "-t",
        "60s",
        "--threshold",
        "ttft.p95<1us",
        "--threshold-abort",
        "--threshold-abort-delay",
        "0s",
        "--json",
        "r.json",
    ]);
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(99), "{all}");
    assert!(all.contains("stopping (--threshold-abort)"), "{all}");
    let json: serde_json::Value = serde_json::from_str(&read(dir.path(), "r.json")).unwrap();
    assert_eq!(json["threshold_abort"]["expr"], "ttft.p95<1us");
    assert_eq!(json["stop_reason"], "stopped");
    assert!(
        json["duration_s"].as_f64().unwrap() < 30.0,
        "{}",
        json["duration_s"]
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_reports_changes_and_fails_on_regressions() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let mut args = run_args(&url, "20");
    args.extend(["--json", "a.json"]);
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut b: serde_json::Value = serde_json::from_str(&read(dir.path(), "a.json")).unwrap();
    let p95 = b["metrics"]["ttft_ms"]["p95"].as_f64().unwrap();
    b["metrics"]["ttft_ms"]["p95"] = (p95 * 2.0).into();
    std::fs::write(dir.path().join("b.json"), b.to_string()).unwrap();

    let o = output(bin(
        dir.path(),
        &["compare", "a.json", "a.json", "--fail-if-worse", "0"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = output(bin(dir.path(), &["compare", "a.json", "b.json"])).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "without --fail-if-worse: report only"
    );
    assert!(
        text(&o).contains("TTFT p95") && text(&o).contains("+100.0%"),
        "{}",
        text(&o)
    );
    let o = output(bin(
        dir.path(),
        &["compare", "a.json", "b.json", "--fail-if-worse", "10"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(99), "{}", text(&o));
    assert!(
        text(&o).contains("regression: TTFT p95 is worse by 100.0%"),
        "{}",
        text(&o)
    );
    mock.shutdown().await;
}

/// Renders a real run's HTML report in headless Chromium: the DOM after its scripts ran must hold
/// every chart with data lines, and a screenshot is kept for people to look at
/// (target/tmp/gsai-report.png). Without Chromium the test is skipped loudly, except under CI
/// (`CI` set), where a missing browser is a failure: CI installs it (`apt-get install chromium`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_headless_chromium() {
    let Some(exe) = chromium("html_report_renders_in_headless_chromium") else {
        return;
    };
    let mock = start_mock_failing(0.05).await;
    let mut p = plan(&mock, 4, 1_000_000);
    p.wait = gsai_load::config::WaitTime::Constant { s: 0.02 };
    p.run_time = Some(Duration::from_secs(4));
    p.slo = vec!["ttft<50ms".parse().unwrap()];
    let result = run(p).await;
    mock.shutdown().await;
    let extras = Extras {
        thresholds: vec![
            "ttft.p95<1s"
                .parse::<gsai_load::criteria::threshold::Threshold>()
                .unwrap()
                .judge(&result.stats.total()),
            "rps>100000"
                .parse::<gsai_load::criteria::threshold::Threshold>()
                .unwrap()
                .judge(&result.stats.total()),
        ],
        ..Extras::default()
    };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let page = out_dir.join("gsai-report.html");
    html::write(&result, &extras, &page).unwrap();

    let dom = dump_dom(&exe, &page).await;
    let charts = dom.matches("class=\"gsai-chart\"").count();
    assert_eq!(
        charts,
        11,
        "6 timeline charts + 5 distributions; DOM:\n{}",
        &dom[..dom.len().min(3000)]
    );
    let lines = dom.matches("stroke-width=\"2\"").count();
    assert!(lines >= 15, "data lines drawn: {lines}");
    // Rendered text only: the scripts themselves are part of the DOM too.
    assert!(!dom.contains("class=\"empty\">"), "a chart had no data");
    assert!(dom.contains("<h2>Request statistics"), "tables rendered");
    // The metrics table lists the catalogue (closed loop: without the open loop's metrics).
    for label in [
        "TTFT (ms)",
        "TTFE (ms)",
        "Response time (ms)",
        "Output tokens/s (tok/s)",
    ] {
        assert!(
            dom.contains(&format!(">{label}<")),
            "metrics table lists {label}"
        );
    }
    assert!(
        !dom.contains(">Schedule lag (ms)<"),
        "closed loop: no schedule lag row"
    );
    assert!(
        dom.contains("class=\"verdict fail\">FAILED"),
        "a threshold failed"
    );
    assert!(dom.contains("✗ failed</span>") && dom.contains("✓ passed</span>"));
    assert!(!dom.contains(TOKEN));
    // No stages, no warm-up: nothing marked.
    assert!(!dom.contains("class=\"phase-marker\"") && !dom.contains("class=\"phase-band\""));

    let shot = out_dir.join("gsai-report.png");
    let png = screenshot(&exe, &page, &shot, (1400, 2200)).await;
    assert!(png.len() > 50_000, "{} bytes", png.len());
}
