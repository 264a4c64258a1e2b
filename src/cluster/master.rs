//! The master: a [`MasterNode`] listens for workers (ours, or any Locust-protocol worker) and
//! keeps them for its whole life; it runs tests one after another over them, each test driven
//! like the engine through a [`MasterHandle`] that publishes the same [`Snapshot`]s and ends
//! with the same [`RunResult`](crate::engine::RunResult) as a local run. After a test the workers stay connected and go
//! back to ready, as under Locust's master, so the web UI can start the next one.
//!
//! The headless master ([`start`]) is one node running one test: it waits for
//! `--expect-workers`, runs the test, then tells every worker to quit.
//!
//! The task behind the node lives in `master_session`.

use super::master_handle::{Command, TestChannels};
pub use super::master_handle::{MasterHandle, MasterStopper, StartWhen};
pub use super::master_peers::{PeerLimits, REGISTER_TIMEOUT};
use super::nodes::WorkerView;
use super::transport::{Router, TransportError};
use crate::config::Plan;
use crate::engine::Snapshot;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How to run the headless master.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// Interface to listen on (`*` or `0.0.0.0` for all).
    pub bind_host: String,
    /// Port to listen on (Locust's 5557; 0 picks a free one).
    pub bind_port: u16,
    /// The test: users, spawn rate, run time, stop timeout, and the workload the workers run.
    /// Its token is never sent: workers use their own.
    pub plan: Plan,
    /// Workers to wait for before starting.
    pub expect_workers: usize,
    /// Give up when they have not all come by then (None: wait until stopped).
    pub expect_workers_max_wait: Option<Duration>,
}

/// Where a master node listens.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Interface to listen on (`*` or `0.0.0.0` for all).
    pub bind_host: String,
    /// Port to listen on (Locust's 5557; 0 picks a free one).
    pub bind_port: u16,
    /// `--expect-workers`, passed on to Python workers in Locust's options.
    pub expect_workers: usize,
}

/// Why the master could not run a test.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The port could not be bound.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// `--max-requests` cannot be honoured exactly across workers.
    #[error("--max-requests is not supported with --master (workers report once a second, so the master cannot stop at an exact count); use -t/--run-time")]
    MaxRequests,
    /// Not enough workers came in time.
    #[error("only {got} of {expected} workers connected within {waited_s} s (--expect-workers-max-wait); start more workers or lower --expect-workers")]
    NotEnoughWorkers {
        /// Asked for.
        expected: usize,
        /// Came.
        got: usize,
        /// Waited, seconds.
        waited_s: u64,
    },
    /// A test was started with no worker connected.
    #[error("no worker is connected to the master at {addr}: start workers (gsai-load --worker --master-host HOST --master-port {port}) and wait until the Workers tab lists them")]
    NoWorkers {
        /// Where workers connect.
        addr: SocketAddr,
        /// Its port.
        port: u16,
    },
    /// A test was started while another one is on.
    #[error("a test is already running on this master: stop it first")]
    Busy,
    /// The master's task has ended (the node was shut down).
    #[error("the master has shut down")]
    Gone,
}

