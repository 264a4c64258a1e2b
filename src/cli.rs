//! Command-line flags (clap). Raw flags only: turning them into a validated [`Plan`] happens
//! in [`RunArgs::to_plan`], so every error names the flag or variable to fix.

use crate::client::Timeouts;
use crate::config::{Arrival, Plan, Secret, Stages, WaitTime};
use crate::workload::scenario::{Scenario, ScenarioError};
use crate::workload::{ApiKind, ChatIdMode, PromptOrder};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

mod outputs;
pub use outputs::{CompareArgs, OutputArgs, ReportArgs};

/// Load tester for streaming LLM chat-completion APIs (Open WebUI, OpenAI-compatible).
///
/// Reads GSAI_HOST, GSA_AUTH_TOKEN and CHAT_MODEL from the environment or a `.env` file in the
/// working directory, like the Locust script it replaces; flags override both.
#[derive(Parser, Debug)]
#[command(name = "gsai-load", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; without one, runs a load test.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Load-test options (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
    /// Distributed mode (--master / --worker).
    #[command(flatten, next_help_heading = "Distributed mode")]
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
    Sweep(Box<crate::sweep::SweepArgs>),
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
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Run without the web UI and start at once (default: serve the web UI and wait for a start).
    #[arg(long)]
    pub headless: bool,
    /// Web UI flags (issue 4).
    #[command(flatten)]
    pub web: crate::web::WebArgs,
    /// Base URL of the service under test.
    #[arg(short = 'H', long, env = "GSAI_HOST")]
    pub host: Option<String>,
    /// Bearer token (a sign-in JWT or an sk- API key).
    #[arg(long, env = "GSA_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Model id sent in each request.
    #[arg(long, env = "CHAT_MODEL")]
    pub model: Option<String>,
    /// Which API the service speaks.
    #[arg(long, value_enum, default_value = "openwebui")]
    pub api: Option<ApiKind>,
    /// Open WebUI chat_id: `local:<uuid4>` (temporary chat), a bare `uuid4` (the seed's form; current Open WebUI answers 404), or none.
    #[arg(long, value_enum, default_value = "local")]
    pub chat_id: Option<ChatIdMode>,
    /// Number of simulated users.
    #[arg(short = 'u', long, default_value_t = 1)]
    pub users: u64,
    /// Users started per second.
    #[arg(short = 'r', long, default_value_t = 1.0)]
    pub spawn_rate: f64,
    /// Stop after this long, e.g. 30s, 5m, 1h30m (default: until Ctrl-C).
    #[arg(short = 't', long, value_parser = parse_duration)]
    pub run_time: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Wait between a user's requests: between(A,B), constant(S), constant_pacing(S), constant_throughput(N), none.
    #[arg(long, default_value = "between(1,5)")]
    pub wait: Option<WaitTime>,
    /// The user message sent in each request.
    #[arg(long, default_value = "Hello there!")]
    pub prompt: Option<String>,
    /// max_tokens sent in the body.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Extra JSON object merged into the request body, e.g. '{"temperature":0}'.
    #[arg(long)]
    pub body: Option<String>,
    /// After stop, how long in-flight requests may finish before they are counted as cancelled.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Option<Duration>,
    /// Time limit to open a connection.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Time limit from sending a request to its response headers.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub first_byte_timeout: Option<Duration>,
    /// Longest silence allowed between two pieces of a response body.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Time limit of a whole request.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub total_timeout: Option<Duration>,
    /// Accept-Encoding sent with each request, e.g. identity or "gzip, br, zstd" (gzip, deflate, br and zstd are decoded).
    #[arg(long, value_name = "VALUE", default_value = crate::client::DEFAULT_ACCEPT_ENCODING)]
    pub accept_encoding: Option<String>,
    /// Skip SSE events that are not valid JSON instead of failing the request.
    #[arg(long)]
    pub lenient: bool,
    /// Also trust the CA certificates in this PEM file (e.g. a company CA); the system's store and the public roots are trusted already.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any https certificate (self-signed test servers only).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds between live console tables (0 turns them off).
    #[arg(long, default_value_t = 2.0)]
    pub print_every: f64,
    /// Write the full result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Open loop: start this many requests per second, whatever the responses (instead of users).
    #[arg(long, help_heading = "Load model")]
    pub rate: Option<f64>,
    /// Open-loop arrival process.
    #[arg(
        long,
        value_enum,
        default_value = "poisson",
        help_heading = "Load model"
    )]
    pub arrival: Option<Arrival>,
    /// Open loop: most requests in flight; arrivals beyond it are dropped and counted.
    #[arg(long, help_heading = "Load model")]
    pub max_concurrency: Option<u64>,
    /// Ramp users (or, with --rate, requests/s) linearly through stages: TARGET@DURATION,... e.g. 10@30s,50@2m,0@10s.
    #[arg(long, help_heading = "Load model")]
    pub stages: Option<Stages>,
    /// Requests that start during this first period run but are excluded from statistics.
    #[arg(long, value_parser = parse_duration, help_heading = "Load model")]
    pub warmup: Option<Duration>,
    /// Abort once this many requests failed.
    #[arg(long, help_heading = "Load model")]
    pub max_failures: Option<u64>,
    /// Abort once the failure ratio passes this (e.g. 5% or 0.05), after 20 finished requests.
    #[arg(long, value_parser = parse_ratio, help_heading = "Load model")]
    pub max_fail_rate: Option<f64>,
    /// Prompts file: .txt (one per line), .jsonl ({"prompt": …} or {"messages": […]}, optional max_tokens), ShareGPT .json.
    #[arg(long, help_heading = "Workload")]
    pub prompts: Option<PathBuf>,
    /// ShareGPT: send the whole conversation up to the last human turn as history.
    #[arg(long, help_heading = "Workload")]
    pub sharegpt_history: bool,
    /// How prompts are picked from the file.
    #[arg(long, value_enum, default_value = "random", help_heading = "Workload")]
    pub prompt_order: Option<PromptOrder>,
    /// Synthetic prompts of MEAN±STDDEV tokens, e.g. 512,64.
    #[arg(long, value_parser = parse_pair, help_heading = "Workload")]
    pub synthetic_input: Option<(u32, u32)>,
    /// Seed for reproducible random choices (prompts, request kinds, waits).
    #[arg(long, help_heading = "Workload")]
    pub seed: Option<u64>,
    /// TOML file declaring several request kinds with weights (see the README).
    #[arg(long, help_heading = "Workload")]
    pub scenario: Option<PathBuf>,
    /// --trace FILE.jsonl (Mooncake format) and --trace-speed: replay a recorded schedule.
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Run the same headless test N times and report each headline metric as mean ± 95% CI.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Load model")]
    pub repeat: Option<u32>,
    /// Reports and pass/fail criteria (issue 3).
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// --server-metrics: the server's own Prometheus metrics during the test (issue 11).
    #[command(flatten)]
    pub server_metrics: crate::observe::ServerMetricsArgs,
}

