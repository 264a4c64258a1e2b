-- wrk script: the seed's POST (wrk reads the response but parses no SSE). Used by compare-peers.sh.
wrk.method = "POST"
wrk.body = '{"stream": true, "model": "bench", "messages": [{"role": "user", "content": "Hello there!"}], "params": {}, "background_tasks": {"title_generation": true, "tags_generation": true}, "chat_id": "local:2b0d7b3d-1c3e-4e8b-9d7a-0c5e0f1e2a3b", "features": {"web_search": false}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "*/*"
