//! Watching the system under test beside the load. `--server-metrics` scrapes the server's
//! Prometheus/OpenMetrics endpoints while a test runs ([`scrape`]), keeps the numeric series
//! within hard bounds ([`series`]) through a parser crate ([`parse`]), and reads the well-known
//! LLM-serving series out of them ([`known`]) for the reports and the web UI.
//!
//! It sits below the orchestration: it uses [`crate::client`]'s connection setup and imports
//! nothing of `app`, `cli`, `web` or `cluster`, which drive it through
//! [`Scraper::start`] and [`ScrapeHandle::finish`].

pub mod args;
pub mod known;
pub mod parse;
pub mod scrape;
pub mod series;

pub use args::ServerMetricsArgs;
pub use scrape::{ScrapeHandle, ScrapeOptions, ScrapeView, Scraper};
pub use series::{ScrapeFailure, Series, ServerMetrics};
