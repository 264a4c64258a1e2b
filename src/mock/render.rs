//! The mock's wire text: SSE chunks pre-rendered once per model, and the JSON answers.

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

/// Why generation stopped: all configured tokens, or the request's `max_tokens` cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Finish {
    Stop,
    Length,
}

impl Finish {
    fn as_str(self) -> &'static str {
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
    id: String,
    created: u64,
    /// `data: {"id":..,"object":"chat.completion.chunk",..,"model":..,"choices":` — shared head of every chunk.
    head: Vec<u8>,
    pub(crate) role: Bytes,
    pub(crate) tokens: Vec<Bytes>,
    finish_stop: Bytes,
    finish_length: Bytes,
}

impl Rendered {
    pub(crate) fn new(model: &str) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        // Serializing a &str cannot fail; the fallback keeps this panic-free anyway.
        let model_json = serde_json::to_string(model).unwrap_or_else(|_| "\"mock\"".to_owned());
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
            finish_stop: finish(Finish::Stop),
            finish_length: finish(Finish::Length),
            model: model.into(),
            id,
            created,
            head,
        }
    }

    /// The event carrying content token number `i` (0-based).
    pub(crate) fn token(&self, i: u32) -> &Bytes {
        &self.tokens[i as usize % self.tokens.len()]
    }

    fn put_usage(&self, out: &mut BytesMut, prompt: u32, completion: u32) {
        out.put_slice(&self.head);
        let total = u64::from(prompt) + u64::from(completion);
        out.put_slice(
            format!(
                "[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{total}}}}}\n\n"
            )
            .as_bytes(),
        );
    }

    /// The end of a normal stream: finish chunk, the usage chunk if `usage` is `Some(prompt_tokens)`,
    /// and `[DONE]`, in one buffer so they leave in one write. Returns the bytes and the event count.
    pub(crate) fn tail(&self, finish: Finish, usage: Option<u32>, completion: u32) -> (Bytes, u64) {
        let mut out = BytesMut::with_capacity(2 * self.head.len() + 200);
        out.put_slice(match finish {
            Finish::Stop => &self.finish_stop,
            Finish::Length => &self.finish_length,
        });
        if let Some(prompt) = usage {
            self.put_usage(&mut out, prompt, completion);
        }
        out.put_slice(DONE);
        (out.freeze(), 2 + u64::from(usage.is_some()))
    }

    /// A whole zero-delay stream in one buffer. Returns the bytes and the event count.
    pub(crate) fn full_stream(&self, n: u32, finish: Finish, usage: Option<u32>) -> (Bytes, u64) {
        let (tail, tail_events) = self.tail(finish, usage, n);
        let token_len: usize = (0..n).map(|i| self.token(i).len()).sum();
        let mut out = BytesMut::with_capacity(self.role.len() + token_len + tail.len());
        out.put_slice(&self.role);
        for i in 0..n {
            out.put_slice(self.token(i));
        }
        out.put_slice(&tail);
        (out.freeze(), 1 + u64::from(n) + tail_events)
    }

    /// A non-streaming `chat.completion` answer with the same text a stream would carry.
    pub(crate) fn completion_json(&self, n: u32, finish: Finish, prompt: u32) -> Bytes {
        let text: String = (0..n).map(|i| WORDS[i as usize % WORDS.len()]).collect();
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

/// Rendered chunks per model name, shared by all connections. Connections keep their last entry,
/// so the lock is taken about once per connection, not per request.
#[derive(Debug, Default)]
pub(crate) struct RenderCache {
    map: RwLock<HashMap<Box<str>, Arc<Rendered>>>,
}

/// Bounds the cache when any model name is accepted, so random names cannot grow memory forever.
const MAX_CACHED_MODELS: usize = 1024;

impl RenderCache {
    pub(crate) fn get(&self, model: &str) -> Arc<Rendered> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        if let Some(r) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
        {
            return Arc::clone(r);
        }
        let rendered = Arc::new(Rendered::new(model));
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_CACHED_MODELS {
            return Arc::clone(map.entry(model.into()).or_insert(rendered));
        }
        rendered
    }
}
