//! Integration tests: the engine, the binary, the web UI and distributed mode against the
//! built-in mock on 127.0.0.1:0.

mod chromium;
mod generator_health;
mod harness;
mod http;
mod images;

mod accounts;
mod apis;
mod binary;
mod cluster;
mod cluster_hostile;
mod cluster_parity;
mod container_files;
mod containers;
mod containers_compose;
mod containers_kube;
mod engine;
mod failure_kinds;
mod layout;
mod load;
mod metrics_endpoint;
mod outputs;
mod packaging;
mod repeat;
mod report_stages;
mod reports;
mod requests_log;
mod server_metrics;
mod signals;
mod streams;
mod tls;
mod token_scope;
mod trace;
mod web;
mod web_cli;
mod web_e2e;
mod web_guard;
mod webmaster;
