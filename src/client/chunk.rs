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
    /// `usage.completion_tokens` (or the API's output-token count), when present.
    pub completion_tokens: Option<u64>,
    /// Of those, reasoning tokens (`usage.completion_tokens_details.reasoning_tokens`), when present.
    pub reasoning_tokens: Option<u64>,
    /// The event ends the stream (the Responses API's `response.completed`, Anthropic's
    /// `message_stop`; chat streams end with `[DONE]` instead).
    pub end: bool,
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
struct RawUsage {
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens_details: Option<TokenDetails>,
}

/// `completion_tokens_details` (chat) or `output_tokens_details` (Responses).
#[derive(Deserialize)]
pub(super) struct TokenDetails {
    #[serde(default)]
    pub(super) reasoning_tokens: Option<u64>,
}

/// A string borrowed from the input when it has no escapes (serde's own `Cow` always copies).
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

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

/// The object keys this parser looks at; every other key is skipped without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Choices,
    Usage,
    Error,
    Detail,
    Delta,
    Message,
    Text,
    Content,
    Reasoning,
    ToolCalls,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "choices" => Key::Choices,
                    "usage" => Key::Usage,
                    "error" => Key::Error,
                    "detail" => Key::Detail,
                    "delta" => Key::Delta,
                    "message" => Key::Message,
                    "text" => Key::Text,
                    "content" => Key::Content,
                    "reasoning_content" | "reasoning" => Key::Reasoning,
                    "tool_calls" => Key::ToolCalls,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Which level of the chunk a seed reads; each writes straight into the [`ChunkInfo`], so no
/// intermediate structs are built or moved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The event object.
    Top,
    /// The `choices` array (only its first element is read).
    Choices,
    /// One choice.
    Choice,
    /// A choice's `delta` (or `message`).
    Delta,
}

struct Seed<'i, 'a> {
    info: &'i mut ChunkInfo<'a>,
    level: Level,
    /// Raw error values, read after the walk (rarely present).
    error: &'i mut Option<&'a RawValue>,
}

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for Seed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Seed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat-completion chunk")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        // `null` choices, delta or message.
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.level == Level::Choices {
            seq.next_element_seed(Seed {
                level: Level::Choice,
                info: self.info,
                error: self.error,
            })?;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let Seed { info, level, error } = self;
        while let Some(key) = map.next_key::<Key>()? {
            match (level, key) {
                (Level::Top, Key::Choices) => map.next_value_seed(Seed {
                    info: &mut *info,
                    level: Level::Choices,
                    error: &mut *error,
                })?,
                (Level::Top, Key::Usage) => {
                    if let Some(u) = map.next_value::<Option<RawUsage>>()? {
                        info.completion_tokens = u.completion_tokens.or(info.completion_tokens);
                        info.reasoning_tokens = u
                            .completion_tokens_details
                            .and_then(|d| d.reasoning_tokens)
                            .or(info.reasoning_tokens);
                    }
                }
                (Level::Top, Key::Error) => {
                    if let Some(v) = map.next_value::<Option<&'a RawValue>>()? {
                        *error = Some(v);
                    }
                }
                (Level::Top, Key::Detail) => {
                    if let Some(v) = map.next_value::<Option<&'a RawValue>>()? {
                        error.get_or_insert(v);
                    }
                }
                (Level::Choice, Key::Delta | Key::Message) => map.next_value_seed(Seed {
                    info: &mut *info,
                    level: Level::Delta,
                    error: &mut *error,
                })?,
                (Level::Choice, Key::Text) | (Level::Delta, Key::Content) => {
                    if let Some(t) = map.next_value::<Option<Text<'a>>>()? {
                        info.text[0] = Some(t.0);
                    }
                }
                (Level::Delta, Key::Reasoning) => {
                    if let Some(t) = map.next_value::<Option<Text<'a>>>()? {
                        info.text[1] = Some(t.0);
                    }
                }
                (Level::Delta, Key::ToolCalls) => {
                    if let Some(t) = map.next_value::<Option<&'a RawValue>>()? {
                        info.tool_call |= !matches!(t.get().trim(), "null" | "[]");
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Message of an error value: its `message` field, the string itself, or the raw JSON.
pub(super) fn error_message(raw: &RawValue) -> Option<String> {
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
    let mut info = ChunkInfo::default();
    let mut error = None;
    // Validating UTF-8 once up front (fast for ASCII) spares serde a check per string.
    let text = std::str::from_utf8(data).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format!("invalid UTF-8 ({e})"))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(
        Seed {
            info: &mut info,
            level: Level::Top,
            error: &mut error,
        },
        &mut de,
    )?;
    de.end()?;
    info.error = error.and_then(error_message);
    Ok(info)
}

