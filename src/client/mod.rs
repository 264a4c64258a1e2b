//! One simulated user's HTTP client: sends a request, stamps the moments bytes arrive, feeds
//! the SSE parser, and turns what happened into a [`RequestRecord`]. A failed request is data
//! (an [`Outcome::Failure`] with a message naming the cause), never an error or a panic.

pub mod chunk;
mod conn;
mod decode;
mod messages;
mod stream;
mod tls;
mod tokens;

pub use conn::{is_local_resource, ConnDriver, ConnectError, Target, TargetError};
use decode::BodyDecoder;
pub use decode::{DecodeError, Encoding, DEFAULT_ACCEPT_ENCODING, MAX_DECODED_BODY_BYTES};
use messages::{error_chain, read_excerpt, status_message};
use stream::Stream;
pub use tls::{TlsError, TlsOptions};
pub use tokens::Tokenizer;

use crate::metrics::{Failure, FailureKind, Outcome, RequestRecord, TokenSource};
use crate::sse::SseParser;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

/// Per-phase time limits of a request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Opening a connection (TCP and TLS).
    #[serde(with = "humantime_serde_compat")]
    pub connect: Duration,
    /// From start to the response headers.
    #[serde(with = "humantime_serde_compat")]
    pub first_byte: Duration,
    /// Longest silence between two reads of the body.
    #[serde(with = "humantime_serde_compat")]
    pub idle: Duration,
    /// Whole request, from start to end of body.
    #[serde(with = "humantime_serde_compat")]
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// Durations as humantime strings ("1m 30s") in JSON plans.
pub mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Serializes as a humantime string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Parses a humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// A request kind, prepared once: method, path, headers; the body comes per request.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: Method,
    /// Origin-form path (base path of the target included).
    pub path: String,
    /// Headers sent with every request (Authorization marked sensitive).
    pub headers: HeaderMap,
    /// Whether the response is an SSE chat stream (else any 2xx body succeeds).
    pub streaming: bool,
}

impl RequestSpec {
    /// The seed's headers: JSON content type, `Accept: */*` and the Bearer token if any.
    pub fn new(
        target: &Target,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        streaming: bool,
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, target.authority.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        if let Some(a) = auth {
            headers.insert(AUTHORIZATION, a.clone());
        }
        Self {
            method,
            path: format!("{}{}", target.base_path, path),
            headers,
            streaming,
        }
    }
}

/// Builds the `Authorization: Bearer` header value, marked sensitive so hyper never logs it.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Settings shared by all users of a run.
#[derive(Debug)]
pub struct ClientShared {
    /// Where requests go.
    pub target: Target,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Skip events that are not valid JSON instead of failing the request.
    pub lenient: bool,
    /// Fallback token counter.
    pub tokenizer: Tokenizer,
    /// Secret to scrub from any message derived from server data.
    pub secret: Option<String>,
}

/// One user's connection and reusable buffers.
pub struct UserClient {
    shared: Arc<ClientShared>,
    /// The keep-alive connection and its driver, polled only while this user has a request out.
    conn: Option<(SendRequest<Full<Bytes>>, ConnDriver)>,
    parser: SseParser,
    /// Inter-token gaps of the last request, µs.
    pub itl_us: Vec<u32>,
    text: String,
}

impl UserClient {
    /// A client with no connection yet.
    pub fn new(shared: Arc<ClientShared>) -> Self {
        Self {
            shared,
            conn: None,
            parser: SseParser::new(),
            itl_us: Vec::new(),
            text: String::new(),
        }
    }

