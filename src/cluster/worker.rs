//! The worker: registers with a master (ours or a stock `locust --master`), runs the engine
//! with the number of users each `spawn` asks for, ships statistics deltas, heartbeats, and
//! stops, quits or reconnects when told to or when the master goes away.
//!
//! Timings are Locust's: a heartbeat every second, stats every 3 s (every second to a gsai
//! master, which says so in its `ack`), `client_ready` resent every 5 s up to 60 times, and the
//! master given up after 60 s without its heartbeat. Spawning is the master's job: a `spawn`
//! carries the absolute number of users and the worker starts or stops the difference at once.

use super::locust_stats::{Outbox, WorkerFigures};
use super::protocol::{Heartbeat, Message, Spawn, ToMaster, ToWorker, USER_CLASS};
use super::transport::{join_host_port, Dealer, TransportError};
use crate::config::{Plan, PlanInput, Secret};
use crate::engine::{self, EngineHooks, RunHandle};
use crate::metrics::clock::unix_now_s;
use crate::metrics::{RequestKind, StatsSet};
use crate::observe::process::{rss_bytes, CpuMeter};
use crate::observe::requests_log::{self, LogWriter, RequestsLog};
use rmpv::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Seconds between heartbeats (Locust's `HEARTBEAT_INTERVAL`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Locust's `WORKER_REPORT_INTERVAL`.
pub const LOCUST_REPORT_INTERVAL: Duration = Duration::from_secs(3);
/// How long to wait for an `ack` before resending `client_ready` (Locust's `CONNECT_TIMEOUT`).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Registration attempts before giving up (Locust's `CONNECT_RETRY_COUNT`).
const CONNECT_RETRIES: u32 = 60;
/// Silence from the master after which it is considered gone (`MASTER_HEARTBEAT_TIMEOUT`).
const MASTER_TIMEOUT: Duration = Duration::from_secs(60);
/// A spawn rate high enough that the engine starts every user on its next tick.
const AT_ONCE: f64 = 1e9;

/// Builds the worker's own plan when the master sends none (a Locust master): the argument is
/// the host from the master's `spawn`, if any. The error text names the flag to fix.
pub type LocalPlan = Box<dyn Fn(Option<&str>) -> Result<Plan, String> + Send + Sync>;

/// Called with the snapshots of each test the worker starts (e.g. `--metrics-port`).
pub type TestTap = Box<
    dyn Fn(tokio::sync::watch::Receiver<std::sync::Arc<crate::engine::Snapshot>>) + Send + Sync,
>;

/// How to reach the master and what to run.
pub struct WorkerConfig {
    /// Master host.
    pub master_host: String,
    /// Master port.
    pub master_port: u16,
    /// This worker's id (also its ZeroMQ identity): `hostname_uuidhex`.
    pub node_id: String,
    /// The Bearer token: the worker's own (flags, environment, `.env`), never sent to or
    /// received from the master.
    pub token: Option<Secret>,
    /// The worker's own `GSAI_HOST` / `--host`: the one origin its token is sent to. A master
    /// that asks for a test of another origin gets it run without the token.
    pub token_host: Option<String>,
    /// The worker's own plan, for masters that send none.
    pub local_plan: LocalPlan,
    /// Cancelled to leave (Ctrl-C, SIGTERM): users stop, the last statistics are shipped, and
    /// the master is told `quit`, as a Locust worker does.
    pub shutdown: CancellationToken,
    /// Cancelled to leave at once (a second Ctrl-C or SIGTERM): in-flight requests are
    /// cancelled instead of granted the stop timeout; the statistics are still shipped.
    pub cancel_now: CancellationToken,
    /// `--requests-log FILE`: each test writes FILE with this worker's id before the extension.
    pub requests_log: Option<std::path::PathBuf>,
    /// Told of each test's snapshots as it starts, if set.
    pub on_test: Option<TestTap>,
}

/// Why the worker stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// No master answered.
    #[error("no master answered at {addr} after {tries} attempts ({last}); check --master-host/--master-port and that the master runs")]
    NoMaster {
        /// host:port.
        addr: String,
        /// Attempts made.
        tries: u32,
        /// The last failure.
        last: String,
    },
}

/// A node id as Locust makes one: `hostname_` followed by a uuid4 in hex.
pub fn node_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
    let host = unsafe {
        if libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            "localhost".to_string()
        }
    };
    format!("{host}_{}", uuid::Uuid::new_v4().simple())
}

/// One engine run under a master.
struct Run {
    handle: RunHandle,
    deltas: mpsc::UnboundedReceiver<StatsSet>,
    log: Option<(Arc<RequestsLog>, LogWriter)>,
}

/// Ends a test's requests log in the background (the engine has stopped writing to it).
fn close_log(run: Option<Run>) {
    if let Some((log, writer)) = run.and_then(|r| r.log) {
        tokio::spawn(
            async move { eprintln!("worker: {}", requests_log::close(log, writer).await) },
        );
    }
}

/// What to do once the engine has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterStop {
    /// Report `client_stopped`, then `client_ready` after the stop timeout.
    Ready,
    /// Report and exit.
    Quit,
}

/// How a connection ended.
enum SessionEnd {
    Quit,
    Lost(String),
}

struct Worker {
    cfg: WorkerConfig,
    run: Option<Run>,
    stopping: Option<AfterStop>,
    pending_spawn: Option<Spawn>,
    outbox: Outbox,
    kinds: Arc<[RequestKind]>,
    figures: WorkerFigures,
    gsai_master: bool,
    last_spawn_ts: f64,
    stop_timeout: Duration,
    state: &'static str,
    ready_at: Option<tokio::time::Instant>,
    cpu: CpuMeter,
    /// Leaving on our own (shutdown): tell the master `quit` at the end.
    leaving: bool,
}

