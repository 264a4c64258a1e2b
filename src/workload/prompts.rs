//! Prompts: the single `--prompt`, a dataset file (`.txt`, `.jsonl`, ShareGPT `.json`) or
//! synthetic prompts of N±σ tokens. Loaded and serialized once at start; per request the
//! engine only picks one.

use bytes::Bytes;
use rand::Rng;
use rand_distr_free::normal;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One prompt, ready to splice into a request body.
#[derive(Clone, Debug)]
pub struct Prompt {
    /// The `messages` array, serialized.
    pub messages_json: Bytes,
    /// The dataset's `max_tokens` for this prompt, if it gave one.
    pub max_tokens: Option<u32>,
}

impl Prompt {
    /// A prompt of one user message.
    pub fn user(text: &str) -> Self {
        Self::from_messages(&json!([{"role": "user", "content": text}]), None)
    }

    fn from_messages(messages: &Value, max_tokens: Option<u32>) -> Self {
        Self {
            messages_json: Bytes::from(
                serde_json::to_vec(messages).expect("JSON values serialize"),
            ),
            max_tokens,
        }
    }
}

/// Why a prompts file was refused. Each names the file (and line, for line formats).
#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    /// The file could not be read.
    #[error("--prompts {path}: cannot read the file: {cause}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause (shown in the message, not chained: it would print twice).
        cause: std::io::Error,
    },
    /// A line or entry is malformed.
    #[error("--prompts {path}:{line}: {reason}")]
    Line {
        /// File.
        path: PathBuf,
        /// 1-based line (JSONL, text) or entry (ShareGPT) number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The whole file is malformed or empty.
    #[error("--prompts {path}: {reason}")]
    File {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An unknown extension.
    #[error("--prompts {path}: unknown format; use .txt (one prompt per line), .jsonl ({{\"prompt\": …}} or {{\"messages\": […]}} per line) or ShareGPT .json")]
    Format {
        /// File.
        path: PathBuf,
    },
}

/// Options for ShareGPT files.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShareGptOptions {
    /// Send the whole conversation up to the last human turn as history, not just the first turn.
    pub history: bool,
}

/// Loads a prompts file, by extension.
pub fn load(path: &Path, sharegpt: ShareGptOptions) -> Result<Vec<Prompt>, PromptsError> {
    let text = std::fs::read_to_string(path).map_err(|cause| PromptsError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let prompts = match ext.as_str() {
        "txt" => parse_txt(&text),
        "jsonl" => parse_jsonl(path, &text)?,
        "json" => parse_sharegpt(path, &text, sharegpt)?,
        _ => {
            return Err(PromptsError::Format {
                path: path.to_path_buf(),
            })
        }
    };
    if prompts.is_empty() {
        return Err(PromptsError::File {
            path: path.to_path_buf(),
            reason: "no prompts in the file".into(),
        });
    }
    Ok(prompts)
}

fn parse_txt(text: &str) -> Vec<Prompt> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Prompt::user)
        .collect()
}

fn max_tokens_of(v: &Value) -> Result<Option<u32>, String> {
    match v.get("max_tokens") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| "\"max_tokens\" must be a positive integer".to_string()),
    }
}

fn valid_messages(m: &Value) -> Result<(), String> {
    let arr = m.as_array().ok_or("\"messages\" must be an array")?;
    if arr.is_empty() {
        return Err("\"messages\" is empty".into());
    }
    for (i, msg) in arr.iter().enumerate() {
        if !msg.get("role").is_some_and(Value::is_string) {
            return Err(format!("message {} has no \"role\" string", i + 1));
        }
        if msg.get("content").is_none() {
            return Err(format!("message {} has no \"content\"", i + 1));
        }
    }
    Ok(())
}

fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<Prompt>, PromptsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| PromptsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let v: Value =
            serde_json::from_str(line).map_err(|e| err(format!("not valid JSON ({e})")))?;
        let max_tokens = max_tokens_of(&v).map_err(err)?;
        if let Some(p) = v.get("prompt").and_then(Value::as_str) {
            let mut prompt = Prompt::user(p);
            prompt.max_tokens = max_tokens;
            out.push(prompt);
        } else if let Some(m) = v.get("messages") {
            valid_messages(m).map_err(err)?;
            out.push(Prompt::from_messages(m, max_tokens));
        } else {
            return Err(err(
                "needs a \"prompt\" string or a \"messages\" array".into()
            ));
        }
    }
    Ok(out)
}

fn parse_sharegpt(
    path: &Path,
    text: &str,
    opts: ShareGptOptions,
) -> Result<Vec<Prompt>, PromptsError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PromptsError::File {
        path: path.to_path_buf(),
        reason: format!("not valid JSON ({e}); a ShareGPT file is an array of {{\"conversations\": [{{\"from\", \"value\"}}]}}"),
    })?;
    let entries = v.as_array().ok_or_else(|| PromptsError::File {
        path: path.to_path_buf(),
        reason: "not a JSON array of ShareGPT conversations".into(),
    })?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let err = |reason: &str| PromptsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason: format!("entry {}: {reason}", i + 1),
        };
        let turns = entry
            .get("conversations")
            .and_then(Value::as_array)
            .ok_or_else(|| err("has no \"conversations\" array"))?;
        let mut messages = Vec::new();
        let mut last_human = None;
        for t in turns {
            let from = t
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| err("a turn has no \"from\""))?;
            let value = t
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| err("a turn has no \"value\" string"))?;
            let role = match from {
                "human" | "user" => "user",
                "gpt" | "assistant" | "chatgpt" | "bard" | "bing" => "assistant",
                "system" => "system",
                _ => continue,
            };
            messages.push(json!({"role": role, "content": value}));
            if role == "user" {
                last_human = Some(messages.len());
                if !opts.history {
                    break;
                }
            }
        }
        // Conversations without a human turn carry no prompt; they are skipped, as peers do.
        let Some(end) = last_human else { continue };
        let messages = if opts.history {
            &messages[..end]
        } else {
            &messages[end - 1..end]
        };
        out.push(Prompt::from_messages(
            &Value::Array(messages.to_vec()),
            None,
        ));
    }
    Ok(out)
}

