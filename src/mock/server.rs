//! The mock's HTTP server: accept loop, per-connection hyper tasks, routing and chat handling.
//!
//! Built on hyper's http1 server directly rather than axum: the mock shares two cores with the
//! load generator in benchmarks, and skipping the router and tower layers saves work per request
//! on the one path that matters (a handful of fixed routes is a `match`).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::accounts::SIGNIN;
use super::body::{Compressed, MockBody, SseStream, StreamFault, StreamPlan, Whole};
use super::compress::Encoder;
use super::counters::{bump, Counters, Outcome};
use super::dialect::Api;
use super::render::{Dialect, Finish, RenderCache, Rendered, MALFORMED};
use super::request::{ChatRequest, Directives, Scenario};
use super::MockConfig;

/// Largest request body read; Open WebUI's bodies are a few KiB, long-context prompts far less than this.
const MAX_BODY: usize = 16 << 20;

/// Longest completion served as one pre-rendered buffer (about 1 MB).
const MAX_WHOLE_TOKENS: u32 = 4096;

/// State shared by every connection of one server.
struct Shared {
    config: MockConfig,
    counters: Arc<Counters>,
    /// `Bearer <token>`, compared with the raw header bytes.
    auth: Option<Vec<u8>>,
    renders: RenderCache,
    capacity: Option<Arc<Semaphore>>,
    /// SplitMix64 state for fault draws: one shared atomic is cheap, lock-free, and makes the
    /// sequence of draws reproducible from `seed` (which request gets which draw depends on timing).
    rng: AtomicU64,
    faults_on: bool,
    openai_models: Bytes,
    openwebui_models: Bytes,
}

impl Shared {
    fn new(config: MockConfig, counters: Arc<Counters>) -> Self {
        let names: Vec<&str> = if config.models.is_empty() {
            vec!["mock"]
        } else {
            config.models.iter().map(String::as_str).collect()
        };
        let openai_models = serde_json::json!({
            "object": "list",
            "data": names.iter().map(|m| serde_json::json!({
                "id": m, "object": "model", "created": 0, "owned_by": "gsai-load-mock",
            })).collect::<Vec<_>>(),
        });
        let openwebui_models = serde_json::json!({
            "data": names.iter().map(|m| serde_json::json!({
                "id": m, "name": m, "object": "model", "owned_by": "openai",
            })).collect::<Vec<_>>(),
        });
        let f = &config.faults;
        super::accounts::Issued::install(&counters, &config.accounts);
        Shared {
            auth: config
                .token
                .as_ref()
                .map(|t| format!("Bearer {t}").into_bytes()),
            renders: RenderCache::default(),
            capacity: config
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
            rng: AtomicU64::new(config.seed.unwrap_or_else(rand::random)),
            faults_on: [f.http_500, f.http_429, f.drop, f.malformed, f.stream_error]
                .iter()
                .any(|p| *p > 0.0),
            openai_models: Bytes::from(openai_models.to_string()),
            openwebui_models: Bytes::from(openwebui_models.to_string()),
            config,
            counters,
        }
    }

    /// A uniform draw in [0, 1) from the shared SplitMix64 sequence.
    fn draw(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let issued = self.counters.accounts.get_or_init(Default::default);
        match &self.auth {
            _ if issued.admits(req.headers()) => true,
            None => !issued.any(),
            Some(expected) => {
                let h = req.headers();
                h.get(AUTHORIZATION)
                    .is_some_and(|v| v.as_bytes() == expected.as_slice())
                    // Anthropic's API key header carries the bare token.
                    || h.get("x-api-key").is_some_and(|v| {
                        expected.strip_prefix(b"Bearer ") == Some(v.as_bytes())
                    })
            }
        }
    }
}

