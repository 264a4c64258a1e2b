//! Command-line flags (clap). Raw flags only: turning them into a validated [`Plan`] happens
//! in [`RunArgs::to_plan`], so every error names the flag or variable to fix.

use crate::config::{defaults, Arrival, Plan, PlanError, PlanInput, Secret, Stages, WaitTime};
// The value parsers of the flags are the plan's (also for `bench` and `sweep`).
pub use crate::config::{parse_duration, parse_pair, parse_ratio};
use crate::config::{ApiKind, ChatIdMode, PromptOrder};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

pub mod completions;
mod outputs;
pub mod sources;
pub use outputs::{CompareArgs, OutputArgs, ReportArgs};

/// Help headings, in the order `--help` shows them (as Locust groups its options).
pub mod heading {
    /// Target, token, model and how the test runs.
    pub const COMMON: &str = "Common options";
    /// Users, rates, stages and when to stop.
    pub const LOAD: &str = "Load shape";
    /// What each request sends.
    pub const WORKLOAD: &str = "Workload";
    /// Reports and pass/fail criteria.
    pub const OUTPUTS: &str = "Outputs and criteria";
    /// The web UI.
    pub const WEB: &str = "Web UI";
    /// Master and worker.
    pub const DISTRIBUTED: &str = "Distributed";
    /// Request time limits and https.
    pub const TIMEOUTS: &str = "Timeouts and TLS";
}

/// Load tester for streaming LLM chat-completion APIs (Open WebUI, OpenAI-compatible).
///
/// Reads GSAI_HOST, GSA_AUTH_TOKEN and CHAT_MODEL from the environment or a `.env` file in the
/// working directory, like the Locust script it replaces; flags override both. Settings may also
/// come from a config file: `--config FILE`, `./gsai-load.toml`, `./locust.conf` or
/// `~/.locust.conf` (Locust's keys). Precedence: defaults < config file < .env < environment <
/// flags; a repeated flag takes its last value.
#[derive(Parser, Debug)]
#[command(
    name = "gsai-load",
    version,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    /// A subcommand; without one, runs a load test.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Load-test options (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
    /// Distributed mode (--master / --worker).
    #[command(flatten, next_help_heading = heading::DISTRIBUTED)]
    pub cluster: crate::cluster::args::ClusterArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a short test against the built-in mock server (no .env, no network).
    Demo(DemoArgs),
    /// Serve the built-in mock LLM server.
    Mock(crate::mock::MockArgs),
    /// Measure the generator's own speed and fidelity against the built-in mock.
    Bench(crate::bench::BenchArgs),
    /// Rebuild the HTML report and CSVs from a saved --json result.
    Report(ReportArgs),
    /// Compare two --json results: the change of each headline metric (a regression check for CI).
    Compare(CompareArgs),
    /// Find the highest request rate that still meets --slo, by open-loop steps and bisection.
    Sweep(Box<SweepCmd>),
    /// Print a shell completion script: `gsai-load completions bash > /etc/bash_completion.d/gsai-load`.
    Completions(completions::CompletionsArgs),
}

