"""Whisper's arithmetic (CTranslate2's compute type) follows the CPU: the rule with the CPU's
flags injected, the FACECUE_PRECISION override, and that CTranslate2 here offers the choice.
The measurements behind the rule: docs/speech.md, ``benchmarks/bench_speech.py``."""

import pytest

from facecue.cpu import PRECISION_ENV, exact_int8
from facecue.speech.transcribe import default_compute_type

AVX2 = {"sse2", "avx", "avx2", "fma", "f16c"}  # this AMD EPYC: no VNNI


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)


@pytest.mark.parametrize(("machine", "flags", "compute_type"), [
    ("x86_64", AVX2, "float32"),  # VPMADDUBSW saturates: int8 changed Whisper's words here
    ("x86_64", AVX2 | {"avx512f", "avx512bw"}, "float32"),  # AVX-512 without VNNI too
    ("x86_64", AVX2 | {"avx512f", "avx512_vnni"}, "int8"),  # Cascade Lake, Ice Lake, Zen 4
    ("x86_64", AVX2 | {"avx_vnni"}, "int8"),  # Alder Lake and later laptops
    ("AMD64", AVX2 | {"avx512vnni"}, "int8"),  # macOS sysctl spelling
    ("x86_64", set(), "float32"),  # flags unreadable: the safe side
    ("aarch64", set(), "int8"),  # ARM's 8-bit dot products are exact
    ("arm64", set(), "int8"),
])
def test_whisper_compute_type_rule(machine, flags, compute_type):
    assert default_compute_type(machine, flags) == compute_type
    assert (compute_type == "int8") is exact_int8(machine, flags)


@pytest.mark.parametrize(("setting", "compute_type"), [
    ("int8", "int8"), ("float32", "float32"), (" Float32 ", "float32"),
    ("auto", "float32"), ("", "float32"),
])
def test_facecue_precision_forces_whisper_compute_type(monkeypatch, setting, compute_type):
    monkeypatch.setenv(PRECISION_ENV, setting)
    assert default_compute_type("x86_64", AVX2) == compute_type
    if setting.strip().lower() != "float32":
        assert default_compute_type("x86_64", AVX2 | {"avx_vnni"}) == "int8"


def test_bad_facecue_precision_is_an_error(monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="FACECUE_PRECISION must be auto, int8 or float32"):
        default_compute_type("x86_64", AVX2)


def test_this_cpu_choice_is_offered_by_ctranslate2():
    ctranslate2 = pytest.importorskip("ctranslate2")
    offered = ctranslate2.get_supported_compute_types("cpu")
    assert default_compute_type() in offered
    assert default_compute_type() == ("int8" if exact_int8() else "float32")
