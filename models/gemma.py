"""Build an ONNX graph for EmbeddingGemma-300M from its sentence-transformers folder, with numpy and onnx only.

usage: python gemma.py SRC_DIR OUT_DIR [--linear mixed|q8|q4|int8|f32] [--smoothing FILE] [--table int8|f16|f32]

--linear mixed (the default) needs --smoothing: the factors and activation bounds of gemma-smoothing.json.

SRC_DIR is the `model_download/` folder (model.safetensors, 2_Dense, 3_Dense, config.json, tokenizer.json).
OUT_DIR gets model.onnx and tokenizer.json.

The graph: input_ids, attention_mask (int64 [batch, seq], right-padded) -> sentence_embedding (f32 [batch, 768],
L2-normalized). It is the Gemma3 text encoder with bidirectional attention (sliding-window layers see |i-j| <
sliding_window/2+1), mean pooling over the real tokens, the two Dense layers folded into one 768x768 matrix
(they have no activation between them), then L2 normalization. Every constant comes from config.json.

Folded at conversion time, so the graph does less per token:
- Gemma's RMSNorm weight `w` is used as `1 + w`;
- the attention scale query_pre_attn_scalar^-0.5 goes into the q-norm weight (RoPE is linear, so it commutes);
- q, k and v share one MatMul; gate and up share another;
- the embedding scale sqrt(hidden) goes into the table (f32) or its per-row scales (int8).
ONNX Runtime's fused operators carry the rest: SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization
(a residual add and the norm after it), RotaryEmbedding and MultiHeadAttention (padding as a key mask, the
sliding window as a bias), about a third of the nodes the plain-operator graph had.

Linear layers (--linear):
- mixed (default): SmoothQuant factors from --smoothing folded into the weights (exact in f32), then int8
  weights with one scale per output column times activations quantized to int8 with one static scale per
  layer input (QuantizeLinear, then MatMulIntegerToFloat), except the MLP's down projection, which keeps
  8-bit blocks. The static scales are the calibrated activation bounds stored beside the factors: each
  linear layer's input follows an RMSNorm (or attention over normalized values), so after smoothing a
  token's largest value varies little (0.3-1.1 for the median token, at most 1.9, over the calibration
  text) and one stored bound costs little precision, while computing a bound per token took a quarter
  of a question's time in small operators. Static scales also keep a text's vector independent of
  what else shares its batch;
- q8 / q4: block-wise weights (32 inputs per scale) run by MatMulNBits with int8 activations per block;
- int8: per-column int8 weights with one activation scale per tensor computed at run time
  (DynamicQuantizeMatMul); fast, but a text's vector then depends on what else shares its batch;
- f32.
`--table f16|int8` stores the 262k x 768 embedding table compactly and dequantizes only the gathered rows. The
output is deterministic: the same inputs give byte-identical files, so fetch.sh can pin their sha256.
"""
import argparse
import base64
import json
import os
import shutil
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 21
NEG = -1e9  # additive mask; softmax turns it into an exact 0 without inf arithmetic


