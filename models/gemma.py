"""Build an ONNX graph for EmbeddingGemma-300M from its sentence-transformers folder, with numpy and onnx only.

usage: python gemma.py SRC_DIR OUT_DIR [--linear f32|int8] [--table f32|f16|int8]

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

Variants: `--linear int8` stores each linear layer as int8 with one symmetric scale per output column and runs it
with ONNX Runtime's DynamicQuantizeMatMul (activations quantized per call); `--table f16|int8` stores the 262k x
768 embedding table compactly and dequantizes only the gathered rows. The output is deterministic: the same
inputs give byte-identical files, so fetch.sh can pin their sha256.
"""
import argparse
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
    def __init__(self, cfg, linear, table):
        self.cfg, self.linear, self.table = cfg, linear, table
        self.g = Graph()
        self.eps = self.g.const("eps", np.array(cfg["rms_norm_eps"], np.float32))
        self.two = self.g.const("two", np.array(2.0, np.float32))

    def rmsnorm(self, x, weight_plus_one):
        """x / sqrt(mean(x^2) + eps) * w, in the pattern ONNX Runtime fuses into SimplifiedLayerNormalization."""
        g = self.g
        var = g.op("ReduceMean", [g.op("Pow", [x, self.two]), g.const("axis", np.array([-1], np.int64))], keepdims=1)
        normed = g.op("Div", [x, g.op("Sqrt", [g.op("Add", [var, self.eps])])])
        return g.op("Mul", [normed, g.const("norm_w", weight_plus_one.astype(np.float32))], "rmsnorm")

    def matmul(self, x, w_in_out, hint):
        """x @ W for W of shape [in, out]: f32, or int8 per output column with dynamic activation quantization."""
        g = self.g
        if self.linear == "f32" or hint in os.environ.get("GEMMA_F32_LAYERS", "").split(","):
            return g.op("MatMul", [x, g.const(hint, w_in_out)], hint)
        if self.linear.startswith("q"):
            return self.matmul_nbits(x, w_in_out, hint, int(self.linear[1:]))
        scale = np.abs(w_in_out).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w_in_out / scale), -127, 127).astype(np.int8)
        return g.op(
            "DynamicQuantizeMatMul",
            [x, g.const(hint + "_q", q), g.const(hint + "_scale", scale.astype(np.float32)),
             g.const(hint + "_zp", np.zeros(scale.shape, np.int8))],
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
        """cos and sin of shape [seq, head_dim] for positions 0..seq-1 (HF's non-interleaved layout)."""
        g = self.g
        d = self.cfg["head_dim"]
        inv = (1.0 / (base ** (np.arange(0, d, 2, dtype=np.float32) / d))).astype(np.float32)
        freqs = g.op("Mul", [g.op("Unsqueeze", [positions, g.const("ax1", np.array([1], np.int64))]), g.const("inv_freq", inv[None, :])])
        emb = g.op("Concat", [freqs, freqs], axis=-1)
        return g.op("Cos", [emb], "rope_cos"), g.op("Sin", [emb], "rope_sin")

    def rope(self, x, cos, sin):
        g = self.g
        half = self.cfg["head_dim"] // 2
        x1, x2 = g.op("Split", [x, g.const("halves", np.array([half, half], np.int64))], axis=-1, outputs=2)
        rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])], "rope")

    def heads(self, x, n):
        """[B, T, n*D] -> [B, n, T, D]"""
        g = self.g
        shaped = g.op("Reshape", [x, g.const("heads_shape", np.array([0, 0, n, self.cfg["head_dim"]], np.int64))])
        return g.op("Transpose", [shaped], perm=[0, 2, 1, 3])

    def layer(self, x, w, p, biases, ropes):
        g, c = self.g, self.cfg
        H, KV, D, hidden = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["hidden_size"]
        local = c["layer_types"][int(p.split(".")[1])] == "sliding_attention"
        h = self.rmsnorm(x, 1.0 + w[p + "input_layernorm.weight"])
        wqkv = np.concatenate([w[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], axis=0).T
        qkv = self.matmul(h, wqkv, "qkv")
        q, k, v = g.op("Split", [qkv, g.const("qkv_split", np.array([H * D, KV * D, KV * D], np.int64))], axis=-1, outputs=3)
        q_scale = np.float32(c["query_pre_attn_scalar"] ** -0.5)
        q = self.rmsnorm(self.heads(q, H), (1.0 + w[p + "self_attn.q_norm.weight"]) * q_scale)
        k = self.rmsnorm(self.heads(k, KV), 1.0 + w[p + "self_attn.k_norm.weight"])
        v = self.heads(v, KV)
        cos, sin = ropes[local]
        q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
        # k and v have KV heads; MatMul broadcasts them over the H query heads (KV == 1 here)
        scores = g.op("Add", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]), biases[local]])
        attn = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        attn = g.op("Reshape", [g.op("Transpose", [attn], perm=[0, 2, 1, 3]), g.const("merge", np.array([0, 0, H * D], np.int64))])
        attn = self.matmul(attn, w[p + "self_attn.o_proj.weight"].T, "o_proj")
        x = g.op("Add", [x, self.rmsnorm(attn, 1.0 + w[p + "post_attention_layernorm.weight"])], "resid")
        h = self.rmsnorm(x, 1.0 + w[p + "pre_feedforward_layernorm.weight"])
        wgu = np.concatenate([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]], axis=0).T
        inter = wgu.shape[1] // 2
        gate, up = g.op("Split", [self.matmul(h, wgu, "gate_up"), g.const("gu_split", np.array([inter, inter], np.int64))], axis=-1, outputs=2)
        m = self.matmul(g.op("Mul", [g.op("Gelu", [gate], approximate="tanh"), up]), w[p + "mlp.down_proj.weight"].T, "down")
        return g.op("Add", [x, self.rmsnorm(m, 1.0 + w[p + "post_feedforward_layernorm.weight"])], "resid")

    def masks(self, mask_f, positions):
        """Additive attention biases: padding keys for every layer, plus the window for sliding layers."""
        g = self.g
        key_bias = g.op("Mul", [g.op("Sub", [mask_f, g.const("one", np.array(1.0, np.float32))]), g.const("neg", np.array(-NEG, np.float32))])
        key_bias = g.op("Unsqueeze", [key_bias, g.const("ax12", np.array([1, 2], np.int64))], "key_bias")  # [B,1,1,T]
        window = self.cfg["sliding_window"] // 2 + 1
        dist = g.op("Abs", [g.op("Sub", [g.op("Unsqueeze", [positions, g.const("ax1", np.array([1], np.int64))]),
                                         g.op("Unsqueeze", [positions, g.const("ax0", np.array([0], np.int64))])])])
        outside = g.op("Where", [g.op("Less", [dist, g.const("window", np.array(window, np.float32))]),
                                 g.const("zero", np.array(0.0, np.float32)), g.const("neg", np.array(NEG, np.float32))])
        return {True: g.op("Add", [key_bias, outside], "local_bias"), False: key_bias}

    def build(self, w, dense):
        g, c = self.g, self.cfg
        ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
        mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
        out = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", c["hidden_size"]])
        mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
        seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one_i", np.array(1, np.int64))], axis=0)
        positions = g.op("Cast", [g.op("Range", [g.const("zero_i", np.array(0, np.int64)), seq, g.const("step", np.array(1, np.int64))])], to=TensorProto.FLOAT)
        biases = self.masks(mask_f, positions)
        ropes = {True: self.rope_tables(positions, c["rope_local_base_freq"]), False: self.rope_tables(positions, c["rope_theta"])}
        x = self.embed("input_ids", w["embed_tokens.weight"])
        for i in range(c["num_hidden_layers"]):
            x = self.layer(x, w, f"layers.{i}.", biases, ropes)
        x = self.rmsnorm(x, 1.0 + w["norm.weight"])
        weights = g.op("Unsqueeze", [mask_f, g.const("ax_last", np.array([-1], np.int64))])
        summed = g.op("ReduceSum", [g.op("Mul", [x, weights]), g.const("ax_seq", np.array([1], np.int64))], keepdims=0)
        count = g.op("ReduceSum", [mask_f, g.const("ax_seq", np.array([1], np.int64))], keepdims=1)
        pooled = g.op("Div", [summed, count], "mean_pool")
        projected = g.op("MatMul", [pooled, g.const("dense", dense)], "dense")
        g.nodes.append(helper.make_node("LpNormalization", [projected], ["sentence_embedding"], axis=-1, p=2))
        graph = helper.make_graph(g.nodes, "embeddinggemma", [ids, mask], [out], g.inits)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="podseek-models-gemma")
        model.ir_version = 10
        return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--linear", choices=["f32", "int8", "q8", "q4"], default="q8")
    ap.add_argument("--table", choices=["f32", "f16", "int8"], default="int8")
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    expect = dict(model_type="gemma3_text", use_bidirectional_attention=True, rope_scaling=None,
                  attn_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh")
    for key, value in expect.items():
        if cfg.get(key) != value:
            raise SystemExit(f"{args.src}/config.json: {key} is {cfg.get(key)!r}, this converter handles {value!r}")
    w = read_safetensors(os.path.join(args.src, "model.safetensors"))
    d2 = read_safetensors(os.path.join(args.src, "2_Dense", "model.safetensors"))["linear.weight"]
    d3 = read_safetensors(os.path.join(args.src, "3_Dense", "model.safetensors"))["linear.weight"]
    # y = (x @ d2.T) @ d3.T with no activation between: one matrix, computed in f64 then stored as f32
    dense = (d2.T.astype(np.float64) @ d3.T.astype(np.float64)).astype(np.float32)
    model = Builder(cfg, args.linear, args.table).build(w, dense)
    os.makedirs(args.out, exist_ok=True)
    onnx.save_model(model, os.path.join(args.out, "model.onnx"))
    shutil.copyfile(os.path.join(args.src, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    size = os.path.getsize(os.path.join(args.out, "model.onnx"))
    print(f"gemma: wrote {args.out}/model.onnx ({size / 1e6:.0f} MB, linear {args.linear}, table {args.table})")


if __name__ == "__main__":
    main()
