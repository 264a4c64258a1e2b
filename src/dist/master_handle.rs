//! The handle of a distributed test: the same controls as the engine's
//! [`crate::engine::RunHandle`], plus the workers' view and the master's log lines.

use super::master::MasterError;
use super::nodes::WorkerView;
use crate::engine::{RunResult, Snapshot};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the handle asks of the master task.
pub(crate) enum Command {
    /// Stop the test.
    Stop,
    /// Change the number of users.
    SetUsers { users: u64, spawn_rate: f64 },
    /// Forget statistics.
    Reset,
}

/// A cloneable means to stop a distributed test (e.g. from a signal handler).
#[derive(Clone)]
pub struct MasterStopper(pub(crate) mpsc::UnboundedSender<Command>);

impl MasterStopper {
    /// Stops the test, as [`MasterHandle::stop`].
    pub fn stop(&self) {
        let _ = self.0.send(Command::Stop);
    }
}

/// Control and observation of a distributed test; the same shape as [`crate::engine::RunHandle`].
pub struct MasterHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(crate) workers: watch::Receiver<Arc<[WorkerView]>>,
    pub(crate) notes: Option<mpsc::UnboundedReceiver<String>>,
    pub(crate) local: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<Result<RunResult, MasterError>>,
}

impl MasterHandle {
    /// Stops the test: workers stop their users, report, and are released.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Changes the number of users (spread over the workers, paced at `spawn_rate`).
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        let _ = self.commands.send(Command::SetUsers { users, spawn_rate });
    }

    /// Forgets statistics gathered so far (the test goes on).
    pub fn reset_stats(&self) {
        let _ = self.commands.send(Command::Reset);
    }

    /// A cloneable stopper.
    pub fn stopper(&self) -> MasterStopper {
        MasterStopper(self.commands.clone())
    }

    /// Once-a-second snapshots over all workers.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The workers, updated once a second.
    pub fn workers(&self) -> watch::Receiver<Arc<[WorkerView]>> {
        self.workers.clone()
    }

    /// Log lines (workers joining, going missing, their exceptions); once.
    pub fn take_notes(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.notes.take()
    }

    /// The address workers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits for the end of the test.
    pub async fn wait(self) -> Result<RunResult, MasterError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}