def read_safetensors(path):
    """The tensors of a safetensors file as numpy arrays (f32 only: that is what this model ships)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {meta['dtype']}, expected F32")
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(meta["shape"])
    return out


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint, array):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), n))
        return n

    def op(self, op_type, inputs, hint=None, domain="", outputs=1, **attrs):
        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain or None, **attrs))
        return names[0] if outputs == 1 else names


class Builder:
    def __init__(self, cfg, linear, table, bounds=None):
        self.cfg, self.linear, self.table = cfg, linear, table
        self.bounds = bounds  # per layer: {kind: largest |activation| expected at that layer's input}
        self.layer_index = None
        self.g = Graph()
        self.eps = float(cfg["rms_norm_eps"])

    def rmsnorm(self, x, weight_plus_one):
        """x / sqrt(mean(x^2) + eps) * w over the last axis, as one node."""
        return self.g.op("SimplifiedLayerNormalization", [x, self.g.const("norm_w", weight_plus_one.astype(np.float32))],
                         "rmsnorm", axis=-1, epsilon=self.eps, stash_type=1)

    def skip_rmsnorm(self, x, skip, weight_plus_one):
        """(rmsnorm(x + skip), x + skip) as one node: a residual add and the norm that follows it."""
        g = self.g
        g.op("SkipSimplifiedLayerNormalization", [x, skip, g.const("norm_w", weight_plus_one.astype(np.float32))],
             "skip_rmsnorm", domain="com.microsoft", outputs=4, epsilon=self.eps)
        out = g.nodes[-1].output
        return out[0], out[3]

    def matmul(self, x, w_in_out, hint):
        """x @ W for W of shape [in, out]: f32, or int8 per output column with dynamic activation quantization."""
        g = self.g
        if self.linear == "f32":
            return g.op("MatMul", [x, g.const(hint, w_in_out)], hint)
        if self.linear.startswith("q"):
            return self.matmul_nbits(x, w_in_out, hint, int(self.linear[1:]))
        if self.linear == "mixed":
            # the MLP's down projection keeps per-block activation scales: its input, gelu(gate) * up,
            # has outliers inside a token that one scale per token, let alone per layer, cannot cover
            if hint == "down":
                return self.matmul_nbits(x, w_in_out, hint, 8)
            return self.matmul_static(x, w_in_out, hint, self.bounds[self.layer_index][hint])
        scale = np.abs(w_in_out).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w_in_out / scale), -127, 127).astype(np.int8)
        return g.op(
            "DynamicQuantizeMatMul",
            [x, g.const(hint + "_q", q), g.const(hint + "_scale", scale.astype(np.float32)),
             g.const(hint + "_zp", np.zeros(scale.shape, np.int8))],
            hint, domain="com.microsoft")

    def matmul_static(self, x, w_in_out, hint, bound):
        """int8 weights (one scale per output column) times activations quantized with one stored scale
        (uint8 around 128, saturating beyond `bound`), in two operators: QuantizeLinear, then
        MatMulIntegerToFloat, which applies both scales to the int32 products."""
        g = self.g
        w_scale = np.abs(w_in_out).max(axis=0) / 127.0
        w_scale[w_scale == 0] = 1.0
        q = np.clip(np.rint(w_in_out / w_scale), -127, 127).astype(np.int8)
        x_scale = g.const(hint + "_x_scale", np.array(bound / 127.0, np.float32))
        zero = g.const("zp128", np.array(128, np.uint8))
        xq = g.op("QuantizeLinear", [x, x_scale, zero])
        return g.op("MatMulIntegerToFloat", [xq, g.const(hint + "_q", q), x_scale,
                                             g.const(hint + "_scale", w_scale.astype(np.float32)), zero],
                    hint, domain="com.microsoft")

    def matmul_nbits(self, x, w_in_out, hint, bits, block=32):
        """Block-wise symmetric weights (one scale per 32 inputs of each output) run by MatMulNBits with
        accuracy_level 4: activations are quantized to int8 per block too, so an outlier only costs
        precision inside its own block (per-tensor activation scales lose a lot on Gemma)."""
        g = self.g
        k, n = w_in_out.shape
        levels = 2 ** (bits - 1)
        blocks = w_in_out.T.reshape(n, k // block, block)
        scale = np.abs(blocks).max(axis=2) / (levels - 1)
        scale[scale == 0] = 1.0
        q = (np.clip(np.rint(blocks / scale[:, :, None]), -(levels - 1), levels - 1) + levels).astype(np.uint8)
        if bits == 4:
            q = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
        zero = np.full((n, (k // block * bits + 7) // 8), levels if bits == 8 else 0x88, np.uint8)
        return g.op(
            "MatMulNBits",
            [x, g.const(hint + "_q", q), g.const(hint + "_scale", scale.astype(np.float32).reshape(-1)),
             g.const(hint + "_zp", zero.reshape(-1))],
            hint, domain="com.microsoft", K=k, N=n, bits=bits, block_size=block, accuracy_level=4)

    def embed(self, ids, table):
        g = self.g
        scale = np.float32(self.cfg["hidden_size"] ** 0.5)
        if self.table == "f32":
            return g.op("Gather", [g.const("embed", table * scale), ids], "embed")
        if self.table == "f16":
            rows = g.op("Cast", [g.op("Gather", [g.const("embed_f16", table.astype(np.float16)), ids])], to=TensorProto.FLOAT)
            return g.op("Mul", [rows, g.const("embed_scale", np.array(scale, np.float32))], "embed")
        # int8 rows, one symmetric scale per row (the sqrt(hidden) factor folded in)
        row_max = np.abs(table).max(axis=1)
        row_max[row_max == 0] = 1.0
        q = np.clip(np.rint(table / (row_max / 127.0)[:, None]), -127, 127).astype(np.int8)
        row_scale = (row_max / 127.0 * scale).astype(np.float32)[:, None]
        rows = g.op("Cast", [g.op("Gather", [g.const("embed_q", q), ids])], to=TensorProto.FLOAT)
        return g.op("Mul", [rows, g.op("Gather", [g.const("embed_row_scale", row_scale), ids])], "embed")

    def rope_tables(self, positions, base):
        """cos and sin caches of shape [seq, head_dim/2] for positions 0..seq-1, computed in the graph."""
        g = self.g
        d = self.cfg["head_dim"]
        inv = (1.0 / (base ** (np.arange(0, d, 2, dtype=np.float32) / d))).astype(np.float32)
        freqs = g.op("Mul", [g.op("Unsqueeze", [positions, g.const("ax1", np.array([1], np.int64))]), g.const("inv_freq", inv[None, :])])
        return g.op("Cos", [freqs], "rope_cos"), g.op("Sin", [freqs], "rope_sin")

    def rope(self, x, heads, tables):
        """RoPE on [B, T, heads*D] (HF's non-interleaved halves), positions from 0."""
        cos, sin = tables
        return self.g.op("RotaryEmbedding", [x, self.first_position, cos, sin], "rope", domain="com.microsoft",
                         interleaved=0, num_heads=heads)

    def layer(self, x, h, w, p, attention, ropes, next_norm):
        """One encoder layer. x is the residual stream and h = input_layernorm(x); returns
        (next_norm(x'), x') for the new residual stream x', so every residual add shares a node with the
        norm that follows it."""
        g, c = self.g, self.cfg
        H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        self.layer_index = int(p.split(".")[1])
        local = c["layer_types"][self.layer_index] == "sliding_attention"
        wqkv = np.concatenate([w[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], axis=0).T
        qkv = self.matmul(h, wqkv, "qkv")
        q, k, v = g.op("Split", [qkv, g.const("qkv_split", np.array([H * D, KV * D, KV * D], np.int64))], axis=-1, outputs=3)
        # q-norm is per head: normalize [B, T, H, D], then back to [B, T, H*D]
        q_scale = np.float32(c["query_pre_attn_scalar"] ** -0.5)
        q = g.op("Reshape", [q, g.const("q_heads", np.array([0, 0, H, D], np.int64))])
        q = self.rmsnorm(q, (1.0 + w[p + "self_attn.q_norm.weight"]) * q_scale)
        q = g.op("Reshape", [q, g.const("q_merged", np.array([0, 0, H * D], np.int64))])
        k_norm = 1.0 + w[p + "self_attn.k_norm.weight"]
        if KV == 1:  # one key head: its last axis is the head already
            k = self.rmsnorm(k, k_norm)
        else:
            k = self.rmsnorm(g.op("Reshape", [k, g.const("kv_heads", np.array([0, 0, KV, D], np.int64))]), k_norm)
            k = g.op("Reshape", [k, g.const("kv_merged", np.array([0, 0, KV * D], np.int64))])
        q, k = self.rope(q, H, ropes[local]), self.rope(k, KV, ropes[local])
        # MultiHeadAttention wants as many key/value heads as query heads: repeat the shared ones
        repeat = H // KV
        k, v = g.op("Concat", [k] * repeat, axis=-1), g.op("Concat", [v] * repeat, axis=-1)
        padding, window = attention
        attn = g.op("MultiHeadAttention", [q, k, v, "", padding, window if local else ""], "attention",
                    domain="com.microsoft", num_heads=H, scale=1.0)  # the scale is in the q-norm weight
        attn = self.matmul(attn, w[p + "self_attn.o_proj.weight"].T, "o_proj")
        h, x = self.skip_rmsnorm(self.rmsnorm(attn, 1.0 + w[p + "post_attention_layernorm.weight"]), x,
                                 1.0 + w[p + "pre_feedforward_layernorm.weight"])
        wgu = np.concatenate([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]], axis=0).T
        inter = wgu.shape[1] // 2
        gate, up = g.op("Split", [self.matmul(h, wgu, "gate_up"), g.const("gu_split", np.array([inter, inter], np.int64))], axis=-1, outputs=2)
        m = self.matmul(g.op("Mul", [g.op("Gelu", [gate], approximate="tanh"), up]), w[p + "mlp.down_proj.weight"].T, "down")
        return self.skip_rmsnorm(self.rmsnorm(m, 1.0 + w[p + "post_feedforward_layernorm.weight"]), x, next_norm)

    def attention_masks(self, positions):
        """(key padding mask [B, T] int32, sliding-window bias [1, 1, T, T]): global layers use the first,
        sliding layers both (a key at |i-j| >= sliding_window/2+1 gets a large negative bias)."""
        g = self.g
        padding = g.op("Cast", ["attention_mask"], "key_padding", to=TensorProto.INT32)
        window = self.cfg["sliding_window"] // 2 + 1
        dist = g.op("Abs", [g.op("Sub", [g.op("Unsqueeze", [positions, g.const("ax1", np.array([1], np.int64))]),
                                         g.op("Unsqueeze", [positions, g.const("ax0", np.array([0], np.int64))])])])
        outside = g.op("Where", [g.op("Less", [dist, g.const("window", np.array(window, np.float32))]),
                                 g.const("zero", np.array(0.0, np.float32)), g.const("neg", np.array(NEG, np.float32))])
        bias = g.op("Unsqueeze", [outside, g.const("ax01", np.array([0, 1], np.int64))], "window_bias")
        return padding, bias

    def build(self, w, dense):
        g, c = self.g, self.cfg
        ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
        mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
        out = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", c["hidden_size"]])
        mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
        seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one_i", np.array(1, np.int64))], axis=0)
        positions = g.op("Cast", [g.op("Range", [g.const("zero_i", np.array(0, np.int64)), seq, g.const("step", np.array(1, np.int64))])], to=TensorProto.FLOAT)
        self.first_position = g.const("first_position", np.array([0], np.int64))
        attention = self.attention_masks(positions)
        ropes = {True: self.rope_tables(positions, c["rope_local_base_freq"]), False: self.rope_tables(positions, c["rope_theta"])}
        x = self.embed("input_ids", w["embed_tokens.weight"])
        n = c["num_hidden_layers"]
        h = self.rmsnorm(x, 1.0 + w["layers.0.input_layernorm.weight"])
        for i in range(n):
            following = w[f"layers.{i + 1}.input_layernorm.weight"] if i + 1 < n else w["norm.weight"]
            h, x = self.layer(x, h, w, f"layers.{i}.", attention, ropes, 1.0 + following)
        # h is now the final norm of the last residual stream
        weights = g.op("Unsqueeze", [mask_f, g.const("ax_last", np.array([-1], np.int64))])
        summed = g.op("ReduceSum", [g.op("Mul", [h, weights]), g.const("ax_seq", np.array([1], np.int64))], keepdims=0)
        count = g.op("ReduceSum", [mask_f, g.const("ax_seq", np.array([1], np.int64))], keepdims=1)
        pooled = g.op("Div", [summed, count], "mean_pool")
        projected = g.op("MatMul", [pooled, g.const("dense", dense)], "dense")
        g.nodes.append(helper.make_node("LpNormalization", [projected], ["sentence_embedding"], axis=-1, p=2))
        graph = helper.make_graph(g.nodes, "embeddinggemma", [ids, mask], [out], g.inits)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="podseek-models-gemma")
        model.ir_version = 10
        return model


