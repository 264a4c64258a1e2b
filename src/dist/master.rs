//! The master: accepts workers (ours, or any Locust-protocol worker), paces spawning over them
//! as Locust's dispatcher does, rebalances when one joins or goes missing, merges their
//! statistics into the same [`Snapshot`]s and [`RunResult`] as a local run, and stops and
//! releases every worker at the end.
//!
//! It is driven like the engine: [`MasterHandle`] has `stop`, `set_users`, `reset_stats`,
//! `subscribe` and `wait`, plus `workers` (the web UI's workers tab) and `notes` (log lines).

use super::locust_stats::{read_report, KindIndex};
use super::nodes::{distribute, Nodes, WorkerView, HEARTBEAT_LIVENESS};
use super::protocol::{Message, Spawn, ToMaster, ToWorker, USER_CLASS};
use super::transport::{Router, RouterEvent, TransportError};
use crate::config::Plan;
use crate::engine::collector::{Collector, Live};
use crate::engine::{RunResult, RunState, Snapshot, StopReason};
use crate::metrics::StatsSet;
use rmpv::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

use super::master_handle::Command;
pub use super::master_handle::{MasterHandle, MasterStopper};

/// Extra time, beyond the stop timeout, that workers get to report `client_stopped`.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How to run the master.
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

