#!/usr/bin/env bash
# The attack figures of two builds in one run (BENCHMARKS.md, "Hostile input"): each serves the
# same index of the demo feed in turn and is attacked by the NEW build's `bench attack`; then each
# answers one polite client for 20 s (`bench http --clients 1 --unique`) for the p50 it costs.
# usage: bash scripts/attack_compare.sh OLD_PODSEEK NEW_PODSEEK [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1; NEW=$2; SECONDS_EACH=${3:-15}
work=$(mktemp -d); server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$NEW" ingest data/demo-feed/feed.xml --index "$work/index" >/dev/null 2>&1
for build in old new; do
  bin=$OLD; [ "$build" = new ] && bin=$NEW
  "$bin" serve --index "$work/index" --addr 127.0.0.1:0 --threads 2 >"$work/$build.out" 2>"$work/$build.log" &
  server=$!
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$build.out" | head -1 || true)
    [ -n "$url" ] && curl -sf "$url/readyz" >/dev/null && break
    sleep 0.2
  done
  echo "== $build build ($bin)"
  "$NEW" bench http --url "$url" --clients 1 --seconds 20 --unique || true
  "$NEW" bench attack --url "$url" --pid "$server" --seconds "$SECONDS_EACH" 2>/dev/null || true
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
done
