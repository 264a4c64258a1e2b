//! The one way a [`Plan`] is made from what people give: a [`PlanInput`] (every setting
//! optional: the command line, a config file, the web form, a master's plan at a worker) goes
//! through [`Plan::build`], which fills the defaults ([`super::defaults`]) and checks every rule
//! once. An error names the setting by its flag (and, for the web form, by its field) and says
//! what to do.
//!
//! A web UI's template may lack the host and the model: [`PlanInput::check_template`] checks
//! everything else at startup, and the form supplies them when a test starts.

use super::limits::{self, LimitError};
use super::scenario::{Scenario, ScenarioError};
use super::slo::SloRule;
use super::{
    defaults, ApiKind, Arrival, BaseUrl, ChatIdMode, ImageSource, Plan, PromptOrder, Secret,
    Stages, Timeouts, TlsOptions, TokenScope, WaitTime,
};
use std::path::PathBuf;
use std::time::Duration;

/// A plan setting that a rule can refuse, named as the command line names it and, where the
/// web form has it, as the form does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `--host` / `GSAI_HOST`.
    Host,
    /// `-u/--users`.
    Users,
    /// `-r/--spawn-rate`.
    SpawnRate,
    /// `-t/--run-time`.
    RunTime,
    /// `--max-requests`.
    MaxRequests,
    /// `--body`.
    Body,
    /// `--connect-timeout`.
    ConnectTimeout,
    /// `--first-byte-timeout`.
    FirstByteTimeout,
    /// `--idle-timeout`.
    IdleTimeout,
    /// `--total-timeout`.
    TotalTimeout,
    /// `--rate`.
    Rate,
    /// `--max-concurrency`.
    MaxConcurrency,
    /// `--max-failures`.
    MaxFailures,
    /// `--synthetic-input`.
    SyntheticInput,
    /// `--accept-encoding`.
    AcceptEncoding,
    /// `--print-every` (not part of the plan, but checked with it).
    PrintEvery,
    /// `--trace`.
    Trace,
    /// `--trace-speed`.
    TraceSpeed,
    /// `--image`.
    Image,
    /// `--synthetic-image`.
    SyntheticImage,
    /// `--accounts`.
    Accounts,
}

impl Field {
    /// The flag (with its variable, where the seed names one).
    pub fn flag(self) -> &'static str {
        match self {
            Field::Host => "--host/GSAI_HOST",
            Field::Users => "-u/--users",
            Field::SpawnRate => "-r/--spawn-rate",
            Field::RunTime => "-t/--run-time",
            Field::MaxRequests => "--max-requests",
            Field::Body => "--body",
            Field::ConnectTimeout => "--connect-timeout",
            Field::FirstByteTimeout => "--first-byte-timeout",
            Field::IdleTimeout => "--idle-timeout",
            Field::TotalTimeout => "--total-timeout",
            Field::Rate => "--rate",
            Field::MaxConcurrency => "--max-concurrency",
            Field::MaxFailures => "--max-failures",
            Field::SyntheticInput => "--synthetic-input",
            Field::AcceptEncoding => "--accept-encoding",
            Field::PrintEvery => "--print-every",
            Field::Trace => "--trace",
            Field::TraceSpeed => "--trace-speed",
            Field::Image => "--image",
            Field::SyntheticImage => "--synthetic-image",
            Field::Accounts => "--accounts",
        }
    }

    /// The web form's name of it, if the form has the field.
    pub fn form_field(self) -> Option<&'static str> {
        match self {
            Field::Host => Some("host (--host / GSAI_HOST)"),
            Field::Users => Some("user_count"),
            Field::SpawnRate => Some("spawn_rate"),
            Field::RunTime => Some("run_time"),
            _ => None,
        }
    }

    /// The form's name of a limit's flag ([`LimitError::flag`]), if the form has that field.
    pub fn form_name_of_flag(flag: &str) -> Option<&'static str> {
        [Field::Users, Field::SpawnRate, Field::RunTime, Field::Host]
            .into_iter()
            .find(|f| f.flag() == flag)
            .and_then(Field::form_field)
    }
}