/// Why the master could not run.
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
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Binds the master's port and starts the master on the current tokio runtime: it waits for
/// `expect_workers`, runs the test, stops and releases the workers.
pub async fn start(cfg: MasterConfig) -> Result<MasterHandle, MasterError> {
    if cfg.plan.max_requests.is_some() {
        return Err(MasterError::MaxRequests);
    }
    let router = Router::bind(&cfg.bind_host, cfg.bind_port).await?;
    let local = router.local_addr();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (notes_tx, notes_rx) = mpsc::unbounded_channel();
    let first = Arc::new(Snapshot {
        state: RunState::Spawning,
        elapsed_s: 0.0,
        users: 0,
        target_users: cfg.plan.users,
        in_flight: 0,
        point: Default::default(),
        stats: StatsSet::new(0),
        kinds: Vec::new().into(),
    });
    let (snap_tx, snap_rx) = watch::channel(first);
    let (workers_tx, workers_rx) = watch::channel(Arc::<[WorkerView]>::from(Vec::new()));
    let mut plan_for_workers = cfg.plan.clone();
    plan_for_workers.token = None;
    let plan_json = serde_json::to_string(&plan_for_workers).unwrap_or_default();
    let master = Master {
        router,
        nodes: Nodes::default(),
        kinds: KindIndex::default(),
        pending: StatsSet::new(0),
        collector: Collector::new(Vec::new().into()),
        target_users: cfg.plan.users,
        spawn_rate: cfg.plan.spawn_rate.max(0.001),
        dispatched: 0,
        next_step: None,
        ramp_done_sent: true,
        last_spawn_ts: 0.0,
        phase: Phase::Waiting,
        started: Instant::now(),
        started_unix_s: unix_now_s(),
        plan_json,
        cfg,
        snapshots: snap_tx,
        workers_view: workers_tx,
        notes: notes_tx,
    };
    let task = tokio::spawn(master.run(cmd_rx));
    Ok(MasterHandle {
        commands: cmd_tx,
        snapshots: snap_rx,
        workers: workers_rx,
        notes: Some(notes_rx),
        local,
        task,
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Waiting,
    Running,
    Stopping { deadline: tokio::time::Instant },
}

struct Master {
    router: Router,
    nodes: Nodes,
    kinds: KindIndex,
    pending: StatsSet,
    collector: Collector,
    target_users: u64,
    spawn_rate: f64,
    /// Users handed out so far in the ramp (the dispatcher's current level).
    dispatched: u64,
    next_step: Option<tokio::time::Instant>,
    ramp_done_sent: bool,
    last_spawn_ts: f64,
    phase: Phase,
    started: Instant,
    started_unix_s: f64,
    plan_json: String,
    cfg: MasterConfig,
    snapshots: watch::Sender<Arc<Snapshot>>,
    workers_view: watch::Sender<Arc<[WorkerView]>>,
    notes: mpsc::UnboundedSender<String>,
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Master {
    fn note(&self, s: String) {
        let _ = self.notes.send(s);
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<RunResult, MasterError> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let wait_started = tokio::time::Instant::now();
        let mut run_deadline: Option<tokio::time::Instant> = None;
        let mut stop_reason = StopReason::Stopped;
        loop {
            let step_at = self.next_step;
            let stopping_deadline = match self.phase {
                Phase::Stopping { deadline } => Some(deadline),
                _ => None,
            };
            tokio::select! {
                ev = self.router.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop) | None => match self.phase {
                        Phase::Waiting => break,
                        Phase::Running => self.begin_stop(),
                        Phase::Stopping { .. } => {}
                    },
                    Some(Command::SetUsers { users, spawn_rate }) => {
                        self.target_users = users;
                        self.spawn_rate = spawn_rate.max(0.001);
                        if self.phase == Phase::Running {
                            self.start_ramp();
                        }
                    }
                    Some(Command::Reset) => {
                        self.collector.reset();
                        self.pending = StatsSet::new(self.kinds.kinds().len());
                    }
                },
                _ = tick.tick() => {
                    for id in self.nodes.tick() {
                        self.note(format!("worker {id} sent no heartbeat for {} s: missing; its users go to the others", HEARTBEAT_LIVENESS + 1));
                        self.after_loss();
                    }
                    if self.phase == Phase::Waiting {
                        let ready = self.nodes.active_ids().len();
                        if ready >= self.cfg.expect_workers.max(1) {
                            self.note(format!("{ready} workers ready: starting {} users at {}/s", self.target_users, self.spawn_rate));
                            self.phase = Phase::Running;
                            self.started = Instant::now();
                            self.started_unix_s = unix_now_s();
                            self.collector = Collector::new(self.kinds.kinds().to_vec().into());
                            self.pending = StatsSet::new(self.kinds.kinds().len());
                            run_deadline = self.cfg.plan.run_time.map(|d| tokio::time::Instant::now() + d);
                            self.start_ramp();
                        } else if let Some(max) = self.cfg.expect_workers_max_wait {
                            if wait_started.elapsed() >= max {
                                self.quit_all().await;
                                return Err(MasterError::NotEnoughWorkers {
                                    expected: self.cfg.expect_workers,
                                    got: ready,
                                    waited_s: max.as_secs(),
                                });
                            }
                        }
                    }
                    self.publish();
                }
                _ = sleep_until(step_at) => self.ramp_step(),
                _ = sleep_until(run_deadline), if self.phase == Phase::Running => {
                    stop_reason = StopReason::RunTime;
                    run_deadline = None;
                    self.begin_stop();
                }
                _ = sleep_until(stopping_deadline) => {
                    self.note("some workers did not report stopping in time; ending without them".into());
                    break;
                }
            }
            if matches!(self.phase, Phase::Stopping { .. }) && self.all_stopped() {
                break;
            }
        }
        self.quit_all().await;
        self.publish_state(RunState::Stopped);
        let duration_s = self.started.elapsed().as_secs_f64();
        let kinds = self.kinds.kinds().to_vec();
        let (stats, timeline) = self.collector.into_parts();
        Ok(RunResult {
            plan: self.cfg.plan,
            kinds,
            stats,
            timeline,
            started_unix_s: self.started_unix_s,
            duration_s,
            stop_reason,
        })
    }

    /// Every worker told to stop has stopped (or is gone).
    fn all_stopped(&self) -> bool {
        self.nodes.all().all(|n| n.missing || n.inactive)
    }

    fn on_event(&mut self, ev: RouterEvent) {
        match ev {
            RouterEvent::Connected(_) => {}
            RouterEvent::Disconnected(id) => {
                let id = String::from_utf8_lossy(&id).into_owned();
                if self.nodes.mark_missing(&id) {
                    self.note(format!(
                        "worker {id} disconnected: missing; its users go to the others"
                    ));
                    self.after_loss();
                }
            }
            RouterEvent::Message(identity, payload) => {
                let msg =
                    match Message::decode(&payload).and_then(|m| Ok((ToMaster::parse(&m)?, m))) {
                        Ok(m) => m,
                        Err(e) => {
                            // Locust asks the worker to reconnect after a corrupt frame.
                            self.note(format!("corrupt message from a worker: {e}"));
                            let id = String::from_utf8_lossy(&identity).into_owned();
                            self.send(&id, ToWorker::Reconnect);
                            return;
                        }
                    };
                let identity = String::from_utf8_lossy(&identity).into_owned();
                self.on_message(&identity, msg.0, &msg.1.node_id);
            }
        }
    }

    fn send(&self, id: &str, m: ToWorker) {
        self.router.send(id.as_bytes(), m.to_message(id).encode());
    }

    fn on_message(&mut self, identity: &str, msg: ToMaster, node_id: &str) {
        match msg {
            ToMaster::ClientReady(v) => {
                let falsy = matches!(&v, Value::Nil | Value::Boolean(false))
                    || v.as_u64() == Some(0)
                    || v.as_str() == Some("");
                if falsy {
                    self.note(format!(
                        "a pre-2.0 worker ({identity}) tried to connect; ignored"
                    ));
                    return;
                }
                // Keyed by the identity, as Locust does for client_ready.
                let index = self.nodes.register(identity);
                self.send(
                    identity,
                    ToWorker::Ack {
                        index: Some(index),
                        gsai: true,
                    },
                );
                self.note(format!(
                    "worker {identity} (index {index}) ready; {} workers",
                    self.nodes.active_ids().len()
                ));
                if self.phase == Phase::Running {
                    self.dispatch();
                }
            }
            ToMaster::Heartbeat(h) => {
                let Some(n) = self.nodes.get_mut(node_id) else {
                    return;
                };
                n.liveness = HEARTBEAT_LIVENESS;
                n.last_heartbeat = Instant::now();
                n.state = h.state;
                n.cpu_percent = h.cpu_percent;
                n.memory_bytes = h.memory_bytes;
                let healed = n.missing;
                if healed {
                    // Whatever it runs now, it gets its share again.
                    n.missing = false;
                    n.assigned = u64::MAX;
                }
                self.send(node_id, ToWorker::Heartbeat);
                if healed {
                    self.note(format!("worker {node_id} is back"));
                    if self.phase == Phase::Running {
                        self.dispatch();
                    }
                }
            }
            ToMaster::Spawning => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "spawning".into();
                }
            }
            ToMaster::SpawningComplete { user_count, .. } => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "running".into();
                    n.users = user_count;
                }
            }
            ToMaster::Stats(data) => match read_report(&data, &mut self.kinds) {
                // Reports count even from a worker marked missing: they are real requests,
                // and as deltas they can never be counted twice.
                Ok(r) => {
                    if let Some(n) = self.nodes.get_mut(node_id) {
                        n.requests += r.delta.total().requests;
                        n.in_flight = r.in_flight;
                        if !n.missing {
                            n.users = r.user_count;
                        }
                    }
                    self.pending.merge(&r.delta);
                }
                Err(e) => self.note(format!("worker {node_id}: unreadable stats report: {e}")),
            },
            ToMaster::ClientStopped => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "stopped".into();
                    n.users = 0;
                    n.inactive = true;
                }
                if self.phase == Phase::Running {
                    self.dispatch();
                }
            }
            ToMaster::Quit => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "quit".into();
                    n.users = 0;
                    n.inactive = true;
                    self.note(format!("worker {node_id} quit"));
                    self.after_loss();
                }
            }
            ToMaster::Exception { msg, .. } => self.note(format!("worker {node_id}: {msg}")),
            ToMaster::Other(kind) => {
                if kind != "logs" {
                    self.note(format!("worker {node_id} sent an unknown '{kind}' message"));
                }
            }
        }
    }

    /// A worker went missing or quit: rebalance, or stop when none is left (as Locust does).
    fn after_loss(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        if self.nodes.active_ids().is_empty() {
            self.note("the last worker is gone: stopping the test".into());
            self.begin_stop();
        } else {
            self.dispatch();
        }
    }

    /// Starts pacing towards `target_users`: Locust steps by max(1, floor(rate)) users every
    /// step/rate seconds.
    fn start_ramp(&mut self) {
        self.ramp_done_sent = false;
        self.next_step = Some(tokio::time::Instant::now());
    }

    fn ramp_step(&mut self) {
        let step = self.spawn_rate.floor().max(1.0) as u64;
        if self.dispatched < self.target_users {
            self.dispatched = (self.dispatched + step).min(self.target_users);
        } else if self.dispatched > self.target_users {
            self.dispatched = self.dispatched.saturating_sub(step).max(self.target_users);
        }
        self.dispatch();
        if self.dispatched == self.target_users {
            self.next_step = None;
            if !self.ramp_done_sent {
                self.ramp_done_sent = true;
                for id in self.nodes.active_ids() {
                    self.send(
                        &id,
                        ToWorker::SpawningComplete {
                            user_count: self.dispatched,
                        },
                    );
                }
            }
        } else {
            self.next_step = Some(
                tokio::time::Instant::now()
                    + Duration::from_secs_f64(step as f64 / self.spawn_rate),
            );
        }
    }

    /// Sends each active worker its share of the users dispatched so far, where it changed.
    fn dispatch(&mut self) {
        let ids = self.nodes.active_ids();
        for (id, n) in distribute(self.dispatched, &ids) {
            let Some(node) = self.nodes.get_mut(&id) else {
                continue;
            };
            if node.assigned == n {
                continue;
            }
            node.assigned = n;
            // Workers drop orders not newer than the last one: keep timestamps increasing.
            self.last_spawn_ts = unix_now_s().max(self.last_spawn_ts + 1e-3);
            let spawn = Spawn {
                timestamp: self.last_spawn_ts,
                user_classes_count: vec![(USER_CLASS.to_string(), n)],
                host: Some(self.cfg.plan.host.clone()),
                stop_timeout: Some(self.cfg.plan.stop_timeout.as_secs_f64()),
                parsed_options: self.parsed_options(),
                gsai_plan: Some(self.plan_json.clone()),
            };
            self.send(&id, ToWorker::Spawn(spawn));
        }
    }

    /// Locust-style options for Python workers, which read them (no secrets here).
    fn parsed_options(&self) -> Value {
        let p = &self.cfg.plan;
        super::protocol::map(vec![
            ("host", Value::from(p.host.as_str())),
            ("num_users", Value::from(self.target_users)),
            ("spawn_rate", Value::F64(self.spawn_rate)),
            ("headless", Value::Boolean(true)),
            ("stop_timeout", Value::F64(p.stop_timeout.as_secs_f64())),
            (
                "expect_workers",
                Value::from(self.cfg.expect_workers as u64),
            ),
        ])
    }

    fn begin_stop(&mut self) {
        self.next_step = None;
        self.phase = Phase::Stopping {
            deadline: tokio::time::Instant::now() + self.cfg.plan.stop_timeout + STOP_GRACE,
        };
        for id in self.nodes.active_ids() {
            self.send(&id, ToWorker::Stop);
            if let Some(n) = self.nodes.get_mut(&id) {
                n.state = "stopping".into();
            }
        }
        self.publish_state(RunState::Stopping);
    }

    /// Tells every connected worker to quit and waits (briefly) until that is on the wire.
    async fn quit_all(&mut self) {
        for id in self.router.connected() {
            let id = String::from_utf8_lossy(&id).into_owned();
            self.send(&id, ToWorker::Quit);
        }
        self.router.flush_all(Duration::from_secs(2)).await;
    }

    fn publish(&mut self) {
        let state = match self.phase {
            Phase::Waiting => RunState::Spawning,
            Phase::Running if self.next_step.is_some() => RunState::Spawning,
            Phase::Running => RunState::Running,
            Phase::Stopping { .. } => RunState::Stopping,
        };
        self.publish_state(state);
    }

    /// Feeds the statistics received since the last tick to the collector and publishes.
    fn publish_state(&mut self, state: RunState) {
        let delta = std::mem::replace(&mut self.pending, StatsSet::new(self.kinds.kinds().len()));
        self.collector.set_kinds(self.kinds.kinds().to_vec().into());
        let elapsed_s = if self.phase == Phase::Waiting {
            0.0
        } else {
            self.started.elapsed().as_secs_f64()
        };
        let snap = self.collector.push(
            &delta,
            Live {
                state,
                elapsed_s,
                users: self.nodes.users(),
                target_users: self.target_users,
                in_flight: self.nodes.in_flight(),
            },
        );
        let _ = self.snapshots.send(snap);
        let _ = self.workers_view.send(self.nodes.views().into());
    }
}
