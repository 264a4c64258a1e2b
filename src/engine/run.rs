//! The run task: starts and retires closed-loop users (paced by the spawn rate or the stages),
//! or runs the open-loop arrival scheduler; collects once a second; checks stop conditions;
//! and stops: no new requests, `--stop-timeout` for the in-flight ones, then cancellation.

use super::collector::{Collector, Live};
use super::pacer::Pacer;
use super::users::{arrival, user_loop, UserCtx};
use super::{Command, EngineHooks, RunResult, RunState, Snapshot, StopReason};
use crate::config::{Arrival, Plan, Stages};
use crate::metrics::clock::unix_now_s;
use crate::metrics::RequestKind;
use crate::metrics::StatsSet;
use crate::observe::health::{HealthMonitor, HealthNow};
use crate::workload::trace::Trace;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Failure-ratio aborts wait for this many finished requests, so one early failure cannot abort.
const MIN_REQUESTS_FOR_FAIL_RATE: u64 = 20;

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Closed-loop population: spawns users toward a target at a rate, or retires the newest.
struct Population {
    users: JoinSet<()>,
    stops: Vec<CancellationToken>,
    next_id: usize,
    target: u64,
    pacer: Pacer,
}

impl Population {
    fn adjust(&mut self, ctx: &Arc<UserCtx>, immediate: bool) {
        let have = self.stops.len() as u64;
        let wanted = have.abs_diff(self.target);
        // Stages set the target continuously; the ramp is the stage's slope, so follow at once.
        let due = if immediate {
            wanted
        } else {
            self.pacer.take(Instant::now(), wanted)
        };
        if have < self.target {
            for _ in 0..due.min(self.target - have) {
                let stop = CancellationToken::new();
                self.stops.push(stop.clone());
                self.users.spawn(user_loop(self.next_id, ctx.clone(), stop));
                self.next_id += 1;
            }
        } else {
            // Fewer users wanted: the newest finish their request and leave.
            for _ in 0..(have - self.target).min(due.max(1)) {
                if let Some(s) = self.stops.pop() {
                    s.cancel();
                }
            }
        }
    }
}

/// The open-loop scheduler: starts requests at their intended times regardless of responses;
/// an arrival that finds `max_concurrency` requests in flight is dropped and counted.
/// The open-loop schedule's fixed parameters.
struct OpenLoop {
    arrival: Arrival,
    max_concurrency: Option<u64>,
    started: Instant,
    /// No arrival is scheduled at or after this instant (end of run time or stages).
    end: Option<Instant>,
    /// `--trace`: arrival n is due at `started` + its offset, and the schedule ends with it.
    trace: Option<Arc<Trace>>,
}

async fn scheduler(
    ctx: Arc<UserCtx>,
    shape: OpenLoop,
    mut rate: watch::Receiver<RateShape>,
    stop: CancellationToken,
    cancel: CancellationToken,
    main: tokio::runtime::Handle,
) {
    let OpenLoop {
        arrival: arrival_kind,
        max_concurrency,
        started,
        end,
        trace,
    } = shape;
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut rng = SmallRng::seed_from_u64(ctx.seed ^ 0xA5A5_5A5A);
    let mut next = started;
    let mut n: u64 = 0;
    'schedule: loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                // Catch up on every arrival that is due, each keeping its intended time.
                while next <= now {
                    // Arrivals scheduled after the end of the test are not part of it, even
                    // when the stop signal reaches us a little late.
                    if end.is_some_and(|e| next >= e) {
                        break 'schedule;
                    }
                    let current = rate.borrow_and_update().at(next.saturating_duration_since(started));
                    if max_concurrency.is_some_and(|m| ctx.active.load(Ordering::Relaxed) >= m) {
                        let kind = ctx.workload.pick_kind(&mut rng);
                        ctx.recorder.record_dropped(n as usize, kind, next);
                    } else if ctx.take_ticket() {
                        ctx.active.fetch_add(1, Ordering::Relaxed);
                        tasks.spawn_on(arrival(n, ctx.clone(), next), &main);
                    } else {
                        break 'schedule;
                    }
                    n += 1;
                    if let Some(t) = &trace {
                        match t.due(n as usize) {
                            Some(due) => next = started + due,
                            // The trace is done: wait for its last requests below.
                            None => break 'schedule,
                        }
                        continue;
                    }
                    match arrival_kind.gap(current, &mut rng) {
                        Some(gap) => next += gap,
                        None => {
                            // Rate 0 for now: look again shortly.
                            next = now + Duration::from_millis(50);
                            break;
                        }
                    }
                }
            }
            _ = rate.changed() => next = next.min(Instant::now()),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Let in-flight arrivals finish; after --stop-timeout the run cancels them (abort: each
    // records itself as cancelled as it is dropped).
    let mut aborted = false;
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { break },
            _ = cancel.cancelled(), if !aborted => {
                tasks.abort_all();
                aborted = true;
            }
        }
    }
}

