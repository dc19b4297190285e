"""Speech + face fusion: for each utterance, the speaker's facial emotion over exactly the
utterance's time span, with the words' own sentiment as a second signal.

Pure functions over a list of :class:`~facecue.results.FrameResult` (the pipeline's smoothed
per-frame output) and a list of :class:`~facecue.speech.words.Utterance`, so the same
code serves files, live input and tests. Rules:

- **Speaker**: among the faces seen during the utterance, the one whose mouth moves most
  (standard deviation of :meth:`Face.lip_gap` over the span, needs ``MIN_FRAMES`` frames and at
  least ``MIN_LIP_STD``); when no mouth clearly moves, the largest face.
- **Face emotion**: the speaker's smoothed probabilities averaged over the frames inside
  ``[start, end]``, each frame weighted by its confidence (detection score x top probability), so
  blurred or half-detected frames count less. With no frame inside a short span, the nearest
  frame within ``NEAREST`` seconds is used.
- **Label**: the face decides (the words cannot show how they were said); a winner below
  ``MIN_PROB`` is too unsure and the sentence stays plain (``neutral``); other label sets'
  names are the captions' (``sadness`` is ``sad``: :func:`~facecue.captions.sentences.canonical`).
  No face: ``neutral``, flagged ``no_face``.
- **Words**: VADER's compound sentiment in [-1, 1]. When face valence (happiness +; anger,
  contempt, disgust, fear, sad -; surprise, neutral 0) and word sentiment (beyond +-0.05) point
  opposite ways, the utterance is flagged ``disagree`` and the intensity is lowered by half the
  sentiment's strength; when they agree it is raised by the same rule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from facecue.captions.sentences import canonical, mark_sentence
from facecue.results import Face, FrameResult
from facecue.speech.words import Utterance

MIN_FRAMES = 3
MIN_LIP_STD = 0.005
NEAREST = 0.5
MIN_PROB = 0.4
SENTIMENT_NEUTRAL = 0.05
VALENCE = {"happiness": 1, "anger": -1, "contempt": -1, "disgust": -1, "fear": -1, "sad": -1,
           "surprise": 0, "neutral": 0}


@dataclass(frozen=True)
class EmotionalUtterance:
    """An utterance with the emotion it was said with."""

    utterance: Utterance
    emotion: str  # fused label; "neutral" = leave the sentence plain
    intensity: float  # 0..1
    probs: dict[str, float] = field(default_factory=dict)  # speaker's face, empty if no face
    sentiment: float = 0.0  # VADER compound of the words, -1..1
    speaker: Hashable | None = None  # track id (or face index) of the speaking face
    no_face: bool = False
    disagree: bool = False

    def sentence(self, manner: bool = False, emoji: bool = False) -> str:
        """The transcript as an emotion-marked sentence (see :mod:`facecue.captions.sentences`)."""
        return mark_sentence(self.utterance.text, self.emotion, self.intensity, manner=manner,
                             emoji=emoji)

    def as_dict(self) -> dict:
        u = self.utterance
        return {"start": u.start, "end": u.end, "text": u.text, "sentence": self.sentence(),
                "emotion": self.emotion, "intensity": round(self.intensity, 3),
                "probs": self.probs, "sentiment": round(self.sentiment, 4),
                "speaker": self.speaker, "no_face": self.no_face, "disagree": self.disagree,
                "confidence": round(u.confidence, 4), "no_speech_prob": u.no_speech_prob,
                "words": [{"word": w.text, "start": w.start, "end": w.end,
                           "probability": w.probability} for w in u.words]}


def fuse(frames: Iterable[FrameResult], utterances: Iterable[Utterance]
         ) -> Iterator[EmotionalUtterance]:
    """Each utterance with its speaker's emotion, lazily: both inputs in time order, and only
    the frames near the current utterance are held, so long videos use constant memory."""
    frames = iter(frames)
    held: deque[FrameResult] = deque()
    ahead: FrameResult | None = None
    for u in utterances:
        while held and held[0].time < u.start - NEAREST:
            held.popleft()
        while True:
            if ahead is None:
                ahead = next(frames, None)
            if ahead is None or ahead.time > u.end + NEAREST:
                break
            if ahead.time >= u.start - NEAREST:
                held.append(ahead)
            ahead = None
        yield fuse_one(_window(held, u.start, u.end), u)


def fuse_one(frames: Sequence[FrameResult], utterance: Utterance) -> EmotionalUtterance:
    """One utterance against the frames of its time span."""
    sentiment = text_sentiment(utterance.text)
    tracks = _tracks(frames)
    if not tracks:
        return EmotionalUtterance(utterance, "neutral", 0.0, sentiment=sentiment, no_face=True)
    speaker = speaking_face(tracks)
    labels, probs = face_emotion(tracks[speaker])
    label = canonical(labels[int(np.argmax(probs))]) if probs.max() >= MIN_PROB else "neutral"
    intensity = float(probs.max())
    face_valence = VALENCE.get(label, 0)
    text_valence = 0 if abs(sentiment) < SENTIMENT_NEUTRAL else int(np.sign(sentiment))
    disagree = face_valence * text_valence < 0
    if face_valence * text_valence:
        step = abs(sentiment) / 2
        intensity = intensity * (1 - step) if disagree else intensity + (1 - intensity) * step
    return EmotionalUtterance(
        utterance, label, round(intensity, 4),
        {k: round(float(p), 4) for k, p in zip(labels, probs, strict=True)}, sentiment,
        speaker, disagree=disagree)


def speaking_face(tracks: dict[Hashable, list[Face]]) -> Hashable:
    """The key of the face whose lips move most; the largest face if no mouth clearly moves."""
    motion = {k: float(np.std([f.lip_gap() for f in faces]))
              for k, faces in tracks.items() if len(faces) >= MIN_FRAMES}
    if motion and max(motion.values()) >= MIN_LIP_STD:
        return max(motion, key=motion.get)
    return max(tracks, key=lambda k: np.mean([f.box[2] * f.box[3] for f in tracks[k]]))


def face_emotion(faces: Sequence[Face]) -> tuple[tuple[str, ...], np.ndarray]:
    """Confidence-weighted mean of one face's (smoothed) expression probabilities."""
    labels = faces[0].expression.labels
    probs = np.stack([f.expression.probs for f in faces]).astype(np.float64)
    weights = np.array([f.detection_score * p.max() for f, p in zip(faces, probs, strict=True)])
    mean = (weights[:, None] * probs).sum(0) / weights.sum() if weights.sum() > 0 \
        else probs.mean(0)
    return labels, mean / mean.sum()