/// Per-connection memo: the last model's rendered chunks and the last zero-delay body, so a
/// keep-alive client repeating one request touches no shared lock and renders nothing.
#[derive(Default)]
struct ConnCache {
    rendered: Option<Arc<Rendered>>,
    whole: Option<(WholeKey, Bytes, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct WholeKey {
    tokens: u32,
    reasoning: u32,
    finish: Finish,
    usage: Option<u32>,
}

impl ConnCache {
    fn rendered(&mut self, shared: &Shared, model: &str, dialect: Dialect) -> Arc<Rendered> {
        match &self.rendered {
            Some(r) if &*r.model == model && r.dialect == dialect => Arc::clone(r),
            _ => {
                let r = shared.renders.get(model, dialect);
                self.rendered = Some(Arc::clone(&r));
                self.whole = None;
                r
            }
        }
    }

    fn whole(&mut self, r: &Rendered, key: WholeKey) -> (Bytes, u64) {
        if let Some((k, data, events)) = &self.whole {
            if *k == key {
                return (data.clone(), *events);
            }
        }
        let (data, events) = r.full_stream(key.tokens, key.reasoning, key.finish, key.usage);
        self.whole = Some((key, data.clone(), events));
        (data, events)
    }
}

/// Serves until `shutdown` is cancelled, then aborts every connection and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    config: MockConfig,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let shared = Arc::new(Shared::new(config, counters));
    // A JoinSet rather than detached tasks so shutdown can abort connections without each one
    // polling the token on every wake-up.
    let mut conns = JoinSet::new();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut cancelled => break,
            r = listener.accept() => r,
        };
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _)) => {
                conns.spawn(serve_connection(Arc::clone(&shared), stream));
            }
            // Accept errors are per connection (reset before accept) or transient (out of file
            // descriptors until some connection closes): keep serving, after a pause in the latter
            // case so the loop does not spin.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(_) => {
                tokio::select! {
                    () = &mut cancelled => break,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        }
    }
    conns.shutdown().await;
    Ok(())
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    // Without NODELAY, Nagle holds each small token chunk until the previous one is acked, which
    // with delayed acks adds up to 40 ms of fake inter-token latency.
    let _ = stream.set_nodelay(true);
    let cache = Arc::new(Mutex::new(ConnCache::default()));
    let svc = service_fn(move |req| handle(Arc::clone(&shared), Arc::clone(&cache), req));
    // Errors here are the client's doing (reset, bad HTTP) or an injected drop: nothing to report.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

async fn handle(
    shared: Arc<Shared>,
    cache: Arc<Mutex<ConnCache>>,
    req: Request<Incoming>,
) -> io::Result<Response<MockBody>> {
    let api = match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/chat/completions") => Api::OpenWebUi,
        (&Method::POST, "/v1/chat/completions") => Api::OpenAi,
        (&Method::POST, "/v1/completions") => Api::Completions,
        (&Method::POST, "/v1/responses") => Api::Responses,
        (&Method::POST, "/v1/messages") => Api::Anthropic,
        (&Method::POST, "/v1/embeddings") => Api::Embeddings,
        (&Method::POST, SIGNIN) => return Ok(super::accounts::sign_in(&shared.counters, req).await),
        _ => return Ok(other(&shared, &req)),
    };
    bump(&shared.counters.requests);
    chat(&shared, &cache, api, req).await
}

