//! `--metrics-port`: binds the standalone Prometheus endpoint before a test starts (so a port
//! in use fails first), says where it is on stderr, and serves it until the process ends.

use crate::exporter::{Feed, MetricsArgs, Source};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// A serving metrics port; stops when dropped.
pub struct MetricsPort {
    /// What it serves when opened without a source: point it at each test's snapshots.
    pub feed: Feed,
    shutdown: CancellationToken,
}

impl Drop for MetricsPort {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Opens `--metrics-port` if given, serving `source`, or else its own [`Feed`].
pub async fn open(
    args: &MetricsArgs,
    source: Option<Source>,
) -> anyhow::Result<Option<MetricsPort>> {
    let Some(port) = args.metrics_port else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind((args.metrics_host.as_str(), port))
        .await
        .with_context(|| {
            format!(
                "--metrics-host {} --metrics-port {port}: cannot listen there (is another process using the port? pick another, or 0 for any free one)",
                args.metrics_host
            )
        })?;
    let addr = listener
        .local_addr()
        .context("reading the metrics port's address")?;
    let feed = Feed::new();
    let source = source.unwrap_or_else(|| feed.source());
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::web::metrics::serve(listener, source, stop).await {
            eprintln!("warning: --metrics-port {addr}: serving failed: {e}");
        }
    });
    eprintln!("metrics at http://{addr}/metrics");
    if !addr.ip().is_loopback() {
        eprintln!("note: the metrics port {addr} is reachable from other machines (read-only test figures, no token)");
    }
    Ok(Some(MetricsPort { feed, shutdown }))
}
