//! Pathological and compressed streams through the real client: a hostile server on 127.0.0.1:0
//! that sends exactly the bytes under test (one huge word, a flood without a newline, an unknown
//! Content-Encoding), the mock compressing its stream with each coding, and a child process with
//! a low open-file limit.

use crate::harness::*;
use gsai_load::config::{Plan, WaitTime};
use gsai_load::engine::RunResult;
use gsai_load::metrics::MetricId;
use gsai_load::metrics::{FailureKind, TokenSource};
use gsai_load::mock::{Compress, MockConfig};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n";

/// Serves each connection once: reads the request head, writes `head` (status line and headers,
/// without the blank line), then `body()`'s chunks until the client hangs up. Returns the base
/// URL and the number of body bytes written so far.
async fn hostile<F>(head: &'static str, body: F) -> (String, Arc<AtomicU64>)
where
    F: Fn() -> Box<dyn Iterator<Item = Vec<u8>> + Send> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (w, body) = (w.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|x| x == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!("{head}\r\n");
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in body() {
                    if sock.write_all(&chunk).await.is_err() {
                        return;
                    }
                    w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (url, written)
}

fn one_request(url: &str) -> Plan {
    let mut p = Plan::new(url, "m");
    p.users = 1;
    p.spawn_rate = 100.0;
    p.wait = WaitTime::None;
    p.max_requests = Some(1);
    p.run_time = Some(Duration::from_secs(120));
    p.stop_timeout = Duration::from_secs(5);
    p
}

fn word_event(len: usize) -> Vec<u8> {
    let mut e = b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec();
    e.resize(e.len() + len, b'a');
    e.extend_from_slice(b"\"}}]}\n\ndata: [DONE]\n\n");
    e
}

fn only_failure(r: &RunResult) -> (FailureKind, String) {
    assert_eq!(total(r).failures, 1, "{:?}", r.stats.failures);
    let (k, _) = r.stats.failures.iter().next().unwrap();
    (k.cause, k.message.clone())
}

/// One event holding a 400,000-letter word: counting it took ~54 s on a runtime thread, freezing
/// timers, the console and Ctrl-C. Now the request gets its tokenizer count while a timer on the
/// same (single-threaded) runtime keeps its schedule.
#[tokio::test(flavor = "current_thread")]
async fn a_huge_word_is_counted_without_stalling_the_runtime() {
    let (url, _) = hostile(SSE_HEAD, || Box::new(std::iter::once(word_event(400_000)))).await;
    let ticking = tokio::spawn(async {
        let mut worst = Duration::ZERO;
        loop {
            let due = Instant::now() + Duration::from_millis(10);
            tokio::time::sleep_until(due.into()).await;
            worst = worst.max(Instant::now().saturating_duration_since(due));
            if worst > Duration::from_secs(1) {
                return worst;
            }
            tokio::task::yield_now().await;
            if TICK_STOP.load(Ordering::Relaxed) {
                return worst;
            }
        }
    });
    let r = tokio::time::timeout(Duration::from_secs(120), run(one_request(&url)))
        .await
        .expect("bounded");
    TICK_STOP.store(true, Ordering::Relaxed);
    let worst = ticking.await.unwrap();
    let t = total(&r);
    assert_eq!((t.requests, t.failures), (1, 0), "{:?}", r.stats.failures);
    assert_eq!(t.token_sources[TokenSource::Tokenizer.index()], 1);
    let tokens = t.metric(MetricId::OutputTokens).quantile(0.5).unwrap();
    // cl100k merges runs of 'a' into tokens of a few letters; pieces cut at 256 bytes keep that.
    assert!((20_000..=200_000).contains(&tokens), "{tokens}");
    // Tolerance for a loaded 2-core machine; the old code held the only thread for 13-54 s.
    assert!(
        worst < Duration::from_millis(500),
        "timer late by {worst:?}"
    );
}

static TICK_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A 1 MB word overflowed tiktoken's stack and killed the user task (here: the test process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_word_does_not_crash() {
    let (url, _) = hostile(SSE_HEAD, || {
        Box::new(std::iter::once(word_event(1_000_000)))
    })
    .await;
    let r = tokio::time::timeout(Duration::from_secs(120), run(one_request(&url)))
        .await
        .expect("bounded");
    let t = total(&r);
    assert_eq!((t.requests, t.failures), (1, 0), "{:?}", r.stats.failures);
    assert_eq!(t.token_sources[TokenSource::Tokenizer.index()], 1);
}

/// A server that never ends a line: the request fails as too_large once the parser's limit is
/// passed and the connection is dropped, so the server gets to write only about that much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_without_newline_fails_as_too_large_in_bounded_memory() {
    let (url, written) = hostile(SSE_HEAD, || {
        let mut first = Some(b"data: ".to_vec());
        // Up to 1 GiB, in 64 KiB writes.
        Box::new((0..16 * 1024).map(move |_| first.take().unwrap_or_else(|| vec![b'x'; 64 * 1024])))
    })
    .await;
    let began = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(60), run(one_request(&url)))
        .await
        .expect("bounded");
    let (kind, message) = only_failure(&r);
    assert_eq!(kind, FailureKind::TooLarge, "{message}");
    assert!(
        message.starts_with("Response too large: SSE event larger than"),
        "{message}"
    );
    let limit = gsai_load::sse::DEFAULT_MAX_EVENT_BYTES as u64;
    // What the client read is at most the limit plus one read; socket buffers hold a few MB more.
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < limit + 32 * 1024 * 1024, "server wrote {sent} bytes");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "{:?}",
        began.elapsed()
    );
}

