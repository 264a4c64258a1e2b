//! What each request sends: API flavour, path, headers' content and the JSON body.
//!
//! Bodies are built from a template serialized once: per request only the `chat_id` is
//! spliced in, so the hot path does no JSON serialization.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Which API the target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// Open WebUI: `POST /api/chat/completions` with the seed's payload.
    Openwebui,
    /// OpenAI-compatible: `POST /v1/chat/completions` with `stream_options.include_usage`.
    Openai,
}

impl ApiKind {
    /// The chat-completion path of this API.
    pub fn chat_path(self) -> &'static str {
        match self {
            ApiKind::Openwebui => "/api/chat/completions",
            ApiKind::Openai => "/v1/chat/completions",
        }
    }
}

/// How the Open WebUI `chat_id` field is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ChatIdMode {
    /// `local:<uuid4>`: a temporary chat, which current Open WebUI streams normally.
    Local,
    /// A bare uuid4, exactly as the seed sent it (Open WebUI ≥ 0.6.22 answers 404 to non-admins).
    Uuid,
    /// No `chat_id` field.
    None,
}

/// The request body of a chat completion, ready to be stamped per request.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    /// Path on the target, e.g. `/api/chat/completions`.
    pub path: String,
    chat_id: ChatIdMode,
    /// Serialized body without `chat_id`, starting with `{`.
    body: Vec<u8>,
}

/// Inputs of a chat body.
#[derive(Clone, Debug)]
pub struct ChatSpec<'a> {
    /// API flavour.
    pub api: ApiKind,
    /// Model id.
    pub model: &'a str,
    /// The user message.
    pub prompt: &'a str,
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
        let messages = json!([{"role": "user", "content": spec.prompt}]);
        let mut body = match spec.api {
            ApiKind::Openwebui => json!({
                "stream": true,
                "model": spec.model,
                "messages": messages,
                "params": {},
                "background_tasks": {"title_generation": true, "tags_generation": true},
                "features": {"web_search": false},
            }),
            ApiKind::Openai => json!({
                "stream": true,
                "model": spec.model,
                "messages": messages,
                "stream_options": {"include_usage": true},
            }),
        };
        let obj = body.as_object_mut().expect("json! object literal");
        if let Some(max) = spec.max_tokens {
            obj.insert("max_tokens".into(), json!(max));
        }
        if let Some(extra) = spec.extra {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let chat_id = match spec.api {
            ApiKind::Openwebui if !obj.contains_key("chat_id") => spec.chat_id,
            _ => ChatIdMode::None,
        };
        Self {
            path: spec.api.chat_path().to_string(),
            chat_id,
            body: serde_json::to_vec(&body).expect("a JSON value always serializes"),
        }
    }

    /// The body of one request, with a fresh `chat_id` where the mode asks for one.
    pub fn body(&self) -> Bytes {
        let prefix = match self.chat_id {
            ChatIdMode::None => return Bytes::copy_from_slice(&self.body),
            ChatIdMode::Local => "local:",
            ChatIdMode::Uuid => "",
        };
        let mut buf = Vec::with_capacity(self.body.len() + 64);
        buf.extend_from_slice(b"{\"chat_id\":\"");
        buf.extend_from_slice(prefix.as_bytes());
        let mut uuid = uuid::Uuid::encode_buffer();
        buf.extend_from_slice(
            uuid::Uuid::new_v4()
                .hyphenated()
                .encode_lower(&mut uuid)
                .as_bytes(),
        );
        buf.push(b'"');
        // The template is a non-empty object (it always has "model"), so a comma follows.
        buf.push(b',');
        buf.extend_from_slice(&self.body[1..]);
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(api: ApiKind, chat_id: ChatIdMode) -> ChatSpec<'static> {
        ChatSpec {
            api,
            model: "m",
            prompt: "Hello there!",
            max_tokens: None,
            chat_id,
            extra: None,
        }
    }

    #[test]
    fn openwebui_body_is_the_seed_payload_with_local_chat_id() {
        let t = ChatTemplate::new(&spec(ApiKind::Openwebui, ChatIdMode::Local));
        let v: Value = serde_json::from_slice(&t.body()).unwrap();
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
        let id = v["chat_id"].as_str().unwrap();
        let uuid = id.strip_prefix("local:").unwrap();
        assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
        let v2: Value = serde_json::from_slice(&t.body()).unwrap();
        assert_ne!(v2["chat_id"], v["chat_id"], "fresh per request");
    }

    #[test]
    fn uuid_and_none_modes() {
        let t = ChatTemplate::new(&spec(ApiKind::Openwebui, ChatIdMode::Uuid));
        let v: Value = serde_json::from_slice(&t.body()).unwrap();
        assert!(uuid::Uuid::parse_str(v["chat_id"].as_str().unwrap()).is_ok());
        let t = ChatTemplate::new(&spec(ApiKind::Openwebui, ChatIdMode::None));
        let v: Value = serde_json::from_slice(&t.body()).unwrap();
        assert!(v.get("chat_id").is_none());
    }

    #[test]
    fn openai_body_asks_for_usage_and_merges_extra() {
        let extra: Map<String, Value> =
            serde_json::from_str(r#"{"temperature":0.5,"stream":true}"#).unwrap();
        let mut s = spec(ApiKind::Openai, ChatIdMode::Local);
        s.max_tokens = Some(64);
        s.extra = Some(&extra);
        let t = ChatTemplate::new(&s);
        let v: Value = serde_json::from_slice(&t.body()).unwrap();
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["temperature"], 0.5);
        assert!(v.get("chat_id").is_none());
    }
}
