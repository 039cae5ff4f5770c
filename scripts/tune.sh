#!/usr/bin/env bash
# Choose the search configuration on the TUNING half of the unseen-style dev set (tests/data/unseen):
# model, chunk size, quote chunks, keyword part, ensemble. Prints one table row per candidate.
# The test half is scored once, for the chosen configuration only, by scripts/baselines.sh.
# usage: bash scripts/tune.sh [WORK_DIR]   (indexes are kept in WORK_DIR and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
cargo build --release -q --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
Q=(--queries tests/data/unseen/queries.jsonl --qrels tests/data/unseen/qrels.tsv --split tune)
build() { # name model chunk-tokens extra-args...
  local name=$1 model=$2 tokens=$3; shift 3
  [ -f "$WORK/$name/CURRENT" ] || "$P" ingest data/podcast-page.txt --model "$model" --chunk-tokens "$tokens" --whole-chapters off --index "$WORK/$name" "$@" >&2
}
# Untranslated unless the row says `--translate` (the rows predate translation as the default).
off() { [[ " $* " == *" --translate "* ]] || echo --translate off; }
row() { "$P" eval "${Q[@]}" --index "$WORK/$1" --row "$2" $(off "$@") "${@:3}" 2>/dev/null; }
for spec in "use-m3+e5 64" "embeddinggemma 64" "embeddinggemma 128" "embeddinggemma 256" "embeddinggemma 512" \
            "embeddinggemma-dq 64" "embeddinggemma+use-m3 64"; do
  set -- $spec
  build "$1-$2" "$1" "$2"
done
build embeddinggemma-64-noquotes embeddinggemma 64 --no-quotes
build embeddinggemma-128-twins embeddinggemma 128 --translate
"$P" eval "${Q[@]}" --index "$WORK/use-m3+e5-64" --row "use-m3+e5, 64-token chunks + quotes, hybrid (old default)" --translate off --header 2>/dev/null
row use-m3+e5-64 "BM25 (tantivy, EN+ES stop words)" --system bm25
for spec in "embeddinggemma 64" "embeddinggemma 128" "embeddinggemma 256" "embeddinggemma 512" "embeddinggemma-dq 64" "embeddinggemma+use-m3 64"; do
  set -- $spec
  row "$1-$2" "$1, $2-token chunks + quotes, vectors only" --dense-only
  row "$1-$2" "$1, $2-token chunks + quotes, hybrid"
done
row embeddinggemma-64-noquotes "embeddinggemma, 64-token chunks, no quote chunks, vectors only" --dense-only
row embeddinggemma-64-noquotes "embeddinggemma, 64-token chunks, no quote chunks, hybrid"
row embeddinggemma-128 "embeddinggemma 128 hybrid + translated question (max)" --translate max
row embeddinggemma-128 "embeddinggemma 128 hybrid + translated question (mean)" --translate mean
row embeddinggemma-128-twins "embeddinggemma 128 hybrid + twin chunks"
row embeddinggemma-128-twins "embeddinggemma 128 vectors only + twin chunks" --dense-only
row embeddinggemma-128 "embeddinggemma 128 hybrid, per-language BM25 (stemmed)" --keyword per-language
row embeddinggemma-128-twins "embeddinggemma 128 hybrid + twin chunks + per-language BM25" --keyword per-language
row embeddinggemma-128 "embeddinggemma 128 hybrid, per-language BM25 + translated question (max)" --keyword per-language --translate max
