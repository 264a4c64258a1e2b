//! The typed-event dialects' wire text: the OpenAI Responses API and the Anthropic Messages
//! API (events named by `event:` lines and a `type` field, no `[DONE]`), and the
//! `/v1/embeddings` answer.

use bytes::{BufMut, Bytes, BytesMut};

use super::render::{Dialect, Finish, Rendered, WORDS};

/// Which API a request came in on (by path).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    OpenWebUi,
    OpenAi,
    Completions,
    Responses,
    Anthropic,
    Embeddings,
}

impl Api {
    /// The stream format it answers in.
    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Api::OpenWebUi | Api::OpenAi | Api::Embeddings => Dialect::Chat,
            Api::Completions => Dialect::Completions,
            Api::Responses => Dialect::Responses,
            Api::Anthropic => Dialect::Anthropic,
        }
    }

    /// The body field that carries the prompt (a 422 names it when missing).
    pub(crate) fn prompt_field(self) -> &'static str {
        match self {
            Api::OpenWebUi | Api::OpenAi | Api::Anthropic => "messages",
            Api::Completions => "prompt",
            Api::Responses | Api::Embeddings => "input",
        }
    }
}

/// One typed SSE event: `event: TYPE` and its `data:` line.
fn event(kind: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// Responses API rendering: `response.created` opens, `response.output_text.delta` per token,
/// `response.reasoning_text.delta` per reasoning token.
pub(crate) fn responses(model: &str, model_json: &str, created: u64) -> Rendered {
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let created_event = event(
        "response.created",
        &format!(
            "{{\"type\":\"response.created\",\"response\":{{\"id\":\"{id}\",\"object\":\"response\",\"created_at\":{created},\"status\":\"in_progress\",\"model\":{model_json},\"output\":[],\"usage\":null}}}}"
        ),
    );
    let delta = |kind: &str, item: &str, w: &str| {
        event(
            kind,
            &format!("{{\"type\":\"{kind}\",\"item_id\":\"{item}\",\"output_index\":0,\"content_index\":0,\"delta\":\"{w}\"}}"),
        )
    };
    let error = event(
        "error",
        "{\"type\":\"error\",\"code\":\"server_error\",\"message\":\"Response stream failed\",\"param\":null}",
    );
    Rendered::typed(
        model,
        Dialect::Responses,
        id,
        created,
        created_event,
        WORDS
            .iter()
            .map(|w| delta("response.output_text.delta", "msg_0", w))
            .collect(),
        WORDS
            .iter()
            .map(|w| delta("response.reasoning_text.delta", "rs_0", w))
            .collect(),
        error,
    )
}

/// `response.completed` (or `response.incomplete` at the request's cap) with usage.
pub(crate) fn responses_tail(
    r: &Rendered,
    finish: Finish,
    prompt: u32,
    completion: u32,
    reasoning: u32,
) -> (Bytes, u64) {
    let (kind, status) = match finish {
        Finish::Stop => ("response.completed", "completed"),
        Finish::Length => ("response.incomplete", "incomplete"),
    };
    let total = u64::from(prompt) + u64::from(completion);
    let data = format!(
        "{{\"type\":\"{kind}\",\"response\":{{\"id\":\"{}\",\"object\":\"response\",\"status\":\"{status}\",\"usage\":{{\"input_tokens\":{prompt},\"output_tokens\":{completion},\"output_tokens_details\":{{\"reasoning_tokens\":{reasoning}}},\"total_tokens\":{total}}}}}}}",
        r.id
    );
    (event(kind, &data), 1)
}

/// Anthropic Messages rendering: `message_start` and `content_block_start` open, a
/// `content_block_delta` per token (`thinking_delta` for reasoning, `text_delta` for the answer).
pub(crate) fn anthropic(model: &str, model_json: &str, created: u64) -> Rendered {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let mut open = BytesMut::new();
    open.put_slice(&event(
        "message_start",
        &format!(
            "{{\"type\":\"message_start\",\"message\":{{\"id\":\"{id}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{model_json},\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":0,\"output_tokens\":1}}}}}}"
        ),
    ));
    open.put_slice(&event(
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
    ));
    let delta = |kind: &str, field: &str, w: &str| {
        event(
            "content_block_delta",
            &format!("{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"{kind}\",\"{field}\":\"{w}\"}}}}"),
        )
    };
    let error = event(
        "error",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
    );
    Rendered::typed(
        model,
        Dialect::Anthropic,
        id,
        created,
        open.freeze(),
        WORDS
            .iter()
            .map(|w| delta("text_delta", "text", w))
            .collect(),
        WORDS
            .iter()
            .map(|w| delta("thinking_delta", "thinking", w))
            .collect(),
        error,
    )
}

/// `content_block_stop`, `message_delta` with the stop reason and usage, `message_stop`.
pub(crate) fn anthropic_tail(finish: Finish, prompt: u32, completion: u32) -> (Bytes, u64) {
    let reason = match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
    };
    let mut out = BytesMut::new();
    out.put_slice(&event(
        "content_block_stop",
        "{\"type\":\"content_block_stop\",\"index\":0}",
    ));
    out.put_slice(&event(
        "message_delta",
        &format!("{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{reason}\",\"stop_sequence\":null}},\"usage\":{{\"input_tokens\":{prompt},\"output_tokens\":{completion}}}}}"),
    ));
    out.put_slice(&event("message_stop", "{\"type\":\"message_stop\"}"));
    (out.freeze(), 3)
}

/// A non-streaming answer of the Responses or Anthropic API.
pub(crate) fn whole_json(r: &Rendered, text: &str, finish: Finish, prompt: u32, n: u32) -> Bytes {
    let body = match r.dialect {
        Dialect::Anthropic => serde_json::json!({
            "id": r.id, "type": "message", "role": "assistant", "model": &*r.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": match finish { Finish::Stop => "end_turn", Finish::Length => "max_tokens" },
            "usage": {"input_tokens": prompt, "output_tokens": n},
        }),
        _ => serde_json::json!({
            "id": r.id, "object": "response", "model": &*r.model,
            "status": match finish { Finish::Stop => "completed", Finish::Length => "incomplete" },
            "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": text}]}],
            "usage": {"input_tokens": prompt, "output_tokens": n, "total_tokens": u64::from(prompt) + u64::from(n)},
        }),
    };
    Bytes::from(body.to_string())
}

/// Dimensions of the mock's embeddings.
pub(crate) const EMBEDDING_DIMS: usize = 8;

/// An `/v1/embeddings` answer: one fixed vector per input, and usage.
pub(crate) fn embeddings_json(model: &str, inputs: u32, prompt: u32) -> Bytes {
    let vector: Vec<f32> = (0..EMBEDDING_DIMS).map(|i| i as f32 / 10.0).collect();
    let data: Vec<_> = (0..inputs.max(1))
        .map(|i| serde_json::json!({"object": "embedding", "index": i, "embedding": vector}))
        .collect();
    let body = serde_json::json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    });
    Bytes::from(body.to_string())
}
