//! Flags of the outputs and pass/fail criteria (`--csv`, `--html`, `--threshold`, `--slo` ...),
//! shared by a load test and `demo`, and of the `report` and `compare` subcommands.

use crate::criteria::slo::SloRule;
use crate::criteria::threshold::Threshold;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Reports and pass/fail criteria of a test.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write Locust-compatible CSVs: PREFIX_stats.csv, PREFIX_stats_history.csv (a row a second,
    /// appended as the test runs), PREFIX_failures.csv, PREFIX_exceptions.csv, plus
    /// PREFIX_llm_stats.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// In PREFIX_stats_history.csv, write every request kind each second with percentiles of the
    /// last 10 s, as Locust's --csv-full-history (default: the Aggregated row, cumulative).
    #[arg(long, requires = "csv")]
    pub csv_full_history: bool,
    /// Write a self-contained HTML report (charts, tables, failures, plan) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Pass/fail criterion on the final Aggregated figures, repeatable: 'ttft.p95<800ms',
    /// 'e2e.p99<=5s', 'fail_rate<1%', 'rps>20', 'output_tokens_per_s>1000', 'goodput>5'.
    /// Any failing threshold makes the exit status 99.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<Threshold>,
    /// Stop the test as soon as a threshold fails on the running figures (checked each second,
    /// after --threshold-abort-delay); count lower bounds (requests>N) are judged at the end only.
    #[arg(long, requires = "thresholds")]
    pub threshold_abort: bool,
    /// With --threshold-abort: how long to run before thresholds can stop the test, so ramp-up
    /// does not trip them.
    #[arg(long, default_value = "10s", value_parser = crate::config::parse_duration, value_name = "DURATION")]
    pub threshold_abort_delay: Duration,
    /// Exit status when requests failed and no threshold did (Locust's flag; 0 lets thresholds
    /// alone decide). A failed threshold always exits 99.
    #[arg(long, default_value_t = crate::report::EXIT_ON_ERROR, value_name = "CODE")]
    pub exit_code_on_error: u8,
    /// Per-request SLOs that define goodput, comma-separated: 'ttft<500ms,tpot<50ms'
    /// (metrics ttfb, ttft, tpot, itl, e2e; units ms, s, us). A request that succeeded and met
    /// every one is "good"; failed requests count as missing them.
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    pub slo: Vec<SloRule>,
    /// Write one JSON line per finished request to this file (zstd-compressed if it ends in
    /// .zst): start time, name, user, outcome and failure kind, status, TTFB/TTFT/E2E µs,
    /// tokens, largest ITL, bytes. A worker writes FILE with its id before the extension.
    /// Summarize it with `gsai-load report --requests-log FILE`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub requests_log: Option<PathBuf>,
}

/// Flags of `gsai-load report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// A result written by --json.
    #[arg(value_name = "RESULT.json", required_unless_present = "requests_log")]
    pub result: Option<PathBuf>,
    /// Summarize a log written by --requests-log (per name: counts, failures by kind, TTFT
    /// and E2E percentiles, tokens).
    #[arg(long, value_name = "FILE.jsonl")]
    pub requests_log: Option<PathBuf>,
    /// Write the HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the CSV files with this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write every request kind in PREFIX_stats_history.csv (see the run's --csv-full-history).
    #[arg(long, requires = "csv")]
    pub csv_full_history: bool,
}

/// Flags of `gsai-load compare`.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// The baseline result (written by --json).
    #[arg(value_name = "A.json")]
    pub baseline: PathBuf,
    /// The result to compare with the baseline.
    #[arg(value_name = "B.json")]
    pub candidate: PathBuf,
    /// Exit with status 99 when a headline metric of B is worse than A's by more than PCT percent.
    #[arg(long, value_name = "PCT")]
    pub fail_if_worse: Option<f64>,
}
