//! The mock's wire text: SSE chunks pre-rendered once per model and dialect (chat, legacy
//! completions, Responses, Anthropic Messages; the last two in [`super::dialect`]), and the
//! JSON answers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// Content words, one per streamed token. Each is a common English word with a leading space,
/// which cl100k_base encodes as exactly one token (checked by a test), so a client that counts
/// tokens with tiktoken gets the same number as the mock's `completion_tokens`.
pub(crate) const WORDS: [&str; 64] = [
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " as", " was", " with",
    " be", " on", " not", " he", " by", " are", " this", " at", " from", " but", " have", " an",
    " they", " which", " one", " you", " were", " all", " we", " her", " she", " there", " been",
    " his", " or", " can", " more", " if", " will", " would", " about", " when", " so", " what",
    " some", " out", " up", " into", " time", " them", " other", " people", " than", " has",
    " new", " like", " just", " only", " also", " how", " world", " hello",
];

/// The stream terminator.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";
/// The `malformed` fault's event: cut-off JSON, as a broken proxy would pass on.
pub(crate) const MALFORMED: &[u8] = b"data: {\"choices\": [ {\"delta\"\n\n";
/// Open WebUI's answer when its upstream fails mid-stream: an error event, then `[DONE]`.
pub(crate) const STREAM_ERROR: &[u8] =
    b"data: {\"error\":{\"message\":\"Chat completion stream failed\"}}\n\ndata: [DONE]\n\n";

/// Which API's stream format a rendering speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dialect {
    /// Chat completions (OpenAI and Open WebUI): `choices[0].delta`, `[DONE]`.
    Chat,
    /// Legacy completions: `choices[0].text`, `[DONE]`.
    Completions,
    /// The Responses API: typed events, `response.completed`.
    Responses,
    /// Anthropic Messages: typed events, `message_stop`.
    Anthropic,
}

/// Why generation stopped: all configured tokens, or the request's `max_tokens` cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Every fixed chunk of a completion for one model, rendered once so that streaming a token is a
/// `Bytes` clone rather than a JSON serialization. The `id` and `created` fields are per model, not
/// per request: clients do not use them, and unique ids would cost a render per request.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) model: Box<str>,
    pub(crate) dialect: Dialect,
    pub(crate) id: String,
    created: u64,
    /// `data: {"id":..,"object":"chat.completion.chunk",..,"model":..,"choices":` — shared head of every chunk.
    head: Vec<u8>,
    /// What goes out with the headers: the role chunk, or the typed APIs' opening events
    /// (empty for legacy completions, which have none).
    pub(crate) role: Bytes,
    pub(crate) tokens: Vec<Bytes>,
    /// Reasoning deltas, sent before the answer (`--reasoning-tokens`).
    pub(crate) reasoning: Vec<Bytes>,
    finish_stop: Bytes,
    finish_length: Bytes,
    /// The `stream_error` fault's events in this dialect.
    pub(crate) stream_error: Bytes,
}

