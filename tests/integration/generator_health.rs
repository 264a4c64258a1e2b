//! The generator's self-check, tested on a deliberately starved run: the generator pinned to
//! one core that two busy loops also hold (as when another process pins a core at 100 %),
//! against a light run of the same binary.

use crate::harness::*;
use std::process::{Child, Command, Stdio};

/// Busy loops pinned to core 0, killed when dropped.
struct Hogs(Vec<Child>);

impl Hogs {
    fn on_core_0(n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("taskset")
                        .args(["-c", "0", "sh", "-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("taskset (util-linux) runs")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn generator(doc: &serde_json::Value) -> (String, f64, u64) {
    let g = &doc["generator"];
    (
        g["verdict"].as_str().unwrap_or("missing").to_string(),
        g["loop_lag_p99_ms"].as_f64().unwrap_or(-1.0),
        g["cores"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starved_generator_says_so_and_a_light_one_does_not() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let bin_path = env!("CARGO_BIN_EXE_gsai-load");

    // Light: two users pausing between requests, free to use every core.
    let light = dir.path().join("light.json");
    let light_s = light.to_str().unwrap();
    let o = output(bin(
        dir.path(),
        &[
            "--headless",
            "-H",
            &url,
            "--model",
            "m",
            "--token",
            TOKEN,
            "-u",
            "2",
            "-r",
            "100",
            "--wait",
            "between(0.05,0.1)",
            "-t",
            "3s",
            "--print-every",
            "0",
            "--json",
            light_s,
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let light_doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&light).unwrap()).unwrap();
    let (light_verdict, light_lag, _) = generator(&light_doc);

    // Starved: pinned to core 0 with two busy loops, 50 users without pauses.
    let hogs = Hogs::on_core_0(2);
    let starved = dir.path().join("starved.json");
    let starved_s = starved.to_str().unwrap();
    let args = [
        "-c",
        "0",
        bin_path,
        "--headless",
        "-H",
        &url,
        "--model",
        "m",
        "--token",
        TOKEN,
        "-u",
        "50",
        "-r",
        "1000",
        "--wait",
        "none",
        "-t",
        "3s",
        "--print-every",
        "0",
        "--json",
        starved_s,
    ];
    let mut c = Command::new("taskset");
    c.args(args)
        .current_dir(dir.path())
        .env_remove("GSAI_HOST")
        .env_remove("GSA_AUTH_TOKEN")
        .env_remove("CHAT_MODEL");
    let o = output(c).await;
    drop(hogs);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&starved).unwrap()).unwrap();
    let (verdict, lag, cores) = generator(&doc);
    assert_eq!(cores, 1, "pinned to one core: {}", doc["generator"]);
    assert_ne!(verdict, "ok", "starved: {}", doc["generator"]);
    assert!(
        lag >= 10.0,
        "the runtime's timers fire late when starved: {}",
        doc["generator"]
    );
    assert!(
        all.contains(&format!("Generator: {verdict}")) && all.contains("add workers"),
        "the summary says it in words: {all}"
    );
    // The light run, on the same machine, fares clearly better. (A busy CI machine may make
    // even it "degraded", never "saturated".)
    assert_ne!(light_verdict, "saturated", "{}", light_doc["generator"]);
    assert!(
        light_lag < lag / 2.0,
        "light {light_lag} ms against starved {lag} ms"
    );
    assert!(!all.contains(TOKEN));
}
