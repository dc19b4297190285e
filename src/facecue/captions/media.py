"""Speech + face for a media file: what was said, when, and with which emotion.

:func:`emotional_utterances` streams the soundtrack through speech recognition and, for videos,
the frames through the face pipeline (``facecue.stream``), lazily and in step, and fuses them
(:mod:`facecue.captions.fusion`). Audio-only files give utterances flagged ``no_face``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from facecue.captions.fusion import EmotionalUtterance, fuse
from facecue.speech.audio import AudioError, has_audio
from facecue.speech.transcribe import Transcriber

if TYPE_CHECKING:
    from facecue.video.pipeline import Pipeline


def has_video(path: str | Path) -> bool:
    """True if the file has a video stream with real frames (not just cover art)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return any(not s.disposition & av.stream.Disposition.attached_pic
                       for s in container.streams.video)
    except av.error.FFmpegError as e:
        raise AudioError(f"cannot open {path}: {e}") from e


def emotional_utterances(path: str | Path, labels: str = "fer7",
                         transcriber: Transcriber | None = None,
                         pipeline: Pipeline | None = None) -> Iterator[EmotionalUtterance]:
    """Utterances of ``path`` with their speaker's emotion, as they are recognised
    (``pipeline``: the face pipeline to use, default the shipped models).

    Raises :class:`~facecue.speech.audio.AudioError` when the file has no audio track.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if not has_audio(path):
        raise AudioError(f"{path} has no audio track: nothing to caption")
    transcriber = transcriber or Transcriber()
    if has_video(path):
        from facecue.api import stream

        frames = stream(str(path), labels=labels, pipeline=pipeline)
    else:
        frames = iter(())
    yield from fuse(frames, transcriber.utterances(path))
