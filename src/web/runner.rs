//! Where the web UI's tests run: in this process (the engine) or over the workers of a
//! distributed master. The controller drives both through [`Runner`] and [`Running`], which
//! have the engine's shape (start, stop, set users, reset, subscribe, wait), so it never needs
//! to know which one it holds.

use super::state::WebError;
use crate::cluster::master::{MasterHandle, MasterNode, StartWhen};
use crate::cluster::nodes::WorkerView;
use crate::config::Plan;
use crate::engine::{self, RunHandle, RunResult, Snapshot};
use std::sync::Arc;
use tokio::sync::watch;

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
    pub fn start(&self, plan: Plan) -> Result<Running, WebError> {
        match self {
            Runner::Local => Ok(Running::Local(engine::start(plan)?)),
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
    /// On the engine.
    Local(RunHandle),
    /// Over a master's workers.
    Master(MasterHandle),
}

impl Running {
    /// Stops the test (in-flight requests get the plan's stop timeout).
    pub fn stop(&self) {
        match self {
            Running::Local(h) => h.stop(),
            Running::Master(h) => h.stop(),
        }
    }

    /// Cancels in-flight requests now (a local test), or ends the test with the statistics
    /// received so far (over workers): the second Ctrl-C.
    pub fn cancel_now(&self) {
        match self {
            Running::Local(h) => h.cancel_now(),
            Running::Master(h) => h.end_now(),
        }
    }

    /// Changes the number of users and the spawn rate.
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        match self {
            Running::Local(h) => h.set_users(users, spawn_rate),
            Running::Master(h) => h.set_users(users, spawn_rate),
        }
    }

    /// Forgets the statistics so far.
    pub fn reset_stats(&self) {
        match self {
            Running::Local(h) => h.reset_stats(),
            Running::Master(h) => h.reset_stats(),
        }
    }

    /// The once-a-second snapshots; the channel closes when the test is over.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        match self {
            Running::Local(h) => h.subscribe(),
            Running::Master(h) => h.subscribe(),
        }
    }

    /// Waits for the result. A master may fail to deliver one (it was shut down).
    pub async fn wait(self) -> Result<RunResult, WebError> {
        match self {
            Running::Local(h) => Ok(h.wait().await),
            Running::Master(h) => Ok(h.wait().await?),
        }
    }
}
