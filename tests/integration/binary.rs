//! The real binary: `.env` and flag precedence, exit codes, errors, and that the token never shows.

use crate::harness::*;
use gsai_load::mock::MockConfig;

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
