"""The expression crop at run time frames a face the way FER2013 framed its training faces."""

import cv2
import numpy as np

from facecue.vision.crop import EXPRESSION_CROP, crop_face
from facecue.vision.detect import HaarDetector


def test_detector_crop_reproduces_fer2013_framing(fer_full):
    """Put real PublicTest faces in a larger scene, detect them, cut with EXPRESSION_CROP:
    the crop must land on the original 48x48 frame (same centre and size within a few %)."""
    faces = fer_full.split("PublicTest").images[:300]
    detector = HaarDetector()
    sides, offsets = [], []
    for face in faces:
        big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        scene = cv2.copyMakeBorder(big, 64, 64, 64, 64, cv2.BORDER_REPLICATE)
        found = detector(scene)
        if not found:
            continue
        crop = crop_face(scene, found[0].box, EXPRESSION_CROP)
        sides.append(crop.side / 192)
        centre = np.array([crop.x0, crop.y0]) + crop.side / 2
        offsets.append((centre - 160) / 192)
    assert len(sides) > 200  # Haar finds most FER faces
    assert abs(np.median(sides) - 1.0) < 0.04
    assert np.abs(np.median(offsets, axis=0)).max() < 0.03
