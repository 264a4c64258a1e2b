//! Reading one SSE `data:` payload of a chat-completion stream: does it carry tokens, usage,
//! or an error? Deserializes with borrowed strings and skips everything else, so a typical
//! token chunk costs one pass over its bytes and no allocation.

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// What one event says.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo<'a> {
    /// Text of the first choice's delta in any channel (content, reasoning), borrowed when unescaped.
    pub text: [Option<Cow<'a, str>>; 2],
    /// The delta carried tool calls.
    pub tool_call: bool,
    /// `usage.completion_tokens`, when present.
    pub completion_tokens: Option<u64>,
    /// Error message carried by the stream (`{"error": ...}` or `{"detail": ...}`).
    pub error: Option<String>,
}

impl ChunkInfo<'_> {
    /// Whether the event carried output in any channel (a role-only or empty chunk does not).
    pub fn has_token(&self) -> bool {
        self.tool_call || self.text.iter().flatten().any(|t| !t.is_empty())
    }
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(borrow, default)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct RawChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<RawDelta<'a>>,
    /// Some servers send whole `message` objects in stream chunks.
    #[serde(borrow, default)]
    message: Option<RawDelta<'a>>,
    /// Legacy completions stream `text`.
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
}

#[derive(Deserialize, Default)]
struct RawDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<Text<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<&'a RawValue>,
}

/// A string borrowed from the input when it has no escapes (serde's own `Cow` always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The first element of `choices`; later ones are skipped without allocating a Vec.
#[derive(Default)]
struct FirstChoice<'a>(Option<RawChoice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices or null")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FirstChoice(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<RawChoice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Message of an error value: its `message` field, the string itself, or the raw JSON.
fn error_message(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text == "null" {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let msg = match &value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("message") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => text.to_string(),
        },
        _ => text.to_string(),
    };
    Some(truncate(msg, 200))
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Parses one `data:` payload (not `[DONE]`).
pub fn parse(data: &[u8]) -> Result<ChunkInfo<'_>, serde_json::Error> {
    let raw: RawChunk<'_> = serde_json::from_slice(data)?;
    let mut info = ChunkInfo {
        completion_tokens: raw.usage.and_then(|u| u.completion_tokens),
        error: raw
            .error
            .and_then(error_message)
            .or_else(|| raw.detail.and_then(error_message)),
        ..ChunkInfo::default()
    };
    if let Some(choice) = raw.choices.0 {
        let delta = choice.delta.or(choice.message).unwrap_or_default();
        info.tool_call = delta
            .tool_calls
            .is_some_and(|t| !matches!(t.get().trim(), "null" | "[]"));
        info.text = [
            delta.content.or(choice.text).map(|t| t.0),
            delta.reasoning_content.or(delta.reasoning).map(|t| t.0),
        ];
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_chunk_has_no_token_content_chunk_does() {
        let role = parse(br#"{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#).unwrap();
        assert!(!role.has_token());
        let tok = parse(br#"{"choices":[{"delta":{"content":" hello"}}]}"#).unwrap();
        assert!(tok.has_token());
        assert_eq!(tok.text[0].as_deref(), Some(" hello"));
        assert!(matches!(tok.text[0], Some(Cow::Borrowed(_))));
    }

    #[test]
    fn reasoning_and_tool_calls_count_as_tokens() {
        assert!(
            parse(br#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#)
                .unwrap()
                .has_token()
        );
        assert!(parse(br#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#)
            .unwrap()
            .has_token());
        assert!(
            parse(br#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#)
                .unwrap()
                .has_token()
        );
        assert!(!parse(br#"{"choices":[{"delta":{"tool_calls":null}}]}"#)
            .unwrap()
            .has_token());
        assert!(
            !parse(br#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#)
                .unwrap()
                .has_token()
        );
    }

    #[test]
    fn usage_errors_and_other_events() {
        let u =
            parse(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":30}}"#).unwrap();
        assert_eq!(u.completion_tokens, Some(30));
        assert!(!u.has_token());
        let e = parse(br#"{"error":{"message":"Chat completion stream failed"}}"#).unwrap();
        assert_eq!(e.error.as_deref(), Some("Chat completion stream failed"));
        let d = parse(br#"{"detail":"401 Unauthorized"}"#).unwrap();
        assert_eq!(d.error.as_deref(), Some("401 Unauthorized"));
        let other = parse(br#"{"sources":[1,2],"choices":null,"error":null}"#).unwrap();
        assert_eq!(other, ChunkInfo::default());
        let escaped =
            parse(br#"{"choices":[{"delta":{"content":"a\"b"}},{"delta":{"content":"skip"}}]}"#)
                .unwrap();
        assert_eq!(escaped.text[0].as_deref(), Some("a\"b"));
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse(br#"{"choices": [ {"delta""#).is_err());
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }
}
