//! `--trace`: a Mooncake trace replayed against the mock (request count, tokens asked for,
//! schedule lag, dropped arrivals) and against a recording server (each request's arrival time
//! against its schedule, the prompt prefixes that shared hash ids produce, `max_tokens`).

use crate::harness::{bin, fast_config, headless_args, output, start_mock, text, TOKEN};
use gsai_load::mock::MockConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Lines of the test trace: enough that a p99 over them is not simply the slowest one.
const LINES: usize = 200;
/// Milliseconds between two lines in the file (about 4 s of trace, 2 s at speed 2: 100
/// requests/s, the rate of the open-loop test in load.rs).
const GAP_MS: u64 = 20;
/// Replay speed.
const SPEED: f64 = 2.0;
/// The stated tolerance: schedule lag p99 below this on a loaded CI machine.
const LAG_P99_MS: f64 = 50.0;
/// The generator's own runtime lag p99 (its self-check, measured apart from the schedule) past
/// which the machine stalled the process: on the shared 2-core development machine (load
/// average 6 and more) the OS deschedules it for 70–300 ms now and then, and every arrival due
/// meanwhile is late. Then the run says so (its generator verdict), and the test asks only
/// that the schedule was caught up within [`STALLED_LAG_P99_MS`].
const STALLED_LOOP_LAG_MS: f64 = 20.0;
/// The bound on schedule lag p99 when the generator saw itself stalled.
const STALLED_LAG_P99_MS: f64 = 1000.0;

/// The schedule-lag p99 a run is held to: the stated tolerance, unless its own self-check saw
/// the process stalled by the machine.
fn lag_tolerance_ms(doc: &Value) -> f64 {
    let loop_lag = doc["generator"]["loop_lag_p99_ms"].as_f64().unwrap_or(0.0);
    if loop_lag < STALLED_LOOP_LAG_MS {
        LAG_P99_MS
    } else {
        eprintln!("note: the generator's runtime lag p99 was {loop_lag} ms (the machine stalled it): schedule lag held to {STALLED_LAG_P99_MS} ms");
        STALLED_LAG_P99_MS
    }
}

/// Line i's hash ids and input length: four groups sharing prefixes in known ways.
fn shape(i: usize) -> (Vec<u64>, u64) {
    match i % 4 {
        0 => (vec![1, 2, 3], 1300),
        1 => (vec![1, 2, 4], 1400),
        2 => (vec![1, 5], 700),
        _ => (vec![], 300),
    }
}

/// Line i's output length: unique, so a request body names its line.
fn output_len(i: usize) -> u64 {
    5 + i as u64
}

fn write_trace(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for i in 0..LINES {
        let (ids, input) = shape(i);
        let ids = if ids.is_empty() {
            String::new()
        } else {
            format!(", \"hash_ids\": {ids:?}")
        };
        text.push_str(&format!(
            "{{\"timestamp\": {}, \"input_length\": {input}, \"output_length\": {}{ids}}}\n",
            i as u64 * GAP_MS,
            output_len(i)
        ));
    }
    let path = dir.join("trace.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The two replays run one after the other, not beside each other: each is a load test of its own
/// on a 2-core machine, and the schedule-lag tolerance is stated for one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_replays_on_schedule_against_the_mock_and_a_recorder() {
    replays_every_line_on_time_against_the_mock().await;
    sends_on_schedule_with_shared_prefixes_and_max_tokens().await;
}

async fn replays_every_line_on_time_against_the_mock() {
    let mock = start_mock(MockConfig {
        tokens: 1000,
        itl: Duration::ZERO,
        ..fast_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(dir.path());
    let json = dir.path().join("out.json");
    let url = mock.base_url();
    let (trace_s, json_s) = (trace.to_str().unwrap(), json.to_str().unwrap());
    let args = headless_args(
        &url,
        &[
            "--token",
            TOKEN,
            "--api",
            "openai",
            "--trace",
            trace_s,
            "--trace-speed",
            "2",
            "--json",
            json_s,
            "-t",
            "60s",
        ],
    );
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = mock.counters();
    assert_eq!(c.requests, LINES as u64, "{c:?}");
    assert_eq!(c.ok, LINES as u64, "{c:?}");
    let asked: u64 = (0..LINES).map(output_len).sum();
    assert_eq!(
        c.tokens_sent, asked,
        "the mock honours max_tokens = output_length"
    );
    let doc = read_json(&json);
    assert_eq!(doc["stop_reason"], "trace_complete", "{}", text(&o));
    assert_eq!(doc["summary"]["requests"], LINES as u64);
    assert_eq!(doc["summary"]["dropped"], 0);
    assert_eq!(doc["summary"]["output_tokens"], asked);
    let lag = &doc["metrics"]["schedule_lag_ms"];
    assert_eq!(lag["count"], LINES as u64);
    assert!(
        lag["p99"].as_f64().unwrap() < lag_tolerance_ms(&doc),
        "schedule lag {lag}"
    );
    let span_s = (LINES as u64 - 1) as f64 * GAP_MS as f64 / 1000.0 / SPEED;
    let took = doc["duration_s"].as_f64().unwrap();
    assert!(
        took >= span_s && took < span_s + 10.0,
        "{took}s for a {span_s}s trace"
    );
    assert_eq!(doc["plan"]["trace"]["speed"], 2.0);
    mock.shutdown().await;
}

#[tokio::test]
async fn trace_drops_arrivals_past_max_concurrency() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(400),
        ..fast_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("burst.jsonl");
    let line = "{\"timestamp\": 0, \"input_length\": 8, \"output_length\": 2}\n";
    std::fs::write(&trace, line.repeat(5)).unwrap();
    let json = dir.path().join("out.json");
    let url = mock.base_url();
    let (trace_s, json_s) = (trace.to_str().unwrap(), json.to_str().unwrap());
    let args = headless_args(
        &url,
        &[
            "--token",
            TOKEN,
            "--trace",
            trace_s,
            "--max-concurrency",
            "1",
            "--json",
            json_s,
            "-t",
            "60s",
        ],
    );
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc = read_json(&json);
    assert_eq!(doc["summary"]["requests"], 1, "{}", text(&o));
    assert_eq!(doc["summary"]["dropped"], 4);
    assert_eq!(mock.counters().requests, 1);
    mock.shutdown().await;
}

#[tokio::test]
async fn trace_bad_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bad.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 8, \"output_length\": 2}\n\n{\"timestamp\": 5, \"input_length\": 8}\n",
    )
    .unwrap();
    let trace_s = trace.to_str().unwrap();
    let args = headless_args("http://127.0.0.1:9", &["--trace", trace_s]);
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = text(&o);
    assert!(
        err.contains(&format!("--trace {trace_s}:3:")) && err.contains("output_length"),
        "{err}"
    );
    let args = headless_args("http://127.0.0.1:9", &["--trace", trace_s, "--rate", "5"]);
    let o = output(bin(dir.path(), &args)).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("--trace: cannot be combined with --rate"),
        "{}",
        text(&o)
    );
}

