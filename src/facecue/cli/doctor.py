"""``facecue doctor`` and ``facecue --version``: what this machine will run, and how fast.

:func:`report` gathers it all into one JSON-ready dict. Each check runs on its own: one that
fails says why in its entry (``"error": ...``) and the others go on. Nothing is written or
downloaded: the Whisper weights are verified where they are, the joined copy or, before the
first use has joined them, the two packages' parts (reading them takes about as long as
joining, but leaves the cache as it was). Each model's speed is measured on one thread, one
face at a time as the pipeline runs a one-face frame, on crops of the face in the built-in
clip (``assets/demo_astronaut.mp4``), so it needs no data besides the package. Every build of
every model (int8, int8 with 7-bit weights, float32) is timed, so the report shows whether the
build chosen for this CPU is the fastest one here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from glob import glob
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import facecue
from facecue.cli import command
from facecue.cpu import (
    PRECISION_ENV,
    X86,
    cpu_flags,
    cpu_name,
    exact_int8,
    int8_reason,
    precision_setting,
)

DEFAULT_SECONDS = 3.0
MAX_FACES = 300  # faces timed per model at most
MIN_FACES = 10  # ... and at least, whatever the time
CROP_SHARE = 0.25  # of --seconds for finding faces in the clip; the rest for the models
PROBE_SECONDS = 3.0  # camera 0 and the microphone: longer is reported as not answering
# The flags that decide 8-bit arithmetic (with macOS's spellings), as (name, spellings).
X86_FLAGS = (("avx2", {"avx2"}), ("avx512f", {"avx512f"}),
             ("avx512_vnni", {"avx512_vnni", "avx512vnni"}), ("avx_vnni", {"avx_vnni", "avxvnni"}),
             ("amx_int8", {"amx_int8"}))
ARM_FLAGS = (("asimddp", {"asimddp"}), ("i8mm", {"i8mm"}))  # dot products, 8-bit matmul


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "doctor", "what this machine runs and how fast: CPU, each model's precision "
                "and ms per face, versions, Whisper weights, camera, microphone, display",
                "facecue doctor --json", _doctor)
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object (a models list with name, "
                        "precision and ms_per_face for each shipped model)")
    p.add_argument("--seconds", type=_positive, default=DEFAULT_SECONDS,
                   help=f"time for measuring the models (default {DEFAULT_SECONDS:g}); the other "
                        "checks take about a second more")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def version_line() -> str:
    """``facecue 0.1.0 (onnxruntime 1.32.0; int8 with exact products: this CPU has AVX2 but no
    VNNI)``: the version and which build of the models runs on this CPU, how and why."""
    try:
        import onnxruntime

        from facecue.vision.runtime import precision_choice

        how = f"onnxruntime {onnxruntime.__version__}; {precision_choice()}"
    except Exception as e:  # a version must print whatever else is wrong
        how = f"precision unknown: {_why(e)}"
    return f"facecue {facecue.__version__} ({how})"


class VersionAction(argparse.Action):
    """``--version``: :func:`version_line`, then exit (computed only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version_line())
        parser.exit()


def report(seconds: float = DEFAULT_SECONDS) -> dict:
    """Everything ``facecue doctor`` says, JSON-ready: ``facecue``, ``platform``, ``cpu``,
    ``precision`` (the build chosen here and why), ``models`` (one entry per shipped model
    file: ``name``, ``build``, ``precision`` as run, ``chosen`` (the build ``--precision auto``
    runs here), ``sha256_verified``, ``ms_per_face``, ``faces``, or ``error``), ``measure`` (how the
    speeds were measured), ``versions``, ``whisper``, ``camera``, ``microphone`` and
    ``display``. The models are measured for about ``seconds`` in all (``measure`` gives the
    load average before: other programs running make them slower)."""
    out = {"facecue": facecue.__version__, "platform": platform.platform(),
           "cpu": _checked(cpu_check), "precision": _checked(precision_check)}
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # busy CPU?
    measure = _checked(face_crops, seconds * CROP_SHARE)
    crops = measure.pop("crops", None)
    paths = _checked(shipped_models)
    if "error" in paths:
        out["models"] = [{"name": None, "precision": None, "ms_per_face": None, **paths}]
    else:
        share = seconds * (1 - CROP_SHARE) / max(1, len(paths["paths"]))
        chosen = out["precision"].get("build")
        out["models"] = [model_check(path, crops, share) | {"chosen": _build(path) == chosen}
                         for path in paths["paths"]]
    out["measure"] = {"threads": 1, "seconds": seconds, "load_average": load, **measure}
    out["versions"] = _checked(versions)
    out["whisper"] = _checked(whisper_check)
    out["camera"] = _checked(camera_check)
    out["microphone"] = _checked(microphone_check)
    out["display"] = _checked(display_check)
    return out


