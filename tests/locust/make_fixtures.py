"""Writes tests/fixtures/locust/*.bin: Locust master/worker messages encoded by Locust's own code.

Run with the Python of a venv where `pip install locust` was done:

    /work/venv-locust/bin/python tests/locust/make_fixtures.py tests/fixtures/locust

Every value is fixed (no clock, no random id), so the bytes are reproducible; the Rust unit
tests decode each file and check that gsai-load encodes the same message to the same bytes.
"""

import os
import sys

from locust.rpc.protocol import Message
from locust.stats import RequestStats, StatsError

NODE = "worker-host_0123456789abcdef0123456789abcdef"
T0 = 1700000000.25


def stats_report():
    """A worker's stats report, built by Locust's RequestStats and serialized as a worker does."""
    stats = RequestStats()
    method, name = "POST", "/api/chat/completions"
    # Response times in ms, exactly representable, logged in ascending order so that the
    # histogram dict's insertion order is ascending (as gsai-load writes it).
    for rt, size in [(12.25, 100), (150.25, 200), (1234.75, 300), (20000.5, 400)]:
        stats.log_request(method, name, rt, size)
    stats.log_error(method, name, "Received status code: 500")
    stats.log_error(method, name, "Received status code: 500")
    for entry in (stats.get(name, method), stats.total):
        entry.start_time = T0
        entry.last_request_timestamp = T0 + 2.5
        entry.num_reqs_per_sec = {1700000000: 1, 1700000001: 2, 1700000002: 1}
        entry.num_fail_per_sec = {1700000001: 2}
    key = "POST./api/chat/completions.Received status code: 500"
    error = StatsError(method, name, "Received status code: 500", 2, T0 + 1.0, T0 + 1.5)
    return {
        "stats": stats.serialize_stats(),
        "stats_total": stats.total.get_stripped_report(),
        "errors": {key: error.serialize()},
        "user_classes_count": {"GsaiUser": 7},
        "user_count": 7,
    }


MESSAGES = {
    "client_ready_minus1": Message("client_ready", -1, NODE),
    "client_ready_version": Message("client_ready", "2.47.0", NODE),
    "ack": Message("ack", {"index": 3}, NODE),
    "spawn": Message(
        "spawn",
        {
            "timestamp": T0,
            "user_classes_count": {"GsaiUser": 7},
            "host": "http://127.0.0.1:8080",
            "stop_timeout": 2.5,
            "parsed_options": {"headless": True, "num_users": 10, "spawn_rate": 2.0, "run_time": None},
        },
        NODE,
    ),
    "spawning": Message("spawning", None, NODE),
    "spawning_complete_worker": Message(
        "spawning_complete", {"user_classes_count": {"GsaiUser": 7}, "user_count": 7}, NODE
    ),
    "spawning_complete_master": Message("spawning_complete", {"user_count": 21}, NODE),
    "heartbeat_worker": Message(
        "heartbeat", {"state": "running", "current_cpu_usage": 12.5, "current_memory_usage": 123456789}, NODE
    ),
    "heartbeat_master": Message("heartbeat", None, NODE),
    "stats": Message("stats", stats_report(), NODE),
    "stop": Message("stop", None, NODE),
    "quit": Message("quit", None, NODE),
    "client_stopped": Message("client_stopped", None, NODE),
    "reconnect": Message("reconnect", None, NODE),
    "exception": Message("exception", {"msg": "boom", "traceback": "Traceback (most recent call last):\n"}, NODE),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/locust"
    os.makedirs(out, exist_ok=True)
    for name, msg in MESSAGES.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(msg.serialize())
    print(f"wrote {len(MESSAGES)} fixtures to {out}")


if __name__ == "__main__":
    main()
