//! The validated, serializable run plan: everything a test needs, built from flags, the
//! environment and `.env`, a config file or the web form through one builder
//! ([`Plan::build`] from a [`PlanInput`]), and the same plan that goes into reports (with the
//! token redacted) and to workers.
//!
//! `config` owns the plan's whole vocabulary (API kind, chat-id mode, prompt order, scenario
//! declarations, timeouts, TLS options, wait times, schedules) and its one set of defaults
//! ([`defaults`]); the workload and the client import it from here.

pub mod accounts;
pub mod api;
pub mod build;
pub mod defaults;
pub mod dotenv;
pub mod expr;
pub mod file;
pub mod limits;
pub mod net;
pub mod origin;
pub mod parse;
pub mod scenario;
pub mod schedule;
pub mod slo;
pub mod target;
pub mod trace;

pub use api::{ApiKind, ChatIdMode, PromptOrder};
pub use build::{Field, PlanError, PlanInput};
pub use net::{Timeouts, TlsOptions};
pub use origin::{Origin, TokenScope, TokenWithheld};
pub use parse::{parse_duration, parse_pair, parse_ratio, parse_size};
pub use scenario::{Scenario, ScenarioError};
pub use schedule::{Arrival, Stages};
pub use target::{BaseUrl, TargetError};

use rand::Rng;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A secret (the Bearer token). Its `Debug`, `Display` and serialized forms never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

/// How long a closed-loop user waits between tasks (Locust's `wait_time`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitTime {
    /// Uniformly random between `min_s` and `max_s` seconds.
    Between {
        /// Lower bound, seconds.
        min_s: f64,
        /// Upper bound, seconds.
        max_s: f64,
    },
    /// Always `s` seconds.
    Constant {
        /// Seconds.
        s: f64,
    },
    /// Start a task every `s` seconds (waits `s` minus the task's duration).
    ConstantPacing {
        /// Seconds between task starts.
        s: f64,
    },
    /// At most `n` tasks per second per user.
    ConstantThroughput {
        /// Tasks per second.
        n: f64,
    },
    /// No wait at all.
    None,
}

/// Why a `--wait` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid wait time '{input}': {reason}; expected between(A,B), constant(S), constant_pacing(S), constant_throughput(N) or none")]
pub struct WaitTimeError {
    input: String,
    reason: String,
}

impl FromStr for WaitTime {
    type Err = WaitTimeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| WaitTimeError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        if s == "none" || s == "0" {
            return Ok(WaitTime::None);
        }
        let (name, args) = s
            .strip_suffix(')')
            .and_then(|s| s.split_once('('))
            .ok_or_else(|| err("not of the form name(args)"))?;
        let nums: Vec<f64> = args
            .split(',')
            .map(|a| {
                a.parse::<f64>()
                    .map_err(|_| err(&format!("'{a}' is not a number")))
            })
            .collect::<Result<_, _>>()?;
        if nums.iter().any(|n| !n.is_finite() || *n < 0.0) {
            return Err(err("numbers must be finite and not negative"));
        }
        match (name, nums.as_slice()) {
            ("between", [a, b]) if a <= b => Ok(WaitTime::Between {
                min_s: *a,
                max_s: *b,
            }),
            ("between", [_, _]) => Err(err("the first bound must not exceed the second")),
            ("constant", [s]) => Ok(WaitTime::Constant { s: *s }),
            ("constant_pacing", [s]) => Ok(WaitTime::ConstantPacing { s: *s }),
            ("constant_throughput", [n]) if *n > 0.0 => Ok(WaitTime::ConstantThroughput { n: *n }),
            ("constant_throughput", [_]) => Err(err("the rate must be above 0")),
            ("between" | "constant" | "constant_pacing" | "constant_throughput", _) => {
                Err(err("wrong number of arguments"))
            }
            _ => Err(err(&format!("unknown wait function '{name}'"))),
        }
    }
}

impl fmt::Display for WaitTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitTime::Between { min_s, max_s } => write!(f, "between({min_s},{max_s})"),
            WaitTime::Constant { s } => write!(f, "constant({s})"),
            WaitTime::ConstantPacing { s } => write!(f, "constant_pacing({s})"),
            WaitTime::ConstantThroughput { n } => write!(f, "constant_throughput({n})"),
            WaitTime::None => f.write_str("none"),
        }
    }
}

