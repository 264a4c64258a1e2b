//! One test of the master: its plan, its phase (waiting for workers, running, stopping), the
//! ramp's state, and the statistics merged from the workers' reports into [`Snapshot`]s.
//!
//! [`Snapshot`]: crate::engine::Snapshot

use super::locust_stats::KindIndex;
use super::master_handle::{StartWhen, TestChannels};
use super::nodes::Nodes;
use crate::config::Plan;
use crate::engine::collector::{Collector, Live};
use crate::engine::pacer::Pacer;
use crate::engine::{RunResult, RunState, StopReason};
pub(super) use crate::metrics::clock::unix_now_s;
use crate::metrics::StatsSet;
use rmpv::Value;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    /// Waiting for this many workers (`--expect-workers`), at most `max_wait` from the start.
    Waiting {
        workers: usize,
        max_wait: Option<Duration>,
    },
    Running,
    Stopping {
        deadline: tokio::time::Instant,
    },
}

/// One test: its plan, ramp and statistics.
pub(super) struct Test {
    pub(super) id: u64,
    pub(super) plan: Plan,
    /// The plan as workers get it: without the token.
    pub(super) plan_json: String,
    /// Rows of this test, as workers name them.
    pub(super) kinds: KindIndex,
    /// Statistics received since the last publication.
    pub(super) pending: StatsSet,
    pub(super) collector: Collector,
    pub(super) target_users: u64,
    pub(super) spawn_rate: f64,
    /// Users handed out so far in the ramp (the dispatcher's current level).
    pub(super) dispatched: u64,
    /// Paces the ramp (the engine's pacer, in Locust's steps).
    pub(super) pacer: Pacer,
    pub(super) next_step: Option<tokio::time::Instant>,
    pub(super) ramp_done_sent: bool,
    pub(super) phase: Phase,
    pub(super) started: Instant,
    pub(super) started_unix_s: f64,
    pub(super) run_deadline: Option<tokio::time::Instant>,
    pub(super) stop_reason: StopReason,
    pub(super) channels: TestChannels,
}

impl Test {
    /// A test of `plan`, waiting for its workers (none with [`StartWhen::Now`]).
    pub(super) fn new(id: u64, plan: Plan, when: StartWhen, channels: TestChannels) -> Self {
        let mut for_workers = plan.clone();
        for_workers.token = None;
        let plan_json = serde_json::to_string(&for_workers).unwrap_or_default();
        let phase = match when {
            StartWhen::Now => Phase::Waiting {
                workers: 0,
                max_wait: None,
            },
            StartWhen::AfterWorkers { workers, max_wait } => Phase::Waiting {
                workers: workers.max(1),
                max_wait,
            },
        };
        let pacer = Pacer::new(
            plan.spawn_rate,
            Pacer::locust_step(plan.spawn_rate),
            Instant::now(),
        );
        Self {
            id,
            target_users: plan.users,
            spawn_rate: plan.spawn_rate.max(0.001),
            plan,
            plan_json,
            kinds: KindIndex::default(),
            pending: StatsSet::new(0),
            collector: Collector::new(Vec::new().into()),
            dispatched: 0,
            pacer,
            next_step: None,
            ramp_done_sent: true,
            phase,
            started: Instant::now(),
            started_unix_s: unix_now_s(),
            run_deadline: None,
            stop_reason: StopReason::Stopped,
            channels,
        }
    }

    /// Starts the clock, the statistics and the ramp.
    pub(super) fn begin(&mut self) {
        self.phase = Phase::Running;
        self.started = Instant::now();
        self.started_unix_s = unix_now_s();
        self.collector = Collector::new(self.kinds.kinds().to_vec().into());
        self.pending = StatsSet::new(self.kinds.kinds().len());
        self.run_deadline = self.plan.run_time.map(|d| tokio::time::Instant::now() + d);
        self.start_ramp();
    }

    /// The result (publish the last snapshot first), and where to send it.
    pub(super) fn into_result(
        self,
    ) -> (
        RunResult,
        tokio::sync::oneshot::Sender<Result<RunResult, super::master::MasterError>>,
    ) {
        let duration_s = self.started.elapsed().as_secs_f64();
        let kinds = self.kinds.kinds().to_vec();
        let (stats, timeline) = self.collector.into_parts();
        let result = RunResult {
            plan: self.plan,
            kinds,
            stats,
            timeline,
            started_unix_s: self.started_unix_s,
            duration_s,
            stop_reason: self.stop_reason,
        };
        (result, self.channels.result)
    }

    pub(super) fn running(&self) -> bool {
        matches!(self.phase, Phase::Running)
    }

    /// Locust-style options for Python workers, which read them (no secrets here).
    pub(super) fn parsed_options(&self, expect_workers: usize) -> Value {
        let p = &self.plan;
        super::protocol::map(vec![
            ("host", Value::from(p.host.as_str())),
            ("num_users", Value::from(self.target_users)),
            ("spawn_rate", Value::F64(self.spawn_rate)),
            ("headless", Value::Boolean(true)),
            ("stop_timeout", Value::F64(p.stop_timeout.as_secs_f64())),
            ("expect_workers", Value::from(expect_workers as u64)),
        ])
    }

    /// Starts pacing towards `target_users`: Locust steps by max(1, floor(rate)) users every
    /// step/rate seconds, the first at once.
    pub(super) fn start_ramp(&mut self) {
        self.ramp_done_sent = false;
        let step = Pacer::locust_step(self.spawn_rate);
        self.pacer.restart(self.spawn_rate, step, Instant::now());
        self.next_step = Some(tokio::time::Instant::now());
    }

    /// Feeds the statistics received since the last publication to the collector and
    /// publishes a snapshot.
    pub(super) fn publish(&mut self, nodes: &Nodes, state: RunState) {
        let delta = std::mem::replace(&mut self.pending, StatsSet::new(self.kinds.kinds().len()));
        self.collector.set_kinds(self.kinds.kinds().to_vec().into());
        let elapsed_s = match self.phase {
            Phase::Waiting { .. } => 0.0,
            _ => self.started.elapsed().as_secs_f64(),
        };
        let snap = self.collector.push(
            &delta,
            Live {
                state,
                elapsed_s,
                users: nodes.users(),
                target_users: self.target_users,
                in_flight: nodes.in_flight(),
            },
        );
        self.channels.snapshots.send_replace(snap);
    }

    pub(super) fn state(&self) -> RunState {
        match self.phase {
            Phase::Waiting { .. } => RunState::Spawning,
            Phase::Running if self.next_step.is_some() => RunState::Spawning,
            Phase::Running => RunState::Running,
            Phase::Stopping { .. } => RunState::Stopping,
        }
    }
}
