//! Orchestration for the binary: turns parsed flags into runs of the engine, the mock or the
//! benchmark, wires the console and Ctrl-C, writes outputs, and picks the exit code.

use crate::cli::{Cli, Command, DemoArgs, RunArgs};
use crate::config::{Plan, Secret, WaitTime};
use crate::engine::{self, RunResult};
use crate::report;
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Exit status for bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Runs what the command line asks for and returns the process exit code.
pub async fn main(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Some(Command::Demo(args)) => demo(args).await,
        Some(Command::Mock(args)) => {
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                s.cancel();
            });
            crate::mock::run(args, shutdown)
                .await
                .context("mock server failed")?;
            Ok(0)
        }
        Some(Command::Bench(args)) => crate::bench::run(args).await,
        // Distributed mode (issue 5): --master / --worker.
        None if cli.dist.enabled() => crate::dist::run::main(cli.dist, cli.run).await,
        None => headless(cli.run).await,
    }
}

async fn headless(args: RunArgs) -> anyhow::Result<u8> {
    if !args.headless {
        anyhow::bail!(
            "the web UI is not available yet: pass --headless to run from the command line (e.g. gsai-load --headless -u 10 -r 2 -t 1m)"
        );
    }
    let plan = args.to_plan()?;
    if plan.token.is_none() {
        eprintln!("warning: no token (GSA_AUTH_TOKEN or --token): requests are sent without an Authorization header");
    }
    run_test(plan, args.print_every, args.json.as_deref()).await
}

/// Runs a plan headless: live console, Ctrl-C to stop, summary and outputs at the end.
pub async fn run_test(plan: Plan, print_every_s: f64, json: Option<&Path>) -> anyhow::Result<u8> {
    if let Some(path) = json {
        check_writable(path)
            .with_context(|| format!("--json {}: cannot write there", path.display()))?;
    }
    eprintln!(
        "gsai-load {}: {} users (spawn {}/s) against {} [{}], model {}, wait {}, {}",
        env!("CARGO_PKG_VERSION"),
        plan.users,
        plan.spawn_rate,
        plan.host,
        plan.api.chat_path(),
        plan.model,
        plan.wait,
        match (plan.run_time, plan.max_requests) {
            (Some(t), _) => format!("run time {}", humantime::format_duration(t)),
            (None, Some(n)) => format!("until {n} requests"),
            (None, None) => "until Ctrl-C".to_string(),
        }
    );
    let handle = engine::start(plan)?;
    let mut snaps = handle.subscribe();
    let printer = (print_every_s > 0.0).then(|| {
        let every = Duration::from_secs_f64(print_every_s);
        tokio::spawn(async move {
            let mut last = Instant::now();
            while snaps.changed().await.is_ok() {
                if last.elapsed() + Duration::from_millis(100) >= every {
                    last = Instant::now();
                    let snap = snaps.borrow_and_update().clone();
                    eprint!("{}", report::console::live(&snap.kinds, &snap));
                }
            }
        })
    });
    let stopper = handle.stopper();
    let stop = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: waiting for in-flight requests (up to --stop-timeout)...");
            stopper.stop();
        }
    });
    let result = handle.wait().await;
    stop.abort();
    if let Some(p) = printer {
        p.abort();
    }
    finish(&result, json)
}

/// Prints the summary, writes the outputs and picks the exit code (local and master runs).
pub(crate) fn finish(result: &RunResult, json: Option<&Path>) -> anyhow::Result<u8> {
    print!("{}", report::console::summary(result));
    if let Some(path) = json {
        report::json::write(result, path)
            .with_context(|| format!("--json {}: writing the result failed", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(report::exit_code(result))
}

pub(crate) fn check_writable(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("folder {} does not exist", dir.display()),
        ));
    }
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<u8> {
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
    let code = run_test(plan, 2.0, args.json.as_deref()).await?;
    let c = mock.counters();
    eprintln!(
        "mock saw {} requests ({} completed streams, {} events sent)",
        c.requests, c.ok, c.events_sent
    );
    mock.shutdown().await;
    Ok(code)
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
