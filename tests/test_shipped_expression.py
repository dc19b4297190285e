"""The shipped expression models: cards are honest and the runtime needs no torch."""

import json
import subprocess
import sys

import pytest

from facecue.evaluation.evaluate import evaluate_expression
from facecue.fileio import file_sha256
from facecue.vision.runtime import model_card, shipped_model_path


@pytest.mark.parametrize("labels", ["fer7", "fer5", "ferplus8"])
def test_card_matches_recomputed_privatetest_accuracy(labels, fer_csv, shared):
    name = f"expression_{labels}"
    card = model_card(name)
    path = shipped_model_path(name)
    assert card["sha256"] == file_sha256(path)
    assert path.stat().st_size < 8 * 1024 * 1024
    for key in ("training_command", "seed", "training_wall_time_minutes", "data"):
        assert card[key] is not None, key
    ferplus = shared / "data/ferplus/fer2013new.csv.gz" if labels == "ferplus8" else None
    report = evaluate_expression(fer_csv, labels=labels, split="PrivateTest", model=path,
                                 ferplus=ferplus)
    metrics = card["metrics"]
    assert metrics["split"] == "PrivateTest" and report["n"] == metrics["n"]
    assert report["accuracy"] == pytest.approx(metrics["accuracy"], abs=0.002)
    assert report["dedup"]["accuracy"] == pytest.approx(
        metrics["accuracy_without_training_duplicates"], abs=0.002)
    if ferplus:
        assert report["cross_entropy_to_votes"] == pytest.approx(
            card["ferplus"]["cross_entropy_to_votes"]["PrivateTest"], abs=0.005)
        assert report["left_out"] == card["ferplus"]["left_out"]["PrivateTest"]
    # The model must be far better than the majority class (happiness) on held-out rows.
    majority = max(c["support"] for c in report["per_class"].values()) / report["n"]
    assert report["accuracy"] > majority + 0.2


def test_runtime_loads_shipped_models_without_torch(fer_sample):
    code = f"""
import sys
sys.modules["torch"] = None  # any torch import now fails
from facecue.formats.fer2013 import read_fer2013
from facecue.vision.runtime import ExpressionModel
data, _ = read_fer2013({str(fer_sample)!r})
for labels in ("fer5", "fer7", "ferplus8"):
    p = ExpressionModel.load(labels).predict_proba(data.images[:8])
    assert p.shape[0] == 8 and abs(p.sum(1) - 1).max() < 1e-4
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_missing_model_file_says_what_to_do(tmp_path):
    from facecue.vision.runtime import ExpressionModel, ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="not found"):
        ExpressionModel.load("fer7", tmp_path / "absent.onnx")
    r = subprocess.run([sys.executable, "-m", "facecue.cli", "eval", "expression", "--data",
                        str(tmp_path / "absent.csv")], capture_output=True, text=True)
    assert r.returncode == 2 and "not found" in r.stderr


def test_split_all_evaluates_every_row(fer_sample):
    """``--split all`` is for other data in the FER2013 format: every row counts."""
    r = subprocess.run([sys.executable, "-m", "facecue.cli", "eval", "expression", "--labels",
                        "fer7", "--data", str(fer_sample), "--split", "all", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n"] == 1000 and report["split"] == "all"
    assert sum(c["support"] for c in report["per_class"].values()) == 1000
    assert report["dedup"]["n"] + report["dedup"]["removed"] == 1000
