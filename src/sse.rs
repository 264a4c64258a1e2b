//! Incremental, sans-I/O Server-Sent Events parser.
//!
//! Owns the byte-level framing of an `text/event-stream` body: line ends (`\n`, `\r\n`, `\r`),
//! fields (`data`, `event`, `id`, `retry`), comments, multi-line `data` and events split at any
//! byte boundary. It does no I/O and never panics: the client feeds it whatever the socket gave,
//! and it calls back once per complete event with borrowed data, so the per-event path copies
//! bytes into one reused buffer and allocates nothing once warm.

use std::ops::ControlFlow;

/// Longest event (sum of its `data` lines) or line the parser accepts before reporting an
/// error, so a server that never ends a line cannot grow our memory without bound. A chat
/// chunk is a few hundred bytes; even a megabyte-long "word" in one event fits.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Buffer capacity kept across [`SseParser::reset`]; a buffer grown past it by one huge event
/// is freed, so a hostile response does not pin its size to the user for the rest of the run.
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

/// One dispatched event. Borrowed from the parser; valid only inside the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, if the event had one (`None` means the default type, "message").
    pub event: Option<&'a [u8]>,
    /// The `data:` lines joined with `\n`, without the final newline.
    pub data: &'a [u8],
}

/// Input the parser refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event or line exceeded the configured limit.
    #[error("SSE event larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// Incremental SSE parser. Feed it bytes in any split; it dispatches complete events.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// Accumulated `data` of the current event.
    data: Vec<u8>,
    /// `event:` field of the current event.
    event: Vec<u8>,
    has_event: bool,
    /// Whether the current event has seen at least one `data` field.
    has_data: bool,
    /// The previous chunk ended in `\r`; a leading `\n` in the next chunk belongs to it.
    pending_cr: bool,
    /// The stream has not yet passed its first bytes (a leading BOM is dropped).
    at_start: bool,
    last_event_id: Vec<u8>,
    retry_ms: Option<u64>,
    max_event_bytes: usize,
    failed: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default event size limit.
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that fails once an event or a line exceeds `max_event_bytes`.
    pub fn with_limit(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::with_capacity(256),
            data: Vec::with_capacity(256),
            event: Vec::new(),
            has_event: false,
            has_data: false,
            pending_cr: false,
            at_start: true,
            last_event_id: Vec::new(),
            retry_ms: None,
            max_event_bytes,
            failed: false,
        }
    }

    /// Forgets all state, keeping buffers, so one parser serves many responses.
    pub fn reset(&mut self) {
        for buf in [&mut self.line, &mut self.data] {
            buf.clear();
            if buf.capacity() > KEPT_BUFFER_BYTES {
                *buf = Vec::with_capacity(256);
            }
        }
        self.event.clear();
        self.has_event = false;
        self.has_data = false;
        self.pending_cr = false;
        self.at_start = true;
        self.last_event_id.clear();
        self.retry_ms = None;
        self.failed = false;
    }

    /// The last `id:` field seen (the SSE "last event ID").
    pub fn last_event_id(&self) -> &[u8] {
        &self.last_event_id
    }

    /// The last valid `retry:` field seen, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Whether bytes of an unfinished line or event are buffered (the stream ended mid-event).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    /// Feeds bytes. Calls `on_event` for each event completed by them, in order. Returns
    /// `Ok(ControlFlow::Break(()))` as soon as the callback breaks (the remaining bytes are
    /// left unparsed), or an error if an event exceeds the size limit. After an error every
    /// further call returns the same error.
    pub fn feed<F>(
        &mut self,
        mut bytes: &[u8],
        mut on_event: F,
    ) -> Result<ControlFlow<()>, SseError>
    where
        F: FnMut(SseEvent<'_>) -> ControlFlow<()>,
    {
        if self.failed {
            return Err(self.too_large());
        }
        if self.at_start && !bytes.is_empty() {
            // A UTF-8 BOM may only appear at the very start of the stream; it may also be split.
            let bom = [0xEF, 0xBB, 0xBF];
            let have = self.line.len();
            let want = &bom[have..];
            let n = want.len().min(bytes.len());
            if bytes[..n] == want[..n] {
                if n == want.len() {
                    self.line.clear();
                    self.at_start = false;
                } else {
                    self.line.extend_from_slice(&bytes[..n]);
                }
                bytes = &bytes[n..];
            } else {
                // Not a BOM after all: whatever partial prefix was held is ordinary line text.
                self.at_start = false;
            }
            if bytes.is_empty() {
                return Ok(ControlFlow::Continue(()));
            }
        }
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        while !bytes.is_empty() {
            let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) else {
                if self.line.len() + bytes.len() > self.max_event_bytes {
                    return Err(self.fail());
                }
                self.line.extend_from_slice(bytes);
                break;
            };
            let ends_with_cr = bytes[pos] == b'\r';
            let rest = &bytes[pos + 1..];
            let flow = if self.line.is_empty() {
                // Fast path: the whole line is inside this chunk, no copy into `line`.
                self.process_line(&bytes[..pos], &mut on_event)?
            } else {
                if self.line.len() + pos > self.max_event_bytes {
                    return Err(self.fail());
                }
                self.line.extend_from_slice(&bytes[..pos]);
                let line = std::mem::take(&mut self.line);
                let flow = self.process_line(&line, &mut on_event);
                self.line = line;
                self.line.clear();
                flow?
            };
            bytes = rest;
            if ends_with_cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if flow.is_break() {
                return Ok(flow);
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    fn too_large(&self) -> SseError {
        SseError::TooLarge {
            limit: self.max_event_bytes,
        }
    }

    fn fail(&mut self) -> SseError {
        self.failed = true;
        self.too_large()
    }

    fn process_line<F>(
        &mut self,
        line: &[u8],
        on_event: &mut F,
    ) -> Result<ControlFlow<()>, SseError>
    where
        F: FnMut(SseEvent<'_>) -> ControlFlow<()>,
    {
        if line.is_empty() {
            return Ok(self.dispatch(on_event));
        }
        if line[0] == b':' {
            return Ok(ControlFlow::Continue(()));
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (&line[..colon], value)
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    if self.data.len() + 1 + value.len() > self.max_event_bytes {
                        return Err(self.fail());
                    }
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            // Per the spec an id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.last_event_id.clear();
                self.last_event_id.extend_from_slice(value);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry_ms = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
            }
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    fn dispatch<F>(&mut self, on_event: &mut F) -> ControlFlow<()>
    where
        F: FnMut(SseEvent<'_>) -> ControlFlow<()>,
    {
        if !self.has_data {
            // Per the spec an event without data is not dispatched; its fields are dropped.
            self.has_event = false;
            self.event.clear();
            return ControlFlow::Continue(());
        }
        let flow = on_event(SseEvent {
            event: self.has_event.then_some(self.event.as_slice()),
            data: &self.data,
        });
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.has_event = false;
        flow
    }
}

#[cfg(test)]
mod tests;
