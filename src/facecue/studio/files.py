"""An uploaded video through the pipeline and the captioner, for the file page.

:func:`check_video` refuses what is not a video before any model runs. :class:`FileJob` then
runs :func:`facecue.run` over it with the studio's sinks (an MP4 the browser plays, the per-face
CSV summary, the frames kept for fusion, progress) and ``faces.jsonl``, while the soundtrack is
recognised in a second thread (:meth:`Transcriber.utterances
<facecue.speech.transcribe.Transcriber.utterances>`); the utterances are then fused with the
frames (:func:`facecue.captions.fusion.fuse`, as ``facecue caption`` does) into WebVTT and SRT.
Everything is written into the job's folder.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from facecue.api import run, shared_pipeline
from facecue.captions.cues import write_captions
from facecue.captions.fusion import fuse, with_baseline
from facecue.labels import DEFAULT_LABELS
from facecue.results import FrameResult
from facecue.speech.audio import AudioError, probe
from facecue.speech.transcribe import Transcriber
from facecue.speech.words import Utterance
from facecue.video.sinks import Sink, SummarySink
from facecue.video.sources import VIDEO_EXTS, SourceError, VideoSource, quiet_opencv

log = logging.getLogger(__name__)

# The files a finished job offers, by the names the page asks for them.
OUTPUTS = {"annotated.mp4": "video/mp4", "captions.vtt": "text/vtt; charset=utf-8",
           "captions.srt": "application/x-subrip; charset=utf-8",
           "faces.jsonl": "application/x-ndjson; charset=utf-8",
           "summary.csv": "text/csv; charset=utf-8"}


def upload_name(filename: str) -> str:
    """The name an upload is stored under: ``upload`` and the original's suffix when it is a
    video suffix (the user's name never becomes a path); ValueError for other suffixes."""
    suffix = Path(filename.replace("\\", "/")).suffix.lower()
    if suffix not in VIDEO_EXTS:
        raise ValueError(f"{filename or 'the file'} is not a video: facecue reads "
                         f"{', '.join(sorted(VIDEO_EXTS))}")
    return "upload" + suffix


def check_video(path: Path, shown_name: str) -> tuple[int, float]:
    """(frames, fps) of the uploaded video; ValueError, saying so, when no frame of it
    decodes (a picture or a document renamed, a damaged file)."""
    try:
        source = VideoSource(str(path))
    except SourceError:
        raise ValueError(f"{shown_name} is not a video facecue can read") from None
    try:
        with quiet_opencv():
            ok, image = source.cap.read()
        if not ok or image is None or source.length <= 1:
            raise ValueError(f"{shown_name} has no video frames facecue can decode "
                             "(a picture or a document with a video's name?)")
        return source.length, source.fps
    finally:
        source.close()


class BrowserVideoSink(Sink):
    """The annotated frames as an H.264 MP4 with the source's sound (AAC), which browsers
    play: the pipeline's own ``annotated.mp4`` is MPEG-4 Part 2, which they do not, and has
    no sound. Encoded through PyAV (from the speech extra): x264's ultrafast preset took
    1.6 ms a 640x360 frame here, where libvpx's VP8 in real-time mode took 25-77 ms."""

    wants_image = True

    def __init__(self, path: Path, fps: float, sound: Path | None = None):
        import av

        self.path, self.fps, self.sound = path, fps or 30.0, sound
        self._av = av
        self._out = self._video = self._audio = None

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        if self._out is None:
            self._open(image.shape[1], image.shape[0])
        image = image[:self._video.height, :self._video.width]
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        self._out.mux(self._video.encode(frame))

    def _open(self, width: int, height: int) -> None:
        """The container and its streams (all of them before the first packet)."""
        out = self._av.open(str(self.path), "w", format="mp4",
                            options={"movflags": "+faststart"})
        try:
            video = out.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001),
                                   options={"preset": "ultrafast"})
            video.width, video.height = width - width % 2, height - height % 2  # 4:2:0
            video.pix_fmt = "yuv420p"
            audio = out.add_stream("aac", rate=48000, layout="stereo") if self.sound else None
        except BaseException:
            out.close()
            raise
        self._out, self._video, self._audio = out, video, audio

    def close(self) -> None:
        if self._out is None:
            return
        try:
            self._out.mux(self._video.encode())
            if self._audio is not None:
                self._add_sound()
        finally:
            self._out.close()
        self.files = (self.path,)

    def _add_sound(self) -> None:
        """The source's soundtrack, re-encoded as AAC after the video's packets."""
        resample = self._av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        with self._av.open(str(self.sound)) as source:
            for frame in source.decode(audio=0):
                frame.pts = None  # counted by the encoder, from the start
                for chunk in resample.resample(frame):
                    self._out.mux(self._audio.encode(chunk))
        for chunk in resample.resample(None):
            self._out.mux(self._audio.encode(chunk))
        self._out.mux(self._audio.encode())