    /// Text (content and reasoning) received by the last request.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Sends one request of kind `kind` and reads its whole response.
    /// Sends one request of kind `kind` and reads its whole response.
    pub async fn execute(&mut self, kind: usize, spec: &RequestSpec, body: Bytes) -> RequestRecord {
        self.itl_us.clear();
        self.text.clear();
        self.parser.reset();
        let mut connect = None;
        let (mut sender, mut driver) = match self.conn.take() {
            Some(c) if !c.0.is_closed() => c,
            _ => match Self::open(&self.shared, kind).await {
                Ok((c, took)) => {
                    connect = Some(took);
                    c
                }
                Err(rec) => return rec,
            },
        };
        let mut alive = true;
        if drive(&mut driver, &mut alive, sender.ready())
            .await
            .is_err()
        {
            // The server closed the idle keep-alive connection: open a fresh one.
            (sender, driver) = match Self::open(&self.shared, kind).await {
                Ok((c, took)) => {
                    connect = Some(took);
                    c
                }
                Err(rec) => return rec,
            };
            alive = true;
            if drive(&mut driver, &mut alive, sender.ready())
                .await
                .is_err()
            {
                return fail_now(
                    kind,
                    Instant::now(),
                    Failure::new(
                        FailureKind::Connect,
                        "Request failed: the new connection closed at once",
                    ),
                );
            }
        }
        let (rec, reusable) = drive(
            &mut driver,
            &mut alive,
            self.exchange(kind, spec, body, &mut sender, connect),
        )
        .await;
        if reusable && alive {
            self.conn = Some((sender, driver));
        }
        rec
    }

    /// Opens a connection within the connect time limit; a failure is a finished record.
    async fn open(
        shared: &ClientShared,
        kind: usize,
    ) -> Result<((SendRequest<Full<Bytes>>, ConnDriver), Duration), RequestRecord> {
        let limit = shared.timeouts.connect;
        let began = Instant::now();
        match tokio::time::timeout(limit, shared.target.connect()).await {
            Ok(Ok(c)) => Ok((c, began.elapsed())),
            Ok(Err(e)) => Err(fail_now(
                kind,
                began,
                Failure::new(e.failure_kind(), format!("Request failed: {e}")),
            )),
            Err(_) => Err(fail_now(
                kind,
                began,
                Failure::new(
                    FailureKind::Timeout,
                    format!("Request failed: connect timed out after {}", fmt_d(limit)),
                ),
            )),
        }
    }

    /// Writes the request and reads the response; returns the record and whether the
    /// connection may carry another request.
    async fn exchange(
        &mut self,
        kind: usize,
        spec: &RequestSpec,
        body: Bytes,
        sender: &mut SendRequest<Full<Bytes>>,
        connect: Option<Duration>,
    ) -> (RequestRecord, bool) {
        let t = self.shared.timeouts;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = spec.method.clone();
        *req.uri_mut() = match spec.path.parse() {
            Ok(u) => u,
            Err(_) => {
                let msg = format!("Request failed: invalid path '{}'", spec.path);
                let f = Failure::new(FailureKind::Internal, msg);
                return (fail_now(kind, Instant::now(), f), true);
            }
        };
        *req.headers_mut() = spec.headers.clone();

        let start = Instant::now();
        let total_deadline = start + t.total;
        let mut rec = RequestRecord::bare(kind, start, start, Outcome::Success);
        rec.connect = connect;
        let headers_deadline = (start + t.first_byte).min(total_deadline);
        let resp = match timeout_at(headers_deadline.into(), sender.send_request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let f = Failure::new(
                    FailureKind::Connect,
                    format!("Request failed: {}", error_chain(&e)),
                );
                return (self.finish_fail(rec, f), false);
            }
            Err(_) => {
                let which = if headers_deadline == total_deadline {
                    "total"
                } else {
                    "first byte"
                };
                let limit = if which == "total" {
                    t.total
                } else {
                    t.first_byte
                };
                let msg = format!(
                    "Request failed: timed out waiting for response headers ({which} limit {})",
                    fmt_d(limit)
                );
                let f = Failure::new(FailureKind::Timeout, msg);
                return (self.finish_fail(rec, f), false);
            }
        };
        let now = Instant::now();
        rec.headers = Some(now);
        let status = resp.status();
        rec.status = Some(status.as_u16());
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let encoding = Encoding::from_header(resp.headers());
        let mut body = resp.into_body();

