"""ONNX export with a parity check against the torch model (needs the ``train`` extra)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


def export_onnx(model: torch.nn.Module, size: int, path: str | Path,
                check_inputs: np.ndarray | None = None, atol: float = 1e-3) -> float:
    """Export ``model`` (input N x 1 x size x size raw pixels) to ``path`` atomically.

    Runs the exported file with onnxruntime on ``check_inputs`` (random pixels when not given)
    and raises if any output differs from torch by more than ``atol``; returns the largest
    difference.
    """
    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, size, size)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        torch.onnx.export(model, (dummy,), tmp, input_names=["pixels"], output_names=["output"],
                          dynamic_axes={"pixels": {0: "n"}, "output": {0: "n"}},
                          opset_version=17, dynamo=False)
        if check_inputs is None:
            rng = np.random.default_rng(0)
            check_inputs = rng.integers(0, 256, (8, size, size)).astype(np.uint8)
        x = np.asarray(check_inputs, dtype=np.float32)[:, None]
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"pixels": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        diff = float(np.abs(got - want).max())
        if diff > atol:
            raise RuntimeError(f"ONNX export differs from torch by {diff:.2g} (> {atol})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return diff
