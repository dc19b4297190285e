"""Run-time inference with onnxruntime only: the shipped models, no torch needed."""

from __future__ import annotations

import json
import os
import re
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from facecue.cpu import PRECISION_ENV, exact_int8, int8_reason, precision_setting, wide_int8
from facecue.fileio import file_sha256
from facecue.labels import DEFAULT_LABELS, KEYPOINT_NAMES, LABEL_SETS, class_names

WEIGHTS = resources.files("facecue") / "weights"
REINSTALL = "reinstall facecue (pip install --force-reinstall facecue)"
# What onnxruntime raises for a file it cannot load or a model it cannot run on given inputs.
ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph,
              ort_state.InvalidProtobuf, ort_state.NoSuchFile, ort_state.NotImplemented,
              ort_state.RuntimeException)


class ModelNotFoundError(FileNotFoundError):
    """A model file is missing; the message says how to get it."""


class ModelError(ValueError):
    """A model file facecue cannot use: not an ONNX model, made for other inputs, outputs or
    labels, or not the file it should be (its sha256 differs); the message names the file
    and what was expected."""


# The builds every shipped model comes in: ``NAME.onnx`` (int8), ``NAME.int8w7.onnx`` (int8
# with 7-bit weights: exact without any option where 8-bit products saturate) and
# ``NAME.float32.onnx`` (the same weights computed in float32); facecue.train.builds.
BUILDS = ("int8", "int8w7", "float32")
PRECISIONS = ("auto", "int8", "float32")  # what users choose; int8 runs int8w7 where needed


def shipped_model_path(name: str, precision: str = "int8") -> Path:
    """Path of a model shipped in the package (``expression_fer7``, ``keypoints15``, ...) in
    the build ``precision`` (one of :data:`BUILDS`)."""
    if precision not in BUILDS:
        raise ValueError(f"a shipped model's build is one of {', '.join(BUILDS)}, not "
                         f"{precision!r}")
    suffix = "" if precision == "int8" else f".{precision}"
    path = Path(str(WEIGHTS / f"{name}{suffix}.onnx"))
    if not path.exists():
        raise ModelNotFoundError(
            f"shipped model {name!r} is missing from {path.parent}; {REINSTALL} or pass a "
            "model file with --model"
        )
    return path


def model_card(name: str) -> dict:
    """The model card (JSON) that ships beside a model."""
    return json.loads(Path(str(WEIGHTS / f"{name}.json")).read_text())


# Files whose sha256 matched, keyed by (resolved path, size, mtime in ns, digest): each file is
# hashed once per process, again only if it changes.
_VERIFIED: set[tuple[Path, int, int, str]] = set()


def check_sha256(path: str | Path, want: str, fix: str = "check the file and the sha256 you gave"
                 ) -> None:
    """Raise :class:`ModelError` (saying ``fix``) unless ``path``'s sha256 is ``want``.

    A file checked before in this process and unchanged since (same size and modification
    time) is not read again."""
    want = want.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", want):
        raise ValueError(f"the sha256 given for {path}, {want!r}, is not 64 hex digits")
    stat = Path(path).stat()
    key = (Path(path).resolve(), stat.st_size, stat.st_mtime_ns, want)
    if key in _VERIFIED:
        return
    got = file_sha256(path)
    if got != want:
        raise ModelError(f"model file {path} is damaged or not the expected file (sha256 {got}, "
                         f"expected {want}); {fix}")
    _VERIFIED.add(key)


def shipped_card(path: str | Path) -> dict | None:
    """The card of a model file in the package's weights folder, or None for a file
    elsewhere."""
    path = Path(path).resolve()
    if path.parent != Path(str(WEIGHTS)).resolve():
        return None
    return model_card(path.stem)


def shipped_sha256(path: str | Path) -> str | None:
    """The sha256 a model file in the package's weights folder must have (its card's), or None
    for a file elsewhere."""
    card = shipped_card(path)
    return None if card is None else card["sha256"]


def file_build(path: str | Path) -> str:
    """Which of :data:`BUILDS` the file is: a shipped file's card says; any other file is
    ``int8`` or ``float32`` by its graph (:func:`graph_precision`)."""
    card = shipped_card(path)
    if card is not None:
        return card.get("build", {}).get("build", "int8")
    return graph_precision(path)


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


