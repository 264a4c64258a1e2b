//! Live `GET /metrics` scraped with a real parser: the `--metrics-port` of a headless run while
//! it runs, and the web UI's route and port after an autostarted test, whose last figures must
//! equal its JSON result; the login applies, other Host names are refused, the token never shows.

use crate::harness::*;
use crate::http::{send, try_send};
use gsai_load::observe::parse::{parse, Sample};
use hyper::Method;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LOGIN: (&str, &str) = ("authorization", "Basic YWRtaW46czNjcmV0"); // admin:s3cret

fn spawn(dir: &std::path::Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gsai-load"))
        .current_dir(dir)
        .args(args)
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// The child's stderr, a line at a time.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads stderr until each of `prefixes` ("metrics at http://", "web UI at http://") has given an
/// address.
fn addresses(
    lines: &mpsc::Receiver<String>,
    prefixes: &[&str],
    seen: &mut Vec<String>,
) -> Vec<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found: Vec<Option<SocketAddr>> = vec![None; prefixes.len()];
    while found.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "no address for {prefixes:?} in {seen:?}"
        );
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(rest) = line.split(p).nth(1) {
                let addr = rest.split(['/', ' ']).next().unwrap_or_default();
                found[i] = Some(addr.parse().unwrap_or_else(|_| panic!("address in {line}")));
            }
        }
        seen.push(line);
    }
    found.into_iter().flatten().collect()
}

fn wait_exit(mut child: Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One scrape, parsed.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The sum of every sample named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// Failures per kind.
    fn failures(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for s in self.0.iter().filter(|s| s.name == "gsai_failures_total") {
            *m.entry(s.labels["kind"].clone()).or_default() += s.value;
        }
        m.retain(|_, v| *v > 0.0);
        m
    }

    /// What holds in every scrape, whatever the moment: E2E and TTFT counted once per success,
    /// response time once per finished request, buckets cumulative up to `+Inf` = `_count`.
    fn check_consistent(&self) {
        if !self.0.iter().any(|s| s.name == "gsai_requests_total") {
            // Before the first test, or a master before its workers' first report: no rows.
            return;
        }
        let requests = self.sum("gsai_requests_total", &[]);
        let failures = self.sum("gsai_failures_total", &[]);
        for name in [
            "gsai_e2e_request_latency_seconds",
            "gsai_time_to_first_token_seconds",
        ] {
            assert_eq!(
                self.sum(&format!("{name}_count"), &[]),
                requests - failures,
                "{name}"
            );
        }
        assert_eq!(self.sum("gsai_response_time_seconds_count", &[]), requests);
        let families: std::collections::BTreeSet<&str> = self
            .0
            .iter()
            .filter_map(|s| s.name.strip_suffix("_bucket"))
            .collect();
        assert!(families.len() >= 8, "{families:?}");
        for family in families {
            let mut buckets: Vec<(f64, f64)> = self
                .0
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
                .map(|s| (s.labels["le"].parse::<f64>().expect("le"), s.value))
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}: {buckets:?}"
            );
            let last = buckets.last().expect("buckets");
            assert_eq!(last.0, f64::INFINITY, "{family}");
            assert_eq!(
                last.1,
                self.sum(&format!("{family}_count"), &[]),
                "{family}"
            );
        }
    }
}

