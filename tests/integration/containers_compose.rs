//! The shipped `docker-compose.yml` run for real under podman-compose, with the scratch image
//! (built from the static binary, no pulls) and `deploy/compose.test.yml`, which adds the
//! built-in mock as the service under test: `--scale worker=4`, a test started through
//! `POST /swarm` counted exactly, `stop master` with minute-long streams in flight (the JSON
//! within the grace period, the workers' exit 0), and `--headless` and `mock` obeying SIGTERM
//! as PID 1.

use crate::containers::{ok, root, Tools, PODMAN};
use crate::harness::*;
use crate::http::{try_send, Resp};
use hyper::Method;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A compose project in a temporary directory; taken down (its logs printed on failure) on drop.
struct Project {
    tools: Tools,
    name: String,
    image: String,
    dir: tempfile::TempDir,
    ports: [(&'static str, u16); 3],
    extra: Vec<String>,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.tools.compose);
        c.current_dir(self.dir.path())
            .env("GSAI_IMAGE", &self.image)
            .args([
                "-p",
                &self.name,
                "-f",
                "docker-compose.yml",
                "-f",
                "compose.test.yml",
            ])
            .args(args);
        for (var, port) in self.ports {
            c.env(var, port.to_string());
        }
        c
    }

    fn port(&self, var: &str) -> SocketAddr {
        let (_, port) = self.ports.iter().find(|(v, _)| *v == var).unwrap();
        SocketAddr::from(([127, 0, 0, 1], *port))
    }

