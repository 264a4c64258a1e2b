//! Through the binary: where the token goes (a worker's own token only to its own GSAI_HOST,
//! whatever host the master asks for), that a malformed `.env` line is reported by file, line
//! and key without its value, and the warning for a web UI reachable from other machines.

use crate::cluster::{clean, worker, Proc};
use crate::harness::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sends_its_token_only_to_its_own_host_not_to_the_masters() {
    // The worker's own GSAI_HOST is A; the master asks for a test of B.
    let a = start_mock(fast_config()).await;
    let b = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = b.base_url();
    let master = Proc::spawn(clean(
        dir.path(),
        &[
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            "0",
            "-H",
            &url,
            "--model",
            "test-model",
            "--wait",
            "constant(0.05)",
            "-u",
            "1",
            "-r",
            "100",
            "-t",
            "60s",
            "--print-every",
            "0",
        ],
    ));
    let line = master
        .wait_line("master listening on", Duration::from_secs(20))
        .await;
    let port: u16 = line
        .split_whitespace()
        .nth(3)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let w = worker(dir.path(), port, &a.base_url());
    let heads = b.wait_for(2, Duration::from_secs(30)).await;
    for head in &heads {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "the master's host got the worker's token: {head}"
        );
    }
    let notice = w.wait_line("is not sent to", Duration::from_secs(10)).await;
    assert!(
        notice.contains(&a.base_url().replace("http://", "")),
        "{notice}"
    );
    assert!(!w.text().contains(TOKEN) && !master.text().contains(TOKEN));
    assert_eq!(a.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_dotenv_line_is_named_by_file_line_and_key_never_by_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("GSA_AUTH_TOKEN {TOKEN}\nGSAI_HOST=http://127.0.0.1:9\n"),
    )
    .unwrap();
    let o = output(bin(dir.path(), &["--headless", "--model", "m"])).await;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for needle in [".env", "line 1", "GSA_AUTH_TOKEN", "expected KEY=VALUE"] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
    assert!(
        !text(&o).contains(TOKEN),
        "the token was printed: {}",
        text(&o)
    );
    assert!(!text(&o).contains("sk-"), "{}", text(&o));
}

/// A redirect to another host is a failure (`http_status`), never followed: the token cannot be
/// carried to the host it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_not_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let thief = Recorder::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    let reply = format!(
        "HTTP/1.1 302 Found\r\nlocation: {}/steal\r\ncontent-length: 0\r\n\r\n",
        thief.base_url()
    );
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut p = gsai_load::config::Plan::new(host, "test-model");
    p.token = Some(gsai_load::config::Secret::new(TOKEN));
    p.users = 1;
    p.spawn_rate = 10.0;
    p.wait = gsai_load::config::WaitTime::None;
    p.max_requests = Some(3);
    p.run_time = Some(Duration::from_secs(30));
    let r = run(p).await;
    let t = total(&r);
    assert_eq!((t.requests, t.failures), (3, 3));
    let kinds: Vec<_> = r.stats.failures.keys().map(|k| k.cause).collect();
    assert_eq!(kinds, [gsai_load::metrics::FailureKind::HttpStatus]);
    assert!(thief.heads().is_empty(), "the redirect was followed");
}
