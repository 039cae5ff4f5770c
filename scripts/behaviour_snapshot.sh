#!/usr/bin/env bash
# What a build answers, written to files, so two builds can be compared byte for byte (a refactor
# must not change them): the sample corpus indexed, `parse --json` of every bundled feed and page,
# eval run files (ann, exact, BM25, translated questions, per-language keywords; tune and test
# halves, and the dev set), CLI searches, and the served OpenAPI document and answers.
# usage: bash scripts/behaviour_snapshot.sh PODSEEK_BINARY OUT_DIR
#        then: diff -r OLD_OUT NEW_OUT (timings, paths and key order in CLI JSON aside)
set -euo pipefail
BIN=$(realpath "$1"); OUT=$(realpath -m "$2"); rm -rf "$OUT"; mkdir -p "$OUT"
cd "$(dirname "$0")/.."
IDX=$OUT/index
"$BIN" ingest data/podcast-page.txt data/demo-feed/feed.xml --index "$IDX" > "$OUT/ingest.out" 2> "$OUT/ingest.err"
for f in data/podcast-page.txt data/demo-feed/feed.xml tests/data/feeds/*.xml; do
  n=$(echo "$f" | tr / _)
  "$BIN" parse --json "$f" > "$OUT/parse-$n.json" 2> /dev/null || echo "exit $?" >> "$OUT/parse-$n.json"
done
"$BIN" parse data/podcast-page.txt > "$OUT/parse-text.txt" 2>&1 || true
for split in tune test; do
  for mode in ann exact; do
    "$BIN" eval --index "$IDX" --split $split --mode $mode --run-out "$OUT/run-$split-$mode.trec" > /dev/null
  done
  "$BIN" eval --index "$IDX" --split $split --system bm25 --run-out "$OUT/run-$split-bm25.trec" > /dev/null
  "$BIN" eval --index "$IDX" --split $split --translate max --run-out "$OUT/run-$split-tr.trec" > /dev/null
  "$BIN" eval --index "$IDX" --split $split --keyword per-language --dense-only --run-out "$OUT/run-$split-pl.trec" > /dev/null
done
"$BIN" eval --index "$IDX" --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv --run-out "$OUT/run-dev.trec" > /dev/null
"$BIN" search --index "$IDX" "how do plants survive drought" > "$OUT/search.txt" 2>&1
"$BIN" search --index "$IDX" --json "¿cómo sobreviven las plantas a la sequía?" | python3 -m json.tool --sort-keys > "$OUT/search.json"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --index "$IDX" --addr 127.0.0.1:$PORT > "$OUT/serve.log" 2>&1 & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf http://127.0.0.1:$PORT/readyz > /dev/null && break; sleep 0.5; done
get() { curl -s "http://127.0.0.1:$PORT$1" | python3 -m json.tool --sort-keys > "$OUT/$2"; }
get /openapi.json openapi.json
get "/v1/search?q=how+do+plants+survive+drought&k=5" http-search.json
get "/v1/search?q=x&k=0" http-bad-k.json
get /v1/episodes http-episodes.json
echo "snapshot in $OUT"
