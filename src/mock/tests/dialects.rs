//! The other APIs the mock serves: legacy completions, the Responses API, Anthropic Messages
//! and embeddings, each in its own wire format, with reasoning tokens and their own error events.

use serde_json::json;

use super::*;

fn types(r: &Reply) -> Vec<String> {
    r.events
        .iter()
        .map(|e| e.json()["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn completions_stream_text_then_usage_and_done() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let body = json!({"model": "m", "prompt": "Hello there!", "stream": true,
                      "stream_options": {"include_usage": true}});
    let r = c.post("/v1/completions", &[], body.to_string()).await;
    assert_eq!(r.status, 200);
    let texts: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| e.choice()["text"].as_str().map(str::to_owned))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(texts.len(), 5);
    let usage = &r.events[r.events.len() - 2].json()["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(r.events.last().unwrap().data, "[DONE]");
    // The prompt field is required.
    let r = c
        .post("/v1/completions", &[], json!({"model": "m"}).to_string())
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["detail"][0]["loc"][1].clone()),
        (422, json!("prompt"))
    );
    finish(server).await;
}

#[tokio::test]
async fn responses_stream_reasoning_then_text_and_completes_with_usage() {
    let server = mock(MockConfig {
        reasoning_tokens: 3,
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    let body = json!({"model": "m", "input": [{"role": "user", "content": "hi"}], "stream": true});
    let r = c.post("/v1/responses", &[], body.to_string()).await;
    assert_eq!(r.status, 200);
    let t = types(&r);
    assert_eq!(t[0], "response.created");
    assert_eq!(t[1..4], ["response.reasoning_text.delta"; 3]);
    assert_eq!(t[4..9], ["response.output_text.delta"; 5]);
    assert_eq!(t[9..], ["response.completed"]);
    let usage = &r.events[9].json()["response"]["usage"];
    assert_eq!(usage["output_tokens"], 8);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 3);
    // The output cap makes it incomplete, as the real API does.
    let capped = json!({"model": "m", "input": "hi", "stream": true, "max_output_tokens": 2});
    let r = c.post("/v1/responses", &[], capped.to_string()).await;
    assert_eq!(types(&r).last().unwrap(), "response.incomplete");
    finish(server).await;
}

#[tokio::test]
async fn anthropic_takes_x_api_key_streams_thinking_then_text_and_stops() {
    let server = mock(MockConfig {
        reasoning_tokens: 2,
        token: Some("s3cret".into()),
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 64, "stream": true})
    .to_string();
    let r = c
        .post("/v1/messages", &[("x-api-key", "wrong")], body.clone())
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .post("/v1/messages", &[("x-api-key", "s3cret")], body)
        .await;
    assert_eq!(r.status, 200);
    let t = types(&r);
    assert_eq!(t[..2], ["message_start", "content_block_start"]);
    let deltas: Vec<_> = r.events[2..9]
        .iter()
        .map(|e| e.json()["delta"]["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(deltas[..2], ["thinking_delta"; 2]);
    assert_eq!(deltas[2..], ["text_delta"; 5]);
    assert_eq!(
        t[9..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(r.events[10].json()["usage"]["output_tokens"], 7);
    finish(server).await;
}

#[tokio::test]
async fn each_api_has_its_own_error_event() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let forced = [("x-mock-scenario", "stream_error")];
    let r = c
        .post(
            "/v1/responses",
            &forced,
            json!({"model": "m", "input": "hi", "stream": true}).to_string(),
        )
        .await;
    assert_eq!(types(&r).last().unwrap(), "error");
    let body = json!({"model": "m", "messages": [], "max_tokens": 8, "stream": true});
    let r = c.post("/v1/messages", &forced, body.to_string()).await;
    let last = r.events.last().unwrap().json();
    assert_eq!(
        (last["type"].clone(), last["error"]["type"].clone()),
        (json!("error"), json!("overloaded_error"))
    );
    finish(server).await;
}

#[tokio::test]
async fn embeddings_answer_one_vector_per_input_with_usage() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c
        .post(
            "/v1/embeddings",
            &[],
            json!({"model": "m", "input": ["a", "bb", "ccc"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["data"][2]["index"], 2);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let counters = finish(server).await;
    assert_eq!((counters.requests, counters.ok), (1, 1));
}
