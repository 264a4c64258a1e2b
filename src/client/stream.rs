//! One streaming response in progress: what each SSE `data:` event changes (first event,
//! first and last token, inter-token gaps, usage, `[DONE]`), and the verdict on the stream.
//!
//! Every failure of reading a 2xx body is made here: `stream_error` (an error object),
//! `malformed_event` (invalid JSON, not an SSE stream, an undecodable body), `incomplete_stream`
//! (ended or dropped without `[DONE]`), `too_large` and `no_tokens`. Time limits while reading
//! are the `timeout`s of [`super::head::TimeoutPhase`].

use super::chunk::ChunkReader;
use super::decode::DecodeError;
use super::events::{self, Wire};
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
    first_answer: Option<Instant>,
    last_token: Option<Instant>,
    token_events: u32,
    reasoning_events: u32,
    usage_tokens: Option<u64>,
    usage_reasoning: Option<u64>,
    done_at: Option<Instant>,
    failure: Option<Failure>,
    lenient: bool,
    itl_us: &'a mut Vec<u32>,
    text: &'a mut String,
    /// The reasoning channel's text, kept apart to count reasoning tokens.
    reasoning: &'a mut String,
    /// The user's chunk reader (it remembers the shape of token chunks).
    chunks: &'a mut ChunkReader,
    /// Text beyond [`MAX_COUNTED_TEXT_BYTES`] arrived and was not kept.
    text_truncated: bool,
    /// What the events look like and which one ends the stream.
    wire: Wire,
}

/// The user's reusable buffers a stream writes into.
pub(super) struct Buffers<'a> {
    /// Inter-token gaps, µs.
    pub(super) itl_us: &'a mut Vec<u32>,
    /// Answer text (and all text of a model that does not reason).
    pub(super) text: &'a mut String,
    /// Reasoning text.
    pub(super) reasoning: &'a mut String,
    /// The chunk reader.
    pub(super) chunks: &'a mut ChunkReader,
}

/// What the stream left for the token count once it is judged a success.
#[derive(Debug)]
pub(super) struct Counted {
    /// `usage.completion_tokens`, when the server sent it.
    pub(super) usage_tokens: Option<u64>,
    /// The kept text is only a prefix of what arrived (a tokenizer count would be short).
    pub(super) text_truncated: bool,
    /// The server's reasoning-token count (chat `completion_tokens_details`, Responses
    /// `output_tokens_details`), when sent.
    pub(super) usage_reasoning: Option<u64>,
    /// Events that carried reasoning text.
    pub(super) reasoning_events: u32,
}

