//! Output files fail fast and independently: every path is test-written before the test
//! starts, and at the end each file is written on its own, with every error reported.

use crate::harness::*;
use std::time::{Duration, Instant};

fn args<'a>(host: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    headless_args(host, &[&["--token", TOKEN], extra].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_json_and_html_fail_before_the_test_starts() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    // /proc/self is a folder in which no file can be created, even by root (as on a read-only
    // filesystem).
    let began = Instant::now();
    let o = output(bin(
        dir.path(),
        &args(
            &url,
            &[
                "-t",
                "30s",
                "--json",
                "/proc/self/out.json",
                "--html",
                "/proc/self/out.html",
            ],
        ),
    ))
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "found only after the run: {all}"
    );
    assert!(
        all.contains("--json /proc/self/out.json: cannot write there"),
        "{all}"
    );
    assert!(
        all.contains("--html /proc/self/out.html: cannot write there"),
        "every problem: {all}"
    );
    assert_eq!(mock.counters().requests, 0, "no test ran");
    assert!(!all.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_output_does_not_keep_the_others_from_being_written() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let json_dir = dir.path().join("gone");
    std::fs::create_dir(&json_dir).unwrap();
    let url = mock.base_url();
    let c = bin(
        dir.path(),
        &args(
            &url,
            &[
                "-t",
                "2s",
                "--json",
                "gone/out.json",
                "--html",
                "out.html",
                "--csv",
                "out",
            ],
        ),
    );
    let run = tokio::task::spawn_blocking({
        let mut c = c;
        move || c.output().unwrap()
    });
    // Once requests flow the paths have been checked; then the JSON's folder disappears.
    let deadline = Instant::now() + Duration::from_secs(20);
    while mock.counters().requests == 0 {
        assert!(Instant::now() < deadline, "the test never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_dir(&json_dir).unwrap();
    let o = run.await.unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--json gone/out.json: writing the result failed"),
        "{all}"
    );
    assert!(
        dir.path().join("out.html").is_file(),
        "HTML written despite the JSON: {all}"
    );
    assert!(dir.path().join("out_stats.csv").is_file());
    assert!(all.contains("wrote out.html"), "{all}");
}
