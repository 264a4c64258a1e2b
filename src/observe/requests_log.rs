//! `--requests-log FILE.jsonl`: one JSON line per finished request, streamed to disk.
//!
//! The engine hands each ended request to a [`RequestsLog`] without waiting: lines go through
//! a bounded queue to a writer thread, so memory stays bounded whatever the rate, and a disk
//! that cannot keep up costs lines (counted and reported), never the test's timing. A path
//! ending in `.zst` is written zstd-compressed. [`summarize`] reads a log back for
//! `gsai-load report --requests-log`.

use crate::metrics::{Metric, Outcome, RequestRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Lines queued for the writer at most; beyond, lines are dropped and counted.
pub const QUEUE_LINES: usize = 65_536;

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    /// When the request was written, µs since the Unix epoch.
    pub start_unix_us: u64,
    /// The request's name (its stats row).
    pub name: String,
    /// The simulated user (closed loop) or arrival number (open loop).
    pub user: u64,
    /// The worker that sent it (distributed mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// `success`, `failure` or `cancelled`.
    pub outcome: String,
    /// The failure's kind (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// HTTP status, when headers were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time to first byte, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<u64>,
    /// Time to first token, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_us: Option<u64>,
    /// End to end, µs.
    pub e2e_us: u64,
    /// Open loop: how late it started against its schedule, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag_us: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Where the token count came from (`usage`, `tokenizer`, `events`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_source: Option<String>,
    /// The largest gap between token events, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_itl_us: Option<u32>,
    /// Response body bytes.
    pub bytes: u64,
    /// Started during the warm-up (left out of every statistic).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RequestLine {
    /// The line for `rec`; `start_unix_us` places it on the wall clock.
    pub fn of(
        rec: &RequestRecord,
        name: &str,
        user: u64,
        start_unix_us: u64,
        itl_us: &[u32],
        warmup: bool,
    ) -> Self {
        let (outcome, kind) = match &rec.outcome {
            Outcome::Success => ("success", None),
            Outcome::Failure(f) => ("failure", Some(f.kind.as_str().to_string())),
            Outcome::Cancelled => ("cancelled", None),
        };
        Self {
            start_unix_us,
            name: name.to_string(),
            user,
            worker: None,
            outcome: outcome.to_string(),
            kind,
            status: rec.status,
            ttfb_us: rec.ttfb().map(micros),
            ttft_us: rec.ttft().map(micros),
            e2e_us: micros(rec.e2e()),
            schedule_lag_us: rec.schedule_lag().map(micros),
            output_tokens: rec.output_tokens.map(|(n, _)| n),
            token_source: rec.output_tokens.map(|(_, s)| s.as_str().to_string()),
            max_itl_us: itl_us.iter().copied().max(),
            bytes: rec.content_bytes,
            warmup,
        }
    }
}

/// Why the log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RequestsLogError {
    /// Creating or writing the file failed.
    #[error("--requests-log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not a request line.
    #[error("{path}, line {line}: not a requests-log line ({reason})")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// What a finished log holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTotals {
    /// Lines written.
    pub lines: u64,
    /// Lines dropped because the writer fell behind.
    pub dropped: u64,
}

/// The path a process writes: `path` itself, or with `-WORKER` before the extension(s) for a
/// distributed worker (`requests.jsonl` → `requests-w1.jsonl`, `r.jsonl.zst` → `r-w1.jsonl.zst`).
pub fn path_for(path: &Path, worker: Option<&str>) -> PathBuf {
    let Some(worker) = worker else {
        return path.to_path_buf();
    };
    let safe: String = worker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let (stem, ext) = match file.find('.') {
        Some(i) if i > 0 => file.split_at(i),
        _ => (file.as_str(), ""),
    };
    path.with_file_name(format!("{stem}-{safe}{ext}"))
}

/// The open log: cheap to share; [`RequestsLog::push`] never blocks.
#[derive(Debug)]
pub struct RequestsLog {
    /// Lines, then `None` to end.
    tx: SyncSender<Option<RequestLine>>,
    dropped: AtomicU64,
    worker: Option<String>,
}

/// The writer thread; [`LogWriter::finish`] ends it and waits until the file is complete.
#[derive(Debug)]
pub struct LogWriter {
    thread: JoinHandle<Result<u64, std::io::Error>>,
    path: PathBuf,
}