class Collect(Sink):
    """Keeps every frame's result (for fusion with the speech) and reports progress; stops
    the run when the job is cancelled."""

    def __init__(self, job: FileJob):
        self.job, self.results = job, []

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        self.results.append(result)
        self.job.frames_done = len(self.results)

    @property
    def stop_requested(self) -> bool:
        return self.job.cancelled.is_set()


@dataclass
class FileJob:
    """One uploaded video, processed once into ``folder``; its fields tell the page how far
    it has come (:meth:`status`)."""

    folder: Path
    video: Path
    name: str  # as uploaded, for messages
    frames: int
    fps: float
    labels: str = DEFAULT_LABELS
    state: str = "queued"  # queued, faces, speech, done, failed, cancelled
    frames_done: int = 0
    message: str = ""
    seconds: float = 0.0  # wall time of the whole job
    utterances: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def status(self) -> dict:
        done = self.state == "done"
        return {"type": "job", "state": self.state, "name": self.name,
                "frames": self.frames, "frames_done": self.frames_done,
                "progress": 1.0 if done else min(self.frames_done / max(self.frames, 1), 1.0),
                "message": self.message, "seconds": round(self.seconds, 3),
                "duration": round(self.duration, 3), "utterances": self.utterances,
                "files": sorted(p.name for p in self.folder.iterdir() if p.name in OUTPUTS)
                if done else []}

    def run(self, transcriber: Transcriber) -> None:
        """Process the video (in a worker thread); any failure ends in ``state`` ``failed``
        with its message, never an exception: the page shows it and the server goes on."""
        start = time.perf_counter()
        try:
            self._run(transcriber)
            self.state = "cancelled" if self.cancelled.is_set() else "done"
        except Exception as e:  # a bug included: the page hears of it, the server goes on
            if not isinstance(e, OSError | ValueError | RuntimeError):
                log.exception("processing %s failed", self.name)
            self.state, self.message = "failed", f"processing {self.name} failed: {e}"
        finally:
            self.seconds = time.perf_counter() - start

    def _run(self, transcriber: Transcriber) -> None:
        has_audio = probe(self.video).has_audio
        heard: list[Utterance] = []
        failure: list[BaseException] = []
        speech = threading.Thread(target=self._listen, args=(transcriber, heard, failure),
                                  name="facecue-studio-speech", daemon=True)
        if has_audio:
            speech.start()
        self.state = "faces"
        pipeline = shared_pipeline(self.labels)
        collect = Collect(self)
        run(str(self.video), jsonl=self.folder / "faces.jsonl", pipeline=pipeline,
            sinks=[BrowserVideoSink(self.folder / "annotated.mp4", self.fps,
                                    self.video if has_audio else None),
                   SummarySink(self.folder / "summary.csv", pipeline.expression.labels),
                   collect])
        if has_audio:
            self.state = "speech"
            speech.join()
        if failure:
            raise failure[0]
        items = with_baseline(list(fuse(collect.results, heard)))  # one usual voice: the file's
        self.utterances = len(items)
        write_captions(self.folder / "captions.vtt", items)
        write_captions(self.folder / "captions.srt", items)
        if not has_audio:
            self.message = f"{self.name} has no audio track: the captions are empty"
        elif not items:
            self.message = f"no speech was heard in {self.name}: the captions are empty"

    def _listen(self, transcriber: Transcriber, heard: list, failure: list) -> None:
        try:
            for utterance in transcriber.utterances(self.video):
                if self.cancelled.is_set():
                    return
                heard.append(utterance)
        except (AudioError, RuntimeError, OSError) as e:
            failure.append(e)

