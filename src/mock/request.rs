//! What the mock reads from a chat request: the JSON body's few fields and the `x-mock-*` test headers.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use hyper::HeaderMap;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::FaultRates;

/// The fields of a chat-completion body the mock acts on; serde skips all others (`params`,
/// `features`, ...). Strings borrow from the body when they hold no escapes.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest<'a> {
    #[serde(borrow)]
    pub(crate) model: Cow<'a, str>,
    /// Chat and Anthropic Messages.
    #[serde(default)]
    pub(crate) messages: Option<PromptTokens>,
    /// Legacy completions.
    #[serde(default)]
    pub(crate) prompt: Option<TextPrompt>,
    /// The Responses API and embeddings.
    #[serde(default)]
    pub(crate) input: Option<TextPrompt>,
    /// The Responses API's output cap.
    #[serde(default)]
    pub(crate) max_output_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default, borrow)]
    pub(crate) chat_id: Option<Cow<'a, str>>,
}

/// OpenAI's `stream_options`.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

impl ChatRequest<'_> {
    /// The request's own cap on output tokens, if any (the smaller one if both are given).
    pub(crate) fn max_tokens(&self) -> Option<u32> {
        [
            self.max_tokens,
            self.max_completion_tokens,
            self.max_output_tokens,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The prompt's estimated tokens, from whichever field carried it.
    pub(crate) fn prompt_tokens(&self) -> u32 {
        self.messages.map(|m| m.0).unwrap_or(0)
            + self.prompt.map_or(0, |p| p.tokens)
            + self.input.map_or(0, |p| p.tokens)
    }

    /// OpenAI's opt-in for a usage chunk at the end of a stream.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// A rough prompt-token count of `messages`, which must be an array: about 4 characters per token
/// of string content plus OpenAI's few tokens of per-message framing. Only feeds `usage.prompt_tokens`,
/// so counting characters instead of running a tokenizer keeps parsing cheap.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PromptTokens(pub(crate) u32);

/// Framing tokens OpenAI adds per message, and once per prompt.
const PER_MESSAGE: u32 = 4;
const PER_PROMPT: u32 = 3;

impl<'de> Deserialize<'de> for PromptTokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Messages;
        impl<'de> Visitor<'de> for Messages {
            type Value = PromptTokens;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PromptTokens, A::Error> {
                let mut total = PER_PROMPT;
                while let Some(m) = seq.next_element::<Message>()? {
                    total = total.saturating_add(PER_MESSAGE + m.content.0.div_ceil(4));
                }
                Ok(PromptTokens(total))
            }
        }
        d.deserialize_seq(Messages)
    }
}

/// A text prompt (`prompt` of legacy completions, `input` of the Responses API and embeddings):
/// a string, or an array of strings or messages. Counted as [`PromptTokens`] counts messages.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TextPrompt {
    /// Estimated tokens.
    pub(crate) tokens: u32,
    /// Inputs: 1 for a string, else the array's length (embeddings answer one vector each).
    pub(crate) items: u32,
}

