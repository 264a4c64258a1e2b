//! One streaming response in progress: what each SSE `data:` event changes (first event,
//! first and last token, inter-token gaps, usage, a stream error, `[DONE]`).

use super::chunk;
use super::tokens::MAX_COUNTED_TEXT_BYTES;
use crate::metrics::{Failure, FailureKind};
use std::ops::ControlFlow;
use std::time::Instant;

/// Progress of one streaming response, updated per event.
pub(super) struct Stream<'a> {
    pub(super) now: Instant,
    pub(super) first_event: Option<Instant>,
    pub(super) first_token: Option<Instant>,
    pub(super) last_token: Option<Instant>,
    pub(super) token_events: u32,
    pub(super) usage_tokens: Option<u64>,
    pub(super) done_at: Option<Instant>,
    pub(super) failure: Option<Failure>,
    pub(super) lenient: bool,
    pub(super) itl_us: &'a mut Vec<u32>,
    pub(super) text: &'a mut String,
    /// Text beyond [`MAX_COUNTED_TEXT_BYTES`] arrived and was not kept.
    pub(super) text_truncated: bool,
}

impl Stream<'_> {
    /// Applies one event received at `self.now`; breaks at `[DONE]` or at a failure.
    pub(super) fn on_event(&mut self, data: &[u8]) -> ControlFlow<()> {
        if self.first_event.is_none() {
            self.first_event = Some(self.now);
        }
        if data == b"[DONE]" {
            self.done_at = Some(self.now);
            return ControlFlow::Break(());
        }
        let info = match chunk::parse(data) {
            Ok(info) => info,
            Err(_) if self.lenient => return ControlFlow::Continue(()),
            Err(e) => {
                self.failure = Some(Failure::new(
                    FailureKind::MalformedEvent,
                    format!("Invalid JSON in SSE event: {e}"),
                ));
                return ControlFlow::Break(());
            }
        };
        if let Some(msg) = info.error {
            self.failure = Some(Failure::new(
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
}
