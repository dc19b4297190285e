"""ONNX export with a parity check against the torch model, and int8 quantization (needs the
``train`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from facecue.fileio import new_file_beside
from facecue.train.fastgraph import speed_up_file
from facecue.vision.runtime import onnx_session


def export_onnx(model: torch.nn.Module, size: int, path: str | Path,
                check_inputs: np.ndarray | None = None, atol: float = 1e-3,
                calibration: np.ndarray | None = None,
                unsigned_activations: bool = False) -> float:
    """Export ``model`` (input N x 1 x size x size raw pixels) to ``path`` atomically.

    Runs the exported file with onnxruntime on ``check_inputs`` (random pixels when not given)
    and raises if any output differs from torch by more than ``atol``; returns the largest
    difference. With ``calibration`` (training crops), the file written is then quantized to
    int8 (:func:`quantize_int8`, which explains ``unsigned_activations``).
    """
    model = model.eval()
    path = Path(path)
    dummy = torch.zeros(1, 1, size, size)
    fd, tmp = new_file_beside(path, ".onnx.tmp")
    os.close(fd)
    try:
        torch.onnx.export(model, (dummy,), tmp, input_names=["pixels"], output_names=["output"],
                          dynamic_axes={"pixels": {0: "n"}, "output": {0: "n"}},
                          opset_version=17, dynamo=False)
        if check_inputs is None:
            rng = np.random.default_rng(0)
            check_inputs = rng.integers(0, 256, (8, size, size)).astype(np.uint8)
        x = np.asarray(check_inputs, dtype=np.float32)[:, None]
        sess = onnx_session(tmp)
        got = sess.run(None, {"pixels": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        diff = float(np.abs(got - want).max())
        if diff > atol:
            raise RuntimeError(f"ONNX export differs from torch by {diff:.2g} (> {atol})")
        if calibration is not None:
            quantize_int8(tmp, tmp, calibration, unsigned_activations)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return diff


# The network body; a model's tail (softmax, averaging, soft-argmax) stays in float.
QUANTIZED_OPS = ["Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"]
CALIBRATION_ROWS = 512  # crops that set the int8 activation ranges (numpy seed 0)


def calibration_rows(n: int) -> np.ndarray:
    """Which of ``n`` training crops calibrate the int8 ranges (fixed, sorted)."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, min(CALIBRATION_ROWS, n), replace=False))


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray,
                  unsigned_activations: bool = False, fast_graph: bool = True) -> None:
    """Static int8 quantization (QDQ, per-channel weights) of an exported model; activation
    ranges come from :func:`calibration_rows` of ``calibration``, (N, size, size) uint8
    training crops. About three times faster on this CPU; the cards give the accuracy.

    ``unsigned_activations`` stores activations as uint8, which this CPU's int8 conv kernels
    take as they are. onnxruntime converts int8 activations to uint8 only where a quantized
    tensor has a single reader; a conv whose output feeds two branches (the keypoint net's
    fine heat maps) otherwise runs in float (1.44 ms a face, not 0.84: docs/models/keypoints.md).
    The expression models were built with int8 activations (the default) and stay so.

    ``fast_graph`` then rewrites the graph into its faster, identical form
    (:mod:`facecue.train.fastgraph`); False keeps the quantizer's graph as it is."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    sample = calibration[calibration_rows(len(calibration))]
    batches = [sample[i:i + 64].astype(np.float32)[:, None] for i in range(0, len(sample), 64)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> dict | None:
            x = next(self.it, None)
            return None if x is None else {"pixels": x}

    pre = dst.with_suffix(".pre.onnx")
    try:
        _unshare_conv_inputs(src, pre)
        # no onnxruntime graph optimisation here: it would merge the copies again
        quant_pre_process(str(pre), str(pre), skip_optimization=True)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, op_types_to_quantize=QUANTIZED_OPS,
                        activation_type=QuantType.QUInt8 if unsigned_activations
                        else QuantType.QInt8)
        if fast_graph:
            speed_up_file(dst, dst)
    finally:
        pre.unlink(missing_ok=True)


def _unshare_conv_inputs(src: Path, dst: Path) -> None:
    """Give each conv its own copy of the node that makes its input. The exporter merges the
    identical input scaling of an ensemble's members into one tensor; onnxruntime then cannot
    fuse each member's first int8 conv and pool, which run about four times slower in float."""
    import onnx

    model = onnx.load(str(src))
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    seen: set[str] = set()
    for node in nodes:
        if node.op_type != "Conv" or node.input[0] not in producer:
            continue
        if node.input[0] in seen:
            copy = onnx.NodeProto()
            copy.CopyFrom(producer[node.input[0]])
            copy.name = f"{copy.name}_for_{node.name}"
            copy.output[0] = f"{node.input[0]}_for_{node.name}"
            model.graph.node.insert(list(model.graph.node).index(node), copy)
            node.input[0] = copy.output[0]
        seen.add(node.input[0])
    onnx.save(model, str(dst))
