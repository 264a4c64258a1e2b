//! The master with its web UI (the binary, `--master` without `--headless`) and two worker
//! processes against the in-process mock: refused without workers, two tests one after the other
//! with the same workers, the workers listed live, every request counted, and Ctrl-C writing the
//! last test's `--json` and releasing the workers.

use crate::cluster::{clean, worker, Proc};
use crate::harness::*;
use crate::http::{get, post_form};
use gsai_load::mock::MockServer;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A master with its web UI on free loopback ports.
pub(crate) struct WebMaster {
    pub proc: Proc,
    /// The web UI.
    pub web: SocketAddr,
    /// Where workers connect.
    pub port: u16,
}

fn address_after(line: &str, marker: &str) -> SocketAddr {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"))
}

/// Starts `gsai-load --master` with the web UI, the mock as its default host, `extra` flags.
pub(crate) async fn start_web_master(dir: &Path, mock: &MockServer, extra: &[&str]) -> WebMaster {
    let url = mock.base_url();
    let mut args = vec![
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        "0",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        "0",
        "-H",
        &url,
        "--model",
        "test-model",
        "--wait",
        "constant(0.05)",
        "--stop-timeout",
        "3s",
    ];
    args.extend_from_slice(extra);
    // The master has a token here only to show that it never shows or travels.
    let mut cmd = clean(dir, &args);
    cmd.env("GSA_AUTH_TOKEN", TOKEN);
    let proc = Proc::spawn(cmd);
    let listening = proc
        .wait_line("master listening on", Duration::from_secs(20))
        .await;
    let port = address_after(&listening, "master listening on ").port();
    let ui = proc.wait_line("web UI at", Duration::from_secs(20)).await;
    let web = address_after(&ui, "web UI at http://");
    WebMaster { proc, web, port }
}

