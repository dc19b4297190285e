"""How an utterance was said: loudness, pitch and pace from its own audio, relative to the
speaker's usual voice, combined into an ``arousal`` score and caption manner tags.

Two steps, because only the second needs the rest of the file:

1. :func:`measure` (at recognition time, on the utterance's samples): absolute
   :class:`VoiceFeatures`, with pitch from Praat's autocorrelation tracker through
   ``praat-parselmouth`` (the speech extra). Praat was chosen over librosa's pYIN after measuring
   both (docs/speech.md, "Choosing the pitch tracker"): 42x faster (2.7 against 113 ms per
   second of audio) and steadier in noise (median F0 moved at most 0.45 semitones at 10 dB
   SNR, pYIN 3.0).
2. :func:`relative` against a :class:`Baseline`, the median of each feature over the speaker's
   utterances (a whole file's, or those so far when live): :class:`Voice`. facecue has no
   speaker diarisation, so a file is taken as one voice. Relative figures do not depend on the
   recording level, and a lone utterance is its own baseline (arousal 0.5, no tags).

Features (all over the utterance's words, from the first word's start to the last's end):

- ``loudness``: level of the samples inside words, dB (relative: dB above the baseline);
- ``pitch``: median F0 (relative: semitones above the baseline's median F0);
- ``pitch_range``: 10th to 90th percentile of F0 in semitones (relative: semitones more);
- ``rate``: words per second (relative: ratio to the baseline's), from ``MIN_WORDS`` words on;
- ``voiced``: fraction of the words' time with a pitch (low: whispered).

``arousal`` = ``0.5 + 0.5 * tanh(s)``, ``s`` the weighted mean (:data:`WEIGHTS`) of each
available relative feature divided by its tag threshold: loudness / ``LOUD_DB``,
pitch / ``PITCH_ST``, pitch range / ``RANGE_ST``, log(rate ratio) / log(``FAST``). So 0.5 is
the speaker's usual voice; a voice at every threshold at once (louder, higher, wider, faster)
scores 0.88; quiet, low and slow voices score below 0.5.

Manner tags (:func:`voice_tags`; thresholds measured in docs/speech.md): ``shouting`` when
loudness >= ``LOUD_DB`` and pitch >= ``PITCH_ST``; ``whispering`` when ``voiced`` <
``WHISPER_VOICED`` (whispered speech has no pitch) and the voice is not louder than usual;
``quietly`` when loudness <= -``QUIET_DB``; ``rapidly`` when the rate ratio >= ``FAST``;
``slowly`` when it is <= ``SLOW``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from facecue.speech.audio import SAMPLE_RATE

PITCH_FLOOR, PITCH_CEILING = 60.0, 600.0  # Hz: low male voices to raised female voices
TIME_STEP = 0.02  # s between pitch frames: half the cost of 0.01, same medians (docs)
MARGIN = 0.1  # s of audio analysed beyond the first and last word
MIN_WORDS = 3  # rate needs this many words: one or two words' duration says little
MIN_VOICED_FRAMES = 5  # pitch needs 0.1 s of voiced frames

# Tag thresholds (docs/speech.md, "Manner tags and their thresholds": outside the spread of
# one calm reader's sentences, LJSpeech's 32 clips)
LOUD_DB = 6.0
QUIET_DB = 6.0
PITCH_ST = 2.0
RANGE_ST = 3.0
FAST = 1.6
SLOW = 0.6
WHISPER_VOICED = 0.25
WEIGHTS = {"loudness": 0.4, "pitch": 0.25, "pitch_range": 0.1, "rate": 0.25}
_FIELDS = ("loudness", "pitch", "pitch_range", "rate")


@dataclass(frozen=True)
class VoiceFeatures:
    """One utterance's voice in absolute units; None where it could not be measured."""

    loudness: float  # dBFS of the samples inside words
    pitch: float | None  # median F0, Hz
    pitch_range: float | None  # F0 10th-90th percentile, semitones
    rate: float | None  # words per second
    voiced: float  # fraction of the words' frames with a pitch

    def as_dict(self) -> dict:
        return {k: None if v is None else round(v, 3) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Baseline:
    """The speaker's usual voice: each feature's median over their utterances."""

    loudness: float
    pitch: float | None
    pitch_range: float | None
    rate: float | None
    count: int  # utterances it was taken over


@dataclass(frozen=True)
class Voice:
    """One utterance's voice relative to the speaker's baseline, its arousal and tags."""

    loudness: float  # dB above the baseline
    pitch: float | None  # semitones above the baseline's median F0
    pitch_range: float | None  # semitones wider than the baseline's range
    rate: float | None  # ratio to the baseline's words per second
    arousal: float  # 0..1, 0.5 = the speaker's usual voice
    tags: tuple[str, ...]  # manner tags: shouting, whispering, quietly, rapidly, slowly
    features: VoiceFeatures  # the absolute measurements

    def as_dict(self) -> dict:
        def r(v: float | None, n: int = 2) -> float | None:
            return None if v is None else round(v, n)
        return {"loudness_db": r(self.loudness), "pitch_st": r(self.pitch),
                "pitch_range_st": r(self.pitch_range), "rate_ratio": r(self.rate, 3),
                "arousal": round(self.arousal, 3), "tags": list(self.tags),
                "absolute": self.features.as_dict()}


def _parselmouth():
    try:
        import parselmouth
    except ImportError as e:
        raise RuntimeError("voice features need praat-parselmouth: "
                           "pip install 'facecue[speech]'") from e
    return parselmouth


def measure(pieces: Sequence[tuple[float, np.ndarray]], words: Sequence) -> VoiceFeatures | None:
    """The voice of the utterance whose ``words`` (with ``start``/``end`` in seconds) lie in
    ``pieces``, stretches of 16 kHz mono float32 audio given as ``(start_seconds, samples)``;
    None if its words hold no audio. Only the words' time is analysed (pitch with a margin of
    ``MARGIN`` for Praat's window), so the cost follows the speech, not the pauses."""
    power, f0, in_words = [], [], []
    first, last = words[0].start - MARGIN, words[-1].end + MARGIN
    for offset, samples in pieces:
        lo = max(int((first - offset) * SAMPLE_RATE), 0)
        samples = np.asarray(samples, np.float32).reshape(-1)
        samples = samples[lo:max(int((last - offset) * SAMPLE_RATE), 0)]
        offset += lo / SAMPLE_RATE
        if len(samples) < SAMPLE_RATE * 0.1:
            continue
        inside = _within(offset, len(samples), SAMPLE_RATE, words)
        power.append(np.square(samples[inside], dtype=np.float64))
        track = _parselmouth().Sound(samples.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
            time_step=TIME_STEP, pitch_floor=PITCH_FLOOR, pitch_ceiling=PITCH_CEILING)
        f0.append(track.selected_array["frequency"])
        first_frame = offset + track.xs()[0] if len(f0[-1]) else offset
        in_words.append(_within(first_frame, len(f0[-1]), 1 / TIME_STEP, words))
    if sum(len(p) for p in power) < SAMPLE_RATE * 0.05:
        return None
    loudness = 10 * math.log10(float(np.mean(np.concatenate(power))) + 1e-12)
    f0_all, mask = np.concatenate(f0), np.concatenate(in_words)
    voiced_f0 = f0_all[mask & (f0_all > 0)]
    voiced = len(voiced_f0) / max(int(mask.sum()), 1)
    pitch = pitch_range = None
    if len(voiced_f0) >= MIN_VOICED_FRAMES:
        pitch = float(np.median(voiced_f0))
        lo_f0, hi_f0 = np.percentile(voiced_f0, [10, 90])
        pitch_range = float(12 * math.log2(hi_f0 / lo_f0))
    span = words[-1].end - words[0].start
    rate = len(words) / span if len(words) >= MIN_WORDS and span > 0 else None
    return VoiceFeatures(loudness, pitch, pitch_range, rate, voiced)


def _within(start: float, count: int, per_second: float, words: Sequence) -> np.ndarray:
    """Which of ``count`` evenly spaced times from ``start`` (``per_second`` of them a
    second) fall inside a word."""
    inside = np.zeros(count, bool)
    for w in words:
        a = max(math.ceil((w.start - start) * per_second), 0)
        inside[a:max(math.floor((w.end - start) * per_second) + 1, 0)] = True
    return inside


def baseline(features: Iterable[VoiceFeatures | None]) -> Baseline | None:
    """The median of each feature over ``features`` (the missing ones skipped); None if none."""
    found = [f for f in features if f is not None]
    if not found:
        return None

    def median(name: str) -> float | None:
        values = [getattr(f, name) for f in found if getattr(f, name) is not None]
        return float(np.median(values)) if values else None

    return Baseline(*(median(n) for n in _FIELDS), count=len(found))


def relative(features: VoiceFeatures, base: Baseline) -> Voice:
    """``features`` against the speaker's ``base``: relative figures, arousal and tags."""
    loud = features.loudness - base.loudness
    pitch = (12 * math.log2(features.pitch / base.pitch)
             if features.pitch is not None and base.pitch else None)
    spread = (features.pitch_range - base.pitch_range
              if features.pitch_range is not None and base.pitch_range is not None else None)
    rate = features.rate / base.rate if features.rate is not None and base.rate else None
    parts = {"loudness": loud / LOUD_DB,
             "pitch": None if pitch is None else pitch / PITCH_ST,
             "pitch_range": None if spread is None else spread / RANGE_ST,
             "rate": None if rate is None else math.log(rate) / math.log(FAST)}
    used = {k: v for k, v in parts.items() if v is not None}
    score = sum(WEIGHTS[k] * v for k, v in used.items()) / sum(WEIGHTS[k] for k in used)
    arousal = 0.5 + 0.5 * math.tanh(score)
    return Voice(loud, pitch, spread, rate, arousal,
                 voice_tags(loud, pitch, rate, features.voiced), features)


def voice_tags(loudness: float, pitch: float | None, rate: float | None,
               voiced: float) -> tuple[str, ...]:
    """Manner tags for a voice that departs clearly from the speaker's usual one (rules in the
    module docstring)."""
    tags = []
    if loudness >= LOUD_DB and pitch is not None and pitch >= PITCH_ST:
        tags.append("shouting")
    elif voiced < WHISPER_VOICED and loudness < 0:
        tags.append("whispering")
    elif loudness <= -QUIET_DB:
        tags.append("quietly")
    if rate is not None and rate >= FAST:
        tags.append("rapidly")
    elif rate is not None and rate <= SLOW:
        tags.append("slowly")
    return tuple(tags)


class RunningBaseline:
    """The speaker's baseline over the utterances seen so far (the last ``window``), for live
    captions and for showing a file's utterances before the file is done."""

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self._seen: list[VoiceFeatures] = []

    def add(self, features: VoiceFeatures | None) -> Baseline | None:
        """Count ``features`` in and return the baseline so far."""
        if features is not None:
            self._seen = [*self._seen[-(self.window - 1):], features]
        return baseline(self._seen)
