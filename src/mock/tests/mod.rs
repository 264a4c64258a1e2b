//! Tests of the mock over real sockets: a small hyper client that timestamps each SSE event.

mod dialects;
mod faults;
mod routes;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{start, CountersSnapshot, MockConfig, MockServer};

/// A config with no delays and 5 tokens, for tests that check content rather than timing.
fn fast() -> MockConfig {
    MockConfig {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        tokens: 5,
        ..MockConfig::default()
    }
}

async fn mock(config: MockConfig) -> MockServer {
    start(config).await.expect("mock binds 127.0.0.1:0")
}

/// Shuts the server down (closing every connection) and returns its final counters.
async fn finish(server: MockServer) -> CountersSnapshot {
    let counters = Arc::clone(&server.counters);
    server.shutdown().await;
    counters.snapshot()
}

/// The seed's Open WebUI body with a temporary-chat id, plus `extra` fields merged in.
fn chat_body(extra: Value) -> String {
    let mut body = serde_json::json!({
        "stream": true,
        "model": "m",
        "messages": [{"role": "user", "content": "Hello there!"}],
        "params": {},
        "background_tasks": {"title_generation": true, "tags_generation": true},
        "chat_id": "local:2b0d7b3d-1c3e-4e8b-9d7a-0c5e0f1e2a3b",
        "features": {"web_search": false},
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    body.to_string()
}

const OWUI: &str = "/api/chat/completions";
const OPENAI: &str = "/v1/chat/completions";

/// One SSE event and when (since the request was sent) its last byte arrived.
#[derive(Debug)]
struct Event {
    data: String,
    at: Duration,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
    fn choice(&self) -> Value {
        self.json()["choices"][0].clone()
    }
    fn content(&self) -> Option<String> {
        self.choice()["delta"]["content"]
            .as_str()
            .map(str::to_owned)
    }
    /// A token-bearing event, as a load tester counts them: non-empty delta content.
    fn is_token(&self) -> bool {
        self.content().is_some_and(|c| !c.is_empty())
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    events: Vec<Event>,
    /// The body ended in an error (e.g. the connection was cut mid-chunk).
    error: Option<String>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn first_token_at(&self) -> Duration {
        self.events
            .iter()
            .find(|e| e.is_token())
            .expect("a token event")
            .at
    }
    fn last_at(&self) -> Duration {
        self.events.last().expect("an event").at
    }
}

/// One HTTP/1.1 connection; requests on it reuse the connection (keep-alive).
struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect to mock");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Client { sender }
    }

    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: String) -> Reply {
        self.send(Method::POST, path, headers, body).await
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, String::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "mock");
        req = req.header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .expect("valid request");
        self.sender.ready().await.expect("connection ready");
        let start = Instant::now();
        let res = self.sender.send_request(req).await.expect("response head");
        let (parts, mut body) = res.into_parts();
        let (mut buf, mut events, mut error, mut consumed) = (Vec::new(), Vec::new(), None, 0);
        loop {
            match body.frame().await {
                None => break,
                Some(Err(e)) => {
                    error = Some(e.to_string());
                    break;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    buf.extend_from_slice(&data);
                    let at = start.elapsed();
                    while let Some(end) = buf[consumed..].windows(2).position(|w| w == b"\n\n") {
                        let raw =
                            String::from_utf8_lossy(&buf[consumed..consumed + end]).into_owned();
                        consumed += end + 2;
                        // Typed APIs name each event on an `event:` line first.
                        let data = raw
                            .lines()
                            .find_map(|l| l.strip_prefix("data: "))
                            .expect("every event has a data: line");
                        events.push(Event {
                            data: data.to_owned(),
                            at,
                        });
                    }
                }
            }
        }
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: buf,
            events,
            error,
        }
    }
}

/// Asserts the exact event sequence of a normal stream of `n` tokens.
fn assert_normal_stream(events: &[Event], n: usize, finish: &str, usage: Option<u64>) {
    let expected = n + 3 + usize::from(usage.is_some());
    assert_eq!(events.len(), expected, "{events:#?}");
    let role = events[0].choice();
    assert_eq!(
        role["delta"],
        serde_json::json!({"role": "assistant", "content": ""})
    );
    assert!(role["finish_reason"].is_null());
    assert!(!events[0].is_token(), "the role chunk carries no token");
    for (i, e) in events[1..=n].iter().enumerate() {
        assert_eq!(
            e.content().as_deref(),
            Some(super::render::WORDS[i % 64]),
            "token {i}"
        );
        let chunk = e.json();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "m");
        assert!(chunk["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-")));
        assert!(chunk["created"].as_u64().is_some());
        assert!(e.choice()["finish_reason"].is_null());
    }
    let fin = events[n + 1].choice();
    assert_eq!(fin["delta"], serde_json::json!({}));
    assert_eq!(fin["finish_reason"], finish);
    if let Some(prompt) = usage {
        let u = events[n + 2].json();
        assert_eq!(u["choices"], serde_json::json!([]));
        assert_eq!(u["usage"]["completion_tokens"], n as u64);
        assert_eq!(u["usage"]["prompt_tokens"], prompt);
        assert_eq!(u["usage"]["total_tokens"], prompt + n as u64);
    }
    assert_eq!(events[expected - 1].data, "[DONE]");
}

/// The seed's one "Hello there!" message: 3 priming + 4 framing + ceil(12 / 4) tokens.
const SEED_PROMPT_TOKENS: u64 = 10;