impl WaitTime {
    /// The wait after a task that took `task`.
    pub fn next(&self, rng: &mut impl Rng, task: Duration) -> Duration {
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
        match *self {
            WaitTime::Between { min_s, max_s } if max_s > min_s => {
                secs(rng.random_range(min_s..=max_s))
            }
            WaitTime::Between { min_s, .. } => secs(min_s),
            WaitTime::Constant { s } => secs(s),
            WaitTime::ConstantPacing { s } => secs(s).saturating_sub(task),
            WaitTime::ConstantThroughput { n } => secs(1.0 / n).saturating_sub(task),
            WaitTime::None => Duration::ZERO,
        }
    }
}

/// Everything a test run needs, validated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Base URL of the target.
    pub host: String,
    /// Bearer token (never shown). Sent only as [`Plan::token_for_host`] allows.
    pub token: Option<Secret>,
    /// Where the token may be sent ([`Plan::set_token`]). Not serialized: a plan read back (a
    /// result file, a master's plan at a worker) carries no token to send.
    #[serde(skip, default = "unbound")]
    pub token_scope: TokenScope,
    /// Model id sent in the body.
    pub model: String,
    /// API flavour.
    pub api: ApiKind,
    /// Open WebUI `chat_id` mode.
    pub chat_id: ChatIdMode,
    /// The user message.
    pub prompt: String,
    /// `max_tokens` in the body, if any.
    pub max_tokens: Option<u32>,
    /// Extra body fields.
    pub body: Option<serde_json::Map<String, serde_json::Value>>,
    /// Number of simulated users.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Wait between tasks.
    pub wait: WaitTime,
    /// Stop after this long (None: until stopped).
    #[serde(with = "opt_duration")]
    pub run_time: Option<Duration>,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// How long in-flight requests may finish after stop before they are cancelled.
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub stop_timeout: Duration,
    /// Per-phase request time limits.
    pub timeouts: Timeouts,
    /// Skip non-JSON events instead of failing.
    pub lenient: bool,
    /// How https certificates are checked.
    #[serde(default)]
    pub tls: TlsOptions,
    /// Open loop: requests per second (None: closed loop with `users`).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open-loop arrival process.
    #[serde(default = "default_arrival")]
    pub arrival: Arrival,
    /// Open loop: most requests in flight; arrivals beyond are dropped (counted).
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    /// Ramp users (closed loop) or the rate (open loop) through these stages.
    #[serde(default)]
    pub stages: Option<Stages>,
    /// Requests that start during this first period are executed but excluded from statistics.
    #[serde(default, with = "opt_duration")]
    pub warmup: Option<Duration>,
    /// Abort once this many requests failed.
    #[serde(default)]
    pub max_failures: Option<u64>,
    /// Abort once the failure ratio exceeds this (0..1), after at least 20 finished requests.
    #[serde(default)]
    pub max_fail_rate: Option<f64>,
    /// Prompts dataset file.
    #[serde(default)]
    pub prompts: Option<PathBuf>,
    /// ShareGPT: send the whole conversation as history.
    #[serde(default)]
    pub sharegpt_history: bool,
    /// Synthetic prompts: (mean, stddev) tokens.
    #[serde(default)]
    pub synthetic_input: Option<(u32, u32)>,
    /// How prompts are picked.
    #[serde(default)]
    pub prompt_order: PromptOrder,
    /// Seed for reproducible random choices (prompts, kinds, waits).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Several request kinds with weights (`--scenario`).
    #[serde(default)]
    pub scenario: Option<Scenario>,
    /// Per-request SLOs (`--slo`): a success that meets all of them is "good" (goodput).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<slo::SloRule>,
    /// `Accept-Encoding` sent with each request (`--accept-encoding`); empty sends none.
    #[serde(default = "default_accept_encoding")]
    pub accept_encoding: String,
    /// `--trace FILE --trace-speed X`: replay a recorded schedule (open loop) instead of
    /// `--rate` or users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<trace::TraceSpec>,
    /// `--image` / `--synthetic-image`: an image attached to each chat request's last user
    /// message, for vision models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageSource>,
    /// `--accounts FILE.csv`: each closed-loop user signs in as one of these Open WebUI accounts
    /// and sends its own token instead of [`Plan::token`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<std::path::PathBuf>,
}

