"""The shipped keypoint model against its card: file hash, every conv run in int8 (the card's
latency depends on it), and held-out accuracy recomputed on the held-out identities of
youtube-faces-68 (the card's ``test`` split)."""

import numpy as np
from onnx_support import float_convs

from facecue.evaluation.evaluate import evaluate_keypoints
from facecue.fileio import file_sha256
from facecue.formats.landmarks68 import convert_landmarks68, in_split
from facecue.vision.runtime import KeypointModel, model_card, shipped_model_path


def test_card_describes_the_shipped_file(tmp_path):
    card = model_card("keypoints15")
    path = shipped_model_path("keypoints15")
    assert card["sha256"] == file_sha256(path)
    assert "int8" in card["architecture"] and float_convs(path, tmp_path) == []
    assert path.stat().st_size < 8_000_000
    assert card["data"]["splits"]["test"]["identities"] == 27
    assert all("facecue train keypoints" in m["command"] for m in card["members"])


def test_held_out_accuracy_has_not_drifted_from_the_card(yt_items):
    items = in_split(yt_items, "test")
    report = evaluate_keypoints(convert_landmarks68(items), split="test",
                                model=shipped_model_path("keypoints15"))
    want = model_card("keypoints15")["metrics"]["test"]
    assert report["n"] == want["n"] == 314
    assert abs(report["rmse_px96"] - want["rmse_px96"]) < 0.01
    assert abs(report["nme"] - want["nme"]) < 5e-4
    spread = report["interval_over_people"]
    assert spread["people"] == 27
    assert spread["nme"][0] < want["nme"] < spread["nme"][1]


def test_shipped_model_predicts_faces_in_the_crop(yt_sample):
    _, rows = yt_sample
    pred = KeypointModel.load().predict(rows.images)
    assert pred.shape == (len(rows), 15, 2)
    assert np.median(np.linalg.norm(pred - rows.keypoints, axis=-1)) < 4.0
