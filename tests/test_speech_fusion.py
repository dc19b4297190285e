"""Fusion of speech and faces: who speaks, with which emotion, and whether words agree."""

import numpy as np
import pytest

from facecue.captions.fusion import (
    MIN_MARGIN,
    MIN_PROB,
    fuse,
    fuse_one,
    speaking_face,
    text_sentiment,
)
from facecue.labels import class_names
from facecue.results import Expression, Face, FrameResult
from facecue.speech.words import Utterance, Word

pytest.importorskip("vaderSentiment", reason="needs facecue[speech]")

FER7 = class_names("fer7")


def face(x: int, label: str, p: float, gap: float, size: int = 100, track: int | None = 1,
         labels=FER7, score: float = 1.0) -> Face:
    probs = np.full(len(labels), (1 - p) / (len(labels) - 1), np.float32)
    probs[labels.index(label)] = p
    kp = np.tile([x + size / 2, 50.0], (15, 1)).astype(np.float32)
    kp[13, 1], kp[14, 1] = 70.0, 70.0 + gap * size  # top and bottom lip centres
    return Face(box=(x, 0, size, size), keypoints=kp,
                expression=Expression(labels=labels, probs=probs, label=label),
                track_id=track, detection_score=score)


def frames(make, start=0.0, end=3.0, fps=25):
    return [FrameResult(index=i, time=t, width=640, height=480, faces=make(i))
            for i, t in enumerate(np.arange(start, end, 1 / fps))]


def utt(text: str, start: float, end: float) -> Utterance:
    return Utterance(text, start, end, (Word(text, start, end, 0.9),))


def test_speaker_is_the_face_whose_mouth_moves():
    # track 1 is large and still, track 2 small with a moving mouth
    fs = frames(lambda i: [face(0, "anger", 0.8, 0.05, 200, 1),
                           face(300, "happiness", 0.7, 0.02 + 0.1 * (i % 2), 80, 2)])
    (x,) = fuse(fs, [utt("What a lovely day", 0.5, 2.0)])
    assert x.speaker == 2 and x.emotion == "happiness" and not x.no_face
    assert x.probs["happiness"] == pytest.approx(0.7, abs=1e-3)
    assert x.sentiment > 0.5 and not x.disagree
    assert x.intensity > 0.7  # the words agree: raised
    assert x.sentence(manner=True) == "[joyfully] What a lovely day!!"


def test_still_mouths_fall_back_to_the_largest_face():
    fs = frames(lambda i: [face(0, "sad", 0.6, 0.05, 80, 1), face(300, "fear", 0.6, 0.05, 160, 2)])
    assert fuse_one(fs, utt("so", 0, 3)).speaker == 2


def test_only_frames_inside_the_utterance_count():
    fs = frames(lambda i: [face(0, "happiness" if i < 25 else "sad", 0.9, 0.05)])
    a, b = fuse(fs, [utt("first", 0.1, 0.9), utt("second", 1.5, 2.5)])
    assert (a.emotion, b.emotion) == ("happiness", "sad")


def test_confidence_weighting():
    def make(i):
        return [face(0, "anger", 0.95, 0.05, score=1.0)] if i % 2 else \
            [face(0, "happiness", 0.45, 0.05, score=0.2)]
    (x,) = fuse(frames(make), [utt("ok", 0.0, 3.0)])
    assert x.emotion == "anger" and x.probs["anger"] > 0.8


def test_disagreement_is_flagged_and_lowers_intensity():
    fs = frames(lambda i: [face(0, "happiness", 0.8, 0.05)])
    (x,) = fuse(fs, [utt("I hate this, it is terrible and awful", 0.2, 2.8)])
    assert x.sentiment < -0.5 and x.disagree and x.emotion == "happiness"
    assert x.intensity < 0.8


def test_no_face_leaves_the_sentence_plain_and_flags_it():
    fs = frames(lambda i: [])
    (x,) = fuse(fs, [utt("Hello there!", 0.5, 1.5)])
    assert x.no_face and x.emotion == "unknown" and x.probs == {}
    assert x.sentence(manner=True, emoji=True) == "Hello there!"
    (y,) = fuse([], [utt("Hello there!", 0.5, 1.5)])
    assert y.no_face


def test_a_short_utterance_between_frames_uses_the_nearest_frame():
    fs = frames(lambda i: [face(0, "surprise", 0.9, 0.05)], fps=2)
    (x,) = fuse(fs, [utt("oh", 0.6, 0.8)])
    assert x.emotion == "surprise"


def test_unsure_faces_and_fer5():
    fer5 = class_names("fer5")
    fs = frames(lambda i: [face(0, "disgust", MIN_PROB - 0.05, 0.05, labels=fer5)])
    (x,) = fuse(fs, [utt("well", 0, 3)])
    assert x.emotion == "unknown" and not x.no_face and set(x.probs) == set(fer5)
    assert x.sentence(manner=True, emoji=True) == "well"
    fs = frames(lambda i: [face(0, "disgust", 0.9, 0.05, labels=fer5)])
    assert fuse_one(fs, utt("well", 0, 3)).emotion == "disgust"


def two_way(first: str, second: str, p: float, q: float):
    def make(i):
        f = face(0, first, p, 0.05)
        probs = np.full(len(FER7), (1 - p - q) / (len(FER7) - 2), np.float32)
        probs[FER7.index(first)], probs[FER7.index(second)] = p, q
        f.expression.probs[:] = probs
        return [f]
    return frames(make)


def test_two_nearly_tied_emotions_are_too_flat_to_call():
    flat = fuse_one(two_way("anger", "sad", 0.45, 0.45 - MIN_MARGIN / 2), utt("no", 0, 3))
    assert flat.emotion == "unknown" and flat.intensity == 0.0
    clear = fuse_one(two_way("anger", "sad", 0.45, 0.45 - MIN_MARGIN * 1.5), utt("no", 0, 3))
    assert clear.emotion == "anger"


def test_untracked_faces_are_grouped_by_position():
    fs = frames(lambda i: [face(0, "fear", 0.9, 0.05, track=None)])
    assert speaking_face({"face0": [f.faces[0] for f in fs]}) == "face0"
    assert fuse_one(fs, utt("help", 0, 3)).speaker == "face0"


def test_text_sentiment():
    assert text_sentiment("") == 0.0
    assert text_sentiment("This is wonderful, I love it") > 0.5
    assert text_sentiment("ask what you can do for your country") == pytest.approx(0, abs=0.05)
