"""The seed's Locust script, with its three typos fixed (`content.split`, `"data: "`, `"[DONE]"`), no wait
time, and without printing every chunk, so that Locust is measured at its best. Used by compare-peers.sh."""
import json
import os
import uuid

from locust import HttpUser, constant, task


class WebsiteUser(HttpUser):
    wait_time = constant(0)
    host = os.getenv("GSAI_HOST")

    def on_start(self):
        self.client.headers = {
            "Content-Type": "application/json",
            "Accept": "*/*",
            "Authorization": f"Bearer {os.getenv('GSA_AUTH_TOKEN')}",
        }

    @task
    def chat_completion(self):
        payload = {
            "stream": True,
            "model": os.getenv("CHAT_MODEL"),
            "messages": [{"role": "user", "content": "Hello there!"}],
            "params": {},
            "background_tasks": {"title_generation": True, "tags_generation": True},
            "chat_id": str(uuid.uuid4()),
            "features": {"web_search": False},
        }
        with self.client.post(
            "/api/chat/completions", json=payload, name="/api/chat/completions", catch_response=True
        ) as response:
            try:
                if response.status_code == 200:
                    for line in response.content.decode("utf-8").split("\n"):
                        if line.startswith("data: "):
                            if line[6:] == "[DONE]":
                                break
                            json.loads(line[6:])
                    response.success()
                else:
                    response.failure(f"Received status code: {response.status_code}")
            except Exception as e:
                response.failure(f"Request failed: {e}")