def _forced_exact_int8() -> str | None:
    """``1`` or ``0`` when ``$FACECUE_EXACT_INT8`` forces the option, None for the rule."""
    forced = os.environ.get(EXACT_INT8_ENV, "auto").strip().lower()
    if forced not in ("auto", "", "1", "0"):
        raise ValueError(f"{EXACT_INT8_ENV} must be 1, 0 or auto, not {forced!r}")
    return forced if forced in ("1", "0") else None


def int8_session_config(machine: str | None = None, flags: set[str] | None = None
                        ) -> dict[str, str]:
    """The session options facecue's int8 graphs need on this CPU (or on ``machine`` with
    ``flags``, for tests): ``EXACT_INT8`` where 8-bit products saturate, nothing elsewhere.
    ``$FACECUE_EXACT_INT8`` (``1``, ``0``, ``auto``) overrides the rule."""
    forced = _forced_exact_int8()
    if forced is not None:
        return dict(EXACT_INT8) if forced == "1" else {}
    return {} if exact_int8(machine, flags) else dict(EXACT_INT8)


def int8_choice(machine: str | None = None, flags: set[str] | None = None) -> str:
    """How the int8 graphs run on this CPU (or on ``machine`` with ``flags``) and why, in one
    line: ``int8 with exact products: this CPU has no VNNI``, ``int8: this CPU has VNNI
    (avx512_vnni)``, ``int8 with exact products: FACECUE_EXACT_INT8=1``, ..."""
    exact = bool(int8_session_config(machine, flags))
    forced = _forced_exact_int8()
    why = int8_reason(machine, flags) if forced is None else f"{EXACT_INT8_ENV}={forced}"
    if forced == "0" and not exact_int8(machine, flags):
        why += " on a CPU whose 8-bit products saturate: outputs differ from the model cards"
    return f"int8 with exact products: {why}" if exact else f"int8: {why}"


def resolve_precision(precision: str = "auto", machine: str | None = None,
                      flags: set[str] | None = None) -> str:
    """The build to run, ``int8`` or ``float32``, for ``precision`` (``auto``: the
    ``$FACECUE_PRECISION`` setting, and where that is unset or ``auto`` the rule of
    :func:`facecue.cpu.wide_int8` for this CPU, or ``machine`` with ``flags`` in tests)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        precision = precision_setting()
    if precision != "auto":
        return precision
    return "int8" if wide_int8(machine, flags) else "float32"


def shipped_build(precision: str = "auto", machine: str | None = None,
                  flags: set[str] | None = None) -> str:
    """The shipped file to run for ``precision`` on this CPU (or ``machine`` with ``flags``):
    :func:`resolve_precision`, with ``int8`` read as ``int8w7`` (7-bit weights) where this
    CPU's 8-bit products saturate (:func:`facecue.cpu.exact_int8`): exact there without the
    exact-products option, which makes the 8-bit convs about 1.4x slower."""
    build = resolve_precision(precision, machine, flags)
    return "int8w7" if build == "int8" and not exact_int8(machine, flags) else build


def precision_choice(precision: str = "auto", machine: str | None = None,
                     flags: set[str] | None = None) -> str:
    """What ``precision`` runs on this CPU (or ``machine`` with ``flags``) and why, in one
    line: ``int8 with exact products: this CPU has AVX2 but no VNNI``, ``float32:
    FACECUE_PRECISION=float32``, ``int8: this CPU has VNNI (avx512_vnni)``, ..."""
    build = resolve_precision(precision, machine, flags)
    if precision != "auto":
        why = f"--precision {precision}"
    elif precision_setting() != "auto":
        why = f"{PRECISION_ENV}={precision_setting()}"
    else:
        why = None
    if build == "float32":
        return f"float32: {why or int8_reason(machine, flags)}"
    if shipped_build(precision, machine, flags) == "int8w7":
        line = f"int8 with 7-bit weights: {int8_reason(machine, flags)}"
    else:
        line = int8_choice(machine, flags)
    return f"{line}; {why}" if why else line


# Operator types of a quantized graph (QDQ or integer operators), as stored in the file: a node's
# op_type is field 4 of its NodeProto, a string after the tag byte 0x22 and its length.
_INT8_OPS = (b"QuantizeLinear", b"DequantizeLinear", b"DynamicQuantizeLinear", b"QLinearConv",
             b"QLinearMatMul", b"ConvInteger", b"MatMulInteger")


def graph_precision(path: str | Path) -> str:
    """``int8`` for a quantized ONNX graph (any node a quantize, dequantize or integer
    operator), else ``float32``; read from the file's bytes, without the onnx package."""
    data = Path(path).read_bytes()
    return "int8" if any(bytes((0x22, len(op))) + op in data for op in _INT8_OPS) \
        else "float32"


