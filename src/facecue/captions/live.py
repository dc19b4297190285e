"""Live emotion-marked captions, for ``facecue run --speech`` and any real-time loop.

A :class:`LiveCaptioner` is fed audio chunks (microphone or a file's soundtrack) and the
pipeline's :class:`~facecue.results.FrameResult` s as they come; a background thread cuts the
audio at pauses, recognises each utterance as soon as it ends and fuses it with the frames of
its time span. :meth:`LiveCaptioner.latest` returns the newest marked sentence for an overlay.

Audio time 0 is the first sample fed; frames must use the same clock (``FrameResult.time``
of a video file does; for a webcam, start feeding both at the same moment).
:class:`SpeechFeed` does the hooking for a frame loop (``facecue run --speech``)::

    speech = SpeechFeed(path)            # a video file's soundtrack; 0 = webcam + microphone
    for result in facecue.stream(path):
        sentence = speech(result)        # the newest marked sentence, for the overlay
    speech.close()
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from facecue.captions.fusion import EmotionalUtterance, fuse
from facecue.results import FrameResult
from facecue.speech.audio import SAMPLE_RATE, iter_audio, microphone_chunks
from facecue.speech.segment import SpeechSegmenter
from facecue.speech.transcribe import Transcriber
from facecue.speech.voice import RunningBaseline


class AudioCursor:
    """A media file's soundtrack handed out in step with its video: :meth:`until` returns the
    samples from the last call up to time ``t`` (decoding 0.5 s at a time, constant memory)."""

    def __init__(self, path: str, chunk_seconds: float = 0.5) -> None:
        self._chunks = iter_audio(path, chunk_seconds)
        self._pending = np.zeros(0, np.float32)
        self._done = 0  # samples handed out
        self._exhausted = False

    def _decode(self, samples: int) -> None:
        """Decode until ``samples`` are pending or the soundtrack ends."""
        while len(self._pending) < samples and not self._exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._pending = np.concatenate([self._pending, chunk])

    def until(self, t: float) -> np.ndarray:
        want = max(int(t * SAMPLE_RATE) - self._done, 0)
        self._decode(want)
        out, self._pending = self._pending[:want], self._pending[want:]
        self._done += len(out)
        return out

    def ends_within(self, seconds: float) -> bool:
        """Whether the soundtrack ends less than ``seconds`` after what was handed out."""
        self._decode(int(seconds * SAMPLE_RATE))
        return self._exhausted and len(self._pending) < seconds * SAMPLE_RATE


@dataclass(frozen=True)
class CaptionLine:
    """One live caption: the marked sentence and when it became ready."""

    sentence: str
    item: EmotionalUtterance
    ready_at: float  # time.perf_counter() when the line was made


class LiveCaptioner:
    """Background speech recognition + fusion; feed it, then poll :meth:`latest`."""

    def __init__(self, transcriber: Transcriber | None = None, manner: bool = True,
                 emoji: bool = False, history_seconds: float = 60.0,
                 min_silence: float = 0.3) -> None:
        self.transcriber = transcriber or Transcriber()
        self.segmenter = SpeechSegmenter(min_silence=min_silence)
        self.manner, self.emoji = manner, emoji
        self.history = history_seconds
        self.lines: list[CaptionLine] = []
        self.voices = RunningBaseline()  # the speaker's usual voice so far
        self._frames: deque[FrameResult] = deque()
        self._lock = threading.Lock()
        self._audio: queue.Queue[np.ndarray | None] = queue.Queue()  # None: end, _FLUSH
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="facecue-live-captions",
                                        daemon=True)
        self._thread.start()

    def feed_audio(self, samples: np.ndarray) -> None:
        """Queue 16 kHz mono float32 samples (any chunk size); returns at once."""
        self._check()
        self._audio.put(np.asarray(samples, np.float32).reshape(-1))

    def listen(self, device: int | str | None = None) -> None:
        """Feed the microphone from a background thread (needs ``facecue[mic]``); a missing
        microphone raises here, with a message saying what to install or connect."""
        chunks = microphone_chunks(device=device)
        self.feed_audio(next(chunks))  # fail now, not silently in the thread
        threading.Thread(target=self._pump, args=(chunks,), daemon=True,
                         name="facecue-microphone").start()

    def _pump(self, chunks) -> None:
        try:
            for chunk in chunks:
                if self._closed:
                    break
                self.feed_audio(chunk)
        except BaseException as e:  # surfaced to the caller by _check
            self._error = e

    def feed_frame(self, result: FrameResult) -> None:
        """Remember a frame's faces for fusion (only the last ``history_seconds`` are kept)."""
        with self._lock:
            self._frames.append(result)
            while self._frames and self._frames[0].time < result.time - self.history:
                self._frames.popleft()

    def wait(self) -> None:
        """Block until all audio fed so far is segmented and recognised."""
        self._audio.join()
        self._check()

    def flush(self) -> None:
        """The audio stops here (a soundtrack's end): recognise the speech in progress now
        instead of waiting for a pause that will not come; returns when it is done."""
        self._audio.put(_FLUSH)
        self.wait()

    def latest(self) -> CaptionLine | None:
        """The newest caption line, or None before the first utterance ends."""
        self._check()
        with self._lock:
            return self.lines[-1] if self.lines else None

    def close(self) -> list[CaptionLine]:
        """Finish: recognise what is still buffered, stop the threads; returns all lines."""
        self._closed = True
        self._audio.put(None)
        self._thread.join()
        self._check()
        return self.lines

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"live captioning stopped: {self._error}") from self._error

    def _work(self) -> None:
        try:
            while True:
                chunks = [self._audio.get()]
                while chunks[-1] is not None and chunks[-1] is not _FLUSH \
                        and not self._audio.empty():
                    chunks.append(self._audio.get())  # catch up after a slow recognition
                last = chunks[-1]
                if samples := [c for c in chunks if c is not None and c is not _FLUSH]:
                    self._emit(self.segmenter.feed(np.concatenate(samples)))
                if last is _FLUSH:
                    self._emit(self.segmenter.flush())
                for _ in chunks:
                    self._audio.task_done()
                if last is None:
                    break
            self._emit(self.segmenter.flush())
        except BaseException as e:  # surfaced to the caller by _check
            self._error = e

    def _emit(self, spans: list[tuple[float, np.ndarray]]) -> None:
        utterances = self.transcriber.recognise(spans)
        if not utterances:
            return
        with self._lock:
            frames = list(self._frames)
        for item in fuse(frames, utterances, self.voices):
            line = CaptionLine(item.sentence(self.manner, self.emoji), item, time.perf_counter())
            with self._lock:
                self.lines.append(line)


