//! Response bodies: whole JSON answers, pre-rendered zero-delay streams, and timed SSE streams.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::compress::Encoder;
use super::counters::{Counters, Outcome};
use super::render::{Finish, Rendered, MALFORMED};

/// Every body the mock sends. One enum rather than a boxed trait object, so a response costs no
/// extra allocation and hyper gets one concrete type.
#[derive(Debug)]
pub(crate) enum MockBody {
    /// A complete JSON (or other) answer, sent with a content-length.
    Full(Option<Bytes>),
    /// A whole zero-delay SSE stream rendered up front, sent chunked like a real stream.
    Whole(Option<Whole>),
    /// A timed SSE stream.
    Stream(Box<SseStream>),
    /// Another body, compressed frame by frame (`--compress`).
    Compressed(Box<Compressed>),
}

/// A body and its encoder; after the inner body ends, one last frame carries the trailer.
#[derive(Debug)]
pub(crate) struct Compressed {
    pub(crate) inner: MockBody,
    pub(crate) encoder: Encoder,
    pub(crate) done: bool,
}

/// A pre-rendered stream and what to count once it is handed to hyper.
#[derive(Debug)]
pub(crate) struct Whole {
    pub(crate) data: Bytes,
    pub(crate) events: u64,
    pub(crate) tokens: u32,
    pub(crate) outcome: Outcome,
}

impl MockBody {
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(data.into()))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Whole(whole) => Poll::Ready(whole.take().map(|mut w| {
                let c = w.outcome.counters();
                c.events_sent.fetch_add(w.events, Relaxed);
                c.tokens_sent.fetch_add(u64::from(w.tokens), Relaxed);
                w.outcome.settle(|c| &c.ok);
                Ok(Frame::data(w.data))
            })),
            MockBody::Stream(s) => s.poll_next(cx),
            MockBody::Compressed(c) => {
                if c.done {
                    return Poll::Ready(None);
                }
                let compressed = match Pin::new(&mut c.inner).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => c.encoder.frame(&data, false),
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    },
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        c.done = true;
                        c.encoder.frame(b"", true)
                    }
                };
                Poll::Ready(Some(compressed.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(d) => d.is_none(),
            MockBody::Whole(w) => w.is_none(),
            MockBody::Stream(s) => matches!(s.phase, Phase::Ended),
            MockBody::Compressed(c) => c.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            // Exact, so hyper sends content-length instead of chunked encoding.
            MockBody::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            // Unknown, so SSE goes out chunked as real servers send it.
            _ => SizeHint::default(),
        }
    }
}

/// A fault that strikes part-way through a stream, after half of its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFault {
    None,
    Drop,
    Malformed,
    StreamError,
}

/// Everything fixed about one stream before it starts.
#[derive(Debug)]
pub(crate) struct StreamPlan {
    pub(crate) rendered: Arc<Rendered>,
    /// Answer tokens.
    pub(crate) tokens: u32,
    /// Reasoning tokens sent before the answer.
    pub(crate) reasoning: u32,
    pub(crate) finish: Finish,
    /// `Some(prompt_tokens)` when a usage chunk is to be sent.
    pub(crate) usage: Option<u32>,
    pub(crate) fault: StreamFault,
    pub(crate) ttft: Duration,
    pub(crate) itl: Duration,
    /// The capacity model's semaphore, when `max_concurrent` is set.
    pub(crate) capacity: Option<Arc<Semaphore>>,
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

#[derive(Debug)]
enum Phase {
    /// Send the role chunk (immediately, with the headers).
    Role,
    /// Wait for a generation slot; the TTFT clock starts once one is free.
    Queued,
    /// Send content tokens on schedule, the mid-stream fault, then the tail.
    Tokens,
    /// `drop` fault: yield once so hyper flushes what was sent before the abort.
    DropFlush,
    /// `drop` fault: fail the body, which makes hyper close the connection mid-chunk.
    Dropping,
    Ended,
}

/// A streaming body that sleeps between chunks. Token `k` (0-based) is due at
/// `start + ttft + k * itl`, computed from one start instant so timer rounding never accumulates.
pub(crate) struct SseStream {
    plan: StreamPlan,
    outcome: Outcome,
    phase: Phase,
    sent: u32,
    fault_done: bool,
    /// When the stream began (the request's answer started), for the TTFT of `GET /metrics`.
    created: Instant,
    start: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    acquire: Option<Acquire>,
    /// Held for the stream's life: dropping the stream frees the slot.
    _permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream")
            .field("phase", &self.phase)
            .field("sent", &self.sent)
            .finish()
    }
}

