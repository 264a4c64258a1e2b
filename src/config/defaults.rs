//! The one set of defaults of a plan. The command line shows them in `--help` (clap's
//! `default_value`s are these constants), and [`super::Plan::build`] fills every setting not
//! given with them, for the CLI, the web form, the master and the worker alike.
//!
//! A duration has two forms here: the value, and the text clap shows and parses; a unit test
//! keeps each pair equal.

use super::{ApiKind, Arrival, ChatIdMode, PromptOrder, WaitTime};
use std::time::Duration;

/// Simulated users.
pub const USERS: u64 = 1;
/// Users started per second.
pub const SPAWN_RATE: f64 = 1.0;
/// The seed's `wait_time = between(1, 5)`.
pub const WAIT: WaitTime = WaitTime::Between {
    min_s: 1.0,
    max_s: 5.0,
};
/// The seed's user message.
pub const PROMPT: &str = "Hello there!";
/// The seed's API.
pub const API: ApiKind = ApiKind::Openwebui;
/// `chat_id` as current Open WebUI accepts it (a temporary chat).
pub const CHAT_ID: ChatIdMode = ChatIdMode::Local;
/// How prompts are picked from a dataset.
pub const PROMPT_ORDER: PromptOrder = PromptOrder::Random;
/// Open-loop arrival process.
pub const ARRIVAL: Arrival = Arrival::Poisson;
/// `Accept-Encoding` sent with each request.
pub const ACCEPT_ENCODING: &str = "gzip, deflate";

/// After stop, how long in-flight requests may finish.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// [`STOP_TIMEOUT`] as `--help` shows it.
pub const STOP_TIMEOUT_TEXT: &str = "10s";
/// Time limit to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// [`CONNECT_TIMEOUT`] as `--help` shows it.
pub const CONNECT_TIMEOUT_TEXT: &str = "10s";
/// Time limit from sending a request to its response headers.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// [`FIRST_BYTE_TIMEOUT`] as `--help` shows it.
pub const FIRST_BYTE_TIMEOUT_TEXT: &str = "60s";
/// Longest silence between two pieces of a response body.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// [`IDLE_TIMEOUT`] as `--help` shows it.
pub const IDLE_TIMEOUT_TEXT: &str = "60s";
/// Time limit of a whole request.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// [`TOTAL_TIMEOUT`] as `--help` shows it.
pub const TOTAL_TIMEOUT_TEXT: &str = "10m";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_duration;

    #[test]
    fn each_text_says_its_value() {
        for (text, value) in [
            (STOP_TIMEOUT_TEXT, STOP_TIMEOUT),
            (CONNECT_TIMEOUT_TEXT, CONNECT_TIMEOUT),
            (FIRST_BYTE_TIMEOUT_TEXT, FIRST_BYTE_TIMEOUT),
            (IDLE_TIMEOUT_TEXT, IDLE_TIMEOUT),
            (TOTAL_TIMEOUT_TEXT, TOTAL_TIMEOUT),
        ] {
            assert_eq!(parse_duration(text), Ok(value), "{text}");
        }
        assert_eq!(WAIT.to_string().parse::<WaitTime>().unwrap(), WAIT);
    }
}
