//! Distributed mode with the real binary on loopback: a master and three worker processes
//! against the in-process mock; a worker killed mid-test; a worker under a stock Locust master.

use crate::harness::*;
use gsai_load::mock::MockServer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_gsai-load");

/// A child process whose stderr (and stdout) lines are collected as they come.
pub(crate) struct Proc {
    pub(crate) child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("process starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self { child, lines }
    }

    pub(crate) fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a line contains `needle`; returns that line.
    pub(crate) async fn wait_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {limit:?}:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the exit status, killing the process at the deadline.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("process still running after {limit:?}:\n{}", self.text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Never leave a process behind, whatever the test's outcome.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn clean(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(args)
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL");
    c
}

/// Starts a master on a free loopback port; returns it and the port.
pub(crate) async fn master(dir: &Path, mock: &MockServer, extra: &[&str]) -> (Proc, u16) {
    master_on(dir, mock, 0, extra).await
}

/// Starts a master on `port` (0: a free one); returns it and the port.
async fn master_on(dir: &Path, mock: &MockServer, port: u16, extra: &[&str]) -> (Proc, u16) {
    let url = mock.base_url();
    let port = port.to_string();
    let mut args = vec![
        "--master",
        "--headless",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        &port,
        "-H",
        &url,
        "--model",
        "test-model",
        "--wait",
        "constant(0.05)",
        "--print-every",
        "1",
        "--json",
        "out.json",
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn(clean(dir, &args));
    let line = p
        .wait_line("master listening on", Duration::from_secs(20))
        .await;
    let port = line
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (p, port)
}

/// A worker whose own GSAI_HOST is `host` (its token goes to that origin only) and whose own
/// token is TOKEN.
pub(crate) fn worker(dir: &Path, port: u16, host: &str) -> Proc {
    worker_with(dir, port, host, &[])
}

/// As [`worker`], with `extra` flags of the worker's own.
pub(crate) fn worker_with(dir: &Path, port: u16, host: &str, extra: &[&str]) -> Proc {
    let port = port.to_string();
    let mut args = vec![
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &port,
    ];
    args.extend_from_slice(extra);
    let mut c = clean(dir, &args);
    // The worker's own token, for its own host: the master never sends one.
    c.env("GSA_AUTH_TOKEN", TOKEN).env("GSAI_HOST", host);
    Proc::spawn(c)
}

pub(crate) fn result(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("out.json")).expect("master wrote --json");
    serde_json::from_str(&text).expect("valid JSON")
}

async fn wait_requests(mock: &MockServer, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while mock.counters().requests < n {
        assert!(
            Instant::now() < deadline,
            "the mock saw fewer than {n} requests in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_and_three_workers_count_exactly_what_the_mock_served() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut m, port) = master(
        dir.path(),
        &mock,
        &[
            "--expect-workers",
            "3",
            "-u",
            "6",
            "-r",
            "100",
            "-t",
            "8s",
            "--stop-timeout",
            "10s",
        ],
    )
    .await;
    let mut workers: Vec<Proc> = (0..3)
        .map(|_| worker(dir.path(), port, &mock.base_url()))
        .collect();
    m.wait_line("3 workers ready", Duration::from_secs(30))
        .await;
    wait_requests(&mock, 30, Duration::from_secs(30)).await;
    // A worker that leaves on SIGTERM (docker stop) ships everything first and says quit.
    let pid = workers[2].child.id() as libc::pid_t;
    // SAFETY: kill only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(
        workers[2].wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        workers[2].text()
    );
    m.wait_line("quit", Duration::from_secs(10)).await;
    assert_eq!(
        m.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m.text()
    );
    // Shown when a later assertion fails.
    eprintln!("master output:\n{}", m.text());
    for w in &mut workers {
        assert_eq!(
            w.wait_exit(Duration::from_secs(20)).await,
            Some(0),
            "{}",
            w.text()
        );
    }
    let v = result(dir.path());
    let c = mock.counters();
    let requests = v["summary"]["requests"].as_u64().unwrap();
    assert!(requests > 30, "{requests} requests");
    assert_eq!(
        requests, c.requests,
        "the master counted every request the mock served"
    );
    assert_eq!(v["summary"]["failures"], 0);
    assert_eq!(v["summary"]["cancelled"], 0);
    assert_eq!(
        v["metrics"]["ttft_ms"]["count"].as_u64(),
        Some(c.ok),
        "LLM metrics merged"
    );
    assert_eq!(v["summary"]["output_tokens"].as_u64(), Some(5 * c.ok));
    assert_eq!(
        v["plan"]["token"],
        serde_json::Value::Null,
        "the master had no token"
    );
    let all = m.text() + &workers.iter().map(Proc::text).collect::<String>();
    assert!(!all.contains(TOKEN), "the token never shows");
    mock.shutdown().await;
}

/// The master's dispatcher seen from raw DEALER "workers": paced steps of max(1, floor(rate))
/// users, an even spread, a rebalance when a worker joins or disconnects, and no token in the
/// plan it ships.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_paces_spawning_and_rebalances() {
    use gsai_load::cluster::master::{self, MasterConfig};
    use gsai_load::cluster::protocol::{Message, ToMaster, ToWorker};
    use gsai_load::cluster::transport::Dealer;