@lru_cache(maxsize=1)
def _vader():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as e:
        raise RuntimeError("text sentiment needs vaderSentiment: pip install 'facecue[speech]'"
                           ) from e
    return SentimentIntensityAnalyzer()


def text_sentiment(text: str) -> float:
    """VADER compound sentiment of ``text``: -1 (negative) .. +1 (positive)."""
    return float(_vader().polarity_scores(text)["compound"]) if text.strip() else 0.0


def _window(frames: Sequence[FrameResult], start: float, end: float) -> list[FrameResult]:
    """The frames inside [start, end]; else the nearest one within ``NEAREST`` seconds."""
    inside = [f for f in frames if start <= f.time <= end]
    if inside or not frames:
        return inside
    near = min(frames, key=lambda f: min(abs(f.time - start), abs(f.time - end)))
    return [near] if min(abs(near.time - start), abs(near.time - end)) <= NEAREST else []


def _tracks(frames: Sequence[FrameResult]) -> dict[Hashable, list[Face]]:
    """Faces grouped by track id (by position in the frame where there is no tracker)."""
    tracks: dict[Hashable, list[Face]] = {}
    for frame in frames:
        for i, face in enumerate(frame.faces):
            tracks.setdefault(face.track_id if face.track_id is not None else f"face{i}",
                              []).append(face)
    return tracks