impl<'de> Deserialize<'de> for TextPrompt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextPrompt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E>(self, s: &str) -> Result<TextPrompt, E> {
                let chars = u32::try_from(s.chars().count()).unwrap_or(u32::MAX);
                Ok(TextPrompt {
                    tokens: PER_PROMPT.saturating_add(chars.div_ceil(4)),
                    items: 1,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextPrompt, A::Error> {
                let mut p = TextPrompt {
                    tokens: PER_PROMPT,
                    items: 0,
                };
                while let Some(item) = seq.next_element::<Item>()? {
                    p.tokens = p.tokens.saturating_add(PER_MESSAGE + item.0 .0.div_ceil(4));
                    p.items = p.items.saturating_add(1);
                }
                Ok(p)
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of a text prompt's array: a string or a message (its `content` counts).
struct Item(ContentChars);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a message")
            }
            fn visit_str<E>(self, s: &str) -> Result<Item, E> {
                Ok(Item(ContentChars(
                    u32::try_from(s.chars().count()).unwrap_or(u32::MAX),
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                // Token-id arrays: one token each.
                let mut n = 0u32;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n = n.saturating_add(4);
                }
                Ok(Item(ContentChars(n)))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
                Ok(Item(ContentChars(4)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut chars = ContentChars(0);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "content" {
                        chars = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Item(chars))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: ContentChars,
}

/// Character count of a message's `content` when it is a string; 0 for parts arrays and the rest.
#[derive(Default)]
struct ContentChars(u32);

impl<'de> Deserialize<'de> for ContentChars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Content;
        impl<'de> Visitor<'de> for Content {
            type Value = ContentChars;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("message content")
            }
            fn visit_str<E>(self, s: &str) -> Result<ContentChars, E> {
                Ok(ContentChars(
                    u32::try_from(s.chars().count()).unwrap_or(u32::MAX),
                ))
            }
            fn visit_unit<E>(self) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_none<E>(self) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ContentChars, E> {
                Ok(ContentChars(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ContentChars, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ContentChars(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContentChars, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ContentChars(0))
            }
        }
        d.deserialize_any(Content)
    }
}

/// What happens to one chat request, drawn from [`FaultRates`] or forced by `x-mock-scenario`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    Ok,
    Http500,
    Http429,
    Drop,
    Malformed,
    StreamError,
}

impl Scenario {
    const NAMES: &'static str = "ok|http_500|http_429|drop|malformed|stream_error";

    fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"ok" => Scenario::Ok,
            b"http_500" => Scenario::Http500,
            b"http_429" => Scenario::Http429,
            b"drop" => Scenario::Drop,
            b"malformed" => Scenario::Malformed,
            b"stream_error" => Scenario::StreamError,
            _ => return None,
        })
    }

    /// Picks an outcome for a uniform draw `u` in [0, 1): the rates are laid end to end, so each
    /// fault happens with exactly its own probability as long as they sum to at most 1 (beyond
    /// that, later faults in the list are squeezed out).
    pub(crate) fn draw(rates: &FaultRates, u: f64) -> Self {
        let mut edge = 0.0;
        for (p, s) in [
            (rates.http_500, Scenario::Http500),
            (rates.http_429, Scenario::Http429),
            (rates.drop, Scenario::Drop),
            (rates.malformed, Scenario::Malformed),
            (rates.stream_error, Scenario::StreamError),
        ] {
            edge += p;
            if u < edge {
                return s;
            }
        }
        Scenario::Ok
    }
}

/// Most tokens one request may ask for, so a non-streaming answer's text stays a few MB.
pub(crate) const MAX_TOKENS: u32 = 1_000_000;

/// Per-request overrides that tests set with headers.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Directives {
    /// `x-mock-scenario`: forces an outcome instead of drawing one.
    pub(crate) scenario: Option<Scenario>,
    /// `x-mock-tokens`: content tokens for this request (still capped by `max_tokens`).
    pub(crate) tokens: Option<u32>,
    /// `x-mock-ttft-ms`: time to first token for this request.
    pub(crate) ttft: Option<Duration>,
}

impl Directives {
    /// Reads the `x-mock-*` headers; an unusable value is an error message naming the header.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        let mut d = Directives::default();
        if let Some(v) = headers.get("x-mock-scenario") {
            d.scenario = Some(Scenario::parse(v.as_bytes()).ok_or_else(|| {
                format!(
                    "unknown x-mock-scenario header value {:?}; expected one of {}",
                    String::from_utf8_lossy(v.as_bytes()),
                    Scenario::NAMES
                )
            })?);
        }
        if let Some(v) = headers.get("x-mock-tokens") {
            let n: u32 = parse_number(v.as_bytes(), "x-mock-tokens")?;
            if n > MAX_TOKENS {
                return Err(format!(
                    "x-mock-tokens header value {n} is above the limit {MAX_TOKENS}"
                ));
            }
            d.tokens = Some(n);
        }
        if let Some(v) = headers.get("x-mock-ttft-ms") {
            d.ttft = Some(Duration::from_millis(parse_number(
                v.as_bytes(),
                "x-mock-ttft-ms",
            )?));
        }
        Ok(d)
    }
}

fn parse_number<T: std::str::FromStr>(v: &[u8], header: &str) -> Result<T, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "invalid {header} header value {:?}; expected a non-negative integer",
                String::from_utf8_lossy(v)
            )
        })
}
