#!/usr/bin/env bash
# Run podseek's whole test suite: real models, real index, real servers, real MCP client, real browser.
# usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse a target dir outside the clone (CI clones afresh; the build cache survives).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
echo "== models"
bash models/fetch.sh
need=()
{ command -v chromedriver >/dev/null && [ -x /usr/bin/chromium ]; } || need+=(chromium chromium-driver fonts-noto-color-emoji)
[ -f /usr/share/apertium/modes/eng-spa.mode ] || need+=(apertium apertium-eng-spa)
command -v wrk >/dev/null || need+=(wrk)
command -v protoc >/dev/null || need+=(protobuf-compiler)
# Speech made at test time for the transcription tests: espeak-ng speaks, sox joins (and writes FLAC
# and Ogg), lame encodes MP3, ffmpeg encodes AAC in M4A.
for t in espeak-ng sox lame ffmpeg; do command -v $t >/dev/null || need+=($t); done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]} (page test: Chromium; translation: Apertium; Milvus client: protoc; speech: espeak-ng, sox, lame, ffmpeg)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== outside judges (ir_measures for the metrics, schemathesis for the API) in a pinned virtualenv"
JUDGES="$HOME/.cache/podseek/judges"
if ! "$JUDGES/bin/python" -c "import ir_measures, schemathesis" 2>/dev/null; then
  rm -rf "$JUDGES" && python3 -m venv "$JUDGES"
  "$JUDGES/bin/pip" install -q --no-deps --only-binary=:all: --require-hashes -r tests/requirements-judges.txt
fi
export PODSEEK_JUDGE_PYTHON="$JUDGES/bin/python"
echo "== a Milvus server for the milvus feature's tests (PyPI milvus==2.3.5, hash-pinned), on a fresh data dir"
bash scripts/milvus.sh install
MILVUS_DATA=$(mktemp -d)
log=$(mktemp)
# Set before the server starts: a run that stops at any later step (format, build) must not leave
# a server holding the ports for the next run.
trap 'rm -f "$log"; bash scripts/milvus.sh stop "$MILVUS_DATA"; rm -rf "$MILVUS_DATA"' EXIT
bash scripts/milvus.sh start "$MILVUS_DATA"
export PODSEEK_TEST_MILVUS=127.0.0.1:19530
echo "== format"
cargo fmt --all -- --check
echo "== benches compile"
cargo build --benches -q
# Each stage runs only if everything before it passed; all output also goes to the log.
status=0
stage() {
  [ "$status" -eq 0 ] || return 0
  echo "== $1"; shift
  set +e
  "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  set -e
}
stage "tests" cargo test --all-features -- --test-threads=2
stage "the server judged from outside (wrk, then schemathesis with the admin key)" \
  bash scripts/judge_server.sh "$CARGO_TARGET_DIR/debug/podseek" "$JUDGES/bin/python"
stage "Milvus stopped and started under load (two replicas)" \
  bash scripts/milvus_outage.sh "$CARGO_TARGET_DIR/debug/podseek" "$MILVUS_DATA"
# One closing line for the whole run: every test binary's counts added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