def precision_name(graph: str, config: dict[str, str]) -> str:
    """A graph's precision as run with session options ``config``: ``int8, exact products
    requested`` (an int8 graph with ``EXACT_INT8``), ``int8, 7-bit weights`` (the ``int8w7``
    build), else the graph's (``int8``, ``float32``)."""
    if graph == "int8w7":
        return "int8, 7-bit weights"
    exact = graph == "int8" and all(config.get(k) == v for k, v in EXACT_INT8.items())
    return "int8, exact products requested" if exact else graph


def session_precision(session: ort.InferenceSession, path: str | Path) -> str:
    """:func:`precision_name` of the file at ``path`` (:func:`file_build`) with the options
    ``session`` runs it with (read back from the session)."""
    options, config = session.get_session_options(), {}
    for key in EXACT_INT8:
        with suppress(RuntimeError):  # raised for an option not set
            config[key] = options.get_session_config_entry(key)
    return precision_name(file_build(path), config)


def runtime_requirements(build: str = "int8") -> dict:
    """What a model card tells anyone who runs the file without facecue: the onnxruntime
    release and the session options the card's figures need (none for the ``int8w7`` and
    ``float32`` builds)."""
    if build in ("int8w7", "float32"):
        why = ("float32 products are exact on every CPU" if build == "float32" else
               "with 7-bit weights no pair of uint8 x int8 products can saturate a 16-bit sum")
        return {"min_version": ".".join(map(str, MIN_ONNXRUNTIME)), "session_config": {},
                "why": f"{why}: no session option needed"}
    return {"min_version": ".".join(map(str, MIN_ONNXRUNTIME)),
            "session_config": dict(EXACT_INT8),
            "why": "8-bit SpaceToDepth and Max need the release; without the option, onnxruntime "
                   "on x86 CPUs without VNNI saturates uint8 x int8 sums and the outputs differ "
                   "from these figures (held-out keypoint RMSE 1.59 for 1.06, fer7 60.9 % for "
                   "72.2 % on an AVX2-only AMD EPYC)"}


