"""Faults in the models a user gives: files that are not models, models swapped or made for
another label set, a damaged shipped file; each is refused when the model is loaded, with a
message naming the file and what was expected, before any output exists. And small faces in
a large photo, which the detector's usual scan is too coarse to see."""

from __future__ import annotations

import shutil
import subprocess
import sys

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from pipeline_support import make_pipeline

from facecue.vision import runtime
from facecue.vision.runtime import ExpressionModel, KeypointModel, ModelError, model_card

WEIGHTS = runtime.shipped_model_path("keypoints15").parent
FER7, FER5, KEYPOINTS = (WEIGHTS / f"{n}.onnx" for n in ("expression_fer7", "expression_fer5",
                                                         "keypoints15"))
CLIP = "media/videos/pyfeat_single_face.mp4"
PHOTO = "media/photos/fr_two_people.jpg"
EXPECT_KEYPOINTS = "should take N x 1 x 96 x 96 face crops and give N x 30"
EXPECT_FER7 = "should take N x 1 x 48 x 48 face crops and give N x 7"


def facecue(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facecue.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def damaged_copy(model, folder, photo):
    """``model`` and its card copied into ``folder`` with one byte of the model flipped: a file
    onnxruntime still loads and runs on ``photo``, giving slightly other outputs."""
    folder.mkdir(exist_ok=True)
    shutil.copy(model.with_suffix(".json"), folder)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path = folder / model.name
    path.write_bytes(data)
    size = 96 if model.name.startswith("keypoints") else 48
    x = cv2.resize(cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE), (size, size))[None, None]
    damaged, real = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                     .run(None, {"pixels": x.astype(np.float32)})[0] for p in (path, model))
    assert 0 < np.abs(damaged - real).max() < 0.1  # loads and runs, quietly different
    return path


def test_files_that_are_not_the_model_asked_for(shared, tmp_path):
    text = shared / "media/SOURCES.md"
    for load, path, says in [
        (lambda p: KeypointModel.load(p), shared / PHOTO, ["is not an ONNX model",
                                                           EXPECT_KEYPOINTS]),
        (lambda p: ExpressionModel.load("fer7", p), text, ["is not an ONNX model", EXPECT_FER7]),
        (lambda p: KeypointModel.load(p), FER7, ["does not fit as the keypoint model",
                                                 "takes n x 1 x 48 x 48 and gives n x 7",
                                                 EXPECT_KEYPOINTS]),
        (lambda p: ExpressionModel.load("fer7", p), KEYPOINTS, [
            "does not fit as the expression model", "takes n x 1 x 96 x 96 and gives n x 30",
            EXPECT_FER7]),
        (lambda p: ExpressionModel.load("fer5", p), FER7, [
            "gives 7 class scores per face but label set fer5 has 5 classes (anger, disgust, "
            "sad, happiness, surprise); use --labels fer7"]),
        (lambda p: ExpressionModel.load("fer7", p), FER5, [
            "gives 5 class scores per face but label set fer7 has 7 classes"]),
    ]:
        with pytest.raises(ModelError) as e:
            load(path)
        assert str(path) in str(e.value) and all(s in str(e.value) for s in says), str(e.value)


def test_cli_refuses_a_wrong_model_before_any_output(shared, tmp_path):
    out = tmp_path / "out"
    r = facecue("run", shared / CLIP, "--out", out, "--no-window", "--max-frames", "5",
                "--keypoints-model", FER7)
    assert r.returncode == 2 and not out.exists(), r.stderr
    assert r.stderr.startswith(f"facecue: error: {FER7} does not fit as the keypoint model")
    assert "Traceback" not in r.stderr
    r = facecue("analyze", shared / PHOTO, "--labels", "fer5", "--expression-model", FER7)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert "label set fer5 has 5 classes" in r.stderr and "Traceback" not in r.stderr


def test_a_damaged_shipped_model_is_refused(shared, tmp_path, monkeypatch):
    build = runtime.shipped_build()  # the files facecue loads here by default
    for name in ("expression_fer7", "keypoints15"):
        damaged_copy(runtime.shipped_model_path(name, build), tmp_path / "weights",
                     shared / "media/photos/fr_obama.jpg")
    monkeypatch.setattr(runtime, "WEIGHTS", tmp_path / "weights")  # load the copies as shipped
    with pytest.raises(ModelError, match=r"expression_fer7\S*.onnx is damaged .*reinstall "
                                         "facecue"):
        ExpressionModel.load("fer7")
    with pytest.raises(ModelError, match=r"keypoints15\S*.onnx is damaged"):
        KeypointModel.load()
    monkeypatch.undo()  # the real ones load
    assert ExpressionModel.load("fer7").labels[0] == "anger" and KeypointModel.load().size == 96


def test_a_user_model_can_be_checked_by_its_sha256(shared, tmp_path):
    path = damaged_copy(FER7, tmp_path, shared / "media/photos/fr_obama.jpg")
    want = model_card("expression_fer7")["sha256"]
    ExpressionModel.load("fer7", path)  # a user's file is not checked without a sha256
    with pytest.raises(ModelError, match="damaged or not the expected file"):
        ExpressionModel.load("fer7", path, sha256=want)
    with pytest.raises(ValueError, match="not 64 hex digits"):
        ExpressionModel.load("fer7", FER7, sha256="fd93700f")
    ExpressionModel.load("fer7", FER7, sha256=want.upper())
    r = facecue("analyze", shared / PHOTO, "--expression-model", path,
                "--expression-model-sha256", want)
    assert r.returncode == 2 and "damaged or not the expected file" in r.stderr, r.stderr


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
def test_small_faces_in_a_large_photo_are_found(shared, detector):
    """The two faces of a real photo shrunk to ~70 px, 2.9 % of the long side of the large
    real photo they are pasted into (2560 x 1912): too small for Haar's scan at 640 px (96 px
    there) and for BlazeFace's look at the whole, found by Haar's still-image scan at 1280 px
    and by BlazeFace's 4 x 4 tiles. Haar finds none of the photo's own (blurred) face;
    BlazeFace finds it too."""
    pipe = make_pipeline(detector=detector)
    two = cv2.imread(str(shared / "media/photos/fr_two_people.jpg"))
    big = cv2.imread(str(shared / "media/photos/pyfeat_BWPictureHuman.jpg"))
    small = cv2.resize(two, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    big[1300:1300 + small.shape[0], 1700:1700 + small.shape[1]] = small
    want = sorted((np.array(f.box) * 0.4 + [1700, 1300, 0, 0] for f in pipe.analyze(two)),
                  key=lambda b: b[0])
    faces = sorted((np.array(f.box) for f in pipe.analyze(big)), key=lambda b: b[0])
    own = 0 if detector == "haar" else 1
    assert len(pipe.detector(big)) == own and len(faces) == len(want) + own and len(want) == 2
    for box, ref in zip(faces[own:], want, strict=True):
        assert np.abs(box - ref).max() <= 0.1 * ref[2] and ref[2] < 0.03 * big.shape[1]
