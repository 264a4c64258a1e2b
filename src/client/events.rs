//! Reading one SSE `data:` payload of the typed-event APIs: the OpenAI Responses API
//! (`response.output_text.delta`, `response.completed`, ...) and the Anthropic Messages API
//! (`content_block_delta`, `message_delta`, `message_stop`, ...). Each payload names its own
//! type in a `type` field (the same as the SSE `event:` line), so only the `data:` is read.
//! Strings are borrowed when unescaped; unknown event types are skipped, never errors.

use super::chunk::{error_message, truncate, ChunkInfo, Text, TokenDetails};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Which typed-event API a stream speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI chat completions, legacy completions and Open WebUI: `data:` chunks with
    /// `choices`, ended by `data: [DONE]`.
    #[default]
    Chat,
    /// The OpenAI Responses API: ended by `response.completed` (or `response.incomplete`).
    Responses,
    /// The Anthropic Messages API: ended by `message_stop`.
    Anthropic,
}

impl Wire {
    /// The event that completes a stream, for failure messages.
    pub fn terminator(self) -> &'static str {
        match self {
            Wire::Chat => "[DONE]",
            Wire::Responses => "response.completed",
            Wire::Anthropic => "message_stop",
        }
    }
}

/// The fields of a Responses API event that matter here.
#[derive(Deserialize)]
struct ResponsesEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Text<'a>>,
    #[serde(default)]
    response: Option<ResponseObject<'a>>,
    /// The `error` event's message.
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResponseObject<'a> {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<TokenDetails>,
}

/// Reads one Responses API event.
pub fn responses(data: &[u8]) -> Result<ChunkInfo<'_>, serde_json::Error> {
    let ev: ResponsesEvent<'_> = serde_json::from_slice(data)?;
    let mut info = ChunkInfo::default();
    let kind = ev.kind.as_deref().unwrap_or("");
    match kind {
        "response.output_text.delta" | "response.refusal.delta" => {
            info.text[0] = ev.delta.map(|t| t.0);
        }
        "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
            info.text[1] = ev.delta.map(|t| t.0);
        }
        "response.function_call_arguments.delta" => {
            info.tool_call = ev.delta.is_some_and(|t| !t.0.is_empty());
        }
        "response.completed" | "response.incomplete" => {
            info.end = true;
            if let Some(u) = ev.response.and_then(|r| r.usage) {
                info.completion_tokens = u.output_tokens;
                info.reasoning_tokens = u.output_tokens_details.and_then(|d| d.reasoning_tokens);
            }
        }
        "response.failed" => {
            let msg = ev.response.and_then(|r| r.error).and_then(error_message);
            info.error = Some(msg.unwrap_or_else(|| "response.failed".to_string()));
        }
        "error" => {
            let msg = ev.message.or(ev.error).and_then(error_message);
            info.error = Some(msg.unwrap_or_else(|| "error event".to_string()));
        }
        _ => {}
    }
    Ok(info)
}

/// The fields of an Anthropic Messages event that matter here.
#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<AnthropicDelta<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
    #[serde(borrow, default)]
    thinking: Option<Text<'a>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// Reads one Anthropic Messages event.