/// Runs the scheduler on a thread of its own (a current-thread runtime), so that arrivals
/// are launched on time even while the workers are busy with responses and the once-a-second
/// collection; the requests themselves run on the main runtime. Resolves when it has ended.
fn spawn_scheduler(
    ctx: Arc<UserCtx>,
    shape: OpenLoop,
    rate: watch::Receiver<RateShape>,
    stop: CancellationToken,
    cancel: CancellationToken,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let main = tokio::runtime::Handle::current();
    let job = move || {
        let fut = scheduler(ctx, shape, rate, stop, cancel, main.clone());
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(fut),
            // No runtime of its own: share the main one (less punctual, still correct).
            Err(_) => main.block_on(fut),
        }
        let _ = done_tx.send(());
    };
    if let Err(e) = std::thread::Builder::new()
        .name("gsai-scheduler".into())
        .spawn(job)
    {
        // Without a thread the open loop cannot run; say so and end at once.
        eprintln!("error: cannot start the open-loop scheduler thread: {e}");
    }
    done_rx
}

/// The open-loop rate over time: fixed, or ramped through stages.
#[derive(Clone, Debug)]
struct RateShape {
    base: f64,
    stages: Option<Arc<Stages>>,
}

impl RateShape {
    fn at(&self, t: Duration) -> f64 {
        self.stages
            .as_ref()
            .and_then(|s| s.target_at(self.base, t))
            .unwrap_or(self.base)
    }
}

/// Drains the recorder once: the delta goes to the tap (if any) and the collector, whose
/// snapshot is published.
struct Publisher {
    collector: Collector,
    tap: Option<mpsc::UnboundedSender<StatsSet>>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    started: Instant,
    health: watch::Receiver<HealthNow>,
}

impl Publisher {
    fn collect(&mut self, ctx: &UserCtx, state: RunState, target_users: u64) -> Arc<Snapshot> {
        let delta = ctx.recorder.drain();
        let snap = self.collector.push(
            &delta,
            Live {
                state,
                elapsed_s: self.started.elapsed().as_secs_f64(),
                users: ctx.active.load(Ordering::Relaxed),
                target_users,
                in_flight: ctx.in_flight.load(Ordering::Relaxed),
                health: *self.health.borrow(),
            },
        );
        if let Some(tap) = &self.tap {
            let _ = tap.send(delta);
        }
        let _ = self.snapshots.send(snap.clone());
        snap
    }
}