    let mut plan = gsai_load::config::Plan::new("http://127.0.0.1:9", "m");
    plan.token = Some(gsai_load::config::Secret::new(TOKEN));
    plan.users = 4;
    plan.spawn_rate = 2.0;
    plan.run_time = Some(Duration::from_secs(30));
    plan.stop_timeout = Duration::from_secs(1);
    let handle = master::start(MasterConfig {
        bind_host: "127.0.0.1".into(),
        bind_port: 0,
        plan,
        expect_workers: 2,
        expect_workers_max_wait: Some(Duration::from_secs(20)),
    })
    .await
    .unwrap();
    let mut handle = handle;
    // The master's log, shown if the test fails.
    if let Some(mut notes) = handle.take_notes() {
        tokio::spawn(async move {
            while let Some(n) = notes.recv().await {
                eprintln!("master: {n}");
            }
        });
    }
    let port = handle.local_addr().port();
    async fn join(port: u16, id: &str) -> Dealer {
        let d = Dealer::connect("127.0.0.1", port, id.as_bytes())
            .await
            .unwrap();
        d.send(
            ToMaster::ClientReady(rmpv::Value::from(-1))
                .to_message(id)
                .encode(),
        )
        .unwrap();
        d
    }
    /// The next spawn's user count (skipping everything else), with its arrival time. Heartbeats
    /// the master while it waits, for this worker and the `others` still connected, as real
    /// workers do, so a slow machine cannot make one of them look missing.
    async fn next_spawn(d: &mut Dealer, id: &str, others: &[(&Dealer, &str)]) -> (u64, Instant) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let beat = |d: &Dealer, id: &str| {
            let heartbeat = ToMaster::Heartbeat(gsai_load::cluster::protocol::Heartbeat {
                state: "running".into(),
                cpu_percent: 1.0,
                memory_bytes: None,
                health: None,
            });
            // A worker the master has dropped may be closed: its beat does not matter then.
            let _ = d.send(heartbeat.to_message(id).encode());
        };
        loop {
            beat(d, id);
            for (o, oid) in others {
                beat(o, oid);
            }
            assert!(Instant::now() < deadline, "a message for {id} in time");
            let Ok(got) = tokio::time::timeout(Duration::from_millis(300), d.recv()).await else {
                continue;
            };
            let bytes = got.unwrap_or_else(|| panic!("connection of {id} open"));
            let m = Message::decode(&bytes).unwrap();
            if let ToWorker::Spawn(s) = ToWorker::parse(&m).unwrap() {
                let plan = s
                    .gsai_plan
                    .as_deref()
                    .expect("a gsai master ships its plan");
                assert!(!plan.contains(TOKEN), "the token never crosses the wire");
                return (s.user_count(), Instant::now());
            }
        }
    }
    let mut a = join(port, "a").await;
    let mut b = join(port, "b").await;
    // Rate 2: steps of 2 users, one second apart, spread evenly.
    let (a1, t1) = next_spawn(&mut a, "a", &[(&b, "b")]).await;
    let (b1, _) = next_spawn(&mut b, "b", &[(&a, "a")]).await;
    assert_eq!((a1, b1), (1, 1));
    let (a2, t2) = next_spawn(&mut a, "a", &[(&b, "b")]).await;
    let (b2, _) = next_spawn(&mut b, "b", &[(&a, "a")]).await;
    assert_eq!((a2, b2), (2, 2));
    let gap = t2 - t1;
    assert!(gap >= Duration::from_millis(800), "paced: {gap:?}");
    // A third worker joins: 4 users over 3 workers (2, 1, 1); only changed shares are sent.
    let mut c = join(port, "c").await;
    assert_eq!(next_spawn(&mut b, "b", &[(&a, "a"), (&c, "c")]).await.0, 1);
    assert_eq!(next_spawn(&mut c, "c", &[(&a, "a"), (&b, "b")]).await.0, 1);
    // The second one disconnects: its share moves to the others at once (2, 2).
    drop(b);
    assert_eq!(next_spawn(&mut c, "c", &[(&a, "a")]).await.0, 2);
    let views = handle.workers();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !views.borrow().iter().any(|w| w.id == "b" && w.missing) {
        assert!(
            Instant::now() < deadline,
            "b shown missing: {:?}",
            views.borrow()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.stop();
    drop((a, c));
    let r = tokio::time::timeout(Duration::from_secs(20), handle.wait())
        .await
        .expect("the master ends")
        .expect("a result");
    assert_eq!(r.stop_reason, gsai_load::engine::StopReason::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_missing_its_users_move_and_its_counts_stay() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut m, port) = master(
        dir.path(),
        &mock,
        &[
            "--expect-workers",
            "3",
            "-u",
            "6",
            "-r",
            "100",
            "-t",
            "10s",
            "--stop-timeout",
            "10s",
        ],
    )
    .await;
    let mut workers: Vec<Proc> = (0..3)
        .map(|_| worker(dir.path(), port, &mock.base_url()))
        .collect();
    m.wait_line("3 workers ready", Duration::from_secs(30))
        .await;
    wait_requests(&mock, 60, Duration::from_secs(30)).await;
    // Let at least one report from the victim arrive, then SIGKILL it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    workers[0].child.kill().expect("kill");
    let _ = workers[0].child.wait();
    let at_kill = mock.counters().requests;
    m.wait_line("missing", Duration::from_secs(15)).await;
    assert_eq!(
        m.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m.text()
    );
    for w in &mut workers[1..] {
        assert_eq!(
            w.wait_exit(Duration::from_secs(20)).await,
            Some(0),
            "{}",
            w.text()
        );
    }
    let v = result(dir.path());
    assert_eq!(v["stop_reason"], "run_time", "the test went on to its end");
    let total = v["summary"]["requests"].as_u64().unwrap();
    let served = mock.counters().requests;
    assert!(
        total > at_kill,
        "requests went on after the kill: {total} vs {at_kill}"
    );
    // What the victim measured after its last report died with it; nothing else is lost,
    // and nothing is counted twice.
    assert!(total <= served, "{total} counted, {served} served");
    assert!(served - total < 150, "{total} counted, {served} served");
    let timeline = v["timeline"].as_array().unwrap();
    let totals: Vec<u64> = timeline
        .iter()
        .map(|p| p["total_requests"].as_u64().unwrap())
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "counts never drop: {totals:?}"
    );
    let users: Vec<u64> = timeline
        .iter()
        .map(|p| p["users"].as_u64().unwrap())
        .collect();
    assert_eq!(
        users.iter().rev().nth(1).copied(),
        Some(6),
        "the two survivors run all 6 users: {users:?}"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_master_stops_and_joins_the_next_one() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut m1, port) = master(dir.path(), &mock, &["-u", "2", "-r", "100", "-t", "60s"]).await;
    let mut w = worker(dir.path(), port, &mock.base_url());
    wait_requests(&mock, 20, Duration::from_secs(30)).await;
    m1.child.kill().expect("kill the master");
    let _ = m1.child.wait();
    w.wait_line("lost the master", Duration::from_secs(10))
        .await;
    // Its users stop: the mock sees no new request once in-flight ones are done.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mock.counters().requests;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        mock.counters().requests,
        before,
        "users stopped without a master"
    );
    // A new master on the same port: the worker registers again (it retries every 5 s).
    let dir2 = tempfile::tempdir().unwrap();
    let (mut m2, _) = master_on(
        dir2.path(),
        &mock,
        port,
        &["-u", "2", "-r", "100", "-t", "3s"],
    )
    .await;
    assert_eq!(
        m2.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m2.text()
    );
    assert_eq!(
        w.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        w.text()
    );
    let v = result(dir2.path());
    let counted = v["summary"]["requests"].as_u64().unwrap();
    assert!(counted > 0, "{}", m2.text());
    assert_eq!(
        counted,
        mock.counters().requests - before,
        "the new master counts its own run, and none of the old one"
    );
    mock.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A gsai-load worker under a stock Locust master: its requests are in Locust's CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joins_a_stock_locust_master() {
    let Some(locust) = std::env::var_os("GSAI_LOCUST_BIN") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("GSAI_LOCUST_BIN is not set: .ci/run must install Locust in a venv and point GSAI_LOCUST_BIN at its `locust`");
        }
        eprintln!("skipped: set GSAI_LOCUST_BIN to a Locust 2.x `locust` executable to run the interop test");
        return;
    };
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let url = mock.base_url();
    let locustfile = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/locust/gsai_dummy.py");
    let mut cmd = Command::new(locust);
    cmd.current_dir(dir.path()).args([
        "--master",
        "--headless",
        "-f",
        locustfile,
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        &port,
        "--expect-workers",
        "1",
        "-u",
        "3",
        "-r",
        "3",
        "-t",
        "6s",
        "--csv",
        "out",
        "-H",
        &url,
    ]);
    let mut m = Proc::spawn(cmd);
    let mut c = clean(
        dir.path(),
        &[
            "--worker",
            "--master-port",
            &port,
            "--model",
            "test-model",
            "--wait",
            "constant(0.05)",
        ],
    );
    c.env("GSA_AUTH_TOKEN", TOKEN).env("GSAI_HOST", &url);
    let mut w = Proc::spawn(c);
    assert_eq!(
        m.wait_exit(Duration::from_secs(90)).await,
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
    let csv =
        std::fs::read_to_string(dir.path().join("out_stats.csv")).expect("Locust wrote its CSV");
    let row = csv
        .lines()
        .find(|l| l.starts_with("POST,/api/chat/completions,"))
        .unwrap_or_else(|| panic!("no request row in:\n{csv}"));
    let count: u64 = row.split(',').nth(2).unwrap().parse().unwrap();
    let served = mock.counters().requests;
    assert!(count > 10, "{row}");
    assert!(count <= served, "{count} in Locust's CSV, {served} served");
    assert!(csv.lines().any(|l| l.starts_with(",Aggregated,")), "{csv}");
    assert!(!m.text().contains("Traceback"), "{}", m.text());
    assert!(!w.text().contains(TOKEN));
    mock.shutdown().await;
}

