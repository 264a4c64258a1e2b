//! The scraper: one task per metrics URL that GETs it every interval from the test's start to
//! its end (plus one last time at the end), parses it and hands the samples to the shared
//! [`Collector`]. The endpoint is a possibly hostile peer: every scrape has a time limit, the
//! body a size cap (the peer's Content-Length is only used to refuse early, never to size a
//! buffer), and no credential is ever sent — not the test's bearer token, not anything else.
//! A failed scrape is recorded with its cause and never stops the test.

use super::parse;
use super::series::{Bounds, Collector, ServerMetrics};
use crate::client::{Target, TlsOptions};
use crate::metrics::clock::unix_now_s;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, HOST, USER_AGENT};
use regex::Regex;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Receives each first-time scrape problem as a sentence (the driver prints it).
pub type WarnFn = Arc<dyn Fn(&str) + Send + Sync>;

/// One metrics endpoint, checked.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The URL as given.
    pub url: String,
    target: Target,
    /// Origin-form path and query.
    path: String,
}

/// Why a metrics URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Not an http(s) URL.
    #[error("--server-metrics {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl Endpoint {
    /// Checks a metrics URL such as `http://127.0.0.1:8000/metrics` (a URL without a path gets
    /// `/metrics`).
    pub fn parse(url: &str, tls: &TlsOptions) -> Result<Self, EndpointError> {
        let bad = |reason: String| EndpointError::Url {
            url: url.to_string(),
            reason,
        };
        let target = Target::parse(url)
            .map_err(|e| bad(e.to_string()))?
            .with_tls(tls)
            .map_err(|e| bad(e.to_string()))?;
        let uri: hyper::Uri = url.trim().parse().map_err(|e| bad(format!("{e}")))?;
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/metrics".to_string(),
            Some(p) => p.to_string(),
        };
        Ok(Self {
            url: url.trim().to_string(),
            target,
            path,
        })
    }
}

/// What to scrape and within which bounds.
#[derive(Clone)]
pub struct ScrapeOptions {
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Time between scrapes.
    pub interval: Duration,
    /// Keep only series whose name matches (all numeric series when `None`).
    pub filter: Option<Regex>,
    /// Time limit of one scrape (connect, headers, body).
    pub timeout: Duration,
    /// Largest body read; a larger one fails the scrape.
    pub max_body_bytes: usize,
    /// Series and point caps.
    pub bounds: Bounds,
    /// Where first-time problems go.
    pub warn: Option<WarnFn>,
}

impl std::fmt::Debug for ScrapeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeOptions")
            .field("endpoints", &self.endpoints)
            .field("interval", &self.interval)
            .field("filter", &self.filter)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// Starts scrapers.
pub struct Scraper;

