//! Normal streams: event sequence, timing, capacity model, keep-alive, non-streaming answers.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::mock::render::WORDS;

#[tokio::test]
async fn zero_delay_stream_has_exact_sequence_and_counters() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(json!({}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_normal_stream(&r.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    let counters = finish(server).await;
    let expected = CountersSnapshot {
        requests: 1,
        ok: 1,
        events_sent: 9,
        tokens_sent: 5,
        ..CountersSnapshot::default()
    };
    assert_eq!(counters, expected);
}

#[tokio::test]
async fn timed_stream_has_the_same_sequence() {
    let config = MockConfig {
        ttft: Duration::from_millis(5),
        itl: Duration::from_millis(1),
        ..fast()
    };
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(json!({}))).await;
    assert_normal_stream(&r.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    let counters = finish(server).await;
    assert_eq!(
        (
            counters.ok,
            counters.events_sent,
            counters.tokens_sent,
            counters.open_streams
        ),
        (1, 9, 5, 0)
    );
}

#[tokio::test]
async fn first_token_after_ttft_then_one_per_itl() {
    let config = MockConfig {
        ttft: Duration::from_millis(100),
        itl: Duration::from_millis(20),
        ..fast()
    };
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(json!({}))).await;
    assert_normal_stream(&r.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    // The role chunk leaves with the headers, long before the first token.
    assert!(
        r.events[0].at < Duration::from_millis(50),
        "role at {:?}",
        r.events[0].at
    );
    let first = r.first_token_at();
    assert!(
        first >= Duration::from_millis(100) && first <= Duration::from_millis(130),
        "TTFT {first:?}"
    );
    let total = r.last_at();
    assert!(
        total >= Duration::from_millis(180) && total <= Duration::from_millis(220),
        "E2E {total:?}"
    );
    for pair in r.events[1..=5].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(10) && gap <= Duration::from_millis(35),
            "ITL {gap:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn header_overrides_tokens_and_ttft() {
    let config = MockConfig {
        ttft: Duration::from_secs(30),
        ..fast()
    };
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c
        .post(
            OWUI,
            &[("x-mock-tokens", "3"), ("x-mock-ttft-ms", "0")],
            chat_body(json!({})),
        )
        .await;
    assert_normal_stream(&r.events, 3, "stop", Some(SEED_PROMPT_TOKENS));
    let r = c
        .post(OWUI, &[("x-mock-tokens", "lots")], chat_body(json!({})))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("x-mock-tokens")),
        "{:?}",
        r.json()
    );
    let r = c
        .post(OWUI, &[("x-mock-tokens", "1000001")], chat_body(json!({})))
        .await;
    assert_eq!(r.status, 400);
    let counters = finish(server).await;
    assert_eq!(
        (counters.requests, counters.ok, counters.bad_request),
        (3, 1, 2)
    );
}

#[tokio::test]
async fn max_tokens_caps_the_stream_with_finish_reason_length() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(json!({"max_tokens": 2}))).await;
    assert_normal_stream(&r.events, 2, "length", Some(SEED_PROMPT_TOKENS));
    let r = c
        .post(
            OWUI,
            &[],
            chat_body(json!({"max_completion_tokens": 1, "max_tokens": 9})),
        )
        .await;
    assert_normal_stream(&r.events, 1, "length", Some(SEED_PROMPT_TOKENS));
    let r = c
        .post(OWUI, &[], chat_body(json!({"max_tokens": 50})))
        .await;
    assert_normal_stream(&r.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    server.shutdown().await;
}

