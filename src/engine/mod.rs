//! The engine: starts users, paces spawning, stops the test, and publishes what was measured.
//!
//! It never prints. It publishes a [`Snapshot`] once a second on a watch channel (console,
//! web UI and reports subscribe) and returns a [`RunResult`] at the end. It is driven through
//! [`RunHandle`]: stop, change the number of users, reset statistics.

pub mod collector;
mod users;

use crate::client::{bearer, ClientShared, RequestSpec, Target, TargetError, Tokenizer};
use crate::config::Plan;
use crate::metrics::{RequestKind, ShardedRecorder, StatsSet, TimelinePoint};
use crate::workload::{ChatSpec, ChatTemplate};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use users::{user_loop, UserCtx};

/// Why the engine refused a plan.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The host is not a usable URL.
    #[error("--host / GSAI_HOST: {0}")]
    Target(#[from] TargetError),
    /// The token cannot be sent in a header.
    #[error("--token / GSA_AUTH_TOKEN contains characters that cannot be sent in an HTTP header (check for a stray newline or quote)")]
    Token,
}

/// Phase of a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Users are being started.
    Spawning,
    /// All users started.
    Running,
    /// No new requests; in-flight ones are finishing.
    Stopping,
    /// Over.
    Stopped,
}

/// Why a test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--run-time` elapsed.
    RunTime,
    /// `--max-requests` reached.
    MaxRequests,
    /// Stopped from outside (Ctrl-C, web UI, API).
    Stopped,
}

/// What the engine publishes once a second.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Phase.
    pub state: RunState,
    /// Seconds since start.
    pub elapsed_s: f64,
    /// Users running now.
    pub users: u64,
    /// Users asked for.
    pub target_users: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Current-window figures.
    pub point: TimelinePoint,
    /// Cumulative statistics.
    pub stats: StatsSet,
    /// The stats rows' identities, indexed like `stats.rows`.
    pub kinds: Arc<[RequestKind]>,
}

/// Everything a finished test measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The plan that ran.
    pub plan: Plan,
    /// The stats rows' identities, indexed like `stats.rows`.
    pub kinds: Vec<RequestKind>,
    /// Cumulative statistics.
    pub stats: StatsSet,
    /// One point a second.
    pub timeline: Vec<TimelinePoint>,
    /// Start, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Wall-clock duration of the test, seconds.
    pub duration_s: f64,
    /// Why it ended.
    pub stop_reason: StopReason,
}

enum Command {
    Stop,
    SetUsers { users: u64, spawn_rate: f64 },
    Reset,
}

/// A cloneable means to stop a test (e.g. from a signal handler).
#[derive(Clone)]
pub struct Stopper(mpsc::UnboundedSender<Command>);

impl Stopper {
    /// Stops the test, as [`RunHandle::stop`].
    pub fn stop(&self) {
        let _ = self.0.send(Command::Stop);
    }
}

/// Control and observation of a running test.
pub struct RunHandle {
    commands: mpsc::UnboundedSender<Command>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<RunResult>,
}

impl RunHandle {
    /// Stops the test: no new requests; in-flight ones get `stop_timeout` to finish.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Changes the number of users (and the spawn rate used to get there).
    pub fn set_users(&self, users: u64, spawn_rate: f64) {
        let _ = self.commands.send(Command::SetUsers { users, spawn_rate });
    }

    /// Forgets statistics gathered so far (the test goes on).
    pub fn reset_stats(&self) {
        let _ = self.commands.send(Command::Reset);
    }

    /// A cloneable stopper.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.commands.clone())
    }

    /// A receiver of the once-a-second snapshots.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Waits for the end of the test.
    pub async fn wait(self) -> RunResult {
        match self.task.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Number of recorder shards: enough that users on different threads rarely share one.
fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 8)
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Optional taps on a run, for callers that need more than snapshots.
#[derive(Debug, Default)]
pub struct EngineHooks {
    /// Receives every per-second statistics delta in order, the last ones at stop included;
    /// it is dropped when the run ends, so the receiver reads `None` after the final delta.
    /// Statistics dropped by [`RunHandle::reset_stats`] are not sent. The distributed worker
    /// ships these deltas to its master.
    pub deltas: Option<mpsc::UnboundedSender<StatsSet>>,
}

/// Starts a test on the current tokio runtime.
pub fn start(plan: Plan) -> Result<RunHandle, EngineError> {
    start_with(plan, EngineHooks::default())
}

