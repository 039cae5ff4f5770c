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
# Rows made before translation became the default (#28's third round) say `--translate` when they
# translate; every other row is untranslated, as it was when it was recorded.
off() { [[ " $* " == *" --translate "* ]] || echo --translate off; }
row() { "$P" eval --index "$WORK/$1" --row "$2" $(off "$@") "${@:3}" 2>/dev/null; }
test_half=(--split test)
echo "Test half of tests/data/unseen:"
"$P" eval "${test_half[@]}" --index "$WORK/use-m3+e5-64" --row "use-m3+e5, 64-token chunks + quotes, hybrid (old default)" --translate off --header 2>/dev/null
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
"$P" eval --split tune --index "$WORK/embeddinggemma-128" --row "default, tuning half (114 questions)" --translate off --header 2>/dev/null
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
    if 220 < int(json.loads(line)["_id"][1:]) <= 332: sys.stdout.write(line)' >"$WORK/added.jsonl"
added=(--queries "$WORK/added.jsonl" --qrels tests/data/unseen/qrels.tsv)
"$P" eval "${test_half[@]}" --index "$WORK/embeddinggemma-128" --row "old default, test half" --translate off --header 2>/dev/null
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
echo
echo "#28, third round: 125 questions added (u333-u457); translation's words in the keyword part"
echo "(--translate keywords) chosen on the enlarged tuning half, then reported on the test half and on"
echo "the added questions of the test half, which were scored once, after the choice"
python3 -c '
import json, sys
for line in open("tests/data/unseen/queries.jsonl", encoding="utf-8"):
    q = json.loads(line)
    if int(q["_id"][1:]) >= 333 and q["split"] == "test": sys.stdout.write(line)' >"$WORK/third-test.jsonl"
third=(--queries "$WORK/third-test.jsonl" --qrels tests/data/unseen/qrels.tsv --split test)
"$P" eval --split tune --index "$WORK/whole" --row "whole-chapter default, untranslated, tuning half" --translate off --header 2>/dev/null
row whole "**new default: + translation's words in the keyword part**, tuning half" --translate keywords --split tune
row whole "whole-chapter default + translated question (max), tuning half" --translate max --split tune
for w in 0.3 0.4 0.6; do
  row whole "translation's words, whole weight $w, tuning half" --translate keywords --whole-weight "$w" --split tune
done
row embeddinggemma-128 "chunks only (the default before #28), tuning half" --split tune
row embeddinggemma-128 "chunks only + translation's words, tuning half" --translate keywords --split tune
row embeddinggemma-128 "chunks only (the default before #28), test half" "${test_half[@]}"
row whole "whole-chapter default, untranslated, test half" "${test_half[@]}"
row whole "**new default**, test half" --translate keywords "${test_half[@]}"
row whole "whole-chapter default + translated question (max), test half" --translate max "${test_half[@]}"
row embeddinggemma-128 "chunks only (the default before #28), added questions of the test half" "${third[@]}"
row whole "whole-chapter default, untranslated, added questions of the test half" "${third[@]}"
row whole "**new default**, added questions of the test half" --translate keywords "${third[@]}"
row whole "whole-chapter default + translated question (max), added questions of the test half" --translate max "${third[@]}"
row whole "**new default**, old dev set" --translate keywords --queries tests/data/dev/queries.jsonl --qrels tests/data/dev/qrels.tsv
