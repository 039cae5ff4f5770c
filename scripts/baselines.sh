#!/usr/bin/env bash
# Rebuild the baselines table in BENCHMARKS.md: BM25 and each embedding model, chunk size and
# ranking, indexed from the bundled corpus and scored on the dev set (tests/data/dev).
# usage: bash scripts/baselines.sh [WORK_DIR]   (about 10 minutes on 2 cores, release build)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
bash models/fetch.sh >&2
cargo build --release -q --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
build() { # name model chunk-tokens extra-args...
  local name=$1 model=$2 tokens=$3; shift 3
  [ -f "$WORK/$name/CURRENT" ] || "$P" ingest data/podcast-page.txt --model "$model" --chunk-tokens "$tokens" --index "$WORK/$name" "$@" >&2
}
build use-m3-64 use-m3 64
build e5-small-64 e5-small 64
build ensemble-64 use-m3+e5 64
build ensemble-64-noquotes use-m3+e5 64 --no-quotes
build ensemble-128 use-m3+e5 128
build ensemble-256 use-m3+e5 256
row() { "$P" eval --index "$WORK/$1" --row "$2" "${@:3}" 2>/dev/null; }
echo "| system | nDCG@10 | MRR@10 | Hit@10 | R@100 | en→es nDCG / MRR / Hit@10 | es→en nDCG / MRR / Hit@10 | same-language nDCG | quote nDCG | multi nDCG |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row ensemble-64 "BM25 (tantivy, EN+ES stop words)" --system bm25
row use-m3-64 "use-m3, 64-token chunks + quotes, vectors only" --dense-only
row e5-small-64 "e5-small, 64-token chunks + quotes, vectors only" --dense-only
row ensemble-256 "use-m3+e5, 256-token chunks + quotes, vectors only" --dense-only
row ensemble-256 "use-m3+e5, 256-token chunks + quotes, hybrid"
row ensemble-128 "use-m3+e5, 128-token chunks + quotes, hybrid"
row ensemble-64-noquotes "use-m3+e5, 64-token chunks, no quote chunks, hybrid"
row ensemble-64 "use-m3+e5, 64-token chunks + quotes, vectors only" --dense-only
row ensemble-64 "**use-m3+e5, 64-token chunks + quotes, hybrid (default)**"
row ensemble-64 "default with exact search instead of HNSW" --mode exact