/// The container files pass exactly these arguments; the binary must accept them, and the
/// master must serve its web UI where the published port reaches it.
#[test]
fn compose_and_kubernetes_arguments_parse() {
    use clap::Parser;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = 0;
    for file in [
        "docker-compose.yml",
        "deploy/k8s/master.yaml",
        "deploy/k8s/worker.yaml",
    ] {
        let text =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for line in text.lines() {
            let line = line.trim();
            let Some(list) = line
                .strip_prefix("command: ")
                .or_else(|| line.strip_prefix("args: "))
            else {
                continue;
            };
            let args: Vec<String> = serde_json::from_str(list).unwrap_or_else(|e| {
                panic!("{file}: {list} is not a flow list of quoted strings: {e}")
            });
            let argv = std::iter::once("gsai-load".to_string()).chain(args.iter().cloned());
            let cli = gsai_load::cli::Cli::try_parse_from(argv)
                .unwrap_or_else(|e| panic!("{file}: {args:?} refused: {e}"));
            assert!(cli.cluster.master || cli.cluster.worker, "{file}: {args:?}");
            if cli.cluster.master {
                // As the seed's Locust master: the web UI on 0.0.0.0:8089, reachable from the host.
                assert!(!cli.run.headless, "{file}: the master serves the web UI");
                assert_eq!(
                    (cli.run.web.web_host.as_str(), cli.run.web.web_port),
                    ("0.0.0.0", 8089),
                    "{file}"
                );
            }
            found += 1;
        }
    }
    assert_eq!(found, 4, "master and worker in compose and in Kubernetes");
}
