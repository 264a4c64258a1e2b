//! Where the web UI's tests run: in this process (the engine) or over the workers of a
//! distributed master. The controller drives both through [`Runner`] and [`Running`], which
//! have the engine's shape (start, stop, set users, reset, subscribe, wait), so it never needs
//! to know which one it holds. Both scrape `--server-metrics` from a test's start to its end
//! ([`ServerWatch`]).

use super::server_metrics::ServerWatch;
use super::state::WebError;
use crate::cluster::master::{MasterHandle, MasterNode, StartWhen};
use crate::cluster::nodes::WorkerView;
use crate::config::Plan;
use crate::engine::{self, RunHandle, RunResult, Snapshot};
use std::sync::Arc;
use tokio::sync::watch;

/// What starts the web UI's tests.
#[derive(Clone)]
pub struct Runner {
    place: Place,
    server: ServerWatch,
}

#[derive(Clone)]
enum Place {
    /// The engine, in this process.
    Local,
    /// A master's workers (`gsai-load --master` without `--headless`).
    Master(Arc<MasterNode>),
}

impl Runner {
    /// Tests run on the engine, in this process.
    pub fn local() -> Self {
        Self {
            place: Place::Local,
            server: ServerWatch::default(),
        }
    }

    /// Tests run over a master's workers (`gsai-load --master` without `--headless`).
    pub fn master(node: Arc<MasterNode>) -> Self {
        Self {
            place: Place::Master(node),
            server: ServerWatch::default(),
        }
    }

    /// Every test also scrapes these `--server-metrics` endpoints (here: the master scrapes).
    pub fn with_server_metrics(mut self, options: Option<crate::observe::ScrapeOptions>) -> Self {
        self.server = ServerWatch::new(options);
        self
    }

    /// The `--server-metrics` of the current or last test.
    pub fn server_metrics(&self) -> &ServerWatch {
        &self.server
    }

    /// Starts a test of `plan`. A master refuses when no worker is connected.
    pub fn start(&self, plan: Plan) -> Result<Running, WebError> {
        let test = match &self.place {
            Place::Local => Test::Local(engine::start(plan)?),
            Place::Master(node) => Test::Master(node.start_test(plan, StartWhen::Now)?),
        };
        let scrape = self.server.start();
        Ok(Running {
            test,
            scrape: scrape.map(|h| (h, self.server.clone())),
        })
    }

    /// The master's workers now; `None` in a single process.
    pub fn workers(&self) -> Option<Arc<[WorkerView]>> {
        match &self.place {
            Place::Local => None,
            Place::Master(node) => Some(node.workers().borrow().clone()),
        }
    }

    /// The port workers connect to; `None` in a single process.
    pub fn master_port(&self) -> Option<u16> {
        match &self.place {
            Place::Local => None,
            Place::Master(node) => Some(node.local_addr().port()),
        }
    }

    /// Whether tests run over workers.
    pub fn is_distributed(&self) -> bool {
        matches!(self.place, Place::Master(_))
    }
}

/// A test started by a [`Runner`], with its `--server-metrics` scraper.
pub struct Running {
    test: Test,
    scrape: Option<(crate::observe::ScrapeHandle, ServerWatch)>,
}

enum Test {
    /// On the engine.
    Local(RunHandle),
    /// Over a master's workers.
    Master(MasterHandle),
}

impl Running {
    /// Stops the test (in-flight requests get the plan's stop timeout).
    pub fn stop(&self) {
        match &self.test {
            Test::Local(h) => h.stop(),
            Test::Master(h) => h.stop(),
        }
    }

    /// Cancels in-flight requests now (a local test), or ends the test with the statistics
    /// received so far (over workers): the second Ctrl-C.
    pub fn cancel_now(&self) {
        match &self.test {
            Test::Local(h) => h.cancel_now(),
            Test::Master(h) => h.end_now(),
        }
    }

    /// Changes the number of users and the spawn rate.
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        match &self.test {
            Test::Local(h) => h.set_users(users, spawn_rate),
            Test::Master(h) => h.set_users(users, spawn_rate),
        }
    }

    /// Forgets the statistics so far.
    pub fn reset_stats(&self) {
        match &self.test {
            Test::Local(h) => h.reset_stats(),
            Test::Master(h) => h.reset_stats(),
        }
    }

    /// The once-a-second snapshots; the channel closes when the test is over.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        match &self.test {
            Test::Local(h) => h.subscribe(),
            Test::Master(h) => h.subscribe(),
        }
    }

    /// Waits for the result (and ends the scraping). A master may fail to deliver one (it was
    /// shut down).
    pub async fn wait(self) -> Result<RunResult, WebError> {
        let result = match self.test {
            Test::Local(h) => Ok(h.wait().await),
            Test::Master(h) => h.wait().await.map_err(WebError::from),
        };
        if let Some((handle, watch)) = self.scrape {
            watch.finish(handle).await;
        }
        result
    }
}
