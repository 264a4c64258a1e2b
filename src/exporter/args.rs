//! The `--metrics-port` / `--metrics-host` flags (their own help section).

use clap::Args;

/// Serving gsai-load's own live metrics to Prometheus.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Prometheus metrics")]
pub struct MetricsArgs {
    /// Serve live Prometheus metrics at http://HOST:PORT/metrics while gsai-load runs (headless,
    /// --master, --worker; the web UI always serves them on its own port). 0 picks a free port;
    /// the address is printed on stderr.
    #[arg(long = "metrics-port", value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Address the --metrics-port listens on. The default is this machine only; use 0.0.0.0 for
    /// a Prometheus on another host (the metrics are read-only and hold no token).
    #[arg(
        long = "metrics-host",
        value_name = "HOST",
        default_value = "127.0.0.1"
    )]
    pub metrics_host: String,
}

impl Default for MetricsArgs {
    fn default() -> Self {
        Self {
            metrics_port: None,
            metrics_host: "127.0.0.1".into(),
        }
    }
}