impl RequestsLog {
    /// Creates the file (with the worker's suffix) and starts its writer.
    pub fn create(
        path: &Path,
        worker: Option<&str>,
    ) -> Result<(std::sync::Arc<RequestsLog>, LogWriter), RequestsLogError> {
        let path = path_for(path, worker);
        let io = |source| RequestsLogError::Io {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(io)?;
        let zst = path.extension().is_some_and(|e| e == "zst");
        let out: Box<dyn Write + Send> = if zst {
            Box::new(zstd::Encoder::new(file, 3).map_err(io)?.auto_finish())
        } else {
            Box::new(file)
        };
        let (tx, rx) = sync_channel::<Option<RequestLine>>(QUEUE_LINES);
        let thread = std::thread::Builder::new()
            .name("requests-log".into())
            .spawn(move || {
                let mut out = BufWriter::with_capacity(1 << 16, out);
                let mut n = 0u64;
                for line in rx.iter().map_while(|l| l) {
                    serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")?;
                    n += 1;
                }
                out.flush()?;
                drop(out);
                Ok(n)
            })
            .map_err(io)?;
        let log = std::sync::Arc::new(RequestsLog {
            tx,
            dropped: AtomicU64::new(0),
            worker: worker.map(String::from),
        });
        Ok((log, LogWriter { thread, path }))
    }

    /// Queues one line; when the queue is full the line is dropped and counted.
    pub fn push(&self, mut line: RequestLine) {
        line.worker.clone_from(&self.worker);
        match self.tx.try_send(Some(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl LogWriter {
    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the log once the test has ended: waits until every line queued is on disk, and
    /// says how many were written and dropped. Lines pushed later are dropped. Blocks: call it
    /// off the async threads.
    pub fn finish(self, log: &RequestsLog) -> Result<LogTotals, RequestsLogError> {
        // A blocking send: the end marker must not be lost to a full queue.
        let _ = log.tx.send(None);
        let dropped = log.dropped();
        let path = self.path;
        let lines = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")))
            .map_err(|source| RequestsLogError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(LogTotals { lines, dropped })
    }
}

/// Ends a log off the async threads once its test is over, and says in one line what it
/// holds (or why it is incomplete), for stderr.
pub async fn close(log: std::sync::Arc<RequestsLog>, writer: LogWriter) -> String {
    let path = writer.path().display().to_string();
    let done = tokio::task::spawn_blocking(move || writer.finish(&log)).await;
    match done {
        Ok(Ok(t)) if t.dropped > 0 => format!(
            "warning: --requests-log {path}: {} lines written, {} dropped (the disk did not keep up)",
            t.lines, t.dropped
        ),
        Ok(Ok(t)) => format!("requests log: {} lines in {path}", t.lines),
        Ok(Err(e)) => format!("warning: {e}"),
        Err(e) => format!("warning: --requests-log {path}: the writer failed: {e}"),
    }
}

/// A log read back: counts and latency distributions per request name.
#[derive(Debug, Default)]
pub struct LogSummary {
    /// Per name: the figures of its lines.
    pub names: BTreeMap<String, NameSummary>,
    /// Lines started in the warm-up (left out of the figures).
    pub warmup: u64,
}

/// One name's lines.
#[derive(Debug, Default)]
pub struct NameSummary {
    /// Successes plus failures (as the stats' request count).
    pub requests: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Cancelled at stop.
    pub cancelled: u64,
    /// TTFT of successes, µs.
    pub ttft_us: Metric,
    /// E2E of successes, µs.
    pub e2e_us: Metric,
    /// Output tokens of successes.
    pub output_tokens: u64,
}

/// Reads a log (plain or `.zst`) and sums it up.
pub fn summarize(path: &Path) -> Result<LogSummary, RequestsLogError> {
    let io = |source| RequestsLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(BufReader::new(zstd::Decoder::new(file).map_err(io)?))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut s = LogSummary::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: RequestLine = serde_json::from_str(&line).map_err(|e| RequestsLogError::Line {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            reason: e.to_string(),
        })?;
        if r.warmup {
            s.warmup += 1;
            continue;
        }
        let n = s.names.entry(r.name.clone()).or_default();
        match r.outcome.as_str() {
            "cancelled" => n.cancelled += 1,
            "failure" => {
                n.requests += 1;
                *n.failures.entry(r.kind.unwrap_or_default()).or_default() += 1;
            }
            _ => {
                n.requests += 1;
                if let Some(t) = r.ttft_us {
                    n.ttft_us.record(t);
                }
                n.e2e_us.record(r.e2e_us);
                n.output_tokens += r.output_tokens.unwrap_or(0);
            }
        }
    }
    Ok(s)
}

/// The summary as a table for the console.
pub fn table(s: &LogSummary) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "Name",
        "# reqs",
        "# fails",
        "cancelled",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "E2E p50 ms",
        "E2E p99 ms",
        "out tokens",
        "failures by kind",
    ]);
    let ms = |m: &Metric, q: f64| {
        m.quantile(q)
            .map_or_else(|| "-".to_string(), |v| format!("{:.1}", v as f64 / 1000.0))
    };
    for (name, n) in &s.names {
        let fails: u64 = n.failures.values().sum();
        let kinds = n
            .failures
            .iter()
            .map(|(k, c)| format!("{k} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        t.add_row([
            name.clone(),
            n.requests.to_string(),
            fails.to_string(),
            n.cancelled.to_string(),
            ms(&n.ttft_us, 0.5),
            ms(&n.ttft_us, 0.99),
            ms(&n.e2e_us, 0.5),
            ms(&n.e2e_us, 0.99),
            n.output_tokens.to_string(),
            kinds,
        ]);
    }
    let mut out = format!("{t}\n");
    if s.warmup > 0 {
        out.push_str(&format!("{} warm-up requests left out\n", s.warmup));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Failure, FailureKind, TokenSource};
    use std::time::{Duration, Instant};

    fn rec(outcome: Outcome) -> RequestRecord {
        let t0 = Instant::now();
        let mut r = RequestRecord::bare(0, t0, t0 + Duration::from_millis(30), outcome);
        r.headers = Some(t0 + Duration::from_millis(2));
        r.first_token = Some(t0 + Duration::from_millis(10));
        r.output_tokens = Some((5, TokenSource::Usage));
        r.status = Some(200);
        r.content_bytes = 321;
        r
    }

    #[test]
    fn worker_suffix_goes_before_the_extensions() {
        let p = Path::new("/tmp/out/requests.jsonl.zst");
        assert_eq!(path_for(p, None), p);
        assert_eq!(
            path_for(p, Some("host_1/x")),
            Path::new("/tmp/out/requests-host_1_x.jsonl.zst")
        );
        assert_eq!(path_for(Path::new("log"), Some("w")), Path::new("log-w"));
    }

    #[test]
    fn lines_round_trip_plain_and_zstd() {
        let dir = std::env::temp_dir().join(format!("gsai-reqlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["r.jsonl", "r.jsonl.zst"] {
            let (log, writer) = RequestsLog::create(&dir.join(file), Some("w1")).unwrap();
            let path = writer.path().to_path_buf();
            for i in 0..100u64 {
                let outcome = if i % 10 == 0 {
                    Outcome::Failure(Failure::new(FailureKind::HttpStatus, "HTTP 500"))
                } else {
                    Outcome::Success
                };
                log.push(RequestLine::of(
                    &rec(outcome),
                    "/chat",
                    i,
                    1_000 + i,
                    &[4, 9],
                    false,
                ));
            }
            log.push(RequestLine::of(
                &rec(Outcome::Success),
                "/chat",
                0,
                1,
                &[],
                true,
            ));
            let totals = writer.finish(&log).unwrap();
            assert_eq!(
                totals,
                LogTotals {
                    lines: 101,
                    dropped: 0
                }
            );
            let s = summarize(&path).unwrap();
            let n = &s.names["/chat"];
            assert_eq!((n.requests, s.warmup), (100, 1));
            assert_eq!(n.failures["http_status"], 10);
            assert_eq!(n.e2e_us.count(), 90);
            assert_eq!(n.output_tokens, 450);
            let first = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            if file.ends_with(".jsonl") {
                let line = first.lines().next().unwrap().unwrap();
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["worker"], "w1");
                assert_eq!(v["max_itl_us"], 9);
                assert_eq!(v["kind"], "http_status");
            }
            assert!(table(&s).contains("http_status 10"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_line_is_named() {
        let path =
            std::env::temp_dir().join(format!("gsai-reqlog-bad-{}.jsonl", std::process::id()));
        std::fs::write(&path, "{\"nope\":1}\n").unwrap();
        let e = summarize(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
