#!/usr/bin/env bash
# Two builds under the same load, in short alternating bursts against two servers that stay up:
# one client's p50 latency, or with CLIENTS=N, N clients' questions per second.
# This machine's speed drifts by a third within minutes, more than a change of a tenth; bursts of a
# few seconds, old then new, many times, put both builds in the same minutes, and the median of the
# per-burst ratios cancels the drift that medians of whole runs keep. Every question is new to its
# server (`podseek bench http --unique`: the run's time is in every question).
# usage: [ROUNDS=20] [SECONDS_EACH=5] [CLIENTS=1] bash scripts/bench_alternate.sh OLD_BINARY OLD_INDEX NEW_BINARY NEW_INDEX
#   (OLD_BINARY may be a wrapper script that sets PODSEEK_MODELS; NEW_BINARY also runs the client)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-20}
SECONDS_EACH=${SECONDS_EACH:-5}
CLIENTS=${CLIENTS:-1}
if [ "$CLIENTS" = 1 ]; then MEASURE="p50_ms"; PATTERN='accepted p50 ([0-9.]+) ms'; else MEASURE="q/s"; PATTERN='errors, ([0-9.]+) accepted/s'; fi
NEW_BIN=$3
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() { # binary index port
  "$1" serve --index "$2" --addr "127.0.0.1:$3" >/dev/null 2>&1 &
  pids+=($!)
  until curl -sf "http://127.0.0.1:$3/readyz" >/dev/null; do sleep 0.05; done
}
burst() { # port seconds -> the measure
  "$NEW_BIN" bench http --url "http://127.0.0.1:$1" --clients "$CLIENTS" --seconds "$2" --unique \
    --queries tests/data/unseen/queries.jsonl 2>/dev/null | tail -1 | sed -nE "s|.*$PATTERN.*|\1|p"
}
start "$1" "$2" 18191
start "$3" "$4" 18192
burst 18191 2 >/dev/null
burst 18192 2 >/dev/null
echo "round old_$MEASURE new_$MEASURE new/old ($CLIENTS client(s))"
for r in $(seq "$ROUNDS"); do
  old=$(burst 18191 "$SECONDS_EACH")
  new=$(burst 18192 "$SECONDS_EACH")
  echo "$r $old $new $(echo "scale=3; $new / $old" | bc)"
done | tee /dev/stderr | MEASURE=$MEASURE python3 -c '
import os, statistics, sys
m = os.environ["MEASURE"]
rows = [l.split() for l in sys.stdin if l[0].isdigit()]
old = [float(r[1]) for r in rows]; new = [float(r[2]) for r in rows]; ratio = [float(r[3]) for r in rows]
q = statistics.quantiles(ratio, n=4)
print(f"medians over {len(rows)} bursts each: old {m} {statistics.median(old):.1f}, new {m} {statistics.median(new):.1f}, "
      f"median per-burst new/old {statistics.median(ratio):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})")
if m == "p50_ms":
    print(f"p50 at most 15 ms: new in {sum(n <= 15 for n in new)} of {len(new)} bursts, old in {sum(o <= 15 for o in old)}")
else:
    print(f"at least 100 q/s: new in {sum(n >= 100 for n in new)} of {len(new)} bursts, old in {sum(o >= 100 for o in old)}")
'
