"""Run-time inference with onnxruntime only: the shipped models, no torch needed."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from facecue.cpu import exact_int8
from facecue.labels import KEYPOINT_NAMES, class_names

WEIGHTS = resources.files("facecue") / "weights"


class ModelNotFoundError(FileNotFoundError):
    """A model file is missing; the message says how to get it."""


def shipped_model_path(name: str) -> Path:
    """Path of a model shipped in the package (``expression_fer7``, ``keypoints15``, ...)."""
    path = Path(str(WEIGHTS / f"{name}.onnx"))
    if not path.exists():
        raise ModelNotFoundError(
            f"shipped model {name!r} is missing from {path.parent}; reinstall facecue "
            "(pip install --force-reinstall facecue) or pass a model file with --model"
        )
    return path


def model_card(name: str) -> dict:
    """The model card (JSON) that ships beside a model."""
    return json.loads(Path(str(WEIGHTS / f"{name}.json")).read_text())


# The shipped graphs use 8-bit SpaceToDepth (onnxruntime 1.28+) and Max (1.24+); 1.23 and 1.24
# also computed the earlier expression graphs differently on a CPU with AMX (docs/performance.md).
MIN_ONNXRUNTIME = (1, 28)


def check_onnxruntime(version: str = ort.__version__) -> None:
    """Raise with what to install when ``version`` of onnxruntime is too old for the models."""
    release = tuple(map(int, re.match(r"(\d+)\.(\d+)", version).groups()))
    if release < MIN_ONNXRUNTIME:
        need = ".".join(map(str, MIN_ONNXRUNTIME))
        raise RuntimeError(f"facecue's models need onnxruntime >= {need}, found {version}: "
                           f"pip install -U 'onnxruntime>={need}'")


# Exact 8-bit products (see facecue.cpu): on x86 CPUs without VNNI onnxruntime then runs its
# saturating uint8 x int8 convs as uint8 x uint8. Where the CPU's own 8-bit products are exact
# (VNNI, ARM) it changes no output but can make the int8 convs several times slower, so it is
# set only where needed (benchmarks/bench_int8_exact.py prints both ways on the CPU at hand).
EXACT_INT8 = {"session.x64quantprecision": "1"}
# "1" / "0" force the option on / off for every session; unset or "auto": by the CPU's flags
EXACT_INT8_ENV = "FACECUE_EXACT_INT8"


def int8_session_config(machine: str | None = None, flags: set[str] | None = None
                        ) -> dict[str, str]:
    """The session options facecue's int8 graphs need on this CPU (or on ``machine`` with
    ``flags``, for tests): ``EXACT_INT8`` where 8-bit products saturate, nothing elsewhere.
    ``$FACECUE_EXACT_INT8`` (``1``, ``0``, ``auto``) overrides the rule."""
    forced = os.environ.get(EXACT_INT8_ENV, "auto").strip().lower()
    if forced not in ("auto", "", "1", "0"):
        raise ValueError(f"{EXACT_INT8_ENV} must be 1, 0 or auto, not {forced!r}")
    if forced in ("1", "0"):
        return dict(EXACT_INT8) if forced == "1" else {}
    return {} if exact_int8(machine, flags) else dict(EXACT_INT8)


def runtime_requirements() -> dict:
    """What a model card tells anyone who runs the file without facecue: the onnxruntime
    release and the session options the card's figures need."""
    return {"min_version": ".".join(map(str, MIN_ONNXRUNTIME)),
            "session_config": dict(EXACT_INT8),
            "why": "8-bit SpaceToDepth and Max need the release; without the option, onnxruntime "
                   "on x86 CPUs without VNNI saturates uint8 x int8 sums and the outputs differ "
                   "from these figures (held-out keypoint RMSE 1.59 for 1.06, fer7 60.9 % for "
                   "72.2 % on an AVX2-only AMD EPYC)"}


def onnx_session(path: str | Path, threads: int = 1,
                 options: ort.SessionOptions | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for a facecue model file; every model is run through this,
    so the int8 graphs give the same outputs on every CPU (:func:`int8_session_config`)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {path}")
    check_onnxruntime()
    opts = options or ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    for key, value in int8_session_config().items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _batch(crops: np.ndarray, size: int) -> np.ndarray:
    x = np.asarray(crops)
    if x.ndim == 2:
        x = x[None]
    if x.shape[1:] != (size, size):
        raise ValueError(f"expected crops of shape (N, {size}, {size}), got {x.shape}")
    return x.astype(np.float32)[:, None]


@dataclass
class ExpressionModel:
    """Facial-expression classifier on 48x48 grayscale crops."""

    session: ort.InferenceSession
    labels: tuple[str, ...]
    size: int = 48

    @classmethod
    def load(cls, labels: str = "fer7", path: str | Path | None = None,
             threads: int = 1) -> ExpressionModel:
        path = path or shipped_model_path(f"expression_{labels}")
        return cls(onnx_session(path, threads), class_names(labels))

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 crops -> (N, classes) probabilities."""
        x = _batch(crops, self.size)
        if len(x) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        logits = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


@dataclass
class KeypointModel:
    """15-keypoint regressor on 96x96 grayscale crops."""

    session: ort.InferenceSession
    size: int = 96

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1) -> KeypointModel:
        return cls(onnx_session(path or shipped_model_path("keypoints15"), threads))

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96) uint8 crops -> (N, 15, 2) keypoints in crop pixels (x, y)."""
        x = _batch(crops, self.size)
        if len(x) == 0:
            return np.zeros((0, len(KEYPOINT_NAMES), 2), np.float32)
        out = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        return out.reshape(len(x), len(KEYPOINT_NAMES), 2)
