//! The vocabulary of what each request sends: which API the target speaks, how Open WebUI's
//! `chat_id` is filled, and how prompts are picked from a dataset. Owned by the plan; the
//! workload builds bodies from it.

use serde::{Deserialize, Serialize};

/// Which API the target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// Open WebUI: `POST /api/chat/completions` with the seed's payload.
    Openwebui,
    /// OpenAI-compatible: `POST /v1/chat/completions` with `stream_options.include_usage`.
    Openai,
    /// OpenAI legacy completions: `POST /v1/completions` with a text `prompt`, streamed `choices[0].text`.
    Completions,
    /// OpenAI Responses API: `POST /v1/responses`, typed SSE events ending with `response.completed`.
    Responses,
    /// Anthropic Messages API: `POST /v1/messages` (token in `x-api-key`), ending with `message_stop`.
    Anthropic,
}

impl ApiKind {
    /// The chat-completion (generation) path of this API.
    pub fn chat_path(self) -> &'static str {
        match self {
            ApiKind::Openwebui => "/api/chat/completions",
            ApiKind::Openai => "/v1/chat/completions",
            ApiKind::Completions => "/v1/completions",
            ApiKind::Responses => "/v1/responses",
            ApiKind::Anthropic => "/v1/messages",
        }
    }

    /// The model-list path of this API.
    pub fn models_path(self) -> &'static str {
        match self {
            ApiKind::Openwebui => "/api/models",
            _ => "/v1/models",
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

/// How prompts are picked from a dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PromptOrder {
    /// Uniformly at random (reproducible with `--seed`).
    #[default]
    Random,
    /// In file order, wrapping around, shared by all users.
    Sequential,
}
