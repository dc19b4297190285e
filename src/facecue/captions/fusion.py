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
- **Label**: the face decides (neither the words nor the voice can tell which emotion it
  was); other label sets' names are the captions' (``sadness`` is ``sad``:
  :func:`~facecue.captions.sentences.canonical`). No face: ``unknown``
  (:data:`~facecue.captions.sentences.UNKNOWN`), flagged ``no_face``. A face too unsure to call
  is ``unknown`` too: its top probability below ``MIN_PROB``, or less than ``MIN_MARGIN`` above
  the runner-up (two emotions nearly tied: docs/speech.md gives the measurement).
- **Voice** (:mod:`facecue.speech.voice`): the utterance's loudness, pitch and pace relative
  to the speaker's usual voice, its ``arousal`` and manner tags. With a face, intensity is the
  face's top probability moved by ``VOICE_WEIGHT * (arousal - 0.5)`` (a usual voice leaves it
  as the face says; shouting raises it by up to 0.3, a flat murmur lowers it as much). Without
  a callable face, intensity is the voice's alone, ``2 * (arousal - 0.5)`` from 0: it can make
  the sentence end in ``!`` and bring manner tags, never an emotion label.
- **Words**: VADER's compound sentiment in [-1, 1]. When face valence (happiness +; anger,
  contempt, disgust, fear, sad -; surprise, neutral 0) and word sentiment (beyond +-0.05) point
  opposite ways, the utterance is flagged ``disagree`` and the intensity is lowered by half the
  sentiment's strength; when they agree it is raised by the same rule.

The voice's baseline is the speaker's median over the utterances seen so far (:func:`fuse`);
:func:`with_baseline` redoes a whole file's utterances against the file's own median.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from facecue.captions.sentences import UNKNOWN, canonical, mark_sentence
from facecue.results import Face, FrameResult
from facecue.speech.voice import Baseline, RunningBaseline, Voice, baseline, relative
from facecue.speech.words import Utterance

MIN_FRAMES = 3
MIN_LIP_STD = 0.005
NEAREST = 0.5
MIN_PROB = 0.4
MIN_MARGIN = 0.1  # top probability minus the runner-up's below this: too flat to call
VOICE_WEIGHT = 0.6
SENTIMENT_NEUTRAL = 0.05
VALENCE = {"happiness": 1, "anger": -1, "contempt": -1, "disgust": -1, "fear": -1, "sad": -1,
           "surprise": 0, "neutral": 0}


@dataclass(frozen=True)
class EmotionalUtterance:
    """An utterance with the emotion it was said with."""

    utterance: Utterance
    emotion: str  # fused label; "neutral" = plain face; "unknown" = no face, or too unsure
    intensity: float  # 0..1
    probs: dict[str, float] = field(default_factory=dict)  # speaker's face, empty if no face
    sentiment: float = 0.0  # VADER compound of the words, -1..1
    speaker: Hashable | None = None  # track id (or face index) of the speaking face
    no_face: bool = False
    disagree: bool = False
    voice: Voice | None = None  # relative to the speaker's baseline; None if not measured

    @property
    def tags(self) -> tuple[str, ...]:
        """The voice's manner tags (shouting, whispering, quietly, rapidly, slowly)."""
        return self.voice.tags if self.voice is not None else ()

    def sentence(self, manner: bool = False, emoji: bool = False) -> str:
        """The transcript as an emotion-marked sentence (see :mod:`facecue.captions.sentences`)."""
        return mark_sentence(self.utterance.text, self.emotion, self.intensity, manner=manner,
                             emoji=emoji, tags=self.tags)

    def as_dict(self) -> dict:
        u = self.utterance
        return {"start": u.start, "end": u.end, "text": u.text, "sentence": self.sentence(),
                "emotion": self.emotion, "intensity": round(self.intensity, 3),
                "probs": self.probs, "sentiment": round(self.sentiment, 4),
                "speaker": self.speaker, "no_face": self.no_face, "disagree": self.disagree,
                "voice": self.voice.as_dict() if self.voice is not None else None,
                "confidence": round(u.confidence, 4), "no_speech_prob": u.no_speech_prob,
                "words": [{"word": w.text, "start": w.start, "end": w.end,
                           "probability": w.probability} for w in u.words]}


