//! The web controller: owns the current test's handle ([`Running`]: a local engine run or a
//! master's) and the last [`RunResult`], and keeps, from the engine's once-a-second snapshots, the latest snapshot, the whole timeline and
//! a short window of per-row counts (for "current" rates per stats row).
//!
//! Everything lives behind one std `Mutex` held only for short, await-free sections: a spawned
//! watcher task per test copies each snapshot in, and takes the handle out to collect the result
//! once the engine's snapshot channel closes.

use super::rates::{RateWindow, Rates};
use crate::cluster::master::MasterError;
use crate::cluster::nodes::WorkerView;
use crate::config::{ApiKind, Field, Plan, PlanError, PlanInput, Secret, TokenWithheld};
use crate::driver::{Runner, Running};
use crate::engine::{EngineError, RunResult, RunState, Snapshot, StopReason};
use crate::metrics::clock::unix_now_s;
use crate::metrics::{RequestKind, StatsSet, TimelinePoint};
use crate::report::history::{HistoryBuilder, HistoryTick};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Why the controller refused a request. Each message names the form field to fix.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No host in the form and none configured.
    #[error("no host: fill in Host (e.g. http://localhost:8080) or start gsai-load with GSAI_HOST / --host")]
    MissingHost,
    /// No model in the form and none configured.
    #[error("no model: fill in Model or start gsai-load with CHAT_MODEL / --model")]
    MissingModel,
    /// A form field is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The form field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An action that needs a running test, with none running.
    #[error("no test is running")]
    NotRunning,
    /// The current test is stopping; a new one can start once it has stopped.
    #[error("the test is stopping: wait until it has stopped, then start a new one")]
    Stopping,
    /// The engine refused the plan.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The master refused the test (no worker connected, ...).
    #[error(transparent)]
    Master(#[from] MasterError),
    /// The plan is unusable for another reason (its scenario file, ...).
    #[error(transparent)]
    Plan(PlanError),
}

impl From<PlanError> for WebError {
    /// The plan's rules, named as the form names its fields.
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::MissingHost => WebError::MissingHost,
            PlanError::MissingModel => WebError::MissingModel,
            PlanError::Invalid { field, reason } => WebError::Invalid {
                field: field.form_field().unwrap_or(field.flag()),
                reason,
            },
            PlanError::Limit(l) => WebError::Invalid {
                field: Field::form_name_of_flag(l.flag).unwrap_or(l.flag),
                reason: format!("{} is more than the maximum of {}", l.value, l.max),
            },
            other => WebError::Plan(other),
        }
    }
}

/// What the start form may set; everything else comes from the command line's plan.
#[derive(Clone, Debug, Default)]
pub struct StartRequest {
    /// Number of users.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Target base URL (`None` or empty: the configured one).
    pub host: Option<String>,
    /// Model id (`None` or empty: the configured one).
    pub model: Option<String>,
    /// Stop after this long (`None`: until stopped).
    pub run_time: Option<Duration>,
    /// API flavour (`None`: the configured one).
    pub api: Option<ApiKind>,
    /// A token for this test's host (`None`: the configured token, sent only if this test's
    /// host has the origin of `GSAI_HOST` / `--host`).
    pub token: Option<Secret>,
}

/// What a start or edit did.
#[derive(Clone, Debug, PartialEq)]
pub enum Started {
    /// A new test started, with this id and host.
    New {
        /// Id of the new test (1, 2, ...).
        run_id: u64,
        /// Its target.
        host: String,
        /// Why the configured token is not sent to this host, if it is not.
        token_withheld: Option<TokenWithheld>,
    },
    /// The running test's users or spawn rate changed.
    Edited {
        /// Target.
        host: String,
    },
}

/// The form's prefilled values (never the token).
#[derive(Clone, Debug)]
pub struct FormDefaults {
    /// Users.
    pub users: u64,
    /// Spawn rate, users/s.
    pub spawn_rate: f64,
    /// Host from GSAI_HOST / --host, if any.
    pub host: Option<String>,
    /// Model from CHAT_MODEL / --model, if any.
    pub model: Option<String>,
    /// Run time from -t, if any.
    pub run_time: Option<Duration>,
    /// API flavour.
    pub api: ApiKind,
}

