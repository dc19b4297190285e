"""Exact, faster forms of the shipped int8 (QDQ) ONNX graphs (needs ``onnx``).

- **The first stage.** Both nets open with a 3x3 conv on the one grayscale channel, then a 2x2
  max-pool. As an int8 GEMM that conv has only 9 products per output, and it took 28 % of the
  keypoint graph's kernel time (``benchmarks/bench_fastgraph.py``). On a 2x2 space-to-depth
  of the quantized input the same conv is one 3x3 conv with 4 input channels at half the
  resolution, whose 4 output groups are the 4 pixels of each pooling window; the pool is then
  an elementwise max of those groups. The weights are the original int8 values moved into
  place (same per-channel scales, bias and output quantization), so the graph computes the
  same integers.
- **Static shapes.** The exporter builds each reshape's target at run time from the batch's
  shape (Shape, Gather, Unsqueeze, Concat: 234 -> 164 nodes in the keypoint model); every dim but
  the batch is known, so the targets become constants (-1 for the batch).

A faster graph for the same model, not a new model. (8-bit SpaceToDepth and Max need
onnxruntime 1.28 or later: ``facecue.vision.runtime.MIN_ONNXRUNTIME``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from facecue.fileio import atomic_write_bytes

STEM_SUFFIX = "_space_to_depth"  # the name of each rewritten conv ends so


def rewritten_stems(model: onnx.ModelProto) -> int:
    """How many first stages of ``model`` are in the space-to-depth form."""
    return sum(node.name.endswith(STEM_SUFFIX) for node in model.graph.node)


def speed_up(model: onnx.ModelProto) -> dict[str, int]:
    """Both rewrites, in place; how many first stages and shape targets each changed."""
    done = {"stems": space_to_depth_stems(model), "static_shapes": static_shapes(model)}
    _drop_unused(model.graph)
    return done


def space_to_depth_stems(model: onnx.ModelProto) -> int:
    """Rewrite, in place, every ``Q -> DQ -> Conv(1 channel, 3x3, pad 1) -> Q -> DQ ->
    MaxPool(2x2) -> Q`` chain of ``model``; returns how many were rewritten."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def only_reader(name: str, op: str) -> onnx.NodeProto | None:
        found = readers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    done = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        chain = _stem_chain(conv, producer, inits, only_reader)
        if chain is None:
            continue
        x_dq, w_dq, b_dq, conv_q, pool_dq, pool, pool_q, pool_out = chain
        tag = conv.name or conv.output[0]
        weight = numpy_helper.to_array(inits[w_dq.input[0]])  # (C, 1, 3, 3) int8
        channels = weight.shape[0]
        new_inits = [
            numpy_helper.from_array(_phase_weights(weight), f"{tag}_s2d_w"),
            *(numpy_helper.from_array(np.tile(numpy_helper.to_array(inits[name]), 4),
                                      f"{tag}_s2d_{part}")
              for part, name in zip(("w_scale", "w_zero", "b", "b_scale", "b_zero"),
                                    (*w_dq.input[1:3], *b_dq.input[:3]), strict=True)),
            numpy_helper.from_array(np.full(4, channels, np.int64), f"{tag}_s2d_split"),
        ]
        graph.initializer.extend(new_inits)
        t = f"{tag}_s2d"
        x_q = producer[x_dq.input[0]]
        # int8 activations become uint8 (zero point + 128: the same values), which
        # onnxruntime's int8 conv takes as they are
        x_zero, y_zero = (_as_uint8(inits[z], f"{t}_{name}_zero") for z, name in
                          ((x_dq.input[2], "x"), (conv_q.input[2], "y")))
        graph.initializer.extend([x_zero, y_zero])
        new_nodes = [
            helper.make_node("QuantizeLinear", [x_q.input[0], x_dq.input[1], x_zero.name],
                             [f"{t}_xq1"]),
            # on 8-bit tensors from onnxruntime 1.28 (a reshape + transpose runs 5 % slower)
            helper.make_node("SpaceToDepth", [f"{t}_xq1"], [f"{t}_xq"], blocksize=2),
            helper.make_node("DequantizeLinear", [f"{t}_xq", x_dq.input[1], x_zero.name],
                             [f"{t}_x"]),
            helper.make_node("DequantizeLinear", [f"{t}_w", f"{t}_w_scale", f"{t}_w_zero"],
                             [f"{t}_wf"], axis=0),
            helper.make_node("DequantizeLinear", [f"{t}_b", f"{t}_b_scale", f"{t}_b_zero"],
                             [f"{t}_bf"], axis=0),
            helper.make_node("Conv", [f"{t}_x", f"{t}_wf", f"{t}_bf"], [f"{t}_y"],
                             name=f"{tag}{STEM_SUFFIX}", kernel_shape=[3, 3],
                             pads=[1, 1, 1, 1], strides=[1, 1]),
            helper.make_node("QuantizeLinear", [f"{t}_y", conv_q.input[1], y_zero.name],
                             [f"{t}_yq"]),
            helper.make_node("Split", [f"{t}_yq", f"{t}_split"],
                             [f"{t}_phase{k}" for k in range(4)], axis=1),
            # the 2x2 max-pool: a max of the quantized values, which keeps their order
            helper.make_node("Max", [f"{t}_phase{k}" for k in range(4)], [f"{t}_pooled"]),
            helper.make_node("DequantizeLinear", [f"{t}_pooled", conv_q.input[1], y_zero.name],
                             [pool_out.output[0]]),
        ]
        at = list(graph.node).index(conv)
        for offset, node in enumerate(new_nodes):
            graph.node.insert(at + offset, node)
        for node in (conv, conv_q, pool_dq, pool, pool_q, pool_out, w_dq, b_dq):
            graph.node.remove(node)
        done += 1
    return done


