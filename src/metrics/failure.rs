//! Why a request failed: the closed set of failure kinds, and a failure (kind plus the
//! Locust-compatible message that names the cause).
//!
//! Every writer (console, JSON, CSV, HTML, web UI, the master/worker wire) and every test that
//! asks "what kind of failure was this" iterates or matches this one enum; no one matches on
//! message text.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a failure. The set is closed and documented in docs/outputs.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The TCP connection could not be opened, or closed before the request was written.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// A time limit (connect, first byte, idle, total) was reached; the message names the phase.
    Timeout,
    /// The response status was not 2xx; the message names the code.
    HttpStatus,
    /// The stream carried an error object (`{"error": …}` or `{"detail": …}`).
    StreamError,
    /// An SSE event was not valid JSON, the SSE framing was broken, or a compressed body
    /// could not be decoded.
    MalformedEvent,
    /// The stream ended or dropped without `[DONE]`.
    IncompleteStream,
    /// The completion carried no token at all.
    NoTokens,
    /// The response exceeded a size limit of the client.
    TooLarge,
    /// A limit of the load generator's own machine (too many open files, out of ports): not
    /// the server's fault.
    LocalResource,
    /// A defect of the load generator itself (a user task panicked).
    Internal,
}

impl FailureKind {
    /// Every kind, in report order.
    pub const ALL: [FailureKind; 11] = [
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Timeout,
        FailureKind::HttpStatus,
        FailureKind::StreamError,
        FailureKind::MalformedEvent,
        FailureKind::IncompleteStream,
        FailureKind::NoTokens,
        FailureKind::TooLarge,
        FailureKind::LocalResource,
        FailureKind::Internal,
    ];

    /// The name used in JSON, CSV and the web API.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::StreamError => "stream_error",
            FailureKind::MalformedEvent => "malformed_event",
            FailureKind::IncompleteStream => "incomplete_stream",
            FailureKind::NoTokens => "no_tokens",
            FailureKind::TooLarge => "too_large",
            FailureKind::LocalResource => "local_resource",
            FailureKind::Internal => "internal",
        }
    }

    /// The kind named `s` (as [`FailureKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<FailureKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of a failure known only by its message: one from a stock Locust worker, or a
    /// result file written before kinds existed. Messages this project writes map to their
    /// own kind; any other message counts as a `stream_error` (a failure the peer judged so).
    pub fn from_message(message: &str) -> FailureKind {
        const RULES: [(&str, FailureKind); 14] = [
            ("too large", FailureKind::TooLarge),
            ("unsupported Content-Encoding", FailureKind::MalformedEvent),
            ("Received status code", FailureKind::HttpStatus),
            ("Stream error", FailureKind::StreamError),
            ("Invalid JSON in SSE event", FailureKind::MalformedEvent),
            ("Invalid SSE stream", FailureKind::MalformedEvent),
            ("not an SSE stream", FailureKind::MalformedEvent),
            ("Stream ended", FailureKind::IncompleteStream),
            ("closed mid-stream", FailureKind::IncompleteStream),
            ("Completion had no tokens", FailureKind::NoTokens),
            ("timed out", FailureKind::Timeout),
            ("limit", FailureKind::Timeout),
            ("TLS", FailureKind::Tls),
            ("Request failed", FailureKind::Connect),
        ];
        RULES
            .iter()
            .find(|(needle, _)| message.contains(needle))
            .map_or(FailureKind::StreamError, |&(_, k)| k)
    }

    /// True for failures of the load generator itself rather than of the server under test;
    /// reports show them apart, so a local limit is not taken for a server failure.
    pub fn is_local(self) -> bool {
        matches!(self, FailureKind::LocalResource | FailureKind::Internal)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed request's cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The message that names the cause (Locust-compatible, e.g. `Received status code: 500`).
    /// It is the grouping key of the failures table, so it holds no per-request values.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in FailureKind::ALL {
            assert_eq!(FailureKind::parse(k.as_str()), Some(k));
            assert!(seen.insert(k.as_str()));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(FailureKind::parse("nope"), None);
    }

    #[test]
    fn kinds_of_bare_messages() {
        let k = FailureKind::from_message;
        assert_eq!(k("Received status code: 500"), FailureKind::HttpStatus);
        assert_eq!(
            k("Request failed: no data for 1s (idle limit)"),
            FailureKind::Timeout
        );
        assert_eq!(
            k("Stream ended without [DONE]"),
            FailureKind::IncompleteStream
        );
        assert_eq!(k("ConnectionResetError(104)"), FailureKind::StreamError);
    }
}
