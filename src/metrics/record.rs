//! The record one request leaves behind: its timestamps, token count and outcome.

use super::Failure;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Where a request's output-token count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// `usage.completion_tokens` sent by the server.
    Usage,
    /// tiktoken `cl100k_base` count of the received text.
    Tokenizer,
    /// The number of token-bearing SSE events.
    Events,
}

impl TokenSource {
    /// All sources, in report order.
    pub const ALL: [TokenSource; 3] = [
        TokenSource::Usage,
        TokenSource::Tokenizer,
        TokenSource::Events,
    ];

    /// Position in [`TokenSource::ALL`].
    pub fn index(self) -> usize {
        match self {
            TokenSource::Usage => 0,
            TokenSource::Tokenizer => 1,
            TokenSource::Events => 2,
        }
    }

    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Tokenizer => "tokenizer",
            TokenSource::Events => "events",
        }
    }
}

/// How a request ended. Every request started ends in exactly one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted as a success.
    Success,
    /// Counted as a failure: its kind and the message that names the cause (the grouping key
    /// of the failures table, so it must not contain per-request values such as ids).
    Failure(Failure),
    /// Cut off when the test stopped (after `--stop-timeout`); neither success nor failure.
    Cancelled,
}

/// What one request measured. All instants come from the same monotonic clock; `start` is taken
/// just before the request is written.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Index of the request kind (stats row) in the workload.
    pub kind: usize,
    /// Just before the request was written.
    pub start: Instant,
    /// Open loop: when the schedule wanted the request to start (None in closed loop).
    pub intended: Option<Instant>,
    /// Time spent opening a new connection before `start` (None when one was reused).
    pub connect: Option<Duration>,
    /// Status line and headers read.
    pub headers: Option<Instant>,
    /// First SSE `data:` event.
    pub first_event: Option<Instant>,
    /// First event whose delta carried text in any channel.
    pub first_token: Option<Instant>,
    /// First event that carried answer output (`content`, text or a tool call), as opposed to
    /// reasoning; equals `first_token` for a model that does not reason.
    pub first_answer_token: Option<Instant>,
    /// Last such event.
    pub last_token: Option<Instant>,
    /// `[DONE]`, end of body, or the moment the failure was detected.
    pub end: Instant,
    /// Number of token-bearing events.
    pub token_events: u32,
    /// Output tokens and the source of that count (None when unknown, e.g. failed early).
    pub output_tokens: Option<(u64, TokenSource)>,
    /// Of the output tokens, those spent reasoning: the server's
    /// `reasoning_tokens` when sent, else a count of the reasoning channel's text (None when
    /// the stream carried no reasoning).
    pub reasoning_tokens: Option<u64>,
    /// Response body bytes received.
    pub content_bytes: u64,
    /// Request body bytes sent (the input's size on the wire).
    pub request_bytes: u64,
    /// HTTP status, if headers were read.
    pub status: Option<u16>,
    /// Success, failure or cancelled.
    pub outcome: Outcome,
}

impl RequestRecord {
    /// A record for a request that ended at `end` with `outcome` before any response arrived.
    pub fn bare(kind: usize, start: Instant, end: Instant, outcome: Outcome) -> Self {
        Self {
            kind,
            start,
            intended: None,
            connect: None,
            headers: None,
            first_event: None,
            first_token: None,
            first_answer_token: None,
            last_token: None,
            end,
            token_events: 0,
            output_tokens: None,
            reasoning_tokens: None,
            content_bytes: 0,
            request_bytes: 0,
            status: None,
            outcome,
        }
    }

    /// Time to first byte (headers), from start.
    pub fn ttfb(&self) -> Option<Duration> {
        self.headers
            .map(|t| t.saturating_duration_since(self.start))
    }

    /// Time to first token, from start.
    pub fn ttft(&self) -> Option<Duration> {
        self.first_token
            .map(|t| t.saturating_duration_since(self.start))
    }

    /// Time to the first answer token (after any reasoning), from start.
    pub fn ttft_answer(&self) -> Option<Duration> {
        self.first_answer_token
            .map(|t| t.saturating_duration_since(self.start))
    }

    /// Output tokens that are the answer: output − reasoning tokens.
    pub fn answer_tokens(&self) -> Option<u64> {
        let (n, _) = self.output_tokens?;
        Some(n.saturating_sub(self.reasoning_tokens.unwrap_or(0)))
    }

    /// Actual start − intended start (open loop).
    pub fn schedule_lag(&self) -> Option<Duration> {
        self.intended
            .map(|i| self.start.saturating_duration_since(i))
    }

    /// End-to-end latency.
    pub fn e2e(&self) -> Duration {
        self.end.saturating_duration_since(self.start)
    }

    /// Time per output token after the first: (last − first token) / (tokens − 1); None below 2 tokens.
    pub fn tpot(&self) -> Option<Duration> {
        let (tokens, _) = self.output_tokens?;
        if tokens < 2 {
            return None;
        }
        let span = self
            .last_token?
            .saturating_duration_since(self.first_token?);
        let divisor = u32::try_from(tokens - 1).unwrap_or(u32::MAX);
        Some(span / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_times() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RequestRecord::bare(0, t0, t0 + ms(500), Outcome::Success);
        r.headers = Some(t0 + ms(10));
        r.first_token = Some(t0 + ms(100));
        r.last_token = Some(t0 + ms(400));
        r.output_tokens = Some((4, TokenSource::Usage));
        assert_eq!(r.ttfb(), Some(ms(10)));
        assert_eq!(r.ttft(), Some(ms(100)));
        assert_eq!(r.e2e(), ms(500));
        assert_eq!(r.tpot(), Some(ms(100)));
        r.output_tokens = Some((1, TokenSource::Events));
        assert_eq!(r.tpot(), None);
    }
}
