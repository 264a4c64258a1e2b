//! gsai-load: a load tester for streaming (SSE) LLM chat-completion APIs.
//!
//! Modules follow the data's path: [`cli`] → [`config`] → [`workload`] → [`engine`] →
//! [`client`] → [`sse`] → [`metrics`] → [`report`] / [`web`]. [`criteria`] holds SLOs and
//! thresholds; [`mock`] is the built-in mock server.
#![warn(missing_docs)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod criteria;
pub mod engine;
pub mod metrics;
pub mod mock;
pub mod observe;
pub mod report;
pub mod sse;
pub mod sweep;
pub mod web;
pub mod workload;
