"""Build the demo clip shipped as ``src/facecue/assets/demo_astronaut.mp4``.

A synthetic camera move (zoom in, pan, drift out of frame and back) over scikit-image's
``astronaut.png`` (NASA portrait of Eileen Collins, public domain), so ``facecue demo`` has a
redistributable input that exercises tracking, a face leaving and a face coming back.

    python scripts/make_demo_clip.py ../shared/media/photos/skimage_astronaut.png
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src/facecue/assets/demo_astronaut.mp4"


def camera_path(n: int) -> list[tuple[float, float, float]]:
    """(centre x, centre y, crop side) per frame, in source pixels of the 512x512 image."""
    keys = [(0.0, (256, 220, 480)), (0.2, (215, 135, 220)), (0.4, (245, 130, 200)),
            (0.55, (470, 330, 240)), (0.65, (470, 330, 240)), (0.8, (220, 150, 280)),
            (1.0, (235, 165, 320))]
    ts = np.array([k[0] for k in keys])
    vals = np.array([k[1] for k in keys], float)
    u = np.linspace(0, 1, n)
    return [tuple(np.interp(t, ts, vals[:, j]) for j in range(3)) for t in u]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("astronaut", help="path to scikit-image's astronaut.png")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240))
    args = ap.parse_args()
    img = cv2.imread(args.astronaut)
    if img is None:
        raise SystemExit(f"cannot read {args.astronaut}")
    w, h = args.size
    src = cv2.copyMakeBorder(img, 256, 256, 256, 256, cv2.BORDER_REFLECT)
    out = Path(args.out)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (w, h))
    for cx, cy, side in camera_path(round(args.seconds * args.fps)):
        sx, sy = side * w / max(w, h), side * h / max(w, h)
        m = np.array([[w / sx, 0, -(cx + 256 - sx / 2) * w / sx],
                      [0, h / sy, -(cy + 256 - sy / 2) * h / sy]], np.float32)
        writer.write(cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_AREA))
    writer.release()
    os.replace(tmp, out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
