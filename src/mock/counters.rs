//! Live counters of what the mock served, and the guard that settles one stream's outcome.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Atomic counters shared by every connection of one mock server.
///
/// Relaxed ordering everywhere: each counter is independent and only read as a snapshot, so no
/// ordering between counters is needed, and relaxed increments are the cheapest on the hot path.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) http_500: AtomicU64,
    pub(crate) http_429: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) stream_error: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) bad_request: AtomicU64,
    pub(crate) not_found: AtomicU64,
    pub(crate) client_aborted: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) tokens_sent: AtomicU64,
    pub(crate) open_streams: AtomicU64,
    pub(crate) other_requests: AtomicU64,
    /// Time to first content token of each stream, for `GET /metrics`.
    pub(crate) ttft: super::metrics::TtftHistogram,
    /// `MockConfig::accounts` with their tokens and use, set when the server starts.
    pub(crate) accounts: std::sync::OnceLock<super::accounts::Issued>,
}

/// A point-in-time copy of [`Counters`]; also the JSON served at `GET /mock/counters`.
///
/// Every chat request ends in exactly one outcome, so once no request is in flight:
/// `requests == ok + http_500 + http_429 + dropped + malformed + stream_error + unauthorized
/// + bad_request + not_found + client_aborted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountersSnapshot {
    /// Every request received on a chat path, whatever its outcome.
    pub requests: u64,
    /// Normal completions: `[DONE]` (streaming) or the full JSON (non-streaming) handed to hyper.
    pub ok: u64,
    /// Injected `500 Internal Server Error` answers.
    pub http_500: u64,
    /// Injected `429 Too Many Requests` answers.
    pub http_429: u64,
    /// Streams aborted mid-body on purpose (no `[DONE]`).
    pub dropped: u64,
    /// Streams that carried one invalid-JSON event.
    pub malformed: u64,
    /// Streams that carried Open WebUI's `{"error":...}` event before `[DONE]`.
    pub stream_error: u64,
    /// Chat requests refused with 401 (missing or wrong bearer token).
    pub unauthorized: u64,
    /// Chat requests refused as invalid: bad JSON (422), unknown model (400/404), bad `x-mock-*` header (400).
    pub bad_request: u64,
    /// Open WebUI chat requests refused with 404 because `chat_id` was not a `local:` id.
    pub not_found: u64,
    /// Chat requests whose client went away before their outcome was written (e.g. a test stopping).
    pub client_aborted: u64,
    /// SSE `data:` events written, `[DONE]` included.
    pub events_sent: u64,
    /// Content tokens written (streamed or in a non-streaming answer).
    pub tokens_sent: u64,
    /// Streams currently open (a gauge, not a total).
    pub open_streams: u64,
    /// Requests on any other path: models, counters, health, unknown paths.
    pub other_requests: u64,
}

impl Counters {
    /// Reads every counter (each read is atomic; the set is not one atomic cut).
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            requests: self.requests.load(Relaxed),
            ok: self.ok.load(Relaxed),
            http_500: self.http_500.load(Relaxed),
            http_429: self.http_429.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            stream_error: self.stream_error.load(Relaxed),
            unauthorized: self.unauthorized.load(Relaxed),
            bad_request: self.bad_request.load(Relaxed),
            not_found: self.not_found.load(Relaxed),
            client_aborted: self.client_aborted.load(Relaxed),
            events_sent: self.events_sent.load(Relaxed),
            tokens_sent: self.tokens_sent.load(Relaxed),
            open_streams: self.open_streams.load(Relaxed),
            other_requests: self.other_requests.load(Relaxed),
        }
    }
}

/// Adds one to a counter.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Owns one chat request's pending outcome.
///
/// If it is dropped before [`Outcome::settle`] — the client hung up, or the server shut down — the
/// request counts as `client_aborted`, so every request ends in exactly one counter. When it tracks
/// a stream, it also holds one unit of the `open_streams` gauge, released on drop whatever happens.
#[derive(Debug)]
pub(crate) struct Outcome {
    counters: Arc<Counters>,
    settled: bool,
    stream: bool,
}

impl Outcome {
    /// A pending outcome for a non-streaming answer.
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Outcome {
            counters,
            settled: false,
            stream: false,
        }
    }

    /// Turns this into a stream's outcome: counts one open stream until dropped.
    pub(crate) fn open_stream(&mut self) {
        if !self.stream {
            self.stream = true;
            bump(&self.counters.open_streams);
        }
    }

    /// The shared counters, for event and token counts.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Records the outcome in `pick(counters)`; later calls are ignored.
    pub(crate) fn settle(&mut self, pick: fn(&Counters) -> &AtomicU64) {
        if !self.settled {
            self.settled = true;
            bump(pick(&self.counters));
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.settled {
            bump(&self.counters.client_aborted);
        }
        if self.stream {
            self.counters.open_streams.fetch_sub(1, Relaxed);
        }
    }
}
