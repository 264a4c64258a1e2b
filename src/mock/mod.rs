//! The built-in mock LLM server: Open WebUI's and OpenAI's streaming chat completions, OpenAI's
//! legacy completions and Responses API, Anthropic's Messages API and `/v1/embeddings`, with
//! configurable timing, reasoning tokens, a capacity model and fault injection, for tests, the
//! demo and benchmarks.
//!
//! It shares nothing with the client side but the wire format.

mod accounts;
mod args;
mod body;
mod compress;
mod counters;
mod dialect;
mod metrics;
mod render;
mod request;
mod server;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use accounts::AccountUse;
pub use args::MockArgs;
pub use compress::Compress;
pub use counters::{Counters, CountersSnapshot};

/// How the mock behaves. `Default` imitates a small hosted model behind Open WebUI.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Delay before the first content token, counted from the start of generation (the role
    /// chunk goes out at once with the headers).
    pub ttft: Duration,
    /// Gap between content tokens.
    pub itl: Duration,
    /// Content tokens per completion, capped by the request's `max_tokens` / `max_completion_tokens`.
    pub tokens: u32,
    /// Reasoning tokens streamed before the answer (in the API's reasoning channel, counted in
    /// usage as reasoning tokens where the API reports them), at the same ITL.
    pub reasoning_tokens: u32,
    /// If set, chat and model requests need `Authorization: Bearer <token>`, else 401.
    pub token: Option<String>,
    /// Accepted model ids; empty accepts any. An unknown model is 400 (Open WebUI) or 404 (`/v1`).
    pub models: Vec<String>,
    /// Open WebUI path: send a usage chunk before `[DONE]`. The OpenAI path sends one only when
    /// the request sets `stream_options.include_usage`.
    pub usage: bool,
    /// Open WebUI path: a `chat_id` without the `local:` prefix (e.g. a bare uuid) is 404, as on
    /// a real Open WebUI 0.12 for a non-admin user.
    pub strict_chat_id: bool,
    /// Fault probabilities, drawn per request.
    pub faults: FaultRates,
    /// Capacity model: at most this many generations at once. Others wait in a queue before
    /// their TTFT clock starts, so TTFT grows under overload as on a real server (0 acts as 1).
    pub max_concurrent: Option<usize>,
    /// Seed for fault draws, for reproducible fault counts; random if `None`.
    pub seed: Option<u64>,
    /// Compress streamed chat answers (each event flushed on its own) when the client accepts it.
    pub compress: Compress,
    /// Open WebUI accounts `(email, password)` that `POST /api/v1/auths/signin` accepts; each is
    /// issued its own token, which chat and model requests then accept (besides `token`). With
    /// accounts and no `token`, those requests need an issued token.
    pub accounts: Vec<(String, String)>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            ttft: Duration::from_millis(150),
            itl: Duration::from_millis(15),
            tokens: 30,
            reasoning_tokens: 0,
            token: None,
            models: Vec::new(),
            usage: true,
            strict_chat_id: true,
            faults: FaultRates::default(),
            max_concurrent: None,
            seed: None,
            compress: Compress::Off,
            accounts: Vec::new(),
        }
    }
}

/// Per-request probabilities, each in [0, 1], of the injectable faults. They are mutually
/// exclusive outcomes of one draw, so each happens at exactly its rate while they sum to ≤ 1.
/// The same faults can be forced per request with the header `x-mock-scenario`.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub struct FaultRates {
    /// `500 {"detail":"Internal Server Error"}`.
    pub http_500: f64,
    /// `429 {"detail":"Too Many Requests"}` with `retry-after: 1`.
    pub http_429: f64,
    /// The connection is cut after half the tokens, without `[DONE]`.
    pub drop: f64,
    /// One invalid-JSON event after half the tokens; the stream then finishes normally.
    pub malformed: f64,
    /// After half the tokens, Open WebUI's `{"error":{"message":"Chat completion stream failed"}}`
    /// event, then `[DONE]`.
    pub stream_error: f64,
}

/// Serves until `shutdown` is cancelled; then stops accepting, closes open connections (their
/// streams count as `client_aborted`), and returns.
pub async fn serve(
    listener: TcpListener,
    config: MockConfig,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    server::serve(listener, config, counters, shutdown).await
}

/// Binds a listener with a deep accept backlog: a benchmark that opens thousands of
/// connections a second would otherwise overflow the default queue and see SYN retries
/// (a one-second stall that would be blamed on the server under test).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Binds `127.0.0.1:0` and serves `config` on the current tokio runtime.
pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
    start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
}

/// Binds `addr` and serves `config` on the current tokio runtime.
pub async fn start_on(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockServer> {
    let listener = bind(addr)?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    // Issued now, so `MockServer::accounts` lists them from the start.
    accounts::Issued::install(&counters, &config.accounts);
    let token = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        config,
        Arc::clone(&counters),
        token.clone(),
    ));
    Ok(MockServer {
        addr,
        counters,
        token,
        task,
    })
}

/// A running mock started by [`start`] or [`start_on`]. Dropping it cancels the server without
/// waiting; [`MockServer::shutdown`] also waits until every connection is closed.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    token: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl MockServer {
    /// The bound address (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters now.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    /// Each account's sign-ins and requests so far (empty without `MockConfig::accounts`).
    pub fn accounts(&self) -> Vec<AccountUse> {
        self.counters
            .accounts
            .get()
            .map(|a| a.uses())
            .unwrap_or_default()
    }

    /// Stops the server and waits until it has closed every connection, so counters are final.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        // A panicked or already-finished server task has nothing left to wait for.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The `gsai-load mock` subcommand: binds `args.bind`, announces the address on stderr, and
/// serves until `shutdown` is cancelled.
pub async fn run(args: MockArgs, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = bind(args.bind).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on --bind {}: {e}", args.bind),
        )
    })?;
    let addr = listener.local_addr()?;
    let mut config = args.to_config();
    if let Some(path) = &args.accounts {
        let list = crate::config::accounts::load(path)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        config.accounts = list
            .into_iter()
            .map(|a| (a.email, a.password.expose().to_string()))
            .collect();
        eprintln!(
            "mock: {} accounts for POST /api/v1/auths/signin",
            config.accounts.len()
        );
    }
    eprintln!("mock listening on http://{addr} (POST /api/chat/completions, /v1/chat/completions, /v1/completions, /v1/responses, /v1/messages, /v1/embeddings)");
    serve(listener, config, Arc::new(Counters::default()), shutdown).await
}
