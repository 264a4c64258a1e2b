//! What each request sends: API flavour, path, headers' content and the JSON body.
//!
//! Bodies are built from a template serialized once: per request only the `chat_id`, the
//! prompt's pre-serialized `messages` (as `messages`, the Responses API's `input`, or joined into
//! text for `/v1/completions`' `prompt` and `/v1/embeddings`' `input`) and `max_tokens` (under
//! the API's name for it) are spliced in, so the hot path does no JSON serialization.

pub mod images;
pub mod prompts;
/// The `--scenario` declarations (now owned by [`crate::config`]).
pub use crate::config::scenario;

// The plan's vocabulary lives in `config`; re-exported here, where requests are built from it.
pub use crate::config::{ApiKind, ChatIdMode, PromptOrder};
pub mod trace;

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Path of the (non-streaming) embeddings request kind.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";

/// Default `max_tokens` of an Anthropic request, which the Messages API requires.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 1024;

/// Where the prompt goes in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PromptField {
    /// The messages array under this key (`messages`, or the Responses API's `input`).
    Messages(&'static str),
    /// The messages' text contents, joined by newlines, as one JSON string under this key
    /// (`prompt` of `/v1/completions`, `input` of `/v1/embeddings`).
    Text(&'static str),
}

/// The request body of a chat completion, ready to be stamped per request.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    /// Path on the target, e.g. `/api/chat/completions`.
    pub path: String,
    chat_id: ChatIdMode,
    /// `max_tokens` unless the prompt brings its own.
    max_tokens: Option<u32>,
    /// Where the prompt goes.
    prompt: PromptField,
    /// The API's name for the output cap (`max_tokens`, `max_output_tokens`); None: not sent.
    max_field: Option<&'static str>,
    /// Serialized body without `chat_id`, `messages` and `max_tokens`, starting with `{`.
    rest: Vec<u8>,
}

/// Inputs of a chat body.
#[derive(Clone, Debug)]
pub struct ChatSpec<'a> {
    /// API flavour.
    pub api: ApiKind,
    /// Model id.
    pub model: &'a str,
    /// Streaming (`"stream": true`) or not.
    pub stream: bool,
    /// `max_tokens`, if set.
    pub max_tokens: Option<u32>,
    /// `chat_id` mode (Open WebUI only).
    pub chat_id: ChatIdMode,
    /// Extra fields merged over the body (`--body`).
    pub extra: Option<&'a Map<String, Value>>,
}

impl ChatTemplate {
    /// Builds the template. The Open WebUI body is the seed's payload; the OpenAI body asks for usage.
    pub fn new(spec: &ChatSpec<'_>) -> Self {
        let body = match spec.api {
            ApiKind::Openwebui => json!({
                "stream": spec.stream,
                "model": spec.model,
                "params": {},
                "background_tasks": {"title_generation": true, "tags_generation": true},
                "features": {"web_search": false},
            }),
            ApiKind::Openai | ApiKind::Completions if spec.stream => json!({
                "stream": true,
                "model": spec.model,
                "stream_options": {"include_usage": true},
            }),
            ApiKind::Openai | ApiKind::Completions => {
                json!({"stream": false, "model": spec.model})
            }
            ApiKind::Responses | ApiKind::Anthropic => {
                json!({"stream": spec.stream, "model": spec.model})
            }
        };
        let (prompt, max_field) = match spec.api {
            ApiKind::Openwebui | ApiKind::Openai | ApiKind::Anthropic => {
                (PromptField::Messages("messages"), "max_tokens")
            }
            ApiKind::Completions => (PromptField::Text("prompt"), "max_tokens"),
            ApiKind::Responses => (PromptField::Messages("input"), "max_output_tokens"),
        };
        let default_max = match spec.api {
            ApiKind::Anthropic => Some(ANTHROPIC_DEFAULT_MAX_TOKENS),
            _ => None,
        };
        Self::build(
            body,
            spec.api.chat_path(),
            prompt,
            Some(max_field),
            spec.max_tokens.or(default_max),
            spec.extra,
            (spec.api == ApiKind::Openwebui).then_some(spec.chat_id),
        )
    }

    /// The body of an `/v1/embeddings` request: the prompt's text as `input`, no output cap.
    pub fn embeddings(model: &str, extra: Option<&Map<String, Value>>) -> Self {
        Self::build(
            json!({"model": model}),
            EMBEDDINGS_PATH,
            PromptField::Text("input"),
            None,
            None,
            extra,
            None,
        )
    }