/// The current or last test as the UI sees it.
struct Test {
    run_id: u64,
    plan: Plan,
    started_unix_s: f64,
    /// Commands go here while the test runs; taken out when the watcher collects the result.
    handle: Option<Running>,
    stop_requested: bool,
    latest: Arc<Snapshot>,
    timeline: Vec<TimelinePoint>,
    rates: RateWindow,
    /// Locust's stats history, a tick a snapshot (for the stats-history CSV download).
    history: HistoryBuilder,
    ticks: Vec<HistoryTick>,
    /// Set when the test is over.
    result: Option<Arc<RunResult>>,
}

struct Inner {
    next_run_id: u64,
    test: Option<Test>,
}

struct Shared {
    template: PlanInput,
    runner: Runner,
    defaults: FormDefaults,
    inner: Mutex<Inner>,
    finished: watch::Sender<Option<Arc<RunResult>>>,
    /// `--server-metrics`: scraped from each test's start to its end.
    server: super::server_metrics::ServerWatch,
}

/// Phase of the controller as the UI names it (Locust's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UiState {
    /// No test yet.
    Ready,
    /// Users are being started (or retired).
    Spawning,
    /// All users started.
    Running,
    /// Stop asked; in-flight requests are finishing.
    Stopping,
    /// The last test is over.
    Stopped,
}

/// A consistent copy of what the UI shows, taken under the lock.
#[derive(Clone, Debug)]
pub struct View {
    /// Phase.
    pub state: UiState,
    /// Id of the current or last test (0: none yet).
    pub run_id: u64,
    /// Its plan (token redacted when serialized), if a test ran.
    pub plan: Option<Plan>,
    /// Users running now.
    pub users: u64,
    /// Users asked for.
    pub target_users: u64,
    /// Requests in flight.
    pub in_flight: u64,
    /// Seconds since the test started (its duration once over).
    pub elapsed_s: f64,
    /// Latest timeline point (current percentiles and rates).
    pub point: TimelinePoint,
    /// Stats rows' identities.
    pub kinds: Arc<[RequestKind]>,
    /// Cumulative statistics.
    pub stats: StatsSet,
    /// Rates per row (current while running, whole-test averages once over); last is Aggregated.
    pub rates: Vec<Rates>,
    /// Why the test ended, once it has.
    pub stop_reason: Option<StopReason>,
    /// The master's workers (`None`: a single process).
    pub workers: Option<Arc<[WorkerView]>>,
    /// The load generator's self-check: the last second's while running, the whole test's
    /// once over (`None` before a test, or when a result has none).
    pub generator: Option<crate::observe::health::HealthNow>,
}

/// Whole-test average rates of a finished test's rows (last: Aggregated).
fn average_rates(stats: &StatsSet) -> Vec<Rates> {
    let mut rows: Vec<_> = stats.rows.clone();
    rows.push(stats.total());
    rows.iter()
        .map(|r| {
            let span = r.span_s();
            let per_s = |n: u64| if span > 0.0 { n as f64 / span } else { 0.0 };
            Rates {
                rps: per_s(r.requests),
                fps: per_s(r.failures),
                tokens_per_s: per_s(r.metric(crate::metrics::MetricId::OutputTokens).sum()),
            }
        })
        .collect()
}