/// Every non-chat route. Model lists need the token, as on the real servers; health and the
/// mock's own counters do not, so a harness can always read them.
fn other(shared: &Shared, req: &Request<Incoming>) -> Response<MockBody> {
    bump(&shared.counters.other_requests);
    let path = req.uri().path();
    let get = req.method() == Method::GET;
    match path {
        "/health" if get => json(StatusCode::OK, Bytes::from_static(b"{\"status\":true}")),
        "/mock/counters" if get => {
            let snap = shared.counters.snapshot();
            json(
                StatusCode::OK,
                serde_json::to_vec(&snap).unwrap_or_default(),
            )
        }
        // vLLM-style series of what the mock really did (no token, as vLLM's own /metrics).
        "/metrics" if get => {
            let mut res = Response::new(MockBody::full(super::metrics::render(
                &shared.counters,
                &shared.config,
            )));
            res.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        "/v1/models" | "/api/models" if get && !shared.authorized(req) => unauthorized(),
        "/v1/models" if get => json(StatusCode::OK, shared.openai_models.clone()),
        "/api/models" if get => json(StatusCode::OK, shared.openwebui_models.clone()),
        "/health"
        | "/metrics"
        | "/mock/counters"
        | "/v1/models"
        | "/api/models"
        | "/api/chat/completions"
        | "/v1/chat/completions"
        | "/v1/completions"
        | "/v1/responses"
        | "/v1/messages"
        | "/v1/embeddings" => json(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"{\"detail\":\"Method Not Allowed\"}"),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"{\"detail\":\"Not Found\"}"),
        ),
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn detail(status: StatusCode, msg: &str) -> Response<MockBody> {
    json(status, serde_json::json!({ "detail": msg }).to_string())
}

fn unauthorized() -> Response<MockBody> {
    json(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(b"{\"detail\":\"401 Unauthorized\"}"),
    )
}

/// FastAPI's 422 shape, which Open WebUI (and vLLM) answer for a body they cannot parse.
fn unprocessable(err: &serde_json::Error) -> Response<MockBody> {
    let kind = match err.classify() {
        serde_json::error::Category::Data if err.to_string().starts_with("missing field") => {
            "missing"
        }
        serde_json::error::Category::Data => "type_error",
        _ => "json_invalid",
    };
    let body = serde_json::json!({
        "detail": [{ "type": kind, "loc": ["body"], "msg": err.to_string(), "input": null }]
    });
    json(StatusCode::UNPROCESSABLE_ENTITY, body.to_string())
}

/// FastAPI's 422 for a required field the body lacks.
fn missing(field: &str) -> Response<MockBody> {
    let body = serde_json::json!({
        "detail": [{ "type": "missing", "loc": ["body", field], "msg": "Field required", "input": null }]
    });
    json(StatusCode::UNPROCESSABLE_ENTITY, body.to_string())
}

fn model_not_found(api: Api, model: &str) -> Response<MockBody> {
    match api {
        Api::OpenWebUi => detail(StatusCode::BAD_REQUEST, "Model not found"),
        Api::Anthropic => {
            let body = serde_json::json!({"type": "error", "error": {
                "type": "not_found_error", "message": format!("model: {model}"),
            }});
            json(StatusCode::NOT_FOUND, body.to_string())
        }
        _ => {
            let body = serde_json::json!({ "error": {
                "message": format!("The model `{model}` does not exist or you do not have access to it."),
                "type": "invalid_request_error", "param": "model", "code": "model_not_found",
            }});
            json(StatusCode::NOT_FOUND, body.to_string())
        }
    }
}

async fn chat(
    shared: &Shared,
    cache: &Mutex<ConnCache>,
    api: Api,
    req: Request<Incoming>,
) -> io::Result<Response<MockBody>> {
    // From here on the request ends in exactly one outcome counter; if this future is dropped
    // (client gone, server shut down) the guard records `client_aborted`.
    let mut outcome = Outcome::new(Arc::clone(&shared.counters));
    if !shared.authorized(&req) {
        outcome.settle(|c| &c.unauthorized);
        return Ok(unauthorized());
    }
    let directives = match Directives::from_headers(req.headers()) {
        Ok(d) => d,
        Err(msg) => {
            outcome.settle(|c| &c.bad_request);
            return Ok(detail(StatusCode::BAD_REQUEST, &msg));
        }
    };
    let coding = shared.config.compress.choose(req.headers());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            outcome.settle(|c| &c.bad_request);
            return Ok(detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ));
        }
        // The client broke off mid-body; the dropped guard counts it as aborted.
        Err(e) => return Err(io::Error::other(e)),
    };
    let parsed: ChatRequest<'_> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            outcome.settle(|c| &c.bad_request);
            return Ok(unprocessable(&e));
        }
    };
    let present = match api.prompt_field() {
        "messages" => parsed.messages.is_some(),
        "prompt" => parsed.prompt.is_some(),
        _ => parsed.input.is_some(),
    };
    if !present {
        outcome.settle(|c| &c.bad_request);
        return Ok(missing(api.prompt_field()));
    }
    let config = &shared.config;
    if !config.models.is_empty() && !config.models.iter().any(|m| *m == parsed.model) {
        outcome.settle(|c| &c.bad_request);
        return Ok(model_not_found(api, &parsed.model));
    }
    // Open WebUI 0.6.22+ takes any chat_id without the `local:` prefix for a saved chat and
    // answers 404 when it does not exist, which a fresh uuid never does.
    let saved_chat = parsed
        .chat_id
        .as_deref()
        .is_some_and(|id| !id.is_empty() && !id.starts_with("local:"));
    if api == Api::OpenWebUi && config.strict_chat_id && saved_chat {
        outcome.settle(|c| &c.not_found);
        return Ok(detail(
            StatusCode::NOT_FOUND,
            "We could not find what you're looking for :/",
        ));
    }
    let scenario = directives.scenario.unwrap_or_else(|| {
        if shared.faults_on {
            Scenario::draw(&config.faults, shared.draw())
        } else {
            Scenario::Ok
        }
    });
    let fault = match scenario {
        Scenario::Http500 => {
            outcome.settle(|c| &c.http_500);
            return Ok(detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ));
        }
        Scenario::Http429 => {
            outcome.settle(|c| &c.http_429);
            let mut res = detail(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(res);
        }
        Scenario::Ok => StreamFault::None,
        Scenario::Drop => StreamFault::Drop,
        Scenario::Malformed => StreamFault::Malformed,
        Scenario::StreamError => StreamFault::StreamError,
    };

    let mut tokens = directives.tokens.unwrap_or(config.tokens);
    let mut finish = Finish::Stop;
    if let Some(max) = parsed.max_tokens().filter(|m| *m < tokens) {
        tokens = max;
        finish = Finish::Length;
    }
    let usage = match api {
        Api::OpenWebUi => config.usage,
        Api::OpenAi | Api::Completions => parsed.include_usage(),
        // Their closing events always carry usage.
        Api::Responses | Api::Anthropic | Api::Embeddings => true,
    };
    let prompt = parsed.prompt_tokens();
    if api == Api::Embeddings {
        let inputs = parsed.input.map_or(1, |i| i.items);
        return embeddings(
            shared,
            outcome,
            &parsed.model,
            inputs,
            prompt,
            directives.ttft,
        )
        .await;
    }
    let plan = StreamPlan {
        rendered: lock(cache).rendered(shared, &parsed.model, api.dialect()),
        tokens,
        reasoning: config.reasoning_tokens,
        finish,
        usage: usage.then_some(prompt),
        fault,
        ttft: directives.ttft.unwrap_or(config.ttft),
        itl: config.itl,
        capacity: shared.capacity.clone(),
    };
    if parsed.stream != Some(true) {
        return complete(shared, outcome, plan, prompt).await;
    }
    outcome.open_stream();
    // Zero-delay normal streams are one pre-rendered buffer; small enough token counts only, so a
    // huge `x-mock-tokens` streams piecewise instead of allocating its whole body.
    let whole = fault == StreamFault::None
        && plan.ttft.is_zero()
        && plan.itl.is_zero()
        && plan.capacity.is_none()
        && plan.tokens <= MAX_WHOLE_TOKENS;
    let body = if whole {
        let key = WholeKey {
            tokens,
            reasoning: plan.reasoning,
            finish,
            usage: plan.usage,
        };
        let (data, events) = lock(cache).whole(&plan.rendered, key);
        MockBody::Whole(Some(Whole {
            data,
            events,
            tokens,
            outcome,
        }))
    } else {
        MockBody::Stream(Box::new(SseStream::new(plan, outcome)))
    };
    let body = match coding {
        None => body,
        Some(coding) => MockBody::Compressed(Box::new(Compressed {
            inner: body,
            encoder: Encoder::new(coding),
            done: false,
        })),
    };
    let mut res = Response::new(body);
    let h = res.headers_mut();
    if let Some(coding) = coding {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// A non-streaming answer: waits as long as the whole generation would take, then sends it
/// with usage. Faults map onto it as: `drop` closes the connection without an answer,
/// `malformed` sends cut-off JSON, `stream_error` sends Open WebUI's error object with status 200.
async fn complete(
    shared: &Shared,
    mut outcome: Outcome,
    plan: StreamPlan,
    prompt: u32,
) -> io::Result<Response<MockBody>> {
    let _permit = match plan.capacity {
        Some(sem) => sem.acquire_owned().await.ok(),
        None => None,
    };
    let generation = plan
        .itl
        .checked_mul(plan.tokens.saturating_sub(1))
        .and_then(|d| d.checked_add(plan.ttft))
        .unwrap_or(Duration::from_secs(86_400));
    if !generation.is_zero() {
        tokio::time::sleep(generation).await;
    }
    Ok(match plan.fault {
        StreamFault::Drop => {
            outcome.settle(|c| &c.dropped);
            // A service error makes hyper close the connection without writing a response.
            return Err(io::Error::other("mock: injected connection drop"));
        }
        StreamFault::Malformed => {
            outcome.settle(|c| &c.malformed);
            let cut = &MALFORMED[b"data: ".len()..MALFORMED.len() - 2];
            json(StatusCode::OK, Bytes::from_static(cut))
        }
        StreamFault::StreamError => {
            outcome.settle(|c| &c.stream_error);
            let error = b"{\"error\":{\"message\":\"Chat completion stream failed\"}}";
            json(StatusCode::OK, Bytes::from_static(error))
        }
        StreamFault::None => {
            let text = plan
                .rendered
                .completion_json(plan.tokens, plan.finish, prompt);
            shared
                .counters
                .tokens_sent
                .fetch_add(u64::from(plan.tokens), Relaxed);
            outcome.settle(|c| &c.ok);
            json(StatusCode::OK, text)
        }
    })
}

/// An `/v1/embeddings` answer after the configured TTFT (the whole computation); the chat
/// faults were already applied (500, 429) or do not apply to a one-piece JSON answer.
async fn embeddings(
    shared: &Shared,
    mut outcome: Outcome,
    model: &str,
    inputs: u32,
    prompt: u32,
    ttft: Option<Duration>,
) -> io::Result<Response<MockBody>> {
    let delay = ttft.unwrap_or(shared.config.ttft);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    outcome.settle(|c| &c.ok);
    Ok(json(
        StatusCode::OK,
        super::dialect::embeddings_json(model, inputs, prompt),
    ))
}

/// The connection cache is only ever locked for a lookup, never across an await; a poisoned
/// lock (a panic mid-lookup) leaves it valid, so recover rather than propagate.
fn lock(cache: &Mutex<ConnCache>) -> std::sync::MutexGuard<'_, ConnCache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}
