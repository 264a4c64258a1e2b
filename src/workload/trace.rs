//! `--trace FILE.jsonl`: a recorded request schedule in the Mooncake format, one request per
//! line: `timestamp` (ms from the trace start), `input_length` and `output_length` (tokens),
//! optional `hash_ids` (one id per 512-token block of the prompt; equal ids are equal blocks).
//!
//! The file is read once into compact per-line records (no prompt text): a trace of a million
//! lines holds a few dozen bytes per line. Each request's prompt is synthesized when it is sent
//! ([`Trace::prompt`]): block `h` is the same text wherever it appears (seeded from the run's
//! seed and `h`), so requests that share leading hash ids share that prefix exactly, as a server
//! with prefix caching saw them; tokens beyond the listed blocks are the line's own text.
//!
//! Rules (documented in docs/trace.md): timestamps must not go back in time (a file out of
//! order is refused at the first such line; sort it first); the first request is sent at once
//! and the others keep their distance from it, divided by `--trace-speed`.

use super::prompts::{push_words, Prompt};
use rand::SeedableRng;
use serde::Deserialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tokens per hash id (Mooncake's block size).
pub const BLOCK_TOKENS: u32 = 512;

/// Largest `input_length` a line may ask for, tokens (a prompt is synthesized in memory).
pub const MAX_INPUT_TOKENS: u64 = 1_000_000;

/// Latest a request may be due after the first (a year, as the plan's longest duration).
const MAX_OFFSET: Duration = Duration::from_secs(365 * 24 * 3600);

pub use crate::config::trace::TraceSpec;

/// Why a trace file was refused; each names the file, and the line where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("--trace {path}: cannot read the file: {cause}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause (shown in the message, not chained: it would print twice).
        cause: std::io::Error,
    },
    /// A line is malformed.
    #[error("--trace {path}:{line}: {reason}")]
    Line {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The file has no request.
    #[error("--trace {path}: no request in the file (expected one JSON object per line: {{\"timestamp\": 0, \"input_length\": 512, \"output_length\": 64, \"hash_ids\": [1]}})")]
    Empty {
        /// File.
        path: PathBuf,
    },
}

/// One line of the trace, compactly: its ids live in [`Trace::hash_ids`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    /// Offset from the first line's timestamp, µs.
    offset_us: u64,
    input_tokens: u32,
    output_tokens: u32,
    /// Start of its ids in the shared id list.
    ids_start: u32,
    /// Number of its ids used (those beyond the prompt's length are dropped).
    ids_len: u32,
}

/// A parsed trace: the schedule and the prompt shapes, without prompt text.
#[derive(Debug)]
pub struct Trace {
    records: Vec<Record>,
    hash_ids: Vec<u64>,
    speed: f64,
}

/// One line as written in the file.
#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: u64,
    output_length: u64,
    #[serde(default)]
    hash_ids: Option<Vec<u64>>,
}

impl Trace {
    /// Reads and checks a trace file.
    pub fn load(spec: &TraceSpec) -> Result<Trace, TraceError> {
        let file = std::fs::File::open(&spec.path).map_err(|cause| TraceError::Read {
            path: spec.path.clone(),
            cause,
        })?;
        Self::read(std::io::BufReader::new(file), &spec.path, spec.speed)
    }

