"""`facecue run --speech`: live emotion-marked sentences beside the face pipeline."""

import subprocess
import sys

import cv2
import numpy as np
from pipeline_support import model_args, read_frames

from facecue.results import FrameResult
from facecue.video.annotate import annotate


def test_run_with_speech_on_a_real_grid_clip(shared, tmp_path):
    clip = shared / "media" / "videos" / "grid_swiz3n.mpg"  # says "set white in z three now"
    r = subprocess.run([sys.executable, "-m", "facecue.cli", "run", str(clip), "--speech",
                        "--no-window", "--out", str(tmp_path), *model_args()],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("facecue: said")]
    assert len(said) == 1 and "set white in" in said[0].lower()
    assert "voice: arousal 0.50, +0.0 dB" in said[0]  # one utterance: its own usual voice
    assert (tmp_path / "annotated.mp4").stat().st_size > 0


def test_caption_drawn_at_the_bottom_of_a_real_frame(shared):
    frame = read_frames(shared / "media" / "videos" / "grid_swiz3n.mpg", limit=1)[0]
    empty = FrameResult(index=0, time=0.0, width=frame.shape[1], height=frame.shape[0])
    plain = annotate(frame, empty)
    captioned = annotate(frame, empty, caption="[happily] Set white in Z3, now! 😀")
    changed = np.any(plain != captioned, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() > frame.shape[0] * 0.6  # only the bottom band is touched
    band = cv2.cvtColor(captioned[rows.min():], cv2.COLOR_BGR2GRAY)
    assert (band > 200).mean() > 0.01  # white text is there
    assert np.array_equal(plain[: rows.min()], captioned[: rows.min()])
