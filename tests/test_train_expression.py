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

from facecue.fer2013 import read_fer2013  # noqa: E402
from facecue.models import expression_net  # noqa: E402
from facecue.runtime import ExpressionModel  # noqa: E402

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
