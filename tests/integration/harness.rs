//! Shared helpers: start the mock, build plans, run the engine to completion.

use gsai_load::config::{Plan, Secret, WaitTime};
use gsai_load::engine::{self, RunResult};
use gsai_load::metrics::{FailureKind, NameStats};
use gsai_load::mock::{self, MockConfig, MockServer};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TOKEN: &str = "sk-test-secret-7c1d";

/// A mock with small delays and the test token.
pub fn fast_config() -> MockConfig {
    MockConfig {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        tokens: 5,
        token: Some(TOKEN.to_string()),
        seed: Some(7),
        ..MockConfig::default()
    }
}

pub async fn start_mock(config: MockConfig) -> MockServer {
    mock::start(config)
        .await
        .expect("mock starts on 127.0.0.1:0")
}

/// A mock (as [`fast_config`]) whose chat requests fail with HTTP 500 at probability `p`.
pub async fn start_mock_failing(p: f64) -> MockServer {
    start_mock(MockConfig {
        faults: gsai_load::mock::FaultRates {
            http_500: p,
            ..Default::default()
        },
        ..fast_config()
    })
    .await
}

/// A plan against `mock`: no wait, stops after `max_requests`.
pub fn plan(mock: &MockServer, users: u64, max_requests: u64) -> Plan {
    let mut p = Plan::new(mock.base_url(), "test-model");
    p.token = Some(Secret::new(TOKEN));
    p.users = users;
    p.spawn_rate = 1000.0;
    p.wait = WaitTime::None;
    p.max_requests = Some(max_requests);
    p.run_time = Some(Duration::from_secs(60));
    p.stop_timeout = Duration::from_secs(10);
    p
}

pub async fn run(plan: Plan) -> RunResult {
    engine::start(plan).expect("valid plan").wait().await
}

pub fn total(r: &RunResult) -> NameStats {
    r.stats.total()
}

/// Count of failures of kind `kind`.
pub fn failures_of(r: &RunResult, kind: FailureKind) -> u64 {
    r.stats
        .failures
        .iter()
        .filter(|(k, _)| k.cause == kind)
        .map(|(_, e)| e.count)
        .sum()
}

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The binary, run in `dir` with `args`, without the seed's variables from the environment.
pub fn bin(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gsai-load"));
    c.current_dir(dir)
        .args(args)
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL");
    c
}

/// Runs a command to completion off the async runtime.
pub async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("binary runs"))
        .await
        .unwrap()
}

/// Its stdout and stderr, together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A raw HTTP server on 127.0.0.1:0 that keeps the head (request line and headers) of every
/// request and answers each with `401` and a closed connection: shows exactly what a client sent
/// to a host, e.g. whether an `Authorization` header reached it.
pub struct Recorder {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut conn).await else {
                        return;
                    };
                    kept.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = conn
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        Recorder { addr, heads, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; fails after `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let heads = self.heads();
            if heads.len() >= n {
                return heads;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {n} requests reached the recorder in {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Flags of a headless run of the binary against `host`: 2 users, no wait, no live table, then
/// `extra`.
pub fn headless_args<'a>(host: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--headless",
        "-H",
        host,
        "--model",
        "mock-model",
        "-u",
        "2",
        "-r",
        "100",
        "--wait",
        "none",
        "--print-every",
        "0",
    ];
    v.extend_from_slice(extra);
    v
}

/// Reads an HTTP request's head (up to the blank line, at most 64 KiB); `None` if the peer
/// closed first.
pub async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}
