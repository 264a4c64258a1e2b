//! The real binary: `.env` and flag precedence, exit codes, errors, and that the token never shows.

use crate::harness::*;
use gsai_load::mock::MockConfig;
use std::time::Duration;

const RUN: &[&str] = &[
    "--headless",
    "-u",
    "2",
    "-r",
    "100",
    "--wait",
    "none",
    "--max-requests",
    "6",
    "--print-every",
    "0",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_gives_host_token_and_model_and_the_token_never_shows() {
    let mock = start_mock(MockConfig {
        models: vec!["env-model".into()],
        ..fast_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "GSAI_HOST={}\nGSA_AUTH_TOKEN={TOKEN}\nCHAT_MODEL=env-model\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let o = output(bin(dir.path(), &[RUN, &["--json", "out.json"]].concat())).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(!all.contains(TOKEN), "token printed: {all}");
    let json = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(!json.contains(TOKEN), "token in JSON");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["summary"]["requests"], 6);
    assert_eq!(v["plan"]["token"], "[redacted]");
    assert_eq!(v["plan"]["model"], "env-model");
    assert_eq!(mock.counters().ok, 6);

    // A flag overrides .env: an unknown model is refused by the mock (400), so every request fails.
    let o = output(bin(dir.path(), &[RUN, &["--model", "flag-model"]].concat())).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Received status code: 400 (Model not found)"),
        "{all}"
    );
    assert!(!all.contains(TOKEN));

    // The environment overrides .env too (dotenv never replaces a set variable).
    let mut c = bin(dir.path(), RUN);
    c.env("CHAT_MODEL", "other-model");
    let o = output(c).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_1_when_requests_fail_and_failures_are_listed() {
    let mock = start_mock_failing(1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let o = output(bin(
        dir.path(),
        &[RUN, &["--host", &url, "--model", "m", "--token", TOKEN]].concat(),
    ))
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Failures:") && all.contains("Received status code: 500"),
        "{all}"
    );
    assert!(!all.contains(TOKEN));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let o = output(bin(dir.path(), &["--headless", "--model", "m"])).await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("GSAI_HOST") && err.contains("--host"), "{err}");

    let o = output(bin(
        dir.path(),
        &["--headless", "--host", "http://127.0.0.1:9"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("CHAT_MODEL") && err.contains("--model"),
        "{err}"
    );

    for (args, needle) in [
        (
            vec!["--host", "http://127.0.0.1:9", "--wait", "sometimes(1)"],
            "sometimes(1)",
        ),
        (vec!["--host", "http://127.0.0.1:9", "-t", "soon"], "soon"),
        (
            vec!["--host", "http://127.0.0.1:9", "--body", "[1]"],
            "--body",
        ),
        (vec!["--host", "ftp://x"], "http://"),
        (
            vec!["--host", "http://h:0"],
            "port 0 is out of range; a port is 1 to 65535",
        ),
        (
            vec!["--host", "http://h:70000"],
            "port 70000 is out of range",
        ),
        (
            vec!["--host", "http://127.0.0.1:9", "-u", "1000000000000"],
            "-u/--users: 1000000000000 is more than the maximum of 1000000 users",
        ),
        (
            vec!["--host", "http://127.0.0.1:9", "-t", "100000000000000h"],
            "-t/--run-time: ",
        ),
        (
            vec!["--host", "http://127.0.0.1:9", "--stop-timeout", "400days"],
            "--stop-timeout: ",
        ),
        (
            vec![
                "--host",
                "http://127.0.0.1:9",
                "--stages",
                "10@30s,5@1000000h",
            ],
            "--stages: ",
        ),
        (
            vec!["--host", "http://127.0.0.1:9", "--api", "grpc"],
            "grpc",
        ),
    ] {
        let mut full = vec!["--headless", "--model", "m"];
        full.extend(args);
        let o = output(bin(dir.path(), &full)).await;
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{full:?}: {err}");
        assert!(err.contains(needle), "{full:?}: {err}");
    }

    std::fs::write(dir.path().join(".env"), "GSAI_HOST=\"unterminated\n").unwrap();
    let o = output(bin(dir.path(), &["--headless"])).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(".env"));
}

/// Runs `c` to completion, or kills it after `limit` (a binary that ignored its config file
/// would serve the web UI forever): the test stays bounded in time.
async fn output_within(mut c: std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(limit, waiting).await {
        Ok(done) => done.unwrap().expect("binary output"),
        Err(_) => {
            // SAFETY: kill only signals the child this test started, by its id.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the binary ran past {limit:?}");
        }
    }
}

/// Runs the binary in `dir` (with `HOME` there too, so no real ~/.locust.conf is read).
fn bin_home(dir: &std::path::Path, home: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = bin(dir, args);
    c.env("HOME", home);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locust_conf_sets_the_run_and_the_environment_and_flags_win_over_it() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("locust.conf"),
        format!(
            "# an existing Locust config\nlocustfile = locustfile.py\nheadless = true\nusers = 3\nspawn-rate = 50\nrun-time = 1s\nhost = {}\ncsv = conf\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let common = [
        "--model",
        "test-model",
        "--token",
        TOKEN,
        "--wait",
        "constant(0.05)",
        "--print-every",
        "0",
        "--json",
        "out.json",
    ];
    let started = std::time::Instant::now();
    let o = output_within(
        bin_home(dir.path(), dir.path(), &common),
        Duration::from_secs(30),
    )
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("locustfile ignored"), "{all}");
    assert!(started.elapsed() < Duration::from_secs(15), "{all}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(v["plan"]["users"], 3);
    assert_eq!(v["plan"]["spawn_rate"], 50.0);
    assert_eq!(v["plan"]["run_time"], "1s");
    assert_eq!(v["plan"]["host"], mock.base_url());
    assert!(
        dir.path().join("conf_stats.csv").exists(),
        "csv from the file"
    );
    assert!(v["summary"]["requests"].as_u64().unwrap() > 0);

    // The environment beats the file (GSAI_HOST), and a flag beats both (-u).
    let mut c = bin_home(
        dir.path(),
        dir.path(),
        &[&common[..], &["-u", "2"]].concat(),
    );
    c.env("GSAI_HOST", "http://127.0.0.1:1");
    let o = output_within(c, Duration::from_secs(30)).await;
    let all = text(&o);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(v["plan"]["host"], "http://127.0.0.1:1", "{all}");
    assert_eq!(v["plan"]["users"], 2);
    assert!(!all.contains(TOKEN));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_locust_conf_is_read_below_the_local_one_and_last_flag_wins() {
    let mock = start_mock(fast_config()).await;
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".locust.conf"),
        format!(
            "headless\nhost = {}\nusers = 2\nrun-time = 30s\n",
            mock.base_url()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("locust.conf"), "users = 1\n").unwrap();
    // -t 8s then -t 1s: the last wins, as argparse does (today: an error).
    let args = [
        "--model",
        "test-model",
        "--token",
        TOKEN,
        "--wait",
        "constant(0.05)",
        "--print-every",
        "0",
        "--json",
        "out.json",
        "-t",
        "8s",
        "-r",
        "100",
        "-t",
        "1s",
    ];
    let started = std::time::Instant::now();
    let o = output_within(
        bin_home(dir.path(), home.path(), &args),
        Duration::from_secs(30),
    )
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "ran past -t 1s: {all}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(v["plan"]["run_time"], "1s");
    assert_eq!(v["plan"]["users"], 1, "./locust.conf over ~/.locust.conf");
    assert_eq!(v["plan"]["host"], mock.base_url(), "from ~/.locust.conf");
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_errors_name_file_line_and_key_and_help_and_completions_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("locust.conf"),
        format!("users = 2\ncolour = blue\ntoken = {TOKEN}\n"),
    )
    .unwrap();
    let o = output_within(
        bin_home(dir.path(), dir.path(), &["--headless"]),
        Duration::from_secs(30),
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("locust.conf, line 2") && err.contains("'colour'"),
        "{err}"
    );
    assert!(!err.contains(TOKEN), "{err}");

    let o = output(bin_home(dir.path(), dir.path(), &["completions", "bash"])).await;
    let script = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        script.contains("complete -F") && script.contains("--spawn-rate"),
        "{script}"
    );

    let o = output(bin_home(dir.path(), dir.path(), &["--help"])).await;
    let help = String::from_utf8_lossy(&o.stdout).to_string();
    for heading in [
        "Common options:",
        "Load shape:",
        "Workload:",
        "Outputs and criteria:",
        "Web UI:",
        "Distributed:",
        "Timeouts and TLS:",
    ] {
        assert!(help.contains(heading), "no {heading} in {help}");
    }
}
