//! The metric catalogue: every per-request metric, defined once.
//!
//! A [`MetricId`] names a metric; its [`MetricDef`] says everything a writer needs: the key in the
//! raw JSON and on the master/worker wire, the name in `--threshold`/`--slo`, the key of its summary
//! in the JSON result, its labels, unit, description and which requests it covers. The recorder
//! ([`super::NameStats::record`]), the console, JSON, CSV and HTML reports, the web API,
//! thresholds, SLOs, `compare` and the wire all iterate [`MetricId::ALL`].
//!
//! Adding a metric is one change here: a variant, its entry in [`MetricId::ALL`] and `DEFS`, and
//! its per-request value in [`MetricId::sample`]. Everything else follows.

use super::{Outcome, RequestRecord};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// One per-request metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricId {
    /// Time to first byte (response headers).
    Ttfb,
    /// Time to first token.
    Ttft,
    /// Time per output token after the first.
    Tpot,
    /// Inter-token latency: every gap between token-bearing events, pooled.
    Itl,
    /// End-to-end latency of successful requests.
    E2e,
    /// Output tokens per request.
    OutputTokens,
    /// Per-request output speed (output tokens / E2E), in milli-tokens per second.
    OutputTps,
    /// Locust's response time: E2E of every finished request, failures included.
    ResponseTime,
    /// New-connection setup time.
    Connect,
    /// Time to first SSE event.
    Ttfe,
    /// Open loop: actual − intended start.
    ScheduleLag,
    /// Open loop: TTFT measured from the intended start.
    TtftIntended,
    /// Open loop: E2E measured from the intended start.
    E2eIntended,
    /// Time to the first answer token, after any reasoning.
    TtftAnswer,
    /// Reasoning tokens per request.
    ReasoningTokens,
    /// Answer tokens per request (output − reasoning).
    AnswerTokens,
    /// Request body bytes sent.
    RequestBytes,
}

/// What a metric's samples count, and how reports show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds, shown as milliseconds.
    Micros,
    /// Tokens.
    Tokens,
    /// Thousandths of a token per second (HDR keeps integers), shown as tokens/s.
    MilliTokensPerS,
    /// Bytes.
    Bytes,
}

impl Unit {
    /// Divide a recorded value by this to get the displayed value.
    pub fn display_scale(self) -> f64 {
        match self {
            Unit::Micros | Unit::MilliTokensPerS => 1000.0,
            Unit::Tokens | Unit::Bytes => 1.0,
        }
    }

    /// The displayed unit: `ms`, `tokens`, `tok/s`.
    pub fn display(self) -> &'static str {
        match self {
            Unit::Micros => "ms",
            Unit::Tokens => "tokens",
            Unit::MilliTokensPerS => "tok/s",
            Unit::Bytes => "bytes",
        }
    }

    /// The recorded unit: `µs`, `tokens`, `milli-tokens/s`.
    pub fn recorded(self) -> &'static str {
        match self {
            Unit::Micros => "µs",
            Unit::Tokens => "tokens",
            Unit::MilliTokensPerS => "milli-tokens/s",
            Unit::Bytes => "bytes",
        }
    }
}

/// Which requests a metric has a sample for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Covers {
    /// Every finished request (successes and failures; not those cancelled at stop).
    Finished,
    /// Successful requests.
    Successes,
    /// Successful requests with at least 2 output tokens.
    MultiTokenSuccesses,
    /// Every started request that opened a new connection (cancelled ones too).
    NewConnections,
    /// Open loop only: every started request (cancelled ones too).
    OpenLoopStarted,
    /// Open loop only: successful requests.
    OpenLoopSuccesses,
}

impl Covers {
    /// Whether a request that ended with `outcome` is recorded (the metric may still have no
    /// value for it, see [`MetricId::sample`]).
    pub fn records(self, outcome: &Outcome) -> bool {
        match self {
            Covers::NewConnections | Covers::OpenLoopStarted => true,
            Covers::Finished => !matches!(outcome, Outcome::Cancelled),
            Covers::Successes | Covers::MultiTokenSuccesses | Covers::OpenLoopSuccesses => {
                matches!(outcome, Outcome::Success)
            }
        }
    }