pub fn anthropic(data: &[u8]) -> Result<ChunkInfo<'_>, serde_json::Error> {
    let ev: AnthropicEvent<'_> = serde_json::from_slice(data)?;
    let mut info = ChunkInfo::default();
    match ev.kind.as_deref().unwrap_or("") {
        "content_block_delta" => {
            if let Some(d) = ev.delta {
                match d.kind.as_deref().unwrap_or("") {
                    "text_delta" => info.text[0] = d.text.map(|t| t.0),
                    "thinking_delta" => info.text[1] = d.thinking.map(|t| t.0),
                    "input_json_delta" => {
                        info.tool_call = d.partial_json.is_some_and(|j| !j.is_empty());
                    }
                    // signature_delta and future kinds carry no output.
                    _ => {}
                }
            }
        }
        "message_delta" => {
            info.completion_tokens = ev.usage.and_then(|u| u.output_tokens);
        }
        "message_stop" => info.end = true,
        "error" => {
            let msg = ev.error.and_then(error_message);
            info.error = Some(truncate(
                msg.unwrap_or_else(|| "error event".to_string()),
                200,
            ));
        }
        _ => {}
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `data:` payloads of a recorded stream, in order.
    fn datas(stream: &str) -> Vec<&str> {
        stream
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect()
    }

    #[test]
    fn responses_stream_reads_text_reasoning_usage_and_end() {
        let recorded = r#"event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}

event: response.reasoning_summary_text.delta
data: {"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"Thinking","sequence_number":3}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hello","logprobs":[],"sequence_number":5}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":" w\u00f6rld","sequence_number":6}

event: response.output_text.done
data: {"type":"response.output_text.done","item_id":"msg_1","output_index":1,"content_index":0,"text":"Hello wörld","sequence_number":7}

event: response.completed
data: {"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","status":"completed","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":38},"total_tokens":52}}}
"#;
        let infos: Vec<_> = datas(recorded)
            .into_iter()
            .map(|d| responses(d.as_bytes()).unwrap())
            .collect();
        assert!(!infos[0].has_token() && !infos[0].end);
        assert_eq!(infos[1].text[1].as_deref(), Some("Thinking"));
        assert_eq!(infos[2].text[0].as_deref(), Some("Hello"));
        assert!(matches!(infos[2].text[0], Some(Cow::Borrowed(_))));
        assert_eq!(infos[3].text[0].as_deref(), Some(" wörld"));
        assert!(!infos[4].has_token(), "the .done event repeats text");
        assert!(infos[5].end);
        assert_eq!(infos[5].completion_tokens, Some(40));
        assert_eq!(infos[5].reasoning_tokens, Some(38));
    }

    #[test]
    fn responses_errors_and_incomplete() {
        let e = responses(br#"{"type":"error","code":"server_error","message":"The server had an error","param":null,"sequence_number":2}"#).unwrap();
        assert_eq!(e.error.as_deref(), Some("The server had an error"));
        let f = responses(br#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}}"#).unwrap();
        assert_eq!(f.error.as_deref(), Some("boom"));
        let i = responses(br#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"output_tokens":16}}}"#).unwrap();
        assert!(i.end && i.error.is_none());
        assert_eq!(i.completion_tokens, Some(16));
        assert!(responses(b"{\"type\":").is_err());
        assert_eq!(
            responses(br#"{"type":7,"delta":null}"#).ok(),
            None,
            "a wrong type is malformed"
        );
        assert_eq!(responses(br#"{}"#).unwrap(), ChunkInfo::default());
    }

    #[test]
    fn anthropic_stream_reads_thinking_text_usage_and_stop() {
        let recorded = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi \"there\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

event: message_stop
data: {"type":"message_stop"}
"#;
        let infos: Vec<_> = datas(recorded)
            .into_iter()
            .map(|d| anthropic(d.as_bytes()).unwrap())
            .collect();
        assert!(!infos[0].has_token(), "message_start");
        assert!(!infos[1].has_token(), "content_block_start");
        assert_eq!(infos[2].text[1].as_deref(), Some("Let me see"));
        assert!(!infos[3].has_token(), "signature");
        assert!(!infos[4].has_token(), "ping");
        assert_eq!(infos[5].text[0].as_deref(), Some("Hi \"there\""));
        assert!(infos[6].tool_call);
        assert_eq!(infos[7].completion_tokens, Some(15));
        assert!(!infos[7].end);
        assert!(infos[8].end);
    }

    #[test]
    fn anthropic_error_event() {
        let e = anthropic(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .unwrap();
        assert_eq!(e.error.as_deref(), Some("Overloaded"));
        assert!(anthropic(b"[1,2]").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panic_on_any_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = responses(&data);
            let _ = anthropic(&data);
        }
    }
}
