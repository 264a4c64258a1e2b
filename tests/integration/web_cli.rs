//! The binary in web UI mode: starts without host or model, serves the form, quits on Ctrl-C;
//! `--autostart --autoquit` runs a test from the flags and exits with its summary and code.

use crate::harness::*;
use crate::http::{get, post_form};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gsai-load"))
        .current_dir(dir)
        .args(args)
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL")
        .env_remove("GSAI_WEB_LOGIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Forwards the child's stderr lines to a channel (and keeps them for failure messages).
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

/// Waits for "web UI at http://ADDR" and returns ADDR.
fn ui_address(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            seen.push(line.clone());
            if let Some(rest) = line.split("web UI at http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return addr.parse().unwrap_or_else(|_| panic!("address in {line}"));
            }
        }
    }
    panic!("no 'web UI at' line: {seen:?}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_mode_starts_without_host_and_quits_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin(dir.path(), &["--web-port", "0", "--token", TOKEN]);
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let addr = ui_address(&lines, &mut seen);
    let config = get(addr, "/config").await.json();
    assert_eq!(config["defaults"]["host"], "");
    let r = post_form(addr, "/swarm", "user_count=1&model=m").await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().contains("no host"),
        "{}",
        r.body
    );
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let code = tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, 0, "no test ran: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_runs_the_flags_test_and_autoquit_exits_with_its_summary() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let host = mock.base_url();
    let json_arg = json.display().to_string();
    let args = [
        "--web-port",
        "0",
        "--autostart",
        "--autoquit",
        "0",
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
        "constant(0.05)",
        "--json",
        &json_arg,
    ];
    let mut child = bin(dir.path(), &args);
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let addr = ui_address(&lines, &mut seen);
    let s = get(addr, "/stats/requests").await.json();
    assert!(s["run_id"] == 1, "autostart started test 1: {s}");
    let mut stdout = child.stdout.take().unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || {
        let code = wait_exit(&mut child, Duration::from_secs(30));
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        (code, out)
    })
    .await
    .unwrap();
    seen.extend(lines.try_iter());
    let all = format!("{out}\n{}", seen.join("\n"));
    assert_eq!(code, 0, "{all}");
    assert!(out.contains("Aggregated"), "the summary is printed: {all}");
    assert!(!all.contains(TOKEN), "the token never shows");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["stop_reason"], "run_time");
    assert!(doc["summary"]["requests"].as_u64() > Some(0));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autostart_without_host_and_a_bad_login_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin(
        dir.path(),
        &["--web-port", "0", "--autostart", "--model", "m"],
    );
    let code = wait_exit(&mut child, Duration::from_secs(15));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--autostart") && err.contains("no host"),
        "{err}"
    );

    let mut child = bin(
        dir.path(),
        &["--web-port", "0", "--web-login", "nopassword"],
    );
    let code = wait_exit(&mut child, Duration::from_secs(15));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--web-login"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_on_all_interfaces_without_a_login_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (args, warns) in [
        (&["--web-host", "0.0.0.0"][..], true),
        (
            &["--web-host", "0.0.0.0", "--web-login", "admin:pw"][..],
            false,
        ),
        (&["--web-host", "127.0.0.1"][..], false),
    ] {
        let mut child = bin(dir.path(), &[args, &["--web-port", "0"]].concat());
        let lines = stderr_lines(&mut child);
        let mut seen = Vec::new();
        ui_address(&lines, &mut seen);
        // Start-up warnings come before the address line; nothing more to see.
        let _ = child.kill();
        let _ = child.wait();
        let warning = seen.iter().any(|l| {
            l.starts_with("warning: the web UI listens on 0.0.0.0:")
                && l.contains("without --web-login")
        });
        assert_eq!(warning, warns, "{args:?}: {seen:?}");
    }
}
