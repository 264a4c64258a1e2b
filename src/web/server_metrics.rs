//! `--server-metrics` in the web UI: the scrape options every test started from the UI uses,
//! the current test's scraper and live collection, the last test's finished one, and the
//! `GET /stats/server-metrics` answer the page charts (the well-known series only). The
//! controller starts and finishes the scraper with each test; on a master, the master scrapes.

use crate::engine::RunResult;
use crate::observe::{known, ScrapeHandle, ScrapeOptions, ScrapeView, Scraper, ServerMetrics};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    options: Option<ScrapeOptions>,
    /// The running test's scraper.
    handle: Option<ScrapeHandle>,
    /// Its collection, readable while it runs.
    live: Option<ScrapeView>,
    /// The last finished test's.
    last: ServerMetrics,
}

/// What the web UI's tests scrape, shared by the controller and the API.
#[derive(Clone, Default)]
pub struct ServerWatch(Arc<Mutex<Inner>>);

impl ServerWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Scrapes with `options` during every test from now on (none: no scraping).
    pub fn configure(&self, options: Option<ScrapeOptions>) {
        self.lock().options = options;
    }

    /// Starts scraping for a test that has just started, if configured.
    pub fn start(&self) {
        let mut inner = self.lock();
        let handle = inner.options.clone().map(Scraper::start);
        inner.live = handle.as_ref().map(ScrapeHandle::view);
        inner.handle = handle;
        inner.last = ServerMetrics::default();
    }

    /// Ends the test's scraping (one last scrape) and keeps what it gathered.
    pub async fn finish(&self) {
        let handle = self.lock().handle.take();
        let Some(handle) = handle else { return };
        let gathered = handle.finish().await;
        let mut inner = self.lock();
        inner.live = None;
        inner.last = gathered;
    }

    /// The running test's collection so far, or the last test's.
    pub fn current(&self) -> ServerMetrics {
        let (live, last) = {
            let inner = self.lock();
            (inner.live.clone(), inner.last.clone())
        };
        match live {
            Some(v) => v.with(|c| c.snapshot()),
            None => last,
        }
    }

    /// Whether tests scrape at all.
    pub fn enabled(&self) -> bool {
        self.lock().options.is_some()
    }

    /// The page's data: the well-known series of each endpoint, the server's TTFT over the
    /// test so far beside the client's (of `result`, the test's figures so far), and the
    /// scrape failures.
    pub fn page_data(&self, result: Option<&RunResult>) -> Value {
        let live = self.lock().live.clone();
        let (overviews, ttft, errors) = match live {
            Some(v) => v.with(|c| {
                (
                    known::overviews(c.series()),
                    known::server_ttft(c.series()),
                    c.errors().to_vec(),
                )
            }),
            None => {
                let inner = self.lock();
                (
                    known::overviews(&inner.last.series),
                    known::server_ttft(&inner.last.series),
                    inner.last.errors.clone(),
                )
            }
        };
        let comparisons = result.map_or_else(Vec::new, |r| crate::report::server::compare(r, ttft));
        json!({
            "enabled": self.enabled(),
            "overviews": overviews,
            "comparisons": comparisons,
            "errors": errors,
        })
    }
}
