"""Whisper's encoder on the speech, not on 30 s of mostly padding.

faster-whisper pads every window to 3,000 mel frames (30 s), and for short speech the
encoder's cost is in that padding. :class:`ShortWindowWhisper` encodes the speech plus
``WINDOW_MARGIN`` frames of the padding instead (at least ``MIN_WINDOW``): whisper.cpp's
``audio_ctx`` trick. Its known failure, a decode that loops or makes words up from the
padding, is caught by :mod:`facecue.speech.checks`, and the pass is then redone with
``full_window`` set.

faster-whisper has no option for this (``chunk_length`` and ``clip_timestamps`` change which
audio is read, not the encoder's input, which ``pad_or_trim`` always makes 30 s), so the
subclass overrides ``WhisperModel.encode``, the public method faster-whisper calls for each
window (in ``generate_segments`` and ``detect_language``). ``tests/test_speech.py`` watches the
real encoder's input: were an upgrade to route around ``encode``, it fails there.
"""

from __future__ import annotations

import numpy as np
from faster_whisper import WhisperModel

# Mel frames (100 per second) kept past the speech: speech + 5 s, at least 10 s. With 1 s of
# margin Whisper base looped on LJSpeech; with 5 s WER did not rise (benchmarks/bench_speech.py
# compares both windows).
WINDOW_MARGIN, MIN_WINDOW = 500, 1000


def window_frames(features: np.ndarray) -> int:
    """How many mel frames of a padded window the short window keeps: up to the last frame
    with content (the padding is zeros), plus the margin, in whole seconds."""
    columns = np.flatnonzero(np.abs(features.reshape(-1, features.shape[-1])).max(0))
    used = int(columns[-1]) + 1 if len(columns) else 0
    keep = -(-(used + WINDOW_MARGIN) // 100) * 100
    return min(features.shape[-1], max(MIN_WINDOW, keep))


class ShortWindowWhisper(WhisperModel):
    """faster-whisper's ``WhisperModel``, encoding the short window unless ``full_window``."""

    full_window = False  # set for a pass that must see the whole 30 s window

    def encode(self, features: np.ndarray):
        if not self.full_window:
            features = features[..., :window_frames(features)]
        return super().encode(np.ascontiguousarray(features))