impl SseStream {
    pub(crate) fn new(plan: StreamPlan, outcome: Outcome) -> Self {
        SseStream {
            plan,
            outcome,
            phase: Phase::Role,
            sent: 0,
            fault_done: false,
            created: Instant::now(),
            start: Instant::now(),
            sleep: None,
            acquire: None,
            _permit: None,
        }
    }

    fn counters(&self) -> &Counters {
        self.outcome.counters()
    }

    fn event(&self, data: Bytes, events: u64) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.counters().events_sent.fetch_add(events, Relaxed);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            match self.phase {
                Phase::Role => {
                    self.phase = Phase::Queued;
                    if let Some(sem) = &self.plan.capacity {
                        self.acquire = Some(Box::pin(Arc::clone(sem).acquire_owned()));
                    }
                    // Legacy completions have no opening event.
                    if !self.plan.rendered.role.is_empty() {
                        return self.event(self.plan.rendered.role.clone(), 1);
                    }
                }
                Phase::Queued => {
                    if let Some(acquire) = &mut self.acquire {
                        match acquire.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            // The semaphore is never closed; if it were, run unthrottled.
                            Poll::Ready(permit) => self._permit = permit.ok(),
                        }
                        self.acquire = None;
                    }
                    self.start = Instant::now();
                    self.phase = Phase::Tokens;
                }
                Phase::Tokens => return self.poll_tokens(cx),
                Phase::DropFlush => {
                    self.phase = Phase::Dropping;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Phase::Dropping => {
                    self.phase = Phase::Ended;
                    self.outcome.settle(|c| &c.dropped);
                    return Poll::Ready(Some(Err(io::Error::other(
                        "mock: injected connection drop",
                    ))));
                }
                Phase::Ended => return Poll::Ready(None),
            }
        }
    }

    fn poll_tokens(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let plan = &self.plan;
        let all = plan.tokens.saturating_add(plan.reasoning);
        if !self.fault_done && self.sent == all / 2 {
            self.fault_done = true;
            match plan.fault {
                StreamFault::None => {}
                StreamFault::Drop => {
                    self.phase = Phase::DropFlush;
                    return self.poll_next(cx);
                }
                StreamFault::Malformed => {
                    self.outcome.settle(|c| &c.malformed);
                    return self.event(Bytes::from_static(MALFORMED), 1);
                }
                StreamFault::StreamError => {
                    self.phase = Phase::Ended;
                    self.outcome.settle(|c| &c.stream_error);
                    let error = plan.rendered.stream_error.clone();
                    let events = error.windows(6).filter(|w| w == b"data: ").count();
                    return self.event(error, events as u64);
                }
            }
        }
        if self.sent >= all {
            self.phase = Phase::Ended;
            let (tail, events) = plan.rendered.tail(
                plan.finish,
                plan.usage,
                self.sent,
                plan.reasoning.min(self.sent),
            );
            // No-op after a malformed event: that stream's outcome is already counted.
            self.outcome.settle(|c| &c.ok);
            return self.event(tail, events);
        }
        let due = due_at(self.start, plan.ttft, plan.itl, self.sent);
        if due > Instant::now() {
            let sleep = match &mut self.sleep {
                Some(s) => {
                    // Re-arm only for a new deadline: a spurious poll must not re-register the timer.
                    if s.deadline() != due {
                        s.as_mut().reset(due);
                    }
                    s
                }
                None => self.sleep.insert(Box::pin(tokio::time::sleep_until(due))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let token = plan.rendered.token(self.sent, plan.reasoning).clone();
        if self.sent == 0 {
            self.counters().ttft.observe(self.created.elapsed());
        }
        self.sent += 1;
        self.counters().tokens_sent.fetch_add(1, Relaxed);
        self.event(token, 1)
    }
}

/// When token `k` is due; absurd configured delays saturate to "far future" instead of panicking.
fn due_at(start: Instant, ttft: Duration, itl: Duration, k: u32) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365);
    let offset = itl
        .checked_mul(k)
        .and_then(|d| d.checked_add(ttft))
        .unwrap_or(FAR)
        .min(FAR);
    start + offset
}
