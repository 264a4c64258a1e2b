//! gsai-load: a load tester for streaming (SSE) LLM chat-completion APIs.
//!
//! Modules follow the data's path, and each imports only modules before it on that path:
//!
//! - [`cli`] parses flags (clap) and hands them to [`config`], which owns a test's whole
//!   vocabulary and builds one validated, serializable [`config::Plan`].
//! - [`workload`] turns the plan into request bodies (prompts, datasets, scenarios).
//! - [`engine`] runs users or open-loop arrivals, paces spawning, stops, and publishes
//!   snapshots; it never prints.
//! - [`client`] sends one request over HTTP/1.1 and timestamps it; [`sse`] parses the
//!   stream incrementally.
//! - [`metrics`] records each request into sharded HDR histograms from one metric catalogue
//!   and one set of failure kinds, merged once a second into a timeline.
//! - [`criteria`] judges results: thresholds and SLOs.
//! - [`observe`] watches beside the load: the generator's health, the per-request log, and
//!   `--server-metrics` (the server's own Prometheus series, scraped while a test runs).
//! - [`exporter`] turns the latest snapshot into Prometheus text for a live `GET /metrics`.
//! - [`report`] writes the console tables, CSV, JSON and HTML from a result.
//! - [`cluster`] runs a test over workers (Locust's master/worker protocol), on the engine.
//! - [`driver`] starts a test on the engine or a master behind one shape, for every mode.
//! - [`web`] serves the UI and its API over the driver.
//! - [`sweep`] searches for the highest rate that meets the SLOs; [`bench`](mod@bench) measures the
//!   generator against the [`mock`], the built-in OpenAI/Open WebUI server.
//! - [`app`] is the binary's top: it picks the mode, wires signals (one shutdown path) and
//!   writes outputs.
#![warn(missing_docs)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod criteria;
pub mod driver;
pub mod engine;
pub mod exporter;
pub mod metrics;
pub mod mock;
pub mod observe;
pub mod report;
pub mod sse;
pub mod sweep;
pub mod web;
pub mod workload;