impl Rendered {
    pub(crate) fn new(model: &str, dialect: Dialect) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Serializing a &str cannot fail; the fallback keeps this panic-free anyway.
        let model_json = serde_json::to_string(model).unwrap_or_else(|_| "\"mock\"".to_owned());
        match dialect {
            Dialect::Chat => Self::chat(model, &model_json, created),
            Dialect::Completions => Self::completions(model, &model_json, created),
            Dialect::Responses => super::dialect::responses(model, &model_json, created),
            Dialect::Anthropic => super::dialect::anthropic(model, &model_json, created),
        }
    }

    /// Every field but the head, from the typed dialects' renderers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn typed(
        model: &str,
        dialect: Dialect,
        id: String,
        created: u64,
        role: Bytes,
        tokens: Vec<Bytes>,
        reasoning: Vec<Bytes>,
        stream_error: Bytes,
    ) -> Self {
        Rendered {
            model: model.into(),
            dialect,
            id,
            created,
            head: Vec::new(),
            role,
            tokens,
            reasoning,
            finish_stop: Bytes::new(),
            finish_length: Bytes::new(),
            stream_error,
        }
    }

    fn completions(model: &str, model_json: &str, created: u64) -> Self {
        let id = format!("cmpl-{}", uuid::Uuid::new_v4().simple());
        let head = format!(
            "data: {{\"id\":\"{id}\",\"object\":\"text_completion\",\"created\":{created},\"model\":{model_json},\"choices\":"
        )
        .into_bytes();
        let chunk = |choices: &str| -> Bytes {
            Bytes::from([&head[..], choices.as_bytes(), b"}\n\n"].concat())
        };
        let text = |t: &str, f: &str| {
            chunk(&format!(
                "[{{\"text\":\"{t}\",\"index\":0,\"logprobs\":null,\"finish_reason\":{f}}}]"
            ))
        };
        Rendered {
            role: Bytes::new(),
            tokens: WORDS.iter().map(|w| text(w, "null")).collect(),
            // Legacy completions have no reasoning channel: reasoning goes out as text.
            reasoning: WORDS.iter().map(|w| text(w, "null")).collect(),
            finish_stop: text("", "\"stop\""),
            finish_length: text("", "\"length\""),
            stream_error: Bytes::from_static(STREAM_ERROR),
            model: model.into(),
            dialect: Dialect::Completions,
            id,
            created,
            head,
        }
    }

    fn chat(model: &str, model_json: &str, created: u64) -> Self {
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let head = format!(
            "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model_json},\"choices\":"
        )
        .into_bytes();
        let chunk = |choices: &str| -> Bytes {
            let mut b = Vec::with_capacity(head.len() + choices.len() + 3);
            b.extend_from_slice(&head);
            b.extend_from_slice(choices.as_bytes());
            b.extend_from_slice(b"}\n\n");
            Bytes::from(b)
        };
        let delta = |d: &str| format!("[{{\"index\":0,\"delta\":{d},\"finish_reason\":null}}]");
        let finish = |f: Finish| {
            chunk(&format!(
                "[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{}\"}}]",
                f.as_str()
            ))
        };
        Rendered {
            role: chunk(&delta("{\"role\":\"assistant\",\"content\":\"\"}")),
            tokens: WORDS
                .iter()
                .map(|w| chunk(&delta(&format!("{{\"content\":\"{w}\"}}"))))
                .collect(),
            reasoning: WORDS
                .iter()
                .map(|w| chunk(&delta(&format!("{{\"reasoning_content\":\"{w}\"}}"))))
                .collect(),
            finish_stop: finish(Finish::Stop),
            finish_length: finish(Finish::Length),
            stream_error: Bytes::from_static(STREAM_ERROR),
            model: model.into(),
            dialect: Dialect::Chat,
            id,
            created,
            head,
        }
    }

    /// The event carrying token number `i` (0-based) of a stream that reasons for `reasoning`
    /// tokens first.
    pub(crate) fn token(&self, i: u32, reasoning: u32) -> &Bytes {
        match i.checked_sub(reasoning) {
            Some(k) => &self.tokens[k as usize % self.tokens.len()],
            None => &self.reasoning[i as usize % self.reasoning.len()],
        }
    }

    fn put_usage(&self, out: &mut BytesMut, prompt: u32, completion: u32, reasoning: u32) {
        out.put_slice(&self.head);
        let total = u64::from(prompt) + u64::from(completion);
        let details = if reasoning > 0 {
            format!(",\"completion_tokens_details\":{{\"reasoning_tokens\":{reasoning}}}")
        } else {
            String::new()
        };
        out.put_slice(
            format!(
                "[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{total}{details}}}}}\n\n"
            )
            .as_bytes(),
        );
    }

    /// The end of a normal stream: finish chunk, the usage chunk if `usage` is `Some(prompt_tokens)`,
    /// and `[DONE]` (or the typed dialects' closing events, which always carry usage), in one
    /// buffer so they leave in one write. `completion` counts every token sent, `reasoning`
    /// included. Returns the bytes and the event count.
    pub(crate) fn tail(
        &self,
        finish: Finish,
        usage: Option<u32>,
        completion: u32,
        reasoning: u32,
    ) -> (Bytes, u64) {
        let prompt = usage.unwrap_or(0);
        match self.dialect {
            Dialect::Chat | Dialect::Completions => {}
            Dialect::Responses => {
                return super::dialect::responses_tail(self, finish, prompt, completion, reasoning)
            }
            Dialect::Anthropic => {
                return super::dialect::anthropic_tail(finish, prompt, completion)
            }
        }
        let mut out = BytesMut::with_capacity(2 * self.head.len() + 200);
        out.put_slice(match finish {
            Finish::Stop => &self.finish_stop,
            Finish::Length => &self.finish_length,
        });
        if let Some(prompt) = usage {
            self.put_usage(&mut out, prompt, completion, reasoning);
        }
        out.put_slice(DONE);
        (out.freeze(), 2 + u64::from(usage.is_some()))
    }

    /// A whole zero-delay stream of `n` tokens after `reasoning` ones, in one buffer. Returns
    /// the bytes and the event count.
    pub(crate) fn full_stream(
        &self,
        n: u32,
        reasoning: u32,
        finish: Finish,
        usage: Option<u32>,
    ) -> (Bytes, u64) {
        let all = n.saturating_add(reasoning);
        let (tail, tail_events) = self.tail(finish, usage, all, reasoning);
        let token_len: usize = (0..all).map(|i| self.token(i, reasoning).len()).sum();
        let mut out = BytesMut::with_capacity(self.role.len() + token_len + tail.len());
        out.put_slice(&self.role);
        for i in 0..all {
            out.put_slice(self.token(i, reasoning));
        }
        out.put_slice(&tail);
        let role_events = u64::from(!self.role.is_empty());
        (out.freeze(), role_events + u64::from(all) + tail_events)
    }

    /// A non-streaming answer of the dialect with the same text a stream would carry.
    pub(crate) fn completion_json(&self, n: u32, finish: Finish, prompt: u32) -> Bytes {
        let text: String = (0..n).map(|i| WORDS[i as usize % WORDS.len()]).collect();
        match self.dialect {
            Dialect::Chat => {}
            Dialect::Completions => {
                let body = serde_json::json!({
                    "id": self.id, "object": "text_completion", "created": self.created,
                    "model": &*self.model,
                    "choices": [{"index": 0, "text": text, "finish_reason": finish.as_str()}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": n,
                              "total_tokens": u64::from(prompt) + u64::from(n)},
                });
                return Bytes::from(body.to_string());
            }
            Dialect::Responses | Dialect::Anthropic => {
                return super::dialect::whole_json(self, &text, finish, prompt, n)
            }
        }
        let body = serde_json::json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": &*self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish.as_str(),
            }],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": n,
                "total_tokens": u64::from(prompt) + u64::from(n),
            },
        });
        Bytes::from(body.to_string())
    }
}

/// Rendered chunks per model name and dialect, shared by all connections. Connections keep their
/// last entry, so the lock is taken about once per connection, not per request.
#[derive(Debug, Default)]
pub(crate) struct RenderCache {
    map: RwLock<HashMap<RenderKey, Arc<Rendered>>>,
}

/// A rendering's dialect and model name.
type RenderKey = (Dialect, Box<str>);

/// Bounds the cache when any model name is accepted, so random names cannot grow memory forever.
const MAX_CACHED_MODELS: usize = 1024;

impl RenderCache {
    pub(crate) fn get(&self, model: &str, dialect: Dialect) -> Arc<Rendered> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        if let Some(r) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(dialect, Box::<str>::from(model)))
        {
            return Arc::clone(r);
        }
        let rendered = Arc::new(Rendered::new(model, dialect));
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_CACHED_MODELS {
            return Arc::clone(map.entry((dialect, model.into())).or_insert(rendered));
        }
        rendered
    }
}
