"""Offline speech recognition with word times: faster-whisper running the Whisper ``base``
weights (:mod:`facecue.speech.weights`) on the CPU, on the stretches of speech that Silero VAD
cuts out at pauses (:mod:`facecue.speech.segment`).

Audio is processed as a stream, so files of any length use constant memory and the same code
serves live input. :meth:`Transcriber.utterances` is a generator like faster-whisper's
``transcribe``: it yields each :class:`~facecue.speech.words.Utterance` as soon as it is
recognised.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from facecue.cpu import exact_int8, precision_setting
from facecue.speech.audio import SAMPLE_RATE, iter_audio
from facecue.speech.checks import looks_failed
from facecue.speech.grammar import Grammar
from facecue.speech.segment import SpeechSegmenter
from facecue.speech.weights import WeightsMissingError, whisper_model_dir
from facecue.speech.words import Utterance, Word

log = logging.getLogger(__name__)


# CTranslate2 compute types facecue chooses between; FACECUE_PRECISION (the models' setting,
# facecue.vision.runtime) forces one of them for Whisper too
COMPUTE_TYPES = ("int8", "float32")


def default_compute_type(machine: str | None = None, flags: set[str] | None = None) -> str:
    """CTranslate2's compute type for Whisper on this CPU (or on ``machine`` with ``flags``,
    for tests): ``$FACECUE_PRECISION`` where it is ``int8`` or ``float32``; else int8 where
    this CPU's 8-bit products are exact (:func:`facecue.cpu.exact_int8`: VNNI on x86, ARM),
    else float32.

    Measured on an AVX2-only AMD EPYC, 2026-12-07 (``benchmarks/bench_speech.py
    --compute-types float32,int8,int8_float32,int16@mkl,...``; docs/speech.md): CTranslate2's
    CPU int8 *is* int8_float32 (8-bit weights, float32 activations, oneDNN's saturating uint8 x
    int8 product there) and changed the words of 3 of 32 LJSpeech clips against float32 (6 in
    the full window); int16 is offered only by CTranslate2's MKL backend (``CT2_USE_MKL=1`` on
    AMD), ran 5x slower than float32 and still changed words; float16 and bfloat16 are not
    offered on CPU. float32 ran about as fast as int8 there (real-time factor 0.166 against
    0.187 on 2 threads, machine shared). int16 on an Intel CPU without VNNI (MKL by default)
    was not measured."""
    forced = precision_setting()
    if forced in COMPUTE_TYPES:
        return forced
    return "int8" if exact_int8(machine, flags) else "float32"


class Transcriber:
    """Whisper base on the CPU, loaded once; recognises utterances with word times."""

    def __init__(self, cpu_threads: int = 2, language: str | None = "en", beam_size: int = 5,
                 compute_type: str | None = None, short_window: bool = True,
                 vocabulary: str | None = None, grammar: Grammar | None = None,
                 voice: bool = True) -> None:
        """``vocabulary``: words the speech is likely to hold (names, jargon, a command
        grammar), given to Whisper as hot words so that it spells them as listed.
        ``grammar``: read each stretch of speech as one sentence of this command grammar
        (:mod:`facecue.speech.grammar`) instead of as free text. ``compute_type``: CTranslate2's;
        by default :func:`default_compute_type`. ``voice``: measure each utterance's loudness,
        pitch and pace from its audio (:func:`facecue.speech.voice.measure`)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from facecue.speech.window import ShortWindowWhisper
        except ImportError as e:
            raise WeightsMissingError(
                "speech recognition needs faster-whisper: pip install 'facecue[speech]'") from e
        self.compute_type = compute_type or default_compute_type()
        self.model = ShortWindowWhisper(str(whisper_model_dir()), device="cpu",
                                        cpu_threads=cpu_threads, compute_type=self.compute_type,
                                        local_files_only=True)
        self.language = language
        self.beam_size = beam_size
        self.short_window = short_window  # encoder on the speech + margin (speech.window)
        self.vocabulary = vocabulary or None
        self.grammar = grammar
        self.voice = voice
        self._decoder = None  # GrammarDecoder of self.grammar, built on first use
        self._lock = threading.Lock()  # one pass at a time: the model's window is per pass

    def recognise(self, spans: list[tuple[float, np.ndarray]]) -> list[Utterance]:
        """Utterances (Whisper's sentence-like segments) in stretches of speech given as
        ``(start_seconds, samples)``.

        The stretches are joined into one Whisper pass (keep their total under Whisper's 30 s
        window): the encoder pays for at least 10 s a pass (:mod:`facecue.speech.window`), so
        one pass per pause would cost several times more. Each word is mapped back to the
        stretch its start falls in (a word that straddles a cut ends with its stretch);
        segments without words are dropped.
        """
        if not spans:
            return []
        if self.grammar is not None:
            with self._lock:
                self.model.full_window = not self.short_window
                found = [u for start, audio in spans
                         if (u := self._read_grammar(start, audio)) is not None]
            return self._with_voice(spans, found)
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
        return self._with_voice(spans, out)

    def _with_voice(self, spans: list[tuple[float, np.ndarray]],
                    utterances: list[Utterance]) -> list[Utterance]:
        """The utterances with their voice measured from the stretches their words lie in."""
        if not self.voice:
            return utterances
        from facecue.speech.voice import measure

        out = []
        for u in utterances:
            pieces = [(start, audio) for start, audio in spans
                      if start < u.end and start + len(audio) / SAMPLE_RATE > u.start]
            out.append(replace(u, voice=measure(pieces, u.words)))
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
        """Whisper segments with words. A short-window pass that looks failed
        (:func:`~facecue.speech.checks.looks_failed`: looping or unsure) is redone on the full
        30 s window."""
        def run(full: bool) -> list:
            self.model.full_window = full or not self.short_window
            segments, _ = self.model.transcribe(
                audio, language=self.language, beam_size=self.beam_size, word_timestamps=True,
                vad_filter=False, condition_on_previous_text=False, hotwords=self.vocabulary)
            return list(segments)

        with self._lock:
            segments = run(full=False)
            if self.short_window and looks_failed(segments):
                log.debug("short-window pass looks failed (%r); redoing it on the full window",
                          " ".join(s.text for s in segments))
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
