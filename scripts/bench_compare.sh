#!/usr/bin/env bash
# Speed of two builds side by side, in one run on one machine. These machines are noisy (the same
# build can differ by a third from one minute to the next), so the builds take turns: ROUNDS rounds,
# old then new in each, and the summary gives each build's median and the ratio of medians.
# Per build and round: cold start to /readyz, RSS when ready, one client then 32 clients with every
# question new (`podseek bench http --unique`), and with WRK=1 also wrk (32 connections, every
# question distinct, tests/load/distinct_questions.lua). Each build serves an index made with its
# own default model.
# usage: [ROUNDS=3] [WRK=1] bash scripts/bench_compare.sh OLD_BINARY OLD_INDEX NEW_BINARY NEW_INDEX [SECONDS]
#   an old build: git worktree add /tmp/podseek-old-src REV && (cd /tmp/podseek-old-src &&
#   CARGO_TARGET_DIR=/tmp/podseek-old-target cargo build --release); an old build that needs its
#   own models folder: a wrapper script that sets PODSEEK_MODELS and execs the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${5:-30}
ROUNDS=${ROUNDS:-1}
NEW_BIN=$3
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
field() { sed -nE "s/.*$1 ([0-9.]+).*/\1/p"; }
measure() { # label binary index
  local label=$1 bin=$2 index=$3 port=18181
  local start=$(date +%s.%N)
  "$bin" serve --index "$index" --addr 127.0.0.1:$port >/dev/null 2>&1 &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.05; done
  local ready=$(date +%s.%N)
  local rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  local cold=$(echo "$ready - $start" | bc)
  printf '%s: cold start to /readyz %.2f s, RSS when ready %d MB\n' "$label" "$cold" $((rss / 1024))
  echo "$label cold_s $cold" >>"$RESULTS"
  echo "$label rss_mb $((rss / 1024))" >>"$RESULTS"
  for clients in 1 32; do
    local line
    line=$("$NEW_BIN" bench http --url "http://127.0.0.1:$port" --clients "$clients" --seconds "$SECONDS_EACH" \
      --unique --queries tests/data/unseen/queries.jsonl 2>/dev/null | tail -1)
    printf '%s, %2d client(s), every question new: %s\n' "$label" "$clients" "$line"
    echo "$label c${clients}_qps $(echo "$line" | field errors,)" >>"$RESULTS"
    echo "$label c${clients}_p50_ms $(echo "$line" | field 'accepted p50')" >>"$RESULTS"
    echo "$label c${clients}_p99_ms $(echo "$line" | field p99)" >>"$RESULTS"
  done
  if [ "${WRK:-0}" = 1 ]; then
    local out
    out=$(wrk -t2 -c32 -d"${SECONDS_EACH}s" --timeout 10s --latency -s tests/load/distinct_questions.lua "http://127.0.0.1:$port")
    local errors=$(echo "$out" | grep -cE 'Non-2xx|Socket errors' || true)
    printf '%s, wrk 32 connections: %s req/s, p50 %s, p99 %s, error lines %s\n' "$label" \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
      "$(echo "$out" | awk '$1 == "99%" {print $2}')" "$errors"
    echo "$label wrk_qps $(echo "$out" | awk '/Requests\/sec/ {print $2}')" >>"$RESULTS"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
for round in $(seq "$ROUNDS"); do
  measure old "$1" "$2"
  measure new "$3" "$4"
done
echo
echo "medians over $ROUNDS round(s):"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, key, value = line.split()
    if value:
        rows.setdefault(key, {}).setdefault(label, []).append(float(value))
print(f"{'measure':14s} {'old':>9s} {'new':>9s} {'new/old':>8s}")
for key, by in rows.items():
    old, new = (statistics.median(by.get(l, [float('nan')])) for l in ("old", "new"))
    print(f"{key:14s} {old:9.2f} {new:9.2f} {new / old:8.2f}")
PY
