#!/usr/bin/env bash
# Speed of two builds side by side, in one run on one machine (these machines are noisy: compare the
# ratios). For each build: cold start to /readyz, RSS when ready, one client then 32 clients with every
# question new (`podseek bench http --unique`), each build serving an index made with its own default.
# usage: bash scripts/bench_compare.sh OLD_BINARY OLD_INDEX NEW_BINARY NEW_INDEX [SECONDS]
#   an old build: git worktree add /tmp/podseek-old-src REV && (cd /tmp/podseek-old-src &&
#   CARGO_TARGET_DIR=/tmp/podseek-old-target cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${5:-30}
measure() { # label binary index
  local label=$1 bin=$2 index=$3 port=18181
  local start=$(date +%s.%N)
  "$bin" serve --index "$index" --addr 127.0.0.1:$port >/dev/null 2>&1 &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.05; done
  local ready=$(date +%s.%N)
  local rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  printf '%s: cold start to /readyz %.2f s, RSS when ready %d MB\n' "$label" "$(echo "$ready - $start" | bc)" $((rss / 1024))
  for clients in 1 32; do
    printf '%s, %2d client(s), every question new: ' "$label" "$clients"
    "$NEW_BIN" bench http --url "http://127.0.0.1:$port" --clients "$clients" --seconds "$SECONDS_EACH" \
      --unique --queries tests/data/unseen/queries.jsonl 2>/dev/null | tail -1
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
NEW_BIN=$3
measure old "$1" "$2"
measure new "$3" "$4"
