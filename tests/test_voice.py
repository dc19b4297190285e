"""The voice's share of the captions, on real speech: loudness, pitch and pace relative to the
speaker's usual voice, arousal, manner tags, and ``unknown`` where no face was seen.

Expressive speech comes from ``facecue say`` (espeak-ng with SSML prosody); calm read speech
from LJSpeech and jfk.flac; the louder, quieter, faster and slower versions are the same real
recordings scaled or played at another speed."""

import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

pytest.importorskip("faster_whisper", reason="needs facecue[speech]")
pytest.importorskip("parselmouth", reason="needs facecue[speech]")

from facecue.captions.cues import render_captions  # noqa: E402
from facecue.captions.fusion import fuse_one, with_baseline  # noqa: E402
from facecue.captions.media import caption_file  # noqa: E402
from facecue.captions.sentences import STRONG  # noqa: E402
from facecue.captions.tts import say  # noqa: E402
from facecue.labels import class_names  # noqa: E402
from facecue.results import Expression, Face, FrameResult  # noqa: E402
from facecue.speech.audio import SAMPLE_RATE, load_audio  # noqa: E402
from facecue.speech.transcribe import Transcriber  # noqa: E402
from facecue.speech.voice import baseline, measure, relative  # noqa: E402

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"),
                                  reason="apt-get install espeak-ng")
# (name, emotion, intensity, espeak voice, gain): strong prosody, plain prosody, and the plain
# recording played quieter and a strong one louder. espeak-ng's loudest prosody reaches full
# scale, so the recording is played at -12 dB (0.25) and the louder one at -2.5 dB.
VERSIONS = [("plain", "neutral", 0.5, "en-us", 0.25), ("anger", "anger", 0.9, "en-us", 0.25),
            ("anger_mild", "anger", 0.5, "en-us", 0.25),
            ("happiness", "happiness", 0.9, "en-us", 0.25),
            ("surprise", "surprise", 0.9, "en-us", 0.25), ("fear", "fear", 0.9, "en-us", 0.25),
            ("sad", "sad", 0.9, "en-us", 0.25),
            ("whisper", "neutral", 0.5, "en-us+whisper", 0.25),
            ("quieter", "neutral", 0.5, "en-us", 0.05), ("louder", "surprise", 0.9, "en-us", 0.75)]
# strong prosody against plain: (higher arousal, lower arousal); sadness is a low-arousal emotion
PAIRS = [("anger", "plain"), ("happiness", "plain"), ("surprise", "plain"), ("fear", "plain"),
         ("plain", "sad"), ("anger", "anger_mild")]


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(cpu_threads=2)


