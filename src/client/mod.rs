//! One simulated user's HTTP client: sends a request, stamps the moments bytes arrive, feeds
//! the SSE parser, and turns what happened into a [`RequestRecord`]. A failed request is data
//! (an [`Outcome::Failure`] with a message naming the cause), never an error or a panic.
//!
//! Each failure kind is made in one place, by the phase that meets it: connecting in `conn`
//! (`connect`, `tls`, `local_resource`), the response head in `head` (`http_status`, and every
//! `timeout` by phase), the body in `stream` (`stream_error`, `malformed_event`,
//! `incomplete_stream`, `too_large`, `no_tokens`).

mod body;
pub mod chunk;
mod conn;
mod decode;
pub mod events;
mod head;
mod messages;
mod signin;
mod stream;
mod tls;
mod tokens;

use chunk::ChunkReader;
use conn::Conn;
pub use conn::{is_local_resource, ConnDriver, ConnectError, Target, TargetError};
pub use decode::{DecodeError, Encoding, DEFAULT_ACCEPT_ENCODING, MAX_DECODED_BODY_BYTES};
pub use events::Wire;
use stream::{Buffers, Counted, Stream};
pub use tls::TlsError;
// The plan owns these options; re-exported where they are applied.
pub use crate::config::{Timeouts, TlsOptions};
pub use signin::sign_in;
pub use tokens::Tokenizer;

use crate::metrics::{Failure, FailureKind, Outcome, RequestRecord, TokenSource};
use crate::sse::SseParser;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The stream's event format.
    pub wire: Wire,
    /// `path` parsed once (None if it is not a valid origin-form path), so no request parses it.
    uri: Option<Uri>,
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
        let path = format!("{}{}", target.base_path, path);
        Self {
            method,
            uri: path.parse().ok(),
            path,
            headers,
            streaming,
            wire: Wire::Chat,
        }
    }

    /// The same spec for an API speaking `wire`. The Anthropic Messages API takes the token in
    /// `x-api-key` (not `Authorization`) and wants an `anthropic-version`: the token moves from
    /// the one header to the other, so it still goes only where the plan allowed a token.
    pub fn for_wire(mut self, wire: Wire) -> Self {
        self.wire = wire;
        if wire == Wire::Anthropic {
            if let Some(auth) = self.headers.remove(AUTHORIZATION) {
                let key = auth.as_bytes().strip_prefix(b"Bearer ").unwrap_or(b"");
                if let Ok(mut v) = HeaderValue::from_bytes(key) {
                    v.set_sensitive(true);
                    self.headers.insert(X_API_KEY, v);
                }
            }
            self.headers.insert(
                ANTHROPIC_VERSION,
                HeaderValue::from_static(ANTHROPIC_VERSION_VALUE),
            );
        }
        self
    }

    /// The request carrying `body`; None if the path is not a valid URI path.
    fn request(&self, body: Bytes) -> Option<Request<Full<Bytes>>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone()?;
        *req.headers_mut() = self.headers.clone();
        Some(req)
    }
}

/// Anthropic's API-key header.
pub const X_API_KEY: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("x-api-key");
/// Anthropic's API-version header.
pub const ANTHROPIC_VERSION: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("anthropic-version");
/// The `anthropic-version` sent (the current stable version of the Messages API).
pub const ANTHROPIC_VERSION_VALUE: &str = "2023-06-01";

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
    conn: Option<Conn>,
    parser: SseParser,
    chunks: ChunkReader,
    /// Inter-token gaps of the last request, µs.
    pub itl_us: Vec<u32>,
    text: String,
    reasoning: String,
    /// `--accounts`: this user's own token, sent instead of the spec's (to the same host).
    account: Option<crate::config::Secret>,
}

impl UserClient {
    /// A client with no connection yet.
    pub fn new(shared: Arc<ClientShared>) -> Self {
        Self {
            shared,
            conn: None,
            parser: SseParser::new(),
            chunks: ChunkReader::new(),
            itl_us: Vec::new(),
            text: String::new(),
            reasoning: String::new(),
            account: None,
        }
    }