#[tokio::test]
async fn openai_path_sends_usage_only_when_asked() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OPENAI, &[], chat_body(json!({}))).await;
    assert_normal_stream(&r.events, 5, "stop", None);
    let asked = json!({"stream_options": {"include_usage": true}});
    let r = c.post(OPENAI, &[], chat_body(asked)).await;
    assert_normal_stream(&r.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    server.shutdown().await;

    let server = mock(MockConfig {
        usage: false,
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(json!({}))).await;
    assert_normal_stream(&r.events, 5, "stop", None);
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let config = MockConfig {
        itl: Duration::from_millis(1),
        ..fast()
    };
    let server = mock(config).await;
    let mut c = Client::connect(server.addr()).await;
    for path in [OWUI, OPENAI, OWUI] {
        let r = c.post(path, &[], chat_body(json!({}))).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    }
    let r = c.post(OWUI, &[], chat_body(json!({"stream": false}))).await;
    assert_eq!(r.status, 200);
    let counters = finish(server).await;
    assert_eq!(
        (counters.requests, counters.ok, counters.client_aborted),
        (4, 4, 0)
    );
}

#[tokio::test]
async fn non_streaming_answers_one_completion_json() {
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let mut body: serde_json::Value = serde_json::from_str(&chat_body(json!({}))).expect("json");
    body.as_object_mut().expect("object").remove("stream");
    for (path, body) in [
        (OWUI, body.to_string()),
        (OPENAI, chat_body(json!({"stream": false, "max_tokens": 3}))),
    ] {
        let r = c.post(path, &[], body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        let n = if path == OWUI { 5 } else { 3 };
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "m");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], WORDS[..n].concat());
        assert_eq!(
            v["choices"][0]["finish_reason"],
            if n == 5 { "stop" } else { "length" }
        );
        assert_eq!(v["usage"]["completion_tokens"], n);
        assert_eq!(v["usage"]["total_tokens"], SEED_PROMPT_TOKENS + n as u64);
    }
    let counters = finish(server).await;
    let expected = CountersSnapshot {
        requests: 2,
        ok: 2,
        tokens_sent: 8,
        ..CountersSnapshot::default()
    };
    assert_eq!(counters, expected);
}

#[tokio::test]
async fn capacity_model_queues_the_second_generation() {
    let config = MockConfig {
        ttft: Duration::from_millis(50),
        itl: Duration::from_millis(10),
        max_concurrent: Some(1),
        ..fast()
    };
    // One generation: 50 ms to the first token, then 4 gaps of 10 ms.
    let generation = Duration::from_millis(90);
    let server = mock(config).await;
    let (mut a, mut b) = (
        Client::connect(server.addr()).await,
        Client::connect(server.addr()).await,
    );
    let (ra, rb) = tokio::join!(
        a.post(OWUI, &[], chat_body(json!({}))),
        b.post(OWUI, &[], chat_body(json!({})))
    );
    assert_normal_stream(&ra.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    assert_normal_stream(&rb.events, 5, "stop", Some(SEED_PROMPT_TOKENS));
    // Both role chunks come at once: a queued request is accepted, only its generation waits.
    assert!(
        ra.events[0].at < Duration::from_millis(40) && rb.events[0].at < Duration::from_millis(40)
    );
    let (early, late) = if ra.first_token_at() <= rb.first_token_at() {
        (ra, rb)
    } else {
        (rb, ra)
    };
    let lag = late.first_token_at() - early.first_token_at();
    assert!(
        lag >= generation - Duration::from_millis(10),
        "second TTFT only {lag:?} after the first"
    );
    assert!(
        late.first_token_at() >= early.last_at(),
        "second generation overlapped the first"
    );
    let counters = finish(server).await;
    assert_eq!((counters.ok, counters.open_streams), (2, 0));
}

#[tokio::test]
async fn aborted_client_is_counted_once_and_closes_its_stream() {
    let config = MockConfig {
        ttft: Duration::from_secs(60),
        ..fast()
    };
    let server = mock(config).await;
    let stream = TcpStream::connect(server.addr()).await.expect("connect");
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = Request::post(OWUI)
        .header("host", "mock")
        .body(Full::new(Bytes::from(chat_body(json!({})))));
    let res = sender
        .send_request(req.expect("request"))
        .await
        .expect("headers");
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let role = body.frame().await.expect("role frame").expect("no error");
    assert!(role.into_data().is_ok_and(|d| d.starts_with(b"data: ")));
    assert_eq!(server.counters().open_streams, 1);
    drop((body, sender));
    conn.abort();
    let counters = finish(server).await;
    assert_eq!(
        (
            counters.requests,
            counters.ok,
            counters.client_aborted,
            counters.open_streams
        ),
        (1, 0, 1, 0)
    );
    assert_eq!((counters.events_sent, counters.tokens_sent), (1, 0));
}

#[test]
fn every_word_is_one_cl100k_token() {
    let bpe = tiktoken_rs::cl100k_base().expect("cl100k_base loads");
    for w in WORDS {
        assert_eq!(bpe.encode_ordinary(w).len(), 1, "{w:?} is not one token");
    }
    // Concatenated as streamed, the text still counts one token per word.
    let text: String = (0..200).map(|i| WORDS[i % WORDS.len()]).collect();
    assert_eq!(bpe.encode_ordinary(&text).len(), 200);
}