/// An encoding the client cannot decode is named, not reported as "Stream ended without any event".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_content_encoding_is_named() {
    const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: compress\r\nconnection: close\r\n";
    let (url, _) = hostile(HEAD, || {
        Box::new(std::iter::once(b"\x1f\x9d\x90garbage".to_vec()))
    })
    .await;
    let r = run(one_request(&url)).await;
    assert_eq!(
        only_failure(&r),
        (
            FailureKind::MalformedEvent,
            "unsupported Content-Encoding: compress".to_string()
        )
    );
}

/// Each coding through the client against the mock, which flushes after every event: exact
/// token counts, and TTFT measured when the first token's bytes arrive (200 ms), long before
/// the stream's end (~1 s), which only incremental decoding gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_content_encoding_is_decoded_incrementally() {
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(200),
        itl: Duration::from_millis(200),
        tokens: 5,
        compress: Compress::Auto,
        ..fast_config()
    })
    .await;
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let mut p = plan(&mock, 2, 4);
        p.accept_encoding = coding.to_string();
        let r = run(p).await;
        let t = total(&r);
        assert_eq!(
            (t.requests, t.failures),
            (4, 0),
            "{coding}: {:?}",
            r.stats.failures
        );
        assert_eq!(t.metric(MetricId::OutputTokens).sum(), 20, "{coding}");
        assert_eq!(t.token_sources[TokenSource::Usage.index()], 4, "{coding}");
        let ttft = ms(t.metric(MetricId::Ttft).quantile(0.99).unwrap());
        let e2e = ms(t.metric(MetricId::ResponseTime).quantile(0.5).unwrap());
        // Generous for a loaded 2-core machine, yet far below the ~1,000 ms a buffered body gives.
        assert!((190.0..600.0).contains(&ttft), "{coding}: TTFT {ttft} ms");
        assert!(e2e >= 950.0, "{coding}: E2E {e2e} ms");
    }
    assert_eq!(mock.counters().ok, 16);
    mock.shutdown().await;
}

/// With fewer open files allowed than users need, the start-up warning names `ulimit -n`, the
/// connections past the limit fail as local_resource, and the summary says they are not the
/// server's. With a higher hard limit, the start-up raise lifts the soft one and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_open_files_are_local_failures() {
    let mock = start_mock(fast_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let run_with_limits = |soft: u64, hard: u64| {
        let json = dir.path().join(format!("r{soft}-{hard}.json"));
        let mut c = bin(
            dir.path(),
            &[
                "--headless",
                "--host",
                &mock.base_url(),
                "--model",
                "m",
                "--token",
                TOKEN,
                "-u",
                "200",
                "-r",
                "10000",
                "--wait",
                "constant(0.05)",
                "-t",
                "2s",
                "--print-every",
                "0",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        // SAFETY: setrlimit is async-signal-safe; the child only lowers its own limits.
        unsafe {
            c.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        (c, json)
    };
    let (low, json) = run_with_limits(64, 64);
    let o = output(low).await;
    let out = text(&o);
    assert!(out.contains("ulimit -n 264"), "{out}");
    assert!(
        out.contains("failures were local (too many open files"),
        "{out}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let failures = doc["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "{out}");
    for f in failures {
        assert_eq!(f["kind"], "local_resource", "{f}");
    }

    let (raised, _) = run_with_limits(64, 4096);
    let o = output(raised).await;
    let text = crate::harness::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(!text.contains("ulimit"), "{text}");
    mock.shutdown().await;
}