/// A master session: the workers' port and table, and one test at a time over them.
/// Dropping it (or [`MasterNode::shutdown`]) tells every worker to quit.
pub struct MasterNode {
    commands: mpsc::UnboundedSender<Command>,
    workers: watch::Receiver<Arc<[WorkerView]>>,
    notes: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    local: SocketAddr,
    next_id: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl MasterNode {
    /// Binds the workers' port and starts the master's task on the current tokio runtime.
    pub async fn bind(cfg: NodeConfig) -> Result<Self, MasterError> {
        Self::bind_with(cfg, PeerLimits::default()).await
    }

    /// [`MasterNode::bind`] with other limits on what peers may cost (tests shorten them).
    pub async fn bind_with(cfg: NodeConfig, limits: PeerLimits) -> Result<Self, MasterError> {
        let router = Router::bind_with(&cfg.bind_host, cfg.bind_port, limits.router).await?;
        let local = router.local_addr();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        let (workers_tx, workers_rx) = watch::channel(Arc::<[WorkerView]>::from(Vec::new()));
        let session = super::master_session::Session::new(
            router,
            limits,
            cfg.expect_workers,
            workers_tx,
            notes_tx,
        );
        let task = tokio::spawn(session.run(cmd_rx));
        Ok(Self {
            commands: cmd_tx,
            workers: workers_rx,
            notes: Mutex::new(Some(notes_rx)),
            local,
            next_id: AtomicU64::new(1),
            task: Mutex::new(Some(task)),
        })
    }

    /// The address workers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The workers, updated once a second and whenever one joins or leaves.
    pub fn workers(&self) -> watch::Receiver<Arc<[WorkerView]>> {
        self.workers.clone()
    }

    /// Workers that a new test would use (connected, not missing, not quit).
    pub fn available_workers(&self) -> usize {
        self.workers
            .borrow()
            .iter()
            .filter(|w| w.available())
            .count()
    }

    /// Log lines (workers joining, going missing, their exceptions); once.
    pub fn take_notes(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Waits until `workers` workers are available; fails after `max_wait` (None: no limit).
    pub async fn wait_for_workers(
        &self,
        workers: usize,
        max_wait: Option<Duration>,
    ) -> Result<usize, MasterError> {
        let mut view = self.workers();
        let enough =
            |v: &Arc<[WorkerView]>| v.iter().filter(|w| w.available()).count() >= workers.max(1);
        let wait = async {
            match view.wait_for(enough).await {
                Ok(v) => Ok(v.iter().filter(|w| w.available()).count()),
                Err(_) => Err(MasterError::Gone),
            }
        };
        match max_wait {
            None => wait.await,
            Some(limit) => match tokio::time::timeout(limit, wait).await {
                Ok(r) => r,
                Err(_) => Err(MasterError::NotEnoughWorkers {
                    expected: workers,
                    got: self.available_workers(),
                    waited_s: limit.as_secs(),
                }),
            },
        }
    }

    /// Starts a test over the workers. With [`StartWhen::Now`], refuses when no worker is
    /// connected. The token of `plan` is never sent: workers use their own.
    pub fn start_test(&self, plan: Plan, when: StartWhen) -> Result<MasterHandle, MasterError> {
        if plan.max_requests.is_some() {
            return Err(MasterError::MaxRequests);
        }
        if when == StartWhen::Now && self.available_workers() == 0 {
            return Err(MasterError::NoWorkers {
                addr: self.local,
                port: self.local.port(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let first = Arc::new(Snapshot::initial(plan.users, Vec::new().into()));
        let (snap_tx, snap_rx) = watch::channel(first);
        let (result_tx, result_rx) = oneshot::channel();
        let start = Command::Start {
            id,
            plan: Box::new(plan),
            when,
            channels: TestChannels {
                snapshots: snap_tx,
                result: result_tx,
            },
        };
        if self.commands.send(start).is_err() {
            return Err(MasterError::Gone);
        }
        Ok(MasterHandle {
            id,
            commands: self.commands.clone(),
            snapshots: snap_rx,
            workers: self.workers(),
            notes: None,
            local: self.local,
            result: result_rx,
            owned: None,
        })
    }

    /// Ends the current test (with what was measured), tells every worker to quit, waits
    /// until that is on the wire, and closes the port.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { done: Some(tx) })
            .is_ok()
        {
            let _ = rx.await;
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for MasterNode {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown { done: None });
    }
}

/// The headless master: binds the port and starts one test that waits for `expect_workers`,
/// runs, and at its end tells every worker to quit.
pub async fn start(cfg: MasterConfig) -> Result<MasterHandle, MasterError> {
    if cfg.plan.max_requests.is_some() {
        return Err(MasterError::MaxRequests);
    }
    let node = MasterNode::bind(NodeConfig {
        bind_host: cfg.bind_host,
        bind_port: cfg.bind_port,
        expect_workers: cfg.expect_workers,
    })
    .await?;
    let when = StartWhen::AfterWorkers {
        workers: cfg.expect_workers.max(1),
        max_wait: cfg.expect_workers_max_wait,
    };
    let mut handle = node.start_test(cfg.plan, when)?;
    handle.notes = node.take_notes();
    handle.owned = Some(node);
    Ok(handle)
}