/// Longest event kept as a [`ChunkReader`] template: token chunks are a few hundred bytes.
const MAX_TEMPLATE_BYTES: usize = 1024;

/// Reads the events of a stream, remembering the shape of the last plain token chunk.
///
/// The token chunks of one stream differ only in their text: `{"id":"chatcmpl-1",...,"delta":
/// {"content":"` + text + `"},"finish_reason":null}]}`. Once [`parse`] has read one such event
/// and found its text unescaped, borrowed at a known place, and nothing else (no usage, error,
/// reasoning or tool call), any event with the same bytes before and after that place and a
/// text without `"`, `\` or control characters is valid JSON read the same way, with the new
/// text. That check is a pair of comparisons, so most token events skip the full parse (the
/// largest cost of the generator's own code on a token stream).
#[derive(Debug, Default)]
pub struct ChunkReader {
    /// The last event that qualified as a template (empty: none).
    template: Vec<u8>,
    /// Bytes of the template before its text.
    before: usize,
    /// Bytes of the template after its text.
    after: usize,
}

impl ChunkReader {
    /// A reader with no template yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one `data:` payload (not `[DONE]`), as [`parse`] does.
    pub fn parse<'d>(&mut self, data: &'d [u8]) -> Result<ChunkInfo<'d>, serde_json::Error> {
        if let Some(text) = self.same_shape(data) {
            return Ok(ChunkInfo {
                text: [Some(Cow::Borrowed(text)), None],
                ..ChunkInfo::default()
            });
        }
        let info = parse(data)?;
        self.learn(data, &info);
        Ok(info)
    }

    /// The text of `data` when it has the template's shape.
    fn same_shape<'d>(&self, data: &'d [u8]) -> Option<&'d str> {
        let t = &self.template;
        if t.is_empty() || data.len() < self.before + self.after {
            return None;
        }
        let end = data.len() - self.after;
        if data[..self.before] != t[..self.before] || data[end..] != t[t.len() - self.after..] {
            return None;
        }
        let text = &data[self.before..end];
        if text.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        std::str::from_utf8(text).ok()
    }

    /// Keeps `data` as the template if it is a plain token chunk with its text borrowed.
    fn learn(&mut self, data: &[u8], info: &ChunkInfo<'_>) {
        let plain = info.text[1].is_none()
            && !info.tool_call
            && info.completion_tokens.is_none()
            && info.reasoning_tokens.is_none()
            && !info.end
            && info.error.is_none()
            && data.len() <= MAX_TEMPLATE_BYTES;
        let Some(Cow::Borrowed(text)) = info.text[0].as_ref().filter(|_| plain) else {
            return;
        };
        let at = (text.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        if at > data.len() || data.len() - at < text.len() {
            return;
        }
        self.template.clear();
        self.template.extend_from_slice(data);
        self.before = at;
        self.after = data.len() - at - text.len();
    }
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

    /// Content, reasoning, tool call, completion tokens.
    type Reading = (Option<String>, Option<String>, bool, Option<u64>);

    /// The same reading, done the slow way on a `serde_json::Value`.
    fn reference(data: &[u8]) -> Option<Reading> {
        let v: serde_json::Value = serde_json::from_slice(data).ok()?;
        let choice = v.get("choices").and_then(|c| c.get(0));
        let delta = choice.and_then(|c| {
            c.get("delta")
                .filter(|d| !d.is_null())
                .or_else(|| c.get("message"))
        });
        let s = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_str()).map(str::to_string);
        let content = s(delta.and_then(|d| d.get("content")))
            .or_else(|| s(choice.and_then(|c| c.get("text"))));
        let reasoning =
            s(delta.and_then(|d| d.get("reasoning_content").or_else(|| d.get("reasoning"))));
        let tools = delta
            .and_then(|d| d.get("tool_calls"))
            .is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty()));
        let usage = v
            .get("usage")
            .and_then(|u| u.get("completion_tokens"))
            .and_then(|n| n.as_u64());
        Some((content, reasoning, tools, usage))
    }

    #[test]
    fn a_reader_reads_token_chunks_of_one_shape_as_parse_does() {
        let mut r = ChunkReader::new();
        let chunk = |t: &str| {
            format!(
                r#"{{"id":"c1","choices":[{{"index":0,"delta":{{"content":"{t}"}},"finish_reason":null}}]}}"#
            )
        };
        for t in ["a", " hello", "", "é", r#"q\"uote"#, " x", r#"\u00e9"#, "y"] {
            let e = chunk(t);
            assert_eq!(
                r.parse(e.as_bytes()).unwrap(),
                parse(e.as_bytes()).unwrap(),
                "{t}"
            );
        }
        // Same shape, but no longer valid JSON or no longer a plain text.
        assert!(r.parse(chunk("a\nb").as_bytes()).is_err());
        let other = br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"completion_tokens":3}}"#;
        assert_eq!(r.parse(other).unwrap(), parse(other).unwrap());
        let role = br#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(r.parse(role).unwrap(), parse(role).unwrap());
    }

    proptest::proptest! {
        /// After any template, a reader agrees with `parse` on any event: Ok or Err, and what it reads.
        #[test]
        fn a_reader_agrees_with_parse(
            first in "[a-z é]{0,6}",
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            tail in proptest::prelude::any::<bool>(),
        ) {
            let head = br#"{"id":"c","choices":[{"delta":{"content":""#.to_vec();
            let foot: &[u8] = if tail { br#""}}]}"# } else { br#""}}],"usage":null}"# };
            let mut r = ChunkReader::new();
            let template = [&head[..], first.as_bytes(), foot].concat();
            proptest::prop_assert_eq!(r.parse(&template).unwrap(), parse(&template).unwrap());
            let event = [&head[..], &text[..], foot].concat();
            let (got, want) = (r.parse(&event), parse(&event));
            proptest::prop_assert_eq!(got.is_ok(), want.is_ok());
            if let (Ok(g), Ok(w)) = (got, want) {
                proptest::prop_assert_eq!(g, w);
            }
        }

        #[test]
        fn never_panics_on_any_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&data);
        }

        #[test]
        fn agrees_with_a_value_based_reading(
            content in proptest::option::of("[a-z \\\\\"é]{0,12}"),
            reasoning in proptest::option::of("[a-z]{0,5}"),
            tools in proptest::prelude::any::<bool>(),
            usage in proptest::option::of(0u64..1000),
            extra_choice in proptest::prelude::any::<bool>(),
        ) {
            let mut delta = serde_json::Map::new();
            if let Some(c) = &content { delta.insert("content".into(), c.clone().into()); }
            if let Some(r) = &reasoning { delta.insert("reasoning_content".into(), r.clone().into()); }
            if tools { delta.insert("tool_calls".into(), serde_json::json!([{"index": 0}])); }
            let mut choices = vec![serde_json::json!({"index": 0, "delta": delta, "finish_reason": null})];
            if extra_choice { choices.push(serde_json::json!({"index": 1, "delta": {"content": "other"}})); }
            let mut v = serde_json::json!({"id": "x", "object": "chat.completion.chunk", "choices": choices});
            if let Some(u) = usage { v["usage"] = serde_json::json!({"prompt_tokens": 1, "completion_tokens": u}); }
            let bytes = serde_json::to_vec(&v).unwrap();
            let got = parse(&bytes).unwrap();
            let want = reference(&bytes).unwrap();
            proptest::prop_assert_eq!(got.text[0].as_deref().map(str::to_string), want.0);
            proptest::prop_assert_eq!(got.text[1].as_deref().map(str::to_string), want.1);
            proptest::prop_assert_eq!(got.tool_call, want.2);
            proptest::prop_assert_eq!(got.completion_tokens, want.3);
        }
    }
}