    /// In words, for reports and documentation.
    pub fn describe(self) -> &'static str {
        match self {
            Covers::Finished => "every finished request",
            Covers::Successes => "successes",
            Covers::MultiTokenSuccesses => "successes with ≥ 2 tokens",
            Covers::NewConnections => "new connections",
            Covers::OpenLoopStarted => "open loop only: every started request",
            Covers::OpenLoopSuccesses => "open loop only: successes",
        }
    }

    /// Whether only an open-loop test (`--rate`) has samples.
    pub fn open_loop_only(self) -> bool {
        matches!(self, Covers::OpenLoopStarted | Covers::OpenLoopSuccesses)
    }
}

/// Which direction of change is an improvement (for `compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Lower is better (latencies).
    Lower,
    /// Higher is better (speed).
    Higher,
    /// Neither (it follows the workload, e.g. output tokens per request).
    Neither,
}

/// Everything known about one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricDef {
    /// The metric.
    pub id: MetricId,
    /// Key in the raw JSON (`raw.rows[].metrics`) and on the master/worker wire, e.g. `ttft_us`.
    pub key: &'static str,
    /// Name in `--threshold` and `--slo`, e.g. `ttft`.
    pub name: &'static str,
    /// Key of its summary (in display units) in the JSON result's `metrics`, e.g. `ttft_ms`.
    pub summary_key: &'static str,
    /// Short label for tables, e.g. `TTFT`.
    pub label: &'static str,
    /// Column base name in `PREFIX_llm_stats.csv` (`<base> Count`, `<base> 50%` ...).
    pub csv: &'static str,
    /// Recorded unit and display scale.
    pub unit: Unit,
    /// Which requests it covers.
    pub covers: Covers,
    /// One line saying what it is.
    pub description: &'static str,
    /// Which direction is better.
    pub better: Better,
    /// Drawn as a distribution chart (value at each percentile) in the HTML report.
    pub distribution: bool,
}

