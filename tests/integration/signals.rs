//! The binary under SIGTERM and Ctrl-C, and its exit status when nothing was measured: the
//! first signal stops gracefully and every output is written, the second cancels in-flight
//! requests at once, a PID 1 (a container without init) obeys SIGTERM, and a run in which no
//! request finished does not pass.

use crate::harness::*;
use gsai_load::mock::{MockConfig, MockServer};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server that accepts connections, reads what comes, and never answers: a backend that hangs.
struct SilentServer {
    url: String,
    accepted: Arc<AtomicU64>,
}

impl SilentServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    use tokio::io::AsyncReadExt;
                    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        Self { url, accepted }
    }
}

/// The binary, started in the background with its stderr collected line by line.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(mut c: Command) -> Self {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls until stderr contains `needle`.
    async fn wait_for_text(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on stderr within {limit:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the exit (killing the process after `limit`), returning the exit code and how
    /// long it took.
    async fn exit_within(mut self, limit: Duration) -> (Option<i32>, Duration, String) {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return (status.code(), began.elapsed(), self.stderr());
            }
            if began.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "did not exit within {limit:?} of the signal:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, sig: libc::c_int) {
        signal_pid(self.child.id(), sig);
    }
}

fn signal_pid(pid: u32, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to a process id of our own child.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// Polls `f` until it holds.
async fn until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A mock whose streams last about 1.5 s (30 tokens, 50 ms apart).
async fn slow_mock() -> MockServer {
    start_mock(MockConfig {
        ttft: Duration::from_millis(50),
        itl: Duration::from_millis(50),
        tokens: 30,
        token: None,
        ..fast_config()
    })
    .await
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_writes_every_output() {
    let mock = slow_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let args = headless_args(
        &url,
        &[
            "-t",
            "5m",
            "--stop-timeout",
            "30s",
            "--json",
            "out.json",
            "--html",
            "out.html",
            "--csv",
            "out",
        ],
    );
    let run = Running::start(bin(dir.path(), &args));
    until("two streams under way", Duration::from_secs(20), || {
        mock.counters().requests >= 2
    })
    .await;
    run.signal(libc::SIGTERM);
    // In-flight streams (≤ 1.5 s each) are awaited, not cut off.
    let (code, took, stderr) = run.exit_within(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let v = read_json(&dir.path().join("out.json"));
    assert_eq!(v["stop_reason"], "stopped", "{v}");
    let requests = v["summary"]["requests"].as_u64().unwrap();
    assert!(requests >= 2, "{v}");
    assert_eq!(v["summary"]["cancelled"], 0, "graceful: nothing cut off");
    assert_eq!(
        requests,
        mock.counters().ok,
        "every stream the mock finished is counted"
    );
    assert!(dir.path().join("out.html").is_file());
    assert!(dir.path().join("out_stats.csv").is_file());
}

/// Runs the binary with `args` against `server` (its 2 users hang there), sends `first` once both
/// requests are in flight and SIGTERM once it says it is stopping, and checks that it ends
/// within 10 s with both requests counted as cancelled in `out.json`. Returns the exit code,
/// stderr and the JSON.
async fn stop_twice(
    server: &SilentServer,
    dir: &Path,
    args: &[&str],
    first: libc::c_int,
) -> (Option<i32>, String, serde_json::Value) {
    let run = Running::start(bin(dir, args));
    let accepted = server.accepted.clone();
    until("two requests in flight", Duration::from_secs(20), || {
        accepted.load(Ordering::SeqCst) >= 2
    })
    .await;
    run.signal(first);
    run.wait_for_text("stopping", Duration::from_secs(10)).await;
    run.signal(libc::SIGTERM);
    let (code, took, stderr) = run.exit_within(Duration::from_secs(30)).await;
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    let v = read_json(&dir.join("out.json"));
    assert_eq!(v["summary"]["cancelled"], 2, "{v}");
    (code, stderr, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cancels_in_flight_requests_at_once() {
    let server = SilentServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = headless_args(
        &server.url,
        &["-t", "5m", "--stop-timeout", "5m", "--json", "out.json"],
    );
    // --stop-timeout is 5 minutes: only the second signal can end this soon.
    let (code, stderr, v) = stop_twice(&server, dir.path(), &args, libc::SIGINT).await;
    assert_eq!(v["summary"]["requests"], 0);
    // Nothing finished: not a pass.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no request finished"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_which_no_request_finished_does_not_pass() {
    let server = SilentServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = headless_args(
        &server.url,
        &[
            "-t",
            "1s",
            "--stop-timeout",
            "1s",
            "--exit-code-on-error",
            "0",
        ],
    );
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("no request finished (2 cancelled at stop)"),
        "{all}"
    );
}

/// As PID 1 of a PID namespace (a container without init), the kernel drops signals that have
/// no handler: SIGTERM must be handled, or `docker stop` waits and then SIGKILLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_sigterm_stops_the_run_and_writes_the_result() {
    if !can_unshare() {
        return;
    }
    let mock = slow_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let args = headless_args(&url, &["-t", "5m", "--json", "out.json"]);
    let mut c = Command::new("unshare");
    c.current_dir(dir.path())
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            env!("CARGO_BIN_EXE_gsai-load"),
        ])
        .args(&args)
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL");
    let run = Running::start(c);
    until("two streams under way", Duration::from_secs(20), || {
        mock.counters().requests >= 2
    })
    .await;
    // The binary is unshare's only child, and PID 1 inside its namespace.
    signal_pid(only_child(run.child.id()), libc::SIGTERM);
    let (code, _, stderr) = run.exit_within(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let v = read_json(&dir.path().join("out.json"));
    assert_eq!(v["stop_reason"], "stopped");
}

/// The `mock` subcommand (a container's stand-in server) as PID 1 stops on SIGTERM at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_as_pid_1_stops_on_sigterm() {
    if !can_unshare() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new("unshare");
    c.current_dir(dir.path()).args([
        "--pid",
        "--fork",
        "--kill-child",
        env!("CARGO_BIN_EXE_gsai-load"),
        "mock",
        "--bind",
        "127.0.0.1:0",
    ]);
    let run = Running::start(c);
    run.wait_for_text("127.0.0.1:", Duration::from_secs(20))
        .await;
    signal_pid(only_child(run.child.id()), libc::SIGTERM);
    let (code, took, stderr) = run.exit_within(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Whether `unshare --pid --fork` works here (root); under CI it must.
fn can_unshare() -> bool {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "true"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must be able to run `unshare --pid --fork` (root)"
    );
    eprintln!("skipped: unshare --pid --fork is not allowed here");
    false
}

/// The one child of process `pid` (the binary that `unshare --fork` started, PID 1 inside).
fn only_child(pid: u32) -> u32 {
    let children = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(&children)
        .unwrap()
        .split_whitespace()
        .next()
        .expect("unshare has a child")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_mode_two_signals_cancel_the_running_test_and_write_the_result() {
    let server = SilentServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-H",
        &server.url,
        "--model",
        "m",
        "--web-port",
        "0",
        "--autostart",
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "5m",
        "--stop-timeout",
        "5m",
        "--json",
        "out.json",
    ];
    let (code, stderr, _) = stop_twice(&server, dir.path(), &args, libc::SIGTERM).await;
    assert_eq!(code, Some(1), "{stderr}");
}

/// A server that answers every request with one event holding a 400,000-letter word, then
/// `[DONE]`: counting such a word took about a minute on an I/O thread and froze the stop timer.
async fn huge_word_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let word = "a".repeat(400_000);
    let event = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\ndata: [DONE]\n\n"
    );
    let response = Arc::new(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{event}",
        event.len()
    ));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
                let mut sock = BufReader::new(sock);
                loop {
                    // Read one request: headers, then the body its content-length announces.
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if sock.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; len.min(1 << 20)];
                    use tokio::io::AsyncReadExt;
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if sock.get_mut().write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_timeout_is_a_hard_bound_whatever_the_server_sends() {
    let url = huge_word_server().await;
    let dir = tempfile::tempdir().unwrap();
    let args = headless_args(
        &url,
        &["-t", "2s", "--stop-timeout", "1s", "--json", "out.json"],
    );
    let began = Instant::now();
    let o = output(bin(dir.path(), &args)).await;
    let took = began.elapsed();
    let all = text(&o);
    // Run time 2 s + stop timeout 1 s + 1 s, with slack for a loaded CI machine; counting on an
    // I/O thread took about a minute per reply.
    assert!(took < Duration::from_secs(12), "took {took:?}: {all}");
    // Every request started either finished or was cut off at the stop timeout.
    let v = read_json(&dir.path().join("out.json"));
    assert_eq!(v["stop_reason"], "run_time");
    let s = &v["summary"];
    let ended = s["requests"].as_u64().unwrap() + s["cancelled"].as_u64().unwrap();
    assert!(ended >= 2, "{s}");
}
