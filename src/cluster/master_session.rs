//! The master's task: one actor that owns the ROUTER and the table of workers for the whole
//! session, and at most one test at a time. It answers workers (registration, heartbeats,
//! statistics), paces spawning over them as Locust's dispatcher does, rebalances when one joins
//! or goes missing, merges their statistics into the test's [`Snapshot`]s and [`RunResult`],
//! and, when a test is over, leaves the workers connected: stopped workers take users again in
//! the next test. Only a shutdown tells them to quit.
//!
//! What workers say is handled in [`super::master_inbox`]; who may say it, in
//! [`super::master_peers`].

use super::master::MasterError;
use super::master_handle::{Command, StartWhen, TestChannels, TestCommand};
use super::master_peers::{PeerLimits, Peers};
use super::master_test::{unix_now_s, Phase, Test};
use super::nodes::{distribute, Nodes, WorkerView, HEARTBEAT_LIVENESS};
use super::protocol::{Spawn, ToWorker, USER_CLASS};
use super::transport::Router;
use crate::config::Plan;
use crate::engine::{RunState, StopReason};
use crate::metrics::StatsSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Extra time, beyond the stop timeout, that workers get to report `client_stopped`.
const STOP_GRACE: Duration = Duration::from_secs(10);

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

pub(super) fn send(router: &Router, id: &str, m: ToWorker) {
    router.send(id.as_bytes(), m.to_message(id).encode());
}

/// The master's task state.
pub(crate) struct Session {
    pub(super) router: Router,
    pub(super) nodes: Nodes,
    pub(super) peers: Peers,
    /// Workers drop spawn orders not newer than their last: increasing across tests.
    last_spawn_ts: f64,
    expect_workers: usize,
    workers_view: watch::Sender<Arc<[WorkerView]>>,
    notes: mpsc::UnboundedSender<String>,
    pub(super) test: Option<Test>,
}