impl Scraper {
    /// Starts scraping every endpoint now (the test's start), each every interval, until
    /// [`ScrapeHandle::finish`]. Must be called inside a Tokio runtime.
    pub fn start(opts: ScrapeOptions) -> ScrapeHandle {
        let urls = opts.endpoints.iter().map(|e| e.url.clone()).collect();
        let collector = Arc::new(Mutex::new(Collector::new(urls, opts.bounds)));
        let stop = CancellationToken::new();
        let opts = Arc::new(opts);
        let tasks = (0..opts.endpoints.len())
            .map(|i| {
                tokio::spawn(scrape_loop(
                    i,
                    opts.clone(),
                    collector.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        ScrapeHandle {
            collector,
            stop,
            tasks,
        }
    }
}

/// A running scraper. Dropping it stops the scrapes.
pub struct ScrapeHandle {
    collector: Arc<Mutex<Collector>>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ScrapeHandle {
    /// Stops scraping (after one last scrape of each endpoint, within its time limit) and
    /// returns everything gathered.
    pub async fn finish(mut self) -> ServerMetrics {
        self.stop.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let gathered = self.lock().snapshot();
        gathered
    }

    /// A view of what is being gathered, for live displays; it outlives the handle.
    pub fn view(&self) -> ScrapeView {
        ScrapeView(self.collector.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collector> {
        // A panic while holding the lock leaves data that is still consistent enough to read.
        self.collector.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A read-only view of a running (or finished) scraper's collection.
#[derive(Clone)]
pub struct ScrapeView(Arc<Mutex<Collector>>);

impl ScrapeView {
    /// Runs `f` on what was gathered so far, under a short lock (no `.await` inside).
    pub fn with<R>(&self, f: impl FnOnce(&Collector) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for ScrapeHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn scrape_loop(
    i: usize,
    opts: Arc<ScrapeOptions>,
    collector: Arc<Mutex<Collector>>,
    stop: CancellationToken,
) {
    let Some(endpoint) = opts.endpoints.get(i) else {
        return;
    };
    let mut ticks = tokio::time::interval(opts.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.cancelled() => true,
        };
        let at = unix_now_s();
        let outcome = scrape_once(endpoint, &opts).await;
        let note = {
            let mut c = collector.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Ok((samples, problem)) => {
                    let kept = match &opts.filter {
                        Some(re) => samples
                            .into_iter()
                            .filter(|s| re.is_match(&s.name))
                            .collect(),
                        None => samples,
                    };
                    let mut note = c.record(i, at, kept, last);
                    if let Some(p) = problem {
                        let cause = format!("part of the response was skipped: {p}");
                        if c.fail(i, at, &cause) {
                            note = note.or(Some(cause));
                        }
                    }
                    note
                }
                Err(cause) => c.fail(i, at, &cause).then_some(cause),
            }
        };
        if let (Some(note), Some(warn)) = (note, &opts.warn) {
            warn(&format!(
                "--server-metrics {}: {note} (the test goes on)",
                endpoint.url
            ));
        }
        if last {
            return;
        }
    }
}

/// One GET of the endpoint: the parsed samples and what part was skipped, or why it failed.
async fn scrape_once(
    e: &Endpoint,
    opts: &ScrapeOptions,
) -> Result<(Vec<parse::Sample>, Option<String>), String> {
    let body = match tokio::time::timeout(opts.timeout, fetch(e, opts.max_body_bytes)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(format!(
                "no complete answer within {} (the scrape time limit)",
                humantime::format_duration(opts.timeout)
            ))
        }
    };
    parse::parse(&body).map_err(|e| e.to_string())
}

async fn fetch(e: &Endpoint, max_body_bytes: usize) -> Result<Bytes, String> {
    let t = &e.target;
    // The client's connection setup (TCP, TLS for https with the run's trust settings); the
    // scrape drives the connection on its own task, which ends with the connection.
    let (mut sender, driver) = t.connect().await.map_err(|err| err.to_string())?;
    tokio::spawn(driver);
    let req = hyper::Request::get(e.path.as_str())
        .header(HOST, t.authority.clone())
        .header(
            ACCEPT,
            "text/plain;version=0.0.4;q=0.9,text/plain;q=0.5,*/*;q=0.1",
        )
        .header(ACCEPT_ENCODING, "identity")
        .header(
            USER_AGENT,
            HeaderValue::from_static(concat!("gsai-load/", env!("CARGO_PKG_VERSION"))),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|err| format!("cannot build the request: {err}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|err| format!("request failed: {err}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP status {}", status.as_u16()));
    }
    if let Some(enc) = resp.headers().get(CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        if !enc.is_empty() && enc != "identity" {
            return Err(format!(
                "the body is {enc}-encoded although identity was asked for"
            ));
        }
    }
    let too_large =
        || format!("the response is larger than {max_body_bytes} bytes (the scrape size cap)");
    let claimed = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if claimed.is_some_and(|n| n > max_body_bytes as u64) {
        return Err(too_large());
    }
    match Limited::new(resp.into_body(), max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(format!("reading the body failed: {err}")),
    }
}