/// Words that are each exactly one cl100k_base token (with their leading space), for
/// synthetic prompts whose token length is known without tokenizing.
const WORDS: [&str; 32] = [
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " as", " was", " with",
    " be", " by", " on", " not", " he", " this", " are", " or", " his", " from", " at", " which",
    " but", " have", " an", " had", " they", " you", " were", " their",
];

/// `count` synthetic prompts whose lengths are drawn from N(mean, stddev) tokens (at least 1).
pub fn synthetic(mean: u32, stddev: u32, count: usize, rng: &mut impl Rng) -> Vec<Prompt> {
    (0..count)
        .map(|_| {
            let len = normal(rng, f64::from(mean), f64::from(stddev))
                .round()
                .max(1.0) as usize;
            let mut text = String::with_capacity(len * 5);
            push_words(&mut text, len, rng);
            Prompt::user(text.trim_start())
        })
        .collect()
}

/// Appends `count` words of [`WORDS`], each exactly one cl100k_base token (a leading space
/// included), so that the text is `count` tokens long (trimming the first space keeps it so).
pub(crate) fn push_words(text: &mut String, count: usize, rng: &mut impl Rng) {
    for _ in 0..count {
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
}

/// A normal sample without another dependency (Box–Muller).
mod rand_distr_free {
    use rand::Rng;

    pub fn normal(rng: &mut impl Rng, mean: f64, stddev: f64) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        mean + stddev * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::io::Write;

    fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn messages(p: &Prompt) -> Value {
        serde_json::from_slice(&p.messages_json).unwrap()
    }

    #[test]
    fn txt_one_prompt_per_line() {
        let f = file(".txt", "hello\n\n  world  \n");
        let p = load(f.path(), ShareGptOptions::default()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            messages(&p[1]),
            json!([{"role": "user", "content": "world"}])
        );
    }

    #[test]
    fn jsonl_prompts_messages_and_line_numbered_errors() {
        let f = file(".jsonl", "{\"prompt\": \"a\", \"max_tokens\": 7}\n\n{\"messages\": [{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"b\"}]}\n");
        let p = load(f.path(), ShareGptOptions::default()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].max_tokens, Some(7));
        assert_eq!(messages(&p[1]).as_array().unwrap().len(), 2);
        for (text, needle) in [
            ("{\"prompt\": \"a\"}\n{oops\n", ":2: not valid JSON"),
            ("{\"x\": 1}\n", ":1: needs a \"prompt\""),
            (
                "{\"messages\": [{\"content\": \"c\"}]}\n",
                ":1: message 1 has no \"role\"",
            ),
            (
                "{\"prompt\": \"a\", \"max_tokens\": -1}\n",
                ":1: \"max_tokens\"",
            ),
        ] {
            let f = file(".jsonl", text);
            let e = load(f.path(), ShareGptOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle) && e.contains("--prompts"), "{e}");
        }
    }

    #[test]
    fn sharegpt_first_turn_or_history() {
        let text = r#"[
            {"id": "1", "conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"}, {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]},
            {"id": "2", "conversations": [{"from": "gpt", "value": "only"}]}
        ]"#;
        let f = file(".json", text);
        let p = load(f.path(), ShareGptOptions::default()).unwrap();
        assert_eq!(
            p.len(),
            1,
            "the conversation without a human turn is skipped"
        );
        assert_eq!(messages(&p[0]), json!([{"role": "user", "content": "q1"}]));
        let p = load(f.path(), ShareGptOptions { history: true }).unwrap();
        assert_eq!(messages(&p[0]).as_array().unwrap().len(), 3);
        let f = file(".json", r#"[{"conversations": [{"value": "x"}]}]"#);
        let e = load(f.path(), ShareGptOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(":1: entry 1: a turn has no \"from\""), "{e}");
        let f = file(".json", "{}");
        assert!(load(f.path(), ShareGptOptions::default())
            .unwrap_err()
            .to_string()
            .contains("array"));
    }

    #[test]
    fn unknown_format_empty_and_missing_files() {
        let f = file(".csv", "a");
        assert!(load(f.path(), ShareGptOptions::default())
            .unwrap_err()
            .to_string()
            .contains("unknown format"));
        let f = file(".txt", "\n\n");
        assert!(load(f.path(), ShareGptOptions::default())
            .unwrap_err()
            .to_string()
            .contains("no prompts"));
        let e = load(Path::new("/nonexistent/p.txt"), ShareGptOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/p.txt"), "{e}");
    }

    #[test]
    fn synthetic_lengths_follow_the_distribution_in_tokens() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let p = synthetic(100, 10, 400, &mut rng);
        let tok = crate::client::Tokenizer::new();
        let lens: Vec<f64> = p
            .iter()
            .map(|p| {
                let m = messages(p);
                tok.count(m[0]["content"].as_str().unwrap()).unwrap() as f64
            })
            .collect();
        let mean = lens.iter().sum::<f64>() / lens.len() as f64;
        let sd = (lens.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lens.len() as f64).sqrt();
        assert!((mean - 100.0).abs() < 3.0, "mean {mean}");
        assert!((sd - 10.0).abs() < 2.0, "sd {sd}");
    }
}