impl Session {
    pub(crate) fn new(
        router: Router,
        limits: PeerLimits,
        expect_workers: usize,
        workers_view: watch::Sender<Arc<[WorkerView]>>,
        notes: mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            router,
            nodes: Nodes::default(),
            peers: Peers::new(limits.register_timeout),
            last_spawn_ts: 0.0,
            expect_workers,
            workers_view,
            notes,
            test: None,
        }
    }

    pub(super) fn note(&self, s: String) {
        let _ = self.notes.send(s);
    }

    /// Serves workers and runs tests until shut down (or every handle and the node are gone).
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done = None;
        loop {
            let t = self.test.as_ref();
            let step_at = t.and_then(|t| t.next_step);
            let run_deadline = t.filter(|t| t.running()).and_then(|t| t.run_deadline);
            let stopping_deadline = match t.map(|t| t.phase) {
                Some(Phase::Stopping { deadline }) => Some(deadline),
                _ => None,
            };
            let register_deadline = self.peers.next_deadline();
            tokio::select! {
                ev = self.router.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(Command::Shutdown { done: d }) => {
                        done = d;
                        break;
                    }
                    Some(Command::Start { id, plan, when, channels }) => {
                        self.start_test(id, *plan, when, channels);
                    }
                    Some(Command::Test { id, cmd }) => self.on_test_command(id, cmd),
                },
                _ = tick.tick() => self.on_tick(),
                _ = sleep_until(step_at) => self.ramp_step(),
                _ = sleep_until(run_deadline) => {
                    if let Some(t) = self.test.as_mut() {
                        t.stop_reason = StopReason::RunTime;
                        t.run_deadline = None;
                    }
                    self.begin_stop();
                }
                _ = sleep_until(stopping_deadline) => {
                    self.note("some workers did not report stopping in time; ending without them".into());
                    self.finish_test(Ok(()));
                }
                _ = sleep_until(register_deadline) => self.close_unregistered(),
            }
            let stopping = matches!(
                self.test.as_ref().map(|t| t.phase),
                Some(Phase::Stopping { .. })
            );
            if stopping && self.all_stopped() {
                self.finish_test(Ok(()));
            }
        }
        // Shutting down: the current test ends with what was measured, and workers quit.
        self.finish_test(Ok(()));
        self.quit_all().await;
        if let Some(d) = done {
            let _ = d.send(());
        }
    }

    fn start_test(&mut self, id: u64, plan: Plan, when: StartWhen, channels: TestChannels) {
        if self.test.is_some() {
            let _ = channels.result.send(Err(MasterError::Busy));
            return;
        }
        self.test = Some(Test::new(id, plan, when, channels));
        // Workers that stopped after the last test run this one (they are still connected).
        self.nodes.prepare_test();
        if matches!(when, StartWhen::Now) {
            self.begin_running();
        }
    }

    /// The workers are there: the test starts its ramp.
    fn begin_running(&mut self) {
        let ready = self.nodes.active_ids().len();
        let Some(t) = self.test.as_mut() else { return };
        let _ = self.notes.send(format!(
            "{ready} workers ready: starting {} users at {}/s",
            t.target_users, t.spawn_rate
        ));
        t.begin();
        if ready == 0 {
            self.note("no worker is connected: the test stops".into());
            self.begin_stop();
        }
    }

    fn on_test_command(&mut self, id: u64, cmd: TestCommand) {
        let Some(t) = self.test.as_mut().filter(|t| t.id == id) else {
            return;
        };
        match cmd {
            TestCommand::Stop => match t.phase {
                Phase::Waiting { .. } => self.finish_test(Ok(())),
                Phase::Running => self.begin_stop(),
                Phase::Stopping { .. } => {}
            },
            TestCommand::EndNow => {
                if matches!(t.phase, Phase::Running) {
                    self.begin_stop();
                }
                if let Some(t) = self.test.as_mut() {
                    if let Phase::Stopping { deadline } = &mut t.phase {
                        *deadline = tokio::time::Instant::now();
                    }
                }
                if matches!(
                    self.test.as_ref().map(|t| &t.phase),
                    Some(Phase::Waiting { .. })
                ) {
                    self.finish_test(Ok(()));
                }
            }
            TestCommand::SetUsers { users, spawn_rate } => {
                t.target_users = users;
                t.spawn_rate = spawn_rate.max(0.001);
                if t.running() {
                    t.start_ramp();
                }
            }
            TestCommand::Reset => {
                t.collector.reset();
                t.pending = StatsSet::new(t.kinds.kinds().len());
            }
        }
    }

    fn on_tick(&mut self) {
        for (id, held) in self.nodes.tick() {
            self.note(format!(
                "worker {id} sent no heartbeat for {} s: missing; its users go to the others",
                HEARTBEAT_LIVENESS + 1
            ));
            self.after_loss(held);
        }
        let waiting = self.test.as_ref().and_then(|t| match t.phase {
            Phase::Waiting { workers, max_wait } => Some((workers, max_wait, t.started.elapsed())),
            _ => None,
        });
        if let Some((workers, max_wait, waited)) = waiting {
            let ready = self.nodes.active_ids().len();
            if ready >= workers {
                self.begin_running();
            } else if let Some(max) = max_wait.filter(|m| waited >= *m) {
                self.finish_test(Err(MasterError::NotEnoughWorkers {
                    expected: workers,
                    got: ready,
                    waited_s: max.as_secs(),
                }));
            }
        }
        if let Some(t) = self.test.as_mut() {
            let state = t.state();
            t.publish(&self.nodes, state);
        }
        self.publish_workers();
    }

    /// Closes the connections that did not register in time.
    fn close_unregistered(&mut self) {
        for (identity, conn) in self.peers.expired(tokio::time::Instant::now()) {
            self.router.close(&identity, conn);
            let note = self.peers.refused(|| {
                format!(
                    "closed a connection ({}) that did not send client_ready in time",
                    String::from_utf8_lossy(&identity)
                )
            });
            if let Some(n) = note {
                self.note(n);
            }
        }
    }

    pub(super) fn publish_workers(&self) {
        self.workers_view.send_replace(self.nodes.views().into());
    }

    /// Ends the current test: publishes its last snapshot and sends its result (or `err`).
    /// Dropping the test closes its snapshot channel.
    fn finish_test(&mut self, outcome: Result<(), MasterError>) {
        let Some(mut t) = self.test.take() else {
            return;
        };
        if let Err(e) = outcome {
            let _ = t.channels.result.send(Err(e));
            return;
        }
        t.publish(&self.nodes, RunState::Stopped);
        let (result, sender) = t.into_result();
        let _ = sender.send(Ok(result));
        self.publish_workers();
    }

    /// Every worker told to stop has stopped (or is gone).
    fn all_stopped(&self) -> bool {
        self.nodes.all().all(|n| n.missing || n.inactive)
    }

    pub(super) fn running(&self) -> bool {
        self.test.as_ref().is_some_and(Test::running)
    }

    /// A worker that held `held` users went missing or quit: stop when none is left (as Locust
    /// does); else its users go to the others at the spawn rate, as Locust's dispatcher ramps
    /// them: the level drops by what was lost, and the ramp climbs back to the target.
    pub(super) fn after_loss(&mut self, held: u64) {
        if !self.running() {
            return;
        }
        if self.nodes.active_ids().is_empty() {
            self.note("the last worker is gone: stopping the test".into());
            self.begin_stop();
            return;
        }
        let Some(t) = self.test.as_mut() else { return };
        t.dispatched = t.dispatched.saturating_sub(held);
        if t.dispatched != t.target_users && t.next_step.is_none() {
            t.start_ramp();
        }
        self.dispatch();
    }

    fn ramp_step(&mut self) {
        let Some(t) = self.test.as_mut() else { return };
        let now = std::time::Instant::now();
        let step = t.pacer.take(now, t.dispatched.abs_diff(t.target_users));
        if t.dispatched < t.target_users {
            t.dispatched += step;
        } else {
            t.dispatched -= step;
        }
        self.dispatch();
        let Some(t) = self.test.as_mut() else { return };
        if t.dispatched == t.target_users {
            t.next_step = None;
            if !t.ramp_done_sent {
                t.ramp_done_sent = true;
                for id in self.nodes.active_ids() {
                    send(
                        &self.router,
                        &id,
                        ToWorker::SpawningComplete {
                            user_count: t.dispatched,
                        },
                    );
                }
            }
        } else {
            t.next_step = Some(tokio::time::Instant::from_std(t.pacer.next_due(now)));
        }
    }

    /// Sends each active worker its share of the users dispatched so far, where it changed.
    pub(super) fn dispatch(&mut self) {
        let Some(t) = self.test.as_ref() else { return };
        let ids = self.nodes.active_ids();
        for (id, n) in distribute(t.dispatched, &ids) {
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
                host: Some(t.plan.host.clone()),
                stop_timeout: Some(t.plan.stop_timeout.as_secs_f64()),
                parsed_options: t.parsed_options(self.expect_workers),
                gsai_plan: Some(t.plan_json.clone()),
            };
            send(&self.router, &id, ToWorker::Spawn(spawn));
        }
    }

    pub(super) fn begin_stop(&mut self) {
        let Some(t) = self.test.as_mut() else { return };
        t.next_step = None;
        t.phase = Phase::Stopping {
            deadline: tokio::time::Instant::now() + t.plan.stop_timeout + STOP_GRACE,
        };
        for id in self.nodes.active_ids() {
            send(&self.router, &id, ToWorker::Stop);
            if let Some(n) = self.nodes.get_mut(&id) {
                n.state = "stopping".into();
            }
        }
        t.publish(&self.nodes, RunState::Stopping);
        self.publish_workers();
    }

    /// Tells every connected worker to quit and waits (briefly) until that is on the wire.
    async fn quit_all(&mut self) {
        for id in self.router.connected() {
            let id = String::from_utf8_lossy(&id).into_owned();
            send(&self.router, &id, ToWorker::Quit);
        }
        self.router.flush_all(Duration::from_secs(2)).await;
        self.router.wait_disconnected(Duration::from_secs(2)).await;
    }
}