SMOOTHED = ("qkv", "o_proj", "gate_up", "down")


def apply_smoothing(w, cfg, spec):
    """Fold SmoothQuant factors into the weights, exactly (the f32 graph computes the same function):
    each linear layer's input channel j is divided by s_j upstream and its weight row j multiplied by s_j,
    so activation outliers move into the weights, where per-column int8 scales absorb them.
    Upstream of qkv and gate_up is an RMSNorm weight; of o_proj, v_proj's output (attention is linear
    in v; the factor is shared by the query heads that read one value head); of down, up_proj's output.
    The factors come from models/gemma_smoothing.py and are stored, so conversion is deterministic."""
    D = cfg["head_dim"]
    for i, layer in enumerate(spec["layers"]):
        s = {k: np.frombuffer(base64.b64decode(layer[k]), "<f2").astype(np.float32) for k in SMOOTHED}
        p, a, m = f"layers.{i}.", f"layers.{i}.self_attn.", f"layers.{i}.mlp."
        w[p + "input_layernorm.weight"] = (1.0 + w[p + "input_layernorm.weight"]) / s["qkv"] - 1.0
        for n in "qkv":
            w[a + f"{n}_proj.weight"] = w[a + f"{n}_proj.weight"] * s["qkv"][None, :]
        w[a + "v_proj.weight"] = w[a + "v_proj.weight"] / s["o_proj"][:, None]
        w[a + "o_proj.weight"] = w[a + "o_proj.weight"] * np.tile(s["o_proj"], w[a + "o_proj.weight"].shape[1] // D)[None, :]
        w[p + "pre_feedforward_layernorm.weight"] = (1.0 + w[p + "pre_feedforward_layernorm.weight"]) / s["gate_up"] - 1.0
        for n in ("gate", "up"):
            w[m + f"{n}_proj.weight"] = w[m + f"{n}_proj.weight"] * s["gate_up"][None, :]
        w[m + "up_proj.weight"] = w[m + "up_proj.weight"] / s["down"][:, None]
        w[m + "down_proj.weight"] = w[m + "down_proj.weight"] * s["down"][None, :]


def load_weights(src):
    """The encoder's tensors (writable copies) and the two Dense layers folded into one matrix."""
    w = {k: np.array(v) for k, v in read_safetensors(os.path.join(src, "model.safetensors")).items()}
    d2 = read_safetensors(os.path.join(src, "2_Dense", "model.safetensors"))["linear.weight"]
    d3 = read_safetensors(os.path.join(src, "3_Dense", "model.safetensors"))["linear.weight"]
    # y = (x @ d2.T) @ d3.T with no activation between: one matrix, computed in f64 then stored as f32
    dense = (d2.T.astype(np.float64) @ d3.T.astype(np.float64)).astype(np.float32)
    return w, dense


def read_config(src):
    cfg = json.load(open(os.path.join(src, "config.json")))
    expect = dict(model_type="gemma3_text", use_bidirectional_attention=True, rope_scaling=None,
                  attn_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh")
    for key, value in expect.items():
        if cfg.get(key) != value:
            raise SystemExit(f"{src}/config.json: {key} is {cfg.get(key)!r}, this converter handles {value!r}")
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--linear", choices=["f32", "int8", "q8", "q4", "mixed"], default="mixed")
    ap.add_argument("--smoothing", help="SmoothQuant factors and activation bounds (gemma-smoothing.json)")
    ap.add_argument("--table", choices=["f32", "f16", "int8"], default="int8")
    args = ap.parse_args()
    if args.linear == "mixed" and not args.smoothing:
        raise SystemExit("--linear mixed needs --smoothing FILE (models/gemma-smoothing.json)")
    cfg = read_config(args.src)
    w, dense = load_weights(args.src)
    spec = json.load(open(args.smoothing)) if args.smoothing else None
    if spec:
        apply_smoothing(w, cfg, spec)
    bounds = spec.get("bounds") if spec else None
    if args.linear == "mixed" and not bounds:
        raise SystemExit(f"{args.smoothing}: no `bounds` (activation bounds, from gemma_smoothing.py)")
    model = Builder(cfg, args.linear, args.table, bounds).build(w, dense)
    os.makedirs(args.out, exist_ok=True)
    onnx.save_model(model, os.path.join(args.out, "model.onnx"))
    shutil.copyfile(os.path.join(args.src, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    size = os.path.getsize(os.path.join(args.out, "model.onnx"))
    print(f"gemma: wrote {args.out}/model.onnx ({size / 1e6:.0f} MB, linear {args.linear}, table {args.table})")


if __name__ == "__main__":
    main()
