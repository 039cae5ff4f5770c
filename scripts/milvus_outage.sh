#!/usr/bin/env bash
# Milvus going away under load, judged from outside: two replicas serve one collection while
# clients ask; Milvus is frozen (a slow store: an answer within the deadline), then stopped; searches must answer 503 naming the store within the deadline
# (never hang, never crash) and /readyz must say why; Milvus is started again; both replicas must
# answer 200 again by themselves, without a restart.
# usage: bash scripts/milvus_outage.sh PODSEEK_BINARY MILVUS_DATA_DIR   (Milvus running on 19530)
set -euo pipefail
cd "$(dirname "$0")/.."
P=$1; DATA=$2
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
store="milvus://127.0.0.1:19530/outage_$$"
"$P" ingest tests/data/feeds/shownotes.xml tests/data/feeds/psc.xml --store "$store" --no-transcribe >"$work/ingest.out" 2>&1 \
  || { cat "$work/ingest.out"; exit 1; }
start_replica() {
  "$P" serve --store "$store" --addr 127.0.0.1:0 --threads 1 --deadline 10 >"$work/$1.out" 2>"$work/$1.log" &
  pids+=($!)
}
replica_url() {
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$1.out" | head -1 || true)
    [ -n "$url" ] && curl -sf "$url/readyz" >/dev/null && { echo "$url"; return 0; }
    sleep 0.2
  done
  echo "replica $1 did not start" >&2; cat "$work/$1.log" >&2; return 1
}
start_replica a; start_replica b
a=$(replica_url a); b=$(replica_url b)
fail=0
echo "-- replicas $a and $b on $store; load for 45 s while Milvus stops and starts"
"$P" bench http --url "$a,$b" --clients 8 --seconds 45 --unique --queries tests/data/unseen/queries.jsonl \
  >"$work/load.out" 2>&1 &
load=$!
sleep 5
echo "-- Milvus frozen (SIGSTOP): a slow store"
kill -STOP -- "-$(cat "$DATA/pid")"
t0=$(date +%s%N)
code=$(curl -s -o "$work/body.json" -w '%{http_code}' --max-time 15 "$a/v1/search?q=a+frozen+store+$RANDOM")
took=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT -- "-$(cat "$DATA/pid")"
echo "search while Milvus is frozen: HTTP $code in ${took} ms: $(cat "$work/body.json")"
case "$code" in 503|504) [ "$took" -le 10500 ] || { echo "answered after the 10 s deadline"; fail=1; } ;;
  *) echo "expected 503 or 504 within the deadline"; fail=1 ;; esac
sleep 3
echo "-- stopping Milvus"
bash scripts/milvus.sh stop "$DATA"
for url in "$a" "$b"; do
  t0=$(date +%s%N)
  code=$(curl -s -o "$work/body.json" -w '%{http_code}' --max-time 15 "$url/v1/search?q=una+pregunta+nueva+$RANDOM")
  took=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "search while Milvus is down: HTTP $code in ${took} ms: $(cat "$work/body.json")"
  [ "$code" = 503 ] && grep -q 'unavailable' "$work/body.json" || { echo "expected 503 naming the store"; fail=1; }
  ready=$(curl -s -o "$work/ready.json" -w '%{http_code}' --max-time 15 "$url/readyz")
  echo "readyz: HTTP $ready $(cat "$work/ready.json")"
  [ "$ready" = 503 ] || { echo "expected /readyz 503"; fail=1; }
done
for p in "${pids[@]}"; do kill -0 "$p" || { echo "a replica died"; fail=1; }; done
echo "-- starting Milvus again"
bash scripts/milvus.sh start "$DATA"
for url in "$a" "$b"; do
  t0=$(date +%s)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "$url/v1/search?q=otra+pregunta+$RANDOM")" = 200 ]; do
    if [ $(( $(date +%s) - t0 )) -gt 120 ]; then echo "$url did not recover within 120 s"; fail=1; break; fi
    sleep 1
  done
  echo "$url answers again $(( $(date +%s) - t0 )) s after Milvus was healthy"
done
wait "$load" || true
echo "load over the outage: $(cat "$work/load.out")"
exit "$fail"