/// Why a plan could not be built. No variant holds the token.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No host given where a test starts.
    #[error("no target host: set GSAI_HOST in .env or the environment, or pass --host URL (or host = URL in a config file)")]
    MissingHost,
    /// No model given where a test starts.
    #[error("no model: set CHAT_MODEL in .env or the environment, or pass --model NAME")]
    MissingModel,
    /// The scenario file is unusable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A value past its maximum.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A setting's value is refused.
    #[error("{}: {reason}", field.flag())]
    Invalid {
        /// The setting.
        field: Field,
        /// What is wrong and what to do.
        reason: String,
    },
}

fn invalid(field: Field, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Every setting of a plan, each optional: `None` takes the default of [`super::defaults`]
/// (or "not set", for settings without one). Built by the command line, the web UI (its
/// template plus the form), and a worker (from its master's plan or its own flags).
#[derive(Clone, Debug, Default)]
pub struct PlanInput {
    /// Base URL of the target; required when a test starts.
    pub host: Option<String>,
    /// Model id; required when a test starts.
    pub model: Option<String>,
    /// Bearer token.
    pub token: Option<Secret>,
    /// The base URL the token was given for: it is sent to that origin only (`None`: nowhere).
    pub token_host: Option<String>,
    /// API flavour.
    pub api: Option<ApiKind>,
    /// Open WebUI `chat_id` mode.
    pub chat_id: Option<ChatIdMode>,
    /// The user message.
    pub prompt: Option<String>,
    /// `max_tokens` in the body.
    pub max_tokens: Option<u32>,
    /// Extra body fields, as JSON object text.
    pub body: Option<String>,
    /// Simulated users.
    pub users: Option<u64>,
    /// Users started per second.
    pub spawn_rate: Option<f64>,
    /// Wait between a user's tasks.
    pub wait: Option<WaitTime>,
    /// Stop after this long.
    pub run_time: Option<Duration>,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// How long in-flight requests may finish after stop.
    pub stop_timeout: Option<Duration>,
    /// Time limit to open a connection.
    pub connect_timeout: Option<Duration>,
    /// Time limit to the response headers.
    pub first_byte_timeout: Option<Duration>,
    /// Longest silence in a body.
    pub idle_timeout: Option<Duration>,
    /// Time limit of a whole request.
    pub total_timeout: Option<Duration>,
    /// `Accept-Encoding` sent.
    pub accept_encoding: Option<String>,
    /// Skip non-JSON events instead of failing.
    pub lenient: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure: bool,
    /// Open loop: requests per second.
    pub rate: Option<f64>,
    /// Open-loop arrival process.
    pub arrival: Option<Arrival>,
    /// Open loop: most requests in flight.
    pub max_concurrency: Option<u64>,
    /// Ramp stages.
    pub stages: Option<Stages>,
    /// Warm-up excluded from statistics.
    pub warmup: Option<Duration>,
    /// Abort after this many failures.
    pub max_failures: Option<u64>,
    /// Abort past this failure ratio.
    pub max_fail_rate: Option<f64>,
    /// Prompts dataset file.
    pub prompts: Option<PathBuf>,
    /// ShareGPT: send the conversation as history.
    pub sharegpt_history: bool,
    /// How prompts are picked.
    pub prompt_order: Option<PromptOrder>,
    /// Synthetic prompts: (mean, stddev) tokens.
    pub synthetic_input: Option<(u32, u32)>,
    /// Seed for random choices.
    pub seed: Option<u64>,
    /// A scenario file to read (`--scenario`); [`PlanInput::scenario`] wins when both are set.
    pub scenario_file: Option<PathBuf>,
    /// A scenario already read (a master's plan).
    pub scenario: Option<Scenario>,
    /// Per-request SLOs.
    pub slo: Vec<SloRule>,
    /// `--trace`: a trace file to replay (open loop).
    pub trace: Option<PathBuf>,
    /// `--trace-speed`: its replay speed.
    pub trace_speed: Option<f64>,
    /// `--image`: an image file or a folder of them, attached to chat messages.
    pub image: Option<PathBuf>,
    /// `--synthetic-image`: width and height of a drawn image, attached to chat messages.
    pub synthetic_image: Option<(u32, u32)>,
    /// `--accounts`: Open WebUI accounts (CSV) the closed-loop users sign in with.
    pub accounts: Option<PathBuf>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The rules on users and spawn rate, also for changing a running test's users.
pub fn check_users(users: u64, spawn_rate: f64) -> Result<(), PlanError> {
    limits::users(Field::Users.flag(), users)?;
    if users == 0 {
        return Err(invalid(Field::Users, "must be at least 1"));
    }
    if !(spawn_rate.is_finite() && spawn_rate > 0.0) {
        return Err(invalid(Field::SpawnRate, "must be a number above 0"));
    }
    Ok(())
}

impl PlanInput {
    /// Checks every setting given, except that host and model may be missing: a web UI's
    /// template, which the start form completes. Returns the template's plan, for warnings at
    /// startup; its host and model are empty when not given, so it is never run.
    pub fn check_template(&self) -> Result<Plan, PlanError> {
        assemble(self, given(&self.host), given(&self.model))
    }
}

impl Plan {
    /// Builds and checks a plan: fills each setting not given with its default, and refuses a
    /// missing host or model, a value out of range, or settings that contradict each other.
    pub fn build(input: &PlanInput) -> Result<Plan, PlanError> {
        let host = given(&input.host).ok_or(PlanError::MissingHost)?;
        let model = given(&input.model).ok_or(PlanError::MissingModel)?;
        assemble(input, Some(host), Some(model))
    }
}

/// The plan of `input` for `host` and `model` (either may be missing in a template, which then
/// leaves it empty and unchecked: such a plan never runs).
fn assemble(input: &PlanInput, host: Option<&str>, model: Option<&str>) -> Result<Plan, PlanError> {
    if let Some(host) = host {
        BaseUrl::parse(host).map_err(|e| invalid(Field::Host, e.to_string()))?;
    }
    let users = input.users.unwrap_or(defaults::USERS);
    let spawn_rate = input.spawn_rate.unwrap_or(defaults::SPAWN_RATE);
    check_users(users, spawn_rate)?;
    if input.run_time == Some(Duration::ZERO) {
        return Err(invalid(
            Field::RunTime,
            "must be above 0 (leave it out to run until stopped)",
        ));
    }
    if input.max_requests == Some(0) {
        return Err(invalid(Field::MaxRequests, "must be at least 1"));
    }
    let body = match &input.body {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            Ok(_) => {
                return Err(invalid(
                    Field::Body,
                    "must be a JSON object, e.g. '{\"temperature\":0}'",
                ))
            }
            Err(e) => return Err(invalid(Field::Body, format!("is not valid JSON ({e})"))),
        },
    };
    let timeouts = Timeouts {
        connect: input.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
        first_byte: input
            .first_byte_timeout
            .unwrap_or(defaults::FIRST_BYTE_TIMEOUT),
        idle: input.idle_timeout.unwrap_or(defaults::IDLE_TIMEOUT),
        total: input.total_timeout.unwrap_or(defaults::TOTAL_TIMEOUT),
    };
    for (field, d) in [
        (Field::ConnectTimeout, timeouts.connect),
        (Field::FirstByteTimeout, timeouts.first_byte),
        (Field::IdleTimeout, timeouts.idle),
        (Field::TotalTimeout, timeouts.total),
    ] {
        if d.is_zero() {
            return Err(invalid(field, "must be above 0"));
        }
    }
    if let Some(rate) = input.rate {
        if !(rate.is_finite() && rate >= 0.0) || (rate == 0.0 && input.stages.is_none()) {
            return Err(invalid(
                Field::Rate,
                "must be a number of requests per second above 0",
            ));
        }
    }
    if input.max_concurrency == Some(0) {
        return Err(invalid(Field::MaxConcurrency, "must be at least 1"));
    }
    let trace = super::trace::spec(input)?;
    if input.max_concurrency.is_some() && input.rate.is_none() && trace.is_none() {
        return Err(invalid(
            Field::MaxConcurrency,
            "applies to the open loop only: add --rate R or --trace FILE (closed loop uses -u)",
        ));
    }
    if input.accounts.is_some() && (input.rate.is_some() || trace.is_some()) {
        return Err(invalid(
            Field::Accounts,
            "applies to the closed loop only (-u users, each signed in as one account); it cannot be combined with --rate or --trace",
        ));
    }
    if input.max_failures == Some(0) {
        return Err(invalid(Field::MaxFailures, "must be at least 1"));
    }
    let images = images(input, input.api.unwrap_or(defaults::API))?;
    if input.prompts.is_some() && input.synthetic_input.is_some() {
        return Err(invalid(
            Field::SyntheticInput,
            "cannot be combined with --prompts; choose one",
        ));
    }
    let accept_encoding = match &input.accept_encoding {
        None => defaults::ACCEPT_ENCODING.to_string(),
        Some(v) if hyper::header::HeaderValue::from_str(v.trim()).is_ok() => v.trim().to_string(),
        Some(_) => {
            return Err(invalid(
                Field::AcceptEncoding,
                "must be a header value, e.g. \"gzip, br\" or identity",
            ))
        }
    };
    let scenario = match (&input.scenario, &input.scenario_file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(path)) => Some(Scenario::load(path)?),
        (None, None) => None,
    };
    let mut plan = Plan {
        host: host.unwrap_or_default().to_string(),
        token: None,
        token_scope: TokenScope::Unbound,
        model: model.unwrap_or_default().to_string(),
        api: input.api.unwrap_or(defaults::API),
        chat_id: input.chat_id.unwrap_or(defaults::CHAT_ID),
        prompt: input
            .prompt
            .clone()
            .unwrap_or_else(|| defaults::PROMPT.into()),
        max_tokens: input.max_tokens,
        body,
        users,
        spawn_rate,
        wait: input.wait.unwrap_or(defaults::WAIT),
        run_time: input.run_time,
        max_requests: input.max_requests,
        stop_timeout: input.stop_timeout.unwrap_or(defaults::STOP_TIMEOUT),
        timeouts,
        lenient: input.lenient,
        tls: TlsOptions {
            ca_cert: input.ca_cert.clone(),
            insecure: input.insecure,
        },
        rate: input.rate,
        arrival: input.arrival.unwrap_or(defaults::ARRIVAL),
        max_concurrency: input.max_concurrency,
        stages: input.stages.clone(),
        warmup: input.warmup,
        max_failures: input.max_failures,
        max_fail_rate: input.max_fail_rate,
        prompts: input.prompts.clone(),
        sharegpt_history: input.sharegpt_history,
        synthetic_input: input.synthetic_input,
        prompt_order: input.prompt_order.unwrap_or(defaults::PROMPT_ORDER),
        seed: input.seed,
        scenario,
        slo: input.slo.clone(),
        accept_encoding,
        trace,
        images,
        accounts: input.accounts.clone(),
    };
    plan.set_token(
        input.token.clone(),
        input.token_host.as_deref().map(str::trim),
    );
    limits::check(&plan)?;
    Ok(plan)
}

