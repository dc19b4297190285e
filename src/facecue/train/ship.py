"""What shipping does for every model: export the ensemble of finished runs to ONNX (checked
against torch, int8-quantized when given calibration crops), score that very file, and write
it with its card into the weights folder, the card's figures and sha256 being the file's own;
an int8 file gets its other builds beside it (:data:`OTHER_BUILDS`), each scored the same way.
Needs the ``train`` extra."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from facecue.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from facecue.provenance import current_command
from facecue.train.builds import float_twin_file, seven_bit_file
from facecue.train.export import export_onnx
from facecue.vision.runtime import WEIGHTS, runtime_requirements


def ship_onnx(model: torch.nn.Module, name: str, weights_dir: str | Path | None, *,
              size: int, check_inputs: np.ndarray, calibration: np.ndarray | None,
              describe: Callable[[Path, float], dict],
              unsigned_activations: bool = False) -> dict:
    """Write ``NAME.onnx`` and its card ``NAME.json`` into ``weights_dir`` (None: the
    package's weights folder) and return the card. ``model`` is exported to a temporary file
    (quantized when ``calibration`` is given; :func:`facecue.train.export.export_onnx`), then
    ``describe(path, parity)`` scores that file and gives the card, to which its sha256 is
    added last. An int8 file then gets its :data:`OTHER_BUILDS` (:func:`ship_build`)."""
    weights = WEIGHTS if weights_dir is None else Path(weights_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        parity = export_onnx(model, size, path, check_inputs=check_inputs,
                             calibration=calibration, unsigned_activations=unsigned_activations)
        card = describe(path, parity) | {"sha256": file_sha256(path)}
        atomic_write_bytes(weights / f"{name}.onnx", path.read_bytes())
    atomic_write_json(weights / f"{name}.json", card)
    if calibration is not None:
        for build in OTHER_BUILDS:
            ship_build(name, build, weights, lambda p: describe(p, parity), current_command())
    return card


# The builds made from every int8 file: build -> (how, what the card says of it)
OTHER_BUILDS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "float32": (float_twin_file,
                "the int8 file's weights dequantized (int8 value x scale) and stored as float16, "
                "cast to float32 when the session starts; activations not quantized (each 8-bit "
                "rounding replaced by the clip to its range, which holds the ReLUs the "
                "quantizer folded)"),
    "int8w7": (seven_bit_file,
               "the int8 file with every int8 weight halved to -64..63 (scales doubled, int32 "
               "biases halved with theirs): no pair of uint8 x int8 products can saturate, so "
               "x86 CPUs without VNNI run the fast kernel exactly, with no session option; one "
               "bit of weight precision lost"),
}


def ship_build(name: str, build: str, weights_dir: str | Path,
               describe: Callable[[Path], dict], command: str) -> dict:
    """Write ``NAME.BUILD.onnx`` (``build`` one of :data:`OTHER_BUILDS`) and its card beside
    the int8 ``NAME.onnx`` in ``weights_dir``, made from that file (:mod:`facecue.train.builds`)
    and scored by ``describe(path)``, which gives the card's fields; the build record and
    sha256 are added here. Returns the card."""
    make, how = OTHER_BUILDS[build]
    weights = Path(weights_dir)
    src = weights / f"{name}.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.{build}.onnx"
        make(src, path)
        card = describe(path)
        card = card | {
            "model": f"{name}.{build}", "file": path.name,
            "architecture": card["architecture"] + f"; this file: the {build} build of that "
                                                   "int8 model (build)",
            "build": {"build": build, "from": {"file": src.name, "sha256": file_sha256(src)},
                      "how": how, "command": command},
            "onnxruntime": runtime_requirements(build)}
        card["sha256"] = file_sha256(path)
        atomic_write_bytes(weights / path.name, path.read_bytes())
    atomic_write_json(weights / f"{name}.{build}.json", card)
    return card


def build_record(parity: float, data: dict) -> dict:
    """The card fields every shipped model has, in their order: the export's parity with
    torch, the onnxruntime it was built with, its ``data`` and the command that built it."""
    return {"onnx_parity_max_abs_before_quantization": parity,
            "onnxruntime": runtime_requirements(),
            "data": data,
            "build_command": current_command()}
