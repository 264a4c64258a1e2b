//! One streaming response in progress: what each SSE `data:` event changes (first event,
//! first and last token, inter-token gaps, usage, `[DONE]`), and the verdict on the stream.
//!
//! Every failure of reading a 2xx body is made here: `stream_error` (an error object),
//! `malformed_event` (invalid JSON, not an SSE stream, an undecodable body), `incomplete_stream`
//! (ended or dropped without `[DONE]`), `too_large` and `no_tokens`. Time limits while reading
//! are the `timeout`s of [`super::head::TimeoutPhase`].

use super::chunk::ChunkReader;
use super::decode::DecodeError;
use super::messages::error_chain;
use super::tokens::MAX_COUNTED_TEXT_BYTES;
use crate::metrics::{Failure, FailureKind, RequestRecord};
use crate::sse::SseParser;
use std::ops::ControlFlow;
use std::time::Instant;

/// Progress of one streaming response, updated per event.
pub(super) struct Stream<'a> {
    /// When the last bytes arrived.
    pub(super) now: Instant,
    first_event: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    token_events: u32,
    usage_tokens: Option<u64>,
    done_at: Option<Instant>,
    failure: Option<Failure>,
    lenient: bool,
    itl_us: &'a mut Vec<u32>,
    text: &'a mut String,
    /// The user's chunk reader (it remembers the shape of token chunks).
    chunks: &'a mut ChunkReader,
    /// Text beyond [`MAX_COUNTED_TEXT_BYTES`] arrived and was not kept.
    text_truncated: bool,
}

/// What the stream left for the token count once it is judged a success.
pub(super) struct Counted {
    /// `usage.completion_tokens`, when the server sent it.
    pub(super) usage_tokens: Option<u64>,
    /// The kept text is only a prefix of what arrived (a tokenizer count would be short).
    pub(super) text_truncated: bool,
}

impl<'a> Stream<'a> {
    /// A response whose headers arrived at `now`; gaps and text go to the user's reused buffers.
    pub(super) fn new(
        now: Instant,
        lenient: bool,
        itl_us: &'a mut Vec<u32>,
        text: &'a mut String,
        chunks: &'a mut ChunkReader,
    ) -> Self {
        Self {
            now,
            first_event: None,
            first_token: None,
            last_token: None,
            token_events: 0,
            usage_tokens: None,
            done_at: None,
            failure: None,
            lenient,
            itl_us,
            text,
            chunks,
            text_truncated: false,
        }
    }

    /// Whether the stream is over for the parser: `[DONE]` came or it failed (what follows is
    /// only drained).
    pub(super) fn settled(&self) -> bool {
        self.done_at.is_some() || self.failure.is_some()
    }

    /// Whether the stream already failed.
    pub(super) fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// Fails the stream with `f` unless it already failed (the first cause is kept).
    pub(super) fn fail(&mut self, f: Failure) {
        self.failure.get_or_insert(f);
    }

    /// The connection broke while the body was being read.
    pub(super) fn dropped(&mut self, e: &hyper::Error) {
        self.fail(Failure::new(
            FailureKind::IncompleteStream,
            format!(
                "Request failed: connection closed mid-stream ({})",
                error_chain(e)
            ),
        ));
    }

    /// Feeds SSE bytes (as received, or decoded) to `parser`; an event or line past the
    /// parser's limit fails the request as too large (and the connection is then dropped).
    pub(super) fn feed(&mut self, parser: &mut SseParser, bytes: &[u8]) -> ControlFlow<()> {
        match parser.feed(bytes, |ev| self.on_event(ev.data)) {
            Ok(flow) => flow,
            Err(e) => {
                self.fail(Failure::new(
                    FailureKind::TooLarge,
                    format!("Response too large: {e}"),
                ));
                ControlFlow::Break(())
            }
        }
    }

    /// Records a decoding failure of the body (from [`super::decode::BodyDecoder`]).
    pub(super) fn decoded(&mut self, fed: Result<ControlFlow<()>, DecodeError>) {
        if let Err(e) = fed {
            self.fail(decode_failure(&e));
        }
    }

    /// Applies one event received at `self.now`; breaks at `[DONE]` or at a failure.
    fn on_event(&mut self, data: &[u8]) -> ControlFlow<()> {
        if self.first_event.is_none() {
            self.first_event = Some(self.now);
        }
        if data == b"[DONE]" {
            self.done_at = Some(self.now);
            return ControlFlow::Break(());
        }
        let info = match self.chunks.parse(data) {
            Ok(info) => info,
            Err(_) if self.lenient => return ControlFlow::Continue(()),
            Err(e) => {
                self.fail(Failure::new(
                    FailureKind::MalformedEvent,
                    format!("Invalid JSON in SSE event: {e}"),
                ));
                return ControlFlow::Break(());
            }
        };
        if let Some(msg) = info.error {
            self.fail(Failure::new(
                FailureKind::StreamError,
                format!("Stream error: {msg}"),
            ));
            return ControlFlow::Break(());
        }
        if let Some(n) = info.completion_tokens {
            self.usage_tokens = Some(n);
        }
        if info.has_token() {
            match self.last_token {
                None => self.first_token = Some(self.now),
                Some(prev) => {
                    let gap = self.now.saturating_duration_since(prev).as_micros();
                    self.itl_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
                }
            }
            self.last_token = Some(self.now);
            self.token_events += 1;
            for t in info.text.iter().flatten() {
                self.keep_text(t);
            }
        }
        ControlFlow::Continue(())
    }

