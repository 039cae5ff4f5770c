"""Build ONNX graphs for multilingual Whisper from a CTranslate2 `model.bin`, with numpy and onnx only.

usage: python whisper.py MODEL_BIN CONFIG_JSON OUT_DIR [--linear int8|f32]

CTranslate2's `model.bin` (binary version 6) is a header, then every variable as name, shape, dtype and raw
data, then aliases (see CTranslate2's python/ctranslate2/specs/model_spec.py). Whisper's weights are float16;
they are read as float32 and rebuilt as two graphs:

encoder/model.onnx  audio (f32 [batch, 480000]: 30 s of 16 kHz mono, zero-padded)
                    -> cross_k_L (f32 [batch, heads, 64, 1500], transposed) and cross_v_L ([batch, heads, 1500, 64])
                       for every decoder layer L: its cross-attention keys and values, computed once per window.
                    The log-mel spectrogram is part of the graph: a reflect-padded 400-point STFT (periodic
                    Hann window, hop 160) as one strided convolution with the windowed DFT basis, power,
                    80 Slaney mel filters (librosa's, as Whisper's mel_filters.npz), log10, clamped to 8
                    below the window's maximum, then (x + 4) / 4. The 3001st frame is dropped, as Whisper does.
decoder/model.onnx  tokens (i64 [batch, new]), per layer self_k_L ([batch, heads, 64, past], transposed),
                    self_v_L ([batch, heads, past, 64]), cross_k_L, cross_v_L
                    -> logits (f32 [batch, new, vocab]), new_self_k_L, new_self_v_L (past + new positions),
                       alignment (f32 [batch, alignment heads, new, 1500]): the cross-attention weights of the
                       heads config.json names for word timing.
                    Positions continue from `past`, and new tokens see each other causally. Every tensor is per layer
                    and keys are kept transposed, so a step reads the caches in place instead of slicing or
                    transposing 3 MB per layer.

--linear int8 (the default) stores every linear layer and the output projection as int8 weights with one scale
per output and quantizes activations per call (DynamicQuantizeMatMul), as CTranslate2's int8 does; the STFT,
the two convolutions and the embedding table stay float32. The output is deterministic: the same inputs give
byte-identical files, so fetch.sh can pin their sha256.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gemma import Graph  # noqa: E402  (one node/initializer helper for every graph podseek builds)

OPSET = 21
NEG = -1e9
SAMPLES = 480000
N_FFT, HOP, N_MELS, RATE = 400, 160, 80, 16000
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path):
    """Every variable of a CTranslate2 model.bin as a numpy array, aliases resolved."""
    data = open(path, "rb").read()
    at = 0

    def take(fmt):
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values[0]

    def string():
        nonlocal at
        n = take("H")
        text = data[at:at + n - 1].decode()
        at += n
        return text

    version = take("I")
    if version != 6:
        raise SystemExit(f"{path}: CTranslate2 binary version {version}, this reads version 6")
    spec, _revision = string(), take("I")
    if spec != "WhisperSpec":
        raise SystemExit(f"{path}: a {spec}, not a WhisperSpec")
    out = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = DTYPES[take("B")], take("I")
        out[name] = np.frombuffer(data, dtype, size // np.dtype(dtype).itemsize, at).reshape(shape)
        at += size
    for _ in range(take("I")):
        alias, target = string(), string()
        out[alias] = out[target]
    return {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in out.items()}


def mel_filters():
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) with Slaney's mel scale and area normalization."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def hz_to_mel(f):
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return weights.astype(np.float32)


def dft_kernels():
    """Conv kernels [402, 1, 400]: the periodic-Hann-windowed cosine and sine of each of the 201 bins."""
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    angle = 2 * np.pi * k * n[None, :] / N_FFT
    basis = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
    return basis[:, None, :].astype(np.float32)


class Builder:
    def __init__(self, w, linear):
        self.w, self.linear, self.g = w, linear, Graph()

    def c(self, hint, array):
        """A constant; a 0-d array stays a scalar (Graph.const's ascontiguousarray would make it [1])."""
        array = np.asarray(array)
        if array.ndim:
            return self.g.const(hint, array)
        name = self.g.name(hint)
        self.g.inits.append(numpy_helper.from_array(array, name))
        return name

    def axes(self, *values):
        return self.c("axes", np.array(values, np.int64))

    def linear_layer(self, x, prefix, rows=None):
        """x @ W^T + b for CTranslate2's W [out, in]; `rows` picks a slice of the outputs (a fused projection)."""
        weight, bias = self.w[prefix + "/weight"], self.w.get(prefix + "/bias")
        if rows is not None:
            weight = weight[rows]
            bias = bias[rows] if bias is not None else None
        y = self.matmul(x, np.ascontiguousarray(weight.T), prefix.replace("/", "_"))
        return y if bias is None else self.g.op("Add", [y, self.c("bias", bias)])

    def matmul(self, x, w_in_out, hint):
        g = self.g
        if self.linear == "f32":
            return g.op("MatMul", [x, g.const(hint, w_in_out)], hint)
        scale = np.abs(w_in_out).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(w_in_out / scale), -127, 127).astype(np.int8)
        return g.op("DynamicQuantizeMatMul",
                    [x, g.const(hint + "_q", q), g.const(hint + "_scale", scale.astype(np.float32)),
                     g.const(hint + "_zp", np.zeros(scale.shape, np.int8))],
                    hint, domain="com.microsoft")

    def layer_norm(self, x, prefix):
        return self.g.op("LayerNormalization", [x, self.c("ln_g", self.w[prefix + "/gamma"]),
                                                self.c("ln_b", self.w[prefix + "/beta"])], axis=-1, epsilon=1e-5)

    def heads(self, x, n_heads):
        """[B, T, H*D] -> [B, H, T, D]."""
        g = self.g
        split = g.op("Reshape", [x, self.c("shape", np.array([0, 0, n_heads, -1], np.int64))])
        return g.op("Transpose", [split], perm=[0, 2, 1, 3])

    def merge_heads(self, x):
        g = self.g
        joined = g.op("Transpose", [x], perm=[0, 2, 1, 3])
        return g.op("Reshape", [joined, self.c("shape", np.array([0, 0, -1], np.int64))])

    def attend(self, q, k_t, v, bias=None):
        """softmax(q k^T / sqrt(d) + bias) v over [B, H, T, D], given k^T ([B, H, D, S]); also returns the weights."""
        g = self.g
        scores = g.op("MatMul", [q, k_t])
        scores = g.op("Mul", [scores, self.c("scale", np.array(1.0 / np.sqrt(self.d_head), np.float32))])
        if bias is not None:
            scores = g.op("Add", [scores, bias])
        weights = g.op("Softmax", [scores], axis=-1)
        return g.op("MatMul", [weights, v]), weights

    def mlp(self, x, prefix):
        h = self.layer_norm(x, prefix + "/layer_norm")
        h = self.g.op("Gelu", [self.linear_layer(h, prefix + "/linear_0")])
        return self.g.op("Add", [x, self.linear_layer(h, prefix + "/linear_1")])


