//! The one test driver: where a test runs — the engine in this process, or the workers of a
//! distributed master — behind one shape (start, stop, cancel now, set users, reset,
//! subscribe, wait). The headless console loop and the web UI's controller both drive a
//! [`Running`] and never need to know which one it holds; a signal reaches either through
//! [`RunStopper`], so there is one shutdown path for every mode.

use crate::cluster::master::{MasterError, MasterHandle, MasterNode, MasterStopper, StartWhen};
use crate::cluster::nodes::WorkerView;
use crate::config::Plan;
use crate::engine::{self, EngineError, EngineHooks, RunHandle, RunResult, Snapshot, Stopper};
use crate::observe::requests_log::{LogWriter, RequestsLog, RequestsLogError};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Why a test could not start, or delivered no result.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The engine refused the plan.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The master refused the test (no worker connected, ...) or was shut down.
    #[error(transparent)]
    Master(#[from] MasterError),
    /// `--requests-log` could not be created.
    #[error(transparent)]
    RequestsLog(#[from] RequestsLogError),
}

/// What starts the web UI's tests.
#[derive(Clone)]
pub enum Runner {
    /// The engine, in this process.
    Local,
    /// A master's workers (`gsai-load --master` without `--headless`).
    Master(Arc<MasterNode>),
}

impl Runner {
    /// Starts a test of `plan`. A master refuses when no worker is connected.
    pub fn start(&self, plan: Plan) -> Result<Running, DriverError> {
        self.start_logged(plan, None)
    }

    /// As [`Runner::start`], writing one line per request to `requests_log` (`--requests-log`)
    /// in this process; over a master, each worker writes its own.
    pub fn start_logged(
        &self,
        plan: Plan,
        requests_log: Option<&Path>,
    ) -> Result<Running, DriverError> {
        match self {
            Runner::Local => {
                let log = requests_log
                    .map(|p| RequestsLog::create(p, None))
                    .transpose()?;
                let hooks = EngineHooks {
                    requests_log: log.as_ref().map(|(l, _)| l.clone()),
                    ..EngineHooks::default()
                };
                Ok(Running::Local(engine::start_with(plan, hooks)?, log))
            }
            Runner::Master(node) => Ok(Running::Master(node.start_test(plan, StartWhen::Now)?)),
        }
    }

    /// The master's workers now; `None` in a single process.
    pub fn workers(&self) -> Option<Arc<[WorkerView]>> {
        match self {
            Runner::Local => None,
            Runner::Master(node) => Some(node.workers().borrow().clone()),
        }
    }

    /// The port workers connect to; `None` in a single process.
    pub fn master_port(&self) -> Option<u16> {
        match self {
            Runner::Local => None,
            Runner::Master(node) => Some(node.local_addr().port()),
        }
    }

    /// Whether tests run over workers.
    pub fn is_distributed(&self) -> bool {
        matches!(self, Runner::Master(_))
    }
}

/// A test started by a [`Runner`].
pub enum Running {
    /// On the engine, with its `--requests-log` if any.
    Local(RunHandle, Option<(Arc<RequestsLog>, LogWriter)>),
    /// Over a master's workers.
    Master(MasterHandle),
}

impl Running {
    /// Stops the test (in-flight requests get the plan's stop timeout).
    pub fn stop(&self) {
        match self {
            Running::Local(h, _) => h.stop(),
            Running::Master(h) => h.stop(),
        }
    }

    /// Cancels in-flight requests now (a local test), or ends the test with the statistics
    /// received so far (over workers): the second Ctrl-C.
    pub fn cancel_now(&self) {
        match self {
            Running::Local(h, _) => h.cancel_now(),
            Running::Master(h) => h.end_now(),
        }
    }

    /// A cloneable means to stop the test or cancel it now (for signal handlers and observers).
    pub fn stopper(&self) -> RunStopper {
        match self {
            Running::Local(h, _) => RunStopper::Local(h.stopper()),
            Running::Master(h) => RunStopper::Master(h.stopper()),
        }
    }

    /// The workers, updated as they change; `None` for a test in this process.
    pub fn workers(&self) -> Option<watch::Receiver<Arc<[WorkerView]>>> {
        match self {
            Running::Local(..) => None,
            Running::Master(h) => Some(h.workers()),
        }
    }

    /// Changes the number of users and the spawn rate.
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        match self {
            Running::Local(h, _) => h.set_users(users, spawn_rate),
            Running::Master(h) => h.set_users(users, spawn_rate),
        }
    }

    /// Forgets the statistics so far.
    pub fn reset_stats(&self) {
        match self {
            Running::Local(h, _) => h.reset_stats(),
            Running::Master(h) => h.reset_stats(),
        }
    }

    /// The once-a-second snapshots; the channel closes when the test is over.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        match self {
            Running::Local(h, _) => h.subscribe(),
            Running::Master(h) => h.subscribe(),
        }
    }

    /// Waits for the result. A master may fail to deliver one (it was shut down).
    pub async fn wait(self) -> Result<RunResult, DriverError> {
        match self {
            Running::Local(h, log) => {
                let result = h.wait().await;
                if let Some((log, writer)) = log {
                    eprintln!("{}", crate::observe::requests_log::close(log, writer).await);
                }
                Ok(result)
            }
            Running::Master(h) => Ok(h.wait().await?),
        }
    }
}

/// Stops a [`Running`] test from anywhere: the first signal stops it, the second cancels now.
#[derive(Clone)]
pub enum RunStopper {
    /// A test in this process.
    Local(Stopper),
    /// A test over a master's workers.
    Master(MasterStopper),
}

impl RunStopper {
    /// As [`Running::stop`].
    pub fn stop(&self) {
        match self {
            RunStopper::Local(s) => s.stop(),
            RunStopper::Master(s) => s.stop(),
        }
    }

    /// As [`Running::cancel_now`].
    pub fn cancel_now(&self) {
        match self {
            RunStopper::Local(s) => s.cancel_now(),
            RunStopper::Master(s) => s.end_now(),
        }
    }
}
