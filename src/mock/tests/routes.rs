//! Requests refused before generation (auth, validation, chat_id) and the non-chat routes.

use serde_json::json;

use super::*;

#[tokio::test]
async fn token_is_required_on_chat_and_model_routes() {
    let server = mock(MockConfig {
        token: Some("s3cret".into()),
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    for path in [OWUI, OPENAI] {
        for auth in [None, Some("Bearer wrong"), Some("s3cret")] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let r = c.post(path, &headers, chat_body(json!({}))).await;
            assert_eq!(r.status, 401);
            assert_eq!(r.json(), json!({"detail": "401 Unauthorized"}));
        }
        let r = c
            .post(
                path,
                &[("authorization", "Bearer s3cret")],
                chat_body(json!({})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    for path in ["/v1/models", "/api/models"] {
        assert_eq!(c.get(path, &[]).await.status, 401);
        assert_eq!(
            c.get(path, &[("authorization", "Bearer s3cret")])
                .await
                .status,
            200
        );
    }
    // Health and counters stay open so a harness can always read them.
    assert_eq!(c.get("/health", &[]).await.status, 200);
    assert_eq!(c.get("/mock/counters", &[]).await.status, 200);
    let counters = finish(server).await;
    assert_eq!(
        (counters.requests, counters.unauthorized, counters.ok),
        (8, 6, 2)
    );
    assert_eq!(counters.other_requests, 6);
}

#[tokio::test]
async fn bare_uuid_chat_id_is_404_but_local_and_none_stream() {
    let bare = json!({"chat_id": "2b0d7b3d-1c3e-4e8b-9d7a-0c5e0f1e2a3b"});
    let server = mock(fast()).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], chat_body(bare.clone())).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"detail": "We could not find what you're looking for :/"})
    );
    assert_eq!(c.post(OWUI, &[], chat_body(json!({}))).await.status, 200);
    assert_eq!(
        c.post(OWUI, &[], chat_body(json!({"chat_id": null})))
            .await
            .status,
        200
    );
    // The OpenAI path has no chats.
    assert_eq!(
        c.post(OPENAI, &[], chat_body(bare.clone())).await.status,
        200
    );
    let counters = finish(server).await;
    assert_eq!(
        (counters.requests, counters.not_found, counters.ok),
        (4, 1, 3)
    );

    let server = mock(MockConfig {
        strict_chat_id: false,
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    assert_eq!(c.post(OWUI, &[], chat_body(bare)).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_bodies_are_422_and_unknown_models_400_or_404() {
    let server = mock(MockConfig {
        models: vec!["m".into()],
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.post(OWUI, &[], "{not json".into()).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["detail"][0]["type"], "json_invalid");
    let r = c.post(OWUI, &[], json!({"model": "m"}).to_string()).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["detail"][0]["type"], "missing");
    let r = c
        .post(
            OPENAI,
            &[],
            json!({"model": "m", "messages": "hi"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 422);

    let other = chat_body(json!({"model": "other"}));
    let r = c.post(OWUI, &[], other.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (400, json!({"detail": "Model not found"}))
    );
    let r = c.post(OPENAI, &[], other).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let counters = finish(server).await;
    assert_eq!(
        counters,
        CountersSnapshot {
            requests: 5,
            bad_request: 5,
            ..CountersSnapshot::default()
        }
    );
}

#[tokio::test]
async fn model_lists_health_counters_and_unknown_paths() {
    let server = mock(MockConfig {
        models: vec!["a".into(), "b".into()],
        ..fast()
    })
    .await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.get("/v1/models", &[]).await;
    assert_eq!(r.json()["object"], "list");
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let r = c.get("/api/models", &[]).await;
    assert_eq!(
        r.json()["data"][1],
        json!({"id": "b", "name": "b", "object": "model", "owned_by": "openai"})
    );
    assert_eq!(c.get("/health", &[]).await.status, 200);
    let r = c.get("/nope", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.json()),
        (404, json!({"detail": "Not Found"}))
    );
    assert_eq!(c.get(OWUI, &[]).await.status, 405);
    let r = c.post(OWUI, &[], chat_body(json!({"model": "a"}))).await;
    assert_eq!(r.status, 200);
    let r = c.get("/mock/counters", &[]).await;
    let served: CountersSnapshot = serde_json::from_slice(&r.body).expect("counters JSON");
    assert_eq!(
        (served.requests, served.ok, served.other_requests),
        (1, 1, 6)
    );
    let counters = finish(server).await;
    assert_eq!(counters, served);
}

#[tokio::test]
async fn shutdown_closes_open_streams_and_balances_counters() {
    let config = MockConfig {
        ttft: std::time::Duration::from_secs(60),
        ..fast()
    };
    let server = mock(config).await;
    let addr = server.addr();
    let pending = tokio::spawn(async move {
        Client::connect(addr)
            .await
            .post(OWUI, &[], chat_body(json!({})))
            .await
    });
    let mut c = Client::connect(addr).await;
    // Wait (by request, not by sleeping) until the slow stream has started.
    while c.get("/mock/counters", &[]).await.json()["open_streams"] != 1 {
        tokio::task::yield_now().await;
    }
    let counters = finish(server).await;
    let r = pending.await.expect("client task");
    assert!(r.error.is_some(), "the open stream was cut by shutdown");
    assert_eq!(
        (
            counters.requests,
            counters.client_aborted,
            counters.open_streams
        ),
        (1, 1, 0)
    );
}
