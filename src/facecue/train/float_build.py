"""The float build of a shipped int8 (QDQ) graph: the same weights, computed in float32.

Each weight's ``DequantizeLinear`` is done once, here: its int8 values times their scales
become a constant, stored as float16 (half the bytes of float32; every int8 value times its
scale rounds to float16 with a relative error below 2**-11) and cast to float32 when the
session is created, so every product and sum runs in float32. Every activation
``QuantizeLinear`` / ``DequantizeLinear`` is dropped, so activations are never rounded to 8 bits.
The 8-bit operators between them (the space-to-depth stem's ``SpaceToDepth``, ``Split`` and
``Max``: :mod:`facecue.train.fastgraph`) then run on the float tensors, which is the same
computation without the rounding.

Float products are exact to float32 on every CPU, so this build needs no session option and
runs at full speed where 8-bit products are slow or saturate (x86 without VNNI:
:mod:`facecue.cpu`). Needs ``onnx`` (the ``train`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from facecue.fileio import atomic_write_bytes


def float_twin(model: onnx.ModelProto, weights: str = "float16") -> onnx.ModelProto:
    """A float32-computing copy of the int8 QDQ ``model``, its dequantized weights stored as
    ``weights`` (``float16`` or ``float32``)."""
    if weights not in ("float16", "float32"):
        raise ValueError(f"weights must be float16 or float32, not {weights!r}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}

    def value(name: str) -> np.ndarray:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        return numpy_helper.to_array(consts[name].attribute[0].t)

    def is_const(name: str) -> bool:
        return name in inits or name in consts

    rename: dict[str, str] = {}  # tensor -> the float tensor that replaces it
    keep, new_inits, casts = [], [], []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and is_const(node.input[0]):
            w = _dequantize(value(node.input[0]), value(node.input[1]),
                            value(node.input[2]) if len(node.input) > 2 and node.input[2]
                            else None, _axis(node))
            out = node.output[0]
            if weights == "float16" and w.dtype == np.float32 and w.size > 64:
                new_inits.append(numpy_helper.from_array(w.astype(np.float16), f"{out}_f16"))
                casts.append(helper.make_node("Cast", [f"{out}_f16"], [out],
                                              to=onnx.TensorProto.FLOAT, name=f"{out}_cast"))
            else:
                new_inits.append(numpy_helper.from_array(w.astype(np.float32), out))
        elif node.op_type == "QuantizeLinear":
            # what rounding to 8 bits also did: clip to the range the integers cover (the
            # quantizer drops a conv's ReLU where that range starts at 0)
            x = rename.get(node.input[0], node.input[0])
            low, high = _range(value(node.input[1]), value(node.input[2]))
            bounds = [numpy_helper.from_array(np.float32(v), f"{node.output[0]}_{side}")
                      for v, side in ((low, "min"), (high, "max"))]
            new_inits.extend(bounds)
            keep.append(helper.make_node("Clip", [x, *(b.name for b in bounds)],
                                         [f"{node.output[0]}_clip"], name=f"{node.output[0]}_clip"))
            rename[node.output[0]] = f"{node.output[0]}_clip"
        elif node.op_type == "DequantizeLinear":
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    outputs = {o.name for o in graph.output}
    if outputs & rename.keys():
        raise ValueError("a graph output is a quantized tensor; not a supported QDQ graph")
    del graph.node[:]
    graph.node.extend(casts + keep)
    graph.initializer.extend(new_inits)
    _drop_unused(graph)
    del graph.value_info[:]  # 8-bit types of tensors that are float now
    onnx.checker.check_model(model)
    return model


def _range(scale: np.ndarray, zero: np.ndarray) -> tuple[float, float]:
    """The float values a per-tensor QuantizeLinear can give: its integers' range, scaled."""
    info = np.iinfo(zero.dtype)
    return (float((info.min - int(zero)) * scale), float((info.max - int(zero)) * scale))


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None,
                axis: int) -> np.ndarray:
    """ONNX DequantizeLinear on constants: per-tensor or per-axis ``(q - zero) * scale``."""
    q = q.astype(np.float64)
    zero = np.zeros_like(scale) if zero is None else zero.astype(np.float64)
    if scale.ndim == 1 and q.ndim > 0:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale.astype(np.float64)).astype(np.float32)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove initializers and nodes nothing reads (the int8 weights and their scales)."""
    needed = {o.name for o in graph.output}
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            needed.update(node.input)
        else:
            graph.node.remove(node)
    keep = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def float_twin_file(src: str | Path, dst: str | Path, weights: str = "float16") -> None:
    """:func:`float_twin` of the file ``src``, written atomically to ``dst``."""
    model = float_twin(onnx.load(str(src)), weights)
    atomic_write_bytes(dst, model.SerializeToString())
