"""Whether this CPU's 8-bit matrix products are exact.

x86 CPUs without VNNI multiply uint8 by int8 with VPMADDUBSW, which adds each pair of products
into a 16-bit sum that saturates; the int8 kernels of onnxruntime and CTranslate2 (oneDNN)
use it there, and the models then compute something else. Measured on an AVX2-only AMD EPYC:
facecue's expression model at 60.9 % instead of 72.2 % (onnxruntime, fixed there by its own
option, ``runtime.EXACT_INT8``) and Whisper's words changing with the encoder's window
(CTranslate2, which has no such option: ``transcribe.default_compute_type``; figures from
``benchmarks/bench_int8_exact.py`` and ``bench_speech.py``). VNNI sums into
32 bits, and ARM's 8-bit dot products are exact.

Which build of a model to run (:func:`wide_int8`) is a second question: int8 is faster than
float32 only where the int8 kernels have wide 8-bit instructions. On an AVX2-only AMD EPYC the
int8 graphs with exact products still ran 1.2-1.5x faster than their float32 builds
(``benchmarks/bench_precision.py``: docs/performance.md), and the shipped int8 build with
7-bit weights, exact there without that option, 1.4x faster again; so AVX2 without VNNI runs
int8 (that build); float32 is chosen only where those instructions are missing.
"""

from __future__ import annotations

import os
import platform
import subprocess

# x86 feature flags (Linux /proc/cpuinfo names; macOS sysctl names) with exact 8-bit products
VNNI_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8", "avx512vnni", "avxvnni"}
X86 = {"x86_64", "amd64", "i386", "i686", "x86"}
ARM64 = {"aarch64", "arm64"}
# auto, int8 or float32: the default precision of the face models (facecue.vision.runtime)
# and of Whisper (facecue.speech.transcribe)
PRECISION_ENV = "FACECUE_PRECISION"


def precision_setting() -> str:
    """``$FACECUE_PRECISION`` checked: ``auto`` (also when unset or empty), ``int8`` or
    ``float32``; anything else raises ``ValueError``."""
    value = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "int8", "float32"):
        raise ValueError(f"{PRECISION_ENV} must be auto, int8 or float32, not {value!r}")
    return value


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags in lower case (x86 ``flags``, ARM ``Features`` on Linux), or
    None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].lower().split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.features",
                                  "machdep.cpu.leaf7_features"], capture_output=True,
                                 text=True, timeout=5, check=True).stdout
            return set(out.lower().split())
        except (OSError, subprocess.SubprocessError):
            return None
    return None


def cpu_name() -> str:
    """The CPU's model name (e.g. ``AMD EPYC``), for benchmark headers; the machine type if
    it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def exact_int8(machine: str | None = None, flags: set[str] | None = None) -> bool:
    """True where 8-bit products sum without saturating: VNNI on x86, any ARM CPU. An x86
    CPU whose flags cannot be read counts as inexact (the safe side: float is slower, never
    wrong)."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86:
        return True
    flags = cpu_flags() if flags is None else flags
    return bool(flags and flags & VNNI_FLAGS)


def wide_int8(machine: str | None = None, flags: set[str] | None = None) -> bool:
    """True where onnxruntime's int8 kernels have wide 8-bit instructions, so the int8 build
    of a model is the faster one: AVX2 or VNNI on x86 (exact products are then asked for where
    VNNI is missing: :func:`exact_int8`), any 64-bit ARM CPU. Elsewhere, and on an x86 CPU
    whose flags cannot be read, the float32 build runs (not measured there: float32 is exact
    on every CPU and has no narrow int8 kernels to fall back on)."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86:
        return machine in ARM64
    flags = cpu_flags() if flags is None else flags
    return bool(flags and ("avx2" in flags or flags & VNNI_FLAGS))


def int8_reason(machine: str | None = None, flags: set[str] | None = None) -> str:
    """Why :func:`exact_int8` and :func:`wide_int8` say what they say here (or on
    ``machine`` with ``flags``), in a few words: ``this CPU has AVX2 but no VNNI``, ``this CPU
    has VNNI (avx512_vnni)``, ``8-bit products are exact on aarch64``, ..."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86:
        return (f"8-bit products are exact on {machine}" if machine in ARM64
                else f"no wide int8 kernels on {machine}")
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "this CPU's flags could not be read"
    vnni = sorted(flags & VNNI_FLAGS)
    if vnni:
        return f"this CPU has VNNI ({', '.join(vnni)})"
    return "this CPU has AVX2 but no VNNI" if "avx2" in flags else "this CPU has no AVX2 or VNNI"
