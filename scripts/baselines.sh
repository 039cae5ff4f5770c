#!/usr/bin/env bash
# Rebuild the quality tables in BENCHMARKS.md: every system on the TEST half of the unseen-style dev set
# (tests/data/unseen), plus the chosen configuration on its tuning half and on the old 92-question dev set,
# so the gap between them shows. Every choice was made on the tuning half first (scripts/tune.sh).
# usage: bash scripts/baselines.sh [WORK_DIR]   (about 10 minutes on 2 cores, release build; Apertium needed
#        for the translation rows: apt-get install apertium apertium-eng-spa)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
bash models/fetch.sh >&2
cargo build --release -q --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
build() { # name model chunk-tokens extra-args...
  local name=$1 model=$2 tokens=$3; shift 3
  [ -f "$WORK/$name/CURRENT" ] || "$P" ingest data/podcast-page.txt --model "$model" --chunk-tokens "$tokens" --whole-chapters off --index "$WORK/$name" "$@" >&2
}
build use-m3+e5-64 use-m3+e5 64
build embeddinggemma-128 embeddinggemma 128
build embeddinggemma-512-noquotes embeddinggemma 512 --no-quotes
build embeddinggemma-128-twins embeddinggemma 128 --translate
row() { "$P" eval --index "$WORK/$1" --row "$2" "${@:3}" 2>/dev/null; }
test_half=(--split test)
echo "Test half of tests/data/unseen:"
"$P" eval "${test_half[@]}" --index "$WORK/use-m3+e5-64" --row "use-m3+e5, 64-token chunks + quotes, hybrid (old default)" --header 2>/dev/null
row use-m3+e5-64 "BM25 (tantivy, EN+ES stop words)" --system bm25 "${test_half[@]}"
row embeddinggemma-512-noquotes "embeddinggemma alone: one vector per chapter, no quotes, no keyword part" --dense-only "${test_half[@]}"
row embeddinggemma-128 "embeddinggemma, 128-token chunks + quotes, vectors only" --dense-only "${test_half[@]}"
row embeddinggemma-128 "embeddinggemma + translated question (max fusion, keyword part on both)" --translate max "${test_half[@]}"
row embeddinggemma-128 "embeddinggemma + translated question (mean fusion, keyword part on both)" --translate mean "${test_half[@]}"
row embeddinggemma-128 "embeddinggemma, per-language BM25 (English and Spanish stemmers), hybrid" --keyword per-language "${test_half[@]}"
row embeddinggemma-128-twins "embeddinggemma + twin chunks + per-language BM25 over original and translated text, hybrid" --keyword per-language "${test_half[@]}"
row embeddinggemma-128-twins "embeddinggemma + twin chunks (every chunk also indexed translated), hybrid" "${test_half[@]}"
row embeddinggemma-128 "**embeddinggemma, 128-token chunks + quotes, hybrid (default)**" "${test_half[@]}"
echo
echo "The default on each question set (the gap between halves is the overfitting check):"
"$P" eval --split tune --index "$WORK/embeddinggemma-128" --row "default, tuning half (114 questions)" --header 2>/dev/null
row embeddinggemma-128 "default, test half (106 questions)" "${test_half[@]}"
row embeddinggemma-128 "default, old dev set (92 questions written while reading)" --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv
row use-m3+e5-64 "old default, old dev set" --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv
row embeddinggemma-128 "default with exact search instead of HNSW, test half" --mode exact "${test_half[@]}"
echo
echo "Whole-chapter vectors (issue #28): old default against new on the test half, on the questions added"
echo "in #28 (written after the choice; both halves), and on the tuning half"
[ -f "$WORK/whole/CURRENT" ] || "$P" ingest data/podcast-page.txt --index "$WORK/whole" >&2
python3 -c '
import json, sys
for line in open("tests/data/unseen/queries.jsonl", encoding="utf-8"):
    if int(json.loads(line)["_id"][1:]) > 220: sys.stdout.write(line)' >"$WORK/added.jsonl"
added=(--queries "$WORK/added.jsonl" --qrels tests/data/unseen/qrels.tsv)
"$P" eval "${test_half[@]}" --index "$WORK/embeddinggemma-128" --row "old default, test half" --header 2>/dev/null
row embeddinggemma-128 "old default + translated question (max), test half" --translate max "${test_half[@]}"
row whole "**new default: whole chapter (untitled) instead of summary chunks, weight 0.5**, test half" "${test_half[@]}"
row whole "new default + translated question (max), test half" --translate max "${test_half[@]}"
row embeddinggemma-128 "old default, added questions" "${added[@]}"
row embeddinggemma-128 "old default + translated question (max), added questions" --translate max "${added[@]}"
row whole "new default, added questions" "${added[@]}"
row whole "new default + translated question (max), added questions" --translate max "${added[@]}"
row embeddinggemma-128 "old default, tuning half" --split tune
row whole "new default, tuning half" --split tune
row embeddinggemma-128 "old default, old dev set (92 questions written while reading)" --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv
row whole "new default, old dev set" --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv
