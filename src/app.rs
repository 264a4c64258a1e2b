//! Orchestration for the binary: turns parsed flags into runs of the engine, the mock or the
//! benchmark, wires the console and Ctrl-C, writes outputs, and picks the exit code.

use crate::cli::{Cli, Command, DemoArgs, RunArgs};
use crate::config::{Plan, Secret, TokenScope, WaitTime};
use crate::web;
use anyhow::Context;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub mod cluster_mode;
pub mod headless;
pub mod metrics_port;
pub mod outputs;
pub mod repeat;
pub mod signals;
pub mod web_mode;
pub use outputs::Outputs;
pub use signals::Signals;

/// Exit status for bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Runs what the command line asks for and returns the process exit code.
pub async fn main(cli: Cli) -> anyhow::Result<u8> {
    // First of all: a PID 1 in a container ignores SIGTERM unless it has a handler.
    let signals = Signals::install();
    match cli.command {
        Some(Command::Demo(args)) => demo(args, &signals).await,
        Some(Command::Mock(args)) => {
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            let sig = signals.clone();
            tokio::spawn(async move {
                sig.first().await;
                s.cancel();
            });
            crate::mock::run(args, shutdown)
                .await
                .context("mock server failed")?;
            Ok(0)
        }
        Some(Command::Bench(args)) => crate::bench::run(args).await,
        Some(Command::Report(args)) => outputs::report_cmd(&args),
        Some(Command::Compare(args)) => outputs::compare_cmd(&args),
        Some(Command::Sweep(args)) => sweep(*args).await,
        Some(Command::Completions(args)) => {
            crate::cli::completions::print(&args).context("writing the completion script")?;
            Ok(0)
        }
        None if cli.run.repeat.is_some() && (cli.cluster.enabled() || !cli.run.headless) => {
            anyhow::bail!("--repeat runs headless tests in this process: add --headless (and leave out --master/--worker)")
        }
        None if cli.run.trace.is_some() && cli.cluster.enabled() => {
            anyhow::bail!("--trace replays in one process: leave out --master/--worker (each worker would replay the whole trace)")
        }
        // Distributed mode (issue 5): --master / --worker.
        None if cli.cluster.enabled() => cluster_mode::main(cli.cluster, cli.run, &signals).await,
        None if cli.run.headless => match cli.run.repeat {
            Some(n) => repeat::run(&cli.run, n, &signals).await,
            None => headless(cli.run, &signals).await,
        },
        None => web_mode::serve(cli.run, web::Runner::Local, None, &signals).await,
    }
}

async fn headless(args: RunArgs, signals: &Signals) -> anyhow::Result<u8> {
    let plan = args.to_plan()?;
    warn_about(&plan, true, None);
    let mut outputs = Outputs::new(args.json.as_deref(), &args.outputs);
    outputs.server_metrics = server_metrics(&args, &plan)?;
    let metrics = metrics_port::open(&args.metrics, None).await?;
    let feed = metrics.as_ref().map(|m| &m.feed);
    run_test(plan, args.print_every, &outputs, signals, feed).await
}

/// The `--server-metrics` scrape options of a run (none without the flag); https metrics URLs
/// trust what the target does (`--ca-cert`, `--insecure`).
pub(crate) fn server_metrics(
    args: &RunArgs,
    plan: &Plan,
) -> anyhow::Result<Option<crate::observe::ScrapeOptions>> {
    Ok(args
        .server_metrics
        .options(&plan.tls, Some(crate::observe::args::stderr_warnings()))?)
}

/// Where the web UI listens, for the start-up warnings.
pub(crate) struct WebListen {
    /// The bound address.
    pub addr: std::net::SocketAddr,
    /// Whether `--web-login` protects it.
    pub login: bool,
}

/// Says on stderr what in a plan or the web UI's address a person may not have meant: no token
/// (when this process sends the requests), a token for no host, certificates not checked, a web
/// UI reachable from other machines without a login.
pub(crate) fn warn_about(plan: &Plan, sends_requests: bool, web: Option<WebListen>) {
    if sends_requests && plan.token.is_none() {
        eprintln!("warning: no token (GSA_AUTH_TOKEN or --token): requests are sent without an Authorization header");
    }
    if sends_requests && plan.token.is_some() && plan.token_scope == TokenScope::Unbound {
        eprintln!("warning: a token (GSA_AUTH_TOKEN or --token) but no GSAI_HOST / --host: the token is sent to no host; set GSAI_HOST to the service it is for, or give a token in the start form");
    }
    if let Some(w) = web.filter(|w| !w.addr.ip().is_loopback() && !w.login) {
        eprintln!("warning: the web UI listens on {} (reachable from other machines) without --web-login: anyone who can reach it can start, change and stop tests; add --web-login USER:PASSWORD (behind a TLS proxy) or use --web-host 127.0.0.1", w.addr);
    }
    if sends_requests {
        let users = plan_peak_users(plan);
        if let Some(limit) = open_file_limit() {
            if users.saturating_add(FD_MARGIN) > limit {
                eprintln!("warning: {users} users need about {} open files, but this process may open only {limit} (the hard limit): connections past it fail as local_resource, not the server's fault; raise it with `ulimit -n {}` (or LimitNOFILE= / --ulimit nofile= for services and containers)", users + FD_MARGIN, users + FD_MARGIN);
            }
        }
    }
    if plan.tls.insecure {
        eprintln!("warning: --insecure: https certificates are not checked (use --ca-cert FILE to trust a private CA instead)");
    }
}

/// Runs a plan headless in this process: live console, Ctrl-C or SIGTERM to stop (twice to
/// cancel in-flight requests at once), summary and outputs at the end; `metrics` (a
/// `--metrics-port`'s feed) follows the test's snapshots.
pub async fn run_test(
    plan: Plan,
    print_every_s: f64,
    outputs: &Outputs,
    signals: &Signals,
    metrics: Option<&crate::exporter::Feed>,
) -> anyhow::Result<u8> {
    let csv = outputs::prepare(outputs)?;
    eprintln!(
        "gsai-load {}: {}",
        env!("CARGO_PKG_VERSION"),
        describe_plan(&plan)
    );
    let log = outputs.args.requests_log.as_deref();
    let start = move || {
        let running = crate::driver::Runner::Local.start_logged(plan, log)?;
        if let Some(feed) = metrics {
            feed.follow(running.subscribe());
        }
        Ok(running)
    };
    headless::drive(start, csv, print_every_s, outputs, signals).await
}

async fn sweep(args: crate::cli::SweepCmd) -> anyhow::Result<u8> {
    let spec = args.sweep.spec()?;
    if args.run.metrics.metrics_port.is_some() {
        anyhow::bail!("--metrics-port: a sweep does not serve live metrics (its steps are separate tests); use --json for its result");
    }
    let mut plan = args.run.to_plan()?;
    if plan.trace.is_some() {
        anyhow::bail!("gsai-load sweep: --trace cannot be swept (the trace fixes the schedule); use --trace-speed to replay it faster or slower");
    }
    plan.users = plan.users.max(1);
    eprintln!(
        "sweep: {} against {} with --slo {}, {} steps from {} req/s",
        plan.model,
        plan.host,
        crate::criteria::slo::describe(&plan.slo),
        humantime::format_duration(spec.step_time),
        spec.start_rate
    );
    let result = crate::sweep::run(&plan, &spec, |s| {
        eprintln!(
            "  {:>9.2} req/s: {:.1}% good, goodput {:.2}/s, TTFT p95 {:.0} ms -> {}",
            s.rate,
            s.good_fraction * 100.0,
            s.goodput,
            s.ttft_p95_ms,
            if s.passed { "met" } else { "missed" }
        );
    })
    .await?;
    print!("{}", crate::sweep::table(&result, &spec));
    if let Some(path) = &args.run.json {
        let text = serde_json::to_vec_pretty(&result)?;
        std::fs::write(path, text)
            .with_context(|| format!("--json {}: writing the sweep failed", path.display()))?;
    }
    Ok(0)
}

