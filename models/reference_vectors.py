#!/usr/bin/env python3
"""Compute reference embeddings with Python onnxruntime, for the Rust parity test.

Run once after models/fetch.sh, in a venv with onnxruntime==1.32.0, tokenizers and numpy:
    python models/reference_vectors.py > tests/data/reference_vectors.json
Each text is embedded alone (USE-m3 quantizes activations per batch). e5 uses the graph's own
pooled output (sentence_embedding), independently of fastembed's pooling in Rust.
"""
import json, os
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
TEXTS = [
    "How do protein language models learn structure without supervision?",
    "¿Cómo aprenden estructura los modelos de lenguaje de proteínas sin supervisión?",
    "Running fifteen coding agents in parallel on a Saturday.",
    "Ejecutar quince agentes de programación en paralelo un sábado.",
    "The drone war in Ukraine changed what infantry does.",
    "Durable Objects y Dynamic Workers como sustrato para agentes.",
]

def use_m3():
    d = os.path.join(HERE, "use-m3")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    out = []
    for t in TEXTS:
        ids = np.array(tok.encode(t).ids, dtype=np.int32)
        v = sess.run(["outputs"], {"token_ids": ids, "row_splits": np.array([0, len(ids)], dtype=np.int64)})[0][0]
        out.append((v / np.linalg.norm(v)).tolist())
    return out

def e5(prefix):
    d = os.path.join(HERE, "e5-small")
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    out = []
    for t in TEXTS:
        ids = np.array([tok.encode(prefix + t).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        out.append(sess.run(["sentence_embedding"], feeds)[0][0].tolist())
    return out

r = lambda vs: [[round(x, 7) for x in v] for v in vs]
print(json.dumps({"texts": TEXTS, "use-m3": r(use_m3()), "e5-small/query": r(e5("query: ")),
                  "e5-small/passage": r(e5("passage: "))}))
