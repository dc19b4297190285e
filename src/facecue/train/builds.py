"""The other builds of a shipped int8 (QDQ) graph: float32, and int8 with 7-bit weights.

**float32** (:func:`float_twin`): the same weights, computed in float32. Each weight's
``DequantizeLinear`` is done once, here: its int8 values times their scales become a constant,
stored as float16 (half the bytes of float32; every int8 value times its scale rounds to
float16 with a relative error below 2**-11) and cast to float32 when the session is created,
so every product and sum runs in float32. Every activation ``QuantizeLinear`` /
``DequantizeLinear`` pair becomes the clip to the range its integers covered (which keeps the
ReLUs the quantizer folded into it), so activations are never rounded to 8 bits. The 8-bit
operators between them (the space-to-depth stem's ``SpaceToDepth``, ``Split`` and ``Max``:
:mod:`facecue.train.fastgraph`) then run on the float tensors.

**int8 with 7-bit weights** (:func:`seven_bit`): every int8 weight halved to -64..63 (its
scale doubled; each int32 bias likewise). On x86 without VNNI onnxruntime multiplies uint8
activations by int8 weights with VPMADDUBSW, which sums each pair of products into 16 bits
and saturates past 32,767 (:mod:`facecue.cpu`); with 7-bit weights no pair can pass it
(2 x 255 x 64 = 32,640), so that fast kernel is exact and the slow exact-products option is
not needed. The weights lose one bit: the cards give what that costs.

Needs ``onnx`` (the ``train`` extra).
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


SEVEN_BIT = (-64, 63)  # int8 weights in this range cannot saturate a VPMADDUBSW pair sum


def seven_bit(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the int8 QDQ ``model`` whose int8 weights are halved into
    :data:`SEVEN_BIT` (scales doubled, int32 biases halved with theirs)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = numpy_helper.to_array(inits[node.input[0]])
        if q.dtype == np.int8:
            q = np.clip(np.round(q / 2), *SEVEN_BIT).astype(np.int8)
        elif q.dtype == np.int32:
            q = np.round(q / 2).astype(np.int32)
        else:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]])
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(q, node.input[0]))
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(scale * 2, node.input[1]))
        changed += 1
    if not changed:
        raise ValueError("no int8 weights to halve: not an int8 QDQ graph")
    return model


def weights_fit_seven_bits(model: onnx.ModelProto) -> bool:
    """Whether every int8 initializer of ``model`` lies in :data:`SEVEN_BIT`."""
    lo, hi = SEVEN_BIT
    arrays = [numpy_helper.to_array(t) for t in model.graph.initializer
              if t.data_type == onnx.TensorProto.INT8]
    return bool(arrays) and all(a.min() >= lo and a.max() <= hi for a in arrays)


def exact_option_change(path: str | Path, crops: np.ndarray) -> float:
    """Largest output difference of the model file at ``path`` on ``crops`` (N, size, size)
    run with and without onnxruntime's exact-products option (``runtime.EXACT_INT8``) on this
    CPU: 0 for a 7-bit build, which needs no option anywhere."""
    import onnxruntime as ort

    from facecue.vision.runtime import EXACT_INT8

    x = crops.astype(np.float32)[:, None]
    outs = []
    for config in (EXACT_INT8, {}):
        options = ort.SessionOptions()
        for key, value in config.items():
            options.add_session_config_entry(key, value)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outs.append(np.concatenate([session.run(None, {"pixels": x[i:i + 512]})[0]
                                    for i in range(0, len(x), 512)]))
    return float(np.abs(outs[0] - outs[1]).max())


def seven_bit_file(src: str | Path, dst: str | Path) -> None:
    """:func:`seven_bit` of the file ``src``, written atomically to ``dst``."""
    atomic_write_bytes(dst, seven_bit(onnx.load(str(src))).SerializeToString())
