#!/usr/bin/env python3
"""How closely converted EmbeddingGemma graphs follow the fp32 model, and whether a text's vector depends on its batch.

usage: python gemma_fidelity.py REFERENCE_DIR MODEL_DOWNLOAD_DIR CORPUS_JSON MODEL_DIR [MODEL_DIR ...]

REFERENCE_DIR holds egemma_numpy.py (the independent fp32 numpy forward pass, shared/reference/embeddinggemma);
MODEL_DOWNLOAD_DIR the sentence-transformers folder; CORPUS_JSON is `podseek parse data/podcast-page.txt --json`.
Each MODEL_DIR holds a model.onnx (and uses models/embeddinggemma/tokenizer.json). Prints one line per graph:
- calibration text (what gemma_smoothing.py calibrates on): the 190 chapters as documents, the 92 old dev questions;
- held out from calibration: the 212 quotes and episode descriptions as documents, the unseen set's 114 tuning-half
  questions (never its test half);
- batch-stable: the lowest cosine between one of 64 unseen-set questions embedded alone and inside a call of 8.
The fp32 reference vectors are cached in MODEL_DOWNLOAD_DIR/../fidelity-reference-<digest of the texts>.npz
(about a minute to make).
Needs numpy, onnx, onnxruntime 1.32.0 and tokenizers (as gemma_smoothing.py, whose calibration text it reads).
"""
import ast
import hashlib
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from gemma_smoothing import calibration_documents, calibration_questions

HERE = os.path.dirname(os.path.abspath(__file__))
QUERY, DOCUMENT = "task: search result | query: ", "title: none | text: "


def texts(corpus_path):
    corpus = json.load(open(corpus_path))
    unseen = [json.loads(line) for line in open(os.path.join(HERE, "../tests/data/unseen/queries.jsonl"))]
    held_docs = []
    for e in corpus["episodes"]:
        if e.get("description"):
            held_docs.append(e["description"])
        for c in e["chapters"]:
            quotes = ast.literal_eval(c["quotes"]) if isinstance(c["quotes"], str) else c["quotes"]
            held_docs += [q["text"] for q in quotes if len(q["text"]) > 40]
    return {
        "calibration documents": calibration_documents(corpus_path),
        "calibration questions": calibration_questions(os.path.join(HERE, "../tests/data/dev/queries.jsonl")),
        "held-out documents": held_docs,
        "held-out questions": [q["text"] for q in unseen if q["split"] == "tune"],
    }, [QUERY + q["text"] for q in unseen[:64]]


def reference(reference_dir, src, sets):
    # keyed by the texts, so a changed corpus or question set never meets stale vectors
    digest = hashlib.sha256(json.dumps(sets, sort_keys=True).encode()).hexdigest()[:16]
    cache = os.path.join(os.path.dirname(os.path.abspath(src)), f"fidelity-reference-{digest}.npz")
    if os.path.exists(cache):
        return dict(np.load(cache))
    sys.path.insert(0, reference_dir)
    from egemma_numpy import EmbeddingGemma  # noqa: E402
    m = EmbeddingGemma(src)
    out = {}
    for name, items in sets.items():
        encode = m.encode_query if name.endswith("questions") else m.encode_document
        out[name] = np.concatenate([encode([t]) for t in items])
    np.savez(cache, **out)
    return out


def embed(session, tokenizer, batch):
    ids = [tokenizer.encode(t).ids for t in batch]
    width = max(map(len, ids))
    input_ids, mask = np.zeros((len(ids), width), np.int64), np.zeros((len(ids), width), np.int64)
    for i, row in enumerate(ids):
        input_ids[i, :len(row)], mask[i, :len(row)] = row, 1
    return session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


def main():
    reference_dir, src, corpus, *models = sys.argv[1:]
    sets, batch_questions = texts(corpus)
    ref = reference(reference_dir, src, sets)
    tokenizer = Tokenizer.from_file(os.path.join(HERE, "embeddinggemma", "tokenizer.json"))
    for model in models:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(os.path.join(model, "model.onnx"), options, providers=["CPUExecutionProvider"])
        cells = []
        for name, items in sets.items():
            prompt = QUERY if name.endswith("questions") else DOCUMENT
            got = np.concatenate([embed(session, tokenizer, [prompt + t]) for t in items])
            cos = (got * ref[name]).sum(axis=1)
            cells.append(f"{name} {cos.min():.5f} / {cos.mean():.5f}")
        alone = np.concatenate([embed(session, tokenizer, [q]) for q in batch_questions])
        together = np.concatenate([embed(session, tokenizer, batch_questions[i:i + 8]) for i in range(0, 64, 8)])
        cells.append(f"batch-stable {(alone * together).sum(axis=1).min():.6f}")
        print(f"{model}: cos min / mean: " + "; ".join(cells))


if __name__ == "__main__":
    main()