impl From<&Plan> for PlanInput {
    /// Every setting of `plan`, given: building it again checks it (a plan from a master) or
    /// lets a form change a few settings of a template.
    fn from(plan: &Plan) -> Self {
        let token_host = match &plan.token_scope {
            TokenScope::PlanHost => Some(plan.host.clone()),
            TokenScope::Only(origin) => Some(origin.to_string()),
            TokenScope::Unbound => None,
        };
        PlanInput {
            host: Some(plan.host.clone()),
            model: Some(plan.model.clone()),
            token: plan.token.clone(),
            token_host,
            api: Some(plan.api),
            chat_id: Some(plan.chat_id),
            prompt: Some(plan.prompt.clone()),
            max_tokens: plan.max_tokens,
            body: plan
                .body
                .as_ref()
                .map(|b| serde_json::Value::Object(b.clone()).to_string()),
            users: Some(plan.users),
            spawn_rate: Some(plan.spawn_rate),
            wait: Some(plan.wait),
            run_time: plan.run_time,
            max_requests: plan.max_requests,
            stop_timeout: Some(plan.stop_timeout),
            connect_timeout: Some(plan.timeouts.connect),
            first_byte_timeout: Some(plan.timeouts.first_byte),
            idle_timeout: Some(plan.timeouts.idle),
            total_timeout: Some(plan.timeouts.total),
            accept_encoding: Some(plan.accept_encoding.clone()),
            lenient: plan.lenient,
            ca_cert: plan.tls.ca_cert.clone(),
            insecure: plan.tls.insecure,
            rate: plan.rate,
            arrival: Some(plan.arrival),
            max_concurrency: plan.max_concurrency,
            stages: plan.stages.clone(),
            warmup: plan.warmup,
            max_failures: plan.max_failures,
            max_fail_rate: plan.max_fail_rate,
            prompts: plan.prompts.clone(),
            sharegpt_history: plan.sharegpt_history,
            prompt_order: Some(plan.prompt_order),
            synthetic_input: plan.synthetic_input,
            seed: plan.seed,
            scenario_file: None,
            scenario: plan.scenario.clone(),
            slo: plan.slo.clone(),
            trace: plan.trace.as_ref().map(|t| t.path.clone()),
            trace_speed: plan.trace.as_ref().map(|t| t.speed),
            image: match &plan.images {
                Some(ImageSource::Files(p)) => Some(p.clone()),
                _ => None,
            },
            synthetic_image: match plan.images {
                Some(ImageSource::Synthetic { width, height }) => Some((width, height)),
                _ => None,
            },
            accounts: plan.accounts.clone(),
        }
    }
}

