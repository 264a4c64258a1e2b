//! `--scenario FILE`: a small TOML file declaring several request kinds with weights, each
//! its own stats row: streaming generations in any `--api` (Open WebUI, OpenAI chat, legacy
//! completions, Responses, Anthropic Messages; extra fields, multi-turn), non-streaming
//! completions, `GET` model lists and non-streaming `/v1/embeddings`.
//!
//! ```toml
//! [[request]]
//! kind = "chat"          # chat | completion (non-streaming) | models (GET the model list) | embeddings
//! api = "anthropic"      # openwebui | openai | completions | responses | anthropic (default: --api)
//! name = "chat"          # stats row name (default: the path)
//! weight = 3             # relative frequency (default 1)
//! turns = 3              # multi-turn: a user keeps its conversation for 3 turns (default 1)
//! max_tokens = 128
//! body = { temperature = 0.2 }
//! ```

use super::api::ApiKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a request kind does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKindType {
    /// Streaming chat completion.
    Chat,
    /// Non-streaming chat completion (`"stream": false`).
    Completion,
    /// `GET /api/models` or `/v1/models`.
    Models,
    /// Non-streaming `POST /v1/embeddings` of the prompt's text (E2E and request size, no tokens).
    Embeddings,
}

/// One declared request kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDecl {
    /// What it does.
    pub kind: RequestKindType,
    /// Stats row name (default: the path).
    #[serde(default)]
    pub name: Option<String>,
    /// Relative frequency.
    #[serde(default = "one")]
    pub weight: u32,
    /// API flavour (default: the run's `--api`).
    #[serde(default)]
    pub api: Option<ApiKind>,
    /// Turns a user keeps its conversation for (chat kinds).
    #[serde(default = "one")]
    pub turns: u32,
    /// `max_tokens` for this kind.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Extra body fields.
    #[serde(default)]
    pub body: Option<serde_json::Map<String, serde_json::Value>>,
}

fn one() -> u32 {
    1
}

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The request kinds.
    pub request: Vec<RequestDecl>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("--scenario {path}: cannot read the file: {cause}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause (shown in the message, not chained: it would print twice).
        cause: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("--scenario {path}: {reason}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// What is wrong (TOML errors carry line and column).
        reason: String,
    },
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ScenarioError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::parse(&text).map_err(|reason| ScenarioError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario =
            toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))?;
        if s.request.is_empty() {
            return Err("declares no [[request]]".into());
        }
        for (i, r) in s.request.iter().enumerate() {
            if r.weight == 0 {
                return Err(format!("request {}: weight must be at least 1", i + 1));
            }
            if r.turns == 0 {
                return Err(format!("request {}: turns must be at least 1", i + 1));
            }
        }
        let mut names: Vec<_> = s.request.iter().filter_map(|r| r.name.as_deref()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "two requests are named '{}'; names must be unique",
                w[0]
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mix() {
        let s = Scenario::parse(
            r#"
            [[request]]
            kind = "chat"
            weight = 3
            turns = 2
            body = { temperature = 0.2 }
            [[request]]
            kind = "models"
            name = "models"
            [[request]]
            kind = "completion"
            api = "openai"
            max_tokens = 16
            [[request]]
            kind = "embeddings"
            [[request]]
            kind = "chat"
            api = "anthropic"
            name = "claude"
            "#,
        )
        .unwrap();
        assert_eq!(s.request.len(), 5);
        assert_eq!(s.request[3].kind, RequestKindType::Embeddings);
        assert_eq!(s.request[4].api, Some(ApiKind::Anthropic));
        assert_eq!(s.request[0].weight, 3);
        assert_eq!(s.request[0].turns, 2);
        assert_eq!(s.request[1].weight, 1);
        assert_eq!(s.request[2].api, Some(ApiKind::Openai));
    }

    #[test]
    fn refuses_bad_files_with_a_reason() {
        for (text, needle) in [
            ("", "request"),
            ("[[request]]\nkind = \"teleport\"", "teleport"),
            ("[[request]]\nkind = \"chat\"\nweight = 0", "weight"),
            ("[[request]]\nkind = \"chat\"\ncolour = 1", "colour"),
            ("[[request]]\nkind = \"chat\"\nname = \"a\"\n[[request]]\nkind = \"models\"\nname = \"a\"", "unique"),
        ] {
            let e = Scenario::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
