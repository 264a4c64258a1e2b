//! The distributed-mode flags, flattened into the main command line (Locust's names).

use crate::config::parse_duration;
use clap::Args;
use std::time::Duration;

/// Flags of `--master` and `--worker`.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Run as the master of a distributed test: workers connect to it and run the users.
    #[arg(long, conflicts_with = "worker")]
    pub master: bool,
    /// Run as a worker of a master (gsai-load's or a stock `locust --master`).
    #[arg(long)]
    pub worker: bool,
    /// Master: number of workers to wait for before starting the test.
    #[arg(long, default_value_t = 1, requires = "master")]
    pub expect_workers: usize,
    /// Master: give up when the expected workers have not connected after this long (0: wait forever).
    #[arg(long, default_value = "0", value_parser = parse_duration, requires = "master")]
    pub expect_workers_max_wait: Duration,
    /// Master: interface to listen on for workers (* for all).
    #[arg(long, default_value = "*")]
    pub master_bind_host: String,
    /// Master: port to listen on for workers.
    #[arg(long, default_value_t = 5557)]
    pub master_bind_port: u16,
    /// Worker: host name or address of the master.
    #[arg(long, default_value = "127.0.0.1")]
    pub master_host: String,
    /// Worker: port of the master.
    #[arg(long, default_value_t = 5557)]
    pub master_port: u16,
}

impl ClusterArgs {
    /// Whether a distributed role was asked for.
    pub fn enabled(&self) -> bool {
        self.master || self.worker
    }
}