    /// Reads a trace from `input` (`path` names it in errors), line by line.
    pub fn read(input: impl BufRead, path: &Path, speed: f64) -> Result<Trace, TraceError> {
        let mut trace = Trace {
            records: Vec::new(),
            hash_ids: Vec::new(),
            speed,
        };
        let mut first_ms: Option<f64> = None;
        let mut last = (0.0_f64, 0usize);
        for (i, line) in input.lines().enumerate() {
            let err = |reason: String| TraceError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let line = line.map_err(|e| err(format!("cannot read the line ({e})")))?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let l: Line = serde_json::from_str(line).map_err(|e| {
                err(format!(
                    "not a trace line ({e}); expected {{\"timestamp\": MS, \"input_length\": TOKENS, \"output_length\": TOKENS, \"hash_ids\": [..]}}"
                ))
            })?;
            if !(l.timestamp.is_finite() && l.timestamp >= 0.0) {
                return Err(err("\"timestamp\" must be 0 or more milliseconds".into()));
            }
            if last.1 > 0 && l.timestamp < last.0 {
                return Err(err(format!(
                    "\"timestamp\" {} is earlier than line {}'s {}: a trace must be in time order; sort it first, e.g. jq -c -s 'sort_by(.timestamp)[]'",
                    l.timestamp, last.1, last.0
                )));
            }
            last = (l.timestamp, i + 1);
            if l.input_length == 0 || l.input_length > MAX_INPUT_TOKENS {
                return Err(err(format!(
                    "\"input_length\" must be 1 to {MAX_INPUT_TOKENS} tokens"
                )));
            }
            if l.output_length == 0 || l.output_length > u64::from(u32::MAX) {
                return Err(err(format!(
                    "\"output_length\" must be 1 to {} tokens",
                    u32::MAX
                )));
            }
            let first = *first_ms.get_or_insert(l.timestamp);
            let offset_s = (l.timestamp - first) / 1000.0 / speed;
            let offset = Duration::try_from_secs_f64(offset_s)
                .ok()
                .filter(|d| *d <= MAX_OFFSET)
                .ok_or_else(|| {
                    err(
                        "the request is more than a year after the first (at this --trace-speed)"
                            .into(),
                    )
                })?;
            let input_tokens = l.input_length as u32;
            let blocks = input_tokens.div_ceil(BLOCK_TOKENS) as usize;
            let ids = l.hash_ids.unwrap_or_default();
            let used = &ids[..ids.len().min(blocks)];
            let ids_start = u32::try_from(trace.hash_ids.len())
                .map_err(|_| err("too many hash ids in the trace (more than 4 billion)".into()))?;
            trace.hash_ids.extend_from_slice(used);
            trace.records.push(Record {
                offset_us: u64::try_from(offset.as_micros()).unwrap_or(u64::MAX),
                input_tokens,
                output_tokens: l.output_length as u32,
                ids_start,
                ids_len: used.len() as u32,
            });
        }
        if trace.records.is_empty() {
            return Err(TraceError::Empty {
                path: path.to_path_buf(),
            });
        }
        trace.records.shrink_to_fit();
        trace.hash_ids.shrink_to_fit();
        Ok(trace)
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it has no request (never true for a loaded trace).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// When request `n` is due after the replay's start (its gap from the first line divided by
    /// the speed); `None` past the end.
    pub fn due(&self, n: usize) -> Option<Duration> {
        self.records
            .get(n)
            .map(|r| Duration::from_micros(r.offset_us))
    }

    /// The replay's length: when its last request is due.
    pub fn span(&self) -> Duration {
        self.due(self.len().saturating_sub(1)).unwrap_or_default()
    }

    /// The replay speed.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The prompt of request `n`, synthesized now: `input_length` tokens whose blocks follow its
    /// `hash_ids` (text seeded from `seed` and the id), and `max_tokens` = `output_length`.
    pub fn prompt(&self, n: usize, seed: u64) -> Option<Prompt> {
        let r = self.records.get(n)?;
        let ids = self
            .hash_ids
            .get(r.ids_start as usize..(r.ids_start + r.ids_len) as usize)
            .unwrap_or(&[]);
        // The `messages` JSON is written directly: the words are plain ASCII (letters and
        // spaces), so nothing needs escaping, and the text is never copied into a JSON value.
        const HEAD: &str = r#"[{"role":"user","content":""#;
        let mut json = String::with_capacity(HEAD.len() + r.input_tokens as usize * 6 + 3);
        json.push_str(HEAD);
        let mut left = r.input_tokens as usize;
        for &id in ids {
            let take = left.min(BLOCK_TOKENS as usize);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(seed, 1, id));
            push_words(&mut json, take, &mut rng);
            left -= take;
        }
        if left > 0 {
            // Beyond its listed blocks the prompt is this line's own.
            let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(seed, 2, n as u64));
            push_words(&mut json, left, &mut rng);
        }
        // The first word without its leading space (still one token).
        if json.as_bytes().get(HEAD.len()) == Some(&b' ') {
            json.remove(HEAD.len());
        }
        json.push_str("\"}]");
        Some(Prompt {
            messages_json: bytes::Bytes::from(json.into_bytes()),
            max_tokens: Some(r.output_tokens),
        })
    }
}

