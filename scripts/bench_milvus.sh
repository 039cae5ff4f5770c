#!/usr/bin/env bash
# The same corpus served from the local index and from Milvus, in one run on one machine:
# start-up to /readyz, one client, and 32 clients (one replica, then two replicas on one Milvus).
# Every question is new (no query cache). Starts and stops its own Milvus on a fresh data dir.
# usage: bash scripts/bench_milvus.sh RELEASE_BINARY_WITH_MILVUS [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
P=$1; SECS=${2:-60}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
            bash scripts/milvus.sh stop "$work/milvus"; rm -rf "$work"; }
trap cleanup EXIT
bash scripts/milvus.sh install
bash scripts/milvus.sh start "$work/milvus"
store="milvus://127.0.0.1:19530/bench"
"$P" ingest data/podcast-page.txt --index "$work/index" 2>/dev/null | tail -1
"$P" ingest data/podcast-page.txt --store "$store" 2>/dev/null | tail -1
serve() { # name, then serve arguments; prints the URL once ready and the seconds it took
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  "$P" serve --addr 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 1 600); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$name.out" | head -1 || true)
    if [ -n "$url" ] && curl -sf "$url/readyz" >/dev/null; then
      echo "$name ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms at $url" >&2
      echo "$url"; return 0
    fi
    sleep 0.05
  done
  cat "$work/$name.log" >&2; return 1
}
load() { "$P" bench http --url "$1" --clients "$2" --seconds "$3" --unique; }
serve local --index "$work/index" >"$work/local.url"; local_url=$(cat "$work/local.url")
echo "== local index, one replica"
load "$local_url" 1 20
load "$local_url" 32 "$SECS"
echo "RSS (MB): local replica $(( $(awk '/VmRSS/ {print $2}' /proc/${pids[0]}/status) / 1024 ))"
kill "${pids[@]}"; wait 2>/dev/null || true; pids=()
serve a --store "$store" >"$work/a.url"; a=$(cat "$work/a.url")
echo "== Milvus, one replica"
load "$a" 1 20
load "$a" 32 "$SECS"
serve b --store "$store" >"$work/b.url"; b=$(cat "$work/b.url")
echo "== Milvus, two replicas on this machine (they share its two cores)"
load "$a,$b" 32 "$SECS"
echo "start-up of a Milvus replica (its log):"
grep -h "read .* chunks\|keyword index" "$work/a.log" | sed 's/\x1b\[[0-9;]*m//g'
echo "RSS (MB): Milvus replica a $(( $(awk '/VmRSS/ {print $2}' /proc/${pids[0]}/status) / 1024 )), b $(( $(awk '/VmRSS/ {print $2}' /proc/${pids[1]}/status) / 1024 ))"
