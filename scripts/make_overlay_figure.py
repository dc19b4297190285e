"""Write docs/overlay.png: the overlay on a frame of the built-in demo clip (public domain).

    python scripts/make_overlay_figure.py
"""

from importlib import resources
from pathlib import Path

import cv2

import facecue
from facecue.results import FrameResult
from facecue.video.annotate import annotate

clip = str(resources.files("facecue") / "assets" / "demo_astronaut.mp4")
cap = cv2.VideoCapture(clip)
cap.set(cv2.CAP_PROP_POS_FRAMES, 20)
ok, frame = cap.read()
frame = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
faces = facecue.analyze(frame)
result = FrameResult(index=20, time=20 / 15, width=frame.shape[1], height=frame.shape[0],
                     faces=faces)
out = Path(__file__).resolve().parents[1] / "docs" / "overlay.png"
cv2.imwrite(str(out), annotate(frame, result))
print(f"wrote {out}: {len(faces)} face(s), {[f.expression.label for f in faces]}")
