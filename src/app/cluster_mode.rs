//! The distributed roles for the binary: the master with its web UI (workers stay connected
//! between tests), the headless master (the same [`headless::drive`] loop, summary and
//! outputs as a local run), and the worker process.

use super::headless;
use super::outputs::{self, Outputs};
use super::Signals;
use crate::cli::RunArgs;
use crate::cluster::args::ClusterArgs;
use crate::cluster::master::{self, MasterConfig, MasterNode, NodeConfig};
use crate::cluster::worker::{self, WorkerConfig};
use crate::driver::Running;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs the role the flags ask for; returns the exit code.
pub async fn main(dist: ClusterArgs, args: RunArgs, signals: &Signals) -> anyhow::Result<u8> {
    if dist.master {
        run_master(dist, args, signals).await
    } else {
        run_worker(dist, args, signals).await
    }
}

fn max_wait(dist: &ClusterArgs) -> Option<Duration> {
    (!dist.expect_workers_max_wait.is_zero()).then_some(dist.expect_workers_max_wait)
}

fn print_notes(notes: Option<tokio::sync::mpsc::UnboundedReceiver<String>>) {
    if let Some(mut notes) = notes {
        tokio::spawn(async move {
            while let Some(n) = notes.recv().await {
                eprintln!("master: {n}");
            }
        });
    }
}

async fn run_master(dist: ClusterArgs, args: RunArgs, signals: &Signals) -> anyhow::Result<u8> {
    if args.headless {
        run_master_headless(dist, args, signals).await
    } else {
        run_master_web(dist, args, signals).await
    }
}

/// The master with the web UI: workers join at any time and stay between tests; each test
/// starts from the form (or `--autostart`, once `--expect-workers` are there).
async fn run_master_web(dist: ClusterArgs, args: RunArgs, signals: &Signals) -> anyhow::Result<u8> {
    let node = Arc::new(
        MasterNode::bind(NodeConfig {
            bind_host: dist.master_bind_host.clone(),
            bind_port: dist.master_bind_port,
            expect_workers: dist.expect_workers.max(1),
        })
        .await?,
    );
    eprintln!(
        "master listening on {} for workers (gsai-load --worker --master-host HOST --master-port {})",
        node.local_addr(),
        node.local_addr().port()
    );
    print_notes(node.take_notes());
    let gate = args.web.autostart.then(|| {
        let node = node.clone();
        let (expect, max) = (dist.expect_workers.max(1), max_wait(&dist));
        Box::pin(async move {
            eprintln!("--autostart: waiting for {expect} worker(s) (--expect-workers)");
            node.wait_for_workers(expect, max).await?;
            Ok(())
        }) as super::web_mode::Gate
    });
    let runner = crate::web::Runner::Master(node.clone());
    let code = super::web_mode::serve(args, runner, gate, signals).await;
    // Workers quit with the master, as under Locust.
    node.shutdown().await;
    code
}

async fn run_master_headless(
    dist: ClusterArgs,
    args: RunArgs,
    signals: &Signals,
) -> anyhow::Result<u8> {
    let plan = args.to_plan()?;
    let mut outputs = Outputs::new(args.json.as_deref(), &args.outputs);
    // The master scrapes --server-metrics (workers never do).
    outputs.server_metrics = args
        .server_metrics
        .options(&plan.tls, Some(crate::observe::args::stderr_warnings()))?;
    let csv = outputs::prepare(&outputs)?;
    eprintln!(
        "gsai-load {} master: {} users (spawn {}/s) over {} worker(s) against {} [{}], model {}",
        env!("CARGO_PKG_VERSION"),
        plan.users,
        plan.spawn_rate,
        dist.expect_workers,
        plan.host,
        plan.api.chat_path(),
        plan.model,
    );
    let metrics = super::metrics_port::open(&args.metrics, None).await?;
    let cfg = MasterConfig {
        bind_host: dist.master_bind_host.clone(),
        bind_port: dist.master_bind_port,
        plan,
        expect_workers: dist.expect_workers.max(1),
        expect_workers_max_wait: max_wait(&dist),
    };
    let mut handle = master::start(cfg).await?;
    eprintln!(
        "master listening on {} for workers (gsai-load --worker --master-host HOST --master-port {})",
        handle.local_addr(),
        handle.local_addr().port()
    );
    print_notes(handle.take_notes());
    // The master's test starts once its workers are there, after the scraper's first scrape.
    let running = Running::Master(handle);
    if let Some(m) = &metrics {
        m.feed.follow(running.subscribe());
    }
    headless::drive(
        move || Ok(running),
        csv,
        args.print_every,
        &outputs,
        signals,
    )
    .await
}

async fn run_worker(dist: ClusterArgs, args: RunArgs, signals: &Signals) -> anyhow::Result<u8> {
    let token = args.secret();
    let token_host = args
        .host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from);
    if token.is_none() {
        eprintln!("warning: no token (GSA_AUTH_TOKEN or --token) on this worker: requests are sent without an Authorization header (the master never sends its token)");
    } else if token_host.is_none() {
        eprintln!("warning: this worker has a token but no GSAI_HOST / --host: the token is sent to no host; set GSAI_HOST to the service the master tests");
    }
    let own = args.clone();
    let metrics = super::metrics_port::open(&args.metrics, None).await?;
    let on_test = metrics.as_ref().map(|m| {
        let feed = m.feed.clone();
        Box::new(move |snapshots| feed.follow(snapshots)) as worker::TestTap
    });
    let cfg = WorkerConfig {
        master_host: dist.master_host.clone(),
        master_port: dist.master_port,
        node_id: worker::node_id(),
        token,
        token_host,
        shutdown: CancellationToken::new(),
        cancel_now: CancellationToken::new(),
        requests_log: args.outputs.requests_log.clone(),
        on_test,
        local_plan: Box::new(move |host| {
            let mut a = own.clone();
            if let Some(h) = host {
                a.host = Some(h.to_string());
            }
            a.to_plan().map_err(|e| e.to_string())
        }),
    };
    eprintln!(
        "gsai-load {} worker {}: connecting to the master at {}",
        env!("CARGO_PKG_VERSION"),
        cfg.node_id,
        crate::cluster::transport::join_host_port(&dist.master_host, dist.master_port)
    );
    let (shutdown, cancel_now) = (cfg.shutdown.clone(), cfg.cancel_now.clone());
    let stop = signals.on_stop(
        "worker: stopping users (up to the test's stop timeout), sending the last statistics and leaving",
        move || shutdown.cancel(),
        move || cancel_now.cancel(),
    );
    let ran = worker::run(cfg).await;
    stop.abort();
    ran?;
    eprintln!("worker: done");
    Ok(0)
}