def _checked(check: Callable[..., dict], *args) -> dict:
    """``check(*args)``, or ``{"error": why}`` if it raised."""
    try:
        return check(*args)
    except Exception as e:  # one failed check must not stop the others
        return {"error": _why(e)}


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def cpu_check() -> dict:
    """The CPU's name, the flags that decide 8-bit arithmetic (None where unreadable), and
    whether its 8-bit products are exact, with why."""
    machine = platform.machine()
    flags = cpu_flags()
    names = X86_FLAGS if machine.lower() in X86 else ARM_FLAGS
    return {"name": cpu_name(), "machine": machine, "cores": os.cpu_count(),
            "flags": None if flags is None else {n: bool(flags & s) for n, s in names},
            "exact_int8": exact_int8(), "why": int8_reason()}


def precision_check() -> dict:
    """The build ``--precision auto`` runs here and why (one line), the session options
    facecue asks onnxruntime for with the int8 build, and the two settings from the
    environment, ``$FACECUE_PRECISION`` and ``$FACECUE_EXACT_INT8`` (None when unset)."""
    from facecue.vision.runtime import (
        EXACT_INT8_ENV,
        PRECISION_ENV,
        int8_session_config,
        precision_choice,
        shipped_build,
    )

    config = int8_session_config()
    return {"build": shipped_build(), "choice": precision_choice(),
            "exact_products_requested": bool(config), "session_config": config,
            "env": {name: os.environ.get(name) for name in (PRECISION_ENV, EXACT_INT8_ENV)}}


def _build(path: Path) -> str:
    """The build a shipped file is, as its card says (``facecue.vision.runtime.file_build``)."""
    from facecue.vision.runtime import file_build

    return file_build(path)


def _model(stem: str) -> str:
    """The model a shipped file's stem names: ``keypoints15`` for ``keypoints15.float32``."""
    return stem.split(".", 1)[0]


def shipped_models() -> dict:
    """The package's model files (each beside its card)."""
    from facecue.vision.runtime import WEIGHTS

    folder = Path(str(WEIGHTS))
    from facecue.vision.runtime import BUILDS

    paths = [p for p in folder.glob("*.onnx") if p.with_suffix(".json").exists()]
    return {"paths": sorted(paths, key=lambda p: (_model(p.stem), BUILDS.index(_build(p))))}