/// Flags of `gsai-load demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Number of simulated users.
    #[arg(short = 'u', long, default_value_t = 50)]
    pub users: u64,
    /// Users started per second.
    #[arg(short = 'r', long, default_value_t = 10.0)]
    pub spawn_rate: f64,
    /// How long to run, e.g. 20s, 2m.
    #[arg(short = 't', long, default_value = "20s", value_parser = parse_duration)]
    pub run_time: Duration,
    /// Write the full result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Reports and pass/fail criteria.
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// Flags of a load test.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Read settings from this config file (Locust's locust.conf format, or TOML when it ends in
    /// .toml), over ~/.locust.conf, ./locust.conf and ./gsai-load.toml.
    #[arg(long, value_name = "FILE", help_heading = heading::COMMON)]
    pub config: Option<PathBuf>,
    /// Run without the web UI and start at once (default: serve the web UI and wait for a start).
    #[arg(long, help_heading = heading::COMMON)]
    pub headless: bool,
    /// Web UI flags (issue 4).
    #[command(flatten, next_help_heading = heading::WEB)]
    pub web: crate::web::WebArgs,
    /// Base URL of the service under test.
    #[arg(short = 'H', long, env = "GSAI_HOST", help_heading = heading::COMMON)]
    pub host: Option<String>,
    /// Bearer token (a sign-in JWT or an sk- API key).
    #[arg(long, env = "GSA_AUTH_TOKEN", hide_env_values = true, help_heading = heading::COMMON)]
    pub token: Option<String>,
    /// Model id sent in each request.
    #[arg(long, env = "CHAT_MODEL", help_heading = heading::COMMON)]
    pub model: Option<String>,
    /// Which API the service speaks.
    #[arg(long, value_enum, default_value_t = defaults::API, help_heading = heading::COMMON)]
    pub api: ApiKind,
    /// Open WebUI chat_id: `local:<uuid4>` (temporary chat), a bare `uuid4` (the seed's form; current Open WebUI answers 404), or none.
    #[arg(long, value_enum, default_value_t = defaults::CHAT_ID, help_heading = heading::WORKLOAD)]
    pub chat_id: ChatIdMode,
    /// Number of simulated users.
    #[arg(short = 'u', long, default_value_t = defaults::USERS, help_heading = heading::LOAD)]
    pub users: u64,
    /// Users started per second.
    #[arg(short = 'r', long, default_value_t = defaults::SPAWN_RATE, help_heading = heading::LOAD)]
    pub spawn_rate: f64,
    /// Stop after this long, e.g. 30s, 5m, 1h30m (default: until Ctrl-C).
    #[arg(short = 't', long, value_parser = parse_duration, help_heading = heading::LOAD)]
    pub run_time: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long, help_heading = heading::LOAD)]
    pub max_requests: Option<u64>,
    /// Wait between a user's requests: between(A,B), constant(S), constant_pacing(S), constant_throughput(N), none.
    #[arg(long, default_value_t = defaults::WAIT, help_heading = heading::LOAD)]
    pub wait: WaitTime,
    /// The user message sent in each request.
    #[arg(long, default_value = defaults::PROMPT, help_heading = heading::WORKLOAD)]
    pub prompt: String,
    /// max_tokens sent in the body.
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub max_tokens: Option<u32>,
    /// Extra JSON object merged into the request body, e.g. '{"temperature":0}'.
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub body: Option<String>,
    /// After stop, how long in-flight requests may finish before they are counted as cancelled.
    #[arg(long, default_value = defaults::STOP_TIMEOUT_TEXT, value_parser = parse_duration, help_heading = heading::LOAD)]
    pub stop_timeout: Duration,
    /// Time limit to open a connection.
    #[arg(long, default_value = defaults::CONNECT_TIMEOUT_TEXT, value_parser = parse_duration, help_heading = heading::TIMEOUTS)]
    pub connect_timeout: Duration,
    /// Time limit from sending a request to its response headers.
    #[arg(long, default_value = defaults::FIRST_BYTE_TIMEOUT_TEXT, value_parser = parse_duration, help_heading = heading::TIMEOUTS)]
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between two pieces of a response body.
    #[arg(long, default_value = defaults::IDLE_TIMEOUT_TEXT, value_parser = parse_duration, help_heading = heading::TIMEOUTS)]
    pub idle_timeout: Duration,
    /// Time limit of a whole request.
    #[arg(long, default_value = defaults::TOTAL_TIMEOUT_TEXT, value_parser = parse_duration, help_heading = heading::TIMEOUTS)]
    pub total_timeout: Duration,
    /// Accept-Encoding sent with each request, e.g. identity or "gzip, br, zstd" (gzip, deflate, br and zstd are decoded).
    #[arg(long, value_name = "VALUE", default_value = defaults::ACCEPT_ENCODING, help_heading = heading::WORKLOAD)]
    pub accept_encoding: String,
    /// Skip SSE events that are not valid JSON instead of failing the request.
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub lenient: bool,
    /// Also trust the CA certificates in this PEM file (e.g. a company CA); the system's store and the public roots are trusted already.
    #[arg(long, value_name = "FILE", help_heading = heading::TIMEOUTS)]
    pub ca_cert: Option<PathBuf>,
    /// Accept any https certificate (self-signed test servers only).
    #[arg(long, help_heading = heading::TIMEOUTS)]
    pub insecure: bool,
    /// Seconds between live console tables (0 turns them off).
    #[arg(long, default_value_t = 2.0, help_heading = heading::OUTPUTS)]
    pub print_every: f64,
    /// Print no live console tables, only the final summary (Locust's flag; as --print-every 0).
    #[arg(long, help_heading = heading::OUTPUTS)]
    pub only_summary: bool,
    /// Write the full result as JSON to this file.
    #[arg(long, help_heading = heading::OUTPUTS)]
    pub json: Option<PathBuf>,
    /// Open loop: start this many requests per second, whatever the responses (instead of users).
    #[arg(long, help_heading = heading::LOAD)]
    pub rate: Option<f64>,
    /// Open-loop arrival process.
    #[arg(long, value_enum, default_value_t = defaults::ARRIVAL, help_heading = heading::LOAD)]
    pub arrival: Arrival,
    /// Open loop: most requests in flight; arrivals beyond it are dropped and counted.
    #[arg(long, help_heading = heading::LOAD)]
    pub max_concurrency: Option<u64>,
    /// Ramp users (or, with --rate, requests/s) linearly through stages: TARGET@DURATION,... e.g. 10@30s,50@2m,0@10s.
    #[arg(long, help_heading = heading::LOAD)]
    pub stages: Option<Stages>,
    /// Requests that start during this first period run but are excluded from statistics.
    #[arg(long, value_parser = parse_duration, help_heading = heading::LOAD)]
    pub warmup: Option<Duration>,
    /// Abort once this many requests failed.
    #[arg(long, help_heading = heading::LOAD)]
    pub max_failures: Option<u64>,
    /// Abort once the failure ratio passes this (e.g. 5% or 0.05), after 20 finished requests.
    #[arg(long, value_parser = parse_ratio, help_heading = heading::LOAD)]
    pub max_fail_rate: Option<f64>,
    /// Prompts file: .txt (one per line), .jsonl ({"prompt": …} or {"messages": […]}, optional max_tokens), ShareGPT .json.
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub prompts: Option<PathBuf>,
    /// ShareGPT: send the whole conversation up to the last human turn as history.
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub sharegpt_history: bool,
    /// How prompts are picked from the file.
    #[arg(long, value_enum, default_value_t = defaults::PROMPT_ORDER, help_heading = heading::WORKLOAD)]
    pub prompt_order: PromptOrder,
    /// Synthetic prompts of MEAN±STDDEV tokens, e.g. 512,64.
    #[arg(long, value_parser = parse_pair, help_heading = heading::WORKLOAD)]
    pub synthetic_input: Option<(u32, u32)>,
    /// Seed for reproducible random choices (prompts, request kinds, waits).
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub seed: Option<u64>,
    /// TOML file declaring several request kinds with weights (see the README).
    #[arg(long, help_heading = heading::WORKLOAD)]
    pub scenario: Option<PathBuf>,
    /// Replay a trace (Mooncake JSONL: timestamp ms, input_length, output_length, hash_ids): each request at its recorded time, open loop.
    #[arg(long, value_name = "FILE", help_heading = heading::LOAD)]
    pub trace: Option<PathBuf>,
    /// Replay speed of --trace: 2 sends the trace twice as fast, 0.5 half as fast.
    #[arg(long, value_name = "X", requires = "trace", help_heading = heading::LOAD)]
    pub trace_speed: Option<f64>,
    /// Attach an image to each chat request's last user message (an image_url data URL, for
    /// vision models): a .png/.jpg/.gif/.webp file, or a folder of them taken in turn.
    #[arg(long, value_name = "PATH", conflicts_with = "synthetic_image", help_heading = heading::WORKLOAD)]
    pub image: Option<PathBuf>,
    /// Attach a drawn PNG of this size (noise, so it does not compress) to each chat request.
    #[arg(long, value_name = "WxH", value_parser = crate::config::parse_size, help_heading = heading::WORKLOAD)]
    pub synthetic_image: Option<(u32, u32)>,
    /// Open WebUI accounts, one email,password a line: each user signs in (POST /api/v1/auths/signin) as account i mod n and sends its own token (closed loop only).
    #[arg(long, value_name = "FILE.csv", help_heading = heading::LOAD)]
    pub accounts: Option<PathBuf>,
    /// Run the same headless test N times and report each headline metric as mean ± 95% CI.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = heading::LOAD)]
    pub repeat: Option<u32>,
    /// Reports and pass/fail criteria (issue 3).
    #[command(flatten, next_help_heading = heading::OUTPUTS)]
    pub outputs: OutputArgs,
    /// --server-metrics: the server's own Prometheus metrics during the test (issue 11).
    #[command(flatten)]
    pub server_metrics: crate::observe::ServerMetricsArgs,
    /// --metrics-port: gsai-load's own live metrics for Prometheus (issue 11).
    #[command(flatten)]
    pub metrics: crate::exporter::MetricsArgs,
}

