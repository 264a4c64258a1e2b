//! Integration tests: the engine, the binary, the web UI and distributed mode against the
//! built-in mock on 127.0.0.1:0.

mod chromium;
mod harness;
mod http;

mod binary;
mod dist;
mod engine;
mod load;
mod packaging;
mod report_stages;
mod reports;
mod streams;
mod tls;
mod web;
mod web_cli;
mod web_e2e;
mod webmaster;
