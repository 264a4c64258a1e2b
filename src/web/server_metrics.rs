//! `--server-metrics` in the web UI: the scrape options every test started from the UI uses,
//! the current test's live collection, the last test's finished one, and the
//! `GET /stats/server-metrics` answer the page charts (the well-known series only).

use crate::engine::RunResult;
use crate::observe::{known, ScrapeHandle, ScrapeOptions, ScrapeView, Scraper, ServerMetrics};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    options: Option<ScrapeOptions>,
    /// The running test's collection.
    live: Option<ScrapeView>,
    /// The last finished test's.
    last: ServerMetrics,
}

/// What the web UI's tests scrape, shared by the runner and the API.
#[derive(Clone, Default)]
pub struct ServerWatch(Arc<Mutex<Inner>>);

impl ServerWatch {
    /// Scrapes with `options` during every test (none: no scraping).
    pub fn new(options: Option<ScrapeOptions>) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            options,
            ..Inner::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts scraping for a new test, if configured.
    pub(super) fn start(&self) -> Option<ScrapeHandle> {
        let mut inner = self.lock();
        let handle = inner.options.clone().map(Scraper::start);
        inner.live = handle.as_ref().map(ScrapeHandle::view);
        inner.last = ServerMetrics::default();
        handle
    }

    /// Ends the test's scraping and keeps what it gathered.
    pub(super) async fn finish(&self, handle: ScrapeHandle) {
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