/// The run task.
pub(super) async fn run(
    plan: Plan,
    kinds: Arc<[RequestKind]>,
    ctx: Arc<UserCtx>,
    started: Instant,
    hooks: EngineHooks,
    mut commands: mpsc::UnboundedReceiver<Command>,
    snapshots: watch::Sender<Arc<Snapshot>>,
) -> RunResult {
    let started_unix_s = unix_now_s() - started.elapsed().as_secs_f64();
    let stop = CancellationToken::new();
    let cancel = CancellationToken::new();
    let monitor = HealthMonitor::start();
    let mut publisher = Publisher {
        health: monitor.live(),
        collector: Collector::new(kinds.clone()),
        tap: hooks.deltas,
        snapshots,
        started,
    };
    let stages: Option<Arc<Stages>> = plan.stages.clone().map(Arc::new);
    let mut stages_active = stages.is_some();
    let mut pop = Population {
        users: JoinSet::new(),
        stops: Vec::new(),
        next_id: 0,
        target: if stages.is_some() && plan.rate.is_none() {
            0
        } else {
            plan.users
        },
        pacer: Pacer::new(plan.spawn_rate, 1, started),
    };
    let (rate_tx, rate_rx) = watch::channel(RateShape {
        base: plan.rate.unwrap_or(0.0),
        stages: stages.clone(),
    });
    let trace = ctx.trace.clone();
    let replay = trace.is_some();
    let open = plan.rate.is_some() || replay;
    let open_loop = open.then(|| {
        let shape = OpenLoop {
            arrival: plan.arrival,
            max_concurrency: plan.max_concurrency,
            started,
            end: [plan.run_time, plan.stages.as_ref().map(Stages::total)]
                .into_iter()
                .flatten()
                .min()
                .map(|d| started + d),
            trace,
        };
        spawn_scheduler(ctx.clone(), shape, rate_rx, stop.clone(), cancel.clone())
    });
    let mut tick = tokio::time::interval_at(
        (started + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut spawn_tick = tokio::time::interval(Duration::from_millis(10));
    spawn_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let run_deadline = sleep_until_opt(plan.run_time.map(|d| started + d));
    let stages_deadline = sleep_until_opt(stages.as_ref().map(|s| started + s.total()));
    tokio::pin!(run_deadline, stages_deadline);

    let mut open_loop = open_loop;
    let mut cancel_now = false;
    let stop_reason = loop {
        tokio::select! {
            _ = &mut run_deadline => break StopReason::RunTime,
            // A replayed trace ends once its last request has ended.
            _ = async { if let Some(h) = open_loop.as_mut() { let _ = h.await; } }, if replay && open_loop.is_some() => {
                open_loop = None;
                break StopReason::TraceComplete;
            }
            _ = &mut stages_deadline, if stages_active => break StopReason::StagesComplete,
            _ = ctx.limit_reached.cancelled() => break StopReason::MaxRequests,
            cmd = commands.recv() => match cmd {
                Some(Command::Stop) | None => break StopReason::Stopped,
                Some(Command::CancelNow) => {
                    cancel_now = true;
                    break StopReason::Stopped;
                }
                Some(Command::SetUsers { users, spawn_rate }) => {
                    // A manual change takes over from the stages.
                    stages_active = false;
                    if plan.rate.is_some() {
                        let _ = rate_tx.send(RateShape { base: users as f64, stages: None });
                    }
                    pop.target = users;
                    pop.pacer.restart(spawn_rate, 1, Instant::now());
                }
                Some(Command::Reset) => {
                    ctx.recorder.drain();
                    publisher.collector.reset();
                }
            },
            _ = spawn_tick.tick(), if !open && (stages_active || pop.stops.len() as u64 != pop.target) => {
                if let (true, Some(s)) = (stages_active, &stages) {
                    if let Some(t) = s.target_at(0.0, started.elapsed()) {
                        pop.target = t.round() as u64;
                    }
                }
                pop.adjust(&ctx, stages_active);
            }
            _ = tick.tick() => {
                let target = if open { plan.max_concurrency.unwrap_or(0) } else { pop.target };
                let state = if open || pop.stops.len() as u64 == pop.target { RunState::Running } else { RunState::Spawning };
                let total = publisher.collect(&ctx, state, target).stats.total();
                if plan.max_failures.is_some_and(|m| total.failures >= m) {
                    break StopReason::MaxFailures;
                }
                if let Some(max) = plan.max_fail_rate {
                    if total.requests >= MIN_REQUESTS_FOR_FAIL_RATE && total.failures as f64 / total.requests as f64 > max {
                        break StopReason::MaxFailRate;
                    }
                }
            }
            Some(_) = pop.users.join_next(), if !pop.users.is_empty() => {}
        }
    };

    // Stop: no new requests; in-flight ones get stop_timeout to finish, then are cancelled.
    stop.cancel();
    for s in &pop.stops {
        s.cancel();
    }
    let target = pop.target;
    publisher.collect(&ctx, RunState::Stopping, target);
    let grace = tokio::time::sleep(if cancel_now {
        Duration::ZERO
    } else {
        plan.stop_timeout
    });
    tokio::pin!(grace);
    let mut commands_open = true;
    loop {
        let open_done = open_loop.is_none();
        if pop.users.is_empty() && open_done {
            break;
        }
        tokio::select! {
            Some(_) = pop.users.join_next(), if !pop.users.is_empty() => {}
            _ = async { if let Some(h) = open_loop.as_mut() { let _ = h.await; } }, if !open_done => {
                // The scheduler is done once every arrival it launched has ended.
                open_loop = None;
            }
            _ = &mut grace, if !cancel.is_cancelled() => {
                cancel.cancel();
                pop.users.abort_all();
            }
            cmd = commands.recv(), if commands_open && !cancel.is_cancelled() => match cmd {
                Some(Command::CancelNow) => {
                    cancel.cancel();
                    pop.users.abort_all();
                }
                Some(_) => {}
                None => commands_open = false,
            },
            _ = tick.tick() => {
                publisher.collect(&ctx, RunState::Stopping, target);
            }
        }
    }
    publisher.collect(&ctx, RunState::Stopped, target);
    let (stats, timeline) = publisher.collector.into_parts();
    let schedule_lag_p99_ms = open.then_some(()).and_then(|()| {
        let total = stats.total();
        total
            .metric(crate::metrics::MetricId::ScheduleLag)
            .quantile(0.99)
            .map(|us| us as f64 / 1000.0)
    });
    let generator = monitor
        .finish()
        .await
        .with_schedule_lag(schedule_lag_p99_ms);
    RunResult {
        plan,
        kinds: kinds.to_vec(),
        stats,
        timeline,
        started_unix_s,
        duration_s: started.elapsed().as_secs_f64(),
        stop_reason,
        generator: Some(generator),
    }
}