/// Runs a worker until the master says `quit` (Ok) or cannot be reached (Err).
pub async fn run(cfg: WorkerConfig) -> Result<(), WorkerError> {
    let mut w = Worker {
        cfg,
        run: None,
        stopping: None,
        pending_spawn: None,
        outbox: Outbox::new(0),
        kinds: Vec::new().into(),
        figures: WorkerFigures::default(),
        gsai_master: false,
        last_spawn_ts: 0.0,
        stop_timeout: Duration::ZERO,
        state: "ready",
        ready_at: None,
        cpu: CpuMeter::new(),
        leaving: false,
    };
    let shutdown = w.cfg.shutdown.clone();
    loop {
        let mut conn = tokio::select! {
            c = w.register() => c?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        match w.session(&mut conn).await {
            SessionEnd::Quit => {
                conn.flush(Duration::from_secs(5)).await;
                return Ok(());
            }
            SessionEnd::Lost(why) => {
                eprintln!(
                    "worker {}: lost the master ({why}); stopping users and reconnecting",
                    w.cfg.node_id
                );
                w.stop_engine_now().await;
            }
        }
    }
}

impl Worker {
    fn send(&self, conn: &Dealer, m: ToMaster) -> Result<(), TransportError> {
        conn.send(m.to_message(&self.cfg.node_id).encode())
    }

    /// Connects and registers: `client_ready` until `ack`, Locust's retry budget.
    async fn register(&mut self) -> Result<Dealer, WorkerError> {
        let addr = join_host_port(&self.cfg.master_host, self.cfg.master_port);
        let mut last = String::new();
        for attempt in 1..=CONNECT_RETRIES {
            let started = Instant::now();
            match Dealer::connect(
                &self.cfg.master_host,
                self.cfg.master_port,
                self.cfg.node_id.as_bytes(),
            )
            .await
            {
                Ok(mut conn) => {
                    // Boomer's and locust4j's version: -1 skips Locust's version check.
                    let _ = self.send(&conn, ToMaster::ClientReady(Value::from(-1)));
                    match self.await_ack(&mut conn).await {
                        Ok(()) => {
                            eprintln!(
                                "worker {}: registered with the {} master at {addr}",
                                self.cfg.node_id,
                                if self.gsai_master {
                                    "gsai-load"
                                } else {
                                    "Locust"
                                }
                            );
                            return Ok(conn);
                        }
                        Err(e) => last = e,
                    }
                }
                Err(e) => last = e.to_string(),
            }
            if attempt == 1 || attempt % 6 == 0 {
                eprintln!(
                    "worker {}: waiting for the master at {addr} (attempt {attempt}/{CONNECT_RETRIES}: {last})",
                    self.cfg.node_id
                );
            }
            // One attempt per ACK_TIMEOUT, like Locust, however fast the failure was.
            tokio::time::sleep(ACK_TIMEOUT.saturating_sub(started.elapsed())).await;
        }
        Err(WorkerError::NoMaster {
            addr,
            tries: CONNECT_RETRIES,
            last,
        })
    }

    async fn await_ack(&mut self, conn: &mut Dealer) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let got = tokio::time::timeout_at(deadline, conn.recv()).await;
            let bytes = match got {
                Err(_) => return Err("no ack within 5 s".into()),
                Ok(None) => return Err("the master closed the connection".into()),
                Ok(Some(b)) => b,
            };
            let Ok(m) = Message::decode(&bytes) else {
                continue;
            };
            if let Ok(ToWorker::Ack { gsai, .. }) = ToWorker::parse(&m) {
                self.gsai_master = gsai;
                return Ok(());
            }
        }
    }

    fn report_every(&self) -> Duration {
        if self.gsai_master {
            HEARTBEAT_INTERVAL
        } else {
            LOCUST_REPORT_INTERVAL
        }
    }

    fn ship_stats(&mut self, conn: &Dealer) -> Result<(), TransportError> {
        if let Some(run) = &self.run {
            self.figures.in_flight = run.handle.subscribe().borrow().in_flight;
        }
        let data = self
            .outbox
            .take(&self.kinds, &self.figures, unix_now_s(), self.gsai_master);
        self.send(conn, ToMaster::Stats(data))
    }

    /// Serves one connection until quit or loss.
    async fn session(&mut self, conn: &mut Dealer) -> SessionEnd {
        let mut cancelling = false;
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut report = tokio::time::interval(self.report_every());
        report.reset();
        let mut last_master = Instant::now();
        loop {
            let ready_at = self.ready_at;
            tokio::select! {
                bytes = conn.recv() => {
                    let Some(bytes) = bytes else { return SessionEnd::Lost("connection closed".into()) };
                    let msg = match Message::decode(&bytes).and_then(|m| ToWorker::parse(&m)) {
                        Ok(m) => m,
                        Err(e) => { eprintln!("worker {}: ignored a message: {e}", self.cfg.node_id); continue }
                    };
                    if msg == ToWorker::Heartbeat {
                        last_master = Instant::now();
                    }
                    match self.handle(conn, msg) {
                        Ok(true) => return SessionEnd::Quit,
                        Ok(false) => {}
                        Err(e) => return SessionEnd::Lost(e.to_string()),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_master.elapsed() > MASTER_TIMEOUT {
                        return SessionEnd::Lost(format!("no heartbeat for {} s", MASTER_TIMEOUT.as_secs()));
                    }
                    let health = self.run.as_ref().map(|r| r.handle.subscribe().borrow().health);
                    let hb = Heartbeat { state: self.state.into(), cpu_percent: self.cpu.percent(), memory_bytes: rss_bytes(), health };
                    if let Err(e) = self.send(conn, ToMaster::Heartbeat(hb)) {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
                _ = report.tick() => {
                    if let Err(e) = self.ship_stats(conn) {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
                delta = recv_delta(&mut self.run) => match delta {
                    Some(d) => self.outbox.add(&d, unix_now_s()),
                    None => {
                        // The engine has ended and every delta is in the outbox.
                        match self.engine_done(conn) {
                            Ok(true) => return SessionEnd::Quit,
                            Ok(false) => {}
                            Err(e) => return SessionEnd::Lost(e.to_string()),
                        }
                    }
                },
                _ = self.cfg.cancel_now.cancelled(), if self.leaving && !cancelling => {
                    cancelling = true;
                    if let Some(run) = &self.run {
                        run.handle.cancel_now();
                    }
                }
                _ = self.cfg.shutdown.cancelled(), if !self.leaving => {
                    self.leaving = true;
                    if !self.begin_stop(AfterStop::Quit) {
                        let sent = self.ship_stats(conn).and_then(|_| self.send(conn, ToMaster::Quit));
                        return match sent {
                            Ok(()) => SessionEnd::Quit,
                            Err(e) => SessionEnd::Lost(e.to_string()),
                        };
                    }
                }
                _ = sleep_until(ready_at) => {
                    self.ready_at = None;
                    self.state = "ready";
                    if let Err(e) = self.send(conn, ToMaster::ClientReady(Value::from(-1))) {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
            }
        }
    }
}

async fn recv_delta(run: &mut Option<Run>) -> Option<StatsSet> {
    match run {
        Some(r) => r.deltas.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Worker {
    /// Acts on one message from the master. Returns true when the worker should exit now.
    fn handle(&mut self, conn: &Dealer, msg: ToWorker) -> Result<bool, TransportError> {
        match msg {
            ToWorker::Spawn(spawn) => {
                self.send(conn, ToMaster::Spawning)?;
                if spawn.timestamp <= self.last_spawn_ts {
                    return Ok(false);
                }
                self.last_spawn_ts = spawn.timestamp;
                if self.stopping.is_some() {
                    // Applied once the current run has stopped.
                    self.pending_spawn = Some(spawn);
                    return Ok(false);
                }
                self.apply_spawn(conn, spawn)?;
            }
            ToWorker::Stop => match self.begin_stop(AfterStop::Ready) {
                true => {}
                false => {
                    self.ship_stats(conn)?;
                    self.stopped(conn)?;
                }
            },
            ToWorker::Quit => {
                if !self.begin_stop(AfterStop::Quit) {
                    // The master may already be gone (Locust waits only 0.5 s): leave anyway.
                    let _ = self.ship_stats(conn);
                    return Ok(true);
                }
            }
            ToWorker::Ack { .. } | ToWorker::Heartbeat | ToWorker::SpawningComplete { .. } => {}
            // Our connection is re-created only when it breaks; a reconnect request changes
            // nothing for a stream that works.
            ToWorker::Reconnect => {}
            ToWorker::Other(kind) => {
                eprintln!("worker {}: ignored a '{kind}' message", self.cfg.node_id);
            }
        }
        Ok(false)
    }

    /// The plan for a spawn: the master's (gsai) or our own (Locust), with our token and the
    /// master's users and stop timeout, checked by the plan's own rules ([`Plan::build`]).
    fn plan_for(&self, spawn: &Spawn) -> Result<Plan, String> {
        let base = match &spawn.gsai_plan {
            Some(json) => serde_json::from_str::<Plan>(json)
                .map_err(|e| format!("the master's plan could not be read ({e}); run the same gsai-load version on master and workers"))?,
            None => (self.cfg.local_plan)(spawn.host.as_deref())?,
        };
        let mut input = PlanInput::from(&base);
        input.token = self.cfg.token.clone();
        input.token_host = self.cfg.token_host.clone();
        // The master decides when to stop and how many users run here.
        input.run_time = None;
        input.max_requests = None;
        input.spawn_rate = Some(AT_ONCE);
        input.users = Some(spawn.user_count().max(1));
        // A peer's number: NaN, negative or past any limit must not panic the conversion.
        input.stop_timeout = Some(
            Duration::try_from_secs_f64(spawn.stop_timeout.unwrap_or(0.0).max(0.0))
                .unwrap_or(crate::config::limits::MAX_DURATION)
                .min(crate::config::limits::MAX_DURATION),
        );
        let mut plan = Plan::build(&input).map_err(|e| format!("the plan is refused: {e}"))?;
        // Zero users is a valid order from a master (this worker's share may be none).
        plan.users = spawn.user_count();
        if let Some(notice) = plan.token_withheld() {
            eprintln!("worker {}: {notice}", self.cfg.node_id);
        }
        Ok(plan)
    }

    fn apply_spawn(&mut self, conn: &Dealer, spawn: Spawn) -> Result<(), TransportError> {
        let users = spawn.user_count();
        if let Err(e) = crate::config::limits::users("user_count (from the master)", users) {
            return self.refuse(conn, e.to_string());
        }
        self.state = "spawning";
        self.ready_at = None;
        match &self.run {
            Some(run) => run.handle.set_users(users, AT_ONCE),
            None => {
                let plan = match self.plan_for(&spawn) {
                    Ok(p) => p,
                    Err(e) => return self.refuse(conn, e),
                };
                self.stop_timeout = plan.stop_timeout;
                let (tx, rx) = mpsc::unbounded_channel();
                let log = self.cfg.requests_log.as_deref().and_then(|p| {
                    RequestsLog::create(p, Some(&self.cfg.node_id))
                        .map_err(|e| eprintln!("worker: warning: {e}; this test runs without it"))
                        .ok()
                });
                let hooks = EngineHooks {
                    deltas: Some(tx),
                    requests_log: log.as_ref().map(|(l, _)| l.clone()),
                };
                match engine::start_with(plan, hooks) {
                    Ok(handle) => {
                        if let Some(tap) = &self.cfg.on_test {
                            tap(handle.subscribe());
                        }
                        let kinds = handle.subscribe().borrow().kinds.clone();
                        self.outbox = Outbox::new(kinds.len());
                        self.kinds = kinds;
                        self.run = Some(Run {
                            handle,
                            deltas: rx,
                            log,
                        });
                    }
                    Err(e) => return self.refuse(conn, e.to_string()),
                }
            }
        }
        // Echo the master's class names, as Boomer does, so a Locust master's counts add up.
        self.figures.user_classes_count = if spawn.user_classes_count.is_empty() {
            vec![(USER_CLASS.to_string(), users)]
        } else {
            spawn.user_classes_count.clone()
        };
        self.figures.user_count = users;
        self.state = "running";
        self.send(
            conn,
            ToMaster::SpawningComplete {
                user_classes_count: self.figures.user_classes_count.clone(),
                user_count: users,
            },
        )
    }

    /// Tells the master why no user could start (it shows exceptions), and stays registered.
    fn refuse(&mut self, conn: &Dealer, why: String) -> Result<(), TransportError> {
        eprintln!("worker {}: cannot start users: {why}", self.cfg.node_id);
        self.state = "ready";
        self.send(
            conn,
            ToMaster::Exception {
                msg: format!("worker {} cannot start users: {why}", self.cfg.node_id),
                traceback: String::new(),
            },
        )
    }

    /// Starts stopping the engine; false when there is none to stop.
    fn begin_stop(&mut self, after: AfterStop) -> bool {
        match &self.run {
            Some(run) => {
                run.handle.stop();
                self.state = "stopping";
                // A quit outranks a stop already under way.
                if self.stopping != Some(AfterStop::Quit) {
                    self.stopping = Some(after);
                }
                true
            }
            None => false,
        }
    }

    /// Users are stopped: tell the master, and register again after the stop timeout.
    fn stopped(&mut self, conn: &Dealer) -> Result<(), TransportError> {
        self.figures.user_count = 0;
        self.figures
            .user_classes_count
            .iter_mut()
            .for_each(|c| c.1 = 0);
        self.state = "stopped";
        self.send(conn, ToMaster::ClientStopped)?;
        self.ready_at = Some(tokio::time::Instant::now() + self.stop_timeout);
        Ok(())
    }

    /// The engine has ended and its last delta is in the outbox. Returns true to exit.
    fn engine_done(&mut self, conn: &Dealer) -> Result<bool, TransportError> {
        close_log(self.run.take());
        self.figures.in_flight = 0;
        let shipped = self.ship_stats(conn);
        match self.stopping.take() {
            Some(AfterStop::Quit) => {
                // Leaving either way; a master that is already gone cannot be told.
                if shipped.is_ok() && self.leaving {
                    let _ = self.send(conn, ToMaster::Quit);
                }
                return Ok(true);
            }
            Some(AfterStop::Ready) | None => {
                shipped?;
                self.stopped(conn)?;
            }
        }
        if let Some(spawn) = self.pending_spawn.take() {
            self.apply_spawn(conn, spawn)?;
        }
        Ok(false)
    }

    /// The master is gone: stop users at once and drop what cannot be delivered.
    async fn stop_engine_now(&mut self) {
        if let Some(mut run) = self.run.take() {
            run.handle.stop();
            while let Some(d) = run.deltas.recv().await {
                self.outbox.add(&d, unix_now_s());
            }
            let _ = run.handle.wait().await;
            if let Some((log, writer)) = run.log {
                eprintln!("worker: {}", requests_log::close(log, writer).await);
            }
        }
        let lost = self.outbox.pending_requests();
        if lost > 0 {
            eprintln!(
                "worker {}: {lost} requests measured since the last report could not be sent to the master",
                self.cfg.node_id
            );
        }
        self.outbox = Outbox::new(self.kinds.len());
        self.stopping = None;
        self.pending_spawn = None;
        self.ready_at = None;
        self.figures = WorkerFigures::default();
        self.last_spawn_ts = 0.0;
        self.state = "ready";
    }
}
