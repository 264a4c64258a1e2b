//! `--server-metrics` against a fake Prometheus exporter started here on 127.0.0.1:0, whose
//! values change in a known way with each scrape it serves: a gauge equal to the number of
//! scrapes served, a counter that grows by 10 a scrape, and a vLLM TTFT histogram. Also the
//! filter, an unreachable URL (reported, the test passes), the bounds (an oversized answer, one
//! that never comes), the token never reaching the metrics URL, `report` rebuilding the section
//! from the JSON, and the mock's own /metrics set against the client's TTFT.

use crate::chromium::{chromium, dump_dom, screenshot};
use crate::harness::*;
use gsai_load::observe::{ScrapeOptions, Scraper, ServerMetricsArgs};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the fake exporter answers.
#[derive(Clone, Copy)]
enum Mode {
    /// The known series, one step further each scrape.
    Series,
    /// A body of this many bytes, announced with Content-Length.
    Big(usize),
    /// A body of this many bytes, with no Content-Length (read until the connection closes).
    BigUnannounced(usize),
    /// Never answers.
    Silent,
}

struct Exporter {
    url: String,
    served: Arc<AtomicU64>,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The known series at scrape number `n` (1-based).
fn series_text(n: u64) -> String {
    // 2n first tokens under 0.1 s, 2n more under 0.2 s, none above.
    format!(
        "# HELP fake_scrapes Scrapes served so far.\n# TYPE fake_scrapes gauge\nfake_scrapes {n}\n\
         # TYPE fake_work_total counter\nfake_work_total{{job=\"x\"}} {}\n\
         # TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{model_name=\"m\"}} {n}\n\
         # TYPE vllm:time_to_first_token_seconds histogram\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.1\",model_name=\"m\"}} {}\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.2\",model_name=\"m\"}} {}\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"m\"}} {}\n\
         vllm:time_to_first_token_seconds_sum{{model_name=\"m\"}} {}\n\
         vllm:time_to_first_token_seconds_count{{model_name=\"m\"}} {}\n",
        10 * n,
        2 * n,
        4 * n,
        4 * n,
        0.4 * n as f64,
        4 * n
    )
}

async fn exporter(mode: Mode) -> Exporter {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let served = Arc::new(AtomicU64::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (s, h) = (served.clone(), heads.clone());
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (s, h) = (s.clone(), h.clone());
            tokio::spawn(async move {
                let Some(head) = read_head(&mut conn).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                h.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let n = s.fetch_add(1, Ordering::SeqCst) + 1;
                let (body, announce) = match mode {
                    Mode::Series => (series_text(n).into_bytes(), true),
                    Mode::Big(len) => (vec![b'#'; len], true),
                    Mode::BigUnannounced(len) => (vec![b'#'; len], false),
                    Mode::Silent => {
                        // Hold the connection open without a word, until the client gives up.
                        let _ = conn.read(&mut buf).await;
                        return;
                    }
                };
                let mut resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\nconnection: close\r\n".to_vec();
                if announce {
                    resp.extend_from_slice(
                        format!("content-length: {}\r\n", body.len()).as_bytes(),
                    );
                }
                resp.extend_from_slice(b"\r\n");
                let _ = conn.write_all(&resp).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Exporter {
        url,
        served,
        heads,
        task,
    }
}

fn options(urls: &[&str], interval_ms: u64) -> ScrapeOptions {
    ServerMetricsArgs {
        urls: urls.iter().map(|u| u.to_string()).collect(),
        interval: Duration::from_millis(interval_ms),
        filter: None,
        timeout: Duration::from_secs(2),
    }
    .options(&Default::default(), None)
    .unwrap()
    .unwrap()
}

/// Waits (polling, bounded) until the exporter served `n` scrapes.
async fn served_at_least(e: &Exporter, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while e.served.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "the exporter served fewer than {n} scrapes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn series<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["server_metrics"]
        .as_array()
        .expect("server_metrics")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no series {name}"))
}

fn points(s: &Value) -> Vec<(f64, f64)> {
    s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_run_scrapes_known_series_and_reports_an_unreachable_url() {
    let mock = start_mock(fast_config()).await;
    let fake = exporter(Mode::Series).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let host = mock.base_url();
    // Port 1 on loopback: nothing listens there.
    let dead = "http://127.0.0.1:1/metrics";
    let run_s = 3.0;
    let o = output(bin(
        dir.path(),
        &headless_args(
            &host,
            &[
                "--token",
                TOKEN,
                "-t",
                "3s",
                "--server-metrics",
                &fake.url,
                "--server-metrics",
                dead,
                "--server-metrics-interval",
                "200ms",
                "--json",
                json.to_str().unwrap(),
            ],
        ),
    ))
    .await;
    let all = text(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a scrape failure never fails the test: {all}"
    );
    assert!(!all.contains(TOKEN), "{all}");
    // Warned once for the dead URL, however many scrapes failed.
    assert_eq!(
        all.matches("--server-metrics http://127.0.0.1:1/metrics")
            .count(),
        1,
        "{all}"
    );
    assert!(all.contains("TTFT, client vs server"), "{all}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    // One point a scrape: about run time / interval, plus the first (at the start) and the
    // last (at the end); at least 60% of the ticks even on a loaded machine.
    let gauge = points(series(&doc, "fake_scrapes"));
    let expected = run_s / 0.2;
    assert!(
        (gauge.len() as f64) >= expected * 0.6 && (gauge.len() as f64) <= expected + 3.0,
        "{} points for ~{expected}",
        gauge.len()
    );
    // The gauge is the exporter's scrape number: 1, 2, 3, ... (no scrape lost or doubled).
    for (i, (_, v)) in gauge.iter().enumerate() {
        assert_eq!(*v, (i + 1) as f64, "{gauge:?}");
    }
    assert_eq!(series(&doc, "fake_scrapes")["kind"], "gauge");
    assert!(series(&doc, "fake_scrapes").get("rate_per_s").is_none());
    // The counter grows by 10 a scrape: its rate is 10 over each gap between scrapes.
    let counter = series(&doc, "fake_work_total");
    assert_eq!(counter["labels"]["job"], "x");
    let pts = points(counter);
    let rates = counter["rate_per_s"].as_array().unwrap();
    assert_eq!(rates.len(), pts.len() - 1);
    for (w, r) in pts.windows(2).zip(rates) {
        let dt = w[1].0 - w[0].0;
        assert!(
            (r[1].as_f64().unwrap() * dt - 10.0).abs() < 1e-6,
            "{r:?} over {dt}s"
        );
        assert_eq!(r[0].as_f64().unwrap(), w[1].0);
    }
    // Points lie within the test (plus the last scrape at its very end).
    let start = doc["started_unix_s"].as_f64().unwrap();
    let end = start + doc["duration_s"].as_f64().unwrap();
    assert!(gauge
        .iter()
        .all(|(t, _)| *t >= start - 0.5 && *t <= end + 2.0));
    // The histogram: 2 first tokens per scrape under 0.1 s and 2 under 0.2 s, so the server's
    // median over the test is the 0.1 s bound.
    let ttft = &doc["server_ttft"][0];
    assert_eq!(ttft["source"], "vllm:time_to_first_token_seconds");
    assert_eq!(
        ttft["server_count"].as_f64().unwrap(),
        4.0 * (gauge.len() - 1) as f64
    );
    assert!(
        (ttft["server_p50_ms"].as_f64().unwrap() - 100.0).abs() < 1e-6,
        "{ttft}"
    );
    assert!(ttft["note"].as_str().unwrap().contains("Open WebUI"));
    // The unreachable URL: reported with its cause, once per cause, with its count.
    let errors = doc["server_metrics_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["url"], dead);
    assert!(
        errors[0]["cause"].as_str().unwrap().contains("connection"),
        "{errors:?}"
    );
    assert!(errors[0]["count"].as_u64().unwrap() >= 3);
    // The token never reached the metrics URL.
    for head in fake.heads.lock().unwrap().iter() {
        let lower = head.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization") && !head.contains(TOKEN),
            "{head}"
        );
        assert!(lower.starts_with("get /metrics http/1.1"), "{head}");
    }

    // `report` rebuilds the section from the JSON alone.
    let html = dir.path().join("r.html");
    let o = output(bin(
        dir.path(),
        &[
            "report",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    ))
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("TTFT, client vs server"), "{all}");
    assert!(all.contains("scrape problem"), "{all}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("\"engine\":\"vLLM\""),
        "the vLLM overview is in the page data"
    );
    assert!(page.contains("GsaiServerMetrics"));
    if let Some(exe) = chromium("server metrics section") {
        let dom = dump_dom(&exe, &html).await;
        for title in [
            "Server metrics",
            "Requests on the server",
            "Time to first token: server (vllm:time_to_first_token_seconds) and client",
            "TTFT, client vs server",
            "Scrape problems",
        ] {
            assert!(
                dom.contains(title),
                "{title} missing from the rendered page"
            );
        }
        let shot = std::env::temp_dir().join("gsai-load-server-metrics.png");
        screenshot(&exe, &html, &shot, (1400, 3000)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_keeps_matching_series_only() {
    let fake = exporter(Mode::Series).await;
    let mut opts = options(&[&fake.url], 100);
    opts.filter = Some(regex::Regex::new("^fake_work").unwrap());
    let handle = Scraper::start(opts);
    served_at_least(&fake, 3).await;
    let m = handle.finish().await;
    let names: Vec<&str> = m.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fake_work_total"]);
    assert!(m.series[0].points.len() >= 3);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_silent_endpoints_fail_their_scrapes_within_bounds() {
    let announced = exporter(Mode::Big(10_000)).await;
    let unannounced = exporter(Mode::BigUnannounced(5_000)).await;
    let silent = exporter(Mode::Silent).await;
    let mut opts = options(&[&announced.url, &unannounced.url, &silent.url], 100);
    // The size cap under test: below the unannounced body, above nothing else.
    opts.max_body_bytes = 4_000;
    opts.timeout = Duration::from_millis(300);
    let began = Instant::now();
    let handle = Scraper::start(opts);
    served_at_least(&announced, 2).await;
    served_at_least(&unannounced, 2).await;
    served_at_least(&silent, 2).await;
    let m = handle.finish().await;
    assert!(began.elapsed() < Duration::from_secs(10));
    assert!(m.series.is_empty());
    let cause = |url: &str| {
        m.errors
            .iter()
            .find(|e| e.url == url)
            .map(|e| e.cause.clone())
            .unwrap_or_else(|| panic!("no failure for {url}: {:?}", m.errors))
    };
    assert!(
        cause(&announced.url).contains("larger than 4000 bytes"),
        "{:?}",
        m.errors
    );
    assert!(
        cause(&unannounced.url).contains("larger than 4000 bytes"),
        "{:?}",
        m.errors
    );
    assert!(
        cause(&silent.url).contains("within 300ms"),
        "{:?}",
        m.errors
    );
    // One entry per URL and cause, counting every failed scrape.
    assert_eq!(m.errors.len(), 3, "{:?}", m.errors);
    assert!(m.errors.iter().all(|e| e.count >= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_own_metrics_count_every_first_token() {
    let mock = start_mock(fast_config()).await;
    let metrics_url = format!("{}/metrics", mock.base_url());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("m.json");
    let host = mock.base_url();
    let o = output(bin(
        dir.path(),
        &headless_args(
            &host,
            &[
                "--token",
                TOKEN,
                "--max-requests",
                "40",
                "--server-metrics",
                &metrics_url,
                "--server-metrics-interval",
                "100ms",
                "--json",
                json.to_str().unwrap(),
            ],
        ),
    ))
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let c = &doc["server_ttft"][0];
    // The last scrape comes after every request ended: the server counted each first token.
    let ok = doc["summary"]["successes"].as_f64().unwrap();
    assert_eq!(c["server_count"].as_f64().unwrap(), ok, "{c}");
    // The mock's TTFT is 5 ms: the client's median lies in the server's bucket or just above
    // it (the client adds the loopback and its own scheduling).
    let bucket = c["server_p50_bucket_ms"].as_array().unwrap();
    let client = c["client_p50_ms"].as_f64().unwrap();
    assert!(client > bucket[0].as_f64().unwrap(), "{c}");
    assert!(client < bucket[1].as_f64().unwrap() + 20.0, "{c}");
    assert!(
        doc["server_metrics_errors"].is_null(),
        "{}",
        doc["server_metrics_errors"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_distributed_mode_the_master_scrapes() {
    use crate::cluster::{clean, Proc};
    let mock = start_mock(fast_config()).await;
    let fake = exporter(Mode::Series).await;
    let dir = tempfile::tempdir().unwrap();
    let host = mock.base_url();
    let mut m = Proc::spawn(clean(
        dir.path(),
        &[
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            "0",
            "-H",
            &host,
            "--model",
            "test-model",
            "--wait",
            "constant(0.05)",
            "--print-every",
            "0",
            "--expect-workers",
            "1",
            "-u",
            "2",
            "-r",
            "100",
            "-t",
            "2s",
            "--server-metrics",
            &fake.url,
            "--server-metrics-interval",
            "200ms",
            "--json",
            "out.json",
        ],
    ));
    let line = m
        .wait_line("master listening on", Duration::from_secs(20))
        .await;
    let port: u16 = line
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    // The worker is given --server-metrics too: it must not scrape (only the master does).
    let port = port.to_string();
    let mut c = clean(
        dir.path(),
        &[
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            &port,
            "--server-metrics",
            &fake.url,
        ],
    );
    c.env("GSA_AUTH_TOKEN", TOKEN).env("GSAI_HOST", &host);
    let mut w = Proc::spawn(c);
    assert_eq!(
        m.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m.text()
    );
    let _ = w.wait_exit(Duration::from_secs(20)).await;
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
    let gauge = points(series(&doc, "fake_scrapes"));
    assert!(gauge.len() >= 3, "{gauge:?}");
    // One scraper: the exporter's count is exactly the master's points.
    assert_eq!(fake.served.load(Ordering::SeqCst), gauge.len() as u64);
    for head in fake.heads.lock().unwrap().iter() {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "{head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_serves_the_well_known_series_live_and_in_downloads() {
    use crate::http::{get, post_form};
    use gsai_load::web::{self, Controller, Runner, WebState};
    let mock = start_mock(fast_config()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut plan = crate::web::template();
    plan.host = mock.base_url();
    let controller =
        Controller::with_runner(plan, crate::web::defaults(Some(&mock)), Runner::Local);
    controller.server_metrics().configure(Some(options(
        &[&format!("{}/metrics", mock.base_url())],
        100,
    )));
    let state = WebState {
        controller,
        login: None,
    };
    tokio::spawn(web::serve(listener, state, shutdown.clone()));
    let before = get(addr, "/stats/server-metrics").await.json();
    assert_eq!(before["enabled"], true);
    assert_eq!(before["overviews"], serde_json::json!([]));
    let r = post_form(addr, "/swarm", "user_count=2&spawn_rate=50").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Live: the mock's vLLM-style series show up while the test runs (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        let d = get(addr, "/stats/server-metrics").await.json();
        let ready = d["overviews"][0]["running"]
            .as_array()
            .is_some_and(|p| p.len() >= 3)
            && d["comparisons"][0]["server_count"].as_f64() > Some(0.0)
            // The client's figures arrive with the engine's once-a-second snapshot.
            && d["comparisons"][0]["client_p50_ms"].is_number();
        if ready {
            break d;
        }
        assert!(Instant::now() < deadline, "no live server metrics: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(live["overviews"][0]["engine"], "vLLM");
    assert_eq!(
        live["overviews"][0]["ttft_source"],
        "vllm:time_to_first_token_seconds"
    );
    assert!(
        live["comparisons"][0]["client_p50_ms"].as_f64().is_some(),
        "{live}"
    );
    assert_eq!(get(addr, "/stop").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = get(addr, "/stats/requests").await.json();
        if s["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "the test did not stop: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // After the test: the finished collection, in the page data and in the JSON download.
    let after = get(addr, "/stats/server-metrics").await.json();
    assert_eq!(after["overviews"][0]["engine"], "vLLM");
    let doc = get(addr, "/result.json").await.json();
    let names: Vec<&str> = doc["server_metrics"]
        .as_array()
        .expect("server_metrics in the download")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"vllm:num_requests_running"), "{names:?}");
    assert_eq!(
        doc["server_ttft"][0]["server_count"].as_f64(),
        doc["summary"]["successes"].as_f64(),
        "every first token counted by the last scrape"
    );
    let page = get(addr, "/assets/server_metrics.js").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("GsaiServerMetrics"));
    shutdown.cancel();
}