/// Each request's arrival time and body.
type Seen = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A server that keeps each request's arrival time and body, and answers 401.
struct BodyRecorder {
    url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl BodyRecorder {
    async fn start() -> BodyRecorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 65536];
                    let mut at = None;
                    loop {
                        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
                        if let Some(end) = head_end {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                let body = buf[end + 4..end + 4 + len].to_vec();
                                kept.lock()
                                    .unwrap()
                                    .push((at.unwrap_or_else(Instant::now), body));
                                break;
                            }
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                at.get_or_insert_with(Instant::now);
                                buf.extend_from_slice(&chunk[..n]);
                            }
                        }
                    }
                    let _ = conn
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        BodyRecorder { url, seen, task }
    }
}

impl Drop for BodyRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The words of the user message of a request body.
fn prompt_words(body: &Value) -> Vec<String> {
    body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect()
}

async fn sends_on_schedule_with_shared_prefixes_and_max_tokens() {
    let server = BodyRecorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(dir.path());
    let trace_s = trace.to_str().unwrap();
    let json = dir.path().join("out.json");
    let json_s = json.to_str().unwrap();
    let args = headless_args(
        &server.url,
        &[
            "--api",
            "openai",
            "--trace",
            trace_s,
            "--trace-speed",
            "2",
            "-t",
            "60s",
            "--json",
            json_s,
        ],
    );
    let o = output(bin(dir.path(), &args)).await;
    let doc = read_json(&json);
    // Every request is answered 401: the run fails (1), it is not refused (2).
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), LINES, "one request per line");
    // Each body names its line by max_tokens = output_length.
    let mut by_line: Vec<Option<(Instant, Value)>> = vec![None; LINES];
    for (at, body) in seen {
        let v: Value = serde_json::from_slice(&body).unwrap();
        let line = (v["max_tokens"].as_u64().unwrap() - 5) as usize;
        assert!(by_line[line].is_none(), "line {line} sent twice");
        by_line[line] = Some((at, v));
    }
    let by_line: Vec<(Instant, Value)> = by_line.into_iter().map(Option::unwrap).collect();
    // Arrival times against the schedule, relative to the first request; the median error
    // (a constant offset such as the first connection) is taken out.
    let t0 = by_line[0].0;
    let mut errors_ms: Vec<f64> = by_line
        .iter()
        .enumerate()
        .map(|(i, (at, _))| {
            let actual = at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
            actual - i as f64 * GAP_MS as f64 / SPEED
        })
        .collect();
    let mut sorted = errors_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[LINES / 2];
    for e in &mut errors_ms {
        *e = (*e - median).abs();
    }
    errors_ms.sort_by(f64::total_cmp);
    let p99 = errors_ms[(LINES * 99).div_ceil(100) - 1];
    assert!(
        p99 < lag_tolerance_ms(&doc),
        "send-time error p99 {p99} ms: {errors_ms:?}"
    );
    // Prefixes: equal leading hash ids give equal text, other ids other text.
    let words: Vec<Vec<String>> = by_line.iter().map(|(_, v)| prompt_words(v)).collect();
    let b = 512;
    for (i, w) in words.iter().enumerate() {
        assert_eq!(w.len() as u64, shape(i).1, "line {i}: one word per token");
    }
    assert_eq!(words[0], words[4], "the same ids, the same prompt");
    assert_eq!(words[0], words[LINES - 4], "the same ids, the same prompt");
    assert_eq!(words[0][..2 * b], words[1][..2 * b], "ids 1, 2 shared");
    assert_ne!(
        words[0][2 * b..2 * b + 276],
        words[1][2 * b..2 * b + 276],
        "id 3 is not id 4"
    );
    assert_eq!(words[0][..b], words[2][..b], "id 1 shared");
    assert_ne!(words[0][b..b + 188], words[2][b..], "id 2 is not id 5");
    assert_ne!(words[3], words[7], "lines without ids share nothing");
    assert_ne!(words[3][..300], words[0][..300]);
}