    fn build(
        mut body: Value,
        path: &str,
        prompt: PromptField,
        max_field: Option<&'static str>,
        max_tokens: Option<u32>,
        extra: Option<&Map<String, Value>>,
        chat_id: Option<ChatIdMode>,
    ) -> Self {
        let obj = body.as_object_mut().expect("json! object literal");
        let mut max_tokens = max_tokens;
        if let Some(extra) = extra {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        // Fields spliced per request are taken out of the fixed part.
        obj.remove(match prompt {
            PromptField::Messages(k) | PromptField::Text(k) => k,
        });
        if let Some(v) = max_field.and_then(|f| obj.remove(f)) {
            max_tokens = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .or(max_tokens);
        }
        let chat_id = match chat_id {
            Some(mode) if !obj.contains_key("chat_id") => mode,
            _ => ChatIdMode::None,
        };
        Self {
            path: path.to_string(),
            chat_id,
            max_tokens: max_tokens.filter(|_| max_field.is_some()),
            prompt,
            max_field,
            rest: serde_json::to_vec(&body).expect("a JSON value always serializes"),
        }
    }

    /// The body of one request: `messages` (a serialized array), `max_tokens` (the prompt's
    /// own, else the template's) and a fresh `chat_id` where the mode asks for one.
    pub fn body(&self, messages_json: &[u8], max_tokens: Option<u32>) -> Bytes {
        let mut buf = Vec::with_capacity(self.rest.len() + messages_json.len() + 96);
        buf.push(b'{');
        let prefix = match self.chat_id {
            ChatIdMode::None => None,
            ChatIdMode::Local => Some("local:"),
            ChatIdMode::Uuid => Some(""),
        };
        if let Some(prefix) = prefix {
            buf.extend_from_slice(b"\"chat_id\":\"");
            buf.extend_from_slice(prefix.as_bytes());
            let mut uuid = uuid::Uuid::encode_buffer();
            buf.extend_from_slice(
                uuid::Uuid::new_v4()
                    .hyphenated()
                    .encode_lower(&mut uuid)
                    .as_bytes(),
            );
            buf.extend_from_slice(b"\",");
        }
        match self.prompt {
            PromptField::Messages(key) => {
                push_key(&mut buf, key);
                buf.extend_from_slice(messages_json);
            }
            PromptField::Text(key) => {
                push_key(&mut buf, key);
                push_text_of(&mut buf, messages_json);
            }
        }
        if let (Some(field), Some(n)) = (self.max_field, max_tokens.or(self.max_tokens)) {
            buf.extend_from_slice(format!(",\"{field}\":{n}").as_bytes());
        }
        // `rest` is a non-empty object (it always has "model"): continue after its `{`.
        buf.push(b',');
        buf.extend_from_slice(&self.rest[1..]);
        Bytes::from(buf)
    }
}

fn push_key(buf: &mut Vec<u8>, key: &str) {
    buf.push(b'"');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// Appends the text contents of a serialized messages array, joined by newlines, as one JSON
/// string (parts arrays contribute their `text` parts). A prompt is small and this runs once per
/// request of a text-prompt API, never per event.
fn push_text_of(buf: &mut Vec<u8>, messages_json: &[u8]) {
    let mut text = String::new();
    if let Ok(Value::Array(messages)) = serde_json::from_slice::<Value>(messages_json) {
        for m in &messages {
            let mut add = |t: &str| {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            };
            match m.get("content") {
                Some(Value::String(s)) => add(s),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .for_each(add),
                _ => {}
            }
        }
    }
    // Serializing a string cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &text);
}

/// One request kind of a workload: a stats row.
#[derive(Clone, Debug)]
pub struct KindDef {
    /// HTTP method.
    pub method: &'static str,
    /// Stats row name.
    pub name: String,
    /// Path on the target.
    pub path: String,
    /// Whether the response is an SSE chat stream.
    pub streaming: bool,
    /// The API it speaks (its stream format and how it authenticates).
    pub api: ApiKind,
    /// Relative frequency.
    pub weight: u32,
    /// Turns a user keeps its conversation for (1: every request is a new chat).
    pub turns: u32,
    /// The body template (None for GET).
    pub chat: Option<ChatTemplate>,
}

/// Everything that varies per request: the kinds, their weights, the prompts.
#[derive(Debug)]
pub struct Workload {
    /// Request kinds, indexed like stats rows.
    pub kinds: Vec<KindDef>,
    /// Prompts to pick from (at least one).
    pub prompts: Vec<prompts::Prompt>,
    /// How prompts are picked.
    pub order: PromptOrder,
    cumulative_weights: Vec<u64>,
    next_prompt: std::sync::atomic::AtomicUsize,
}

impl Workload {
    /// A workload of `kinds` (at least one) and `prompts` (at least one).
    pub fn new(kinds: Vec<KindDef>, prompts: Vec<prompts::Prompt>, order: PromptOrder) -> Self {
        assert!(
            !kinds.is_empty() && !prompts.is_empty(),
            "a workload needs a kind and a prompt"
        );
        let mut acc = 0u64;
        let cumulative_weights = kinds
            .iter()
            .map(|k| {
                acc += u64::from(k.weight.max(1));
                acc
            })
            .collect();
        Self {
            kinds,
            prompts,
            order,
            cumulative_weights,
            next_prompt: 0.into(),
        }
    }

    /// Picks a request kind by weight.
    pub fn pick_kind(&self, rng: &mut impl rand::Rng) -> usize {
        if self.kinds.len() == 1 {
            return 0;
        }
        let total = *self.cumulative_weights.last().unwrap_or(&1);
        let x = rng.random_range(0..total);
        self.cumulative_weights.partition_point(|&c| c <= x)
    }

    /// Picks a prompt per the order.
    pub fn pick_prompt(&self, rng: &mut impl rand::Rng) -> &prompts::Prompt {
        let i = match self.order {
            _ if self.prompts.len() == 1 => 0,
            PromptOrder::Random => rng.random_range(0..self.prompts.len()),
            PromptOrder::Sequential => {
                self.next_prompt
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % self.prompts.len()
            }
        };
        &self.prompts[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(api: ApiKind, chat_id: ChatIdMode) -> ChatSpec<'static> {
        ChatSpec {
            api,
            model: "m",
            stream: true,
            max_tokens: None,
            chat_id,
            extra: None,
        }
    }

    fn body(t: &ChatTemplate) -> Value {
        let p = prompts::Prompt::user("Hello there!");
        serde_json::from_slice(&t.body(&p.messages_json, None)).unwrap()
    }

    #[test]
    fn openwebui_body_is_the_seed_payload_with_local_chat_id() {
        let t = ChatTemplate::new(&spec(ApiKind::Openwebui, ChatIdMode::Local));
        let v = body(&t);
        assert_eq!(t.path, "/api/chat/completions");
        assert_eq!(v["stream"], true);
        assert_eq!(v["model"], "m");
        assert_eq!(
            v["messages"],
            json!([{"role": "user", "content": "Hello there!"}])
        );
        assert_eq!(v["params"], json!({}));
        assert_eq!(
            v["background_tasks"],
            json!({"title_generation": true, "tags_generation": true})
        );
        assert_eq!(v["features"], json!({"web_search": false}));
        assert_eq!(
            v.as_object().unwrap().len(),
            7,
            "exactly the seed's seven fields: {v}"
        );
        let id = v["chat_id"].as_str().unwrap();
        let uuid = id.strip_prefix("local:").unwrap();
        assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
        assert_ne!(body(&t)["chat_id"], v["chat_id"], "fresh per request");
    }

    #[test]
    fn uuid_and_none_modes() {
        let v = body(&ChatTemplate::new(&spec(
            ApiKind::Openwebui,
            ChatIdMode::Uuid,
        )));
        assert!(uuid::Uuid::parse_str(v["chat_id"].as_str().unwrap()).is_ok());
        let v = body(&ChatTemplate::new(&spec(
            ApiKind::Openwebui,
            ChatIdMode::None,
        )));
        assert!(v.get("chat_id").is_none());
    }

    #[test]
    fn openai_body_asks_for_usage_and_merges_extra() {
        let extra: Map<String, Value> =
            serde_json::from_str(r#"{"temperature":0.5,"max_tokens":9}"#).unwrap();
        let mut s = spec(ApiKind::Openai, ChatIdMode::Local);
        s.max_tokens = Some(64);
        s.extra = Some(&extra);
        let t = ChatTemplate::new(&s);
        let v = body(&t);
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(v["max_tokens"], 9, "--body wins over --max-tokens");
        assert_eq!(v["temperature"], 0.5);
        assert!(v.get("chat_id").is_none());
        let p = prompts::Prompt::user("x");
        let v: Value = serde_json::from_slice(&t.body(&p.messages_json, Some(3))).unwrap();
        assert_eq!(v["max_tokens"], 3, "a prompt's own max_tokens wins");
        let v = body(&ChatTemplate::new(&ChatSpec {
            stream: false,
            ..spec(ApiKind::Openai, ChatIdMode::None)
        }));
        assert_eq!(v["stream"], false);
        assert!(v.get("stream_options").is_none());
    }

    #[test]
    fn kinds_are_picked_by_weight() {
        let kind = |w| KindDef {
            method: "GET",
            name: format!("k{w}"),
            path: "/".into(),
            streaming: false,
            api: ApiKind::Openai,
            weight: w,
            turns: 1,
            chat: None,
        };
        let wl = Workload::new(
            vec![kind(1), kind(3)],
            vec![prompts::Prompt::user("x")],
            PromptOrder::Random,
        );
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let n = 8000;
        let second = (0..n).filter(|_| wl.pick_kind(&mut rng) == 1).count();
        assert!((second as f64 / n as f64 - 0.75).abs() < 0.02, "{second}");
        let wl = Workload::new(
            vec![kind(1)],
            vec![prompts::Prompt::user("a"), prompts::Prompt::user("b")],
            PromptOrder::Sequential,
        );
        let picks: Vec<_> = (0..4)
            .map(|_| wl.pick_prompt(&mut rng).messages_json.clone())
            .collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
    }
}
