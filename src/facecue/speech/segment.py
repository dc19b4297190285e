"""Speech cut out of an audio stream at pauses, with Silero VAD (bundled with faster-whisper).

Works on a stream of any length in constant memory, so the same code serves files and live
input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from facecue.speech.audio import SAMPLE_RATE


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