/// Where the images attached to chat messages come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An image file, or a folder of them (taken in turn).
    Files(PathBuf),
    /// A drawn PNG of noise of this size, pixels.
    Synthetic {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

impl ImageSource {
    /// Largest synthetic side, pixels.
    pub const MAX_SIDE_PX: u32 = 8192;
}

fn default_accept_encoding() -> String {
    defaults::ACCEPT_ENCODING.to_string()
}

fn unbound() -> TokenScope {
    TokenScope::Unbound
}

fn default_arrival() -> Arrival {
    defaults::ARRIVAL
}

mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Plan {
    /// A plan with the defaults ([`defaults`]) for `host` and `model`, unchecked: for code
    /// that builds a plan itself (tests, the demo). Settings from people go through
    /// [`Plan::build`].
    pub fn new(host: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            token: None,
            token_scope: TokenScope::PlanHost,
            model: model.into(),
            api: defaults::API,
            chat_id: defaults::CHAT_ID,
            prompt: defaults::PROMPT.into(),
            max_tokens: None,
            body: None,
            users: defaults::USERS,
            spawn_rate: defaults::SPAWN_RATE,
            wait: defaults::WAIT,
            run_time: None,
            max_requests: None,
            stop_timeout: defaults::STOP_TIMEOUT,
            timeouts: Timeouts::default(),
            lenient: false,
            tls: TlsOptions::default(),
            rate: None,
            arrival: defaults::ARRIVAL,
            max_concurrency: None,
            stages: None,
            warmup: None,
            max_failures: None,
            max_fail_rate: None,
            prompts: None,
            sharegpt_history: false,
            synthetic_input: None,
            prompt_order: defaults::PROMPT_ORDER,
            seed: None,
            scenario: None,
            slo: Vec::new(),
            accept_encoding: default_accept_encoding(),
            trace: None,
            images: None,
            accounts: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_wait_times() {
        assert_eq!(
            "between(1, 5)".parse::<WaitTime>().unwrap(),
            WaitTime::Between {
                min_s: 1.0,
                max_s: 5.0
            }
        );
        assert_eq!(
            "constant(0.5)".parse::<WaitTime>().unwrap(),
            WaitTime::Constant { s: 0.5 }
        );
        assert_eq!(
            "constant_pacing(2)".parse::<WaitTime>().unwrap(),
            WaitTime::ConstantPacing { s: 2.0 }
        );
        assert_eq!(
            "constant_throughput(4)".parse::<WaitTime>().unwrap(),
            WaitTime::ConstantThroughput { n: 4.0 }
        );
        assert_eq!("none".parse::<WaitTime>().unwrap(), WaitTime::None);
        for bad in [
            "between(5,1)",
            "between(1)",
            "sometimes(1)",
            "constant(x)",
            "constant(-1)",
            "constant_throughput(0)",
            "1-5",
        ] {
            let e = bad.parse::<WaitTime>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn wait_durations() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let task = Duration::from_millis(300);
        for _ in 0..100 {
            let w = WaitTime::Between {
                min_s: 1.0,
                max_s: 5.0,
            }
            .next(&mut rng, task);
            assert!(w >= Duration::from_secs(1) && w <= Duration::from_secs(5));
        }
        assert_eq!(
            WaitTime::ConstantPacing { s: 1.0 }.next(&mut rng, task),
            Duration::from_millis(700)
        );
        assert_eq!(
            WaitTime::ConstantThroughput { n: 2.0 }.next(&mut rng, task),
            Duration::from_millis(200)
        );
        assert_eq!(
            WaitTime::ConstantPacing { s: 0.1 }.next(&mut rng, task),
            Duration::ZERO
        );
    }

    #[test]
    fn secret_never_shows() {
        let mut p = Plan::new("http://x", "m");
        p.token = Some(Secret::new("sk-very-secret"));
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("sk-very-secret"));
        assert!(!format!("{p:?}").contains("sk-very-secret"));
    }
}
