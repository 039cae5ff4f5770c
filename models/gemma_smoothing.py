"""Compute the SmoothQuant factors that `gemma.py --linear mixed` folds into EmbeddingGemma's weights.

usage: python gemma_smoothing.py SRC_DIR CORPUS_JSON QUERIES_JSONL OUT_JSON [--alpha 0.8] [--headroom 1.0]

SRC_DIR is the sentence-transformers folder (as for gemma.py). The calibration text is every chapter of
CORPUS_JSON (`podseek parse data/podcast-page.txt --json`: title + summary, with the document prompt) and
every question of QUERIES_JSONL (tests/data/dev/queries.jsonl, the old dev set: never the unseen set that
quality is reported on), with the query prompt.

For each linear layer's input channel j: s_j = max|x_j|^alpha / max|W_j|^(1-alpha) (SmoothQuant), where
max|x_j| is taken over every token of the calibration text through the f32 graph and max|W_j| over the
weights that read channel j. The factors are stored as float16, so the conversion that uses them is
deterministic on any machine (the calibration itself runs ONNX Runtime and may differ in the last bits).

Then the activation bounds: the same text through the smoothed f32 graph, and for each layer's qkv, o_proj
and gate_up input the largest |x| over every token and channel, times --headroom. `gemma.py --linear mixed`
quantizes those inputs with the bound / 127 as one static scale (the down projection keeps 8-bit blocks
with scales computed at run time, so it needs no bound).
Needs numpy, onnx, tokenizers and onnxruntime (1.32.0, the wheel fetch.sh takes the library from).
alpha 0.8 was chosen by cosine to the fp32 reference on this calibration text (0.5: 0.9990 mean on
documents, 0.75-0.85: 0.9993, 1.0: 0.9993 with a worse minimum); see BENCHMARKS.md, which also gives
how the headroom was chosen.
"""
import argparse
import base64
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, save_model
from tokenizers import Tokenizer

import gemma


class Tapped(gemma.Builder):
    """The f32 graph, remembering the input of every linear layer in order (layer, kind, tensor name)."""

    def __init__(self, cfg):
        super().__init__(cfg, "f32", "f32")
        self.taps = []

    def matmul(self, x, w_in_out, hint):
        self.taps.append((len(self.taps) // len(gemma.SMOOTHED), hint, x))
        return super().matmul(x, w_in_out, hint)


def calibration_documents(corpus_path):
    """Every chapter of the parsed corpus as a document: title and summary."""
    corpus = json.load(open(corpus_path))
    return [f"{c['title']}. {c['summary']}" for e in corpus["episodes"] for c in e["chapters"]]


def calibration_questions(queries_path):
    return [json.loads(line)["text"] for line in open(queries_path) if line.strip()]


def calibration_texts(corpus_path, queries_path):
    return (["title: none | text: " + d for d in calibration_documents(corpus_path)]
            + ["task: search result | query: " + q for q in calibration_questions(queries_path)])


def activation_maxima(src, cfg, w, dense, texts):
    """Per-channel max |x| of every linear layer's input over every token of every text."""
    builder = Tapped(cfg)
    model = builder.build(w, dense)
    for _, _, name in builder.taps:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tapped.onnx")
        save_model(model, path, save_as_external_data=True, location="tapped.data")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    maxima = [None] * len(builder.taps)
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], np.int64)
        outputs = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[1:]
        for j, out in enumerate(outputs):
            m = np.abs(out).reshape(-1, out.shape[-1]).max(axis=0)
            maxima[j] = m if maxima[j] is None else np.maximum(maxima[j], m)
    return {(layer, kind): maxima[j] for j, (layer, kind, _) in enumerate(builder.taps)}


def weights_reading(w, cfg, layer, kind):
    """[out, in] weights whose input channel j is the smoothed channel j."""
    p, a, m = f"layers.{layer}.", f"layers.{layer}.self_attn.", f"layers.{layer}.mlp."
    if kind == "qkv":
        return np.concatenate([w[a + f"{n}_proj.weight"] for n in "qkv"], axis=0)
    if kind == "o_proj":  # one factor per value channel, shared by the query heads
        o, D = w[a + "o_proj.weight"], cfg["head_dim"]
        return np.concatenate([o[:, h * D:(h + 1) * D] for h in range(o.shape[1] // D)], axis=0)
    if kind == "gate_up":
        return np.concatenate([w[m + "gate_proj.weight"], w[m + "up_proj.weight"]], axis=0)
    return w[m + "down_proj.weight"]


def factors(x_max, weights, alpha):
    w_max = np.abs(weights).max(axis=0)
    s = np.maximum(x_max, 1e-5) ** alpha / np.maximum(w_max, 1e-5) ** (1 - alpha)
    return np.clip(s, 1e-2, 1e3).astype(np.float16)


def bounds(src, cfg, w, dense, spec, texts, headroom):
    """Per layer, the largest |activation| at each statically quantized input of the smoothed graph.
    Smooths `w` in place."""
    gemma.apply_smoothing(w, cfg, spec)
    maxima = activation_maxima(src, cfg, w, dense, texts)
    return [{kind: float(f"{float(maxima[(layer, kind)].max()) * headroom:.6g}") for kind in ("qkv", "o_proj", "gate_up")}
            for layer in range(cfg["num_hidden_layers"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("corpus")
    ap.add_argument("queries")
    ap.add_argument("out")
    ap.add_argument("--alpha", type=float, default=0.8)
    ap.add_argument("--headroom", type=float, default=1.0)
    args = ap.parse_args()
    cfg = gemma.read_config(args.src)
    w, dense = gemma.load_weights(args.src)
    texts = calibration_texts(args.corpus, args.queries)
    maxima = activation_maxima(args.src, cfg, w, dense, texts)
    D = cfg["head_dim"]
    layers = []
    for layer in range(cfg["num_hidden_layers"]):
        entry = {}
        for kind in gemma.SMOOTHED:
            x_max = maxima[(layer, kind)]
            if kind == "o_proj":
                x_max = x_max.reshape(-1, D).max(axis=0)
            entry[kind] = base64.b64encode(factors(x_max, weights_reading(w, cfg, layer, kind), args.alpha).astype("<f2").tobytes()).decode()
        layers.append(entry)
    spec = {"alpha": args.alpha, "calibration_texts": len(texts), "layers": layers, "headroom": args.headroom}
    spec["bounds"] = bounds(args.src, cfg, w, dense, spec, texts, args.headroom)
    json.dump(spec, open(args.out, "w"), indent=0)
    print(f"gemma_smoothing: {len(texts)} texts, alpha {args.alpha}, headroom {args.headroom}, wrote {args.out}")


if __name__ == "__main__":
    main()