/// `GET /metrics` at `addr` with `headers`: the text, checked to parse and to hold no token.
async fn scrape(addr: SocketAddr, headers: &[(&str, &str)]) -> Option<Scrape> {
    let r = try_send(addr, Method::GET, "/metrics", headers, None)
        .await
        .ok()?;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    assert!(!r.body.contains(TOKEN), "the token never shows in /metrics");
    let (samples, skipped) = parse(r.body.as_bytes()).expect("Prometheus text");
    assert_eq!(skipped, None, "every family parses: {}", r.body);
    Some(Scrape(samples))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_run_serves_live_metrics_on_its_port() {
    let mock = start_mock_failing(0.3).await;
    let dir = tempfile::tempdir().unwrap();
    let host = mock.base_url();
    let json = dir.path().join("r.json").display().to_string();
    let args = headless_args(
        &host,
        &[
            "--token",
            TOKEN,
            "-t",
            "30s",
            "--metrics-port",
            "0",
            "--json",
            &json,
        ],
    );
    let mut child = spawn(dir.path(), &args);
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let addr = addresses(&lines, &["metrics at http://"], &mut seen)[0];
    // Another Host name (a DNS-rebinding page) gets nothing from a loopback port.
    let rebound = send(
        addr,
        Method::GET,
        "/metrics",
        &[("host", "evil.example")],
        None,
    )
    .await;
    assert_eq!(rebound.status, 403);
    // Poll until the run has both successes and failures of the mock's kind.
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = loop {
        assert!(Instant::now() < deadline, "no failures in time: {seen:?}");
        if let Some(s) = scrape(addr, &[]).await {
            s.check_consistent();
            let requests = s.sum("gsai_requests_total", &[]);
            if s.sum("gsai_failures_total", &[("kind", "http_status")]) >= 1.0 && requests >= 10.0 {
                assert_eq!(s.sum("gsai_test_running", &[]), 1.0);
                assert_eq!(s.sum("gsai_users", &[]), 2.0);
                assert_eq!(s.failures().keys().collect::<Vec<_>>(), ["http_status"]);
                break s;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let code = tokio::task::spawn_blocking(move || wait_exit(child, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(code, 1, "requests failed: exit 1");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let final_requests = doc["summary"]["requests"].as_f64().unwrap();
    assert!(final_requests >= last.sum("gsai_requests_total", &[]));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_and_its_metrics_port_end_on_the_json_figures() {
    let mock = start_mock_failing(0.3).await;
    let dir = tempfile::tempdir().unwrap();
    let host = mock.base_url();
    let json = dir.path().join("r.json").display().to_string();
    let args = [
        "--web-port",
        "0",
        "--metrics-port",
        "0",
        "--web-login",
        "admin:s3cret",
        "--autostart",
        "--autoquit",
        "5",
        "--host",
        &host,
        "--model",
        "m",
        "--token",
        TOKEN,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "2s",
        "--wait",
        "constant(0.01)",
        "--json",
        &json,
    ];
    let mut child = spawn(dir.path(), &args);
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let found = addresses(
        &lines,
        &["web UI at http://", "metrics at http://"],
        &mut seen,
    );
    let (ui, port) = (found[0], found[1]);
    let anonymous = send(ui, Method::GET, "/metrics", &[], None).await;
    assert_eq!(anonymous.status, 401, "the UI's login applies to /metrics");
    // Poll until the test is over: then both endpoints show its last snapshot.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (web, own) = loop {
        assert!(Instant::now() < deadline, "the test did not end: {seen:?}");
        let web = scrape(ui, &[LOGIN])
            .await
            .expect("the UI answers until autoquit");
        web.check_consistent();
        if web.sum("gsai_test_running", &[]) == 0.0 && web.sum("gsai_requests_total", &[]) > 0.0 {
            let own = scrape(port, &[]).await.expect("the metrics port answers");
            break (web, own);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let code = tokio::task::spawn_blocking(move || wait_exit(child, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(code, 1, "requests failed: exit 1");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let summary = &doc["summary"];
    for s in [&web, &own] {
        let n = |name: &str| s.sum(name, &[]) as u64;
        assert_eq!(
            n("gsai_requests_total"),
            summary["requests"].as_u64().unwrap()
        );
        assert_eq!(
            n("gsai_e2e_request_latency_seconds_count"),
            summary["successes"].as_u64().unwrap()
        );
        assert_eq!(
            n("gsai_output_tokens_total"),
            summary["output_tokens"].as_u64().unwrap()
        );
        let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
        for f in doc["failures"].as_array().unwrap() {
            *by_kind
                .entry(f["kind"].as_str().unwrap().to_string())
                .or_default() += f["count"].as_f64().unwrap();
        }
        assert_eq!(s.failures(), by_kind);
        assert!(by_kind.contains_key("http_status"), "{by_kind:?}");
        assert_eq!(n("gsai_users"), 0, "over: no user left");
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn the_web_ui_serves_metrics_before_any_test() {
    let ui = crate::web::start_ui(crate::web::defaults(None), None).await;
    let s = scrape(ui.addr, &[]).await.expect("the UI answers");
    assert_eq!(s.sum("gsai_test_running", &[]), 0.0);
    assert_eq!(s.sum("gsai_build_info", &[]), 1.0);
    assert!(s.0.iter().all(|x| !x.name.starts_with("gsai_requests")));
}

/// The address in a "metrics at http://ADDR/metrics" line of `p`.
async fn metrics_address(p: &crate::cluster::Proc) -> SocketAddr {
    let line = p
        .wait_line("metrics at http://", Duration::from_secs(20))
        .await;
    let rest = line.split("metrics at http://").nth(1).unwrap_or_default();
    let addr = rest.split('/').next().unwrap_or_default();
    addr.parse().unwrap_or_else(|_| panic!("address in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_and_its_workers_serve_their_own_metrics() {
    use crate::cluster::{clean, master, Proc};
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "--expect-workers",
        "2",
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "30s",
        "--metrics-port",
        "0",
    ];
    let (mut m, port) = master(dir.path(), &mock, &extra).await;
    let master_metrics = metrics_address(&m).await;
    let port = port.to_string();
    let workers: Vec<Proc> = (0..2)
        .map(|_| {
            let mut c = clean(
                dir.path(),
                &[
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    &port,
                    "--metrics-port",
                    "0",
                ],
            );
            c.env("GSA_AUTH_TOKEN", TOKEN)
                .env("GSAI_HOST", mock.base_url());
            Proc::spawn(c)
        })
        .collect();
    let mut worker_metrics = Vec::new();
    for w in &workers {
        worker_metrics.push(metrics_address(w).await);
    }
    // Poll the master until the workers' figures reach it, merged.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no requests at the master:\n{}",
            m.text()
        );
        let s = scrape(master_metrics, &[])
            .await
            .expect("the master answers");
        s.check_consistent();
        if s.sum("gsai_requests_total", &[]) >= 20.0 && s.sum("gsai_users", &[]) == 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for addr in worker_metrics {
        let s = scrape(addr, &[]).await.expect("a worker answers");
        s.check_consistent();
        assert_eq!(s.sum("gsai_test_running", &[]), 1.0);
        assert_eq!(s.sum("gsai_users", &[]), 2.0, "each worker runs its share");
        assert!(s.sum("gsai_requests_total", &[]) > 0.0);
    }
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(m.child.id() as libc::pid_t, libc::SIGINT);
    }
    assert_eq!(
        m.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        m.text()
    );
    let all = m.text() + &workers.iter().map(Proc::text).collect::<String>();
    assert!(!all.contains(TOKEN), "the token never shows");
    mock.shutdown().await;
}
