"""Still images through the pipeline: real photos, image variants, bad files, the Python API."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from pipeline_support import make_pipeline

import facecue
from facecue.results import Face
from facecue.video.sources import read_image

# Faces a person can see in each photo (counted by looking at them). Haar finds all faces in
# EASY; in HARD it misses some (sunglasses, profile, hand over face, cut by the border, a
# child looking down), so there the pipeline may find fewer but never more.
EASY = {
    "fr_obama.jpg": 1, "fr_biden.jpg": 1, "fr_biden2.jpg": 1, "fr_two_people.jpg": 2,
    "fr_kit_with_rose.jpg": 2, "fr_johnsnow_test1.jpg": 1, "fr_alex_lacamoire1.jpg": 1,
    "fr_lin-manuel-miranda.png": 1, "fr_obama_small.jpg": 1, "fr_john1.jpeg": 1,
    "pyfeat_single_face.jpg": 1, "pyfeat_0-f1-su-ph.jpg": 1, "pyfeat_0-f15-hao-ph.jpg": 1,
    "pyfeat_15-f13-anc-ph.jpg": 1, "pyfeat_45-m7-di-ph.jpg": 1, "skimage_astronaut.png": 1,
}
HARD = {
    "fr_obama_and_biden.jpg": 3, "pyfeat_multi_face.jpg": 5, "pyfeat_BWPictureHuman.jpg": 1,
    "pyfeat_Image_with_alpha.png": 1, "skimage_camera.png": 1, "fr_obama_partial_face.jpg": 1,
}
NEGATIVES = ["pyfeat_free-mountain-vector-01.jpg", "skimage_chelsea.png", "skimage_coffee.png",
             "skimage_rocket.jpg", "skimage_hubble_deep_field.jpg", "skimage_brick.png",
             "skimage_motorcycle_left.png"]


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


def check_face(face: Face, labels: tuple[str, ...], shape: tuple[int, ...]) -> None:
    h, w = shape[:2]
    x, y, bw, bh = face.box
    assert bw > 0 and bh > 0 and x < w and y < h and x + bw > 0 and y + bh > 0
    assert face.keypoints.shape == (15, 2) and np.isfinite(face.keypoints).all()
    assert face.expression.labels == labels and face.expression.label in labels
    assert face.expression.probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert face.track_id is None  # still images are not tracked


def test_photo_face_counts(pipe, shared):
    photos = shared / "media" / "photos"
    for name, n in {**EASY, **HARD, **dict.fromkeys(NEGATIVES, 0)}.items():
        img = read_image(photos / name)
        faces = pipe.analyze(img)
        if name in HARD:
            assert len(faces) <= n, name
        else:
            assert len(faces) == n, name
        for f in faces:
            check_face(f, pipe.expression.labels, img.shape)


def test_image_variants_find_the_same_face(pipe, shared, tmp_path):
    bgr = read_image(shared / "media/photos/fr_obama.jpg")
    (ref,) = pipe.analyze(bgr)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 128
    deep = bgr.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert read_image(tmp_path / "deep.png").dtype == np.uint16
    for variant in (gray, rgba, tmp_path / "deep.png", bgr.astype(np.float32) / 255.0):
        (face,) = pipe.analyze(variant)
        assert np.abs(np.subtract(face.box, ref.box)).max() <= 0.05 * ref.box[2]
    # 4K: the photo scaled up into a 3840x2160 canvas; the box scales with it.
    s = 2160 / bgr.shape[0]
    big = cv2.resize(bgr, None, fx=s, fy=s)
    canvas = np.zeros((2160, 3840, 3), np.uint8)
    canvas[:, 600:600 + big.shape[1]] = big
    (face,) = pipe.analyze(canvas)
    want = np.array(ref.box) * s + [600, 0, 0, 0]
    assert np.abs(face.box - want).max() <= 0.08 * want[2]
    check_face(face, pipe.expression.labels, canvas.shape)


def test_faces_cut_by_the_border_and_tiny_faces(pipe, shared):
    bgr = read_image(shared / "media/photos/fr_two_people.jpg")
    faces = pipe.analyze(bgr)
    left = min(faces, key=lambda f: f.box[0])
    x, _, w, _ = left.box
    cut = bgr[:, x + w // 3:]  # a third of the left face is outside the image
    for face in pipe.analyze(cut):
        check_face(face, pipe.expression.labels, cut.shape)
    tiny = cv2.resize(bgr, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    for face in pipe.analyze(tiny):  # faces of ~20 px: found or not, never a crash
        check_face(face, pipe.expression.labels, tiny.shape)


def test_corrupt_and_truncated_images(pipe, shared, tmp_path):
    data = (shared / "media/photos/fr_obama.jpg").read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 3])
    try:  # OpenCV decodes some truncated JPEGs partly and rejects others; both are fine
        for face in pipe.analyze(truncated):
            check_face(face, pipe.expression.labels, read_image(truncated).shape)
    except ValueError as e:
        assert "cannot decode" in str(e)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(data[1000:3000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for bad in (garbage, empty):
        with pytest.raises(ValueError, match="cannot decode"):
            pipe.analyze(bad)
    with pytest.raises(FileNotFoundError):
        pipe.analyze(tmp_path / "missing.jpg")


def test_python_api(shared):
    pipe = make_pipeline()
    faces = facecue.analyze(str(shared / "media/photos/fr_two_people.jpg"), pipeline=pipe)
    assert len(faces) == 2 and all(isinstance(f, Face) for f in faces)
    results = list(facecue.stream(shared / "media/videos/pyfeat_single_face.mp4",
                                  pipeline=pipe))
    assert len(results) == 72
    assert [r.index for r in results] == list(range(72))
    assert all(b.time > a.time for a, b in zip(results, results[1:], strict=False))
    assert {f.track_id for r in results for f in r.faces} == {1}
    assert all(r.faces[0].raw_keypoints is not None for r in results if r.faces)


def test_import_facecue_is_light():
    code = ("import sys, facecue; "
            "print(sorted(m for m in ('torch', 'cv2', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