def log_mel(b, audio):
    g = b.g
    padded = g.op("Pad", [audio, b.c("pads", np.array([0, N_FFT // 2, 0, N_FFT // 2], np.int64))], mode="reflect")
    spectrum = g.op("Conv", [g.op("Unsqueeze", [padded, b.axes(1)]), b.c("dft", dft_kernels())], strides=[HOP])
    bins = N_FFT // 2 + 1
    re = g.op("Slice", [spectrum, b.axes(0), b.axes(bins), b.axes(1)])
    im = g.op("Slice", [spectrum, b.axes(bins), b.axes(2 * bins), b.axes(1)])
    power = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])])
    power = g.op("Slice", [power, b.axes(0), b.axes(SAMPLES // HOP), b.axes(2)])
    mel = g.op("MatMul", [b.c("mel_filters", mel_filters()), power])
    log = g.op("Mul", [g.op("Log", [g.op("Max", [mel, b.c("floor", np.array(1e-10, np.float32))])]),
                       b.c("inv_ln10", np.array(1 / np.log(10), np.float32))])
    top = g.op("ReduceMax", [log, b.axes(1, 2)], keepdims=1)
    log = g.op("Max", [log, g.op("Sub", [top, b.c("eight", np.array(8.0, np.float32))])])
    return g.op("Div", [g.op("Add", [log, b.c("four", np.array(4.0, np.float32))]), b.c("four", np.array(4.0, np.float32))])


def build_encoder(w, linear, n_dec_layers):
    b = Builder(w, linear)
    g = b.g
    n_heads = int(w["encoder/num_heads"])
    d_model = w["encoder/conv1/bias"].shape[0]
    b.d_head = d_model // n_heads
    audio = "audio"
    x = log_mel(b, audio)
    x = g.op("Gelu", [g.op("Conv", [x, b.c("conv1_w", w["encoder/conv1/weight"]), b.c("conv1_b", w["encoder/conv1/bias"])],
                           pads=[1, 1])])
    x = g.op("Gelu", [g.op("Conv", [x, b.c("conv2_w", w["encoder/conv2/weight"]), b.c("conv2_b", w["encoder/conv2/bias"])],
                           pads=[1, 1], strides=[2])])
    x = g.op("Add", [g.op("Transpose", [x], perm=[0, 2, 1]), b.c("pos", w["encoder/position_encodings/encodings"])])
    layer = 0
    while f"encoder/layer_{layer}/self_attention/linear_0/weight" in w:
        p = f"encoder/layer_{layer}"
        h = b.layer_norm(x, p + "/self_attention/layer_norm")
        q, k, v = (b.linear_layer(h, p + "/self_attention/linear_0", slice(i * d_model, (i + 1) * d_model)) for i in range(3))
        ctx = g.op("MultiHeadAttention", [q, k, v], domain="com.microsoft", num_heads=n_heads)
        x = g.op("Add", [x, b.linear_layer(ctx, p + "/self_attention/linear_1")])
        x = b.mlp(x, p + "/ffn")
        layer += 1
    x = b.layer_norm(x, "encoder/layer_norm")
    outputs = []
    for layer in range(n_dec_layers):
        p = f"decoder/layer_{layer}/attention/linear_1"
        k = b.heads(b.linear_layer(x, p, slice(0, d_model)), n_heads)
        v = b.heads(b.linear_layer(x, p, slice(d_model, 2 * d_model)), n_heads)
        # keys stored transposed ([B, H, 64, 1500]), so a decoder step multiplies without copying them
        g.nodes.append(helper.make_node("Transpose", [k], [f"cross_k_{layer}"], perm=[0, 1, 3, 2]))
        g.nodes.append(helper.make_node("Identity", [v], [f"cross_v_{layer}"]))
        outputs += [helper.make_tensor_value_info(f"cross_k_{layer}", TensorProto.FLOAT, ["batch", n_heads, b.d_head, 1500]),
                    helper.make_tensor_value_info(f"cross_v_{layer}", TensorProto.FLOAT, ["batch", n_heads, 1500, b.d_head])]
    inputs = [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", SAMPLES])]
    return finish(g, inputs, outputs, "whisper-encoder")


def causal_bias(b, past, new):
    """[new, past + new]: 0 where a new token may look (every past token, new ones up to itself), else NEG."""
    g = b.g
    zero, one = b.c("zero", np.array(0, np.int64)), b.c("one", np.array(1, np.int64))
    total = g.op("Add", [past, new])
    cols = g.op("Range", [zero, total, one])
    rows = g.op("Add", [g.op("Range", [zero, new, one]), past])
    later = g.op("Greater", [g.op("Unsqueeze", [cols, b.axes(0)]), g.op("Unsqueeze", [rows, b.axes(1)])])
    return g.op("Where", [later, b.c("neg", np.array(NEG, np.float32)), b.c("zero_f", np.array(0.0, np.float32))])


def build_decoder(w, linear, alignment_heads):
    b = Builder(w, linear)
    g = b.g
    n_heads = int(w["decoder/num_heads"])
    embed = w["decoder/embeddings/weight"]
    d_model = embed.shape[1]
    b.d_head = d_model // n_heads
    scalar = lambda t: g.op("Squeeze", [t, b.axes(0)])  # noqa: E731
    past = scalar(g.op("Slice", [g.op("Shape", ["self_v_0"]), b.axes(2), b.axes(3), b.axes(0)]))
    new = scalar(g.op("Slice", [g.op("Shape", ["tokens"]), b.axes(1), b.axes(2), b.axes(0)]))
    positions = g.op("Range", [past, g.op("Add", [past, new]), b.c("one", np.array(1, np.int64))])
    x = g.op("Add", [g.op("Gather", [b.c("embed", embed), "tokens"]),
                     g.op("Gather", [b.c("dec_pos", w["decoder/position_encodings/encodings"]), positions])])
    bias = causal_bias(b, past, new)
    aligned = []
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "new"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "new", embed.shape[0]])]
    kv = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n_heads] + shape)  # noqa: E731
    layer = 0
    while f"decoder/layer_{layer}/self_attention/linear_0/weight" in w:
        p = f"decoder/layer_{layer}"
        h = b.layer_norm(x, p + "/self_attention/layer_norm")
        q, k, v = (b.heads(b.linear_layer(h, p + "/self_attention/linear_0", slice(i * d_model, (i + 1) * d_model)), n_heads)
                   for i in range(3))
        # the self-attention cache is kept as k^T [B, H, 64, past] and v [B, H, past, 64], per layer
        g.nodes.append(helper.make_node("Concat", [f"self_k_{layer}", g.op("Transpose", [k], perm=[0, 1, 3, 2])],
                                        [f"new_self_k_{layer}"], axis=3))
        g.nodes.append(helper.make_node("Concat", [f"self_v_{layer}", v], [f"new_self_v_{layer}"], axis=2))
        ctx, _ = b.attend(q, f"new_self_k_{layer}", f"new_self_v_{layer}", bias)
        x = g.op("Add", [x, b.linear_layer(b.merge_heads(ctx), p + "/self_attention/linear_1")])
        h = b.layer_norm(x, p + "/attention/layer_norm")
        q = b.heads(b.linear_layer(h, p + "/attention/linear_0"), n_heads)
        ctx, weights = b.attend(q, f"cross_k_{layer}", f"cross_v_{layer}")
        heads_here = [head for (l, head) in alignment_heads if l == layer]
        if heads_here:
            aligned.append(g.op("Gather", [weights, b.c("heads", np.array(heads_here, np.int64))], axis=1))
        x = g.op("Add", [x, b.linear_layer(b.merge_heads(ctx), p + "/attention/linear_2")])
        x = b.mlp(x, p + "/ffn")
        inputs += [kv(f"self_k_{layer}", [b.d_head, "past"]), kv(f"self_v_{layer}", ["past", b.d_head]),
                   kv(f"cross_k_{layer}", [b.d_head, 1500]), kv(f"cross_v_{layer}", [1500, b.d_head])]
        outputs += [kv(f"new_self_k_{layer}", [b.d_head, "total"]), kv(f"new_self_v_{layer}", ["total", b.d_head])]
        layer += 1
    x = b.layer_norm(x, "decoder/layer_norm")
    g.nodes.append(helper.make_node("Identity", [b.matmul(x, np.ascontiguousarray(embed.T), "projection")], ["logits"]))
    g.nodes.append(helper.make_node("Concat", aligned, ["alignment"], axis=1))
    outputs.append(helper.make_tensor_value_info("alignment", TensorProto.FLOAT, ["batch", len(alignment_heads), "new", 1500]))
    return finish(g, inputs, outputs, "whisper-decoder")


def finish(g, inputs, outputs, name):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    model.producer_name = "podseek models/whisper.py"
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_bin")
    ap.add_argument("config_json")
    ap.add_argument("out_dir")
    ap.add_argument("--linear", choices=["int8", "f32"], default="int8")
    args = ap.parse_args()
    w = read_ct2(args.model_bin)
    config = json.load(open(args.config_json))
    alignment = [tuple(h) for h in config["alignment_heads"]]
    n_dec = sum(1 for k in w if k.startswith("decoder/layer_") and k.endswith("/self_attention/linear_0/weight"))
    for part, model in (("encoder", build_encoder(w, args.linear, n_dec)), ("decoder", build_decoder(w, args.linear, alignment))):
        os.makedirs(os.path.join(args.out_dir, part), exist_ok=True)
        onnx.save_model(model, os.path.join(args.out_dir, part, "model.onnx"))
        print(f"whisper: {part} written ({len(model.graph.node)} operators)")


if __name__ == "__main__":
    main()