def write_wav(path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def caption_clips(transcriber, clips: dict[str, np.ndarray], folder) -> dict:
    """One speaker's recordings, each captioned as a file without video, their voices judged
    against the speaker's usual voice over all of them: {name: [EmotionalUtterance, ...]}."""
    found = []
    for name, audio in clips.items():
        assert np.abs(audio).max() < 1, f"{name} clips"
        write_wav(folder / f"{name}.wav", audio)
        found += [(name, x) for x in caption_file(folder / f"{name}.wav",
                                                  transcriber=transcriber).items]
    out: dict[str, list] = {name: [] for name in clips}
    for (name, _), x in zip(found, with_baseline([x for _, x in found]), strict=True):
        out[name].append(x)
    assert all(out.values()), "every recording gives an utterance"
    return out


@pytest.fixture(scope="module")
def expressive(transcriber, tmp_path_factory):
    """One sentence said in every VERSIONS way: {name: EmotionalUtterance}, and the
    captions' VTT text."""
    folder = tmp_path_factory.mktemp("say")
    clips = {}
    for name, emotion, intensity, voice, gain in VERSIONS:
        say("Please put the red box on the table by the door.", folder / f"{name}.say.wav",
            emotion, intensity, voice)
        clips[name] = load_audio(folder / f"{name}.say.wav") * gain
    items = {name: x for name, (x,) in caption_clips(transcriber, clips, folder).items()}
    return items, render_captions(list(items.values()), "vtt")


@needs_espeak
def test_strong_prosody_has_higher_arousal_on_every_pair(expressive):
    items, _ = expressive
    for high, low in PAIRS:
        assert items[high].voice.arousal > items[low].voice.arousal, (high, low)


@needs_espeak
def test_voice_tags_where_the_voice_departs_from_the_speakers_usual(expressive):
    items, _ = expressive
    assert items["louder"].tags == ("shouting",)
    assert items["quieter"].tags == ("quietly",)
    assert items["whisper"].tags[0] == "whispering"
    assert items["whisper"].voice.features.voiced < 0.1 and items["whisper"].voice.pitch is None
    for name in ("plain", "anger_mild", "happiness", "surprise", "fear"):
        assert items[name].tags == (), name
    shout = items["louder"]
    assert shout.sentence(manner=True).startswith("[shouting] ")


@needs_espeak
def test_no_face_is_unknown_never_neutral_and_the_voice_alone_marks_no_emotion(expressive):
    items, vtt = expressive
    assert all(x.no_face and x.emotion == "unknown" for x in items.values())
    assert "<c.neutral" not in vtt and "<c.unknown" in vtt
    assert "<c.unknown.strong.shouting>[shouting] Please" in vtt  # the voice's intensity
    shout = items["louder"]
    assert shout.intensity >= STRONG
    assert shout.sentence() == shout.utterance.text.rstrip(".") + "!"
    plain = items["plain"]
    assert plain.intensity < STRONG and plain.sentence() == plain.utterance.text
    for x in items.values():  # the voice's tags and "!" at most: no emotion's adverb or emoji
        said = f"[{', '.join(x.tags)}] " * bool(x.tags) + x.utterance.text
        assert x.sentence(manner=True, emoji=True) in {said, said.rstrip(".,;:!?") + "!"}


def face_frames(label: str, p: float, end: float) -> list[FrameResult]:
    """A face seen with ``label`` at probability ``p`` from 0 to ``end`` s, mouth moving."""
    labels = class_names("fer7")
    probs = np.full(len(labels), (1 - p) / (len(labels) - 1), np.float32)
    probs[labels.index(label)] = p
    out = []
    for i, t in enumerate(np.arange(0, end, 0.04)):
        kp = np.tile([50.0, 50.0], (15, 1)).astype(np.float32)
        kp[13, 1], kp[14, 1] = 70.0, 72.0 + 8 * (i % 2)
        face = Face(box=(0, 0, 100, 100), keypoints=kp, track_id=1, detection_score=1.0,
                    expression=Expression(labels=labels, probs=probs, label=label))
        out.append(FrameResult(index=i, time=float(t), width=640, height=480, faces=[face]))
    return out


@needs_espeak
def test_face_and_voice_both_set_the_intensity_and_the_face_alone_the_label(expressive):
    items, _ = expressive
    base = baseline(x.utterance.voice for x in items.values())
    end = max(x.utterance.end for x in items.values()) + 1
    frames = face_frames("happiness", 0.55, end)

    def fused(name):
        u = items[name].utterance
        return fuse_one([f for f in frames if u.start <= f.time <= u.end], u, base)

    loud, plain, sad = fused("louder"), fused("plain"), fused("sad")
    assert loud.emotion == plain.emotion == sad.emotion == "happiness"  # the face's label
    assert loud.intensity > plain.intensity > sad.intensity
    assert loud.intensity >= STRONG > plain.intensity  # shouting makes it strong
    said = loud.utterance.text.rstrip(".")
    assert loud.sentence(manner=True) == f"[joyfully, shouting] {said}!!"


def test_calm_read_speech_gets_no_voice_tags(transcriber, shared):
    clips = sorted((shared / "media/speech/ljspeech").glob("*.wav"))[:8]
    items = with_baseline([x for clip in clips for x in caption_file(
        clip, transcriber=transcriber).items])
    assert len(items) >= 8
    for x in items:
        # calm: no tags, and short of 0.88, a voice at every tag threshold at once
        assert x.tags == () and 0.15 < x.voice.arousal < 0.85, x.utterance.text
        assert x.emotion == "unknown" and x.intensity < STRONG
    jfk = caption_file(shared / "media/speech/jfk/jfk.flac", transcriber=transcriber).items
    assert len(jfk) >= 2 and all(x.tags == () for x in jfk)
    assert all(x.voice.features.pitch > 75 for x in jfk)


def test_faster_and_slower_playback_is_tagged(transcriber, shared, tmp_path):
    names = ["LJ001-0002", "LJ001-0004", "LJ001-0006", "LJ001-0008"]
    audio = {n: load_audio(shared / f"media/speech/ljspeech/{n}.wav") for n in names}

    def played(x: np.ndarray, speed: float) -> np.ndarray:
        return np.interp(np.arange(0, len(x) - 1, speed), np.arange(len(x)), x).astype(np.float32)

    items = caption_clips(transcriber, {**audio, "faster": played(audio[names[1]], 1.8),
                                        "slower": played(audio[names[2]], 0.5)}, tmp_path)
    assert all("rapidly" in x.tags and x.voice.pitch > 8 for x in items["faster"])  # +10 st
    assert all("slowly" in x.tags and x.voice.pitch < -8 for x in items["slower"])
    assert all(x.tags == () for n in names for x in items[n])


def test_relative_features_do_not_depend_on_the_recording_level(transcriber, shared):
    clips = sorted((shared / "media/speech/ljspeech").glob("*.wav"))[12:16]
    audio = [load_audio(c) for c in clips]
    words = [[u.words for u in transcriber.utterances(c)] for c in clips]
    loudest = 0.99 / max(np.abs(x).max() for x in audio)
    views = {}
    for gain in (0.05, 1.0, loudest):
        feats = [measure([(0.0, x * gain)], w) for x, ws in zip(audio, words, strict=True)
                 for w in ws]
        base = baseline(feats)
        views[gain] = [relative(f, base) for f in feats]
        assert feats[0].loudness == pytest.approx(views[gain][0].features.loudness)
    for gain in (0.05, loudest):
        assert views[gain][0].features.loudness != pytest.approx(views[1.0][0].features.loudness)
        for a, b in zip(views[gain], views[1.0], strict=True):
            assert a.loudness == pytest.approx(b.loudness, abs=0.01)
            assert a.pitch == pytest.approx(b.pitch, abs=0.05)
            assert a.rate == pytest.approx(b.rate)
            assert a.arousal == pytest.approx(b.arousal, abs=0.01) and a.tags == b.tags


def test_voice_library_is_not_imported_by_facecue():
    code = "import sys, facecue, facecue.captions.fusion\nprint('parselmouth' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