def static_shapes(model: onnx.ModelProto) -> int:
    """Give every Reshape whose output has a static shape apart from the batch a constant
    target, and every Resize with such sizes constant scales; returns how many changed."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    known = {v.name: [d.dim_value if d.HasField("dim_value") else None
                      for d in v.type.tensor_type.shape.dim]
             for v in (*inferred.graph.value_info, *inferred.graph.output)}
    inits = {t.name for t in model.graph.initializer}
    done = 0
    for node in model.graph.node:
        out = known.get(node.output[0])
        if not out or out[0] is not None or None in out[1:]:
            continue  # only a batch dim left to the run
        if node.op_type == "Reshape" and node.input[1] not in inits:
            name = f"{node.output[0]}_static_shape"
            model.graph.initializer.append(
                numpy_helper.from_array(np.array([-1, *out[1:]], np.int64), name))
            node.input[1] = name
            done += 1
        elif (node.op_type == "Resize" and len(node.input) == 4
              and node.input[3] not in inits and known.get(node.input[0])):
            scales = [o / i for i, o in zip(known[node.input[0]][1:], out[1:], strict=True)]
            if not all(s.is_integer() for s in scales):
                continue  # integer factors: the same output whether from sizes or scales
            name = f"{node.output[0]}_static_scales"
            model.graph.initializer.append(
                numpy_helper.from_array(np.array([1.0, *scales], np.float32), name))
            node.input[2] = name
            del node.input[3]
            done += 1
    return done


def _stem_chain(conv, producer, inits, only_reader):
    """The nodes of one rewritable first stage around ``conv``, or None."""
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    if (attrs.get("kernel_shape") != [3, 3] or attrs.get("pads", [0] * 4) != [1, 1, 1, 1]
            or attrs.get("strides", [1, 1]) != [1, 1] or attrs.get("dilations", [1, 1]) != [1, 1]
            or attrs.get("group", 1) != 1 or len(conv.input) != 3):
        return None
    x_dq, w_dq, b_dq = (producer.get(name) for name in conv.input)
    if not all(n is not None and n.op_type == "DequantizeLinear" for n in (x_dq, w_dq, b_dq)):
        return None
    if w_dq.input[0] not in inits or b_dq.input[0] not in inits:
        return None
    if list(inits[w_dq.input[0]].dims)[1:] != [1, 3, 3]:
        return None
    conv_q = only_reader(conv.output[0], "QuantizeLinear")
    pool_dq = conv_q and only_reader(conv_q.output[0], "DequantizeLinear")
    pool = pool_dq and only_reader(pool_dq.output[0], "MaxPool")
    if pool is None:
        return None
    pattrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
    if (pattrs.get("kernel_shape") != [2, 2] or pattrs.get("strides") != [2, 2]
            or any(pattrs.get("pads", [0] * 4)) or pattrs.get("ceil_mode", 0)):
        return None
    pool_q = only_reader(pool.output[0], "QuantizeLinear")
    # the pool must keep the conv's quantization (onnxruntime's quantizer does so for MaxPool)
    if pool_q is None or list(pool_q.input[1:]) != list(conv_q.input[1:]):
        return None
    pool_out = only_reader(pool_q.output[0], "DequantizeLinear")
    x_q = producer.get(x_dq.input[0])
    if pool_out is None or x_q is None or x_q.op_type != "QuantizeLinear":
        return None
    return x_dq, w_dq, b_dq, conv_q, pool_dq, pool, pool_q, pool_out


def _phase_weights(weight: np.ndarray) -> np.ndarray:
    """(C, 1, 3, 3) kernel -> (4C, 4, 3, 3) on 2x2 space-to-depth input: output group
    ``2a + b`` is the original output at pixel offset (a, b) of each 2x2 cell; input channel
    ``2p + q`` holds the pixels at offset (p, q), as onnx ``SpaceToDepth`` orders them."""
    channels = weight.shape[0]
    out = np.zeros((4 * channels, 4, 3, 3), weight.dtype)
    for a in range(2):
        for b in range(2):
            group = slice((2 * a + b) * channels, (2 * a + b + 1) * channels)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    y, x = a + dy, b + dx  # pixel offset from the cell's corner, -1..2
                    out[group, 2 * (y % 2) + x % 2, y // 2 + 1, x // 2 + 1] = \
                        weight[:, 0, dy + 1, dx + 1]
    return out


def _as_uint8(zero_point: onnx.TensorProto, name: str) -> onnx.TensorProto:
    """A quantization zero point as uint8: int8 ones shifted by 128 (same dequantized values)."""
    z = numpy_helper.to_array(zero_point)
    if z.dtype == np.int8:
        z = (z.astype(np.int16) + 128).astype(np.uint8)
    return numpy_helper.from_array(z.astype(np.uint8), name)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers nothing reads any more."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        unread = [n for n in graph.node if not any(out in read for out in n.output)]
        if not unread:
            break
        for node in unread:
            graph.node.remove(node)
    keep = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def speed_up_file(src: str | Path, dst: str | Path) -> dict[str, int]:
    """:func:`speed_up` on an ONNX file, written atomically to ``dst``."""
    model = onnx.load(str(src))
    done = speed_up(model)
    onnx.checker.check_model(model)
    atomic_write_bytes(dst, model.SerializeToString())
    return done
