#!/usr/bin/env bash
# Run podseek's whole test suite: real models, real index, real servers, real MCP client, real browser.
# usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse a target dir outside the clone (CI clones afresh; the build cache survives).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
echo "== models"
bash models/fetch.sh
if ! command -v chromedriver >/dev/null || [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium and chromium-driver for the page test"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null
fi
echo "== format"
cargo fmt --all -- --check
echo "== benches compile"
cargo build --benches -q
echo "== tests"
cargo test --all-features -- --test-threads=2
