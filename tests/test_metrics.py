"""Intervals over the people (a cluster bootstrap) for keypoint figures, on real faces and
the shipped model's keypoints."""

import numpy as np
import pytest

from facecue.evaluation.metrics import identity_intervals, keypoint_report
from facecue.vision.runtime import KeypointModel


@pytest.fixture(scope="module")
def scored(yt_sample):
    _, rows = yt_sample
    return rows, KeypointModel.load().predict(rows.images).reshape(len(rows), -1)


def test_interval_holds_the_figure_and_counts_people(scored):
    rows, pred = scored
    report = keypoint_report(pred, rows.keypoints)
    spread = identity_intervals(pred, rows.keypoints, rows.extra["Identity"])
    assert spread["people"] == len(set(rows.extra["Identity"].tolist())) > 10
    for key in ("rmse_px96", "nme"):
        lo, hi = spread[key]
        assert lo < report[key] < hi
        assert hi - lo < report[key]  # a usable interval, not a blanket
    assert spread == identity_intervals(pred, rows.keypoints, rows.extra["Identity"])


def test_difference_interval_is_paired(scored):
    rows, pred = scored
    ids = rows.extra["Identity"]
    same = identity_intervals(pred, rows.keypoints, ids, baseline=pred.copy())
    assert same["minus_baseline"] == {"rmse_px96": [0.0, 0.0], "nme": [0.0, 0.0]}
    shifted = pred + 2.0  # every point 2 px off in x and y: clearly worse on every draw
    worse = identity_intervals(shifted, rows.keypoints, ids, baseline=pred)["minus_baseline"]
    assert worse["rmse_px96"][0] > 0 and worse["nme"][0] > 0


def test_people_not_faces_are_resampled(scored):
    rows, pred = scored
    one_person = np.full(len(rows), "someone")
    with pytest.raises(ValueError, match="two identities"):
        identity_intervals(pred, rows.keypoints, one_person)
    # the same faces as two people: every draw is one of three mixtures of the two halves
    halves = np.where(np.arange(len(rows)) < len(rows) // 2, "a", "b")
    nme = identity_intervals(pred, rows.keypoints, halves, rounds=400)["nme"]
    first = keypoint_report(pred[: len(rows) // 2], rows.keypoints[: len(rows) // 2])["nme"]
    second = keypoint_report(pred[len(rows) // 2:], rows.keypoints[len(rows) // 2:])["nme"]
    assert nme[0] == pytest.approx(min(first, second)) and nme[1] == pytest.approx(
        max(first, second))


def test_accuracy_interval_is_the_wilson_interval():
    from facecue.evaluation.metrics import accuracy_interval

    lo, hi = accuracy_interval(2070, 2435)  # the fer5 model's PrivateTest count
    assert lo < 2070 / 2435 < hi
    # large n: close to the normal approximation p +- 1.96 sqrt(p(1-p)/n)
    half = 1.959964 * np.sqrt(0.85 * 0.15 / 2435)
    assert hi - lo == pytest.approx(2 * half, rel=0.01)
    assert accuracy_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert accuracy_interval(10, 10)[1] == pytest.approx(1.0)
    assert accuracy_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)  # Wilson, z=1.96
    assert accuracy_interval(5, 10, level=0.99)[0] < accuracy_interval(5, 10)[0]
    with pytest.raises(ValueError):
        accuracy_interval(0, 0)


def test_eval_keypoints_prints_the_intervals(yt_sample, tmp_path, capsys):
    import json

    from facecue.cli import main
    from facecue.formats.kaggle_keypoints import write_training_csv

    _, rows = yt_sample
    data = tmp_path / "sample.csv"
    write_training_csv(data, rows)
    train = rows.split("train")
    people = len(set(train.extra["Identity"].tolist()))
    assert main(["eval", "keypoints", "--data", str(data), "--split", "train"]) == 0
    line = capsys.readouterr().out
    assert f"({people} people; 95 % intervals when they are resampled: rmse_px96 " in line
    assert main(["eval", "keypoints", "--data", str(data), "--split", "train", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    spread = report["interval_over_people"]
    assert spread["people"] == people and spread["nme"][0] < report["nme"] < spread["nme"][1]
