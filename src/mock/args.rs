//! Command-line flags of `gsai-load mock`, turned into a [`MockConfig`].

use std::net::SocketAddr;
use std::time::Duration;

use super::request::MAX_TOKENS;
use super::{Compress, FaultRates, MockConfig};

/// Run the built-in mock LLM server (Open WebUI and OpenAI streaming chat completions).
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Require the header "Authorization: Bearer TOKEN" on chat and model requests (401 otherwise).
    #[arg(long, env = "MOCK_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Time to first token, after the role chunk (e.g. 150ms, 1s, 0s).
    #[arg(long, default_value = "150ms", value_parser = parse_duration, value_name = "DURATION")]
    pub ttft: Duration,

    /// Gap between content tokens (e.g. 15ms, 0s).
    #[arg(long, default_value = "15ms", value_parser = parse_duration, value_name = "DURATION")]
    pub itl: Duration,

    /// Content tokens per completion (a request's max_tokens caps it).
    #[arg(long, default_value_t = 30, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TOKENS)))]
    pub tokens: u32,

    /// Accepted model id; repeat for several. Without it any model is accepted.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,

    /// Reasoning tokens streamed before the answer of each completion (`reasoning_content`,
    /// `response.reasoning_text.delta`, `thinking_delta`), with usage reasoning_tokens.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub reasoning_tokens: u32,
    /// Do not send a usage chunk on the Open WebUI path.
    #[arg(long)]
    pub no_usage: bool,

    /// Accept any chat_id on the Open WebUI path (by default a bare uuid gets 404, as on Open WebUI 0.12).
    #[arg(long)]
    pub lenient_chat_id: bool,

    /// Probability (0 to 1) of answering 500 Internal Server Error.
    #[arg(long = "fail-500", default_value_t = 0.0, value_parser = probability, value_name = "P")]
    pub fail_500: f64,

    /// Probability (0 to 1) of answering 429 Too Many Requests (with retry-after: 1).
    #[arg(long = "fail-429", default_value_t = 0.0, value_parser = probability, value_name = "P")]
    pub fail_429: f64,

    /// Probability (0 to 1) of cutting the connection after half the tokens, without the final DONE event.
    #[arg(long, default_value_t = 0.0, value_parser = probability, value_name = "P")]
    pub fail_drop: f64,

    /// Probability (0 to 1) of sending one invalid-JSON event after half the tokens.
    #[arg(long, default_value_t = 0.0, value_parser = probability, value_name = "P")]
    pub fail_malformed: f64,

    /// Probability (0 to 1) of Open WebUI's "Chat completion stream failed" error event after half the tokens.
    #[arg(long, default_value_t = 0.0, value_parser = probability, value_name = "P")]
    pub fail_stream_error: f64,

    /// At most N generations at once; further requests queue before their TTFT clock starts.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub max_concurrent: Option<u64>,

    /// Seed for fault draws, for reproducible fault counts.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Compress streamed chat answers when the client's Accept-Encoding allows (each event flushed on its own).
    #[arg(long, value_enum, default_value = "off", value_name = "CODING")]
    pub compress: Compress,

    /// Open WebUI accounts (CSV, one email,password a line) accepted by POST /api/v1/auths/signin; chat requests then accept their tokens.
    #[arg(long, value_name = "FILE.csv")]
    pub accounts: Option<std::path::PathBuf>,
}

impl MockArgs {
    /// The server configuration these flags describe (values were validated while parsing).
    pub fn to_config(&self) -> MockConfig {
        MockConfig {
            ttft: self.ttft,
            itl: self.itl,
            tokens: self.tokens,
            reasoning_tokens: self.reasoning_tokens.min(super::request::MAX_TOKENS),
            token: self.token.clone(),
            models: self.models.clone(),
            usage: !self.no_usage,
            strict_chat_id: !self.lenient_chat_id,
            faults: FaultRates {
                http_500: self.fail_500,
                http_429: self.fail_429,
                drop: self.fail_drop,
                malformed: self.fail_malformed,
                stream_error: self.fail_stream_error,
            },
            max_concurrent: self
                .max_concurrent
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            seed: self.seed,
            compress: self.compress,
            accounts: Vec::new(),
        }
    }
}

/// clap reports a value-parser error together with the flag's name, e.g.
/// `invalid value '2' for '--fail-500 <P>': must be a probability between 0 and 1`.
fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number; give a probability between 0 and 1"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("must be a probability between 0 and 1, got {s}"))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}; write a duration such as 150ms, 2s or 0s"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        mock: MockArgs,
    }

    fn parse(args: &[&str]) -> Result<MockArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("mock").chain(args.iter().copied())).map(|c| c.mock)
    }

    #[test]
    fn defaults_match_mock_config_default() {
        let args = parse(&[]).expect("no flags parse");
        let config = args.to_config();
        let default = MockConfig::default();
        assert_eq!(args.bind, "127.0.0.1:8000".parse().expect("valid addr"));
        assert_eq!(
            (config.ttft, config.itl, config.tokens),
            (default.ttft, default.itl, default.tokens)
        );
        assert_eq!((config.usage, config.strict_chat_id), (true, true));
        assert_eq!(config.faults, FaultRates::default());
        assert_eq!((config.max_concurrent, config.seed), (None, None));
    }

    #[test]
    fn flags_map_onto_config() {
        let args = parse(&[
            "--ttft",
            "0s",
            "--itl",
            "2ms",
            "--tokens",
            "5",
            "--reasoning-tokens",
            "4",
            "--model",
            "a",
            "--model",
            "b",
            "--no-usage",
            "--lenient-chat-id",
            "--fail-500",
            "0.1",
            "--fail-429",
            "0.2",
            "--fail-drop",
            "0.3",
            "--fail-malformed",
            "0.05",
            "--fail-stream-error",
            "1",
            "--max-concurrent",
            "4",
            "--seed",
            "7",
            "--token",
            "secret",
        ])
        .expect("valid flags parse");
        let c = args.to_config();
        assert_eq!(c.ttft, Duration::ZERO);
        assert_eq!(c.itl, Duration::from_millis(2));
        assert_eq!((c.tokens, c.reasoning_tokens), (5, 4));
        assert_eq!(c.models, ["a", "b"]);
        assert!(!c.usage && !c.strict_chat_id);
        let f = FaultRates {
            http_500: 0.1,
            http_429: 0.2,
            drop: 0.3,
            malformed: 0.05,
            stream_error: 1.0,
        };
        assert_eq!(c.faults, f);
        assert_eq!(
            (c.max_concurrent, c.seed, c.token.as_deref()),
            (Some(4), Some(7), Some("secret"))
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (&["--fail-500", "2"][..], "--fail-500"),
            (&["--fail-stream-error=-0.1"][..], "--fail-stream-error"),
            (&["--fail-drop", "x"][..], "--fail-drop"),
            (&["--ttft", "soon"][..], "--ttft"),
            (&["--max-concurrent", "0"][..], "--max-concurrent"),
        ] {
            let err = parse(args)
                .expect_err("invalid value is rejected")
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