/// Starts a test on the current tokio runtime, with taps.
pub fn start_with(plan: Plan, hooks: EngineHooks) -> Result<RunHandle, EngineError> {
    let target = Target::parse(&plan.host)?;
    let auth = match &plan.token {
        Some(t) => Some(bearer(t.expose()).ok_or(EngineError::Token)?),
        None => None,
    };
    let template = ChatTemplate::new(&ChatSpec {
        api: plan.api,
        model: &plan.model,
        prompt: &plan.prompt,
        max_tokens: plan.max_tokens,
        chat_id: plan.chat_id,
        extra: plan.body.as_ref(),
    });
    let spec = RequestSpec::new(
        &target,
        hyper::Method::POST,
        &template.path,
        auth.as_ref(),
        true,
    );
    let kinds = vec![RequestKind {
        method: "POST".into(),
        name: template.path.clone(),
    }];
    let recorder = Arc::new(ShardedRecorder::new(shard_count(), kinds.len(), None));
    let client = Arc::new(ClientShared {
        target,
        timeouts: plan.timeouts,
        lenient: plan.lenient,
        tokenizer: Tokenizer::new(),
        secret: plan.token.as_ref().map(|t| t.expose().to_string()),
    });
    let ctx = Arc::new(UserCtx {
        client,
        spec,
        template,
        wait: plan.wait,
        recorder,
        started: 0.into(),
        ended: 0.into(),
        max_requests: plan.max_requests,
        limit_reached: CancellationToken::new(),
        active: 0.into(),
        in_flight: 0.into(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let first = Arc::new(Snapshot {
        state: RunState::Spawning,
        elapsed_s: 0.0,
        users: 0,
        target_users: plan.users,
        in_flight: 0,
        point: TimelinePoint::default(),
        stats: StatsSet::new(kinds.len()),
        kinds: kinds.clone().into(),
    });
    let (snap_tx, snap_rx) = watch::channel(first);
    let task = tokio::spawn(run(plan, kinds, ctx, rx, snap_tx, hooks));
    Ok(RunHandle {
        commands: tx,
        snapshots: snap_rx,
        task,
    })
}

/// The run task: spawns and retires users, collects once a second, stops.
async fn run(
    plan: Plan,
    kinds: Vec<RequestKind>,
    ctx: Arc<UserCtx>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    hooks: EngineHooks,
) -> RunResult {
    let started = Instant::now();
    let started_unix_s = unix_now_s();
    let cancel = CancellationToken::new();
    let mut users: JoinSet<()> = JoinSet::new();
    let mut user_stops: Vec<CancellationToken> = Vec::new();
    let mut next_id = 0usize;
    let mut target_users = plan.users;
    let mut spawn_rate = plan.spawn_rate.max(0.001);
    let mut spawned_at = started;
    let mut spawn_debt = 0.0f64;
    let mut collector = Collector::new(kinds.clone().into(), hooks.deltas);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut spawn_tick = tokio::time::interval(Duration::from_millis(10));
    spawn_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = plan.run_time.map(|d| started + d);
    let sleep_until_deadline = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until_deadline);

    let stop_reason = loop {
        tokio::select! {
            _ = &mut sleep_until_deadline => break StopReason::RunTime,
            _ = ctx.limit_reached.cancelled() => break StopReason::MaxRequests,
            cmd = commands.recv() => match cmd {
                Some(Command::Stop) | None => break StopReason::Stopped,
                Some(Command::SetUsers { users: n, spawn_rate: r }) => {
                    target_users = n;
                    spawn_rate = r.max(0.001);
                    spawn_debt = 0.0;
                    spawned_at = Instant::now();
                }
                Some(Command::Reset) => {
                    ctx.recorder.drain();
                    collector.reset();
                }
            },
            _ = spawn_tick.tick(), if user_stops.len() as u64 != target_users => {
                let now = Instant::now();
                spawn_debt += now.duration_since(spawned_at).as_secs_f64() * spawn_rate;
                spawned_at = now;
                // Spawn at least one user on the first tick so tiny rates still start.
                let due = spawn_debt.floor().max(if next_id == 0 { 1.0 } else { 0.0 }) as u64;
                spawn_debt -= due as f64;
                let have = user_stops.len() as u64;
                if have < target_users {
                    for _ in 0..due.min(target_users - have) {
                        let stop = CancellationToken::new();
                        user_stops.push(stop.clone());
                        users.spawn(user_loop(next_id, ctx.clone(), stop, cancel.clone()));
                        next_id += 1;
                    }
                } else {
                    // Fewer users wanted: the newest ones finish their request and leave.
                    for _ in 0..(have - target_users).min(due.max(1)) {
                        if let Some(s) = user_stops.pop() {
                            s.cancel();
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let state = if user_stops.len() as u64 == target_users { RunState::Running } else { RunState::Spawning };
                collector.collect(&ctx, started, target_users, state, &snapshots);
            }
            Some(_) = users.join_next(), if !users.is_empty() => {}
        }
    };

    // Stop: no new requests; let in-flight ones finish for stop_timeout, then cancel them.
    for s in &user_stops {
        s.cancel();
    }
    collector.collect(&ctx, started, target_users, RunState::Stopping, &snapshots);
    let grace = tokio::time::sleep(plan.stop_timeout);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            joined = users.join_next() => if joined.is_none() { break },
            _ = &mut grace => {
                cancel.cancel();
                while users.join_next().await.is_some() {}
                break;
            }
            _ = tick.tick() => collector.collect(&ctx, started, target_users, RunState::Stopping, &snapshots),
        }
    }
    collector.collect(&ctx, started, target_users, RunState::Stopped, &snapshots);
    let (stats, timeline) = collector.inner.into_parts();
    RunResult {
        plan,
        kinds,
        stats,
        timeline,
        started_unix_s,
        duration_s: started.elapsed().as_secs_f64(),
        stop_reason,
    }
}

/// The engine's side of the [`collector::Collector`]: drains the shards into a delta, hands it
/// to the delta tap, and publishes the snapshot.
struct Collector {
    inner: collector::Collector,
    tap: Option<mpsc::UnboundedSender<StatsSet>>,
}

impl Collector {
    fn new(kinds: Arc<[RequestKind]>, tap: Option<mpsc::UnboundedSender<StatsSet>>) -> Self {
        Self {
            inner: collector::Collector::new(kinds),
            tap,
        }
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn collect(
        &mut self,
        ctx: &UserCtx,
        started: Instant,
        target_users: u64,
        state: RunState,
        snapshots: &watch::Sender<Arc<Snapshot>>,
    ) {
        let delta = ctx.recorder.drain();
        let snap = self.inner.push(
            &delta,
            collector::Live {
                state,
                elapsed_s: started.elapsed().as_secs_f64(),
                users: ctx.active.load(Ordering::Relaxed),
                target_users,
                in_flight: ctx.in_flight.load(Ordering::Relaxed),
            },
        );
        if let Some(tap) = &self.tap {
            let _ = tap.send(delta);
        }
        let _ = snapshots.send(snap);
    }
}