def onnx_session(path: str | Path, threads: int = 1, options: ort.SessionOptions | None = None,
                 *, sha256: str | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for a facecue model file; every model is run through this,
    so the int8 graphs give the same outputs on every CPU (:func:`int8_session_config`).

    A shipped model is first checked against its card's sha256, any file against ``sha256``
    if given (:func:`check_sha256`)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {path}")
    check_onnxruntime()
    shipped = shipped_sha256(path)
    if shipped:
        check_sha256(path, shipped, f"it is a shipped model: {REINSTALL}")
    if sha256:
        check_sha256(path, sha256)
    opts = options or ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # the option slows 8-bit convs down: not for graphs that cannot saturate
    if shipped is None or file_build(path) == "int8":
        for key, value in int8_session_config().items():
            opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _checked_session(path: str | Path, threads: int, sha256: str | None, role: str, size: int,
                     widths: set[int], expected: str) -> tuple[ort.InferenceSession, int]:
    """A session for ``path`` as the ``role`` model, and its output width: one blank
    1 x 1 x ``size`` x ``size`` crop is run through it, which must give 1 x width values, width
    one of ``widths``. Otherwise a :class:`ModelError` names the file, what it takes and
    gives, and what was ``expected``."""
    expected = f"the {role} model should take N x 1 x {size} x {size} face crops and give " \
               f"{expected}"
    try:
        session = onnx_session(path, threads, sha256=sha256)
    except ORT_ERRORS as e:
        why = str(e).rsplit("failed:", 1)[-1].strip().rstrip(".")
        raise ModelError(f"{path} is not an ONNX model ({why}); {expected}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    try:
        out = session.run(None, {inputs[0].name: np.zeros((1, 1, size, size), np.float32)})[0]
    except ORT_ERRORS:
        out = None
    if len(inputs) != 1 or out is None or out.ndim != 2 or out.shape[1] not in widths:
        raise ModelError(f"{path} does not fit as the {role} model: it takes "
                         f"{_shape(inputs[0].shape)} and gives {_shape(outputs[0].shape)}; "
                         f"{expected}")
    return session, out.shape[1]


def _shape(dims: list) -> str:
    return " x ".join("?" if d is None else str(d) for d in dims)


def _batch(crops: np.ndarray, size: int) -> np.ndarray:
    x = np.asarray(crops)
    if x.ndim == 2:
        x = x[None]
    if x.shape[1:] != (size, size):
        raise ValueError(f"expected crops of shape (N, {size}, {size}), got {x.shape}")
    return x.astype(np.float32)[:, None]


def model_file(stem: str, path: str | Path | None, precision: str) -> Path:
    """The file to load: ``path`` when given (which must be a ``precision`` graph unless
    that is ``auto``), else the shipped ``stem`` in the build :func:`shipped_build` picks."""
    if path is None:
        return shipped_model_path(stem, shipped_build(precision))
    path = Path(path)
    if precision != "auto" and path.exists() and graph_precision(path) != precision:
        raise ModelError(f"{path} is a {graph_precision(path)} graph, not {precision}: give a "
                         f"{precision} model file or leave --precision out")
    return path


def check_shipped_expression(labels: str) -> None:
    """Raise :class:`ModelNotFoundError` now, before any data is read, if the package lacks
    every build of the expression model for ``labels``."""
    if not any(Path(str(WEIGHTS)).glob(f"expression_{labels}.*onnx")):  # no build at all
        raise ModelNotFoundError(
            f"the expression_{labels} model is missing from {WEIGHTS}: {REINSTALL}, or pass a "
            f"model file (--expression-model, or --model for `facecue eval`: RUN/model.onnx "
            f"of `facecue train expression --labels {labels}`)")


@dataclass
class ExpressionModel:
    """Facial-expression classifier on 48x48 grayscale crops."""

    session: ort.InferenceSession
    labels: tuple[str, ...]
    size: int = 48
    name: str = "expression"  # the model file's stem: expression_fer7, ...float32
    precision: str = "unknown"  # as run here: session_precision (int8, ...)

    @classmethod
    def load(cls, labels: str = DEFAULT_LABELS, path: str | Path | None = None, threads: int = 1, *,
             sha256: str | None = None, precision: str = "auto") -> ExpressionModel:
        """The model at ``path`` (default: the shipped one for ``labels`` in the build
        ``precision`` picks: :func:`model_file`), checked to fit ``labels`` (and ``sha256``
        if given) before it is used."""
        names = class_names(labels)
        if path is None:
            check_shipped_expression(labels)
        path = model_file(f"expression_{labels}", path, precision)
        session, classes = _checked_session(
            path, threads, sha256, "expression", cls.size,
            {len(n) for n, _ in LABEL_SETS.values()},
            f"N x {len(names)} scores, one per class of {labels} ({', '.join(names)})")
        if classes != len(names):
            fits = " or ".join(k for k, (n, _) in LABEL_SETS.items() if len(n) == classes)
            raise ModelError(f"{path} gives {classes} class scores per face but label set "
                             f"{labels} has {len(names)} classes ({', '.join(names)}); use "
                             f"--labels {fits} with this model, or a {labels} model")
        return cls(session, names, name=Path(path).stem,
                   precision=session_precision(session, path))

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
    name: str = "keypoints"  # the model file's stem: keypoints15, keypoints15.float32
    precision: str = "unknown"  # as run here: session_precision (int8, ...)

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1, *,
             sha256: str | None = None, precision: str = "auto") -> KeypointModel:
        """The model at ``path`` (default: the shipped one in the build ``precision`` picks:
        :func:`model_file`), checked to give 15 keypoints (and against ``sha256`` if given)
        before it is used."""
        width = 2 * len(KEYPOINT_NAMES)
        path = model_file("keypoints15", path, precision)
        session, _ = _checked_session(path, threads, sha256, "keypoint", cls.size, {width},
                                      f"N x {width} values (x, y of the 15 keypoints)")
        return cls(session, name=Path(path).stem, precision=session_precision(session, path))

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """(N, 96, 96) uint8 crops -> (N, 15, 2) keypoints in crop pixels (x, y)."""
        x = _batch(crops, self.size)
        if len(x) == 0:
            return np.zeros((0, len(KEYPOINT_NAMES), 2), np.float32)
        out = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        return out.reshape(len(x), len(KEYPOINT_NAMES), 2)