/// The definitions, indexed by [`MetricId::index`].
const DEFS: [MetricDef; MetricId::COUNT] = [
    MetricDef {
        id: MetricId::Ttfb,
        key: "ttfb_us",
        name: "ttfb",
        summary_key: "ttfb_ms",
        label: "TTFB",
        csv: "TTFB",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "time to first byte: status line and headers read",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::Ttft,
        key: "ttft_us",
        name: "ttft",
        summary_key: "ttft_ms",
        label: "TTFT",
        csv: "TTFT",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "time to first token (role-only and empty chunks do not count)",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::Tpot,
        key: "tpot_us",
        name: "tpot",
        summary_key: "tpot_ms",
        label: "TPOT",
        csv: "TPOT",
        unit: Unit::Micros,
        covers: Covers::MultiTokenSuccesses,
        description: "time per output token after the first: (last − first token) / (tokens − 1)",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::Itl,
        key: "itl_us",
        name: "itl",
        summary_key: "itl_ms",
        label: "ITL",
        csv: "ITL",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "inter-token latency: every gap between token-bearing events, pooled",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::E2e,
        key: "e2e_us",
        name: "e2e",
        summary_key: "e2e_ms",
        label: "E2E",
        csv: "E2E",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "end-to-end latency: start to [DONE] or end of body",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::OutputTokens,
        key: "output_tokens",
        name: "output_tokens",
        summary_key: "output_tokens",
        label: "Output tokens",
        csv: "Output Tokens",
        unit: Unit::Tokens,
        covers: Covers::Successes,
        description: "output tokens per request (usage, tokenizer or event count)",
        better: Better::Neither,
        distribution: false,
    },
    MetricDef {
        id: MetricId::OutputTps,
        key: "output_tps_milli",
        name: "output_tps",
        summary_key: "output_tokens_per_s",
        label: "Output tokens/s",
        csv: "Output Tokens/s",
        unit: Unit::MilliTokensPerS,
        covers: Covers::Successes,
        description: "per-request output speed: its output tokens / its E2E seconds",
        better: Better::Higher,
        distribution: false,
    },
    MetricDef {
        id: MetricId::ResponseTime,
        key: "response_time_us",
        name: "response_time",
        summary_key: "response_time_ms",
        label: "Response time",
        csv: "Response Time",
        unit: Unit::Micros,
        covers: Covers::Finished,
        description: "Locust's response time: E2E of every finished request, failures included",
        better: Better::Lower,
        distribution: false,
    },
    MetricDef {
        id: MetricId::Connect,
        key: "connect_us",
        name: "connect",
        summary_key: "connect_ms",
        label: "Connect",
        csv: "Connect",
        unit: Unit::Micros,
        covers: Covers::NewConnections,
        description: "new-connection setup time (TCP, TLS) before the request was written",
        better: Better::Lower,
        distribution: false,
    },
    MetricDef {
        id: MetricId::Ttfe,
        key: "ttfe_us",
        name: "ttfe",
        summary_key: "ttfe_ms",
        label: "TTFE",
        csv: "TTFE",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "time to first SSE data event",
        better: Better::Lower,
        distribution: false,
    },
    MetricDef {
        id: MetricId::ScheduleLag,
        key: "schedule_lag_us",
        name: "schedule_lag",
        summary_key: "schedule_lag_ms",
        label: "Schedule lag",
        csv: "Schedule Lag",
        unit: Unit::Micros,
        covers: Covers::OpenLoopStarted,
        description: "actual − intended start (the load generator falling behind its schedule)",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::TtftIntended,
        key: "ttft_intended_us",
        name: "ttft_intended",
        summary_key: "ttft_from_intended_ms",
        label: "TTFT from intended",
        csv: "TTFT From Intended",
        unit: Unit::Micros,
        covers: Covers::OpenLoopSuccesses,
        description: "TTFT from the intended start (free of coordinated omission)",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::E2eIntended,
        key: "e2e_intended_us",
        name: "e2e_intended",
        summary_key: "e2e_from_intended_ms",
        label: "E2E from intended",
        csv: "E2E From Intended",
        unit: Unit::Micros,
        covers: Covers::OpenLoopSuccesses,
        description: "E2E from the intended start (free of coordinated omission)",
        better: Better::Lower,
        distribution: true,
    },
    MetricDef {
        id: MetricId::TtftAnswer,
        key: "ttft_answer_us",
        name: "ttft_answer",
        summary_key: "ttft_answer_ms",
        label: "TTFT (answer)",
        csv: "TTFT Answer",
        unit: Unit::Micros,
        covers: Covers::Successes,
        description: "time to first answer token: the first content after any reasoning",
        better: Better::Lower,
        distribution: false,
    },
    MetricDef {
        id: MetricId::ReasoningTokens,
        key: "reasoning_tokens",
        name: "reasoning_tokens",
        summary_key: "reasoning_tokens",
        label: "Reasoning tokens",
        csv: "Reasoning Tokens",
        unit: Unit::Tokens,
        covers: Covers::Successes,
        description: "reasoning tokens per request (usage reasoning_tokens, else the reasoning text's count); only requests that reasoned",
        better: Better::Neither,
        distribution: false,
    },
    MetricDef {
        id: MetricId::AnswerTokens,
        key: "answer_tokens",
        name: "answer_tokens",
        summary_key: "answer_tokens",
        label: "Answer tokens",
        csv: "Answer Tokens",
        unit: Unit::Tokens,
        covers: Covers::Successes,
        description: "answer tokens per request: output − reasoning tokens",
        better: Better::Neither,
        distribution: false,
    },
    MetricDef {
        id: MetricId::RequestBytes,
        key: "request_bytes",
        name: "request_bytes",
        summary_key: "request_bytes",
        label: "Request bytes",
        csv: "Request Bytes",
        unit: Unit::Bytes,
        covers: Covers::Finished,
        description: "request body bytes sent (the input's size on the wire)",
        better: Better::Neither,
        distribution: false,
    },
];

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl MetricId {
    /// Number of metrics.
    pub const COUNT: usize = 17;

    /// Every metric, in report order.
    pub const ALL: [MetricId; MetricId::COUNT] = [
        MetricId::Ttfb,
        MetricId::Ttft,
        MetricId::Tpot,
        MetricId::Itl,
        MetricId::E2e,
        MetricId::OutputTokens,
        MetricId::OutputTps,
        MetricId::ResponseTime,
        MetricId::Connect,
        MetricId::Ttfe,
        MetricId::ScheduleLag,
        MetricId::TtftIntended,
        MetricId::E2eIntended,
        MetricId::TtftAnswer,
        MetricId::ReasoningTokens,
        MetricId::AnswerTokens,
        MetricId::RequestBytes,
    ];

    /// The headline metrics: the per-request latencies a summary of a test leads with (their
    /// p50 and p99 are what `--repeat` estimates over runs).
    pub const HEADLINE: [MetricId; 4] =
        [MetricId::Ttft, MetricId::Tpot, MetricId::Itl, MetricId::E2e];

    /// Position in [`MetricId::ALL`] (and in a stats row's metrics).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its definition.
    pub fn def(self) -> &'static MetricDef {
        &DEFS[self.index()]
    }

    /// Raw JSON and wire key, e.g. `ttft_us`.
    pub fn key(self) -> &'static str {
        self.def().key
    }

    /// Threshold and SLO name, e.g. `ttft`.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The metric whose raw/wire key is exactly `key`.
    pub fn from_key(key: &str) -> Option<MetricId> {
        MetricId::ALL.into_iter().find(|m| m.key() == key)
    }

    /// The metric named `text` (its name or its key, any case): `ttft`, `TTFT`, `ttft_us`.
    pub fn parse(text: &str) -> Option<MetricId> {
        let text = text.to_ascii_lowercase();
        MetricId::ALL
            .into_iter()
            .find(|m| m.name() == text || m.key() == text)
    }

    /// Every name, comma-separated, for error messages.
    pub fn names() -> String {
        MetricId::ALL.map(MetricId::name).join(", ")
    }

    /// This request's one sample of the metric (in its recorded unit), if it has one.
    /// [`MetricId::Itl`] has several per request (every gap); the client lists them and the
    /// recorder pools them, so here it has none.
    pub fn sample(self, rec: &RequestRecord) -> Option<u64> {
        match self {
            MetricId::Ttfb => rec.ttfb().map(micros),
            MetricId::Ttft => rec.ttft().map(micros),
            MetricId::Tpot => rec.tpot().map(micros),
            MetricId::Itl => None,
            MetricId::E2e | MetricId::ResponseTime => Some(micros(rec.e2e())),
            MetricId::OutputTokens => rec.output_tokens.map(|(n, _)| n),
            MetricId::OutputTps => {
                let (tokens, _) = rec.output_tokens?;
                let e2e_s = rec.e2e().as_secs_f64();
                (e2e_s > 0.0).then(|| (tokens as f64 * 1000.0 / e2e_s).round() as u64)
            }
            MetricId::Connect => rec.connect.map(micros),
            MetricId::Ttfe => rec
                .first_event
                .map(|t| micros(t.saturating_duration_since(rec.start))),
            MetricId::ScheduleLag => rec.schedule_lag().map(micros),
            MetricId::TtftIntended => {
                let intended = rec.intended?;
                rec.first_token
                    .map(|t| micros(t.saturating_duration_since(intended)))
            }
            MetricId::E2eIntended => rec
                .intended
                .map(|i| micros(rec.end.saturating_duration_since(i))),
            MetricId::TtftAnswer => rec.ttft_answer().map(micros),
            MetricId::ReasoningTokens => rec.reasoning_tokens,
            MetricId::AnswerTokens => rec.answer_tokens(),
            MetricId::RequestBytes => (rec.request_bytes > 0).then_some(rec.request_bytes),
        }
    }
}

impl fmt::Display for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serialized as its name (`ttft`), the form `--slo` and `--threshold` use.
impl Serialize for MetricId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for MetricId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MetricId::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown metric '{text}' (metrics: {})",
                MetricId::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests;