impl RunArgs {
    /// The token of `--token` / `GSA_AUTH_TOKEN`, if one is given (blank counts as none).
    pub fn secret(&self) -> Option<Secret> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
    }

    /// The host of `--host` / `GSAI_HOST`, if one is given (blank counts as none).
    pub fn given_host(&self) -> Option<String> {
        given(&self.host)
    }

    /// The flags as plan settings: what [`Plan::build`] checks and completes. The token is
    /// given for the host of the same invocation only.
    pub fn to_input(&self) -> PlanInput {
        PlanInput {
            host: given(&self.host),
            model: given(&self.model),
            token: self.secret(),
            token_host: given(&self.host),
            api: Some(self.api),
            chat_id: Some(self.chat_id),
            prompt: Some(self.prompt.clone()),
            max_tokens: self.max_tokens,
            body: self.body.clone(),
            users: Some(self.users),
            spawn_rate: Some(self.spawn_rate),
            wait: Some(self.wait),
            run_time: self.run_time,
            max_requests: self.max_requests,
            stop_timeout: Some(self.stop_timeout),
            connect_timeout: Some(self.connect_timeout),
            first_byte_timeout: Some(self.first_byte_timeout),
            idle_timeout: Some(self.idle_timeout),
            total_timeout: Some(self.total_timeout),
            accept_encoding: Some(self.accept_encoding.clone()),
            lenient: self.lenient,
            ca_cert: self.ca_cert.clone(),
            insecure: self.insecure,
            rate: self.rate,
            arrival: Some(self.arrival),
            max_concurrency: self.max_concurrency,
            stages: self.stages.clone(),
            warmup: self.warmup,
            max_failures: self.max_failures,
            max_fail_rate: self.max_fail_rate,
            prompts: self.prompts.clone(),
            sharegpt_history: self.sharegpt_history,
            prompt_order: Some(self.prompt_order),
            synthetic_input: self.synthetic_input,
            seed: self.seed,
            scenario_file: self.scenario.clone(),
            scenario: None,
            slo: self.outputs.slo.clone(),
            trace: self.trace.clone(),
            trace_speed: self.trace_speed,
            image: self.image.clone(),
            synthetic_image: self.synthetic_image,
            accounts: self.accounts.clone(),
        }
    }

    /// Validates the flags into a plan ([`Plan::build`]).
    pub fn to_plan(&self) -> Result<Plan, PlanError> {
        if !(self.print_every.is_finite() && self.print_every >= 0.0) {
            return Err(PlanError::Invalid {
                field: crate::config::Field::PrintEvery,
                reason: "must be 0 or more seconds".into(),
            });
        }
        Plan::build(&self.to_input())
    }
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests;

/// Flags of `gsai-load sweep`: a test's, then the search's.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepCmd {
    /// Target, workload and `--slo` (required), as for a test; `--arrival` applies to every step.
    #[command(flatten)]
    pub run: RunArgs,
    /// The search.
    #[command(flatten)]
    pub sweep: crate::sweep::SweepArgs,
}
