"""``facecue doctor`` and ``facecue --version`` on this machine (no camera, microphone or
display here), the precision rule with CPU flags injected, and the precision each model ran in
recorded in run reports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import onnxruntime as ort
import pytest

import facecue
from facecue.cli import main
from facecue.cli.doctor import _within, model_check
from facecue.cpu import cpu_name, exact_int8
from facecue.vision.runtime import (
    BUILDS,
    EXACT_INT8_ENV,
    PRECISION_ENV,
    WEIGHTS,
    ExpressionModel,
    KeypointModel,
    graph_precision,
    int8_choice,
    int8_session_config,
    precision_choice,
    precision_name,
    shipped_build,
    shipped_model_path,
)


def build_of(stem: str) -> str:
    return stem.split(".", 1)[1] if "." in stem else "int8"


# model by model: the int8 build, int8 with 7-bit weights, float32
SHIPPED = sorted((p.stem for p in Path(str(WEIGHTS)).glob("*.onnx")),
                 key=lambda s: (s.split(".")[0], BUILDS.index(build_of(s))))
EXACT = "int8, exact products requested"
CLIP = "media/videos/grid_bbaf2n.mpg"


@pytest.fixture(autouse=True)
def by_the_cpu(monkeypatch):
    """Every test starts with the rule, not an override from the environment."""
    monkeypatch.delenv(EXACT_INT8_ENV, raising=False)
    monkeypatch.delenv(PRECISION_ENV, raising=False)


def here(name: str = "") -> str:
    """The precision the shipped model file ``name`` (the int8 build if not named) must run
    in on this CPU."""
    return {"float32": "float32", "int8w7": "int8, 7-bit weights"}.get(
        build_of(name), "int8" if exact_int8() else EXACT)


def auto(model: str) -> str:
    """The shipped file ``--precision auto`` runs here for ``model``."""
    build = shipped_build()
    return model if build == "int8" else f"{model}.{build}"


def chosen() -> str:
    """The precision of the build ``--precision auto`` runs here."""
    return here(auto("keypoints15"))


def test_doctor_names_the_cpu_and_times_every_shipped_model(capsys):
    assert main(["doctor", "--seconds", "1.5"]) == 0
    out = capsys.readouterr().out
    assert cpu_name() in out.splitlines()[1]
    assert f"precision   {precision_choice()}" in out
    for name in SHIPPED:
        mark = "*" if build_of(name) == shipped_build() else " "
        line = re.search(rf"^{re.escape(mark)} {re.escape(name)} +(.+?) +sha256 matches its "
                         rf"card +([\d.]+) ms/face \((\d+) faces\)$", out, re.M)
        assert line, f"{name} not reported:\n{out}"
        assert line[1] == here(name) and float(line[2]) > 0 and int(line[3]) >= 10
    assert "crops of the face in the built-in clip" in out
    for check in ("camera", "microphone", "display"):  # none here: said, not an error
        assert re.search(rf"^{check} +(yes|no): \S", out, re.M), out


def test_doctor_json_carries_every_model_with_its_precision_and_speed(capsys):
    assert main(["doctor", "--json", "--seconds", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in report["models"]] == SHIPPED
    for m in report["models"]:
        assert m["precision"] == here(m["name"]) and m["ms_per_face"] > 0
        assert m["sha256_verified"] and "error" not in m
        assert m["chosen"] == (m["build"] == shipped_build())
    assert sum(m["chosen"] for m in report["models"]) == len(SHIPPED) // 3
    assert report["cpu"]["name"] == cpu_name() and report["cpu"]["exact_int8"] == exact_int8()
    assert report["precision"]["build"] == shipped_build()
    assert report["precision"]["exact_products_requested"] == (not exact_int8())
    assert report["versions"]["onnxruntime"] == ort.__version__
    assert report["facecue"] == facecue.__version__
    assert report["whisper"]["state"] in {"verified", "not joined", "not installed"}
    for check in ("camera", "microphone", "display"):
        assert isinstance(report[check]["available"], bool) and report[check]["detail"]
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        assert report["display"] == {"available": False,
                                     "detail": "no display (DISPLAY is not set)"}


def test_doctor_without_the_extras_says_what_to_install():
    """faster-whisper, CTranslate2 and sounddevice made unimportable: still exit 0, and the
    report says which extra to install."""
    code = ("import sys\n"
            "for name in ('faster_whisper', 'ctranslate2', 'sounddevice'):\n"
            "    sys.modules[name] = None\n"
            "from facecue.cli import main\n"
            "sys.exit(main(['doctor', '--json', '--seconds', '0.5']))\n")
    env = {k: v for k, v in os.environ.items() if k not in (EXACT_INT8_ENV, PRECISION_ENV)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["whisper"] == {"state": "not installed",
                                 "detail": "pip install 'facecue[speech]'"}
    assert report["microphone"] == {"available": False, "detail": "facecue[mic] not installed: "
                                    "pip install 'facecue[mic]'"}
    assert all(m["ms_per_face"] > 0 for m in report["models"])


def test_a_damaged_model_is_reported_in_its_entry(tmp_path):
    damaged = tmp_path / "keypoints15.onnx"
    data = bytearray(shipped_model_path("keypoints15").read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    entry = model_check(damaged, None, 0.1)
    assert entry["name"] == "keypoints15" and not entry["sha256_verified"]
    assert entry["precision"] is None and entry["ms_per_face"] is None
    assert "damaged or not the expected file" in entry["error"]


def test_a_device_that_hangs_is_reported_within_the_bound():
    start = time.perf_counter()
    result = _within(0.2, lambda: time.sleep(3) or {"available": True}, "camera 0")
    assert time.perf_counter() - start < 1.0
    assert result == {"available": False, "detail": "camera 0 did not answer within 0.2 s"}


@pytest.mark.parametrize(("machine", "flags", "precision", "choice"), [
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, "int8",
     "int8: this CPU has VNNI (avx512_vnni)"),
    ("x86_64", {"avx2", "avx_vnni"}, "int8", "int8: this CPU has VNNI (avx_vnni)"),
    ("x86_64", {"sse2", "avx2", "fma"}, EXACT,
     "int8 with exact products: this CPU has AVX2 but no VNNI"),
    ("x86_64", {"avx2", "avx512f", "avx512bw"}, EXACT,
     "int8 with exact products: this CPU has AVX2 but no VNNI"),
    ("x86_64", {"sse2", "sse4_1"}, EXACT,
     "int8 with exact products: this CPU has no AVX2 or VNNI"),
    ("x86_64", set(), EXACT, "int8 with exact products: this CPU's flags could not be read"),
    ("aarch64", {"asimd", "asimddp"}, "int8", "int8: 8-bit products are exact on aarch64"),
    ("arm64", set(), "int8", "int8: 8-bit products are exact on arm64"),
])
def test_precision_rule_with_flags_injected(machine, flags, precision, choice):
    graph = graph_precision(shipped_model_path("keypoints15"))
    assert graph == "int8"
    assert precision_name(graph, int8_session_config(machine, flags)) == precision
    assert int8_choice(machine, flags) == choice


@pytest.mark.parametrize(("forced", "machine", "flags", "precision", "choice"), [
    ("1", "x86_64", {"avx2", "avx512_vnni"}, EXACT,
     "int8 with exact products: FACECUE_EXACT_INT8=1"),
    ("0", "aarch64", set(), "int8", "int8: FACECUE_EXACT_INT8=0"),
    ("0", "x86_64", {"avx2"}, "int8", "int8: FACECUE_EXACT_INT8=0 on a CPU whose 8-bit "
     "products saturate: outputs differ from the model cards"),
])
def test_the_environment_overrides_the_rule(monkeypatch, forced, machine, flags, precision,
                                            choice):
    monkeypatch.setenv(EXACT_INT8_ENV, forced)
    assert precision_name("int8", int8_session_config(machine, flags)) == precision
    assert int8_choice(machine, flags) == choice


def test_models_say_the_precision_their_session_runs(monkeypatch):
    """Read back from the real sessions: the rule here, then each override."""
    assert KeypointModel.load().precision == chosen()
    assert ExpressionModel.load("fer5").name == auto("expression_fer5")
    assert ExpressionModel.load("fer5", shipped_model_path("expression_fer5")).precision \
        == here()
    model = KeypointModel.load(precision="float32")
    assert (model.name, model.precision) == ("keypoints15.float32", "float32")
    for forced, precision in (("1", EXACT), ("0", "int8")):
        monkeypatch.setenv(EXACT_INT8_ENV, forced)
        model = KeypointModel.load(shipped_model_path("keypoints15"))
        assert (model.name, model.precision) == ("keypoints15", precision)
        # the 7-bit build needs no option: never asked for it
        seven = KeypointModel.load(shipped_model_path("keypoints15", "int8w7"))
        assert seven.precision == "int8, 7-bit weights"
        # the float32 build needs no option, whatever is asked for the int8 one
        assert KeypointModel.load(precision="float32").precision == "float32"


def test_a_float_graph_is_float32(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph), path)
    assert graph_precision(path) == "float32"
    assert precision_name("float32", {"session.x64quantprecision": "1"}) == "float32"


def test_version_prints_the_precision_choice():
    env = {k: v for k, v in os.environ.items() if k not in (EXACT_INT8_ENV, PRECISION_ENV)}
    done = subprocess.run([sys.executable, "-m", "facecue.cli", "--version"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"facecue {facecue.__version__} (onnxruntime {ort.__version__}; "
                           f"{precision_choice()})\n")
    assert ("with 7-bit weights: " in done.stdout) == (not exact_int8())
    env[PRECISION_ENV] = "float32"
    done = subprocess.run([sys.executable, "-m", "facecue.cli", "--version"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.endswith("; float32: FACECUE_PRECISION=float32)\n"), done.stdout


def test_run_report_records_each_models_precision(shared, tmp_path, capsys):
    report = facecue.run(shared / CLIP, max_frames=5)
    assert report.frames == 5
    assert report.models == {auto("expression_fer7"): chosen(), auto("keypoints15"): chosen()}
    assert report.as_dict()["models"] == report.models
    # `facecue run -v` says it in its summary; without -v it does not
    argv = ["run", str(shared / CLIP), "--max-frames", "3", "--no-window",
            "--jsonl", str(tmp_path / "faces.jsonl")]
    assert main([*argv, "-v"]) == 0
    said = f"facecue: models: {auto('expression_fer7')} {chosen()}; {auto('keypoints15')} " \
           f"{chosen()}"
    assert said in capsys.readouterr().err
    assert main(argv) == 0
    assert "models:" not in capsys.readouterr().err
    # --precision float32 runs the float32 builds, and the summary says so
    assert main([*argv, "-v", "--precision", "float32"]) == 0
    said = "facecue: models: expression_fer7.float32 float32; keypoints15.float32 float32"
    assert said in capsys.readouterr().err