/// The web UI's controller; cheap to clone (shared state).
#[derive(Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl Controller {
    /// A controller whose tests use `template` (every setting from the command line; host and
    /// model may be missing) with the form's users, spawn rate, host, model, run time and API
    /// put in, built by [`Plan::build`] as the command line's plan is.
    pub fn new(template: impl Into<PlanInput>, defaults: FormDefaults) -> Self {
        Self::with_runner(template, defaults, Runner::Local)
    }

    /// As [`Controller::new`], with tests started by `runner` (e.g. over a master's workers).
    pub fn with_runner(
        template: impl Into<PlanInput>,
        defaults: FormDefaults,
        runner: Runner,
    ) -> Self {
        let (finished, _) = watch::channel(None);
        Self {
            shared: Arc::new(Shared {
                template: template.into(),
                runner,
                defaults,
                inner: Mutex::new(Inner {
                    next_run_id: 1,
                    test: None,
                }),
                finished,
                server: Default::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the UI down with it: the data stays usable.
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The form's prefilled values.
    pub fn defaults(&self) -> &FormDefaults {
        &self.shared.defaults
    }

    /// What runs the tests.
    pub fn runner(&self) -> &Runner {
        &self.shared.runner
    }

    /// The `--server-metrics` of the current or last test (configure it before the first test).
    pub fn server_metrics(&self) -> &super::server_metrics::ServerWatch {
        &self.shared.server
    }

    /// Tells of every finished test's result.
    pub fn finished(&self) -> watch::Receiver<Option<Arc<RunResult>>> {
        self.shared.finished.subscribe()
    }

    /// Starts a new test, or, while one runs, changes its users and spawn rate (as Locust's
    /// form does when posted again). Host, model, run time and API apply to new tests only.
    pub fn swarm(&self, req: StartRequest) -> Result<Started, WebError> {
        check_users(req.users, req.spawn_rate)?;
        let mut inner = self.lock();
        if let Some(test) = inner.test.as_ref().filter(|t| t.result.is_none()) {
            let Some(handle) = test.handle.as_ref().filter(|_| !test.stop_requested) else {
                return Err(WebError::Stopping);
            };
            handle.set_users(req.users, req.spawn_rate);
            return Ok(Started::Edited {
                host: test.plan.host.clone(),
            });
        }
        let plan = self.plan_for(&req)?;
        let run_id = inner.next_run_id;
        let handle = self.shared.runner.start(plan.clone())?;
        self.shared.server.start();
        inner.next_run_id += 1;
        let host = plan.host.clone();
        let token_withheld = plan.token_withheld();
        if let Some(notice) = &token_withheld {
            // The operator watching the console sees why the service answers 401.
            eprintln!("test {run_id}: {notice}");
        }
        let snapshots = handle.subscribe();
        let latest = snapshots.borrow().clone();
        let started_unix_s = unix_now_s();
        inner.test = Some(Test {
            run_id,
            plan,
            started_unix_s,
            handle: Some(handle),
            stop_requested: false,
            latest,
            timeline: Vec::new(),
            rates: RateWindow::default(),
            history: HistoryBuilder::new(started_unix_s),
            ticks: Vec::new(),
            result: None,
        });
        drop(inner);
        tokio::spawn(self.clone().watch(run_id, snapshots));
        Ok(Started::New {
            run_id,
            host,
            token_withheld,
        })
    }

    /// Changes the running test's users and spawn rate.
    pub fn set_users(&self, users: u64, spawn_rate: f64) -> Result<String, WebError> {
        check_users(users, spawn_rate)?;
        let inner = self.lock();
        let test = inner
            .test
            .as_ref()
            .filter(|t| t.result.is_none())
            .ok_or(WebError::NotRunning)?;
        match &test.handle {
            Some(h) if !test.stop_requested => {
                h.set_users(users, spawn_rate);
                Ok(test.plan.host.clone())
            }
            _ => Err(WebError::Stopping),
        }
    }

    /// Stops the running test (in-flight requests get the plan's stop timeout).
    pub fn stop(&self) -> Result<(), WebError> {
        self.stop_with(Running::stop)
    }

    /// Stops the running test and cancels its in-flight requests at once (the second Ctrl-C).
    pub fn cancel_now(&self) -> Result<(), WebError> {
        self.stop_with(Running::cancel_now)
    }

    /// Stops the running test with `how`; from then on it only winds down.
    fn stop_with(&self, how: fn(&Running)) -> Result<(), WebError> {
        let mut inner = self.lock();
        let test = inner
            .test
            .as_mut()
            .filter(|t| t.result.is_none())
            .ok_or(WebError::NotRunning)?;
        if let Some(h) = &test.handle {
            how(h);
        }
        test.stop_requested = true;
        Ok(())
    }

    /// Forgets the running test's statistics so far (the test and its timeline go on).
    pub fn reset_stats(&self) -> Result<(), WebError> {
        let mut inner = self.lock();
        let test = inner
            .test
            .as_mut()
            .filter(|t| t.result.is_none())
            .ok_or(WebError::NotRunning)?;
        let handle = test.handle.as_ref().ok_or(WebError::Stopping)?;
        handle.reset_stats();
        test.rates = RateWindow::default();
        Ok(())
    }

    /// What the UI shows now.
    pub fn view(&self) -> View {
        let workers = self.shared.runner.workers();
        let inner = self.lock();
        let Some(t) = &inner.test else {
            return View {
                state: UiState::Ready,
                run_id: 0,
                plan: None,
                users: 0,
                target_users: 0,
                in_flight: 0,
                elapsed_s: 0.0,
                point: TimelinePoint::default(),
                kinds: Arc::from(Vec::new()),
                stats: StatsSet::default(),
                rates: vec![Rates::default()],
                stop_reason: None,
                workers,
                generator: None,
            };
        };
        let snap = &t.latest;
        if let Some(r) = &t.result {
            return View {
                state: UiState::Stopped,
                run_id: t.run_id,
                plan: Some(t.plan.clone()),
                users: 0,
                target_users: snap.target_users,
                in_flight: 0,
                elapsed_s: r.duration_s,
                point: snap.point,
                kinds: r.kinds.clone().into(),
                stats: r.stats.clone(),
                rates: average_rates(&r.stats),
                stop_reason: Some(r.stop_reason),
                workers,
                generator: r.generator.as_ref().map(|g| g.as_now()),
            };
        }
        let state = match snap.state {
            _ if t.stop_requested => UiState::Stopping,
            RunState::Spawning => UiState::Spawning,
            RunState::Running => UiState::Running,
            RunState::Stopping | RunState::Stopped => UiState::Stopping,
        };
        View {
            state,
            run_id: t.run_id,
            plan: Some(t.plan.clone()),
            users: snap.users,
            target_users: snap.target_users,
            in_flight: snap.in_flight,
            elapsed_s: snap.elapsed_s,
            point: snap.point,
            kinds: snap.kinds.clone(),
            stats: snap.stats.clone(),
            rates: (0..=snap.stats.rows.len())
                .map(|i| t.rates.rates(i))
                .collect(),
            stop_reason: None,
            workers,
            generator: Some(snap.health),
        }
    }

    /// The latest snapshot of the current or last test, for `GET /metrics`.
    pub fn live(&self) -> Option<crate::exporter::Live> {
        let inner = self.lock();
        let t = inner.test.as_ref()?;
        Some(crate::exporter::Live {
            snapshot: t.latest.clone(),
            running: t.result.is_none(),
        })
    }

    /// The current test's id and its timeline points after `since_unix_s`.
    pub fn history(&self, since_unix_s: f64) -> (u64, Vec<TimelinePoint>) {
        let inner = self.lock();
        match &inner.test {
            None => (0, Vec::new()),
            Some(t) => {
                // Points are in time order: find the first new one from the end.
                let from = t.timeline.partition_point(|p| p.unix_s <= since_unix_s);
                (t.run_id, t.timeline[from..].to_vec())
            }
        }
    }

    /// The stats-history ticks of the current or last test (empty before the first test).
    pub fn history_ticks(&self) -> Vec<HistoryTick> {
        self.lock()
            .test
            .as_ref()
            .map_or_else(Vec::new, |t| t.ticks.clone())
    }

    /// The last finished test's result, or the running test's figures so far (then `true`:
    /// the result is partial and its stop reason is not final).
    pub fn result(&self) -> Option<(Arc<RunResult>, bool)> {
        let inner = self.lock();
        let t = inner.test.as_ref()?;
        if let Some(r) = &t.result {
            return Some((r.clone(), false));
        }
        Some((
            Arc::new(RunResult {
                plan: t.plan.clone(),
                kinds: t.latest.kinds.to_vec(),
                stats: t.latest.stats.clone(),
                timeline: t.timeline.clone(),
                started_unix_s: t.started_unix_s,
                duration_s: t.latest.elapsed_s,
                stop_reason: StopReason::Stopped,
                generator: None,
            }),
            true,
        ))
    }

    /// Whether a test is running or stopping.
    pub fn is_busy(&self) -> bool {
        self.lock()
            .test
            .as_ref()
            .is_some_and(|t| t.result.is_none())
    }

    /// A plan from the template and the form, through the one builder.
    pub(crate) fn plan_for(&self, req: &StartRequest) -> Result<Plan, WebError> {
        fn given(v: &Option<String>) -> Option<String> {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        }
        let d = &self.shared.defaults;
        let mut input = self.shared.template.clone();
        input.host = given(&req.host).or(given(&d.host));
        input.model = given(&req.model).or(given(&d.model));
        // The configured token stays with the configured host (config::origin); a token from
        // the form is for the form's host.
        if let Some(token) = &req.token {
            input.token = Some(token.clone());
            input.token_host = input.host.clone();
        }
        input.users = Some(req.users);
        input.spawn_rate = Some(req.spawn_rate);
        input.run_time = req.run_time;
        input.api = Some(req.api.unwrap_or(d.api));
        Ok(Plan::build(&input)?)
    }

    /// Copies each snapshot of test `run_id` in; at the end, collects its result.
    async fn watch(self, run_id: u64, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        while snapshots.changed().await.is_ok() {
            let snap = snapshots.borrow_and_update().clone();
            let mut inner = self.lock();
            let Some(t) = inner.test.as_mut().filter(|t| t.run_id == run_id) else {
                return;
            };
            // The engine replaces a point pushed under half a second after the last: so do we.
            crate::metrics::push_point(&mut t.timeline, snap.point);
            t.rates.push(snap.elapsed_s, &snap.stats);
            let tick = t.history.push_snapshot(&snap);
            t.ticks.push(tick);
            t.latest = snap;
        }
        // The engine dropped its sender: the run task has returned its result.
        let handle = {
            let mut inner = self.lock();
            inner
                .test
                .as_mut()
                .filter(|t| t.run_id == run_id)
                .and_then(|t| t.handle.take())
        };
        let Some(handle) = handle else { return };
        // A master that was shut down mid-test has no result to give: keep what was seen.
        let result = handle.wait().await;
        self.shared.server.finish().await;
        let result = match result {
            Ok(r) => Arc::new(r),
            Err(_) => match self.result() {
                Some((r, _)) => r,
                None => return,
            },
        };
        {
            let mut inner = self.lock();
            if let Some(t) = inner.test.as_mut().filter(|t| t.run_id == run_id) {
                t.timeline = result.timeline.clone();
                t.result = Some(result.clone());
            }
        }
        self.shared.finished.send_replace(Some(result));
    }
}

fn check_users(users: u64, spawn_rate: f64) -> Result<(), WebError> {
    Ok(crate::config::build::check_users(users, spawn_rate)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_override_defaults_and_missing_ones_are_named() {
        let defaults = FormDefaults {
            users: 1,
            spawn_rate: 1.0,
            host: Some("http://env-host".into()),
            model: None,
            run_time: None,
            api: ApiKind::Openwebui,
        };
        let c = Controller::new(Plan::new("http://unused", "unused"), defaults);
        let req = StartRequest {
            users: 3,
            spawn_rate: 2.0,
            ..StartRequest::default()
        };
        assert!(matches!(c.plan_for(&req), Err(WebError::MissingModel)));
        let req = StartRequest {
            model: Some(" m ".into()),
            api: Some(ApiKind::Openai),
            run_time: Some(Duration::from_secs(9)),
            ..req
        };
        let p = c.plan_for(&req).unwrap();
        assert_eq!(
            (p.host.as_str(), p.model.as_str(), p.users, p.api),
            ("http://env-host", "m", 3, ApiKind::Openai)
        );
        assert_eq!(p.run_time, Some(Duration::from_secs(9)));
        assert!(matches!(
            check_users(0, 1.0),
            Err(WebError::Invalid {
                field: "user_count",
                ..
            })
        ));
        assert!(check_users(1, f64::NAN).is_err());
    }
}
