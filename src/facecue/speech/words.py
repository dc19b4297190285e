"""What speech recognition gives: :class:`Word` s with times, gathered into
:class:`Utterance` s. Plain data, so fusion and the caption formats need no speech extra."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from facecue.speech.voice import VoiceFeatures


@dataclass(frozen=True)
class Word:
    """One recognised word; times in seconds from the start of the source."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech between pauses, with its words.

    ``start``/``end`` span the recognised words (not the VAD padding), so they are the times
    the face is looked at during fusion.
    """

    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    no_speech_prob: float = 0.0  # Whisper's own estimate that the stretch was not speech
    voice: VoiceFeatures | None = None  # loudness, pitch, pace (facecue.speech.voice.measure)

    @property
    def confidence(self) -> float:
        """Mean word probability: low for mumbling, music or noise."""
        return float(np.mean([w.probability for w in self.words])) if self.words else 0.0