/// Trace replay flags.
#[derive(Args, Debug, Clone, Default)]
pub struct TraceArgs {
    /// Replay a trace (Mooncake JSONL: timestamp ms, input_length, output_length, hash_ids): each request at its recorded time, open loop.
    #[arg(long, value_name = "FILE", help_heading = "Load model")]
    pub trace: Option<PathBuf>,
    /// Replay speed: 2 sends the trace twice as fast, 0.5 half as fast.
    #[arg(
        long,
        value_name = "X",
        requires = "trace",
        help_heading = "Load model"
    )]
    pub trace_speed: Option<f64>,
}

impl TraceArgs {
    /// The plan's trace, checked against the other load flags of `args`.
    fn to_spec(
        &self,
        args: &RunArgs,
    ) -> Result<Option<crate::workload::trace::TraceSpec>, ConfigError> {
        let Some(path) = &self.trace else {
            return Ok(None);
        };
        let speed = self.trace_speed.unwrap_or(1.0);
        if !(speed.is_finite() && speed > 0.0 && speed <= 1e6) {
            return Err(ConfigError::Invalid {
                flag: "--trace-speed",
                reason:
                    "must be a number above 0 (and at most 1000000), e.g. 2 to replay twice as fast"
                        .into(),
            });
        }
        for (flag, given) in [
            ("--rate", args.rate.is_some()),
            ("--stages", args.stages.is_some()),
            ("--scenario", args.scenario.is_some()),
            ("--prompts", args.prompts.is_some()),
            ("--synthetic-input", args.synthetic_input.is_some()),
        ] {
            if given {
                return Err(ConfigError::Invalid {
                    flag: "--trace",
                    reason: format!("cannot be combined with {flag}: the trace gives the schedule and the prompts; choose one"),
                });
            }
        }
        Ok(Some(crate::workload::trace::TraceSpec {
            path: path.clone(),
            speed,
        }))
    }
}

/// Parses a ratio: `5%` or `0.05`.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a ratio; use e.g. 5% or 0.05"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("'{s}' must be between 0% and 100%"));
    }
    Ok(v)
}

/// Parses `A,B` as two whole numbers.
pub fn parse_pair(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("'{s}' must be MEAN,STDDEV, e.g. 512,64"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{x}' in '{s}' is not a whole number"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a == 0 {
        return Err(format!("'{s}': the mean must be at least 1 token"));
    }
    Ok((a, b))
}

pub use crate::config::parse_duration;

