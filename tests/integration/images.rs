//! `--image` / `--synthetic-image`: an image_url part on each chat request, its size in the
//! request-size metric, and clear errors for a bad path or API.

use crate::harness::*;

fn run_args<'a>(url: &'a str, json: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--headless",
        "-H",
        url,
        "--model",
        "m",
        "--token",
        TOKEN,
        "-u",
        "2",
        "-r",
        "100",
        "--wait",
        "none",
        "--print-every",
        "0",
        "--max-requests",
        "10",
        "-t",
        "60s",
        "--json",
        json,
    ];
    v.extend_from_slice(extra);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_image_rides_on_every_chat_request() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let json = dir.path().join("r.json");
    let json_s = json.to_str().unwrap();
    // Without an image, then with a 128x96 one (36,864 bytes of pixels; base64 makes 4/3).
    let plain = output(bin(
        dir.path(),
        &run_args(&url, json_s, &["--api", "openai"]),
    ))
    .await;
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let plain_bytes = doc["metrics"]["request_bytes"]["mean"].as_f64().unwrap();
    let o = output(bin(
        dir.path(),
        &run_args(
            &url,
            json_s,
            &["--api", "openai", "--synthetic-image", "128x96"],
        ),
    ))
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["summary"]["successes"], 10, "{all}");
    let with_image = doc["metrics"]["request_bytes"]["mean"].as_f64().unwrap();
    let png_b64 = (128.0 * 96.0 * 3.0) * 4.0 / 3.0;
    assert!(
        with_image - plain_bytes >= png_b64,
        "each request carries the image: {plain_bytes} -> {with_image} bytes"
    );
    assert_eq!(doc["plan"]["images"]["synthetic"]["width"], 128);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let json_s = json.to_str().unwrap();
    let url = "http://127.0.0.1:9";
    for (extra, expect) in [
        (vec!["--image", "nowhere.png"], "--image nowhere.png"),
        (vec!["--synthetic-image", "12by4"], "WIDTHxHEIGHT"),
        (
            vec!["--api", "anthropic", "--synthetic-image", "8x8"],
            "use --api openai or openwebui",
        ),
    ] {
        let o = output(bin(dir.path(), &run_args(url, json_s, &extra))).await;
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {all}");
        assert!(all.contains(expect), "{extra:?}: {all}");
    }
}