/// One line saying what a plan will do.
pub fn describe_plan(plan: &Plan) -> String {
    let load = match (plan.rate, &plan.stages) {
        _ if plan.trace.is_some() => {
            let t = plan.trace.as_ref().map_or((String::new(), 1.0), |t| {
                (t.path.display().to_string(), t.speed)
            });
            format!(
                "trace replay of {} at {}x speed (open loop{})",
                t.0,
                t.1,
                plan.max_concurrency
                    .map_or(String::new(), |c| format!(", at most {c} in flight"))
            )
        }
        (Some(r), None) => format!(
            "open loop {r} req/s ({:?} arrivals{})",
            plan.arrival,
            plan.max_concurrency
                .map_or(String::new(), |c| format!(", at most {c} in flight"))
        ),
        (Some(_), Some(s)) => format!("open loop, rate stages {s}"),
        (None, Some(s)) => format!("user stages {s}, wait {}", plan.wait),
        (None, None) => format!(
            "{} users (spawn {}/s), wait {}",
            plan.users, plan.spawn_rate, plan.wait
        ),
    };
    let stop = match (plan.run_time, plan.max_requests) {
        (Some(t), _) => format!("run time {}", humantime::format_duration(t)),
        (None, Some(n)) => format!("until {n} requests"),
        (None, None) if plan.stages.is_some() => "until the stages end".to_string(),
        (None, None) if plan.trace.is_some() => "until the trace is done".to_string(),
        (None, None) => "until Ctrl-C".to_string(),
    };
    let warmup = plan.warmup.map_or(String::new(), |w| {
        format!(", warm-up {}", humantime::format_duration(w))
    });
    format!(
        "{load} against {} [{}], model {}, {stop}{warmup}",
        plan.host,
        plan.api.chat_path(),
        plan.model
    )
}

async fn demo(args: DemoArgs, signals: &Signals) -> anyhow::Result<u8> {
    let token = "demo-token";
    let config = crate::mock::MockConfig {
        ttft: Duration::from_millis(150),
        itl: Duration::from_millis(15),
        tokens: 30,
        token: Some(token.to_string()),
        ..crate::mock::MockConfig::default()
    };
    let mock = crate::mock::start(config)
        .await
        .context("starting the built-in mock server")?;
    eprintln!(
        "demo: built-in mock LLM server on {} (TTFT 150 ms, 30 tokens 15 ms apart); this is what a run against your service looks like",
        mock.base_url()
    );
    let mut plan = Plan::new(mock.base_url(), "demo-model");
    plan.token = Some(Secret::new(token));
    plan.users = args.users;
    plan.spawn_rate = args.spawn_rate;
    plan.run_time = Some(args.run_time);
    plan.wait = WaitTime::Between {
        min_s: 1.0,
        max_s: 5.0,
    };
    plan.stop_timeout = Duration::from_secs(5);
    plan.slo = args.outputs.slo.clone();
    let mut outputs = Outputs::new(args.json.as_deref(), &args.outputs);
    // The mock serves vLLM-style /metrics: the demo compares its TTFT with the client's.
    outputs.server_metrics = crate::observe::ServerMetricsArgs {
        urls: vec![format!("{}/metrics", mock.base_url())],
        interval: Duration::from_secs(1),
        filter: None,
        timeout: crate::observe::args::DEFAULT_TIMEOUT,
    }
    .options(&plan.tls, Some(crate::observe::args::stderr_warnings()))?;
    let code = run_test(plan, 2.0, &outputs, signals, None).await?;
    let c = mock.counters();
    eprintln!(
        "mock saw {} requests ({} completed streams, {} events sent)",
        c.requests, c.ok, c.events_sent
    );
    mock.shutdown().await;
    Ok(code)
}

/// Open files a run needs beside one socket per user: the runtime, stdio, output files, the
/// web UI's and the master's sockets.
pub const FD_MARGIN: u64 = 64;

/// Most users (or open-loop requests in flight) a plan can have at once.
fn plan_peak_users(plan: &Plan) -> u64 {
    let stage_peak = plan
        .stages
        .as_ref()
        .map_or(0.0, |s| s.0.iter().map(|st| st.target).fold(0.0, f64::max));
    match plan.rate.or(plan.trace.as_ref().map(|t| t.speed)) {
        Some(_) => plan.max_concurrency.unwrap_or(0),
        None => plan.users.max(stage_peak as u64),
    }
}

/// The soft limit on open files of this process.
pub fn open_file_limit() -> Option<u64> {
    // SAFETY: getrlimit only writes the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0).then_some(lim.rlim_cur)
    }
}

/// Raises the open-file limit to its hard maximum: every simulated user holds a connection.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