    /// The containers of `service`, by name.
    async fn containers(&self, service: &str) -> Vec<String> {
        let out = ok(self.tools.podman(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ]))
        .await;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `(status, exit code)` of a container.
    async fn state(&self, name: &str) -> (String, i64) {
        let out = ok(self.tools.podman(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            name,
        ]))
        .await;
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        let status = it.next().unwrap_or_default().to_string();
        (status, it.next().and_then(|c| c.parse().ok()).unwrap_or(-1))
    }

    /// Waits until `name` exited; its exit code.
    async fn exit_code(&self, name: &str, limit: Duration) -> i64 {
        let deadline = Instant::now() + limit;
        loop {
            let (status, code) = self.state(name).await;
            if status == "exited" || status == "stopped" {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still {status} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `podman stop -t 30 name`: how long it took, and the exit code.
    async fn stop(&self, name: &str) -> (Duration, i64) {
        let started = Instant::now();
        ok(self.tools.podman(&["stop", "-t", "30", name])).await;
        let took = started.elapsed();
        (took, self.exit_code(name, Duration::from_secs(5)).await)
    }

    /// Copies `path` out of container `name` (running or not) and parses it as JSON.
    async fn json_from(&self, name: &str, path: &str) -> Value {
        let local = self.dir.path().join(format!("{name}.json"));
        let from = format!("{name}:{path}");
        ok(self.tools.podman(&["cp", &from, local.to_str().unwrap()])).await;
        serde_json::from_str(&std::fs::read_to_string(&local).unwrap()).unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(out) = self.compose(&["logs"]).output() {
                eprintln!("compose logs:\n{}", text(&out));
            }
        }
        for name in &self.extra {
            let _ = self.tools.podman(&["rm", "-f", "-t", "0", name]).output();
        }
        // `down` knows only the file's one worker, not the scaled ones: remove every container
        // of the project first (with the workers that depend on the master), then the rest.
        let label = format!("label=com.docker.compose.project={}", self.name);
        if let Ok(out) = self
            .tools
            .podman(&["ps", "-aq", "--filter", &label])
            .output()
        {
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut rm = self.tools.podman(&["rm", "-f", "-t", "0", "--depend"]);
            rm.args(ids.split_whitespace());
            let _ = rm.output();
        }
        let _ = self.compose(&["down", "-t", "0"]).output();
        let _ = self.tools.podman(&["rmi", &self.image]).output();
    }
}

/// A port free on loopback now (podman publishes on it just after).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `GET path` at `addr` until `done` holds for its JSON; returns that JSON.
async fn poll(
    addr: SocketAddr,
    path: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let last = match try_send(addr, Method::GET, path, &[], None).await {
            Ok(r) if r.status == 200 => {
                if let Ok(v) = serde_json::from_str::<Value>(&r.body) {
                    if done(&v) {
                        return v;
                    }
                }
                r.body
            }
            Ok(r) => format!("{}: {}", r.status, r.body),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(addr: SocketAddr, path: &str, form: &str) -> Resp {
    let body = Some(("application/x-www-form-urlencoded", form.to_string()));
    try_send(addr, Method::POST, path, &[], body)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn workers(s: &Value) -> &[Value] {
    s["workers"].as_array().map_or(&[], Vec::as_slice)
}

fn aggregated(s: &Value) -> u64 {
    s["stats"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Aggregated"))
        .and_then(|r| r["num_requests"].as_u64())
        .unwrap_or(0)
}

/// Requests counted as failed because their connection never opened.
fn connect_failures(s: &Value) -> u64 {
    s["errors"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|e| {
            e["error"]
                .as_str()
                .is_some_and(|m| m.starts_with("Request failed: connect"))
        })
        .filter_map(|e| e["occurrences"].as_u64())
        .sum()
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_file_runs_a_master_and_four_workers_in_containers() {
    let test = "the_compose_file_runs_a_master_and_four_workers_in_containers";
    let Some(tools) = Tools::find(test) else {
        return;
    };
    let _one_at_a_time = PODMAN.lock().await;
    let started = Instant::now();
    let id = std::process::id();
    let image = format!("localhost/gsai-load:test-compose-{id}");
    tools.build_image(&image).await;

    // The real compose file, beside the test override and a .env for the mock.
    let dir = tempfile::tempdir().unwrap();
    copy(
        &root().join("docker-compose.yml"),
        &dir.path().join("docker-compose.yml"),
    );
    copy(
        &root().join("deploy/compose.test.yml"),
        &dir.path().join("compose.test.yml"),
    );
    std::fs::write(
        dir.path().join(".env"),
        format!("GSAI_HOST=http://mock:8000\nGSA_AUTH_TOKEN={TOKEN}\nMOCK_TOKEN={TOKEN}\nCHAT_MODEL=test-model\n"),
    )
    .unwrap();
    let mut p = Project {
        tools,
        name: format!("gsai-ct-{id}"),
        image,
        dir,
        ports: [
            ("GSAI_WEB_PORT", free_port()),
            ("GSAI_MOCK_PORT", free_port()),
            ("GSAI_SLOWMOCK_PORT", free_port()),
        ],
        extra: Vec::new(),
    };
    ok(p.compose(&["up", "-d", "--no-build", "--scale", "worker=4"])).await;
    let (web, mock, slow) = (
        p.port("GSAI_WEB_PORT"),
        p.port("GSAI_MOCK_PORT"),
        p.port("GSAI_SLOWMOCK_PORT"),
    );

    // 4 workers ready (they found the master by its service name: DNS from a static binary).
    poll(
        web,
        "/stats/requests",
        "4 workers ready",
        Duration::from_secs(90),
        |s| {
            s["worker_count"] == 4
                && s["state"] == "ready"
                && workers(s).iter().all(|w| w["state"] == "ready")
        },
    )
    .await;
    // Both mocks answer (through their published ports) before any test starts.
    for addr in [mock, slow] {
        poll(
            addr,
            "/mock/counters",
            "the mock up",
            Duration::from_secs(60),
            |_| true,
        )
        .await;
    }
    let up = started.elapsed();

    // A test through POST /swarm: 20 users over the 4 workers, against the mock (GSAI_HOST).
    let r = post(web, "/swarm", "user_count=20&spawn_rate=20").await;
    assert_eq!(r.status, 200, "{}", r.body);
    poll(
        web,
        "/stats/requests",
        "5 users on each worker, 40 requests",
        Duration::from_secs(60),
        |s| {
            workers(s).len() == 4
                && workers(s).iter().all(|w| w["user_count"] == 5)
                && aggregated(s) >= 40
        },
    )
    .await;
    let r = post(web, "/stop", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = poll(
        web,
        "/stats/requests",
        "the test stopped",
        Duration::from_secs(40),
        |s| s["state"] == "stopped" && workers(s).iter().all(|w| w["user_count"] == 0),
    )
    .await;
    let served = poll(
        mock,
        "/mock/counters",
        "the mock's counters",
        Duration::from_secs(5),
        |_| true,
    )
    .await;
    let counted = aggregated(&s);
    // Every request that reached the mock is counted once; a request whose connection never
    // opened cannot reach it, and is counted as a failure that says so. (Seen here, only when
    // the whole suite loads the 2 cores: some workers' first connections to the mock time out
    // for 10 s inside podman's network, while the others' go through.)
    let unconnected = connect_failures(&s);
    if unconnected > 0 {
        eprintln!(
            "NOTE {unconnected} request(s) could not connect to the mock: {}",
            s["errors"]
        );
    }
    assert_eq!(
        Some(counted - unconnected),
        served["requests"].as_u64(),
        "master vs mock: {s}\n{served}"
    );
    // At most each user's first connection (20 users), and every worker got through: seen
    // twice in CI under the suite's load, one or two workers' first connections at once,
    // which fits a container's network still being wired (firewall rules reloaded while the
    // last containers join) rather than anything gsai-load does; the counts above stay exact.
    assert!(
        unconnected <= 20,
        "at most each user's first connection: {s}"
    );
    assert!(
        workers(&s)
            .iter()
            .all(|w| w["requests"].as_u64().unwrap_or(0) > 0),
        "every worker's requests reached the mock: {s}"
    );
    assert_eq!(
        served["ok"], served["requests"],
        "every request succeeded (token used): {served}"
    );
    let per_worker: u64 = workers(&s)
        .iter()
        .filter_map(|w| w["requests"].as_u64())
        .sum();
    assert_eq!(
        per_worker, counted,
        "the workers' reports add up to the master's: {s}"
    );

    // A second test against the slow mock: every user's stream in flight for a minute.
    let r = post(
        web,
        "/swarm",
        "user_count=20&spawn_rate=20&host=http://slowmock:8000",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    poll(
        slow,
        "/mock/counters",
        "20 slow streams open",
        Duration::from_secs(60),
        |c| c["open_streams"].as_u64() >= Some(20),
    )
    .await;
    // `stop master` (SIGTERM, then SIGKILL after stop_grace_period): the workers wait out
    // --stop-timeout (10 s) for their streams and report; then the JSON, then `quit`.
    let master = p
        .containers("master")
        .await
        .pop()
        .expect("master container");
    let workers_now = p.containers("worker").await;
    assert_eq!(workers_now.len(), 4, "{workers_now:?}");
    let t = Instant::now();
    ok(p.compose(&["stop", "master"])).await;
    let stop_took = t.elapsed();
    // Not 137 (SIGKILL): 1, because no request of the last test finished (all 20 cancelled
    // after the stop timeout; a run that measured nothing does not pass).
    let code = p.exit_code(&master, Duration::from_secs(5)).await;
    assert_eq!(code, 1, "master exit code after {stop_took:?}");
    assert!(
        stop_took < Duration::from_secs(30),
        "stop master took {stop_took:?}"
    );
    let result = p.json_from(&master, "/tmp/result.json").await;
    assert_eq!(
        result["plan"]["host"], "http://slowmock:8000",
        "the last test: {}",
        result["plan"]
    );
    assert_eq!(result["summary"]["cancelled"], 20, "{}", result["summary"]);
    for w in &workers_now {
        assert_eq!(
            p.exit_code(w, Duration::from_secs(30)).await,
            0,
            "worker {w}"
        );
    }

    // --headless as PID 1: SIGTERM stops it, with its JSON, well before podman's SIGKILL.
    let before = poll(
        mock,
        "/mock/counters",
        "counters",
        Duration::from_secs(5),
        |_| true,
    )
    .await;
    let headless = format!("{}-headless", p.name);
    p.extra.push(headless.clone());
    let network = format!("{}_default", p.name);
    let env_file = p.dir.path().join(".env");
    ok(p.tools.podman(&[
        "run",
        "-d",
        "--name",
        &headless,
        "--network",
        &network,
        "--env-file",
        env_file.to_str().unwrap(),
        &p.image,
        "--headless",
        "-u",
        "2",
        "-r",
        "10",
        "-t",
        "5m",
        "--json",
        "/tmp/headless.json",
    ]))
    .await;
    let base = before["requests"].as_u64().unwrap_or(0);
    poll(
        mock,
        "/mock/counters",
        "headless requests",
        Duration::from_secs(60),
        |c| c["requests"].as_u64() >= Some(base + 2),
    )
    .await;
    let (took, code) = p.stop(&headless).await;
    assert_eq!(code, 0, "--headless exit code after SIGTERM as PID 1");
    assert!(
        took < Duration::from_secs(15),
        "--headless took {took:?} to stop"
    );
    let h = p.json_from(&headless, "/tmp/headless.json").await;
    assert!(
        h["summary"]["requests"].as_u64() >= Some(2),
        "{}",
        h["summary"]
    );

    // The mock as PID 1 too.
    for service in ["mock", "slowmock"] {
        let name = p.containers(service).await.pop().expect("mock container");
        let (took, code) = p.stop(&name).await;
        assert_eq!(code, 0, "{service} exit code after SIGTERM as PID 1");
        assert!(
            took < Duration::from_secs(10),
            "{service} took {took:?} to stop"
        );
    }
    eprintln!(
        "compose: 4 workers ready after {up:?}; stop master took {stop_took:?}; all in {:?}",
        started.elapsed()
    );
}
