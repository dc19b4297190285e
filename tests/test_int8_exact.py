"""The shipped int8 graphs compute what their quantized arithmetic means on this CPU.

Run unfused (no graph optimisations), onnxruntime evaluates each QDQ graph as dequantize ->
float op -> quantize: the reference meaning of the file. Fused, it runs 8-bit kernels; on x86
CPUs without VNNI the uint8 x int8 ones saturate 16-bit sums (VPMADDUBSW), which on an
AVX2-only machine moved keypoints by up to 22 px and expression log-probabilities by up to 7.7.
Loaded as facecue loads them (``runtime.onnx_session``), the two must agree to rounding."""

import numpy as np
import onnxruntime as ort
import pytest

from facecue.cpu import exact_int8
from facecue.formats.fer2013 import read_fer2013
from facecue.vision.runtime import (
    EXACT_INT8,
    EXACT_INT8_ENV,
    int8_session_config,
    onnx_session,
    shipped_model_path,
)

# benchmarks/bench_int8_exact.py on the AVX2-only AMD EPYC, all held-out faces: with the option
# keypoints 0.085 px, expression 0.050-0.055 (requantization ties rounding the other way);
# without it 21.7 px and 6.8-7.7
ROUNDING = 0.25


def _outputs(session: ort.InferenceSession, crops: np.ndarray) -> np.ndarray:
    return session.run(None, {"pixels": crops.astype(np.float32)[:, None]})[0]


def _reference(name: str, crops: np.ndarray) -> np.ndarray:
    unfused = ort.SessionOptions()
    unfused.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return _outputs(onnx_session(shipped_model_path(name), options=unfused), crops)


@pytest.fixture(scope="module")
def crops(yt_sample, fer_sample):
    return {"keypoints15": yt_sample[1].images,
            "expression_fer7": read_fer2013(fer_sample)[0].images,
            "expression_fer5": read_fer2013(fer_sample)[0].images}


@pytest.mark.parametrize("name", ["keypoints15", "expression_fer7", "expression_fer5"])
def test_shipped_int8_graph_matches_its_unfused_meaning(name, crops):
    x = crops[name]
    got = _outputs(onnx_session(shipped_model_path(name)), x)
    want = _reference(name, x)
    assert got.shape == want.shape and len(x) >= 48
    assert float(np.abs(got - want).max()) < ROUNDING
    if name.startswith("expression"):
        assert (got.argmax(1) == want.argmax(1)).mean() > 0.99


def test_sessions_ask_for_exact_products_only_where_this_cpu_needs_them(monkeypatch):
    # on a VNNI CPU the test above passes without the option: this one guards the rule there
    monkeypatch.delenv(EXACT_INT8_ENV, raising=False)
    options = onnx_session(shipped_model_path("keypoints15")).get_session_options()
    try:
        asked = options.get_session_config_entry("session.x64quantprecision") == "1"
    except RuntimeError:  # onnxruntime's answer when the session was given no such entry
        asked = False
    assert asked is not exact_int8()


@pytest.mark.parametrize(("machine", "flags", "config"), [
    ("x86_64", {"avx2", "fma"}, EXACT_INT8),  # AVX2 only: saturating sums without it
    ("x86_64", {"avx2", "avx512f", "avx512bw"}, EXACT_INT8),
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, {}),  # exact already: the option only slows
    ("x86_64", {"avx2", "avx_vnni"}, {}),
    ("x86_64", set(), EXACT_INT8),  # flags unknown: the safe side
    ("aarch64", set(), {}),
])
def test_exact_products_rule_per_cpu(monkeypatch, machine, flags, config):
    monkeypatch.delenv(EXACT_INT8_ENV, raising=False)
    assert int8_session_config(machine, flags) == config
    assert "session.x64quantprecision" in EXACT_INT8


def test_exact_products_can_be_forced_either_way(monkeypatch):
    vnni = ("x86_64", {"avx512_vnni"})
    monkeypatch.setenv(EXACT_INT8_ENV, "1")
    assert int8_session_config(*vnni) == EXACT_INT8
    monkeypatch.setenv(EXACT_INT8_ENV, "0")
    assert int8_session_config("x86_64", {"avx2"}) == {}
    monkeypatch.setenv(EXACT_INT8_ENV, "yes")
    with pytest.raises(ValueError, match="FACECUE_EXACT_INT8"):
        int8_session_config(*vnni)


@pytest.mark.parametrize("name", ["keypoints15", "expression_fer7", "expression_fer5"])
def test_card_tells_how_to_run_the_file_without_facecue(name, crops):
    from facecue.vision.runtime import model_card, runtime_requirements

    need = model_card(name)["onnxruntime"]
    assert need == runtime_requirements()
    options = ort.SessionOptions()  # plain onnxruntime, configured only from the card
    for key, value in need["session_config"].items():
        options.add_session_config_entry(key, value)
    plain = ort.InferenceSession(str(shipped_model_path(name)), options,
                                 providers=["CPUExecutionProvider"])
    x = crops[name][:64]
    assert float(np.abs(_outputs(plain, x) - _reference(name, x)).max()) < ROUNDING