/// Polls `/stats/requests` until `ok` holds; returns that answer.
pub(crate) async fn poll_stats(
    web: SocketAddr,
    what: &str,
    limit: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = get(web, "/stats/requests").await.json();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn aggregated_requests(s: &Value) -> u64 {
    s["stats"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Aggregated"))
        .and_then(|r| r["num_requests"].as_u64())
        .unwrap_or(0)
}

fn workers(s: &Value) -> &[Value] {
    s["workers"].as_array().map_or(&[], Vec::as_slice)
}

/// Both workers listed, connected, each running users.
pub(crate) fn both_running(s: &Value) -> bool {
    workers(s).len() == 2
        && workers(s)
            .iter()
            .all(|w| w["user_count"].as_u64() > Some(0) && w["missing"] == false)
}

async fn run_one_test(m: &WebMaster, run_id: u64, users: u64) -> u64 {
    let r = post_form(
        m.web,
        "/swarm",
        &format!("user_count={users}&spawn_rate=100"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["run_id"], run_id, "{}", r.body);
    let s = poll_stats(
        m.web,
        "requests over both workers",
        Duration::from_secs(30),
        |s| s["run_id"] == run_id && aggregated_requests(s) > 0 && both_running(s),
    )
    .await;
    assert_eq!(s["worker_count"], 2, "{s}");
    for w in workers(&s) {
        for field in ["id", "state", "user_count", "cpu_usage", "memory_usage"] {
            assert!(!w[field].is_null(), "Locust's field {field} in {w}");
        }
    }
    let r = get(m.web, "/stop").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = poll_stats(m.web, "the test stopped", Duration::from_secs(30), |s| {
        s["state"] == "stopped" && s["run_id"] == run_id
    })
    .await;
    // Stopped, the workers stay: back to stopped/ready, not missing, not quit.
    assert_eq!(s["worker_count"], 2, "{s}");
    aggregated_requests(&s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_master_runs_two_tests_over_the_same_workers() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut m = start_web_master(dir.path(), &mock, &["--json", "out.json"]).await;

    let config = get(m.web, "/config").await.json();
    assert_eq!(config["mode"], "master", "{config}");
    assert_eq!(config["master_port"], m.port, "{config}");
    // No worker yet: starting is refused with a message that says what to do.
    let r = post_form(m.web, "/swarm", "user_count=2&spawn_rate=10").await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("no worker is connected"), "{}", r.body);

    let mut workers: Vec<Proc> = (0..2)
        .map(|_| worker(dir.path(), m.port, &mock.base_url()))
        .collect();
    poll_stats(m.web, "two workers", Duration::from_secs(30), |s| {
        s["worker_count"] == 2 && s["state"] == "ready"
    })
    .await;

    let first = run_one_test(&m, 1, 4).await;
    assert_eq!(
        first,
        mock.counters().requests,
        "test 1 counted every request the mock served"
    );
    // Straight away (the workers have not even said ready again): the same workers run test 2.
    let second = run_one_test(&m, 2, 6).await;
    assert!(second > 0);
    assert_eq!(
        first + second,
        mock.counters().requests,
        "test 2 counted its own requests, none of test 1's"
    );

    // Ctrl-C: the last test's result is written, and the workers are told to quit.
    // SAFETY: sends SIGINT to the child we spawned.
    assert_eq!(
        unsafe { libc::kill(m.proc.child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    assert_eq!(
        m.proc.wait_exit(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        m.proc.text()
    );
    for w in &mut workers {
        assert_eq!(
            w.wait_exit(Duration::from_secs(20)).await,
            Some(0),
            "{}",
            w.text()
        );
    }
    let text = std::fs::read_to_string(dir.path().join("out.json")).expect("--json written");
    assert!(!text.contains(TOKEN), "no token in the result");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["summary"]["requests"].as_u64(),
        Some(second),
        "the last test"
    );
    assert_eq!(v["plan"]["users"], 6);
    let all = m.proc.text() + &workers.iter().map(Proc::text).collect::<String>();
    assert!(!all.contains(TOKEN), "the token never shows");
    mock.shutdown().await;
}

/// `--autostart` waits for `--expect-workers`, then runs the flags' test; `--autoquit` exits
/// with its summary and releases the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_master_autostarts_once_its_workers_are_there() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "--autostart",
        "--autoquit",
        "0",
        "--expect-workers",
        "2",
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "3s",
        "--json",
        "auto.json",
    ];
    let mut m = start_web_master(dir.path(), &mock, &extra).await;
    m.proc
        .wait_line("waiting for 2 worker(s)", Duration::from_secs(10))
        .await;
    let s = get(m.web, "/stats/requests").await.json();
    assert_eq!(
        s["state"], "ready",
        "nothing starts before the workers: {s}"
    );
    let mut workers: Vec<Proc> = (0..2)
        .map(|_| worker(dir.path(), m.port, &mock.base_url()))
        .collect();
    assert_eq!(
        m.proc.wait_exit(Duration::from_secs(60)).await,
        Some(0),
        "{}",
        m.proc.text()
    );
    for w in &mut workers {
        assert_eq!(
            w.wait_exit(Duration::from_secs(20)).await,
            Some(0),
            "{}",
            w.text()
        );
    }
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("auto.json")).expect("--json written"),
    )
    .unwrap();
    assert_eq!(v["stop_reason"], "run_time");
    assert_eq!(
        v["summary"]["requests"].as_u64(),
        Some(mock.counters().requests)
    );
    mock.shutdown().await;
}

/// The master session's lifecycle seen from a raw DEALER "worker": refused without workers, one
/// test at a time, a stopped worker takes part in the next test without registering again, a
/// finished test's handle cannot touch the next one, and shutdown says quit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_node_runs_tests_one_after_another() {
    use gsai_load::cluster::master::{MasterError, MasterNode, NodeConfig, StartWhen};
    use gsai_load::cluster::protocol::{Heartbeat, Message, ToMaster, ToWorker};
    use gsai_load::cluster::transport::Dealer;

    /// The next spawn (its user count), stop or quit; heartbeats the master meanwhile.
    async fn next_order(d: &mut Dealer) -> ToWorker {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let hb = ToMaster::Heartbeat(Heartbeat {
                state: "running".into(),
                cpu_percent: 1.0,
                memory_bytes: Some(1 << 20),
                health: None,
            });
            // After a quit the master may have closed the connection: the order is still queued.
            let _ = d.send(hb.to_message("w").encode());
            assert!(Instant::now() < deadline, "no order from the master");
            let Ok(got) = tokio::time::timeout(Duration::from_millis(300), d.recv()).await else {
                continue;
            };
            let m = Message::decode(&got.expect("connection open")).unwrap();
            let order = ToWorker::parse(&m).unwrap();
            if matches!(order, ToWorker::Spawn(_) | ToWorker::Stop | ToWorker::Quit) {
                return order;
            }
        }
    }
    fn users(o: &ToWorker) -> u64 {
        match o {
            ToWorker::Spawn(s) => s.user_count(),
            other => panic!("expected a spawn, got {other:?}"),
        }
    }

    let node = MasterNode::bind(NodeConfig {
        bind_host: "127.0.0.1".into(),
        bind_port: 0,
        expect_workers: 1,
    })
    .await
    .unwrap();
    let mut plan = gsai_load::config::Plan::new("http://127.0.0.1:9", "m");
    plan.users = 2;
    plan.spawn_rate = 100.0;
    plan.stop_timeout = Duration::from_secs(1);
    assert!(matches!(
        node.start_test(plan.clone(), StartWhen::Now),
        Err(MasterError::NoWorkers { .. })
    ));

    let mut w = Dealer::connect("127.0.0.1", node.local_addr().port(), b"w")
        .await
        .unwrap();
    w.send(
        ToMaster::ClientReady(rmpv::Value::from(-1))
            .to_message("w")
            .encode(),
    )
    .unwrap();
    node.wait_for_workers(1, Some(Duration::from_secs(10)))
        .await
        .unwrap();

    let first = node.start_test(plan.clone(), StartWhen::Now).unwrap();
    assert_eq!(users(&next_order(&mut w).await), 2);
    let busy = node.start_test(plan.clone(), StartWhen::Now).unwrap();
    assert!(matches!(busy.wait().await, Err(MasterError::Busy)));
    let stale = first.stopper();
    first.stop();
    assert_eq!(next_order(&mut w).await, ToWorker::Stop);
    w.send(ToMaster::ClientStopped.to_message("w").encode())
        .unwrap();
    let r = first.wait().await.expect("a result");
    assert_eq!(r.stop_reason, gsai_load::engine::StopReason::Stopped);

    // The worker said stopped and nothing since: it runs the next test all the same.
    let second = node.start_test(plan, StartWhen::Now).unwrap();
    assert_eq!(users(&next_order(&mut w).await), 2);
    stale.stop();
    second.set_users(3, 100.0);
    assert_eq!(
        users(&next_order(&mut w).await),
        3,
        "the old handle did not stop the new test"
    );
    assert_eq!(node.workers().borrow().len(), 1);
    second.stop();
    assert_eq!(next_order(&mut w).await, ToWorker::Stop);
    w.send(ToMaster::ClientStopped.to_message("w").encode())
        .unwrap();
    second.wait().await.expect("a result");

    node.shutdown().await;
    assert_eq!(next_order(&mut w).await, ToWorker::Quit);
}
