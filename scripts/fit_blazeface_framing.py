"""Fit where the models' box lies for a BlazeFace detection (facecue.vision.blazeface.Framing)
on youtube-faces-68's train identities, for both BlazeFace models; prints the FRAMINGS to ship.

    python scripts/fit_blazeface_framing.py [../shared/data/youtube-faces-68]
"""

from __future__ import annotations

import sys
from pathlib import Path

from facecue.formats.landmarks68 import framing_pairs, in_split, read_landmarks68
from facecue.vision.blazeface import BlazeFaceDetector, fit_framing


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else
                  Path(__file__).resolve().parents[2] / "shared/data/youtube-faces-68")
    train = in_split(read_landmarks68(folder), "train")
    print(f"# fitted on {len(train)} train images of {folder}")
    print("FRAMINGS = {")
    for variant in ("full", "short"):
        boxes, points, targets = framing_pairs(train, BlazeFaceDetector(variant))
        print(f"    # {variant}: {len(boxes)} faces both detectors find")
        print(f"    {variant!r}: {fit_framing(boxes, points, targets)!r},")
    print("}")


if __name__ == "__main__":
    main()
