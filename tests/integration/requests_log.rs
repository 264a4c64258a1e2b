//! `--requests-log`: one line per finished request, matching the JSON result's counts, and
//! `report --requests-log` summing it up; a worker's file carries its id.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_has_a_line_per_request_and_matches_the_json() {
    let mock = start_mock_failing(0.2).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    for file in ["requests.jsonl", "requests.jsonl.zst"] {
        let log = dir.path().join(file);
        let json = dir.path().join(format!("{file}.result.json"));
        let (log_s, json_s) = (log.to_str().unwrap(), json.to_str().unwrap());
        let o = output(bin(
            dir.path(),
            &headless_args(
                &url,
                &[
                    "--token",
                    TOKEN,
                    "--max-requests",
                    "60",
                    "-t",
                    "60s",
                    "--exit-code-on-error",
                    "0",
                    "--json",
                    json_s,
                    "--requests-log",
                    log_s,
                ],
            ),
        ))
        .await;
        let all = text(&o);
        assert_eq!(o.status.code(), Some(0), "{all}");
        assert!(all.contains("requests log: 60 lines in"), "{all}");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let (requests, failures) = (
            doc["summary"]["requests"].as_u64().unwrap(),
            doc["summary"]["failures"].as_u64().unwrap(),
        );
        assert_eq!(requests, 60);
        assert!(failures > 0, "the mock fails 20 %: {all}");
        // The summary of the log agrees with the JSON.
        let r = output(bin(dir.path(), &["report", "--requests-log", log_s])).await;
        let table = text(&r);
        assert_eq!(r.status.code(), Some(0), "{table}");
        assert!(table.contains("/api/chat/completions"), "{table}");
        assert!(
            table.contains(&format!("http_status {failures}")),
            "{failures} failures of kind http_status: {table}"
        );
        if file.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&log).unwrap();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 60);
            let fails = lines.iter().filter(|l| l["outcome"] == "failure").count();
            assert_eq!(fails as u64, failures);
            let ok = lines.iter().find(|l| l["outcome"] == "success").unwrap();
            assert_eq!(ok["status"], 200);
            assert!(ok["ttft_us"].as_u64().unwrap() >= 5_000, "{ok}");
            assert_eq!(ok["output_tokens"], 5);
            assert!(!text.contains(TOKEN));
        }
    }
}

/// A worker writes its own log, named with its id; its lines are the master's counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_writes_its_own_log() {
    use crate::cluster::{master, result, worker_with};
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--expect-workers", "1", "-u", "2", "-r", "100", "-t", "2s"];
    let (mut m, port) = master(dir.path(), &mock, &extra).await;
    let mut w = worker_with(
        dir.path(),
        port,
        &mock.base_url(),
        &["--requests-log", "reqs.jsonl"],
    );
    let limit = std::time::Duration::from_secs(60);
    assert_eq!(m.wait_exit(limit).await, Some(0), "{}", m.text());
    assert_eq!(w.wait_exit(limit).await, Some(0), "{}", w.text());
    let doc = result(dir.path());
    let finished = doc["summary"]["requests"].as_u64().unwrap()
        + doc["summary"]["cancelled"].as_u64().unwrap();
    assert!(finished > 0);
    let logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("reqs-") && n.ends_with(".jsonl"))
        .collect();
    assert_eq!(logs.len(), 1, "one file, with the worker's id: {logs:?}");
    let text = std::fs::read_to_string(dir.path().join(&logs[0])).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, finished, "{}", w.text());
    let id = lines[0]["worker"].as_str().unwrap().to_string();
    assert!(logs[0].contains(&id.replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
        "_"
    )));
    assert!(lines.iter().all(|l| l["worker"] == id.as_str()));
}