def fuse(frames: Iterable[FrameResult], utterances: Iterable[Utterance],
         voices: RunningBaseline | None = None) -> Iterator[EmotionalUtterance]:
    """Each utterance with its speaker's emotion, lazily: both inputs in time order, and only
    the frames near the current utterance are held, so long videos use constant memory.
    ``voices``: the speaker's voice so far (pass the same one to calls that continue a stream);
    by default a new one."""
    voices = voices or RunningBaseline()
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
        yield fuse_one(_window(held, u.start, u.end), u, voices.add(u.voice))


def fuse_one(frames: Sequence[FrameResult], utterance: Utterance,
             voice_baseline: Baseline | None = None) -> EmotionalUtterance:
    """One utterance against the frames of its time span (and its voice against the speaker's
    ``voice_baseline``; default: the utterance is its own baseline)."""
    sentiment = text_sentiment(utterance.text)
    tracks = _tracks(frames)
    if not tracks:
        return decide(EmotionalUtterance(utterance, UNKNOWN, 0.0, sentiment=sentiment,
                                         no_face=True), voice_baseline)
    speaker = speaking_face(tracks)
    labels, probs = face_emotion(tracks[speaker])
    return decide(EmotionalUtterance(
        utterance, UNKNOWN, 0.0, {k: round(float(p), 4) for k, p in zip(labels, probs,
                                                                         strict=True)},
        sentiment, speaker), voice_baseline)


def decide(item: EmotionalUtterance, voice_baseline: Baseline | None = None
           ) -> EmotionalUtterance:
    """``item`` with its label, intensity and voice decided from its face probabilities,
    sentiment and the utterance's voice against ``voice_baseline`` (rules in the module
    docstring)."""
    features = item.utterance.voice
    voice = None
    if features is not None:
        voice = relative(features, voice_baseline or baseline([features]))
    ranked = sorted(item.probs.items(), key=lambda kv: kv[1], reverse=True)
    top = ranked[0][1] if ranked else 0.0
    margin = top - ranked[1][1] if len(ranked) > 1 else top
    if top < MIN_PROB or margin < MIN_MARGIN:
        intensity = max(0.0, 2 * (voice.arousal - 0.5)) if voice is not None else 0.0
        return replace(item, emotion=UNKNOWN, intensity=round(intensity, 4), voice=voice,
                       disagree=False)
    label = canonical(ranked[0][0])
    intensity = top
    if voice is not None:
        intensity = min(1.0, max(0.0, intensity + VOICE_WEIGHT * (voice.arousal - 0.5)))
    face_valence = VALENCE.get(label, 0)
    text_valence = 0 if abs(item.sentiment) < SENTIMENT_NEUTRAL else int(np.sign(item.sentiment))
    disagree = face_valence * text_valence < 0
    if face_valence * text_valence:
        step = abs(item.sentiment) / 2
        intensity = intensity * (1 - step) if disagree else intensity + (1 - intensity) * step
    return replace(item, emotion=label, intensity=round(intensity, 4), voice=voice,
                   disagree=disagree)


def with_baseline(items: Sequence[EmotionalUtterance],
                  voice_baseline: Baseline | None = None) -> list[EmotionalUtterance]:
    """``items`` decided again with their voice against ``voice_baseline`` (default: the
    median over ``items`` themselves, a whole file's), so that early utterances are judged
    against the same usual voice as late ones."""
    voice_baseline = voice_baseline or baseline(x.utterance.voice for x in items)
    return [decide(x, voice_baseline) for x in items]


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
