#!/usr/bin/env bash
# Judge a real `podseek serve` with tools nobody here wrote: schemathesis fuzzes every operation of
# /openapi.json (no 5xx, every answer matching its schema), then wrk runs 32 connections for 60 s
# with every question distinct (0 errors, 0 timeouts). One index of the demo feed, one server.
# usage: bash scripts/judge_server.sh PODSEEK_BINARY JUDGES_PYTHON [WRK_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
P=$1; PY=$2; SECONDS_WRK=${3:-60}
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$P" ingest data/demo-feed/feed.xml --index "$work/index" >/dev/null 2>"$work/ingest.log" || { cat "$work/ingest.log"; exit 1; }
"$P" serve --index "$work/index" --addr 127.0.0.1:0 --threads 2 >"$work/serve.out" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 200); do
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.out" | head -1 || true)
  [ -n "$url" ] && curl -sf "$url/readyz" >/dev/null && break
  sleep 0.2
done
[ -n "$url" ] || { echo "server did not start"; cat "$work/serve.log"; exit 1; }
echo "-- schemathesis against $url/openapi.json"
# From the scratch folder: schemathesis keeps a cache in its working directory.
(cd "$work" && "$(dirname "$PY")/schemathesis" run "$url/openapi.json" --checks all \
  --exclude-path /mcp --max-examples 60 --workers 2 --request-timeout 15 --no-color)
echo "-- wrk: 32 connections for ${SECONDS_WRK}s, every question distinct"
wrk -t2 -c32 -d"${SECONDS_WRK}s" --timeout 10s --latency -s tests/load/distinct_questions.lua "$url" | tee "$work/wrk.txt"
if grep -qE 'Non-2xx|Socket errors' "$work/wrk.txt"; then
  echo "wrk saw errors or timeouts"; exit 1
fi