/// A configuration error: names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No host given.
    #[error("no target host: set GSAI_HOST in .env or the environment, or pass --host URL")]
    MissingHost,
    /// No model given.
    #[error("no model: set CHAT_MODEL in .env or the environment, or pass --model NAME")]
    MissingModel,
    /// The scenario file is unusable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A value past its maximum.
    #[error(transparent)]
    Limit(#[from] crate::config::limits::LimitError),
    /// A flag's value is out of range.
    #[error("{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
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

    /// Validates the flags into a plan.
    pub fn to_plan(&self) -> Result<Plan, ConfigError> {
        let host = self
            .host
            .clone()
            .filter(|h| !h.trim().is_empty())
            .ok_or(ConfigError::MissingHost)?;
        let model = self
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or(ConfigError::MissingModel)?;
        let invalid = |flag, reason: &str| ConfigError::Invalid {
            flag,
            reason: reason.to_string(),
        };
        if self.users == 0 && self.headless {
            return Err(invalid("--users", "must be at least 1"));
        }
        if !(self.spawn_rate.is_finite() && self.spawn_rate > 0.0) {
            return Err(invalid("--spawn-rate", "must be a number above 0"));
        }
        if self.max_requests == Some(0) {
            return Err(invalid("--max-requests", "must be at least 1"));
        }
        if !(self.print_every.is_finite() && self.print_every >= 0.0) {
            return Err(invalid("--print-every", "must be 0 or more seconds"));
        }
        let body = match &self.body {
            None => None,
            Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => {
                    return Err(invalid(
                        "--body",
                        "must be a JSON object, e.g. '{\"temperature\":0}'",
                    ))
                }
                Err(e) => return Err(invalid("--body", &format!("is not valid JSON ({e})"))),
            },
        };
        let defaults = Timeouts::default();
        let mut plan = Plan::new(host.trim(), model.trim());
        // Given in one invocation with --host / GSAI_HOST: the token is for that host only.
        plan.set_token(self.secret(), Some(host.trim()));
        plan.api = self.api.unwrap_or(ApiKind::Openwebui);
        plan.chat_id = self.chat_id.unwrap_or(ChatIdMode::Local);
        plan.prompt = self.prompt.clone().unwrap_or_else(|| "Hello there!".into());
        plan.max_tokens = self.max_tokens;
        plan.body = body;
        plan.users = self.users;
        plan.spawn_rate = self.spawn_rate;
        plan.wait = self.wait.unwrap_or(WaitTime::Between {
            min_s: 1.0,
            max_s: 5.0,
        });
        plan.run_time = self.run_time;
        plan.max_requests = self.max_requests;
        plan.stop_timeout = self.stop_timeout.unwrap_or(Duration::from_secs(10));
        plan.timeouts = Timeouts {
            connect: self.connect_timeout.unwrap_or(defaults.connect),
            first_byte: self.first_byte_timeout.unwrap_or(defaults.first_byte),
            idle: self.idle_timeout.unwrap_or(defaults.idle),
            total: self.total_timeout.unwrap_or(defaults.total),
        };
        for (flag, d) in [
            ("--connect-timeout", plan.timeouts.connect),
            ("--first-byte-timeout", plan.timeouts.first_byte),
            ("--idle-timeout", plan.timeouts.idle),
            ("--total-timeout", plan.timeouts.total),
        ] {
            if d.is_zero() {
                return Err(invalid(flag, "must be above 0"));
            }
        }
        plan.lenient = self.lenient;
        plan.tls = crate::client::TlsOptions {
            ca_cert: self.ca_cert.clone(),
            insecure: self.insecure,
        };
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate >= 0.0) || (rate == 0.0 && self.stages.is_none()) {
                return Err(invalid(
                    "--rate",
                    "must be a number of requests per second above 0",
                ));
            }
        }
        if self.max_concurrency == Some(0) {
            return Err(invalid("--max-concurrency", "must be at least 1"));
        }
        if self.max_concurrency.is_some() && self.rate.is_none() && self.trace.trace.is_none() {
            return Err(invalid(
                "--max-concurrency",
                "applies to the open loop only: add --rate R or --trace FILE (closed loop uses -u)",
            ));
        }
        if self.max_failures == Some(0) {
            return Err(invalid("--max-failures", "must be at least 1"));
        }
        if self.prompts.is_some() && self.synthetic_input.is_some() {
            return Err(invalid(
                "--synthetic-input",
                "cannot be combined with --prompts; choose one",
            ));
        }
        plan.rate = self.rate;
        plan.arrival = self.arrival.unwrap_or(Arrival::Poisson);
        plan.max_concurrency = self.max_concurrency;
        plan.stages = self.stages.clone();
        plan.warmup = self.warmup;
        plan.max_failures = self.max_failures;
        plan.max_fail_rate = self.max_fail_rate;
        plan.prompts = self.prompts.clone();
        plan.sharegpt_history = self.sharegpt_history;
        plan.prompt_order = self.prompt_order.unwrap_or_default();
        plan.synthetic_input = self.synthetic_input;
        plan.seed = self.seed;
        plan.scenario = self.scenario.as_deref().map(Scenario::load).transpose()?;
        plan.trace = self.trace.to_spec(self)?;
        plan.slo = self.outputs.slo.clone();
        if let Some(v) = &self.accept_encoding {
            if hyper::header::HeaderValue::from_str(v.trim()).is_err() {
                return Err(invalid(
                    "--accept-encoding",
                    "must be a header value, e.g. \"gzip, br\" or identity",
                ));
            }
            plan.accept_encoding = v.trim().to_string();
        }
        crate::client::Target::parse(&plan.host)
            .map_err(|e| invalid("--host/GSAI_HOST", &e.to_string()))?;
        crate::config::limits::check(&plan)?;
        Ok(plan)
    }
}
