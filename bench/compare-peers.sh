#!/usr/bin/env bash
# Throughput of gsai-load, Locust and wrk against the same built-in mock (20-token zero-delay
# streams, 64 connections, no wait), all on this machine, traffic on 127.0.0.1 only.
# Needs: wrk (apt-get install wrk) and Locust (LOCUST=/path/to/locust, e.g. a venv with pip install locust).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-10}
users=${USERS:-64}
cargo build --release -q
bin=target/release/gsai-load
port=${PORT:-18777}
$bin mock --bind 127.0.0.1:$port --ttft 0ms --itl 0ms --tokens 20 --lenient-chat-id 2>/dev/null &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT
sleep 0.5
url=http://127.0.0.1:$port

echo "== gsai-load ($users users, ${secs}s)"
$bin bench --scenario throughput --throughput-users "$users" --throughput-time "${secs}s" | tail -1

if command -v wrk >/dev/null; then
  echo "== wrk (2 threads, $users connections, ${secs}s)"
  wrk -t2 -c"$users" -d"${secs}s" -s bench/post.lua "$url/api/chat/completions" | grep -E "Requests/sec"
else
  echo "== wrk: not installed (apt-get install wrk)"
fi

locust=${LOCUST:-$(command -v locust || true)}
if [ -n "$locust" ]; then
  echo "== Locust ($("$locust" --version | head -1 | cut -d' ' -f1-2), --processes 2, $users users, ${secs}s)"
  tmp=$(mktemp -d)
  GSAI_HOST=$url GSA_AUTH_TOKEN=x CHAT_MODEL=bench "$locust" -f bench/locustfile_seed.py --headless \
    --processes 2 -u "$users" -r "$users" -t "${secs}s" --csv "$tmp/l" --only-summary >/dev/null 2>&1 || true
  awk -F, '$2=="Aggregated"{printf "Requests/sec: %s (%s requests, %s failures)\n", $10, $3, $4}' "$tmp/l_stats.csv"
else
  echo "== Locust: not installed (LOCUST=path/to/locust)"
fi