impl<'a> Stream<'a> {
    /// A response whose headers arrived at `now`; gaps and text go to the user's reused buffers.
    pub(super) fn new(now: Instant, lenient: bool, wire: Wire, buffers: Buffers<'a>) -> Self {
        Self {
            now,
            first_event: None,
            first_token: None,
            first_answer: None,
            last_token: None,
            token_events: 0,
            reasoning_events: 0,
            usage_tokens: None,
            usage_reasoning: None,
            done_at: None,
            failure: None,
            lenient,
            itl_us: buffers.itl_us,
            text: buffers.text,
            reasoning: buffers.reasoning,
            chunks: buffers.chunks,
            text_truncated: false,
            wire,
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

    /// Applies one event received at `self.now`; breaks at the stream's end (`[DONE]`, or the
    /// API's final event) or at a failure.
    fn on_event(&mut self, data: &[u8]) -> ControlFlow<()> {
        if self.first_event.is_none() {
            self.first_event = Some(self.now);
        }
        if self.wire == Wire::Chat && data == b"[DONE]" {
            self.done_at = Some(self.now);
            return ControlFlow::Break(());
        }
        let parsed = match self.wire {
            Wire::Chat => self.chunks.parse(data),
            Wire::Responses => events::responses(data),
            Wire::Anthropic => events::anthropic(data),
        };
        let info = match parsed {
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
        if let Some(n) = info.reasoning_tokens {
            self.usage_reasoning = Some(n);
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
            let [answer, reasoning] = &info.text;
            if info.tool_call || answer.as_ref().is_some_and(|t| !t.is_empty()) {
                self.first_answer.get_or_insert(self.now);
            }
            if let Some(t) = answer {
                keep_text(self.text, &mut self.text_truncated, t);
            }
            if let Some(t) = reasoning.as_ref().filter(|t| !t.is_empty()) {
                self.reasoning_events += 1;
                keep_text(self.reasoning, &mut self.text_truncated, t);
            }
        }
        if info.end {
            self.done_at = Some(self.now);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
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
        rec.first_answer_token = self.first_answer;
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
                Failure::new(
                    FailureKind::IncompleteStream,
                    format!("Stream ended without {}", self.wire.terminator()),
                )
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
            usage_reasoning: self.usage_reasoning,
            reasoning_events: self.reasoning_events,
        })
    }
}

/// Keeps `t` in `buf` for counting, up to the limit (cut at a character boundary).
fn keep_text(buf: &mut String, truncated: &mut bool, t: &str) {
    let room = MAX_COUNTED_TEXT_BYTES.saturating_sub(buf.len());
    if t.len() <= room {
        buf.push_str(t);
        return;
    }
    *truncated = true;
    let mut cut = room;
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    buf.push_str(&t[..cut]);
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
        judge_wire(Wire::Chat, body, is_sse)
            .map(|(n, _)| n)
            .map_err(|(k, _)| k)
    }

    /// The same for any wire; also returns the failure message.
    fn judge_wire(
        wire: Wire,
        body: &[u8],
        is_sse: bool,
    ) -> Result<(u32, Counted), (FailureKind, String)> {
        let (mut itl, mut text, mut reasoning, mut chunks) =
            (Vec::new(), String::new(), String::new(), ChunkReader::new());
        let now = Instant::now();
        let buffers = Buffers {
            itl_us: &mut itl,
            text: &mut text,
            reasoning: &mut reasoning,
            chunks: &mut chunks,
        };
        let mut stream = Stream::new(now, false, wire, buffers);
        let _ = stream.feed(&mut SseParser::new(), body);
        let mut rec = RequestRecord::bare(0, now, now, Outcome::Success);
        stream
            .finish(&mut rec, true, is_sse)
            .map(|c| (rec.token_events, c))
            .map_err(|f| (f.kind, f.message))
    }

    #[test]
    fn typed_wires_end_at_their_final_event_and_fail_on_error_events() {
        let r = |t: &str| format!("event: {t}\ndata: {{\"type\":\"{t}\",\"delta\":\"x\"}}\n\n");
        let text = r("response.output_text.delta");
        let done = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":1}}}}\n\n";
        let think = r("response.reasoning_text.delta");
        let (n, c) = judge_wire(
            Wire::Responses,
            format!("{think}{text}{done}").as_bytes(),
            true,
        )
        .unwrap();
        assert_eq!(
            (n, c.usage_tokens, c.usage_reasoning, c.reasoning_events),
            (2, Some(2), Some(1), 1)
        );
        let cut = judge_wire(Wire::Responses, text.as_bytes(), true).unwrap_err();
        assert_eq!(cut.0, FailureKind::IncompleteStream);
        assert!(cut.1.contains("response.completed"), "{}", cut.1);
        let err = "event: error\ndata: {\"type\":\"error\",\"message\":\"overloaded\"}\n\n";
        let e = judge_wire(Wire::Responses, format!("{text}{err}").as_bytes(), true).unwrap_err();
        assert_eq!(
            e,
            (FailureKind::StreamError, "Stream error: overloaded".into())
        );

        let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
        let usage = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n";
        let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (n, c) = judge_wire(
            Wire::Anthropic,
            format!("{delta}{usage}{stop}").as_bytes(),
            true,
        )
        .unwrap();
        assert_eq!((n, c.usage_tokens), (1, Some(7)));
        let cut =
            judge_wire(Wire::Anthropic, format!("{delta}{usage}").as_bytes(), true).unwrap_err();
        assert_eq!(cut.0, FailureKind::IncompleteStream);
        assert!(cut.1.contains("message_stop"));
        let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let e = judge_wire(Wire::Anthropic, format!("{delta}{err}").as_bytes(), true).unwrap_err();
        assert_eq!(e.0, FailureKind::StreamError);
        // [DONE] is not how these APIs end.
        let e = judge_wire(
            Wire::Anthropic,
            format!("{delta}data: [DONE]\n\n").as_bytes(),
            true,
        );
        assert_eq!(e.unwrap_err().0, FailureKind::MalformedEvent);
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
        let (mut itl, mut text, mut reasoning, mut chunks) =
            (Vec::new(), String::new(), String::new(), ChunkReader::new());
        let now = Instant::now();
        let buffers = Buffers {
            itl_us: &mut itl,
            text: &mut text,
            reasoning: &mut reasoning,
            chunks: &mut chunks,
        };
        let mut stream = Stream::new(now, false, Wire::Chat, buffers);
        let _ = stream.feed(&mut SseParser::new(), b"data: nope\n\n");
        stream.fail(Failure::new(FailureKind::Timeout, "later"));
        let mut rec = RequestRecord::bare(0, now, now, Outcome::Success);
        let f = stream.finish(&mut rec, true, true).err().map(|f| f.kind);
        assert_eq!(f, Some(FailureKind::MalformedEvent));
    }
}
