//! Why a request failed: the closed set of failure kinds, and a failure (kind plus the
//! Locust-compatible message that names the cause).
//!
//! Every writer (console, JSON, CSV, HTML, web UI, the master/worker wire) and every test that
//! asks "what kind of failure was this" iterates or matches this one enum; no one matches on
//! message text.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a failure. The set is closed; each kind's meaning is [`FailureKind::meaning`],
/// the one text every report and the web UI show for it.
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

    /// Position in [`FailureKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// What the kind means, in one sentence: the one description of it, shown beside the
    /// per-kind counts by the console, the HTML report and the web UI.
    pub fn meaning(self) -> &'static str {
        match self {
            FailureKind::Connect => "The connection could not be opened, or closed before the response began.",
            FailureKind::Tls => "The TLS handshake failed (certificate, server name or protocol).",
            FailureKind::Timeout => "A time limit was reached (connect, first byte, idle gap or total); the message names which.",
            FailureKind::HttpStatus => "The response status was not 2xx; the message names the code and the server's explanation.",
            FailureKind::StreamError => "The stream carried an error object ({\"error\": ...} or {\"detail\": ...}).",
            FailureKind::MalformedEvent => "An SSE event was not valid JSON, the body was not an SSE stream, or it could not be decoded.",
            FailureKind::IncompleteStream => "The stream ended or dropped without [DONE].",
            FailureKind::NoTokens => "The completion finished without any token.",
            FailureKind::TooLarge => "The response passed a size limit of the client (an SSE event or line over 4 MiB, a body decoding past 64 MiB).",
            FailureKind::LocalResource => "A limit of this machine (too many open files, no free port): not the server's fault.",
            FailureKind::Internal => "A defect of gsai-load itself (a request's task panicked).",
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

/// Failures counted per kind: the per-kind summary of a failures table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts([u64; FailureKind::ALL.len()]);

impl KindCounts {
    /// Counts `(kind, count)` pairs, e.g. the rows of a failures table.
    pub fn of(rows: impl IntoIterator<Item = (FailureKind, u64)>) -> Self {
        let mut counts = Self::default();
        for (kind, n) in rows {
            counts.add(kind, n);
        }
        counts
    }

    /// Adds `n` failures of `kind`.
    pub fn add(&mut self, kind: FailureKind, n: u64) {
        let c = &mut self.0[kind.index()];
        *c = c.saturating_add(n);
    }

    /// The count of `kind`.
    pub fn get(&self, kind: FailureKind) -> u64 {
        self.0[kind.index()]
    }

    /// The kinds that occurred, in report order, with their counts and meanings.
    pub fn summary(&self) -> Vec<KindSummary> {
        FailureKind::ALL
            .into_iter()
            .filter(|k| self.get(*k) > 0)
            .map(|kind| KindSummary {
                kind,
                count: self.get(kind),
                meaning: kind.meaning(),
            })
            .collect()
    }
}

/// One line of the per-kind summary (also its JSON form in the web API and the HTML report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindSummary {
    /// The kind.
    pub kind: FailureKind,
    /// Failures of this kind.
    pub count: u64,
    /// What the kind means ([`FailureKind::meaning`]).
    pub meaning: &'static str,
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
    fn index_follows_all_and_every_kind_has_a_meaning() {
        for (i, k) in FailureKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert!(k.meaning().ends_with('.'), "{k}");
        }
    }

    #[test]
    fn kind_counts_summarize_in_report_order() {
        let c = KindCounts::of([
            (FailureKind::StreamError, 2),
            (FailureKind::HttpStatus, 3),
            (FailureKind::HttpStatus, 4),
        ]);
        let s = c.summary();
        let got: Vec<_> = s.iter().map(|k| (k.kind, k.count)).collect();
        assert_eq!(
            got,
            [(FailureKind::HttpStatus, 7), (FailureKind::StreamError, 2)]
        );
        assert_eq!(s[0].meaning, FailureKind::HttpStatus.meaning());
        assert!(KindCounts::default().summary().is_empty());
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
