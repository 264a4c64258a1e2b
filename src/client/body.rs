//! Reading a 2xx body: frames until its end, a failure or a time limit, through the decoder
//! (when compressed) into the SSE parser and the [`Stream`], which makes every failure of
//! this phase; a time limit reached here is a `timeout` of phase idle or total.

use super::decode::{BodyDecoder, DecodeError, Encoding};
use super::head::TimeoutPhase;
use super::stream::{decode_failure, Stream};
use super::Timeouts;
use crate::metrics::Failure;
use crate::sse::SseParser;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Instant;

/// The decoder for a body in `encoding`. A coding the client cannot decode fails a streaming
/// kind; any 2xx body succeeds for a non-streaming kind, so it is then drained, not decoded.
pub(super) fn decoder(
    encoding: Result<Option<Encoding>, DecodeError>,
    streaming: bool,
) -> Result<Option<BodyDecoder>, Failure> {
    match encoding.and_then(|e| e.map(BodyDecoder::new).transpose()) {
        Ok(d) => Ok(d),
        Err(e) if streaming => Err(decode_failure(&e)),
        Err(_) => Ok(None),
    }
}

/// What reading needs besides the stream: the parser, the limits, the body's kind.
pub(super) struct Reader<'p> {
    /// The user's reused SSE parser.
    pub(super) parser: &'p mut SseParser,
    /// The body's decoder, if compressed.
    pub(super) decoder: Option<BodyDecoder>,
    /// Time limits of the request.
    pub(super) timeouts: Timeouts,
    /// When the whole request must be over.
    pub(super) total_deadline: Instant,
    /// The body is an SSE chat stream (else it is only drained).
    pub(super) streaming: bool,
}

impl Reader<'_> {
    /// Reads `body` to its end (draining what follows `[DONE]`), or until the stream fails or
    /// a limit is reached. Adds the bytes received to `content_bytes`; returns whether the
    /// connection may carry another request.
    pub(super) async fn read(
        mut self,
        body: &mut Incoming,
        stream: &mut Stream<'_>,
        content_bytes: &mut u64,
    ) -> bool {
        let t = self.timeouts;
        // One timer for the whole body, moved only when it fires early: re-arming it on every
        // read would cost a timer-wheel update per SSE chunk.
        let timer = tokio::time::sleep_until((stream.now + t.idle).min(self.total_deadline).into());
        tokio::pin!(timer);
        loop {
            let frame = tokio::select! {
                biased;
                f = body.frame() => f,
                () = &mut timer => {
                    let idle_deadline = (stream.now + t.idle).min(self.total_deadline);
                    if Instant::now() < idle_deadline {
                        timer.as_mut().reset(idle_deadline.into());
                        continue;
                    }
                    stream.fail(if idle_deadline == self.total_deadline {
                        TimeoutPhase::Total.failure(t.total)
                    } else {
                        TimeoutPhase::Idle.failure(t.idle)
                    });
                    return false;
                }
            };
            let data = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                None => {
                    // What a decoder still holds (a server that never flushed) is the rest.
                    if let Some(d) = self
                        .decoder
                        .as_mut()
                        .filter(|_| self.streaming && !stream.settled())
                    {
                        let fed = d.finish(|chunk| stream.feed(self.parser, chunk));
                        stream.decoded(fed);
                    }
                    return true;
                }
                Some(Err(e)) => {
                    stream.dropped(&e);
                    return false;
                }
            };
            stream.now = Instant::now();
            *content_bytes += data.len() as u64;
            if !self.streaming || stream.settled() {
                // Drain what follows [DONE] so the connection stays reusable.
                continue;
            }
            match self.decoder.as_mut() {
                None => {
                    let _ = stream.feed(self.parser, &data);
                }
                Some(d) => {
                    let fed = d.decode(data, |chunk| stream.feed(self.parser, chunk));
                    stream.decoded(fed);
                }
            }
            if stream.failed() {
                // Do not wait for the rest of a stream we already failed.
                return false;
            }
        }
    }
}
