"""Tiny real training runs: train -> export -> onnxruntime, and kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from facecue.evaluation.evaluate import evaluate_expression  # noqa: E402
from facecue.fileio import file_sha256  # noqa: E402
from facecue.formats.fer2013 import read_fer2013  # noqa: E402
from facecue.train.models import expression_net  # noqa: E402
from facecue.train.ship_expression import ship_expression  # noqa: E402
from facecue.vision.runtime import ExpressionModel  # noqa: E402

TINY = ["--limit", "256", "--width", "8", "--batch-size", "32", "--threads", "1"]


def _facecue(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecue.cli", *args], capture_output=True,
                          text=True, **kw)


@pytest.fixture(scope="module")
def tiny_run(fer_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "fer5"
    r = _facecue("train", "expression", "--labels", "fer5", "--data", str(fer_sample),
                 "--out", str(out), "--epochs", "2", "--plots", *TINY)
    assert r.returncode == 0, r.stderr
    return out


def test_train_writes_checkpoints_model_card_and_plots(tiny_run):
    for name in ("last.pt", "best.pt", "history.json", "model.onnx", "card.json",
                 "training_curves.png", "confusion_fer5_PrivateTest.png",
                 "faces_fer5_PrivateTest.png"):
        assert (tiny_run / name).stat().st_size > 0, name
    history = json.loads((tiny_run / "history.json").read_text())
    assert [row["epoch"] for row in history["history"]] == [1, 2]
    card = json.loads((tiny_run / "card.json").read_text())
    assert card["labels"] == ["anger", "disgust", "sad", "happiness", "surprise"]
    assert card["metrics"]["split"] == "PrivateTest" and card["data"]["epoch_selection"] \
        == "PublicTest"
    assert card["best_epoch"] in (1, 2) and card["seed"] == 0


def test_onnx_matches_torch_on_real_faces(tiny_run, fer_sample):
    data, _ = read_fer2013(fer_sample)
    images, _, _ = data.split("PrivateTest").for_labels("fer5")
    model = expression_net(5, width=8)
    model.load_state_dict(torch.load(tiny_run / "best.pt"))
    model.eval()
    with torch.no_grad():
        want = torch.softmax(model(torch.from_numpy(images[:64, None].astype(np.float32))), 1)
    got = ExpressionModel.load("fer5", tiny_run / "model.onnx").predict_proba(images[:64])
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_eval_cli_json_matches_card(tiny_run, fer_sample):
    r = _facecue("eval", "expression", "--labels", "fer5", "--data", str(fer_sample),
                 "--split", "PrivateTest", "--model", str(tiny_run / "model.onnx"),
                 "--limit", "256", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    card = json.loads((tiny_run / "card.json").read_text())
    assert report["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-9)
    assert report["n"] == card["metrics"]["n"]
    assert set(report["per_class"]) == set(card["labels"])
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (5, 5) and cm.sum() == report["n"]
    assert report["dedup"]["n"] + report["dedup"]["removed"] == report["n"]


def test_existing_run_is_not_overwritten(tiny_run, fer_sample):
    r = _facecue("train", "expression", "--labels", "fer5", "--data", str(fer_sample),
                 "--out", str(tiny_run), "--epochs", "2", *TINY)
    assert r.returncode == 2 and "--resume" in r.stderr


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["model"]


def test_killed_mid_epoch_resumes_to_the_same_model(fer_sample, tmp_path):
    # Small batches make an epoch last about a second, so the kill lands inside epoch 2.
    args = ["train", "expression", "--labels", "fer7", "--data", str(fer_sample),
            "--epochs", "3", "--batch-size", "8", "--threads", "1"]
    straight = tmp_path / "straight"
    assert _facecue(*args, "--out", str(straight)).returncode == 0
    epoch_seconds = json.loads((straight / "history.json").read_text())["history"][1]["seconds"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "facecue.cli", *args, "--out", str(killed)],
                            stderr=subprocess.DEVNULL)
    while not (killed / "last.pt").exists():  # epoch 1 is checkpointed: epoch 2 is running
        assert proc.poll() is None, "training ended before its first checkpoint was seen"
        time.sleep(0.01)
    time.sleep(min(0.3, epoch_seconds / 3))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(killed / "last.pt", weights_only=False)["state"]["epoch"] == 1

    r = _facecue(*args, "--out", str(killed), "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "after epoch 1" in r.stderr
    a, b = _weights(straight / "last.pt"), _weights(killed / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- facecue ship expression: members averaged on the face and its mirror, int8 --------------


@pytest.fixture(scope="module")
def tiny_fer7_run(fer_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "fer7"
    r = _facecue("train", "expression", "--labels", "fer7", "--data", str(fer_sample),
                 "--out", str(out), "--epochs", "1", "--seed", "1", *TINY)
    assert r.returncode == 0, r.stderr
    return out


def _ship(fer_sample, weights: Path, *runs: Path, extra: tuple[str, ...] = ()) -> dict:
    r = _facecue("ship", "expression", *map(str, runs), "--labels", "fer5", "--data",
                 str(fer_sample), "--weights", str(weights), *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((weights / "expression_fer5.json").read_text())


def _torch_probs(run: Path, classes: int, faces: np.ndarray) -> np.ndarray:
    model = expression_net(classes, width=8)
    model.load_state_dict(torch.load(run / "best.pt"))
    with torch.no_grad():
        return torch.softmax(model.eval()(torch.from_numpy(faces[:, None].astype(np.float32))),
                             1).numpy()


@pytest.mark.parametrize("mirror_fer7_only", [False, True])
def test_shipped_float_model_is_mean_of_members_on_face_and_mirror(
        tiny_run, tiny_fer7_run, fer_sample, tmp_path, mirror_fer7_only):
    extra = ("--no-quantize", *(("--mirror-only", str(tiny_fer7_run)) if mirror_fer7_only
                                else ()))
    card = _ship(fer_sample, tmp_path, tiny_run, tiny_fer7_run, extra=extra)
    faces = read_fer2013(fer_sample)[0].split("PrivateTest").for_labels("fer5")[0][:64]
    mirrored = faces[:, :, ::-1].copy()
    want = 0
    for run, classes, cols, views in (
            (tiny_run, 5, [0, 1, 2, 3, 4], (faces,) if mirror_fer7_only else (faces, mirrored)),
            (tiny_fer7_run, 7, [0, 1, 4, 3, 5], (faces, mirrored))):  # fer7 -> fer5 classes
        for x in views:
            p = _torch_probs(run, classes, x)[:, cols]
            want = want + p / p.sum(1, keepdims=True) / len(views) / 2
    got = ExpressionModel.load("fer5", tmp_path / "expression_fer5.onnx").predict_proba(faces)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert [m["seed"] for m in card["members"]] == [0, 1]
    assert card["test_time_mirror"] == [not mirror_fer7_only, True]
    assert [m["mirror"] for m in card["members"]] == card["test_time_mirror"]
    assert card["quantization"] is None


def test_mirror_only_must_name_shipped_runs(tiny_run, fer_sample, tmp_path):
    r = _facecue("ship", "expression", str(tiny_run), "--labels", "fer5", "--data",
                 str(fer_sample), "--weights", str(tmp_path), "--mirror-only", "runs/other")
    assert r.returncode == 2 and "names runs not being shipped" in r.stderr
    with pytest.raises(ValueError, match=r"not being shipped: \['runs/other'\]"):
        ship_expression([str(tiny_run)], "fer5", str(fer_sample), tmp_path,
                        mirror_only=[str(tiny_run), "runs/other"])
    with pytest.raises(ValueError, match="mirror is off"):
        ship_expression([str(tiny_run)], "fer5", str(fer_sample), tmp_path, mirror=False,
                        mirror_only=[str(tiny_run)])
    assert not any(tmp_path.iterdir())


def test_shipped_int8_model_agrees_with_float_and_card_is_honest(
        tiny_run, tiny_fer7_run, fer_sample, tmp_path):
    float_card = _ship(fer_sample, tmp_path / "float", tiny_run, tiny_fer7_run,
                       extra=("--no-quantize",))
    card = _ship(fer_sample, tmp_path / "int8", tiny_run, tiny_fer7_run)
    path = tmp_path / "int8" / "expression_fer5.onnx"
    assert card["sha256"] == file_sha256(path)
    assert path.stat().st_size < 0.5 * (tmp_path / "float" / "expression_fer5.onnx").stat().st_size
    faces = read_fer2013(fer_sample)[0].split("PrivateTest").for_labels("fer5")[0]
    a = ExpressionModel.load("fer5", path).predict_proba(faces).argmax(1)
    b = ExpressionModel.load("fer5", tmp_path / "float" / "expression_fer5.onnx") \
        .predict_proba(faces).argmax(1)
    assert (a == b).mean() >= 0.9
    report = evaluate_expression(fer_sample, labels="fer5", split="PrivateTest", model=path)
    assert report["accuracy"] == pytest.approx(card["metrics"]["accuracy"], abs=1e-9)
    assert card["metrics"]["n"] == float_card["metrics"]["n"] == report["n"]
    assert card["training_command"] == [json.loads((r / "card.json").read_text())
                                        ["training_command"] for r in (tiny_run, tiny_fer7_run)]
    assert "int8" in card["quantization"]["type"]
    # the float32 build of the int8 file, beside it, scored on its own
    twin = tmp_path / "int8" / "expression_fer5.float32.onnx"
    twin_card = json.loads(twin.with_suffix(".json").read_text())
    assert twin_card["sha256"] == file_sha256(twin) and twin_card["file"] == twin.name
    assert twin_card["build"]["from"] == {"file": path.name, "sha256": card["sha256"]}
    report = evaluate_expression(fer_sample, labels="fer5", split="PrivateTest", model=twin)
    assert report["accuracy"] == pytest.approx(twin_card["metrics"]["accuracy"], abs=1e-9)
    c = ExpressionModel.load("fer5", twin).predict_proba(faces).argmax(1)
    assert (a == c).mean() >= 0.95
    seven = tmp_path / "int8" / "expression_fer5.int8w7.onnx"
    seven_card = json.loads(seven.with_suffix(".json").read_text())
    assert seven_card["sha256"] == file_sha256(seven)
    assert seven_card["build"]["from"] == twin_card["build"]["from"]


def test_ship_refuses_a_run_that_lacks_the_classes(tiny_run, fer_sample, tmp_path):
    r = _facecue("ship", "expression", str(tiny_run), "--labels", "fer7", "--data",
                 str(fer_sample), "--weights", str(tmp_path))
    assert r.returncode == 2 and "lacks FER classes [2, 6]" in r.stderr
    r = _facecue("ship", "expression", str(tmp_path), "--labels", "fer5", "--data",
                 str(fer_sample), "--weights", str(tmp_path))
    assert r.returncode == 2 and "no best.pt" in r.stderr
    assert not any(tmp_path.iterdir())
