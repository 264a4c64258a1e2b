//! The live Prometheus exporter: gsai-load's own figures as Prometheus text (`GET /metrics`),
//! built at scrape time from the engine's latest [`Snapshot`] — the same cumulative statistics
//! the console, the web UI and the reports show, merged over the workers on a master.
//!
//! [`families`] says which series there are (the latency histograms derived from the metric
//! catalogue) and encodes them with `prometheus-client`; [`args`] holds `--metrics-port` and
//! `--metrics-host`. What a scrape reads is a [`Source`]: a [`Feed`] that follows the tests of a
//! headless run or a worker, or the web UI's controller. The HTTP side (the web UI's route and
//! the standalone port) lives in `web::metrics`; nothing here listens.

pub mod args;
pub mod buckets;
pub mod families;

pub use args::MetricsArgs;

use crate::engine::{RunState, Snapshot};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What one scrape reads: the latest snapshot of the current or last test.
#[derive(Clone, Debug)]
pub struct Live {
    /// The engine's (or the master's merged) latest snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Whether the test is still running (spawning, running or stopping).
    pub running: bool,
}

/// Where a scrape gets its [`Live`] figures; `None` before the first test.
pub type Source = Arc<dyn Fn() -> Option<Live> + Send + Sync>;

/// The exposition of `live` (no test yet: the build info and `gsai_test_running 0` only).
pub fn render(live: Option<Live>) -> String {
    families::encode(live)
}

/// Follows the snapshots of one test after another (a headless run, a worker's tests): the
/// source of a `--metrics-port` that outlives each test.
#[derive(Clone, Default)]
pub struct Feed(Arc<Mutex<Option<watch::Receiver<Arc<Snapshot>>>>>);

impl Feed {
    /// A feed with no test yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, scrapes read this test's snapshots.
    pub fn follow(&self, snapshots: watch::Receiver<Arc<Snapshot>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshots);
    }

    /// The latest figures of the followed test.
    pub fn live(&self) -> Option<Live> {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let rx = guard.as_ref()?;
        let snapshot = rx.borrow().clone();
        // The engine closes the channel when its run task returns: over, whatever it said last.
        let running = snapshot.state != RunState::Stopped && rx.has_changed().is_ok();
        Some(Live { snapshot, running })
    }

    /// This feed as a scrape [`Source`].
    pub fn source(&self) -> Source {
        let feed = self.clone();
        Arc::new(move || feed.live())
    }
}

#[cfg(test)]
mod tests;
