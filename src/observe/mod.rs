//! Observing the generator and the server beside the measurements: the generator's own health
//! ([`health`]), this process's resource use ([`process`]), the per-request log
//! ([`requests_log`]), and `--server-metrics`, which scrapes the server's Prometheus/OpenMetrics
//! endpoints while a test runs ([`scrape`]), keeps the numeric series within hard bounds
//! ([`series`]) through a parser crate ([`parse`]), and reads the well-known LLM-serving series
//! out of them ([`known`]) for the reports and the web UI.
//!
//! It sits below the orchestration: the scraper uses [`crate::client`]'s connection setup and
//! imports nothing of `app`, `cli`, `web` or `cluster`, which drive it through
//! [`Scraper::start`] and [`ScrapeHandle::finish`].

pub mod args;
pub mod health;
pub mod known;
pub mod parse;
pub mod process;
pub mod requests_log;
pub mod scrape;
pub mod series;

pub use args::ServerMetricsArgs;
pub use scrape::{ScrapeHandle, ScrapeOptions, ScrapeView, Scraper};
pub use series::{ScrapeFailure, Series, ServerMetrics};