def face_crops(seconds: float) -> dict:
    """Face crops to time the models on: the face in the built-in clip, found by the Haar
    detector in up to 13 frames spread over the clip (as many as ``seconds`` allow, at least
    one), cut at 9 small shifts of each box and mirrored. ``crops`` maps crop size to a list
    of crops; ``faces`` says what they are. Random crops where no face is found."""
    import numpy as np

    from facecue.video.sources import DEMO_CLIP, VideoSource
    from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, crop_face, to_gray
    from facecue.vision.detect import HaarDetector

    end = time.perf_counter() + seconds
    specs = (EXPRESSION_CROP, KEYPOINTS_CROP)
    crops: dict[int, list[np.ndarray]] = {spec.size: [] for spec in specs}
    source, found, why = None, 0, ""
    try:
        source = VideoSource(str(DEMO_CLIP))
        frames = [to_gray(frame.image) for frame in source]
        detector = HaarDetector()
        for gray in frames[::max(1, len(frames) // 12)]:
            if found and time.perf_counter() > end:
                break
            for det in detector(gray)[:1]:
                found += 1
                x, y, w, h = det.box
                for dx in (-0.03, 0.0, 0.03):
                    for dy in (-0.03, 0.0, 0.03):
                        box = (x + dx * w, y + dy * h, w, h)
                        for spec in specs:
                            image = crop_face(gray, box, spec).image
                            crops[spec.size] += [image, image[:, ::-1].copy()]
    except Exception as e:  # the clip unreadable: time the models on random pixels
        why = f" ({_why(e)})"
    finally:
        if source is not None:
            source.close()
    if found:
        n = len(crops[EXPRESSION_CROP.size])
        return {"crops": crops, "faces": f"{n} crops of the face in the built-in clip "
                f"({found} frame{'s' * (found > 1)}, shifted and mirrored)"}
    rng = np.random.default_rng(0)
    crops = {spec.size: list(rng.integers(0, 256, (64, spec.size, spec.size), np.uint8))
             for spec in specs}
    return {"crops": crops, "faces": f"64 random crops (no face found in the built-in "
            f"clip{why})"}


def model_check(path: Path, crops: dict | None, seconds: float) -> dict:
    """One shipped model: its card's sha256 checked, loaded as the pipeline loads it (one
    thread), its precision as run here, and its median ms per face over up to
    :data:`MAX_FACES` faces, one at a time, for about ``seconds``."""
    entry = {"name": path.stem, "build": _build(path), "precision": None,
             "sha256_verified": False,
             "ms_per_face": None, "faces": 0}
    try:
        from facecue.labels import LABEL_SETS
        from facecue.vision.runtime import (
            REINSTALL,
            ExpressionModel,
            KeypointModel,
            check_sha256,
            model_card,
        )

        check_sha256(path, model_card(path.stem)["sha256"], f"it is a shipped model: {REINSTALL}")
        entry["sha256_verified"] = True
        if path.stem.startswith("keypoints"):
            model = KeypointModel.load(path, threads=1)
            run = model.predict
        elif path.stem.startswith("expression_"):
            kind = _model(path.stem).removeprefix("expression_")
            labels = next((k for k in LABEL_SETS if kind.startswith(k)), None)
            if labels is None:
                raise ValueError(f"no label set of facecue fits {path.name}")
            model = ExpressionModel.load(labels, path, threads=1)
            run = model.predict_proba
        else:
            raise ValueError(f"{path.name} is neither an expression nor a keypoint model")
        entry["precision"] = model.precision
        if not crops:
            raise RuntimeError("no face crops to time the model on")
        ms, faces = _ms_per_face(run, crops[model.size], seconds)
        entry.update(ms_per_face=round(ms, 3), faces=faces)
    except Exception as e:  # a damaged or unusable model: said in its entry
        entry["error"] = _why(e)
    return entry


def _ms_per_face(run: Callable, crops: list, seconds: float) -> tuple[float, int]:
    """Median milliseconds of ``run`` on one crop at a time, and how many crops were timed."""
    for crop in crops[:10]:  # warm-up: the first runs allocate and are slow
        run(crop[None])
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < MAX_FACES and (len(times) < MIN_FACES or time.perf_counter() < end):
        crop = crops[len(times) % len(crops)][None]
        start = time.perf_counter()
        run(crop)
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000 * times[len(times) // 2], len(times)


def versions() -> dict:
    """Python's and the packages' versions (None: not installed; a text: installed but
    unusable)."""
    out = {"python": platform.python_version()}
    for name, module in (("numpy", "numpy"), ("opencv", "cv2"), ("onnxruntime", "onnxruntime")):
        try:
            out[name] = __import__(module).__version__
        except Exception as e:  # a runtime dependency that does not import
            out[name] = f"not importable: {_why(e)}"
    for name in ("ctranslate2", "faster-whisper", "sounddevice"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def whisper_check() -> dict:
    """The speech extra: installed or not; the Whisper weights present and verified
    (:func:`facecue.speech.weights.weights_status`, never joined here); the compute type
    Whisper would use on this CPU and those CTranslate2 offers."""
    missing = [name for name in ("faster_whisper", "ctranslate2") if find_spec(name) is None]
    if missing:
        return {"state": "not installed", "detail": "pip install 'facecue[speech]'"}
    from facecue.speech.weights import weights_status

    out = weights_status()
    try:
        import ctranslate2

        from facecue.speech.transcribe import default_compute_type

        out["compute_type"] = default_compute_type()
        forced = precision_setting()
        out["compute_type_why"] = int8_reason() if forced == "auto" \
            else f"{PRECISION_ENV}={forced}"
        out["compute_types_offered"] = sorted(ctranslate2.get_supported_compute_types("cpu"))
    except Exception as e:  # the packages are there but do not import
        out["compute_type"] = None
        out["compute_type_error"] = _why(e)
    return out


def _within(seconds: float, probe: Callable[[], dict], what: str) -> dict:
    """``probe()`` on a helper thread, or that ``what`` did not answer in ``seconds`` (a
    device that hangs cannot stop the report; the thread is left to end on its own)."""
    result: dict = {}

    def run() -> None:
        result.update(_checked(probe))

    thread = threading.Thread(target=run, daemon=True, name=f"facecue doctor: {what}")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return {"available": False, "detail": f"{what} did not answer within {seconds:g} s"}
    return result


def camera_check(timeout: float = PROBE_SECONDS) -> dict:
    """Whether camera 0 opens and gives a frame within ``timeout`` seconds (OpenCV's open can
    take seconds, or hang on a broken device)."""
    def probe() -> dict:
        import cv2

        from facecue.video.sources import quiet_opencv

        with quiet_opencv():
            cap = cv2.VideoCapture(0)
            try:
                if not cap.isOpened():
                    devices = sorted(glob("/dev/video*")) if sys.platform.startswith("linux") \
                        else None
                    none = " (no /dev/video* device)" if devices == [] else ""
                    return {"available": False, "detail": f"no camera at index 0{none}"}
                ok, image = cap.read()
            finally:
                cap.release()
        if not ok or image is None:
            return {"available": False, "detail": "camera 0 opens but gives no frames"}
        return {"available": True, "detail": f"camera 0: {image.shape[1]}x{image.shape[0]}"}

    return _within(timeout, probe, "camera 0")


def microphone_check(timeout: float = PROBE_SECONDS) -> dict:
    """Whether the default input device takes 16 kHz mono (``facecue[mic]``'s sounddevice)."""
    def probe() -> dict:
        try:
            import sounddevice as sd
        except ImportError:
            return {"available": False,
                    "detail": "facecue[mic] not installed: pip install 'facecue[mic]'"}
        except OSError as e:  # the PortAudio library itself is missing
            return {"available": False, "detail": f"PortAudio missing ({e}; Debian/Ubuntu: "
                    "apt-get install libportaudio2)"}
        try:
            sd.check_input_settings(channels=1, samplerate=16000)
            device = sd.query_devices(kind="input")
        except Exception as e:  # sounddevice raises PortAudioError/ValueError for no device
            return {"available": False, "detail": f"no usable microphone ({e})"}
        return {"available": True, "detail": str(device["name"])}

    return _within(timeout, probe, "the microphone")


def display_check() -> dict:
    """Whether a window can open (:func:`facecue.video.sinks.has_display`)."""
    from facecue.video.sinks import has_display

    ok, why = has_display()
    return {"available": ok, "detail": why or "a window can open"}


def _doctor(args: argparse.Namespace) -> int:
    """Print the report; exit 1 when a shipped model failed its checks (facecue cannot run
    it), else 0: a machine without camera, microphone or display is a fine machine."""
    out = report(args.seconds)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("\n".join(text(out)))
    return 1 if any(m.get("error") for m in out["models"]) else 0


def faster_unchosen(models: list[dict]) -> list[str]:
    """A line for each model whose float32 build measured faster here than the chosen build
    (by more than 10 %: timing noise), saying how to pick it; a line that all chosen builds
    are the fastest ones otherwise. (The int8 builds not chosen are slower here or not exact:
    the rule picks between them by the CPU.)"""
    timed = [m for m in models if m.get("ms_per_face") and m.get("name")]
    chosen = {_model(m["name"]): m for m in timed if m.get("chosen")}
    lines = []
    for m in timed:
        pick = chosen.get(_model(m["name"]))
        if pick and m["build"] == "float32" and not m.get("chosen") \
                and m["ms_per_face"] < 0.9 * pick["ms_per_face"]:
            lines.append(f"  note: {m['name']} ran faster here than the chosen {pick['build']} "
                         f"build ({m['ms_per_face']:.2f} vs {pick['ms_per_face']:.2f} ms); "
                         "--precision float32 or FACECUE_PRECISION=float32 runs it")
    if not lines and chosen:
        lines.append("  * the build --precision auto runs here; float32 was not faster by more "
                     "than 10 % for any model")
    return lines


def text(out: dict) -> list[str]:
    """The report as lines for a terminal."""
    def section(name: str, entry: dict, line: Callable[[dict], str]) -> str:
        return f"{name:<12}{'error: ' + entry['error'] if 'error' in entry else line(entry)}"

    def yes_no(entry: dict) -> str:
        return f"{'yes' if entry['available'] else 'no'}: {entry['detail']}"

    def cpu(c: dict) -> str:
        flags = "flags unreadable" if c["flags"] is None else ", ".join(
            f"{k} {'yes' if v else 'no'}" for k, v in c["flags"].items())
        return f"{c['name']} ({c['machine']}, {c['cores']} cores): {flags}"

    def precision(c: dict) -> str:
        env = [f"{k}={v}" for k, v in c["env"].items() if v is not None and k not in c["choice"]]
        return c["choice"] + (f" ({', '.join(env)})" if env else "")

    def packages(v: dict) -> str:
        return ", ".join(f"{k} {v[k] or 'not installed'}" for k in v)

    def whisper(w: dict) -> str:
        line = f"{w['state']}: {w['detail']}"
        if w.get("compute_type"):
            line += f"; compute type {w['compute_type']} ({w['compute_type_why']})"
        elif w.get("compute_type_error"):
            line += f"; compute type unknown ({w['compute_type_error']})"
        return line

    measure = out["measure"]
    load = "" if measure["load_average"] is None else \
        f", load average {measure['load_average']:g} before"
    lines = [f"facecue {out['facecue']} on {out['platform']}",
             section("CPU", out["cpu"], cpu),
             section("precision", out["precision"], precision),
             f"{'models':<12}ms per face, one at a time on 1 thread (median of up to {MAX_FACES} "
             f"in about {measure['seconds']:g} s{load}) on "
             + (f"no crops: {measure['error']}" if "error" in measure else measure["faces"])]
    width = max((len(m["name"] or "") for m in out["models"]), default=0)
    for m in out["models"]:
        if m.get("error"):
            lines.append(f"  {m['name'] or '':<{width}}  error: {m['error']}")
            continue
        lines.append(f"{'*' if m.get('chosen') else ' '} {m['name']:<{width}}  "
                     f"{m['precision']:<30}  sha256 matches its card  "
                     f"{m['ms_per_face']:6.2f} ms/face ({m['faces']} faces)")
    lines += faster_unchosen(out["models"])
    lines += [section("packages", out["versions"], packages),
              section("whisper", out["whisper"], whisper),
              section("camera", out["camera"], yes_no),
              section("microphone", out["microphone"], yes_no),
              section("display", out["display"], yes_no)]
    return lines
