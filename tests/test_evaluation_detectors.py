"""Keypoints through a face detector on held-out youtube-faces-68 people, and two detectors
compared image by image (facecue.evaluation.detectors): a miss is a miss (no stand-in box),
the NME is the card's, the paired difference and its interval are over the same images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from facecue.evaluation.detectors import keypoints_through_detector, paired_nme
from facecue.evaluation.metrics import keypoint_report
from facecue.formats.landmarks68 import convert_landmarks68, identity, in_split
from facecue.vision.detect import HaarDetector, make_detector
from facecue.vision.runtime import KeypointModel


@pytest.fixture(scope="module")
def held_out(yt_items):
    """20 images of the held-out (test) people, spread over the split."""
    items = in_split(yt_items, "test")[::16]
    assert len(items) == 20 and len({identity(i.source) for i in items}) >= 10
    return items


@pytest.fixture(scope="module")
def model():
    return KeypointModel.load()


@pytest.fixture(scope="module")
def haar(held_out, model):
    return keypoints_through_detector(HaarDetector(), held_out, model)


@pytest.fixture(scope="module")
def blaze(held_out, model):
    return keypoints_through_detector(make_detector("blazeface"), held_out, model)


def test_haar_keypoints_are_as_good_as_the_card_says(haar):
    assert haar.misses <= 2  # the card's Haar misses 12 of the 314 held-out faces
    assert np.isfinite(haar.nme[haar.found]).all() and np.isnan(haar.nme[~haar.found]).all()
    assert np.isnan(haar.keypoints[~haar.found]).all()
    # the card: NME 0.035 over the 314; a crop from a wrong box would be several times that
    assert 0.02 < haar.mean_nme < 0.05
    assert (haar.nme[haar.found] < 0.15).all()
    # keypoints in the image's pixels: each within a few pixels of its label
    err = np.linalg.norm(haar.keypoints[haar.found] - haar.truth[haar.found], axis=-1)
    assert np.median(err) < 6


def test_nme_is_the_cards(haar, held_out, model):
    """The same images as the card scores them: crops converted for training from the same
    Haar boxes, keypoints in crop pixels, keypoint_report's NME."""
    rows = convert_landmarks68(held_out)
    same = haar.found & (rows.extra["Fallback"] == "0")
    assert same.sum() >= 15
    card = keypoint_report(model.predict(rows.images[same]), rows.keypoints[same])
    assert card["nme"] == pytest.approx(haar.nme[same].mean(), rel=1e-4)


def test_a_face_the_detector_does_not_find_is_a_miss_without_a_box(shared, held_out, model):
    """Labels of a held-out face on a real photo of a brick wall: no detection frames them, so
    the image counts as a miss with no keypoints and no error (no fallback box)."""
    wall = replace(held_out[0], path=shared / "media/photos/skimage_brick.png")
    items = [wall, *held_out[1:4]]
    for detector in (HaarDetector(), make_detector("blazeface")):
        out = keypoints_through_detector(detector, items, model)
        assert not out.found[0] and out.misses == 1 + int((~out.found[1:]).sum())
        assert np.isnan(out.nme[0]) and np.isnan(out.keypoints[0]).all()
        assert np.isfinite(out.truth[0]).all()
        assert out.mean_nme == pytest.approx(out.nme[1:][out.found[1:]].mean())


def test_paired_difference_and_its_interval(haar, blaze):
    pair = paired_nme(blaze, haar)
    both = haar.found & blaze.found
    assert (pair.n, pair.both) == (20, int(both.sum())) and pair.both >= 15
    assert (pair.misses_a, pair.misses_b) == (blaze.misses, haar.misses)
    assert pair.nme_a == pytest.approx(blaze.nme[both].mean())
    assert pair.nme_b == pytest.approx(haar.nme[both].mean())
    assert pair.difference == pytest.approx((blaze.nme[both] - haar.nme[both]).mean())
    lo, hi = pair.interval
    assert lo <= pair.difference <= hi and lo < hi
    assert hi - lo < 0.03  # people resampled, 20 faces: about a point of NME either way
    # the same images through the same detector differ by nothing, in every resample
    same = paired_nme(haar, haar)
    assert same.difference == 0 and same.interval == (0.0, 0.0)


def test_pairs_need_the_same_images(haar, held_out, model):
    other = keypoints_through_detector(HaarDetector(), held_out[:19], model)
    with pytest.raises(ValueError, match="different images"):
        paired_nme(other, haar)