        if !status.is_success() {
            let deadline = now + t.idle.min(Duration::from_secs(5));
            let excerpt = read_excerpt(&mut body, deadline, 2048, encoding.ok().flatten()).await;
            rec.content_bytes = excerpt.len() as u64;
            let msg = status_message(status.as_u16(), &excerpt, spec);
            let f = Failure::new(FailureKind::HttpStatus, msg);
            rec.end = Instant::now();
            rec.outcome = Outcome::Failure(self.redact(f));
            return (rec, !sender.is_closed());
        }

        let mut stream = Stream {
            now,
            first_event: None,
            first_token: None,
            last_token: None,
            token_events: 0,
            usage_tokens: None,
            done_at: None,
            failure: None,
            lenient: self.shared.lenient,
            itl_us: &mut self.itl_us,
            text: &mut self.text,
            text_truncated: false,
        };
        let mut reusable = true;
        let mut transport_failure = None;
        let mut decoder = match encoding.and_then(|e| e.map(BodyDecoder::new).transpose()) {
            Ok(d) => d,
            Err(e) if spec.streaming => {
                let f = Failure::new(FailureKind::MalformedEvent, e.to_string());
                return (self.finish_fail(rec, f), false);
            }
            // Any 2xx body succeeds for a non-streaming kind; it is drained, not decoded.
            Err(_) => None,
        };
        // One timer for the whole body, moved only when it fires early: re-arming it on every
        // read would cost a timer-wheel update per SSE chunk.
        let timer = tokio::time::sleep_until((stream.now + t.idle).min(total_deadline).into());
        tokio::pin!(timer);
        loop {
            let frame = tokio::select! {
                biased;
                f = body.frame() => f,
                () = &mut timer => {
                    let idle_deadline = (stream.now + t.idle).min(total_deadline);
                    if Instant::now() < idle_deadline {
                        timer.as_mut().reset(idle_deadline.into());
                        continue;
                    }
                    reusable = false;
                    transport_failure = Some(Failure::new(
                        FailureKind::Timeout,
                        if idle_deadline == total_deadline {
                            format!("Request failed: total time limit {} exceeded", fmt_d(t.total))
                        } else {
                            format!("Request failed: no data for {} (idle limit)", fmt_d(t.idle))
                        },
                    ));
                    break;
                }
            };
            let frame = match frame {
                Some(Ok(f)) => f,
                None => {
                    // What a decoder still holds (a server that never flushed) is the rest.
                    if let Some(d) = decoder.as_mut().filter(|_| {
                        spec.streaming && stream.done_at.is_none() && stream.failure.is_none()
                    }) {
                        let fed = d.finish(|chunk| feed(&mut self.parser, &mut stream, chunk));
                        decode_failed(&mut stream, fed);
                    }
                    break;
                }
                Some(Err(e)) => {
                    reusable = false;
                    transport_failure = Some(Failure::new(
                        FailureKind::IncompleteStream,
                        format!(
                            "Request failed: connection closed mid-stream ({})",
                            error_chain(&e)
                        ),
                    ));
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            stream.now = Instant::now();
            rec.content_bytes += data.len() as u64;
            if !spec.streaming || stream.done_at.is_some() || stream.failure.is_some() {
                // Drain what follows [DONE] so the connection stays reusable.
                continue;
            }
            match decoder.as_mut() {
                None => {
                    let _ = feed(&mut self.parser, &mut stream, &data);
                }
                Some(d) => {
                    let fed = d.decode(data, |chunk| feed(&mut self.parser, &mut stream, chunk));
                    decode_failed(&mut stream, fed);
                }
            }
            if stream.failure.is_some() {
                // Do not wait for the rest of a stream we already failed.
                reusable = false;
                break;
            }
        }
        rec.end = stream.done_at.unwrap_or(stream.now);
        rec.first_event = stream.first_event;
        rec.first_token = stream.first_token;
        rec.last_token = stream.last_token;
        rec.token_events = stream.token_events;
        let usage_tokens = stream.usage_tokens;
        let text_truncated = stream.text_truncated;
        let done = stream.done_at.is_some();
        let stream_failure = stream.failure.take();
        let failure = if let Some(f) = stream_failure.or(transport_failure) {
            Some(f)
        } else if !spec.streaming {
            None
        } else if !done {
            Some(if rec.first_event.is_none() && !is_sse {
                Failure::new(FailureKind::MalformedEvent, "Response was not an SSE stream (no data events; expected Content-Type text/event-stream)")
            } else if rec.first_event.is_none() {
                Failure::new(
                    FailureKind::IncompleteStream,
                    "Stream ended without any event",
                )
            } else {
                Failure::new(FailureKind::IncompleteStream, "Stream ended without [DONE]")
            })
        } else if rec.token_events == 0 {
            Some(Failure::new(
                FailureKind::NoTokens,
                "Completion had no tokens",
            ))
        } else {
            None
        };
        if let Some(f) = failure {
            rec.outcome = Outcome::Failure(self.redact(f));
            return (rec, reusable);
        }
        if spec.streaming {
            let counted = match usage_tokens {
                Some(n) => Some((n, TokenSource::Usage)),
                // Past the kept-text limit a tokenizer count would be short: count events.
                None if text_truncated => None,
                None => {
                    let text = std::mem::take(&mut self.text);
                    let (n, text) = self.shared.tokenizer.count_off_thread(text).await;
                    self.text = text;
                    n.map(|n| (n, TokenSource::Tokenizer))
                }
            };
            rec.output_tokens =
                Some(counted.unwrap_or((u64::from(rec.token_events), TokenSource::Events)));
        }
        (rec, reusable)
    }
    fn finish_fail(&mut self, mut rec: RequestRecord, f: Failure) -> RequestRecord {
        rec.end = Instant::now();
        rec.outcome = Outcome::Failure(self.redact(f));
        rec
    }

    fn redact(&self, mut f: Failure) -> Failure {
        if let Some(s) = &self.shared.secret {
            if !s.is_empty() && f.message.contains(s.as_str()) {
                f.message = f.message.replace(s.as_str(), "[redacted]");
            }
        }
        f
    }
}

fn fail_now(kind: usize, began: Instant, f: Failure) -> RequestRecord {
    // Connection failures have no request start; they are timed from the connect attempt.
    RequestRecord::bare(kind, began, Instant::now(), Outcome::Failure(f))
}

fn fmt_d(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Feeds SSE bytes (as received, or decoded) to the parser; an event or line past the parser's
/// limit fails the request as too large (and the connection is then dropped).
fn feed(parser: &mut SseParser, stream: &mut Stream<'_>, bytes: &[u8]) -> ControlFlow<()> {
    match parser.feed(bytes, |ev| stream.on_event(ev.data)) {
        Ok(flow) => flow,
        Err(e) => {
            let f = Failure::new(FailureKind::TooLarge, format!("Response too large: {e}"));
            stream.failure = Some(f);
            ControlFlow::Break(())
        }
    }
}

/// Records a decoding failure of the body as the request's failure.
fn decode_failed(stream: &mut Stream<'_>, fed: Result<ControlFlow<()>, DecodeError>) {
    if let Err(e) = fed {
        let kind = match e {
            DecodeError::TooLarge { .. } => FailureKind::TooLarge,
            DecodeError::Unsupported(_) | DecodeError::Corrupt { .. } => {
                FailureKind::MalformedEvent
            }
        };
        stream
            .failure
            .get_or_insert(Failure::new(kind, e.to_string()));
    }
}

/// Awaits `fut` while also driving the connection, so the request makes progress on this task
/// alone. If the connection ends first, `alive` turns false and `fut` is awaited on its own
/// (it then fails promptly, its channel to the connection being closed).
async fn drive<F: std::future::Future>(
    driver: &mut ConnDriver,
    alive: &mut bool,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return out,
            () = driver.as_mut(), if *alive => *alive = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_sensitive() {
        let v = bearer("sk-abc").unwrap();
        assert!(v.is_sensitive());
        assert!(bearer("bad\ntoken").is_none());
    }
}