    /// Sends `token` (an account's own, from [`sign_in`] at the same host) instead of the
    /// plan's token on this client's requests; also scrubbed from failure messages.
    pub fn set_account_token(&mut self, token: Option<crate::config::Secret>) {
        self.account = token;
    }

    /// The request of `spec` with `body`, carrying this user's account token if it has one.
    fn request_for(&self, spec: &RequestSpec, body: Bytes) -> Option<Request<Full<Bytes>>> {
        let mut req = spec.request(body)?;
        if let Some(token) = &self.account {
            let h = req.headers_mut();
            if spec.wire == Wire::Anthropic {
                if let Ok(mut v) = HeaderValue::from_str(token.expose()) {
                    v.set_sensitive(true);
                    h.insert(X_API_KEY, v);
                }
            } else if let Some(v) = bearer(token.expose()) {
                h.insert(AUTHORIZATION, v);
            }
        }
        Some(req)
    }

    /// Answer text received by the last request (its reasoning is apart).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Sends one request of kind `kind` and reads its whole response.
    pub async fn execute(&mut self, kind: usize, spec: &RequestSpec, body: Bytes) -> RequestRecord {
        self.itl_us.clear();
        self.text.clear();
        self.reasoning.clear();
        self.parser.reset();
        let request_bytes = body.len() as u64;
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
                return fail_now(kind, Instant::now(), conn::closed_at_once());
            }
        }
        let (mut rec, reusable) = drive(
            &mut driver,
            &mut alive,
            self.exchange(kind, spec, body, &mut sender, connect),
        )
        .await;
        rec.request_bytes = request_bytes;
        if reusable && alive {
            self.conn = Some((sender, driver));
        }
        rec
    }

    /// Opens a connection within the connect time limit; a failure is a finished record.
    async fn open(shared: &ClientShared, kind: usize) -> Result<(Conn, Duration), RequestRecord> {
        let began = Instant::now();
        conn::open(&shared.target, shared.timeouts.connect)
            .await
            .map_err(|f| fail_now(kind, began, f))
    }

    /// Writes the request and reads the response; returns the record and whether the
    /// connection may carry another request. Each phase makes its own failures: the head
    /// (`head`), the body (`body` and `stream`); connecting came before (`conn`).
    async fn exchange(
        &mut self,
        kind: usize,
        spec: &RequestSpec,
        body: Bytes,
        sender: &mut SendRequest<Full<Bytes>>,
        connect: Option<Duration>,
    ) -> (RequestRecord, bool) {
        let t = self.shared.timeouts;
        let Some(req) = self.request_for(spec, body) else {
            let msg = format!("Request failed: invalid path '{}'", spec.path);
            let f = Failure::new(FailureKind::Internal, msg);
            return (fail_now(kind, Instant::now(), f), true);
        };
        let start = Instant::now();
        let mut rec = RequestRecord::bare(kind, start, start, Outcome::Success);
        rec.connect = connect;
        let resp = match head::send(sender, req, start, &t).await {
            Ok(r) => r,
            Err(f) => return (self.finish_fail(rec, f), false),
        };
        let now = Instant::now();
        rec.headers = Some(now);
        let (parts, mut body) = resp.into_parts();
        rec.status = Some(parts.status.as_u16());
        let encoding = Encoding::from_header(&parts.headers);

        if !parts.status.is_success() {
            let coding = encoding.ok().flatten();
            let (f, bytes) =
                head::status_failure(parts.status, &mut body, coding, now, t.idle, spec).await;
            rec.content_bytes = bytes;
            rec.end = Instant::now();
            rec.outcome = Outcome::Failure(self.redact(f));
            return (rec, !sender.is_closed());
        }
        let is_sse = parts
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let decoder = match body::decoder(encoding, spec.streaming) {
            Ok(d) => d,
            Err(f) => return (self.finish_fail(rec, f), false),
        };
        let reader = body::Reader {
            parser: &mut self.parser,
            decoder,
            timeouts: t,
            total_deadline: start + t.total,
            streaming: spec.streaming,
        };
        let buffers = Buffers {
            itl_us: &mut self.itl_us,
            text: &mut self.text,
            reasoning: &mut self.reasoning,
            chunks: &mut self.chunks,
        };
        let mut stream = Stream::new(now, self.shared.lenient, spec.wire, buffers);
        let reusable = reader
            .read(&mut body, &mut stream, &mut rec.content_bytes)
            .await;
        let counted = match stream.finish(&mut rec, spec.streaming, is_sse) {
            Ok(c) => c,
            Err(f) => {
                rec.outcome = Outcome::Failure(self.redact(f));
                return (rec, reusable);
            }
        };
        if spec.streaming {
            let (output, reasoning) = self.count_tokens(&counted, rec.token_events).await;
            rec.output_tokens = Some(output);
            rec.reasoning_tokens = reasoning;
        }
        (rec, reusable)
    }

    /// The output-token count of a successful stream and its source: the server's usage, else
    /// a tokenizer count of the kept text (off the I/O thread), else the token events. Also the
    /// reasoning tokens among them (None when the stream did not reason): the server's count
    /// when sent, else counted the same way from the reasoning text.
    async fn count_tokens(
        &mut self,
        counted: &Counted,
        token_events: u32,
    ) -> ((u64, TokenSource), Option<u64>) {
        let reasoned = counted.reasoning_events > 0;
        let by_events = (u64::from(token_events), TokenSource::Events);
        let reasoning_events = reasoned.then_some(u64::from(counted.reasoning_events));
        let told = counted.usage_reasoning.filter(|&n| n > 0 || reasoned);
        if let Some(n) = counted.usage_tokens {
            let reasoning = match told {
                Some(r) => Some(r),
                None if reasoned && !counted.text_truncated => Some(
                    self.count(true)
                        .await
                        .unwrap_or(u64::from(counted.reasoning_events)),
                ),
                None => reasoning_events,
            };
            return ((n, TokenSource::Usage), reasoning.map(|r| r.min(n)));
        }
        // Past the kept-text limit a tokenizer count would be short: count events.
        if counted.text_truncated {
            return (by_events, told.or(reasoning_events));
        }
        let Some(answer) = self.count(false).await else {
            return (by_events, told.or(reasoning_events));
        };
        let reasoning = match reasoned {
            true => self.count(true).await,
            false => Some(0),
        };
        match reasoning {
            Some(r) => (
                (answer + r, TokenSource::Tokenizer),
                told.or(reasoned.then_some(r)),
            ),
            None => (by_events, told.or(reasoning_events)),
        }
    }

    /// A tokenizer count (off the I/O thread) of the kept answer or reasoning text.
    async fn count(&mut self, reasoning: bool) -> Option<u64> {
        let buf = if reasoning {
            &mut self.reasoning
        } else {
            &mut self.text
        };
        let text = std::mem::take(buf);
        let (n, text) = self.shared.tokenizer.count_off_thread(text).await;
        if reasoning {
            self.reasoning = text;
        } else {
            self.text = text;
        }
        n
    }

    fn finish_fail(&mut self, mut rec: RequestRecord, f: Failure) -> RequestRecord {
        rec.end = Instant::now();
        rec.outcome = Outcome::Failure(self.redact(f));
        rec
    }

    fn redact(&self, mut f: Failure) -> Failure {
        let account = self.account.as_ref().map(|t| t.expose());
        for s in [self.shared.secret.as_deref(), account]
            .into_iter()
            .flatten()
        {
            if !s.is_empty() && f.message.contains(s) {
                f.message = f.message.replace(s, "[redacted]");
            }
        }
        f
    }
}

fn fail_now(kind: usize, began: Instant, f: Failure) -> RequestRecord {
    // Connection failures have no request start; they are timed from the connect attempt.
    RequestRecord::bare(kind, began, Instant::now(), Outcome::Failure(f))
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