/// A well-spread seed from the run's seed, a domain (blocks, own text) and an id (splitmix64).
fn mix(seed: u64, domain: u64, id: u64) -> u64 {
    let mut z =
        seed ^ domain.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, speed: f64) -> Result<Trace, TraceError> {
        Trace::read(text.as_bytes(), Path::new("t.jsonl"), speed)
    }

    fn words(p: &Prompt) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&p.messages_json).unwrap();
        v[0]["content"]
            .as_str()
            .unwrap()
            .split(' ')
            .map(String::from)
            .collect()
    }

    #[test]
    fn schedule_from_the_first_line_divided_by_the_speed() {
        let t = read(
            "{\"timestamp\": 1000, \"input_length\": 10, \"output_length\": 5}\n\n{\"timestamp\": 1500, \"input_length\": 10, \"output_length\": 7, \"hash_ids\": [1]}\n{\"timestamp\": 1500.5, \"input_length\": 3, \"output_length\": 1}\n",
            2.0,
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.due(0), Some(Duration::ZERO));
        assert_eq!(t.due(1), Some(Duration::from_millis(250)));
        assert_eq!(t.due(2), Some(Duration::from_micros(250_250)));
        assert_eq!(t.due(3), None);
        assert_eq!(t.span(), Duration::from_micros(250_250));
        assert_eq!(t.prompt(1, 0).unwrap().max_tokens, Some(7));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (text, needle) in [
            ("{oops\n", "t.jsonl:1: not a trace line"),
            (
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 5, \"output_length\": 1}\n",
                "t.jsonl:2: not a trace line (missing field `input_length`",
            ),
            (
                "{\"timestamp\": 9, \"input_length\": 1, \"output_length\": 1}\n\n{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n",
                "t.jsonl:3: \"timestamp\" 5 is earlier than line 1's 9",
            ),
            (
                "{\"timestamp\": -1, \"input_length\": 1, \"output_length\": 1}\n",
                ":1: \"timestamp\" must be",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 1}\n",
                ":1: \"input_length\"",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 0}\n",
                ":1: \"output_length\"",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [\"a\"]}\n",
                ":1: not a trace line",
            ),
            ("\n\n", "no request in the file"),
        ] {
            let e = read(text, 1.0).unwrap_err().to_string();
            assert!(e.contains(needle) && e.starts_with("--trace "), "{e}");
        }
        let e = read(
            "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n{\"timestamp\": 1e15, \"input_length\": 1, \"output_length\": 1}\n",
            1.0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":2: the request is more than a year"), "{e}");
        let e = Trace::load(&TraceSpec {
            path: "/nonexistent/t.jsonl".into(),
            speed: 1.0,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/t.jsonl: cannot read"), "{e}");
    }

    #[test]
    fn shared_hash_ids_share_the_prefix_and_lengths_are_tokens() {
        let t = read(
            "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 1, \"hash_ids\": [7, 8, 9]}\n\
             {\"timestamp\": 1, \"input_length\": 1300, \"output_length\": 1, \"hash_ids\": [7, 8, 10]}\n\
             {\"timestamp\": 2, \"input_length\": 700, \"output_length\": 1, \"hash_ids\": [7]}\n\
             {\"timestamp\": 3, \"input_length\": 700, \"output_length\": 1, \"hash_ids\": [11, 8]}\n\
             {\"timestamp\": 4, \"input_length\": 300, \"output_length\": 1}\n\
             {\"timestamp\": 5, \"input_length\": 300, \"output_length\": 1}\n",
            1.0,
        )
        .unwrap();
        let p: Vec<Vec<String>> = (0..6).map(|n| words(&t.prompt(n, 42).unwrap())).collect();
        let b = BLOCK_TOKENS as usize;
        assert_eq!(p[0][..2 * b], p[1][..2 * b], "blocks 7 and 8 shared");
        assert_ne!(
            p[0][2 * b..],
            p[1][2 * b..2 * b + 76],
            "block 9 is not block 10"
        );
        assert_eq!(p[0][..b], p[2][..b], "block 7 shared");
        assert_ne!(
            p[2][b..],
            p[0][b..b + 188],
            "past block 7, line 3's own text"
        );
        assert_ne!(p[3][..b], p[0][..b], "block 11 is not block 7");
        assert_eq!(
            p[3][b..],
            p[0][b..b + 188],
            "a partial block 8 is block 8's start"
        );
        assert_ne!(p[4], p[5], "lines without ids share nothing");
        assert_eq!(words(&t.prompt(0, 42).unwrap()), p[0], "deterministic");
        assert_ne!(
            words(&t.prompt(0, 43).unwrap()),
            p[0],
            "another seed, other text"
        );
        let tok = crate::client::Tokenizer::new();
        for (n, want) in [(0usize, 1100u64), (1, 1300), (3, 700), (4, 300)] {
            let v: serde_json::Value =
                serde_json::from_slice(&t.prompt(n, 42).unwrap().messages_json).unwrap();
            let count = tok.count(v[0]["content"].as_str().unwrap()).unwrap();
            assert_eq!(count, want, "line {n}");
        }
        assert!(t.prompt(6, 42).is_none());
    }

    #[test]
    fn ids_beyond_the_prompt_are_not_kept() {
        let t = read(
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1, 2, 3]}\n",
            1.0,
        )
        .unwrap();
        assert_eq!(t.hash_ids, [1]);
        assert_eq!(words(&t.prompt(0, 1).unwrap()).len(), 10);
    }
}