    /// Keeps `t` for counting, up to the limit (cut at a character boundary).
    fn keep_text(&mut self, t: &str) {
        let room = MAX_COUNTED_TEXT_BYTES.saturating_sub(self.text.len());
        if t.len() <= room {
            self.text.push_str(t);
            return;
        }
        self.text_truncated = true;
        let mut cut = room;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&t[..cut]);
    }

    /// Writes the stream's moments into `rec` and judges it: the failure it met, or, for a
    /// streaming kind (`streaming`), one that ended without `[DONE]` or without any token.
    /// `is_sse`: the response said `Content-Type: text/event-stream`.
    pub(super) fn finish(
        self,
        rec: &mut RequestRecord,
        streaming: bool,
        is_sse: bool,
    ) -> Result<Counted, Failure> {
        rec.end = self.done_at.unwrap_or(self.now);
        rec.first_event = self.first_event;
        rec.first_token = self.first_token;
        rec.last_token = self.last_token;
        rec.token_events = self.token_events;
        if let Some(f) = self.failure {
            return Err(f);
        }
        if streaming && self.done_at.is_none() {
            return Err(if self.first_event.is_none() && !is_sse {
                Failure::new(FailureKind::MalformedEvent, "Response was not an SSE stream (no data events; expected Content-Type text/event-stream)")
            } else if self.first_event.is_none() {
                Failure::new(
                    FailureKind::IncompleteStream,
                    "Stream ended without any event",
                )
            } else {
                Failure::new(FailureKind::IncompleteStream, "Stream ended without [DONE]")
            });
        }
        if streaming && self.token_events == 0 {
            return Err(Failure::new(
                FailureKind::NoTokens,
                "Completion had no tokens",
            ));
        }
        Ok(Counted {
            usage_tokens: self.usage_tokens,
            text_truncated: self.text_truncated,
        })
    }
}

/// The failure of a body that cannot be decoded: too large past the decoded-size limit,
/// malformed otherwise (an unknown coding, corrupt data).
pub(super) fn decode_failure(e: &DecodeError) -> Failure {
    let kind = match e {
        DecodeError::TooLarge { .. } => FailureKind::TooLarge,
        DecodeError::Unsupported(_) | DecodeError::Corrupt { .. } => FailureKind::MalformedEvent,
    };
    Failure::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Outcome;

    /// Feeds `body` in one piece and judges the stream of a streaming kind.
    fn judge(body: &[u8], is_sse: bool) -> Result<u32, FailureKind> {
        let (mut itl, mut text, mut chunks) = (Vec::new(), String::new(), ChunkReader::new());
        let now = Instant::now();
        let mut stream = Stream::new(now, false, &mut itl, &mut text, &mut chunks);
        let _ = stream.feed(&mut SseParser::new(), body);
        let mut rec = RequestRecord::bare(0, now, now, Outcome::Success);
        stream
            .finish(&mut rec, true, is_sse)
            .map(|_| rec.token_events)
            .map_err(|f| f.kind)
    }

    const TOKEN: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";

    #[test]
    fn each_way_a_stream_fails_has_its_kind() {
        let done = "data: [DONE]\n\n";
        assert_eq!(
            judge(format!("{TOKEN}{TOKEN}{done}").as_bytes(), true),
            Ok(2)
        );
        assert_eq!(
            judge(
                format!("{TOKEN}data: {{\"error\":{{\"message\":\"x\"}}}}\n\n{done}").as_bytes(),
                true
            ),
            Err(FailureKind::StreamError)
        );
        assert_eq!(
            judge(format!("{TOKEN}data: not json\n\n{done}").as_bytes(), true),
            Err(FailureKind::MalformedEvent)
        );
        assert_eq!(
            judge(TOKEN.as_bytes(), true),
            Err(FailureKind::IncompleteStream)
        );
        assert_eq!(judge(b"", true), Err(FailureKind::IncompleteStream));
        assert_eq!(judge(b"<html>", false), Err(FailureKind::MalformedEvent));
        assert_eq!(judge(done.as_bytes(), true), Err(FailureKind::NoTokens));
        let flood = vec![b'x'; crate::sse::DEFAULT_MAX_EVENT_BYTES + 1];
        assert_eq!(judge(&flood, true), Err(FailureKind::TooLarge));
    }

    #[test]
    fn the_first_failure_is_kept() {
        let (mut itl, mut text, mut chunks) = (Vec::new(), String::new(), ChunkReader::new());
        let now = Instant::now();
        let mut stream = Stream::new(now, false, &mut itl, &mut text, &mut chunks);
        let _ = stream.feed(&mut SseParser::new(), b"data: nope\n\n");
        stream.fail(Failure::new(FailureKind::Timeout, "later"));
        let mut rec = RequestRecord::bare(0, now, now, Outcome::Success);
        let f = stream.finish(&mut rec, true, true).err().map(|f| f.kind);
        assert_eq!(f, Some(FailureKind::MalformedEvent));
    }
}
