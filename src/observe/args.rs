//! The `--server-metrics` flags (their own help section), and their checking into
//! [`ScrapeOptions`].

use super::scrape::{Endpoint, EndpointError, ScrapeOptions, WarnFn};
use super::series::Bounds;
use crate::client::TlsOptions;
use clap::Args;
use std::time::Duration;

/// Default time limit of one scrape.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default size cap of one scrape's body (vLLM's /metrics is a few hundred KB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Scraping the server's own Prometheus metrics during the test.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Server metrics")]
pub struct ServerMetricsArgs {
    /// Scrape this Prometheus/OpenMetrics text endpoint during the test (repeatable), e.g.
    /// http://vllm:8000/metrics. The token is never sent to it.
    #[arg(long = "server-metrics", value_name = "URL")]
    pub urls: Vec<String>,
    /// Time between scrapes.
    #[arg(long = "server-metrics-interval", value_name = "DURATION", default_value = "1s", value_parser = crate::config::parse_duration)]
    pub interval: Duration,
    /// Keep only series whose name matches this regular expression (default: every numeric series).
    #[arg(long = "server-metrics-filter", value_name = "REGEX")]
    pub filter: Option<String>,
    /// Time limit of one scrape.
    #[arg(long = "server-metrics-timeout", value_name = "DURATION", default_value = "5s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

/// Why the `--server-metrics` flags are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// A URL is refused.
    #[error(transparent)]
    Url(#[from] EndpointError),
    /// The filter is not a regular expression.
    #[error("--server-metrics-filter: not a regular expression: {0}")]
    Filter(#[from] regex::Error),
    /// A duration out of range.
    #[error("{flag}: {reason}")]
    Range {
        /// The flag.
        flag: &'static str,
        /// What to do.
        reason: &'static str,
    },
}

impl ServerMetricsArgs {
    /// The scrape options, or `None` without `--server-metrics`. https URLs use the run's
    /// `--ca-cert` / `--insecure`.
    pub fn options(
        &self,
        tls: &TlsOptions,
        warn: Option<WarnFn>,
    ) -> Result<Option<ScrapeOptions>, ArgsError> {
        if self.urls.is_empty() {
            return Ok(None);
        }
        if self.interval < Duration::from_millis(100) {
            return Err(ArgsError::Range {
                flag: "--server-metrics-interval",
                reason: "must be at least 100ms",
            });
        }
        if self.timeout.is_zero() {
            return Err(ArgsError::Range {
                flag: "--server-metrics-timeout",
                reason: "must be above 0",
            });
        }
        let endpoints = self
            .urls
            .iter()
            .map(|u| Endpoint::parse(u, tls))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = self
            .filter
            .as_deref()
            .map(|f| regex::RegexBuilder::new(f).size_limit(1 << 20).build())
            .transpose()?;
        Ok(Some(ScrapeOptions {
            endpoints,
            interval: self.interval,
            filter,
            timeout: self.timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            bounds: Bounds::default(),
            warn,
        }))
    }
}

/// A warning sink that prints to stderr, for the binary.
pub fn stderr_warnings() -> WarnFn {
    std::sync::Arc::new(|w: &str| eprintln!("warning: {w}"))
}
