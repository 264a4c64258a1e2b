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
