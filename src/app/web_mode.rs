//! Web UI mode for the binary, local or as a distributed master: serves the UI over a
//! [`web::Runner`] until Ctrl-C or SIGTERM (or `--autoquit` after an `--autostart` test), then
//! prints the last test's summary and writes its outputs like a headless run.

use super::outputs::{self, Outputs};
use super::signals::Signals;
use crate::cli::RunArgs;
use crate::cluster::master::MasterError;
use crate::config::{Plan, PlanInput};
use crate::web;
use anyhow::Context;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What `--autostart` waits for before starting (a master: its `--expect-workers`).
pub type Gate = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Serves the web UI with tests run by `runner`; `gate` (if any) is awaited before an
/// `--autostart` test starts. Returns the exit code of the last test (0 when none ran).
pub async fn serve(
    args: RunArgs,
    runner: web::Runner,
    gate: Option<Gate>,
    signals: &Signals,
) -> anyhow::Result<u8> {
    if args.web.autoquit.is_some() && !args.web.autostart {
        anyhow::bail!(
            "--autoquit needs --autostart (it counts from the end of the autostarted test)"
        );
    }
    let (template, checked, defaults) = web_plan(&args)?;
    if runner.is_distributed() && checked.max_requests.is_some() {
        return Err(MasterError::MaxRequests.into());
    }
    let outputs = Outputs::new(args.json.as_deref(), &args.outputs);
    outputs::check_paths(&outputs)?;
    let flags = &args.web;
    let listener = tokio::net::TcpListener::bind((flags.web_host.as_str(), flags.web_port))
        .await
        .with_context(|| {
            format!(
                "--web-host {} --web-port {}: cannot listen there (is Locust or another gsai-load using the port? pick another with --web-port)",
                flags.web_host, flags.web_port
            )
        })?;
    let addr = listener
        .local_addr()
        .context("reading the web UI's address")?;
    // A master never sends its token: only a local run uses it.
    super::warn_about(
        &checked,
        !runner.is_distributed(),
        Some(super::WebListen {
            addr,
            login: flags.web_login.is_some(),
        }),
    );
    let server_metrics = super::server_metrics(&args, &checked)?;
    let controller = web::Controller::with_runner(template, defaults, runner);
    // --server-metrics: every test started from the UI scrapes them (on a master: the master).
    controller.server_metrics().configure(server_metrics);
    // --metrics-port beside the UI (which serves /metrics on its own port too).
    let source = web::metrics::controller_source(controller.clone());
    let _metrics = super::metrics_port::open(&args.metrics, Some(source)).await?;
    let shutdown = CancellationToken::new();
    let state = web::WebState {
        controller: controller.clone(),
        login: flags.web_login.clone(),
    };
    let server = tokio::spawn(web::serve(listener, state, shutdown.clone()));
    eprintln!(
        "gsai-load {}: web UI at http://{addr}{} (Ctrl-C to quit)",
        env!("CARGO_PKG_VERSION"),
        if flags.web_login.is_some() {
            " (login required)"
        } else {
            ""
        }
    );
    // The autostarted test and, with --autoquit, the wait after it; never ends otherwise.
    let session = async {
        if !flags.autostart {
            return std::future::pending().await;
        }
        if let Some(gate) = gate {
            gate.await?;
        }
        let mut finished = controller.finished();
        controller
            .swarm(web::StartRequest {
                users: args.users,
                spawn_rate: args.spawn_rate,
                run_time: args.run_time,
                ..web::StartRequest::default()
            })
            .context("--autostart with -u/-r/-t")?;
        match flags.autoquit {
            Some(secs) => {
                let _ = finished.wait_for(Option::is_some).await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
                Ok(())
            }
            None => std::future::pending().await,
        }
    };
    let ended: anyhow::Result<()> = tokio::select! {
        _ = signals.first() => {
            if controller.stop().is_ok() {
                eprintln!("\nstopping: waiting for in-flight requests (up to --stop-timeout; Ctrl-C or SIGTERM again cancels them now)...");
                let mut done = controller.finished();
                let second = tokio::select! {
                    _ = done.wait_for(|_| !controller.is_busy()) => false,
                    _ = signals.nth(2) => true,
                };
                if second {
                    eprintln!("\nsecond signal: cancelling in-flight requests now; the results are still written");
                    let _ = controller.cancel_now();
                    let _ = done.wait_for(|_| !controller.is_busy()).await;
                }
            }
            Ok(())
        }
        r = session => r,
    };
    shutdown.cancel();
    server
        .await
        .context("the web UI task failed")?
        .context("serving the web UI failed")?;
    ended?;
    match controller.finished().borrow().clone() {
        Some(result) => outputs::finish_after(
            &result,
            controller.history_ticks(),
            controller.server_metrics().current(),
            &outputs,
        ),
        None => Ok(0),
    }
}

/// The web UI's plan template and form defaults. Host and model may be missing (the form
/// supplies them); every other flag is checked now, by the plan's own rules, so mistakes show at
/// startup.
fn web_plan(args: &RunArgs) -> anyhow::Result<(PlanInput, Plan, web::FormDefaults)> {
    // The token is for the configured host only; without one, for no host (the form may give
    // a token for its own host).
    let template = args.to_input();
    let checked = template.check_template()?;
    let defaults = web::FormDefaults {
        users: args.users,
        spawn_rate: args.spawn_rate,
        host: template.host.clone(),
        model: template.model.clone(),
        run_time: args.run_time,
        api: args.api,
    };
    Ok((template, checked, defaults))
}