impl From<Plan> for PlanInput {
    fn from(plan: Plan) -> Self {
        PlanInput::from(&plan)
    }
}

/// `--image` / `--synthetic-image`: one of them, on a chat API that takes `image_url` parts.
fn images(input: &PlanInput, api: ApiKind) -> Result<Option<ImageSource>, PlanError> {
    let source = match (&input.image, input.synthetic_image) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(invalid(
                Field::SyntheticImage,
                "give --image or --synthetic-image, not both",
            ))
        }
        (Some(p), None) => ImageSource::Files(p.clone()),
        (None, Some((width, height))) => {
            let side = 1..=ImageSource::MAX_SIDE_PX;
            if !side.contains(&width) || !side.contains(&height) {
                return Err(invalid(
                    Field::SyntheticImage,
                    format!("each side must be 1 to {} pixels", ImageSource::MAX_SIDE_PX),
                ));
            }
            ImageSource::Synthetic { width, height }
        }
    };
    if !matches!(api, ApiKind::Openai | ApiKind::Openwebui) {
        let field = match source {
            ImageSource::Files(_) => Field::Image,
            ImageSource::Synthetic { .. } => Field::SyntheticImage,
        };
        return Err(invalid(
            field,
            "images go in chat messages as image_url parts: use --api openai or openwebui",
        ));
    }
    Ok(Some(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PlanInput {
        PlanInput {
            host: Some("http://h:1".into()),
            model: Some("m".into()),
            ..PlanInput::default()
        }
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let p = Plan::build(&input()).unwrap();
        let q = Plan::new("http://h:1", "m");
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::to_value(&q).unwrap()
        );
    }

    #[test]
    fn a_plan_round_trips_through_an_input() {
        let mut i = input();
        i.users = Some(7);
        i.body = Some(r#"{"temperature":0}"#.into());
        i.rate = Some(5.0);
        i.max_concurrency = Some(3);
        i.token = Some(Secret::new("sk-x"));
        i.token_host = Some("http://h:1".into());
        let p = Plan::build(&i).unwrap();
        let q = Plan::build(&PlanInput::from(&p)).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::to_value(&q).unwrap()
        );
        assert_eq!(q.token_for_host().map(Secret::expose), Some("sk-x"));
    }

    #[test]
    fn errors_name_the_flag_and_the_template_needs_no_host() {
        assert!(matches!(
            Plan::build(&PlanInput::default()),
            Err(PlanError::MissingHost)
        ));
        let mut i = PlanInput::default();
        i.check_template().unwrap();
        i.users = Some(0);
        let e = i.check_template().unwrap_err();
        assert_eq!(e.to_string(), "-u/--users: must be at least 1");
        i.users = None;
        i.max_concurrency = Some(2);
        assert!(i
            .check_template()
            .unwrap_err()
            .to_string()
            .starts_with("--max-concurrency: applies to the open loop only"));
        let mut i = input();
        i.host = Some("ftp://x".into());
        assert!(Plan::build(&i)
            .unwrap_err()
            .to_string()
            .starts_with("--host/GSAI_HOST: "));
        let mut i = input();
        i.run_time = Some(Duration::ZERO);
        assert!(matches!(
            Plan::build(&i),
            Err(PlanError::Invalid {
                field: Field::RunTime,
                ..
            })
        ));
    }
}