_FLUSH = np.zeros(0, np.float32)  # queue marker (by identity): recognise speech in progress


class SpeechFeed:
    """Live captions beside a pipeline run: the source's soundtrack for a media file, the
    microphone for a webcam. Call it with each frame's result; it returns the newest
    emotion-marked sentence (or None before the first utterance ends).

    A media file is processed faster or slower than real time, so there each frame waits for
    the recognition of the audio up to its time: the annotated video then shows each
    sentence from the frame its utterance ends, as a live viewer would see it. Where the
    soundtrack ends within the next frame, speech still in progress is recognised at once,
    so a sentence spoken up to the end of a clip is drawn on its last frame."""

    def __init__(self, source: int | str, captioner: LiveCaptioner | None = None) -> None:
        self.captioner = captioner or LiveCaptioner()
        self.audio: AudioCursor | None = None
        self._last_time: float | None = None
        self._flushed = False
        if isinstance(source, int) or str(source).isdigit():
            self.captioner.listen()
        else:
            self.audio = AudioCursor(str(source))

    def __call__(self, result: FrameResult) -> str | None:
        self.captioner.feed_frame(result)
        if self.audio is not None:
            self.captioner.feed_audio(self.audio.until(result.time))
            frame_seconds = result.time - self._last_time if self._last_time is not None else 0.0
            self._last_time = result.time
            if not self._flushed and frame_seconds > 0 and self.audio.ends_within(frame_seconds):
                self.captioner.feed_audio(self.audio.until(result.time + frame_seconds))
                self.captioner.flush()
                self._flushed = True
            self.captioner.wait()
        line = self.captioner.latest()
        return line.sentence if line else None

    def close(self) -> list[CaptionLine]:
        return self.captioner.close()
