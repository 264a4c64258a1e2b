//! The handle of one distributed test: the same controls as the engine's
//! [`crate::engine::RunHandle`], plus the workers' view and the master's log lines; and the
//! commands that the handles and the [`super::master::MasterNode`] send to the master's task.

use super::master::{MasterError, MasterNode};
use super::nodes::WorkerView;
use crate::config::Plan;
use crate::engine::{RunResult, Snapshot};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// When a test starts its users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartWhen {
    /// At once, over the workers connected now (the web UI's start button).
    Now,
    /// Once `workers` workers are ready (`--expect-workers`); give up after `max_wait`
    /// (`None`: wait until stopped).
    AfterWorkers {
        /// Workers to wait for.
        workers: usize,
        /// Longest wait.
        max_wait: Option<Duration>,
    },
}

/// What a test's handle asks of the master task.
#[derive(Debug)]
pub(crate) enum TestCommand {
    /// Stop the test.
    Stop,
    /// End the test now with the statistics received so far (a second Ctrl-C).
    EndNow,
    /// Change the number of users.
    SetUsers { users: u64, spawn_rate: f64 },
    /// Forget statistics.
    Reset,
}

/// The channels through which a test reports, created by whoever starts it.
pub(crate) struct TestChannels {
    /// Once-a-second snapshots; dropped when the test is over.
    pub snapshots: watch::Sender<Arc<Snapshot>>,
    /// The outcome, sent once.
    pub result: oneshot::Sender<Result<RunResult, MasterError>>,
}

/// What the master task is asked to do.
pub(crate) enum Command {
    /// Start test `id` (refused, with its result at once, while another test is on).
    Start {
        id: u64,
        plan: Box<Plan>,
        when: StartWhen,
        channels: TestChannels,
    },
    /// A command for test `id`; ignored when that test is over.
    Test { id: u64, cmd: TestCommand },
    /// End the current test, tell every worker to quit, and end; `done` once that is on the wire.
    Shutdown { done: Option<oneshot::Sender<()>> },
}

/// A cloneable means to stop a distributed test (e.g. from a signal handler).
#[derive(Clone)]
pub struct MasterStopper {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) id: u64,
}

impl MasterStopper {
    /// Stops the test, as [`MasterHandle::stop`].
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Test {
            id: self.id,
            cmd: TestCommand::Stop,
        });
    }

    /// Ends the test now, as [`MasterHandle::end_now`].
    pub fn end_now(&self) {
        let _ = self.commands.send(Command::Test {
            id: self.id,
            cmd: TestCommand::EndNow,
        });
    }
}

/// Control and observation of one distributed test; the same shape as
/// [`crate::engine::RunHandle`].
pub struct MasterHandle {
    pub(crate) id: u64,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    pub(crate) workers: watch::Receiver<Arc<[WorkerView]>>,
    pub(crate) notes: Option<mpsc::UnboundedReceiver<String>>,
    pub(crate) local: SocketAddr,
    pub(crate) result: oneshot::Receiver<Result<RunResult, MasterError>>,
    /// The session this test owns (a headless master): released with the test.
    pub(crate) owned: Option<MasterNode>,
}

impl MasterHandle {
    fn send(&self, cmd: TestCommand) {
        let _ = self.commands.send(Command::Test { id: self.id, cmd });
    }

    /// Stops the test: workers stop their users and report.
    pub fn stop(&self) {
        self.send(TestCommand::Stop);
    }

    /// Ends the test now with the statistics received so far, without waiting for the
    /// workers' in-flight requests (a second Ctrl-C); workers still get `stop`.
    pub fn end_now(&self) {
        self.send(TestCommand::EndNow);
    }

    /// Changes the number of users (spread over the workers, paced at `spawn_rate`).
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        self.send(TestCommand::SetUsers { users, spawn_rate });
    }

    /// Forgets statistics gathered so far (the test goes on).
    pub fn reset_stats(&self) {
        self.send(TestCommand::Reset);
    }

    /// A cloneable stopper.
    pub fn stopper(&self) -> MasterStopper {
        MasterStopper {
            commands: self.commands.clone(),
            id: self.id,
        }
    }

    /// Once-a-second snapshots over all workers; the channel closes when the test is over.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The workers, updated once a second and whenever one joins or leaves.
    pub fn workers(&self) -> watch::Receiver<Arc<[WorkerView]>> {
        self.workers.clone()
    }

    /// Log lines (workers joining, going missing, their exceptions); once, and only from the
    /// handle of a headless master (a [`MasterNode`] hands out its own).
    pub fn take_notes(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.notes.take()
    }

    /// The address workers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits for the end of the test. A headless master's handle then tells every worker to
    /// quit and closes the port.
    pub async fn wait(self) -> Result<RunResult, MasterError> {
        let r = self.result.await.unwrap_or(Err(MasterError::Gone));
        if let Some(node) = &self.owned {
            node.shutdown().await;
        }
        r
    }
}
