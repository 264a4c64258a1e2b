//! The engine: starts users, paces spawning, stops the test, and publishes what was measured.
//!
//! It never prints. It publishes a [`Snapshot`] once a second on a watch channel (console,
//! web UI and reports subscribe) and returns a [`RunResult`] at the end. It is driven through
//! [`RunHandle`]: stop, change the number of users, reset statistics.

pub mod collector;
pub mod pacer;
mod run;
mod users;

pub use collector::{Collector, Live};

use crate::client::{bearer, ClientShared, RequestSpec, Target, TargetError, Tokenizer};
use crate::config::accounts;
use crate::config::Plan;
use crate::metrics::{RequestKind, ShardedRecorder, StatsSet, TimelinePoint};
use crate::observe::health::{GeneratorHealth, HealthNow};
use crate::workload::prompts::{self, Prompt, PromptsError, ShareGptOptions};
use crate::workload::scenario::RequestKindType;
use crate::workload::trace::Trace;
use crate::workload::{ChatSpec, ChatTemplate, KindDef, Workload};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use users::UserCtx;

/// Why the engine refused a plan.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The host is not a usable URL.
    #[error("--host / GSAI_HOST: {0}")]
    Target(#[from] TargetError),
    /// The token cannot be sent in a header.
    #[error("--token / GSA_AUTH_TOKEN contains characters that cannot be sent in an HTTP header (check for a stray newline or quote)")]
    Token,
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] crate::client::TlsError),
    /// The prompts file is unusable.
    #[error(transparent)]
    Prompts(#[from] PromptsError),
    /// The trace file is unusable.
    #[error(transparent)]
    Trace(#[from] crate::workload::trace::TraceError),
    /// The images (`--image`) are unusable.
    #[error(transparent)]
    Images(#[from] crate::workload::images::ImagesError),
    /// A value is past its maximum.
    #[error(transparent)]
    Limit(#[from] crate::config::limits::LimitError),
    /// The accounts file is unusable.
    #[error(transparent)]
    Accounts(#[from] crate::config::accounts::AccountsError),
    /// The Accept-Encoding value cannot be sent in a header.
    #[error("--accept-encoding: '{0}' cannot be sent in an HTTP header")]
    AcceptEncoding(String),
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
    /// The last `--stages` stage ended.
    StagesComplete,
    /// `--max-failures` reached.
    MaxFailures,
    /// `--max-fail-rate` exceeded.
    MaxFailRate,
    /// Every request of the `--trace` was sent and has ended.
    TraceComplete,
}

impl StopReason {
    /// A sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::RunTime => "run time elapsed",
            StopReason::MaxRequests => "--max-requests reached",
            StopReason::Stopped => "stopped",
            StopReason::StagesComplete => "all stages complete",
            StopReason::MaxFailures => "aborted: --max-failures reached",
            StopReason::MaxFailRate => "aborted: failure ratio above --max-fail-rate",
            StopReason::TraceComplete => "the trace is done",
        }
    }
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
    /// The generator's own health in the last second (the worst worker's, over a master).
    pub health: HealthNow,
    /// Current-window figures.
    pub point: TimelinePoint,
    /// Cumulative statistics.
    pub stats: StatsSet,
    /// The stats rows' identities, indexed like `stats.rows`.
    pub kinds: Arc<[RequestKind]>,
}

impl Snapshot {
    /// The snapshot before the first second: spawning towards `target_users`, nothing measured.
    pub fn initial(target_users: u64, kinds: Arc<[RequestKind]>) -> Self {
        Snapshot {
            state: RunState::Spawning,
            elapsed_s: 0.0,
            users: 0,
            target_users,
            in_flight: 0,
            health: HealthNow::default(),
            point: TimelinePoint::default(),
            stats: StatsSet::new(kinds.len()),
            kinds,
        }
    }
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
    /// The generator's self-check (None in results written before it existed).
    pub generator: Option<GeneratorHealth>,
}

enum Command {
    Stop,
    /// Stop, and cancel in-flight requests at once instead of granting `--stop-timeout`.
    CancelNow,
    SetUsers {
        users: u64,
        spawn_rate: f64,
    },
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

    /// Cancels the test's in-flight requests now, as [`RunHandle::cancel_now`].
    pub fn cancel_now(&self) {
        let _ = self.0.send(Command::CancelNow);
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

    /// Stops the test and cancels in-flight requests at once (they count as cancelled), without
    /// waiting for `stop_timeout`; works during that wait too (a second Ctrl-C).
    pub fn cancel_now(&self) {
        let _ = self.commands.send(Command::CancelNow);
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
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

/// Prompts of a plan: a dataset file, synthetic prompts, or the single `--prompt`.
fn load_prompts(plan: &Plan) -> Result<Vec<Prompt>, PromptsError> {
    if let Some(path) = &plan.prompts {
        let opts = ShareGptOptions {
            history: plan.sharegpt_history,
        };
        return prompts::load(path, opts);
    }
    if let Some((mean, sd)) = plan.synthetic_input {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(plan.seed.unwrap_or(0x5EED));
        return Ok(prompts::synthetic(mean, sd, 512, &mut rng));
    }
    Ok(vec![Prompt::user(&plan.prompt)])
}

/// Request kinds of a plan: its scenario's, or the one chat completion of `--api`.
fn kinds(plan: &Plan) -> Vec<KindDef> {
    fn chat(
        plan: &Plan,
        api: crate::workload::ApiKind,
        stream: bool,
        max_tokens: Option<u32>,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> ChatTemplate {
        ChatTemplate::new(&ChatSpec {
            api,
            model: &plan.model,
            stream,
            max_tokens,
            chat_id: plan.chat_id,
            extra,
        })
    }
    let Some(scenario) = &plan.scenario else {
        let t = chat(plan, plan.api, true, plan.max_tokens, plan.body.as_ref());
        return vec![KindDef {
            method: "POST",
            name: t.path.clone(),
            path: t.path.clone(),
            streaming: true,
            api: plan.api,
            weight: 1,
            turns: 1,
            chat: Some(t),
        }];
    };
    scenario
        .request
        .iter()
        .map(|r| {
            let api = r.api.unwrap_or(plan.api);
            let extra = match (&plan.body, &r.body) {
                (Some(a), Some(b)) => Some(
                    a.iter()
                        .chain(b)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                (a, b) => b.clone().or_else(|| a.clone()),
            };
            let (method, path, chat_t) = match r.kind {
                RequestKindType::Models => ("GET", api.models_path().to_string(), None),
                RequestKindType::Embeddings => {
                    let t = ChatTemplate::embeddings(&plan.model, extra.as_ref());
                    ("POST", t.path.clone(), Some(t))
                }
                RequestKindType::Chat | RequestKindType::Completion => {
                    let t = chat(
                        plan,
                        api,
                        r.kind == RequestKindType::Chat,
                        r.max_tokens.or(plan.max_tokens),
                        extra.as_ref(),
                    );
                    ("POST", t.path.clone(), Some(t))
                }
            };
            KindDef {
                method,
                name: r.name.clone().unwrap_or_else(|| path.clone()),
                path,
                streaming: r.kind == RequestKindType::Chat,
                api,
                weight: r.weight,
                turns: r.turns,
                chat: chat_t,
            }
        })
        .collect()
}

/// The stream format and authentication of an API, for the client.
fn wire_of(api: crate::workload::ApiKind) -> crate::client::Wire {
    use crate::client::Wire;
    use crate::workload::ApiKind;
    match api {
        ApiKind::Openwebui | ApiKind::Openai | ApiKind::Completions => Wire::Chat,
        ApiKind::Responses => Wire::Responses,
        ApiKind::Anthropic => Wire::Anthropic,
    }
}

/// Optional taps on a run, for callers that need more than snapshots.
#[derive(Debug, Default)]
pub struct EngineHooks {
    /// Receives every per-second statistics delta in order, the last ones at stop included;
    /// it is dropped when the run ends, so the receiver reads `None` after the final delta.
    /// Statistics dropped by [`RunHandle::reset_stats`] are not sent. The distributed worker
    /// ships these deltas to its master.
    pub deltas: Option<mpsc::UnboundedSender<StatsSet>>,
    /// Receives one line per ended request (`--requests-log`).
    pub requests_log: Option<Arc<crate::observe::requests_log::RequestsLog>>,
}

/// Starts a test on the current tokio runtime.
pub fn start(plan: Plan) -> Result<RunHandle, EngineError> {
    start_with(plan, EngineHooks::default())
}

/// Starts a test on the current tokio runtime, with taps.
pub fn start_with(plan: Plan, hooks: EngineHooks) -> Result<RunHandle, EngineError> {
    crate::config::limits::check(&plan)?;
    let (ctx, kinds, started) = user_ctx(&plan)?;
    if let Some(log) = hooks.requests_log.clone() {
        // A fresh context: nothing has set it yet.
        let _ = ctx.requests_log.set(log);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let kinds: Arc<[RequestKind]> = kinds.into();
    let first = Arc::new(Snapshot::initial(plan.users, kinds.clone()));
    let (snap_tx, snap_rx) = watch::channel(first);
    let task = tokio::spawn(run::run(plan, kinds, ctx, started, hooks, rx, snap_tx));
    Ok(RunHandle {
        commands: tx,
        snapshots: snap_rx,
        task,
    })
}

/// What every request of a run shares, built from its plan: target, headers, workload,
/// recorders. Also the stats rows' identities and the moment the run starts.
pub(crate) fn user_ctx(
    plan: &Plan,
) -> Result<(Arc<UserCtx>, Vec<RequestKind>, Instant), EngineError> {
    let mut target = Target::parse(&plan.host)?;
    let accept_encoding = match plan.accept_encoding.trim() {
        "" => None,
        v => Some(
            hyper::header::HeaderValue::from_str(v)
                .map_err(|_| EngineError::AcceptEncoding(v.to_string()))?,
        ),
    };
    if plan.tls != crate::client::TlsOptions::default() {
        target = target.with_tls(&plan.tls)?;
    }
    // The one rule of where a token may go (config::origin): none to an origin it was not given for.
    let auth = match plan.token_for_host() {
        Some(t) => Some(bearer(t.expose()).ok_or(EngineError::Token)?),
        None => None,
    };
    let workload = Workload::new(kinds(plan), load_prompts(plan)?, plan.prompt_order);
    // Read once per run into compact records; prompts are synthesized per request.
    let trace = plan
        .trace
        .as_ref()
        .map(|spec| Trace::load(spec).map(Arc::new))
        .transpose()?;
    let specs = workload
        .kinds
        .iter()
        .map(|k| {
            let method = if k.method == "GET" {
                hyper::Method::GET
            } else {
                hyper::Method::POST
            };
            let mut spec = RequestSpec::new(&target, method, &k.path, auth.as_ref(), k.streaming)
                .for_wire(wire_of(k.api));
            if let Some(v) = accept_encoding.clone() {
                spec.headers.insert(hyper::header::ACCEPT_ENCODING, v);
            }
            spec
        })
        .collect();
    let mut kinds: Vec<RequestKind> = workload
        .kinds
        .iter()
        .map(|k| RequestKind {
            method: k.method.to_string(),
            name: k.name.clone(),
        })
        .collect();
    // `--accounts`: sign-ins are a request kind of their own, after the workload's kinds.
    let accounts = match &plan.accounts {
        None => None,
        Some(path) => {
            let list = accounts::load(path)?;
            kinds.push(RequestKind {
                method: "POST".to_string(),
                name: accounts::SIGNIN_PATH.to_string(),
            });
            Some(users::SignIn {
                list,
                kind: kinds.len() - 1,
                // No Authorization: the sign-in itself needs none; its answer's token goes back
                // only to this same target.
                spec: RequestSpec::new(
                    &target,
                    hyper::Method::POST,
                    accounts::SIGNIN_PATH,
                    None,
                    false,
                ),
            })
        }
    };
    let started = Instant::now();
    let slo = (!plan.slo.is_empty()).then(|| crate::criteria::slo::check(plan.slo.clone()));
    let mut recorder = ShardedRecorder::new(shard_count(), kinds.len(), slo);
    if let Some(w) = plan.warmup {
        recorder.set_warmup_until(started + w);
    }
    let client = Arc::new(ClientShared {
        target,
        timeouts: plan.timeouts,
        lenient: plan.lenient,
        tokenizer: Tokenizer::new(),
        secret: plan.token.as_ref().map(|t| t.expose().to_string()),
    });
    let ctx = Arc::new(UserCtx {
        client,
        workload,
        specs,
        wait: plan.wait,
        seed: plan.seed.unwrap_or_else(rand::random),
        recorder: Arc::new(recorder),
        started: 0.into(),
        ended: 0.into(),
        max_requests: plan.max_requests,
        limit_reached: CancellationToken::new(),
        active: 0.into(),
        in_flight: 0.into(),
        pool: std::sync::Mutex::new(Vec::new()),
        requests_log: std::sync::OnceLock::new(),
        images: match &plan.images {
            None => None,
            Some(crate::config::ImageSource::Files(p)) => {
                Some(crate::workload::images::Images::load(p)?)
            }
            Some(crate::config::ImageSource::Synthetic { width, height }) => Some(
                crate::workload::images::Images::synthetic(*width, *height, plan.seed.unwrap_or(7)),
            ),
        },
        trace,
        accounts,
    });
    Ok((ctx, kinds, started))
}
